-- The alert desk: staff credentials, notes and the audit trail.
-- The desk never writes the verifier's facts; it transitions alerts (optimistic
-- version check) and appends to alert_versions in the same transaction.

-- Staff credentials kept in the database (besides HUMIAO_STAFF_CREDENTIALS).
-- Only the SHA-256 of a token is stored; regions '{*}' means every region.
CREATE TABLE IF NOT EXISTS staff (
    name          text PRIMARY KEY,
    role          text NOT NULL CHECK (role IN ('viewer', 'investigator', 'supervisor')),
    regions       text[] NOT NULL,
    token_sha256  text NOT NULL UNIQUE,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS alert_notes (
    note_id     bigserial PRIMARY KEY,
    alert_id    text NOT NULL REFERENCES alerts (alert_id),
    author      text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alert_notes_alert ON alert_notes (alert_id, note_id);

-- Append-only: every transition, every note, every read of a whole ID number.
CREATE TABLE IF NOT EXISTS desk_audit (
    audit_id   bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    role       text NOT NULL,
    action     text NOT NULL,   -- ACKNOWLEDGE ASSIGN NOTE RESOLVE REOPEN READ_ALERT_ID READ_CHILD_TIMELINE
    alert_id   text,
    child_key  text,
    version    int,
    detail     text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS desk_audit_alert ON desk_audit (alert_id, audit_id) WHERE alert_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS desk_audit_child ON desk_audit (child_key, audit_id) WHERE child_key IS NOT NULL;

-- Desk queries: keyset pages by raise time and by amount, the open-alert gauge.
CREATE INDEX IF NOT EXISTS alerts_desk_raised ON alerts (raised_at, alert_id);
CREATE INDEX IF NOT EXISTS alerts_desk_amount ON alerts (amount_at_risk_fen, alert_id);
CREATE INDEX IF NOT EXISTS alerts_desk_subject ON alerts (subject) WHERE subject <> '';
