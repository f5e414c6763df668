/* scratch.h: a private SQLite database in a temporary file, gone when
 * closed: where work that grows with the programme (sorting the plan's
 * lines, the daemon's index of what is due, the addresses a pass met,
 * the registrations' fingerprints) lives, so memory stays flat. */
#ifndef KALLAD_SCRATCH_H
#define KALLAD_SCRATCH_H

#include <sqlite3.h>

/* Opens one, keeping at most cache_kib KiB of it in memory, with no
 * journal and no syncing (nothing in it outlives the process), and runs
 * schema (several statements; may end in BEGIN). NULL, logged with
 * purpose ("to sort lines"), when it cannot. */
sqlite3 *scratch_open(const char *purpose, int cache_kib, const char *schema);

#endif
