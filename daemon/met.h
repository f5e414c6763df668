/* met.h: the addresses a pass over the registrations met, kept so that
 * what the state database holds of others (the invited whose rows are
 * gone, obligations of those who vanished) is found in one streamed join
 * after the pass instead of one look-up in the registrations per address.
 * Kept in a private SQLite database in a temporary file, so memory does
 * not grow with the programme. */
#ifndef KALLAD_MET_H
#define KALLAD_MET_H

#include <stdbool.h>

struct met;

/* NULL (with why logged) if the temporary database cannot be made. */
struct met *met_new(void);
void met_free(struct met *m);
/* Notes an address (case-insensitive, as the registrations compare). */
void met_add(struct met *m, const char *email);
/* Ends the adding; met_has may be asked from then on. */
void met_done(struct met *m);
/* True if the address was met. Fastest when asked in ascending order
 * (SQLite's NOCASE order, as state and registrations list addresses):
 * one step of a cursor; any order is answered right. */
bool met_has(struct met *m, const char *email);
/* Starts the ascending walk again from the first address. */
void met_rewind(struct met *m);
/* False once an error made the set unreliable (then nobody may be taken
 * for gone). */
bool met_ok(const struct met *m);

#endif
