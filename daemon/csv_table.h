/* csv_table.h: one spreadsheet's CSV file read whole into records with
 * libcsv (Debian's libcsv-dev), as spreadsheets write it: UTF-8 with or
 * without a byte order mark, or Windows-1252 (Excel in Sweden), converted
 * with iconv; `,` or `;` between fields, whichever the header row uses;
 * quoted fields with separators, quotes and line breaks inside; CRLF, LF
 * or CR. What the fields mean is csv_registrations.c's concern. */
#ifndef KALLAD_CSV_TABLE_H
#define KALLAD_CSV_TABLE_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>

/* One record: its fields as read (NUL-terminated, len without the NUL: a
 * field may hold a NUL of its own), and the line of the file it starts
 * on (blank lines and line breaks inside quotes counted, as an editor
 * numbers them). */
struct csv_record {
	char **v;
	size_t *len;
	size_t n;
	long row;
	/* The line a quoted field of it opened on whose text after a line
	 * break looks like rows (holds the separator and an @): a stray
	 * quote may have swallowed them, up to the next quote. 0: none. */
	long swallowed;
};

/* rec[0] is the header row. */
struct csv_table {
	const char *path; /* not owned */
	struct csv_record *rec;
	size_t n, cap;
	/* While parsing: the record being read, the line being parsed (from
	 * 1), the line the record began on (0 between records), the line the
	 * field being read began on. */
	struct csv_record cur;
	long line, start, field_line;
	unsigned char sep; /* between fields: , or ; */
	/* The last record ends without a line break and has fewer fields
	 * than the header: cut short (a file caught while being written, or
	 * a last row saved short by hand). */
	bool last_cut;
};

/* What a record's swallowed field says, after "a quote opened here " or
 * "on line N ". */
#define CSV_SWALLOWED "runs past a line break onto what look like rows (the separator " \
		      "and an @): a stray quote may have swallowed rows"

/* Reads path into *t (freed with csv_table_free); false, with a line in
 * errs naming where and *t empty, when the file cannot be read or parsed
 * as a whole (a quote opened and never closed, which would swallow the
 * rows after it) or has no header row. A last row cut short is read,
 * and t->last_cut set: a reader must not take the rows the file may
 * lack for deleted ones. Warnings (an encoding guessed) go to warnings. */
bool csv_table_read(const char *path, struct csv_table *t, struct errlist *warnings,
		    struct errlist *errs);
/* False, with a line in errs, if t's last row is cut short or a row may
 * have swallowed others (csv_record.swallowed): for a file whose reader
 * has no way to wait for the rows it may lack. */
bool csv_table_whole(const struct csv_table *t, struct errlist *errs);
void csv_table_free(struct csv_table *t);

/* True if every field of r is empty or white space (a NUL is neither). */
bool csv_record_blank(const struct csv_record *r);
/* True if a field of r holds a NUL byte: what a crash during a write
 * leaves where rows (and their line breaks) were. */
bool csv_record_nul(const struct csv_record *r);

#endif
