-- Reminders: "Notify me" sign-ups (double opt-in), the emails waiting to be sent, which
-- show-wide notices were already given, and the notify webhook's deliveries.
-- An address is kept only for its reminders: deleted on unsubscribe, and a retention
-- period after its show ends (docs/privacy.md).

CREATE TABLE reminder_signups (
    id INTEGER PRIMARY KEY,
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    email TEXT NOT NULL COLLATE NOCASE,
    lang TEXT NOT NULL DEFAULT 'en',
    -- The viewer id of the page it was made from: the KPIs count the sign-up.
    viewer TEXT NOT NULL DEFAULT '',
    -- Random, part of what the confirmation and unsubscribe links sign.
    nonce TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    confirmed_at INTEGER,
    UNIQUE (show_id, email)
);

CREATE INDEX reminder_signups_by_show ON reminder_signups (show_id, confirmed_at);

-- One row per email to send; deleted once sent or given up. An email to an address that
-- unsubscribed goes with it.
CREATE TABLE reminder_outbox (
    id INTEGER PRIMARY KEY,
    signup_id INTEGER NOT NULL REFERENCES reminder_signups (id) ON DELETE CASCADE,
    message TEXT NOT NULL CHECK (message IN ('confirm', 'hour', 'live')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    UNIQUE (signup_id, message)
);

CREATE INDEX reminder_outbox_due ON reminder_outbox (next_attempt_at);

-- What was already done for a show as a whole: 'scheduled' (webhook, with the start time
-- it announced), 'hour' (the hour-before emails queued), 'live' and 'ended'.
CREATE TABLE show_notices (
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('scheduled', 'hour', 'live', 'ended')),
    starts_at INTEGER NOT NULL DEFAULT 0,
    done_at INTEGER NOT NULL,
    PRIMARY KEY (show_id, kind)
);

-- Shows that exist before this version were never announced: they are not announced now.
INSERT INTO show_notices (show_id, kind, starts_at, done_at)
    SELECT id, 'scheduled', starts_at, strftime('%s', 'now') FROM shows;
INSERT INTO show_notices (show_id, kind, starts_at, done_at)
    SELECT id, 'hour', starts_at, strftime('%s', 'now') FROM shows WHERE status != 'scheduled';
INSERT INTO show_notices (show_id, kind, starts_at, done_at)
    SELECT id, 'live', starts_at, strftime('%s', 'now') FROM shows WHERE status != 'scheduled';
INSERT INTO show_notices (show_id, kind, starts_at, done_at)
    SELECT id, 'ended', starts_at, strftime('%s', 'now') FROM shows WHERE status = 'ended';

-- Signed JSON POSTs to notify.webhook_url, kept until the receiver answers 2xx.
CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
