/* template_internal.h: what the template parser and loader (template.c)
 * and the renderer (template_render.c) share: the parsed tree and the
 * variables. Not for use outside them. */
#ifndef KALLAD_TEMPLATE_INTERNAL_H
#define KALLAD_TEMPLATE_INTERNAL_H

#include "template.h"

#include <stdbool.h>
#include <stddef.h>

/* Sections nest at most this deep: a bound on recursion for any input. */
#define MAX_DEPTH 16

enum node_kind { N_ROOT, N_TEXT, N_VAR, N_SECTION, N_INVERTED };

/* A parsed template is a tree: text and values are leaves, sections hold
 * what they repeat or guard. */
struct node {
	enum node_kind kind;
	char *s; /* the text, or the placeholder name */
	size_t len;
	struct node *kids;
	size_t nkids, cap;
};

struct tpl_message {
	char *lang, *name;
	struct node subject, text, html;
	bool has_html;
};

struct templates {
	struct tpl_message *msgs;
	size_t n, cap;
};

struct tpl_value {
	char *name, *value;
};

struct tpl_section {
	char *name;
	struct tpl_vars **items;
	size_t n, cap;
};

struct tpl_vars {
	const struct tpl_vars *parent; /* asked for what these do not hold */
	struct tpl_value *values;
	size_t nvalues, capvalues;
	struct tpl_section *sections;
	size_t nsections, capsections;
};

/* The message in lang, else in fallback; NULL when neither has it. */
const struct tpl_message *tpl_resolve(const struct templates *t, const char *lang,
				      const char *fallback, const char *message);

#endif
