-- What ingest knows to judge a source's grant (ingest/grants.py, docs/grants.md).
-- ingested_events.event_id holds the qualified id (<source>/<sender's id>) of facts
-- accepted since this migration; own_id is the sender's id, region the fact's region.
ALTER TABLE ingested_events ADD COLUMN IF NOT EXISTS own_id text;
ALTER TABLE ingested_events ADD COLUMN IF NOT EXISTS region text;
CREATE INDEX IF NOT EXISTS ingested_events_own_id ON ingested_events (own_id);

-- Disbursements by the sender's id: who sent them, for which region.
CREATE TABLE IF NOT EXISTS ingest_disbursements (
    own_id     text NOT NULL,
    qualified  text NOT NULL,
    source     text NOT NULL,
    region     text NOT NULL,
    PRIMARY KEY (qualified)
);
CREATE INDEX IF NOT EXISTS ingest_disbursements_own_id ON ingest_disbursements (own_id);

-- A child's enrollment regions (child key: the pseudonym, never the ID number); an
-- enrollment in another region while one is active is an ENROLLMENT_CONFLICT.
CREATE TABLE IF NOT EXISTS ingest_enrollments (
    child_key  text NOT NULL,
    region     text NOT NULL,
    active     boolean NOT NULL,
    PRIMARY KEY (child_key, region)
);

-- Persons a child's facts name (parents, guardians, payees), by pseudonym: a fact about
-- a person is scoped by the regions of the children it is linked to.
CREATE TABLE IF NOT EXISTS ingest_person_links (
    person_key text NOT NULL,
    child_key  text NOT NULL,
    PRIMARY KEY (person_key, child_key)
);
