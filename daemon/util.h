/* util.h: memory, strings and error lists shared by every module.
 *
 * Out-of-memory policy: every allocation goes through x*() below, which
 * log and abort() when the allocator fails. No caller checks for NULL. */
#ifndef KALLAD_UTIL_H
#define KALLAD_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UNUSED __attribute__((unused))

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
/* Returns a copy the caller frees; NULL in, NULL out. */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a formatted string the caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Grows an array of elements of size `size` so that index `need` fits. */
void *xgrow(void *arr, size_t *cap, size_t need, size_t size);

/* A growable byte buffer; buf is always NUL-terminated. */
struct strbuf {
	char *buf;
	size_t len, cap;
};
void sb_init(struct strbuf *sb);
/* Makes room for extra more bytes (and the NUL) without adding any. */
void sb_reserve(struct strbuf *sb, size_t extra);
void sb_add(struct strbuf *sb, const char *s);
void sb_addn(struct strbuf *sb, const char *s, size_t n);
void sb_addc(struct strbuf *sb, char c);
void sb_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vaddf(struct strbuf *sb, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Hands the buffer to the caller (who frees it) and resets sb. */
char *sb_take(struct strbuf *sb);
void sb_free(struct strbuf *sb);

/* A list of human-readable error lines, e.g. "file:line: key: what". */
struct errlist {
	char **items;
	size_t n, cap;
};
void errlist_add(struct errlist *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds "file:line: " and the formatted text. */
void errlist_add_at(struct errlist *e, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void errlist_vadd_at(struct errlist *e, const char *file, int line, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
void errlist_free(struct errlist *e);

/* String helpers. */
bool str_eq(const char *a, const char *b);   /* NULL-safe */
bool str_caseeq(const char *a, const char *b); /* ASCII, NULL-safe */
char *str_trim(char *s);                     /* in place; returns s moved past spaces */
bool str_empty(const char *s);               /* NULL or "" */
/* True if s is valid UTF-8 with no C0 controls but TAB. */
bool str_valid_utf8(const char *s, size_t n);

/* Parses a whole decimal integer in [min, max]. */
bool parse_int(const char *s, long min, long max, long *out);

/* A 128-bit FNV-1a style digest as 32 hex characters into out[33]. */
void hash_hex(const char *data, size_t n, char out[33]);

/* What tells one version of a file from another without reading it:
 * "device:inode:size:mtime-ns" into out; "" when it cannot be stat()ed. */
#define FILE_ID_MAX 96
void file_identity(const char *path, char out[FILE_ID_MAX]);

/* Reads a whole file; returns a buffer the caller frees, or NULL with errno. */
char *read_file(const char *path, size_t *len);

#endif
