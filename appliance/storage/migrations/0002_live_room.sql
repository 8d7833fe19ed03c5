-- The live room: chat messages (with their show-time offset, for replays and KPIs),
-- product pins (chapters of the replay), and the moderation log.

CREATE TABLE chat_messages (
    id INTEGER PRIMARY KEY,
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    viewer TEXT NOT NULL,
    name TEXT NOT NULL,
    text TEXT NOT NULL,
    staff_user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    question INTEGER NOT NULL DEFAULT 0 CHECK (question IN (0, 1)),
    answered INTEGER NOT NULL DEFAULT 0 CHECK (answered IN (0, 1)),
    deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    show_offset REAL,
    created_at REAL NOT NULL
);

CREATE INDEX chat_messages_by_show ON chat_messages (show_id, id);

CREATE TABLE show_pins (
    id INTEGER PRIMARY KEY,
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    product_id INTEGER NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    pinned_at REAL NOT NULL,
    unpinned_at REAL,
    show_offset REAL
);

CREATE INDEX show_pins_by_show ON show_pins (show_id, pinned_at);

CREATE TABLE moderation_log (
    id INTEGER PRIMARY KEY,
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT '{}',
    at REAL NOT NULL
);

CREATE INDEX moderation_log_by_show ON moderation_log (show_id, at);
