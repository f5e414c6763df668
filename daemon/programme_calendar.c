/* programme_calendar.c: the calendar a programme plans from
 * (programme_calendar.h). An export that lost something must not turn
 * into mail: a session or deadline that no longer reads keeps its last
 * good copy. */
#include "programme_calendar.h"

#include "state.h"
#include "tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What kallad knew before this read: the calendar before a reload, or on
 * a fresh start the state database's copies, opened when first asked. */
struct known {
	const struct calendar *old;
	const char *state_path;
	struct state *st;
	bool opened;
};

static struct state *known_state(struct known *k)
{
	if (!k->opened) {
		struct errlist ignored = {0};

		k->opened = true;
		if (access(k->state_path, F_OK) == 0)
			k->st = state_open(k->state_path, true, &ignored);
		errlist_free(&ignored);
	}
	return k->st;
}

static void kept_warning(const char *path, struct errlist *warnings, const char *uid,
			 const char *what, const char *summary, time_t when)
{
	char buf[40];

	tz_rfc3339(when, buf, sizeof(buf));
	errlist_add(warnings,
		    "%s: UID %s could not be read (see above): keeping the last good copy of the %s \"%s\" (%s)",
		    path, uid, what, summary ? summary : "", buf);
}

/* Adds kallad's last good copy of session uid to cal, if it knew one. */
static bool keep_session(struct known *k, struct calendar *cal, const char *uid,
			 const char *path, struct errlist *warnings)
{
	const struct session *s = k->old ? calendar_session(k->old, uid) : NULL;
	struct session copy;

	if (s) {
		copy = *s;
		copy.kept = true;
		calendar_add_session(cal, &copy);
	} else if (!k->old && known_state(k) && state_session_copy(k->st, uid, &copy)) {
		copy.kept = true;
		calendar_add_session(cal, &copy);
		state_session_clear(&copy);
	} else {
		return false;
	}
	s = calendar_session(cal, uid);
	kept_warning(path, warnings, uid, "session", s->summary, s->start);
	return true;
}

/* The same for a deadline. */
static bool keep_deadline(struct known *k, struct calendar *cal, const char *uid,
			  const char *path, struct errlist *warnings)
{
	const struct deadline *d = k->old ? calendar_deadline(k->old, uid) : NULL;
	struct deadline copy;

	if (d) {
		copy = *d;
		copy.kept = true;
		calendar_add_deadline(cal, &copy);
	} else if (!k->old && known_state(k) && state_deadline_copy(k->st, uid, &copy)) {
		copy.kept = true;
		calendar_add_deadline(cal, &copy);
		state_deadline_clear(&copy);
	} else {
		return false;
	}
	d = calendar_deadline(cal, uid);
	kept_warning(path, warnings, uid, "deadline", d->summary, d->due);
	return true;
}

/* A session or deadline kallad knew that now fails to read is not
 * removed (which would cancel it for everyone): it keeps its last good
 * copy. */
static void keep_last_good(struct known *k, struct calendar *cal, const char *path,
			   struct errlist *warnings)
{
	for (size_t i = 0; i < cal->n_unreadable; i++) {
		const char *uid = cal->unreadable[i];

		if (calendar_session(cal, uid) || calendar_deadline(cal, uid))
			continue;
		if (!keep_session(k, cal, uid, path, warnings))
			keep_deadline(k, cal, uid, path, warnings);
	}
}

/* The [deadline NAME] sections of kallad.conf, in the programme zone. */
static void add_config_deadlines(struct calendar *cal, const struct config *cfg,
				 struct errlist *warnings)
{
	for (size_t i = 0; i < cfg->n_deadlines; i++) {
		const struct cfg_deadline *c = &cfg->deadlines[i];
		struct deadline d = {.uid = c->name, .summary = c->title ? c->title : c->name,
				     .categories = c->category, .date_only = c->date_only};

		if (calendar_session(cal, c->name) || calendar_deadline(cal, c->name)) {
			errlist_add(warnings,
				    "%s:%d: [deadline %s]: the calendar has an item with UID \"%s\" already; this section is not used",
				    c->file, c->line, c->name, c->name);
			continue;
		}
		d.due = c->date_only ? tz_mktime(c->year, c->month, c->day + 1, 0, 0, 0)
				     : tz_mktime(c->year, c->month, c->day, c->hour, c->minute, 0);
		calendar_add_deadline(cal, &d);
	}
}

/* Reads the file again if it changed under the reading: id must be the
 * identity of what was read. The warnings are those of the read kept. */
static struct calendar *read_file_once(const struct config *cfg, char id[FILE_ID_MAX],
				       struct errlist *warnings, struct errlist *errs)
{
	struct calendar *cal = NULL;

	for (int tries = 0; tries < 3; tries++) {
		struct errlist these = {0};
		char after[FILE_ID_MAX];

		calendar_free(cal);
		file_identity(cfg->calendar, id);
		cal = calendar_read(cfg->calendar, cfg->sessions_category, &these, errs);
		file_identity(cfg->calendar, after);
		if (!cal || str_eq(after, id) || tries == 2) {
			for (size_t i = 0; i < these.n; i++)
				errlist_add(warnings, "%s", these.items[i]);
			errlist_free(&these);
			break;
		}
		errlist_free(&these);
	}
	return cal;
}

struct calendar *programme_calendar_read(const struct config *cfg, const struct calendar *old,
					 char id[FILE_ID_MAX], struct errlist *warnings,
					 struct errlist *errs)
{
	struct calendar *cal = read_file_once(cfg, id, warnings, errs);
	struct known k = {.old = old, .state_path = cfg->state};

	if (!cal)
		return NULL;
	keep_last_good(&k, cal, cfg->calendar, warnings);
	add_config_deadlines(cal, cfg, warnings);
	state_close(k.st);
	return cal;
}
