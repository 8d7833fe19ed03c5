-- Reminders: whether a show's sign-ups get the email an hour before it starts. A show
-- without a row follows the email.hour_before setting.
CREATE TABLE reminder_show_settings (
    show_id INTEGER PRIMARY KEY REFERENCES shows (id) ON DELETE CASCADE,
    hour_before INTEGER NOT NULL CHECK (hour_before IN (0, 1))
);
