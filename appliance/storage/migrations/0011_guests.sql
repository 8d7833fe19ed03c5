-- A guest on the live: one-time links the host hands out, and the stage's changes (guest
-- on or off, side by side or inset) kept for the replay's composition.
CREATE TABLE guest_links (
    id INTEGER PRIMARY KEY,
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,      -- SHA-256 of the link's token, never the token
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    joined_at REAL,                       -- the guest's first WHIP request: single use
    claim_hash TEXT,                      -- SHA-256 of the joining page's secret (reconnects)
    revoked_at REAL                       -- revoked by staff, or the guest removed
);
CREATE INDEX guest_links_show ON guest_links (show_id);

CREATE TABLE guest_stage (
    id INTEGER PRIMARY KEY,
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    at REAL NOT NULL,                     -- wall clock
    guest INTEGER NOT NULL CHECK (guest IN (0, 1)),
    layout TEXT NOT NULL CHECK (layout IN ('side', 'inset'))
);
CREATE INDEX guest_stage_show ON guest_stage (show_id, at);

CREATE TABLE guest_compositions (
    show_id INTEGER PRIMARY KEY REFERENCES shows (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('processing', 'ready', 'failed')),
    seconds REAL,                         -- how long the composition took
    error TEXT,
    updated_at REAL NOT NULL
);
