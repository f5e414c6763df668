/* template.h: the message templates (SPEC §2) and their small placeholder
 * language: {{name}} substitutes a value (HTML-escaped in .html files),
 * {{#name}}...{{/name}} repeats over the items of a section (or shows once
 * when a plain value is non-empty), {{^name}}...{{/name}} shows when it is
 * empty. templates/<language>/<message>.txt starts "Subject: ...", then a
 * blank line, then the body; <message>.html beside it is optional. */
#ifndef KALLAD_TEMPLATE_H
#define KALLAD_TEMPLATE_H

#include "util.h"

#include <stdbool.h>

struct templates;
struct tpl_vars;

/* Loads every template of shipped_dir, then site_dir (may be NULL) whose
 * files replace the shipped ones of the same language and name. Parses
 * each; NULL with "file:line: what" in errs on any error (an unknown
 * placeholder, an unclosed section, a missing Subject line, bad UTF-8).
 * The caller frees with tpl_free(). */
struct templates *tpl_load(const char *shipped_dir, const char *site_dir, struct errlist *errs);
void tpl_free(struct templates *t);
/* True if message exists in language (or, failing that, in fallback). */
bool tpl_has(const struct templates *t, const char *lang, const char *fallback,
	     const char *message);

/* Variables: plain values and repeating sections of items. */
struct tpl_vars *tpl_vars_new(void);
void tpl_vars_free(struct tpl_vars *v);
void tpl_vars_set(struct tpl_vars *v, const char *name, const char *value); /* copies */
/* Names v does not hold are looked up in parent (not copied, not freed:
 * it must outlive v's rendering), so what many renderings share is made
 * once. v's own names win. At most four levels. */
void tpl_vars_set_parent(struct tpl_vars *v, const struct tpl_vars *parent);
/* Appends an item to section `name` and returns it for filling (owned by v). */
struct tpl_vars *tpl_vars_item(struct tpl_vars *v, const char *name);

/* Renders message in lang (fallback when lang has none). Sets *subject and
 * *text, and *html when the template has one (else NULL); all freed by the
 * caller. False with errs when the template is missing. */
bool tpl_render(const struct templates *t, const char *lang, const char *fallback,
		const char *message, const struct tpl_vars *v, char **subject, char **text,
		char **html, struct errlist *errs);

/* The subject alone, as tpl_render() makes it. */
bool tpl_render_subject(const struct templates *t, const char *lang, const char *fallback,
			const char *message, const struct tpl_vars *v, char **subject,
			struct errlist *errs);

/* A message's text (and HTML, when it has one, else *html is NULL)
 * rendered ahead for all its recipients: the pieces of the template that
 * name no value own() calls the recipient's are rendered once with
 * shared; the others stay to be rendered for each recipient with vars
 * whose parent is shared (tpl_vars_set_parent). Piece by piece, the
 * pieces make what tpl_render() would. False when there is no such
 * message. The skeletons hold no pointer to shared; they hold t's. */
struct tpl_skeleton;
bool tpl_skeleton_make(const struct templates *t, const char *lang, const char *fallback,
		       const char *message, const struct tpl_vars *shared,
		       bool (*own)(const char *name), struct tpl_skeleton **text,
		       struct tpl_skeleton **html);
size_t tpl_skeleton_pieces(const struct tpl_skeleton *sk);
/* Piece i's text when it was rendered ahead (*len bytes), else NULL. */
const char *tpl_skeleton_text(const struct tpl_skeleton *sk, size_t i, size_t *len);
/* Appends piece i, rendered with v when it is the recipient's. */
void tpl_skeleton_render(const struct tpl_skeleton *sk, size_t i, const struct tpl_vars *v,
			 struct strbuf *out);
void tpl_skeleton_free(struct tpl_skeleton *sk);

/* Parses one message from memory, as if read from LANG/MESSAGE.txt (txt,
 * with its Subject line) and, when html is not NULL, LANG/MESSAGE.html;
 * errors as tpl_load() names those files. For tests, previews and the
 * fuzzer. NULL on any error; the caller frees with tpl_free(). */
struct templates *tpl_parse_mem(const char *lang, const char *message, const char *txt,
				size_t txt_len, const char *html, size_t html_len,
				struct errlist *errs);

/* The placeholder names kallad provides (NULL-terminated), for --check. */
extern const char *const tpl_known_names[];

#endif
