/* template_render.c: the variables of a message and rendering a parsed
 * template with them (text, HTML with escaping, the subject line), whole
 * or as a skeleton rendered ahead for what many recipients share. */
#include "template.h"
#include "template_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- variables ---- */

struct tpl_vars *tpl_vars_new(void)
{
	return xcalloc(1, sizeof(struct tpl_vars));
}

void tpl_vars_free(struct tpl_vars *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->nvalues; i++) {
		free(v->values[i].name);
		free(v->values[i].value);
	}
	for (size_t i = 0; i < v->nsections; i++) {
		for (size_t k = 0; k < v->sections[i].n; k++)
			tpl_vars_free(v->sections[i].items[k]);
		free(v->sections[i].items);
		free(v->sections[i].name);
	}
	free(v->values);
	free(v->sections);
	free(v);
}

void tpl_vars_set(struct tpl_vars *v, const char *name, const char *value)
{
	for (size_t i = 0; i < v->nvalues; i++)
		if (strcmp(v->values[i].name, name) == 0) {
			free(v->values[i].value);
			v->values[i].value = xstrdup(value ? value : "");
			return;
		}
	v->values = xgrow(v->values, &v->capvalues, v->nvalues, sizeof(*v->values));
	v->values[v->nvalues].name = xstrdup(name);
	v->values[v->nvalues++].value = xstrdup(value ? value : "");
}

void tpl_vars_set_parent(struct tpl_vars *v, const struct tpl_vars *parent)
{
	v->parent = parent;
}

static const struct tpl_section *section_of(const struct tpl_vars *v, const char *name)
{
	for (size_t i = 0; i < v->nsections; i++)
		if (strcmp(v->sections[i].name, name) == 0)
			return &v->sections[i];
	return NULL;
}

static const char *value_of(const struct tpl_vars *v, const char *name)
{
	for (size_t i = 0; i < v->nvalues; i++)
		if (strcmp(v->values[i].name, name) == 0)
			return v->values[i].value;
	return NULL;
}

struct tpl_vars *tpl_vars_item(struct tpl_vars *v, const char *name)
{
	struct tpl_section *s = (struct tpl_section *)section_of(v, name);

	if (!s) {
		v->sections = xgrow(v->sections, &v->capsections, v->nsections, sizeof(*v->sections));
		s = &v->sections[v->nsections++];
		memset(s, 0, sizeof(*s));
		s->name = xstrdup(name);
	}
	s->items = xgrow(s->items, &s->cap, s->n, sizeof(*s->items));
	s->items[s->n] = tpl_vars_new();
	return s->items[s->n++];
}

/* ---- rendering ---- */

/* Variables visible while rendering: the innermost item last. The first
 * `base` are the variables given and their parents (MAX_PARENTS at most). */
#define MAX_PARENTS 4
struct scope {
	const struct tpl_vars *v[MAX_DEPTH + MAX_PARENTS];
	int n, base;
};

static const char *scope_value(const struct scope *sc, const char *name)
{
	for (int i = sc->n - 1; i >= 0; i--) {
		const char *val = value_of(sc->v[i], name);

		if (val)
			return val;
	}
	return "";
}

/* The innermost binding of name decides: a list, or else a value. */
static void scope_lookup(const struct scope *sc, const char *name, const struct tpl_section **list,
			 const char **value)
{
	*list = NULL;
	*value = "";
	for (int i = sc->n - 1; i >= 0; i--) {
		const char *val;

		if ((*list = section_of(sc->v[i], name)))
			return;
		if ((val = value_of(sc->v[i], name))) {
			*value = val;
			return;
		}
	}
}

/* Escapes a value for HTML text or a quoted attribute. A line break
 * becomes <br> so a multi-line description keeps its lines. */
static void add_escaped(struct strbuf *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			sb_add(out, "&amp;");
			break;
		case '<':
			sb_add(out, "&lt;");
			break;
		case '>':
			sb_add(out, "&gt;");
			break;
		case '"':
			sb_add(out, "&quot;");
			break;
		case '\'':
			sb_add(out, "&#39;");
			break;
		case '\n':
			sb_add(out, "<br>\n");
			break;
		default:
			sb_addc(out, *s);
		}
	}
}

static void render(const struct node *n, struct scope *sc, bool html, struct strbuf *out);

static void render_section(const struct node *n, struct scope *sc, bool html,
			   struct strbuf *out)
{
	const struct tpl_section *list;
	const char *value;
	bool full;

	scope_lookup(sc, n->s, &list, &value);
	full = list ? list->n > 0 : value[0] != '\0';
	if (n->kind == N_INVERTED) {
		if (!full)
			render(n, sc, html, out);
	} else if (list && sc->n - sc->base < MAX_DEPTH) {
		for (size_t i = 0; i < list->n; i++) {
			sc->v[sc->n++] = list->items[i];
			render(n, sc, html, out);
			sc->n--;
		}
	} else if (full) {
		render(n, sc, html, out);
	}
}

/* Values are copied as they are: a "{{" inside one is never expanded. */
static void render_one(const struct node *k, struct scope *sc, bool html, struct strbuf *out)
{
	if (k->kind == N_TEXT)
		sb_addn(out, k->s, k->len);
	else if (k->kind == N_VAR && html)
		add_escaped(out, scope_value(sc, k->s));
	else if (k->kind == N_VAR)
		sb_add(out, scope_value(sc, k->s));
	else
		render_section(k, sc, html, out);
}

static void render(const struct node *n, struct scope *sc, bool html, struct strbuf *out)
{
	for (size_t i = 0; i < n->nkids; i++)
		render_one(&n->kids[i], sc, html, out);
}

/* The scope of v: its parents, outermost first, then v itself, the
 * innermost binding. */
static void scope_of(struct scope *sc, const struct tpl_vars *v)
{
	sc->n = 0;
	for (const struct tpl_vars *p = v; p && sc->n < MAX_PARENTS; p = p->parent)
		sc->n++;
	sc->base = sc->n;
	for (const struct tpl_vars *p = v; p && sc->n > 0; p = p->parent)
		sc->v[--sc->n] = p;
	sc->n = sc->base;
}

static char *render_root(const struct node *root, const struct tpl_vars *v, bool html)
{
	struct scope sc;
	struct strbuf out;

	scope_of(&sc, v);

	sb_init(&out);
	render(root, &sc, html, &out);
	return sb_take(&out);
}

/* A subject is one header line: line breaks and tabs in values become
 * spaces, and the ends are trimmed. */
static char *render_subject(const struct node *root, const struct tpl_vars *v)
{
	char *s = render_root(root, v, false), *t;

	for (char *c = s; *c; c++)
		if (*c == '\r' || *c == '\n' || *c == '\t')
			*c = ' ';
	t = xstrdup(str_trim(s));
	free(s);
	return t;
}

bool tpl_render(const struct templates *t, const char *lang, const char *fallback,
		const char *message, const struct tpl_vars *v, char **subject, char **text,
		char **html, struct errlist *errs)
{
	const struct tpl_message *m = tpl_resolve(t, lang, fallback, message);
	struct tpl_vars *empty = NULL;

	*subject = *text = NULL;
	if (html)
		*html = NULL;
	if (!m) {
		errlist_add(errs, "no template %s in %s or %s", message ? message : "(none)",
			    lang ? lang : "(none)", fallback ? fallback : "(none)");
		return false;
	}
	if (!v)
		v = empty = tpl_vars_new();
	*subject = render_subject(&m->subject, v);
	*text = render_root(&m->text, v, false);
	if (html && m->has_html)
		*html = render_root(&m->html, v, true);
	tpl_vars_free(empty);
	return true;
}

bool tpl_render_subject(const struct templates *t, const char *lang, const char *fallback,
			const char *message, const struct tpl_vars *v, char **subject,
			struct errlist *errs)
{
	const struct tpl_message *m = tpl_resolve(t, lang, fallback, message);

	*subject = NULL;
	if (!m) {
		errlist_add(errs, "no template %s in %s or %s", message ? message : "(none)",
			    lang ? lang : "(none)", fallback ? fallback : "(none)");
		return false;
	}
	*subject = render_subject(&m->subject, v);
	return true;
}

/* ---- skeletons ---- */

struct tpl_piece_in {
	char *text; /* rendered once; NULL: node is rendered for each recipient */
	size_t len;
	const struct node *node;
};

struct tpl_skeleton {
	struct tpl_piece_in *pieces;
	size_t n, cap;
	bool html;
};

/* Whether n or anything inside it names a value own() says is the
 * recipient's. */
static bool uses_own(const struct node *n, bool (*own)(const char *name))
{
	if (n->kind != N_TEXT && n->kind != N_ROOT && own(n->s))
		return true;
	for (size_t i = 0; i < n->nkids; i++)
		if (uses_own(&n->kids[i], own))
			return true;
	return false;
}

static struct tpl_skeleton *skeleton(const struct node *root, const struct tpl_vars *shared,
				     bool (*own)(const char *name), bool html)
{
	struct tpl_skeleton *sk = xcalloc(1, sizeof(*sk));
	struct scope sc;
	struct strbuf text;

	sk->html = html;
	scope_of(&sc, shared);
	sb_init(&text);
	for (size_t i = 0; i <= root->nkids; i++) {
		const struct node *k = i < root->nkids ? &root->kids[i] : NULL;

		if (k && !uses_own(k, own)) {
			render_one(k, &sc, html, &text);
			continue;
		}
		/* A run of shared nodes ends: one piece of text. */
		if (text.len) {
			sk->pieces = xgrow(sk->pieces, &sk->cap, sk->n, sizeof(*sk->pieces));
			sk->pieces[sk->n].len = text.len;
			sk->pieces[sk->n].node = NULL;
			sk->pieces[sk->n++].text = sb_take(&text);
			sb_init(&text);
		}
		if (k) {
			sk->pieces = xgrow(sk->pieces, &sk->cap, sk->n, sizeof(*sk->pieces));
			sk->pieces[sk->n++] = (struct tpl_piece_in){NULL, 0, k};
		}
	}
	sb_free(&text);
	return sk;
}

bool tpl_skeleton_make(const struct templates *t, const char *lang, const char *fallback,
		       const char *message, const struct tpl_vars *shared,
		       bool (*own)(const char *name), struct tpl_skeleton **text,
		       struct tpl_skeleton **html)
{
	const struct tpl_message *m = tpl_resolve(t, lang, fallback, message);

	*text = *html = NULL;
	if (!m)
		return false;
	*text = skeleton(&m->text, shared, own, false);
	if (m->has_html)
		*html = skeleton(&m->html, shared, own, true);
	return true;
}

size_t tpl_skeleton_pieces(const struct tpl_skeleton *sk)
{
	return sk->n;
}

const char *tpl_skeleton_text(const struct tpl_skeleton *sk, size_t i, size_t *len)
{
	*len = sk->pieces[i].len;
	return sk->pieces[i].text;
}

void tpl_skeleton_render(const struct tpl_skeleton *sk, size_t i, const struct tpl_vars *v,
			 struct strbuf *out)
{
	struct scope sc;

	if (sk->pieces[i].text) {
		sb_addn(out, sk->pieces[i].text, sk->pieces[i].len);
		return;
	}
	scope_of(&sc, v);
	render_one(sk->pieces[i].node, &sc, sk->html, out);
}

void tpl_skeleton_free(struct tpl_skeleton *sk)
{
	if (!sk)
		return;
	for (size_t i = 0; i < sk->n; i++)
		free(sk->pieces[i].text);
	free(sk->pieces);
	free(sk);
}
