-- The read model: what readers other than the verifier (the desk, and the console and
-- notifier through it) may read of the verifier's facts. Readers query these, never
-- `facts`, `child_refs` or `fact_copies`, so the verifier may change its tables (their
-- namespaced `ref` text included) by changing this file alone.
--
-- read_facts: one row per stored fact.
--   about   'child' (a fact of one child: child_key set), 'person' (subject: person key),
--           'region' (subject: region code), 'disbursement' (subject: the reversed
--           disbursement id), 'event' (subject: the retracted event id)
CREATE OR REPLACE VIEW read_facts AS
SELECT event_id,
       kind,
       CASE WHEN child_key IS NOT NULL THEN 'child'
            WHEN ref LIKE 'p:%' THEN 'person'
            WHEN ref LIKE 'r:%' THEN 'region'
            WHEN ref LIKE 'd:%' THEN 'disbursement'
            WHEN ref LIKE 'e:%' THEN 'event'
       END AS about,
       child_key,
       CASE WHEN child_key IS NULL THEN substr(ref, 3) END AS subject,
       recorded_at,
       payload
FROM facts;

-- read_child_timeline(child_key): every fact about one child: its own, the facts about
-- the persons it names (itself, parents, guardians, payees) and about its disbursements
-- (reversals), and the retractions of any of those. Region-wide facts (standards, cycle
-- closes) are left out: they concern every child of a region.
CREATE OR REPLACE FUNCTION read_child_timeline(p_child_key text)
RETURNS TABLE (event_id text, kind text, about text, subject text, payload bytea)
LANGUAGE sql STABLE AS $$
    WITH found AS (
        SELECT f.event_id, f.kind, NULL::text AS ref, f.payload
        FROM facts f WHERE f.child_key = p_child_key
        UNION
        SELECT f.event_id, f.kind, f.ref, f.payload FROM child_refs c
        JOIN facts f ON f.ref = c.ref AND f.child_key IS NULL
        WHERE c.child_key = p_child_key AND (c.ref LIKE 'p:%' OR c.ref LIKE 'd:%')
        UNION
        SELECT r.event_id, r.kind, r.ref, r.payload FROM facts d
        JOIN facts r ON r.ref = d.ref AND r.child_key IS NULL
        WHERE d.child_key = p_child_key AND d.ref IS NOT NULL
    ), retractions AS (
        SELECT r.event_id, r.kind, r.ref, r.payload FROM facts r
        WHERE r.ref IN (SELECT 'e:' || found.event_id FROM found)
          AND r.event_id NOT IN (SELECT found.event_id FROM found)
    ), every AS (
        SELECT * FROM found UNION SELECT * FROM retractions
    )
    SELECT DISTINCT ON (every.event_id) every.event_id, every.kind,
           CASE WHEN every.ref IS NULL THEN 'child'
                WHEN every.ref LIKE 'p:%' THEN 'person'
                WHEN every.ref LIKE 'r:%' THEN 'region'
                WHEN every.ref LIKE 'd:%' THEN 'disbursement'
                ELSE 'event' END,
           substr(every.ref, 3),
           every.payload
    FROM every ORDER BY every.event_id, every.ref NULLS FIRST
$$;
