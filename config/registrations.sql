-- The registration database kallad reads (SPEC §1.3). kallad opens it
-- read-only and never writes to it: a registration form or another system
-- does. Create it with:  sqlite3 registrations.db < registrations.sql
--
-- status:        invited | registered | waitlisted | cancelled
-- language:      a short language tag for the participant's mail ("sv", "en")
-- registered_at, updated_at: ISO 8601 / RFC 3339 ("2019-11-02 14:03:00",
--                "2019-11-02T14:03:00+01:00", "...Z"); without an offset
--                the time is read in the programme's time zone. Or a
--                Unix time: an integer, or digits alone as text.
-- attachments:   files sent with a message to one participant; the path is
--                relative to [programme] material (default: the folder
--                material/ beside kallad.conf) and never leads out of it.
-- absences:      sessions a participant will not attend (no reminders).

CREATE TABLE IF NOT EXISTS participants(
	email TEXT PRIMARY KEY COLLATE NOCASE,
	name TEXT NOT NULL,
	organisation TEXT,     -- municipality or region
	role TEXT,
	language TEXT NOT NULL DEFAULT 'sv',
	status TEXT NOT NULL CHECK (status IN
		('invited','registered','waitlisted','cancelled')),
	registered_at TEXT,
	updated_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS attachments(
	email TEXT NOT NULL,
	message TEXT NOT NULL,
	path TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS absences(
	email TEXT NOT NULL,
	session_uid TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS attachments_email ON attachments(email COLLATE NOCASE, message);
CREATE UNIQUE INDEX IF NOT EXISTS absences_email_session
	ON absences(email COLLATE NOCASE, session_uid);
