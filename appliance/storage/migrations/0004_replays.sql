-- Replays: each show's recording, finalised into one file when the show ends.

CREATE TABLE replays (
    show_id INTEGER PRIMARY KEY REFERENCES shows (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('processing', 'ready', 'failed')),
    duration REAL,
    size INTEGER,
    width INTEGER,
    height INTEGER,
    error TEXT,
    published INTEGER NOT NULL DEFAULT 0 CHECK (published IN (0, 1)),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

-- Whether the replay goes public by itself when the show ends.
ALTER TABLE shows ADD COLUMN replay_auto_publish INTEGER NOT NULL DEFAULT 1
    CHECK (replay_auto_publish IN (0, 1));
