-- The ingest gateway's memory of accepted event ids: a replayed eventId is answered
-- DUPLICATE and not published again, also across restarts. One narrow row per event;
-- the id is the primary key, so concurrent gateways cannot both record it.
CREATE TABLE IF NOT EXISTS ingested_events (
    event_id    text PRIMARY KEY,
    kind        text NOT NULL,
    source      text NOT NULL,
    accepted_at timestamptz NOT NULL
);
