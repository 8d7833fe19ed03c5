-- Hardening: who may act on which show, revocable sessions, verified orders and
-- the room's sanctions kept across restarts.

-- Moderators an admin assigned to a show: they see and moderate only those shows.
CREATE TABLE show_moderators (
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (show_id, user_id)
);

CREATE INDEX show_moderators_by_user ON show_moderators (user_id);

-- Server-side sessions: the cookie names a row here; deleting the row ends the session.
-- The id stored is a SHA-256 of the token the cookie carries, never the token itself.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    user_agent TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT ''
);

CREATE INDEX sessions_by_user ON sessions (user_id);

-- Orders reported without a signature are kept apart from revenue unless the retailer
-- counts them.
ALTER TABLE shop_settings ADD COLUMN count_unsigned_orders INTEGER NOT NULL DEFAULT 0
    CHECK (count_unsigned_orders IN (0, 1));

-- Mutes and bans in a show's room, by viewer identity plus a short-lived address hint;
-- lifted_at is set when a moderator undoes one.
CREATE TABLE room_sanctions (
    id INTEGER PRIMARY KEY,
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('mute', 'ban')),
    viewer TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    address_hint TEXT NOT NULL DEFAULT '',
    hint_expires_at REAL,
    whole_address INTEGER NOT NULL DEFAULT 0 CHECK (whole_address IN (0, 1)),
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    lifted_at REAL
);

CREATE INDEX room_sanctions_by_show ON room_sanctions (show_id, kind);

-- One claim of a limited offer per viewer identity and per address.
CREATE TABLE offer_claims (
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    offer TEXT NOT NULL,
    viewer TEXT NOT NULL,
    address_hint TEXT NOT NULL DEFAULT '',
    claimed_at REAL NOT NULL
);

CREATE INDEX offer_claims_by_offer ON offer_claims (show_id, offer);
