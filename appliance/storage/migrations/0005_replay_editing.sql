-- Replays the admin edits: a title of their own, a trim, and where the show's pins and
-- chat messages fall in them.

-- The replay's own title (NULL: the show's).
ALTER TABLE replays ADD COLUMN title TEXT;

-- Where each recorded part lies, as JSON [[wall clock of its start, replay time of its
-- start, replay time of its end], ...]: wall-clock times of pins and messages map onto the
-- untrimmed replay through it.
ALTER TABLE replays ADD COLUMN timeline TEXT NOT NULL DEFAULT '[]';

-- The untrimmed replay's length, the trim asked for, and where the cut really began (on
-- the keyframe at or before trim_start). NULL trim: the whole recording.
ALTER TABLE replays ADD COLUMN full_duration REAL;
ALTER TABLE replays ADD COLUMN trim_start REAL;
ALTER TABLE replays ADD COLUMN trim_end REAL;
ALTER TABLE replays ADD COLUMN cut_start REAL NOT NULL DEFAULT 0;

-- Something the admin should know about the recording, e.g. that it stopped early.
ALTER TABLE replays ADD COLUMN note TEXT;

-- The replay page reads a show's chat by time window.
CREATE INDEX chat_messages_by_time ON chat_messages (show_id, created_at);
