/* programme_calendar.c: the calendar a programme plans from
 * (programme_calendar.h). An export that lost something must not turn
 * into mail: a session or deadline that no longer reads keeps its last
 * good copy, and so does a deadline whose event would now read as a
 * session (an invitation to everyone for a non-session), and one whose
 * event falls outside sessions-category now; a session a
 * [deadline NAME] section names stays a session (a cancel for everyone). */
#include "programme_calendar.h"

#include "state.h"
#include "tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

static bool knows_deadline(struct known *k, const char *uid)
{
	struct deadline copy;

	if (k->old)
		return calendar_deadline(k->old, uid) != NULL;
	if (!known_state(k) || !state_deadline_copy(k->st, uid, &copy))
		return false;
	state_deadline_clear(&copy);
	return true;
}

/* What kallad knows uid as: on a reload, what the calendar before it
 * held; on a fresh start, a session only when the state holds a copy of
 * it as a session and none as a deadline (a deadline stays a deadline:
 * keep_deadlines). */
static bool knows_session(struct known *k, const char *uid)
{
	struct session copy;

	if (k->old)
		return calendar_session(k->old, uid) != NULL;
	if (knows_deadline(k, uid) || !known_state(k) || !state_session_copy(k->st, uid, &copy))
		return false;
	state_session_clear(&copy);
	return true;
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

/* A deadline kallad knew whose event now reads as a session (Outlook's
 * re-export lost CATEGORIES:Deadline, or its [deadline NAME] section
 * went) would invite everyone to it. Its kind is part of what kallad
 * knew of it, as its time is: the event is taken as unreadable, and the
 * deadline keeps its last good copy. A session that becomes a deadline
 * takes a deliberate edit of the file (a category added) and is the
 * session's removal, like any other; a section of kallad.conf does not
 * make one (read_file_once). */
static void keep_deadlines(struct known *k, struct calendar *cal, const char *path,
			   struct errlist *warnings)
{
	for (size_t i = 0; i < cal->n_sessions;) {
		const struct session *s = &cal->sessions[i];
		char *uid;

		if (!knows_deadline(k, s->uid)) {
			i++;
			continue;
		}
		errlist_add_at(warnings, path, s->line,
			       "VEVENT \"%s\": kallad knows this UID as a deadline, and the event is no "
			       "deadline now (no CATEGORIES deadline, no [deadline UID] section): a "
			       "deadline does not become a session; skipped (UID %s)",
			       s->summary, s->uid);
		uid = xstrdup(s->uid);
		calendar_mark_unreadable(cal, uid);
		calendar_remove_session(cal, uid);
		keep_deadline(k, cal, uid, path, warnings);
		free(uid);
	}
}

/* Whether a known end falls on date_end's day D or the day before it:
 * after 00:00 on D - 1, up to 00:00 on D + 1 (an end at midnight ends the
 * day before). */
static bool end_near_date(time_t known, time_t date_end)
{
	struct tm d;

	tz_local(date_end, &d);
	return known > tz_mktime(d.tm_year + 1900, d.tm_mon + 1, d.tm_mday - 1, 0, 0, 0) &&
	       known <= tz_mktime(d.tm_year + 1900, d.tm_mon + 1, d.tm_mday + 1, 0, 0, 0);
}

/* A session whose DTEND became a date D (calendar_item.c reads 00:00 on
 * D, RFC 5545's exclusive end) where kallad knew it ending on D - 1 (the
 * RFC's way of writing that last day) or on D (the way some tools write
 * it): the file no longer says the hour, but it says nothing new either.
 * Its known end stays, so no update moves everyone's calendar to
 * midnight. */
static void keep_known_end(struct known *k, struct calendar *cal, const char *path,
			   struct errlist *warnings)
{
	for (size_t i = 0; i < cal->n_sessions; i++) {
		struct session *s = &cal->sessions[i];
		const struct session *was = k->old ? calendar_session(k->old, s->uid) : NULL;
		struct session copy = {0};
		char buf[40];

		if (!s->end_is_date)
			continue;
		if (!was && !k->old && known_state(k) && state_session_copy(k->st, s->uid, &copy))
			was = &copy;
		if (was && was->end > s->start && end_near_date(was->end, s->end_date)) {
			s->end = was->end;
			tz_rfc3339(s->end, buf, sizeof(buf));
			errlist_add_at(warnings, path, s->line,
				       "VEVENT \"%s\": its DTEND is a date, and kallad knew it ending on "
				       "that day or the day before: it keeps the end kallad knew, %s "
				       "(UID %s)", s->summary, buf, s->uid);
		}
		if (was == &copy)
			state_session_clear(&copy);
	}
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

/* Whether every event outside sessions-category with this UID says
 * STATUS:CANCELLED (copies that disagree cancel nothing). */
static bool outside_cancelled(const struct calendar *cal, const char *uid)
{
	for (size_t i = 0; i < cal->n_ignored; i++)
		if (cal->ignored[i].uid && str_eq(cal->ignored[i].uid, uid) &&
		    !cal->ignored[i].cancelled)
			return false;
	return true;
}

/* The kept copy of session uid, cancelled as its event outside
 * sessions-category says. A lost category is a re-export's accident; a
 * STATUS:CANCELLED is someone's decision, and must not wait for the
 * category to come back while the reminders go on. */
static void take_cancel(struct calendar *cal, const struct cal_ignored *e, const char *path,
			struct errlist *warnings)
{
	for (size_t i = 0; i < cal->n_sessions; i++) {
		struct session *s = &cal->sessions[i];

		if (!str_eq(s->uid, e->uid))
			continue;
		s->cancelled = true;
		errlist_add_at(warnings, path, e->line,
			       "%s: its STATUS:CANCELLED is taken all the same (a cancellation is no "
			       "accident of an export): the session kallad knew is cancelled (UID %s)",
			       e->label, e->uid);
	}
}

/* An event kallad knew as a session or deadline that is still in the
 * file, but outside sessions-category now (a re-export lost a category,
 * the key was set afterwards), is no removal: it keeps its last good
 * copy, as an unreadable one does. A deadline's reminders would be lost
 * in silence, a session cancelled for everyone; deleting the event, or
 * STATUS:CANCELLED (which such an event still says: take_cancel), is how
 * a session goes. */
static void keep_outside(struct known *k, struct calendar *cal, const struct config *cfg,
			 struct errlist *warnings)
{
	for (size_t i = 0; i < cal->n_ignored; i++) {
		const struct cal_ignored *e = &cal->ignored[i];
		bool deadline;

		if (!e->uid || calendar_session(cal, e->uid) || calendar_deadline(cal, e->uid))
			continue;
		deadline = knows_deadline(k, e->uid);
		if (!deadline && !knows_session(k, e->uid))
			continue;
		errlist_add_at(warnings, cfg->calendar, e->line,
			       "%s: kallad knows this UID as a %s, and the event is now outside "
			       "sessions-category \"%s\"%s; skipped (UID %s)", e->label,
			       deadline ? "deadline" : "session", cfg->sessions_category,
			       deadline ? " (and no deadline: no CATEGORIES deadline, no [deadline "
					  "UID] section)" : "", e->uid);
		if (deadline)
			keep_deadline(k, cal, e->uid, cfg->calendar, warnings);
		else if (keep_session(k, cal, e->uid, cfg->calendar, warnings) &&
			 outside_cancelled(cal, e->uid))
			take_cancel(cal, e, cfg->calendar, warnings);
	}
}

static struct deadline *find_deadline(struct calendar *cal, const char *uid)
{
	for (size_t i = 0; i < cal->n_deadlines; i++)
		if (strcmp(cal->deadlines[i].uid, uid) == 0)
			return &cal->deadlines[i];
	return NULL;
}

/* "2019-12-13 (the whole day)" or its RFC 3339 instant. */
static void deadline_when(const struct deadline *d, char *buf, size_t len)
{
	struct tm tm;

	if (!d->date_only) {
		tz_rfc3339(d->due, buf, len);
		return;
	}
	tz_local(d->due - 1, &tm);
	snprintf(buf, len, "%04d-%02d-%02d (the whole day)", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday);
}

/* The calendar's event named by a section: the section gives its title
 * and adds its category; the event gives the time. */
static void apply_section(struct deadline *d, const struct cfg_deadline *c,
			  struct errlist *warnings)
{
	if (c->title) {
		free(d->summary);
		d->summary = xstrdup(c->title);
	}
	if (c->category && !calendar_has_category(d->categories, c->category)) {
		char *both = d->categories ? xasprintf("%s,%s", d->categories, c->category)
					   : xstrdup(c->category);
		free(d->categories);
		d->categories = both;
	}
	if (c->has_due) {
		char when[48], due[20];

		deadline_when(d, when, sizeof(when));
		if (c->date_only)
			snprintf(due, sizeof(due), "%04d-%02d-%02d", c->year, c->month, c->day);
		else
			snprintf(due, sizeof(due), "%04d-%02d-%02dT%02d:%02d", c->year, c->month,
				 c->day, c->hour, c->minute);
		errlist_add(warnings, "%s:%d: [deadline %s]: due %s is not used: the calendar's event "
			    "gives the time, %s", c->file, c->line, c->name, due, when);
	}
}

/* The [deadline NAME] sections of kallad.conf: the calendar's event with
 * UID NAME (read as a deadline: calendar_opts), or without one a deadline
 * of the section's own at its due, in the programme zone. */
static void add_config_deadlines(struct calendar *cal, const struct config *cfg,
				 struct errlist *warnings)
{
	for (size_t i = 0; i < cfg->n_deadlines; i++) {
		const struct cfg_deadline *c = &cfg->deadlines[i];
		struct deadline *found = find_deadline(cal, c->name);
		struct deadline d = {.uid = c->name, .summary = c->title ? c->title : c->name,
				     .categories = c->category, .date_only = c->date_only};

		if (found) {
			apply_section(found, c, warnings);
		} else if (calendar_session(cal, c->name)) {
			/* read_file_once did not name it: a session kallad knows. */
			errlist_add(warnings, "%s:%d: [deadline %s]: kallad knows this UID as a session: "
				    "a section does not turn a session into a deadline (a deadline "
				    "needs a UID of its own); the session stays, and this section is "
				    "not used", c->file, c->line, c->name);
		} else if (!c->has_due) {
			/* With no event at all: programme_calendar_check_sections. */
			if (calendar_is_unreadable(cal, c->name))
				errlist_add(warnings, "%s:%d: [deadline %s]: the calendar has no event "
					    "with this UID that can be read, and the section has no due: "
					    "no such deadline", c->file, c->line, c->name);
		} else {
			d.due = c->date_only ? tz_mktime(c->year, c->month, c->day + 1, 0, 0, 0)
					     : tz_mktime(c->year, c->month, c->day, c->hour, c->minute, 0);
			calendar_add_deadline(cal, &d);
		}
	}
}

/* Whether the file holds an event with this UID, read or not. */
static bool has_event(const struct calendar *cal, const char *uid)
{
	if (calendar_session(cal, uid) || calendar_is_unreadable(cal, uid))
		return true;
	for (size_t i = 0; i < cal->n_deadlines; i++)
		if (cal->deadlines[i].line && str_eq(cal->deadlines[i].uid, uid))
			return true;
	for (size_t i = 0; i < cal->n_ignored; i++)
		if (cal->ignored[i].uid && str_eq(cal->ignored[i].uid, uid))
			return true;
	return false;
}

/* uid is what name most likely meant: it differs only in case, or by the
 * "@domain" name lacks (Google's UIDs end "@google.com"). */
static bool near_uid(const char *name, const char *uid)
{
	size_t n = strlen(name);

	return strcasecmp(name, uid) == 0 || (strncasecmp(name, uid, n) == 0 && uid[n] == '@');
}

/* The UID of an event of cal near name, or NULL. */
static const char *find_near(const struct calendar *cal, const char *name)
{
	for (size_t i = 0; i < cal->n_sessions; i++)
		if (near_uid(name, cal->sessions[i].uid))
			return cal->sessions[i].uid;
	for (size_t i = 0; i < cal->n_deadlines; i++)
		if (cal->deadlines[i].line && near_uid(name, cal->deadlines[i].uid))
			return cal->deadlines[i].uid;
	for (size_t i = 0; i < cal->n_unreadable; i++)
		if (near_uid(name, cal->unreadable[i]))
			return cal->unreadable[i];
	for (size_t i = 0; i < cal->n_ignored; i++)
		if (cal->ignored[i].uid && near_uid(name, cal->ignored[i].uid))
			return cal->ignored[i].uid;
	return NULL;
}

bool programme_calendar_check_sections(const struct config *cfg, const struct calendar *cal,
				       struct errlist *errs)
{
	bool ok = true;

	for (size_t i = 0; i < cfg->n_deadlines; i++) {
		const struct cfg_deadline *c = &cfg->deadlines[i];
		const char *near;

		if (c->has_due || has_event(cal, c->name))
			continue;
		ok = false;
		near = find_near(cal, c->name);
		if (near)
			errlist_add(errs, "%s:%d: [deadline %s]: the calendar has no event with this "
				    "UID, and the section has no due: it names no deadline (UIDs are "
				    "compared exactly: the event with UID \"%s\"?)", c->file, c->line,
				    c->name, near);
		else
			errlist_add(errs, "%s:%d: [deadline %s]: the calendar has no event with this "
				    "UID, and the section has no due: it names no deadline (give the "
				    "UID of the deadline's event, or a due)", c->file, c->line, c->name);
	}
	return ok;
}

/* Reads the file again if it changed under the reading: id must be the
 * identity of what was read. The warnings are those of the read kept.
 * The events the [deadline NAME] sections name are read as deadlines,
 * but for a session kallad knows: a section added to an older kallad's
 * configuration (where it was not used) must not cancel it for everyone. */
static struct calendar *read_file_once(const struct config *cfg, struct known *k,
				       char id[FILE_ID_MAX], struct errlist *warnings,
				       struct errlist *errs)
{
	const char **uids = xcalloc(cfg->n_deadlines + 1, sizeof(*uids));
	struct calendar_opts opts = {.sessions_category = cfg->sessions_category,
				     .deadline_uids = uids};
	struct calendar *cal = NULL;

	for (size_t i = 0; i < cfg->n_deadlines; i++)
		if (!knows_session(k, cfg->deadlines[i].name))
			uids[opts.n_deadline_uids++] = cfg->deadlines[i].name;
	for (int tries = 0; tries < 3; tries++) {
		struct errlist these = {0};
		char after[FILE_ID_MAX];

		calendar_free(cal);
		file_identity(cfg->calendar, id);
		cal = calendar_read(cfg->calendar, &opts, &these, errs);
		file_identity(cfg->calendar, after);
		if (!cal || str_eq(after, id) || tries == 2) {
			for (size_t i = 0; i < these.n; i++)
				errlist_add(warnings, "%s", these.items[i]);
			errlist_free(&these);
			break;
		}
		errlist_free(&these);
	}
	free(uids);
	return cal;
}

/* The categories kallad last knew uid to have (the calendar before a
 * reload, or the state's copy on a start); NULL if none, else the
 * caller frees them. */
static char *known_categories(struct known *k, const char *uid, bool deadline)
{
	char *cats = NULL;

	if (k->old) {
		const struct deadline *d = deadline ? calendar_deadline(k->old, uid) : NULL;
		const struct session *s = deadline ? NULL : calendar_session(k->old, uid);
		const char *c = d ? d->categories : s ? s->categories : NULL;

		return c ? xstrdup(c) : NULL;
	}
	if (!known_state(k))
		return NULL;
	if (deadline) {
		struct deadline copy;

		if (state_deadline_copy(k->st, uid, &copy)) {
			cats = copy.categories ? xstrdup(copy.categories) : NULL;
			state_deadline_clear(&copy);
		}
	} else {
		struct session copy;

		if (state_session_copy(k->st, uid, &copy)) {
			cats = copy.categories ? xstrdup(copy.categories) : NULL;
			state_session_clear(&copy);
		}
	}
	return cats;
}

/* A session or deadline that lost a category a rule asks for loses that
 * rule's reminders: not an error (categories are edited on purpose), but
 * never in silence. */
static void warn_lost_category(struct known *k, const struct config *cfg, const char *path,
			       const char *uid, const char *summary, const char *now, bool deadline,
			       struct errlist *warnings)
{
	char *before = NULL;
	bool asked = false;

	for (size_t i = 0; i < cfg->n_rules; i++) {
		const struct rule *r = &cfg->rules[i];

		if (!r->category || r->deadlines != deadline)
			continue;
		if (!asked) {
			before = known_categories(k, uid, deadline);
			asked = true;
		}
		if (before && calendar_has_category(before, r->category) &&
		    !calendar_has_category(now, r->category))
			errlist_add(warnings,
				    "%s: %s \"%s\" (UID %s) is no longer in the category %s: rule %s "
				    "no longer reminds of it",
				    path, deadline ? "deadline" : "session", summary ? summary : "", uid,
				    r->category, r->name);
	}
	free(before);
}

static void warn_lost_categories(struct known *k, const struct calendar *cal,
				 const struct config *cfg, struct errlist *warnings)
{
	for (size_t i = 0; i < cal->n_deadlines; i++)
		warn_lost_category(k, cfg, cfg->calendar, cal->deadlines[i].uid,
				   cal->deadlines[i].summary, cal->deadlines[i].categories, true,
				   warnings);
	for (size_t i = 0; i < cal->n_sessions; i++)
		warn_lost_category(k, cfg, cfg->calendar, cal->sessions[i].uid,
				   cal->sessions[i].summary, cal->sessions[i].categories, false,
				   warnings);
}

struct calendar *programme_calendar_read(const struct config *cfg, const struct calendar *old,
					 char id[FILE_ID_MAX], struct errlist *warnings,
					 struct errlist *errs)
{
	struct known k = {.old = old, .state_path = cfg->state};
	struct calendar *cal = read_file_once(cfg, &k, id, warnings, errs);

	if (!cal) {
		state_close(k.st);
		return NULL;
	}
	keep_deadlines(&k, cal, cfg->calendar, warnings);
	keep_known_end(&k, cal, cfg->calendar, warnings);
	keep_last_good(&k, cal, cfg->calendar, warnings);
	keep_outside(&k, cal, cfg, warnings);
	add_config_deadlines(cal, cfg, warnings);
	warn_lost_categories(&k, cal, cfg, warnings);
	state_close(k.st);
	return cal;
}
