-- The notifier's state. Written in the same transaction as its consumer offsets
-- (consumer_offsets, group humiao-notifier), so a restart neither loses nor repeats.

-- The notifier's view of every alert: its latest version (for digests and grouping).
-- child_mask is the masked ID (110105***********X); the whole number is never stored here.
CREATE TABLE IF NOT EXISTS notify_alerts (
    alert_id           text PRIMARY KEY,
    version            int NOT NULL,
    code               text NOT NULL,
    status             text NOT NULL,
    region             text NOT NULL,
    period             text NOT NULL,
    amount_fen         bigint NOT NULL,
    child_mask         text NOT NULL,
    raised_at          timestamptz NOT NULL,  -- changed_at of the first version seen
    status_changed_at  timestamptz NOT NULL   -- changed_at of the version that set status
);
CREATE INDEX IF NOT EXISTS notify_alerts_scope ON notify_alerts (region, code, status);

-- One group per receiver and (region, code): when it is sent next, when it was last sent.
CREATE TABLE IF NOT EXISTS notify_groups (
    receiver      text NOT NULL,
    region        text NOT NULL,
    code          text NOT NULL,
    send_at       timestamptz,          -- NULL: nothing pending
    last_sent_at  timestamptz,
    PRIMARY KEY (receiver, region, code)
);
CREATE INDEX IF NOT EXISTS notify_groups_due ON notify_groups (send_at) WHERE send_at IS NOT NULL;

-- The latest version of each alert a receiver has not been sent yet.
CREATE TABLE IF NOT EXISTS notify_pending (
    receiver  text NOT NULL,
    alert_id  text NOT NULL,
    version   int NOT NULL,
    region    text NOT NULL,
    code      text NOT NULL,
    PRIMARY KEY (receiver, alert_id)
);
CREATE INDEX IF NOT EXISTS notify_pending_group ON notify_pending (receiver, region, code);

-- What each receiver was last told about each alert (open, or closed).
CREATE TABLE IF NOT EXISTS notify_told (
    receiver   text NOT NULL,
    alert_id   text NOT NULL,
    version    int NOT NULL,
    told_open  boolean NOT NULL,
    PRIMARY KEY (receiver, alert_id)
);

-- Messages to send, in order per receiver; sent_at NULL: still to send.
CREATE TABLE IF NOT EXISTS notify_outbox (
    id               bigserial PRIMARY KEY,
    receiver         text NOT NULL,
    kind             text NOT NULL,       -- group, digest
    content          text NOT NULL,       -- humiao.domain.notify_text.Message as JSON
    created_at       timestamptz NOT NULL,
    next_attempt_at  timestamptz NOT NULL,
    attempts         int NOT NULL DEFAULT 0,
    last_error       text,
    sent_at          timestamptz
);
CREATE INDEX IF NOT EXISTS notify_outbox_unsent ON notify_outbox (receiver, id) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS notify_outbox_sent ON notify_outbox (receiver, sent_at) WHERE sent_at IS NOT NULL;

-- The last local day each route's digest was queued for.
CREATE TABLE IF NOT EXISTS notify_digests (
    route_key  text PRIMARY KEY,
    last_day   date NOT NULL
);
