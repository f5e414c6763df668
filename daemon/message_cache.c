/* message_cache.c: what the messages of one pass share (message.h,
 * message_cache_new): per language and target the shared template
 * variables and the bodies rendered ahead with their quoted-printable
 * lines; per session, method, SEQUENCE and DTSTAMP the calendar object up
 * to its ATTENDEE with most of its base64; the header lines that depend
 * on the configuration or the time alone. */
#include "message_internal.h"

#include "mime.h"
#include "template.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_VARS 32  /* languages times targets of one pass */
#define CACHE_HEADS 32 /* sessions times methods and SEQUENCEs */

/* A session or deadline as a key: a copy of what the message reads of it. */
struct target_key {
	bool session, deadline;
	char *uid, *summary, *location, *description;
	time_t start, end, due;
	bool cancelled, date_only;
};

#define CACHE_BODIES 8 /* messages about one target in one language */

/* A body rendered ahead (tpl_skeleton), with the quoted-printable of each
 * piece's whole lines: a piece's first bytes up to its first line break
 * (head) and those after its last (from tail) join the recipient's
 * pieces around them before they are encoded. Quoted-printable starts
 * afresh on each line, so the lines encode the same wherever they are. */
struct body {
	struct tpl_skeleton *sk;
	struct body_piece {
		size_t head, tail; /* head 0: no line break in the piece */
		char *qp;
		size_t qp_len;
	} *pieces;
};

struct body_entry {
	char *message;
	bool made;         /* false: the message has no template */
	struct body text, html; /* html.sk NULL: no HTML */
};

struct vars_entry {
	char *lang;
	struct target_key s, d;
	struct tpl_vars *v;
	struct body_entry bodies[CACHE_BODIES];
	size_t n_bodies, next_bodies;
};

struct head_entry {
	struct target_key s;
	enum ical_method method;
	int sequence;
	time_t now;
	struct cal_head h;
};

struct message_cache {
	const struct config *cfg;
	const struct calendar *cal;
	const struct templates *tpl;
	struct vars_entry vars[CACHE_VARS];
	size_t n_vars, next_vars;
	struct head_entry heads[CACHE_HEADS];
	size_t n_heads, next_heads;
	char *from, *reply_to; /* header lines, reply_to "" when there is none */
	char *date;            /* the Date line for date_at */
	time_t date_at;
};

static void key_session(struct target_key *k, const struct session *s)
{
	memset(k, 0, sizeof(*k));
	if (!s)
		return;
	k->session = true;
	k->uid = xstrdup(s->uid);
	k->summary = xstrdup(s->summary);
	k->location = xstrdup(s->location);
	k->description = xstrdup(s->description);
	k->start = s->start;
	k->end = s->end;
	k->cancelled = s->cancelled;
}

static void key_deadline(struct target_key *k, const struct deadline *d)
{
	memset(k, 0, sizeof(*k));
	if (!d)
		return;
	k->deadline = true;
	k->uid = xstrdup(d->uid);
	k->summary = xstrdup(d->summary);
	k->description = xstrdup(d->description);
	k->due = d->due;
	k->date_only = d->date_only;
}

static bool is_session(const struct target_key *k, const struct session *s)
{
	if (!s)
		return !k->session;
	return k->session && s->start == k->start && s->end == k->end &&
	       s->cancelled == k->cancelled && str_eq(s->uid, k->uid) &&
	       str_eq(s->summary, k->summary) && str_eq(s->location, k->location) &&
	       str_eq(s->description, k->description);
}

static bool is_deadline(const struct target_key *k, const struct deadline *d)
{
	if (!d)
		return !k->deadline;
	return k->deadline && d->due == k->due && d->date_only == k->date_only &&
	       str_eq(d->uid, k->uid) && str_eq(d->summary, k->summary) &&
	       str_eq(d->description, k->description);
}

static void key_free(struct target_key *k)
{
	free(k->uid);
	free(k->summary);
	free(k->location);
	free(k->description);
	memset(k, 0, sizeof(*k));
}

static void body_free(struct body *b)
{
	for (size_t i = 0; b->sk && i < tpl_skeleton_pieces(b->sk); i++)
		free(b->pieces[i].qp);
	free(b->pieces);
	tpl_skeleton_free(b->sk);
	memset(b, 0, sizeof(*b));
}

static void body_entry_free(struct body_entry *e)
{
	free(e->message);
	body_free(&e->text);
	body_free(&e->html);
	memset(e, 0, sizeof(*e));
}

static void vars_entry_free(struct vars_entry *e)
{
	for (size_t i = 0; i < e->n_bodies; i++)
		body_entry_free(&e->bodies[i]);
	free(e->lang);
	key_free(&e->s);
	key_free(&e->d);
	tpl_vars_free(e->v);
	memset(e, 0, sizeof(*e));
}

void cal_head_fill(struct cal_head *h, const struct ical_req *r)
{
	h->head = ical_build_head(r, &h->head_len);
	h->b64_src = h->head_len / 57 * 57;
	sb_init(&h->b64);
	mime_base64(&h->b64, h->head, h->b64_src);
}

void cal_head_free(struct cal_head *h)
{
	free(h->head);
	sb_free(&h->b64);
	memset(h, 0, sizeof(*h));
}

static void head_entry_free(struct head_entry *e)
{
	key_free(&e->s);
	cal_head_free(&e->h);
	memset(e, 0, sizeof(*e));
}

static void cache_clear(struct message_cache *c)
{
	for (size_t i = 0; i < c->n_vars; i++)
		vars_entry_free(&c->vars[i]);
	for (size_t i = 0; i < c->n_heads; i++)
		head_entry_free(&c->heads[i]);
	free(c->from);
	free(c->reply_to);
	free(c->date);
	memset(c, 0, sizeof(*c));
}

struct message_cache *message_cache_new(void)
{
	return xcalloc(1, sizeof(struct message_cache));
}

void message_cache_free(struct message_cache *c)
{
	if (!c)
		return;
	cache_clear(c);
	free(c);
}

/* Entries hold for one config, calendar and templates. */
void cache_use(struct message_cache *c, const struct config *cfg, const struct calendar *cal,
	       const struct templates *tpl)
{
	if (c->cfg == cfg && c->cal == cal && c->tpl == tpl)
		return;
	cache_clear(c);
	c->cfg = cfg;
	c->cal = cal;
	c->tpl = tpl;
}

/* The next slot of a ring of max entries: a free one, else the oldest. */
static size_t cache_slot(size_t *n, size_t *next, size_t max)
{
	size_t k;

	if (*n < max)
		return (*n)++;
	k = *next;
	*next = (*next + 1) % max;
	return k;
}

const struct tpl_vars *cache_vars_of(const struct vars_entry *e)
{
	return e->v;
}

struct vars_entry *cache_vars(struct message_cache *c, const struct config *cfg,
			      const struct calendar *cal, const struct message_req *req,
			      const char *lang)
{
	struct vars_entry *e;

	for (size_t i = 0; i < c->n_vars; i++) {
		e = &c->vars[i];
		if (str_eq(e->lang, lang) && is_session(&e->s, req->session) &&
		    is_deadline(&e->d, req->deadline))
			return e;
	}
	e = &c->vars[cache_slot(&c->n_vars, &c->next_vars, CACHE_VARS)];
	vars_entry_free(e);
	e->lang = xstrdup(lang);
	key_session(&e->s, req->session);
	key_deadline(&e->d, req->deadline);
	e->v = tpl_vars_new();
	message_set_shared(e->v, cfg, cal, req, lang);
	return e;
}

const char *cache_from_line(struct message_cache *c, const struct config *cfg)
{
	if (!c->from)
		c->from = message_from_line(cfg);
	return c->from;
}

const char *cache_reply_to_line(struct message_cache *c, const struct config *cfg)
{
	if (!c->reply_to)
		c->reply_to = message_reply_to_line(cfg);
	return c->reply_to;
}

const char *cache_date_line(struct message_cache *c, time_t now)
{
	if (!c->date || c->date_at != now) {
		free(c->date);
		c->date = message_date_line(now);
		c->date_at = now;
	}
	return c->date;
}

/* The names make_vars() sets for the recipient alone. */
static bool own_name(const char *name)
{
	return strncmp(name, "participant.", 12) == 0 || strncmp(name, "previous.", 9) == 0 ||
	       strncmp(name, "changed", 7) == 0 || strncmp(name, "attachment", 10) == 0 ||
	       strcmp(name, "calendar.attached") == 0;
}

static void body_make(struct body *b, struct tpl_skeleton *sk)
{
	size_t n = tpl_skeleton_pieces(sk);

	b->sk = sk;
	b->pieces = xcalloc(n ? n : 1, sizeof(*b->pieces));
	for (size_t i = 0; i < n; i++) {
		struct body_piece *p = &b->pieces[i];
		size_t len;
		const char *t = tpl_skeleton_text(sk, i, &len);
		const char *first = t ? memchr(t, '\n', len) : NULL;
		struct strbuf qp;

		if (!first)
			continue;
		p->head = (size_t)(first - t) + 1;
		p->tail = (size_t)((const char *)memrchr(t, '\n', len) - t) + 1;
		sb_init(&qp);
		mime_qp(&qp, t + p->head, p->tail - p->head);
		p->qp_len = qp.len;
		p->qp = sb_take(&qp);
	}
}

/* The message's bodies rendered ahead for the entry's language and target. */
static const struct body_entry *bodies(struct vars_entry *e, const struct templates *tpl,
					      const char *fallback, const char *message)
{
	struct body_entry *b;
	struct tpl_skeleton *text, *html;

	for (size_t i = 0; i < e->n_bodies; i++)
		if (str_eq(e->bodies[i].message, message))
			return &e->bodies[i];
	b = &e->bodies[cache_slot(&e->n_bodies, &e->next_bodies, CACHE_BODIES)];
	body_entry_free(b);
	b->message = xstrdup(message);
	b->made = tpl_skeleton_make(tpl, e->lang, fallback, message, e->v, own_name, &text, &html);
	if (b->made) {
		body_make(&b->text, text);
		if (html)
			body_make(&b->html, html);
	}
	return b;
}

/* The quoted-printable of the body for the recipient's v: the pieces
 * rendered ahead with their lines encoded ahead, the recipient's own
 * rendered and encoded with the partial lines around them. */
static char *body_qp(const struct body *b, const struct tpl_vars *v)
{
	struct strbuf out, pending;

	sb_init(&out);
	sb_init(&pending);
	for (size_t i = 0; i < tpl_skeleton_pieces(b->sk); i++) {
		const struct body_piece *p = &b->pieces[i];
		size_t len;
		const char *t = tpl_skeleton_text(b->sk, i, &len);

		if (!t) {
			tpl_skeleton_render(b->sk, i, v, &pending);
		} else if (!p->head) {
			sb_addn(&pending, t, len);
		} else {
			sb_addn(&pending, t, p->head);
			mime_qp(&out, pending.buf, pending.len);
			pending.len = 0;
			sb_addn(&out, p->qp, p->qp_len);
			sb_addn(&pending, t + p->tail, len - p->tail);
		}
	}
	mime_qp(&out, pending.buf, pending.len);
	sb_free(&pending);
	return sb_take(&out);
}

const struct cal_head *cache_cal_head(struct message_cache *c, const struct ical_req *r)
{
	struct head_entry *h;

	for (size_t i = 0; i < c->n_heads; i++) {
		h = &c->heads[i];
		if (h->method == r->method && h->sequence == r->sequence && h->now == r->now &&
		    is_session(&h->s, r->session))
			return &h->h;
	}
	h = &c->heads[cache_slot(&c->n_heads, &c->next_heads, CACHE_HEADS)];
	head_entry_free(h);
	key_session(&h->s, r->session);
	h->method = r->method;
	h->sequence = r->sequence;
	h->now = r->now;
	cal_head_fill(&h->h, r);
	return &h->h;
}

bool cache_bodies_qp(struct vars_entry *e, const struct templates *tpl, const char *fallback,
		     const char *message, const struct tpl_vars *v, char **text, char **html)
{
	const struct body_entry *b = bodies(e, tpl, fallback, message);

	*text = *html = NULL;
	if (!b->made)
		return false;
	*text = body_qp(&b->text, v);
	if (b->html.sk)
		*html = body_qp(&b->html, v);
	return true;
}
