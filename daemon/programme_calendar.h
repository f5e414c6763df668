/* programme_calendar.h: the calendar a programme plans from: the file as
 * read (calendar.h), the [deadline NAME] sections of kallad.conf, and
 * for each session or deadline kallad knew that the file no longer gives
 * as what it was, its last good copy. */
#ifndef KALLAD_PROGRAMME_CALENDAR_H
#define KALLAD_PROGRAMME_CALENDAR_H

#include "calendar.h"
#include "config.h"
#include "util.h"

/* Reads cfg->calendar (again while it changes under the reading; id gets
 * the file_identity() of what was read). What kallad knew comes from old,
 * the calendar before a reload, or, on a fresh start (old NULL), from the
 * state database. Problems of single items go to warnings; NULL, with
 * errs, when the file cannot be read as a whole. Caller frees with
 * calendar_free(). Times in the current programme zone (tz_set). */
struct calendar *programme_calendar_read(const struct config *cfg, const struct calendar *old,
					 char id[FILE_ID_MAX], struct errlist *warnings,
					 struct errlist *errs);

/* Checks cfg's [deadline NAME] sections against cal, as
 * programme_calendar_read() returned it: a section without due that
 * names no event of the file is an error of the configuration, in errs
 * (naming the UID it most likely meant, one that differs only in case or
 * by a missing "@domain"): false then. Without it, the event it meant
 * would be read as a session and everyone invited to it. */
bool programme_calendar_check_sections(const struct config *cfg, const struct calendar *cal,
				       struct errlist *errs);

#endif
