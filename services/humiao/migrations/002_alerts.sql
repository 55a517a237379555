-- Alerts and their versions. The verifier writes them; the alert desk reads and transitions them.
-- alert_versions doubles as the transactional outbox for the `alerts` topic:
-- a version is written in the same transaction as the state change, and the
-- relay publishes rows whose published_at is NULL, then stamps them.
CREATE TABLE IF NOT EXISTS alerts (
    alert_id             text PRIMARY KEY,
    code                 text NOT NULL,
    child_key            text NOT NULL,
    child_id             text NOT NULL,   -- whole ID number: served only to staff of the region
    region               text NOT NULL,
    period               text NOT NULL,   -- 'YYYY-MM' (sorts as text)
    program              text,
    subject              text NOT NULL,   -- disbursement id, or '' for per-period alerts
    amount_at_risk_fen   bigint NOT NULL,
    evidence_event_ids   text[] NOT NULL,
    explanation_zh       text NOT NULL,
    explanation_en       text NOT NULL,
    status               text NOT NULL,   -- OPEN ACKNOWLEDGED RESOLVED WITHDRAWN REOPENED
    implied              boolean NOT NULL, -- do the current facts imply this alert?
    assignee             text,
    resolution           text,
    amount_recovered_fen bigint,
    version              int NOT NULL,
    raised_at            timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alerts_child ON alerts (child_key);
CREATE INDEX IF NOT EXISTS alerts_region_status ON alerts (region, status, code);
CREATE INDEX IF NOT EXISTS alerts_period ON alerts (region, period);

CREATE TABLE IF NOT EXISTS alert_versions (
    seq            bigserial PRIMARY KEY,  -- global order of changes (WatchAlerts cursor)
    alert_id       text NOT NULL REFERENCES alerts (alert_id),
    version        int NOT NULL,
    status         text NOT NULL,
    changed_at     timestamptz NOT NULL DEFAULT now(),
    changed_by     text NOT NULL,          -- 'verifier' or a staff member's name
    change_reason  text NOT NULL,
    payload        bytea NOT NULL,         -- humiao.alerts.v1.AlertVersion as published
    published_at   timestamptz,            -- NULL: still in the outbox
    UNIQUE (alert_id, version)
);
CREATE INDEX IF NOT EXISTS alert_versions_outbox ON alert_versions (seq) WHERE published_at IS NULL;
