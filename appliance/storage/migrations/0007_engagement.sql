-- What keeps viewers in the show (issue 16): polls and quizzes with their votes,
-- giveaways with their draws (seed kept so a draw can be checked afterwards), winners'
-- contacts kept apart from the event log and deleted after a retention period, single-use
-- offer codes, and written or live answers to questions.

CREATE TABLE polls (
    id INTEGER PRIMARY KEY,
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    question TEXT NOT NULL,
    options TEXT NOT NULL,  -- JSON list of 2-4 strings
    correct INTEGER,  -- the right option of a quiz, or NULL for a poll
    counts TEXT NOT NULL DEFAULT '[]',  -- JSON list, final once closed_at is set
    started_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    closed_at REAL,
    show_offset REAL,
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL
);

CREATE INDEX polls_by_show ON polls (show_id, started_at);

CREATE TABLE poll_votes (
    poll_id INTEGER NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    viewer TEXT NOT NULL,
    option INTEGER NOT NULL,
    voted_at REAL NOT NULL,
    PRIMARY KEY (poll_id, viewer)
);

CREATE TABLE giveaways (
    id INTEGER PRIMARY KEY,
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    prize TEXT NOT NULL,
    rule TEXT NOT NULL CHECK (rule IN ('all', 'chatters', 'voters', 'quiz')),
    claim_seconds INTEGER NOT NULL,
    started_at REAL NOT NULL,
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL
);

CREATE INDEX giveaways_by_show ON giveaways (show_id);

-- Each draw: the winner among `entrants` entrants, the seed (hex) and the SHA-256 of the
-- seed and of the sorted entrant list, as staff saw them at the draw.
CREATE TABLE giveaway_draws (
    giveaway_id INTEGER NOT NULL REFERENCES giveaways (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    viewer TEXT NOT NULL,
    name TEXT NOT NULL,
    entrants INTEGER NOT NULL,
    seed TEXT NOT NULL,
    seed_hash TEXT NOT NULL,
    entrants_hash TEXT NOT NULL,
    drawn_at REAL NOT NULL,
    claim_until REAL NOT NULL,
    claimed_at REAL,
    lapsed_at REAL,
    PRIMARY KEY (giveaway_id, number)
);

-- A winner's email for the retailer: never in the event log, deleted after delete_after.
CREATE TABLE giveaway_contacts (
    giveaway_id INTEGER NOT NULL REFERENCES giveaways (id) ON DELETE CASCADE,
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at REAL NOT NULL,
    delete_after REAL NOT NULL
);

CREATE INDEX giveaway_contacts_by_expiry ON giveaway_contacts (delete_after);

-- The single-use codes of an offer; viewer is set when one is given (never twice).
CREATE TABLE offer_codes (
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    offer TEXT NOT NULL,
    code TEXT NOT NULL,
    viewer TEXT,
    claimed_at REAL,
    PRIMARY KEY (show_id, offer, code)
);

ALTER TABLE chat_messages ADD COLUMN answer TEXT;
ALTER TABLE chat_messages ADD COLUMN answered_at REAL;
ALTER TABLE chat_messages ADD COLUMN answered_live_at REAL;
