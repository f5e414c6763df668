/* scratch.c: private temporary SQLite databases (scratch.h). */
#include "scratch.h"

#include "log.h"
#include "util.h"

#include <stdlib.h>

sqlite3 *scratch_open(const char *purpose, int cache_kib, const char *schema)
{
	sqlite3 *db = NULL;
	char *sql, *err = NULL;

	/* "": SQLite's own temporary file, deleted when the handle closes. */
	if (sqlite3_open_v2("", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		log_error("cannot open a temporary database %s: %s", purpose,
			  db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	sql = xasprintf("PRAGMA cache_size = -%d; PRAGMA temp_store = FILE;"
			" PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; %s",
			cache_kib, schema);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		log_error("cannot set up a temporary database %s: %s", purpose,
			  err ? err : sqlite3_errmsg(db));
		sqlite3_free(err);
		sqlite3_close(db);
		db = NULL;
	}
	free(sql);
	return db;
}
