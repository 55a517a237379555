-- The verifier's state: every fact it has accepted, which children each non-child fact
-- concerns, and its consumer progress (committed in the same transaction as the state).

-- Every accepted fact, once (event_id is the idempotency key), global across partitions.
-- Child facts carry child_key (and the partition they arrived on); the others carry `ref`,
-- the subject they are about, namespaced: 'p:<person key>' (personDied,
-- personStatusChanged), 'r:<region>' (paymentCycleClosed, allowanceStandardSet),
-- 'd:<disbursement id>' (disbursementReversed), 'e:<event id>' (eventRetracted).
CREATE TABLE IF NOT EXISTS facts (
    event_id     text PRIMARY KEY,
    kind         text NOT NULL,
    child_key    text,                  -- pseudonym of the child, for child facts
    part         int,                   -- partition the child fact arrived on
    ref          text,                  -- subject of a non-child fact (see above)
    recorded_at  timestamptz NOT NULL,
    payload      bytea NOT NULL,        -- humiao.events.v1.Envelope as received
    stored_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS facts_child ON facts (child_key) WHERE child_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS facts_ref ON facts (ref) WHERE ref IS NOT NULL;

-- Which copies of each non-child fact have been processed, per partition. A child is
-- checked against the non-child facts whose copy on *its* partition came before, so a
-- partition that runs ahead (a replay, a slow instance) never shows the children of a
-- partition behind it a month-end close before their payments: no transient alerts.
CREATE TABLE IF NOT EXISTS fact_copies (
    ref       text NOT NULL,
    part      int NOT NULL,
    event_id  text NOT NULL,
    PRIMARY KEY (ref, part, event_id)
);

-- What each child's facts name, so a person, region or reversal fact copy arriving on a
-- partition finds the children of that partition it concerns: 'p:<person key>' for the
-- child itself, its parents, guardians and payees; 'r:<region>' for regions it is enrolled
-- in; 'd:<disbursement id>' for its disbursements. Only ever grows (over-supply is harmless).
CREATE TABLE IF NOT EXISTS child_refs (
    child_key  text NOT NULL,
    ref        text NOT NULL,
    part       int NOT NULL,
    PRIMARY KEY (child_key, ref)
);
CREATE INDEX IF NOT EXISTS child_refs_ref ON child_refs (ref, part);

-- Consumer progress: the next offset to read per partition, moved only in the transaction
-- that stores the state the records before it produced. -1: from the beginning.
CREATE TABLE IF NOT EXISTS consumer_offsets (
    consumer_group  text NOT NULL,
    topic           text NOT NULL,
    part            int NOT NULL,
    next_offset     bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, part)
);
