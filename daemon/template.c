#include "template.h"
#include "template_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

const char *const tpl_known_names[] = {
	"participant.name", "participant.email", "participant.organisation", "participant.role",
	"programme.name", "organizer.name", "organizer.email", "contact.email",
	"sessions", "session.title", "session.when", "session.date", "session.start",
	"session.end", "session.location", "session.description", "session.number",
	"session.cancelled", "session.brief",
	"previous.when", "previous.date", "previous.start", "previous.end", "previous.brief",
	"previous.location", "changed", "changed.time", "changed.place",
	"deadline.title", "deadline.when", "deadline.date", "deadline.description",
	"attachments", "attachment.name", "calendar.attached", NULL,
};

/* The names above that are lists of items, usable only as {{#x}}/{{^x}}. */
static const char *const list_names[] = {"sessions", "attachments"};

/* ---- the tree ---- */

static struct node *node_add(struct node *parent, enum node_kind kind, const char *s, size_t len)
{
	struct node *n;

	/* Adjacent text merges, so rendering walks fewer nodes. */
	if (kind == N_TEXT && parent->nkids && parent->kids[parent->nkids - 1].kind == N_TEXT) {
		n = &parent->kids[parent->nkids - 1];
		n->s = xrealloc(n->s, n->len + len + 1);
		memcpy(n->s + n->len, s, len);
		n->len += len;
		n->s[n->len] = '\0';
		return n;
	}
	parent->kids = xgrow(parent->kids, &parent->cap, parent->nkids, sizeof(*parent->kids));
	n = &parent->kids[parent->nkids++];
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	n->s = xstrndup(s, len);
	n->len = len;
	return n;
}

static void node_free(struct node *n)
{
	for (size_t i = 0; i < n->nkids; i++)
		node_free(&n->kids[i]);
	free(n->kids);
	free(n->s);
	memset(n, 0, sizeof(*n));
}

/* ---- the parser ---- */

struct parser {
	const char *file;
	struct errlist *errs;
	size_t nerrs;
	struct node *stack[MAX_DEPTH + 1]; /* stack[0] is the root */
	int open_line[MAX_DEPTH + 1];
	int depth;
};

static void perr(struct parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void perr(struct parser *p, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errlist_vadd_at(p->errs, p->file, line, fmt, ap);
	va_end(ap);
	p->nerrs++;
}

static bool is_known(const char *name)
{
	for (size_t i = 0; tpl_known_names[i]; i++)
		if (strcmp(tpl_known_names[i], name) == 0)
			return true;
	return false;
}

static bool is_list(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(list_names); i++)
		if (strcmp(list_names[i], name) == 0)
			return true;
	return false;
}

static bool is_blank(const char *s, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

/* Finds the next "{{...}}" in s[from, len): 1 with its bounds (*open at
 * the "{{", *close just past the "}}"), 0 if none, -1 if "{{" is never
 * closed. Tags do not span lines, so a lost "}}" is reported where it is. */
static int next_tag(const char *s, size_t len, size_t from, size_t *open, size_t *close)
{
	const char *o = from < len ? memmem(s + from, len - from, "{{", 2) : NULL;
	const char *c;

	if (!o)
		return 0;
	*open = (size_t)(o - s);
	c = memmem(o + 2, len - *open - 2, "}}", 2);
	if (!c)
		return -1;
	*close = (size_t)(c - s) + 2;
	return 1;
}

static bool valid_name(const char *s, size_t n)
{
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* A tag's text for an error message: short, and cut on a UTF-8 boundary. */
static int shown_len(const char *s, size_t n)
{
	if (n <= 60)
		return (int)n;
	n = 60;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return (int)n;
}

static char sigil_of(const struct node *n)
{
	return n->kind == N_INVERTED ? '^' : '#';
}

/* Closes the innermost open section named name, reporting the ones left
 * open inside it; a close that matches nothing is reported and ignored. */
static void close_section(struct parser *p, int line, const char *name)
{
	int d = p->depth;

	while (d > 0 && strcmp(p->stack[d]->s, name) != 0)
		d--;
	if (d == 0) {
		perr(p, line, "{{/%s}} closes no open section", name);
		return;
	}
	for (int i = p->depth; i > d; i--)
		perr(p, p->open_line[i], "{{%c%s}} is not closed before {{/%s}} on line %d",
		     sigil_of(p->stack[i]), p->stack[i]->s, name, line);
	p->depth = d - 1;
}

static void open_section(struct parser *p, int line, enum node_kind kind, const char *name)
{
	for (int i = 1; i <= p->depth; i++)
		if (strcmp(p->stack[i]->s, name) == 0) {
			/* Re-entering a list inside itself multiplies output
			 * for nothing; refusing it bounds rendering time. */
			perr(p, line, "section %s is nested inside itself", name);
			return;
		}
	if (p->depth == MAX_DEPTH) {
		perr(p, line, "sections nested deeper than %d", MAX_DEPTH);
		return;
	}
	p->stack[p->depth + 1] = node_add(p->stack[p->depth], kind, name, strlen(name));
	p->open_line[++p->depth] = line;
}

/* Handles the tag s[0, n) ("{{" and "}}" included). */
static void handle_tag(struct parser *p, int line, const char *s, size_t n)
{
	const char *in = s + 2, *end = s + n - 2;
	char sigil = 0;
	char *name;

	while (in < end && (*in == ' ' || *in == '\t'))
		in++;
	if (in < end && (*in == '#' || *in == '^' || *in == '/' || *in == '!'))
		sigil = *in++;
	if (sigil == '!')
		return; /* a comment for template authors */
	while (in < end && (*in == ' ' || *in == '\t'))
		in++;
	while (end > in && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (!valid_name(in, (size_t)(end - in))) {
		perr(p, line, "bad placeholder %.*s", shown_len(s, n), s);
		return;
	}
	name = xstrndup(in, (size_t)(end - in));
	if (!is_known(name))
		perr(p, line, "unknown placeholder {{%s}}", name);
	else if (sigil == 0 && is_list(name))
		perr(p, line, "{{%s}} is a list: use {{#%s}}...{{/%s}}", name, name, name);
	else if (sigil == 0)
		node_add(p->stack[p->depth], N_VAR, name, strlen(name));
	else if (sigil == '/')
		close_section(p, line, name);
	else
		open_section(p, line, sigil == '#' ? N_SECTION : N_INVERTED, name);
	free(name);
}

/* A line holding nothing but one section tag (or comment) and blanks
 * vanishes with its line end, so sections leave no empty lines behind in
 * plain text (mustache's "standalone" rule). */
static bool standalone(struct parser *p, int line, const char *s, size_t len)
{
	size_t o, c, o2, c2;
	const char *in;

	if (next_tag(s, len, 0, &o, &c) != 1 || !is_blank(s, 0, o) || !is_blank(s, c, len) ||
	    next_tag(s, len, c, &o2, &c2) != 0)
		return false;
	in = s + o + 2;
	while (*in == ' ' || *in == '\t')
		in++;
	if (*in != '#' && *in != '^' && *in != '/' && *in != '!')
		return false;
	handle_tag(p, line, s + o, c - o);
	return true;
}

/* Parses one line s[0, len) (without its "\n"; nl says whether it had one). */
static void parse_line(struct parser *p, int line, const char *s, size_t len, bool nl,
		       bool allow_standalone)
{
	size_t pos = 0, o, c;

	if (allow_standalone && standalone(p, line, s, len))
		return;
	for (;;) {
		int r = next_tag(s, len, pos, &o, &c);

		if (r == 0) {
			node_add(p->stack[p->depth], N_TEXT, s + pos, len - pos);
			break;
		}
		if (r < 0) {
			perr(p, line, "\"{{\" without \"}}\" on the same line");
			node_add(p->stack[p->depth], N_TEXT, s + pos, len - pos);
			break;
		}
		node_add(p->stack[p->depth], N_TEXT, s + pos, o - pos);
		handle_tag(p, line, s + o, c - o);
		pos = c;
	}
	if (nl)
		node_add(p->stack[p->depth], N_TEXT, "\n", 1);
}

/* Parses text (normalised: "\n" line ends, valid UTF-8) whose first line
 * is line first_line of p->file, into root. True if no error. */
static bool parse_text(struct parser *p, struct node *root, const char *s, size_t len,
		       int first_line, bool allow_standalone)
{
	size_t before = p->nerrs, pos = 0;
	int line = first_line;

	root->kind = N_ROOT;
	p->stack[0] = root;
	p->depth = 0;
	while (pos < len) {
		const char *nl = memchr(s + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - s) : len;

		parse_line(p, line++, s + pos, end - pos, nl != NULL, allow_standalone);
		pos = nl ? end + 1 : len;
	}
	for (int d = p->depth; d > 0; d--)
		perr(p, p->open_line[d], "{{%c%s}} is not closed", sigil_of(p->stack[d]),
		     p->stack[d]->s);
	return p->nerrs == before;
}

/* Checks every line for UTF-8 without control characters and returns a
 * copy with "\n" line ends and no byte-order mark; NULL after reporting
 * the first bad line (the rest of such a file is noise). */
static char *normalise(const char *file, const char *buf, size_t len, size_t *outlen,
		       struct errlist *errs)
{
	struct strbuf sb;
	size_t pos = 0;
	int line = 1;

	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	sb_init(&sb);
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - buf) : len, n = end - pos;

		if (n > 0 && buf[end - 1] == '\r')
			n--;
		if (!str_valid_utf8(buf + pos, n)) {
			errlist_add(errs, "%s:%d: invalid UTF-8 or a control character", file, line);
			sb_free(&sb);
			return NULL;
		}
		sb_addn(&sb, buf + pos, n);
		if (nl)
			sb_addc(&sb, '\n');
		pos = nl ? end + 1 : len;
		line++;
	}
	*outlen = sb.len;
	return sb_take(&sb);
}

/* The .txt: "Subject: ..." on line 1, a blank line 2, the body from 3. */
static bool parse_txt(struct tpl_message *m, const char *file, const char *s, size_t len,
		      struct errlist *errs)
{
	struct parser p = {.file = file, .errs = errs};
	const char *nl = memchr(s, '\n', len);
	size_t l1 = nl ? (size_t)(nl - s) : len, from = 8, to = l1;
	const char *body = nl ? nl + 1 : s + len;
	const char *nl2;
	size_t l2;
	int first = 3;

	if (l1 < 8 || strncasecmp(s, "Subject:", 8) != 0) {
		perr(&p, 1, "missing Subject line (the first line must be \"Subject: ...\")");
		return false;
	}
	while (from < to && (s[from] == ' ' || s[from] == '\t'))
		from++;
	while (to > from && (s[to - 1] == ' ' || s[to - 1] == '\t'))
		to--;
	if (from == to)
		perr(&p, 1, "empty Subject line");
	parse_text(&p, &m->subject, s + from, to - from, 1, false);
	if (body < s + len) {
		nl2 = memchr(body, '\n', (size_t)(s + len - body));
		l2 = nl2 ? (size_t)(nl2 - body) : (size_t)(s + len - body);
		if (!is_blank(body, 0, l2)) {
			perr(&p, 2, "expected a blank line after the Subject line");
			first = 2;
		} else {
			body = nl2 ? nl2 + 1 : s + len;
		}
	}
	parse_text(&p, &m->text, body, (size_t)(s + len - body), first, true);
	return p.nerrs == 0;
}

static bool parse_file(struct tpl_message *m, const char *file, const char *buf, size_t len,
		       bool html, struct errlist *errs)
{
	struct parser p = {.file = file, .errs = errs};
	size_t n;
	char *s = normalise(file, buf, len, &n, errs);
	bool ok;

	if (!s)
		return false;
	if (html) {
		m->has_html = true;
		ok = parse_text(&p, &m->html, s, n, 1, true);
	} else {
		ok = parse_txt(m, file, s, n, errs);
	}
	free(s);
	return ok;
}

static void message_free(struct tpl_message *m)
{
	free(m->lang);
	free(m->name);
	node_free(&m->subject);
	node_free(&m->text);
	node_free(&m->html);
}

/* ---- the set of templates ---- */

static struct tpl_message *find(const struct templates *t, const char *lang, const char *message)
{
	for (size_t i = 0; t && lang && i < t->n; i++)
		if (strcmp(t->msgs[i].lang, lang) == 0 && strcmp(t->msgs[i].name, message) == 0)
			return &t->msgs[i];
	return NULL;
}

/* Adds m (taking it over), replacing a message of the same language and
 * name: a site's message replaces the shipped one whole, .html included. */
static void put(struct templates *t, struct tpl_message *m)
{
	struct tpl_message *old = find(t, m->lang, m->name);

	if (old) {
		message_free(old);
		*old = *m;
		return;
	}
	t->msgs = xgrow(t->msgs, &t->cap, t->n, sizeof(*t->msgs));
	t->msgs[t->n++] = *m;
}

void tpl_free(struct templates *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		message_free(&t->msgs[i]);
	free(t->msgs);
	free(t);
}

struct templates *tpl_parse_mem(const char *lang, const char *message, const char *txt,
				size_t txt_len, const char *html, size_t html_len,
				struct errlist *errs)
{
	struct tpl_message m = {.lang = xstrdup(lang), .name = xstrdup(message)};
	char *file = xasprintf("%s/%s.txt", lang, message);
	bool ok = parse_file(&m, file, txt, txt_len, false, errs);
	struct templates *t;

	free(file);
	if (html) {
		file = xasprintf("%s/%s.html", lang, message);
		ok = parse_file(&m, file, html, html_len, true, errs) && ok;
		free(file);
	}
	if (!ok) {
		message_free(&m);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	put(t, &m);
	return t;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && strcmp(s + n - k, suffix) == 0;
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Reads and parses path into m; false after reporting. */
static bool load_file(struct tpl_message *m, const char *path, bool html, struct errlist *errs)
{
	size_t len;
	char *buf = read_file(path, &len);
	bool ok;

	if (!buf) {
		errlist_add(errs, "%s: cannot read: %s", path, strerror(errno));
		return false;
	}
	ok = parse_file(m, path, buf, len, html, errs);
	free(buf);
	return ok;
}

/* Loads dir/lang/name.txt and name.html (when present) into t. */
static bool load_message(struct templates *t, const char *dir, const char *lang,
			 const char *name, struct errlist *errs)
{
	struct tpl_message m = {.lang = xstrdup(lang), .name = xstrdup(name)};
	char *txt = xasprintf("%s/%s/%s.txt", dir, lang, name);
	char *html = xasprintf("%s/%s/%s.html", dir, lang, name);
	bool ok = load_file(&m, txt, false, errs);

	if (exists(html))
		ok = load_file(&m, html, true, errs) && ok;
	if (ok)
		put(t, &m);
	else
		message_free(&m);
	free(txt);
	free(html);
	return ok;
}

static int visible(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/* Loads the messages of one language directory; false on any error. */
static bool load_language(struct templates *t, const char *dir, const char *lang,
			  struct errlist *errs)
{
	char *path = xasprintf("%s/%s", dir, lang);
	struct dirent **ents;
	int n = scandir(path, &ents, visible, alphasort);
	bool ok = n >= 0;

	if (n < 0)
		errlist_add(errs, "%s: cannot read directory: %s", path, strerror(errno));
	for (int i = 0; i < n; i++) {
		const char *f = ents[i]->d_name;
		size_t len = strlen(f);

		if (ends_with(f, ".txt")) {
			char *name = xstrndup(f, len - 4);

			ok = load_message(t, dir, lang, name, errs) && ok;
			free(name);
		} else if (ends_with(f, ".html")) {
			char *txt = xasprintf("%s/%.*s.txt", path, (int)(len - 5), f);

			if (!exists(txt)) {
				errlist_add(errs, "%s/%s: no %.*s.txt beside it (the subject comes from the .txt)",
					    path, f, (int)(len - 5), f);
				ok = false;
			}
			free(txt);
		}
		free(ents[i]);
	}
	free(ents);
	free(path);
	return ok;
}

/* Loads every language directory of dir into t; other files are ignored. */
static bool load_dir(struct templates *t, const char *dir, bool required, struct errlist *errs)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, visible, alphasort);
	bool ok = true;

	if (n < 0) {
		if (!required && errno == ENOENT)
			return true;
		errlist_add(errs, "%s: cannot read template directory: %s", dir, strerror(errno));
		return false;
	}
	for (int i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, ents[i]->d_name);

		if (is_dir(path))
			ok = load_language(t, dir, ents[i]->d_name, errs) && ok;
		free(path);
		free(ents[i]);
	}
	free(ents);
	return ok;
}

struct templates *tpl_load(const char *shipped_dir, const char *site_dir, struct errlist *errs)
{
	struct templates *t = xcalloc(1, sizeof(*t));
	bool ok = load_dir(t, shipped_dir, true, errs);

	/* The site's messages load after, so put() lets them replace. */
	if (site_dir)
		ok = load_dir(t, site_dir, false, errs) && ok;
	if (!ok) {
		tpl_free(t);
		return NULL;
	}
	return t;
}

const struct tpl_message *tpl_resolve(const struct templates *t, const char *lang,
				      const char *fallback, const char *message)
{
	const struct tpl_message *m = find(t, lang, message);

	return m ? m : find(t, fallback, message);
}

bool tpl_has(const struct templates *t, const char *lang, const char *fallback,
	     const char *message)
{
	return tpl_resolve(t, lang, fallback, message) != NULL;
}
