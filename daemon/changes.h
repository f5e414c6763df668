/* changes.h: what changed in the calendar since kallad last looked, and
 * the SEQUENCE each session's invites carry from now on (INTEROP life
 * cycle: raised whenever start, end, location or status change). */
#ifndef KALLAD_CHANGES_H
#define KALLAD_CHANGES_H

#include "calendar.h"
#include "state.h"

#include <stdbool.h>

/* Compares each session of cal with kallad's stored copy. A session whose
 * start, end, location or status changed gets the stored SEQUENCE + 1 (and
 * never less than the file's own); one that vanished from the file is
 * appended to cal as cancelled, from its stored copy, its SEQUENCE raised
 * once. A change of anything else (title, description) updates the copy
 * but not the SEQUENCE, unless `description` is true. Every session's
 * `sequence` in cal is set to the effective one. With a read-only st
 * nothing is stored: the SEQUENCEs are what they would become. Each
 * deadline's `revision` is set likewise (raised when its due moved). Logs
 * each change it finds. */
void changes_sync(struct calendar *cal, struct state *st, bool description);

#endif
