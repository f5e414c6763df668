/* reg_extras.h: the absences and attachments of the registration
 * database, loaded by reg_load (registrations.c). */
#ifndef KALLAD_REG_EXTRAS_H
#define KALLAD_REG_EXTRAS_H

#include "config.h"
#include "reg_sql.h"
#include "registrations.h"

#include <sqlite3.h>
#include <stdbool.h>

/* Reads the absences ([registrations] absences, or the shipped table) into
 * reg->absences, sorted; a row naming no participant is skipped with a
 * warning. False (errs) when the query cannot run. */
bool reg_load_absences(sqlite3 *db, const struct config *cfg, struct registrations *reg,
		       struct source *src, struct errlist *errs);
/* Checks every attachment row once (a warning for each bad one), keeps
 * the message names they give (reg->attachment_messages) and prepares the
 * per-participant query reg_attachments runs. False (errs) when the query
 * cannot run. */
bool reg_load_attachments(sqlite3 *db, const struct config *cfg, struct registrations *reg,
			  struct source *src, struct errlist *errs);

#endif
