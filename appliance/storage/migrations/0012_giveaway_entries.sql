-- A giveaway's entrants (viewer id and display name), so that a giveaway still open when
-- the server stops is open again after a restart with the same entrants.
CREATE TABLE giveaway_entries (
    giveaway_id INTEGER NOT NULL REFERENCES giveaways (id) ON DELETE CASCADE,
    viewer TEXT NOT NULL,
    name TEXT NOT NULL,
    entered_at REAL NOT NULL,
    PRIMARY KEY (giveaway_id, viewer)
);
