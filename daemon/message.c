#include "message.h"
#include "message_internal.h"

#include "material.h"

#include "datefmt.h"
#include "ical.h"
#include "mime.h"
#include "util.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What a message needs and carries, by its template name (SPEC §2). */
struct kind {
	enum calpart cal;
	bool needs_session, needs_deadline;
};

struct file {
	char *name, *data; /* name: the file's base name, shown to the reader */
	size_t size;
};

struct files {
	struct file *items;
	size_t n, cap;
};

static struct kind kind_of(const char *message, bool has_session)
{
	struct kind k = {CAL_NONE, false, false};

	if (str_eq(message, "invite") || str_eq(message, "session-reminder") ||
	    str_eq(message, "update")) {
		k.cal = CAL_REQUEST;
		k.needs_session = true;
	} else if (str_eq(message, "cancel")) {
		k.cal = CAL_CANCEL;
		k.needs_session = true;
	} else if (str_eq(message, "deadline-reminder")) {
		k.needs_deadline = true;
	} else if (!str_eq(message, "material") && has_session) {
		k.cal = CAL_REQUEST; /* a manual send about a session */
	}
	return k;
}

enum calpart message_calpart(const char *message, bool has_session,
			     const struct participant *p)
{
	enum calpart cal = kind_of(message, has_session).cal;

	/* A REQUEST puts the session in the recipient's calendar, and kallad
	 * follows with updates and cancels only what registered participants
	 * hold: others (a rule to `all`, say) get the text without it. */
	return cal == CAL_REQUEST && p && p->status != PS_REGISTERED ? CAL_NONE : cal;
}

/* "invite to anna@example.org (session UID)": names the delivery in errors. */
static char *describe(const struct message_req *req)
{
	const char *to = req->p && req->p->email ? req->p->email : "?";

	if (req->session)
		return xasprintf("%s to %s (session %s)", req->message, to, req->session->uid);
	if (req->deadline)
		return xasprintf("%s to %s (deadline %s)", req->message, to, req->deadline->uid);
	return xasprintf("%s to %s", req->message, to);
}

/* --- template variables ------------------------------------------------ */

static void set_clean(struct tpl_vars *v, const char *name, const char *value, unsigned flags)
{
	char *c = mime_sanitize(value, flags);

	tpl_vars_set(v, name, c);
	free(c);
}

static void set_owned(struct tpl_vars *v, const char *name, char *value)
{
	tpl_vars_set(v, name, value);
	free(value);
}

/* The session's place, from 1, among the sessions that take place: also
 * right for a cancelled or removed session. */
static int session_number(const struct calendar *cal, const struct session *s)
{
	int n = 1;

	for (size_t i = 0; cal && i < cal->n_sessions; i++) {
		const struct session *o = &cal->sessions[i];

		if (!o->cancelled && o->start < s->start && !str_eq(o->uid, s->uid))
			n++;
	}
	return n;
}

/* PREFIX.when, .date, .brief, .start, .end and .location of s: the same
 * for the session as it is and as the participant's calendar held it. */
static void set_time_and_place(struct tpl_vars *v, const char *lang, const char *prefix,
			       const struct session *s)
{
	char name[32];

#define NAME(field) (snprintf(name, sizeof(name), "%s.%s", prefix, field), name)
	set_owned(v, NAME("when"), datefmt_range(lang, s->start, s->end));
	set_owned(v, NAME("date"), datefmt_date(lang, s->start));
	set_owned(v, NAME("brief"), datefmt_brief(lang, s->start));
	set_owned(v, NAME("start"), datefmt_time(lang, s->start));
	set_owned(v, NAME("end"), datefmt_time(lang, s->end));
	set_clean(v, NAME("location"), s->location, 0);
#undef NAME
}

static void set_session(struct tpl_vars *v, const char *lang, const struct session *s, int number)
{
	set_clean(v, "session.title", s->summary, 0);
	set_time_and_place(v, lang, "session", s);
	set_clean(v, "session.description", s->description, MIME_KEEP_NEWLINES);
	set_owned(v, "session.number", xasprintf("%d", number));
	/* A cancel says whether the session itself is off, or only the
	 * participant's place in it. */
	set_clean(v, "session.cancelled", s->cancelled ? "yes" : "", 0);
}

/* An update's "before": previous.* as the participant's calendar held the
 * session, and changed.time / changed.place ("yes" or empty) saying what
 * moved, changed when either did. Nothing when kallad has no older copy. */
static void set_previous(struct tpl_vars *v, const char *lang, const struct session *now,
			 const struct session *old)
{
	bool time = old->start != now->start || old->end != now->end;
	bool place = !str_eq(old->location, now->location);

	set_time_and_place(v, lang, "previous", old);
	tpl_vars_set(v, "changed.time", time ? "yes" : "");
	tpl_vars_set(v, "changed.place", place ? "yes" : "");
	tpl_vars_set(v, "changed", time || place ? "yes" : "");
}

static void set_deadline(struct tpl_vars *v, const char *lang, const struct deadline *d)
{
	/* A date-only deadline passes at the end of its day: name that day. */
	time_t day = d->date_only ? d->due - 1 : d->due;

	set_clean(v, "deadline.title", d->summary, 0);
	set_owned(v, "deadline.when", d->date_only ? datefmt_date(lang, day) : datefmt_when(lang, day));
	set_owned(v, "deadline.date", datefmt_date(lang, day));
	set_clean(v, "deadline.description", d->description, MIME_KEEP_NEWLINES);
}

static const char *contact_email(const struct config *cfg)
{
	return !str_empty(cfg->reply_to) ? cfg->reply_to : cfg->organizer_email;
}

/* What every recipient of the target shares: the programme, the
 * organizer, the sessions, and the message's session or deadline. */
void message_set_shared(struct tpl_vars *v, const struct config *cfg,
			const struct calendar *cal, const struct message_req *req,
			const char *lang)
{
	char *display, *addr;
	int number = 1;

	set_clean(v, "programme.name", cfg->name, 0);
	set_clean(v, "organizer.name", cfg->organizer_name, 0);
	set_clean(v, "organizer.email", cfg->organizer_email, 0);
	if (mime_split_address(contact_email(cfg), &display, &addr)) {
		tpl_vars_set(v, "contact.email", addr);
		free(display);
		free(addr);
	}
	for (size_t i = 0; cal && i < cal->n_sessions; i++)
		if (!cal->sessions[i].cancelled)
			set_session(tpl_vars_item(v, "sessions"), lang, &cal->sessions[i], number++);
	if (req->session)
		set_session(v, lang, req->session, session_number(cal, req->session));
	if (req->deadline)
		set_deadline(v, lang, req->deadline);
}

/* The recipient's variables; with shared (from the cache) as their
 * parent, or else with the shared ones set in them too. */
static struct tpl_vars *make_vars(const struct config *cfg, const struct calendar *cal,
				  const struct message_req *req, const char *lang,
				  const struct files *f, const struct vars_entry *shared,
				  enum calpart calpart)
{
	struct tpl_vars *v = tpl_vars_new();

	set_clean(v, "participant.name", req->p->name, MIME_NAME);
	set_clean(v, "participant.email", req->p->email, 0);
	set_clean(v, "participant.organisation", req->p->organisation, 0);
	set_clean(v, "participant.role", req->p->role, 0);
	/* Whether this message carries the calendar: not for one a rule
	 * reaches who is not registered (message_calpart). */
	set_clean(v, "calendar.attached", calpart != CAL_NONE ? "yes" : "", 0);
	if (shared)
		tpl_vars_set_parent(v, cache_vars_of(shared));
	else
		message_set_shared(v, cfg, cal, req, lang);
	if (req->session && req->previous)
		set_previous(v, lang, req->session, req->previous);
	for (size_t i = 0; i < f->n; i++)
		set_clean(tpl_vars_item(v, "attachments"), "attachment.name", f->items[i].name, 0);
	return v;
}

/* --- attachments --------------------------------------------------------- */

static void files_free(struct files *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->items[i].name);
		free(f->items[i].data);
	}
	free(f->items);
}

/* Read only from beneath [programme] material: the row comes from a
 * database another system writes (material.h). */
static bool add_file(struct files *f, const struct config *cfg, const struct registrations *reg,
		     const struct attachment *a, const char *what, struct errlist *errs)
{
	size_t len = 0;
	char *why = NULL, *data = material_read(cfg->material, a->path, &len, &why);
	const char *slash = strrchr(a->path, '/');

	if (!data) {
		errlist_add(errs, "%s: %s: attachments row (%s, %s): path \"%s\" %s", what,
			    reg->path ? reg->path : "registrations", a->email, a->message, a->path, why);
		free(why);
		return false;
	}
	f->items = xgrow(f->items, &f->cap, f->n, sizeof(*f->items));
	f->items[f->n++] = (struct file){xstrdup(slash ? slash + 1 : a->path), data, len};
	return true;
}

/* Every file of reg's rows for this participant and message, or false
 * (naming each file that failed) so that no partial mail goes out. */
static bool load_files(const struct config *cfg, const struct registrations *reg,
		       const struct message_req *req, const char *what, struct files *f,
		       struct errlist *errs)
{
	struct attachment *rows = NULL;
	size_t n = reg ? reg_attachments(reg, req->p->email, req->message, &rows) : 0;
	bool ok = true;

	if (n == REG_ATTACHMENTS_FAILED) {
		errlist_add(errs, "%s: attachments: the registration database could not be read",
			    what);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		ok = add_file(f, cfg, reg, &rows[i], what, errs) && ok;
	reg_attachments_free(rows, n);
	return ok;
}

/* --- assembly ------------------------------------------------------------ */

/* text and html: as rendered, or (qp) already quoted-printable. */
static struct mime_part *text_body(const char *text, const char *html, bool qp)
{
	struct mime_part *(*leaf)(const char *, const char *, const char *, size_t,
				  enum mime_encoding) = qp ? mime_leaf_encoded : mime_leaf;
	struct mime_part *plain = leaf("text/plain; charset=UTF-8", NULL, text, strlen(text),
				       MIME_QUOTED_PRINTABLE);
	struct mime_part *alt;

	if (!html)
		return plain;
	alt = mime_multipart("alternative");
	mime_add(alt, plain);
	mime_add(alt, leaf("text/html; charset=UTF-8", NULL, html, strlen(html),
			   MIME_QUOTED_PRINTABLE));
	return alt;
}

static void add_files(struct mime_part *mixed, const struct files *f)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct file *file = &f->items[i];
		char *name = mime_name_param(file->name);
		char *type = xasprintf("%s; %s", mime_type_for_name(file->name), name);
		char *disp = mime_disposition(file->name);

		mime_add(mixed, mime_leaf(type, disp, file->data, file->size, MIME_BASE64));
		free(name);
		free(type);
		free(disp);
	}
}

/* M1: mixed { alternative { plain, html?, calendar }, invite.ics, files }.
 * Both calendar parts are the same base64 text (ics64, n64 bytes). */
static struct mime_part *structure(const char *text, const char *html, bool qp,
				   const char *ics64, size_t n64, enum calpart cal,
				   const struct files *f)
{
	struct mime_part *body = text_body(text, html, qp), *mixed, *alt;
	char *type;

	if (cal == CAL_NONE && f->n == 0)
		return body;
	mixed = mime_multipart("mixed");
	if (cal == CAL_NONE) {
		mime_add(mixed, body);
	} else {
		if (html) {
			alt = body;
		} else {
			alt = mime_multipart("alternative");
			mime_add(alt, body);
		}
		type = xasprintf("text/calendar; charset=UTF-8; method=%s",
				 ical_method_name(cal == CAL_CANCEL ? ICAL_KIND_CANCEL : ICAL_KIND_REQUEST));
		mime_add(alt, mime_leaf_encoded(type, NULL, ics64, n64, MIME_BASE64));
		free(type);
		mime_add(mixed, alt);
		mime_add(mixed, mime_leaf_encoded("application/ics; name=\"invite.ics\"",
						  "attachment; filename=\"invite.ics\"", ics64, n64,
						  MIME_BASE64));
	}
	add_files(mixed, f);
	return mixed;
}

static void sender(const struct config *cfg, char **display, char **addr)
{
	if (mime_split_address(cfg->from, display, addr))
		return;
	*display = xstrdup(cfg->organizer_name ? cfg->organizer_name : "");
	*addr = xstrdup(cfg->organizer_email ? cfg->organizer_email : "");
}

char *message_from_line(const struct config *cfg)
{
	struct strbuf sb;
	char *display, *addr;

	sb_init(&sb);
	sender(cfg, &display, &addr);
	mime_header_mailbox(&sb, "From", display, addr);
	free(display);
	free(addr);
	return sb_take(&sb);
}

char *message_reply_to_line(const struct config *cfg)
{
	struct strbuf sb;
	char *display, *addr;

	sb_init(&sb);
	if (mime_split_address(cfg->reply_to, &display, &addr)) {
		mime_header_mailbox(&sb, "Reply-To", display, addr);
		free(display);
		free(addr);
	}
	return sb_take(&sb);
}

char *message_date_line(time_t now)
{
	struct strbuf sb;

	sb_init(&sb);
	mime_header_date(&sb, now);
	return sb_take(&sb);
}

static void headers(struct strbuf *sb, const struct config *cfg, const struct message_req *req,
		    const char *subject)
{
	struct message_cache *c = req->cache;
	char *from = NULL, *reply = NULL, *date = NULL, *id;

	sb_add(sb, c ? cache_from_line(c, cfg) : (from = message_from_line(cfg)));
	mime_header_mailbox(sb, "To", req->p->name, req->p->email);
	sb_add(sb, c ? cache_reply_to_line(c, cfg) : (reply = message_reply_to_line(cfg)));
	mime_header_text(sb, "Subject", subject);
	sb_add(sb, c ? cache_date_line(c, req->now) : (date = message_date_line(req->now)));
	id = message_id(req->id_from ? req->id_from : cfg->organizer_email, req->key, req->id_salt);
	sb_addf(sb, "Message-ID: %s\r\n", id);
	free(id);
	sb_add(sb, "MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n");
	free(from);
	free(reply);
	free(date);
}

/* The calendar object in base64, as the calendar part and invite.ics
 * carry it: the head's whole lines from the cache when there is one, the
 * rest (the head's last bytes, ATTENDEE, the closing lines) encoded here. */
static char *calendar_base64(const struct config *cfg, const struct message_req *req,
			     enum calpart cal, size_t *n)
{
	struct ical_req r = {
		.method = cal == CAL_CANCEL ? ICAL_KIND_CANCEL : ICAL_KIND_REQUEST,
		.session = req->session,
		.sequence = req->sequence,
		.organizer_name = cfg->organizer_name,
		.organizer_email = req->organizer ? req->organizer : cfg->organizer_email,
		.attendee_name = req->p->name,
		.attendee_email = req->p->email,
		.now = req->now,
	};
	struct cal_head own = {0};
	const struct cal_head *h;
	struct strbuf rest, out;

	if (req->cache) {
		h = cache_cal_head(req->cache, &r);
	} else {
		cal_head_fill(&own, &r);
		h = &own;
	}
	sb_init(&rest);
	sb_addn(&rest, h->head + h->b64_src, h->head_len - h->b64_src);
	ical_add_attendee(&rest, &r);
	sb_init(&out);
	sb_addn(&out, h->b64.buf, h->b64.len);
	if (h->b64.len && rest.len)
		sb_add(&out, "\r\n");
	mime_base64(&out, rest.buf, rest.len);
	sb_free(&rest);
	cal_head_free(&own);
	*n = out.len;
	return sb_take(&out);
}

/* Checks what the message kind needs before anything is built. */
static bool check_req(const struct config *cfg, const struct templates *tpl,
		      const struct message_req *req, struct kind k, const char *lang,
		      const char *what, struct errlist *errs)
{
	if (k.needs_session && !req->session) {
		errlist_add(errs, "%s: message %s needs a session", what, req->message);
		return false;
	}
	if (k.needs_deadline && !req->deadline) {
		errlist_add(errs, "%s: message %s needs a deadline", what, req->message);
		return false;
	}
	if (k.cal != CAL_NONE && (str_caseeq(req->p->email, cfg->organizer_email) ||
				  str_caseeq(req->p->email, req->organizer))) {
		errlist_add(errs, "%s: the recipient is the organizer (INTEROP I11)", what);
		return false;
	}
	if (!tpl || !tpl_has(tpl, lang, cfg->language, req->message)) {
		errlist_add(errs, "%s: no template %s in language %s or %s", what, req->message,
			    req->p->language ? req->p->language : "-",
			    cfg->language ? cfg->language : "-");
		return false;
	}
	return true;
}

/* The subject, text and HTML of the message; from the bodies rendered
 * ahead when the pass shares them (shared: the text and HTML then come
 * quoted-printable). */
static bool render(const struct templates *tpl, const struct config *cfg, const char *lang,
		   const struct message_req *req, const struct tpl_vars *v,
		   struct vars_entry *shared, char **subject, char **text, char **html,
		   const char *what, struct errlist *errs)
{
	struct errlist e = {0};
	bool ok;

	*subject = *text = *html = NULL;
	if (shared)
		ok = cache_bodies_qp(shared, tpl, cfg->language, req->message, v, text, html) &&
		     tpl_render_subject(tpl, lang, cfg->language, req->message, v, subject, &e);
	else
		ok = tpl_render(tpl, lang, cfg->language, req->message, v, subject, text, html, &e);
	for (size_t i = 0; i < e.n; i++)
		errlist_add(errs, "%s: %s", what, e.items[i]);
	if (!ok && e.n == 0)
		errlist_add(errs, "%s: template %s did not render", what, req->message);
	errlist_free(&e);
	return ok;
}

/* The participant's language when the message exists in it, else the
 * programme's: dates must speak the language the template does. */
static const char *language(const struct config *cfg, const struct templates *tpl,
			    const struct message_req *req)
{
	const char *own = req->p->language;

	if (!str_empty(own) && tpl && tpl_has(tpl, own, own, req->message))
		return own;
	return !str_empty(cfg->language) ? cfg->language : "en";
}

char *message_build(const struct config *cfg, const struct calendar *cal,
		    const struct registrations *reg, const struct templates *tpl,
		    const struct message_req *req, size_t *len, struct errlist *errs)
{
	struct kind k = kind_of(req->message, req->session != NULL);

	k.cal = message_calpart(req->message, req->session != NULL, req->p);
	const char *lang = language(cfg, tpl, req);
	char *what = describe(req), *subject = NULL, *text = NULL, *html = NULL, *ics64 = NULL;
	size_t n64 = 0;
	struct files f = {0};
	struct tpl_vars *v = NULL;
	struct vars_entry *shared;
	struct strbuf sb;
	struct mime_part *root;
	char *out = NULL;

	if (req->cache)
		cache_use(req->cache, cfg, cal, tpl);
	if (!check_req(cfg, tpl, req, k, lang, what, errs) ||
	    !load_files(cfg, reg, req, what, &f, errs))
		goto done;
	shared = req->cache ? cache_vars(req->cache, cfg, cal, req, lang) : NULL;
	v = make_vars(cfg, cal, req, lang, &f, shared, k.cal);
	if (!render(tpl, cfg, lang, req, v, shared, &subject, &text, &html, what, errs))
		goto done;
	if (k.cal != CAL_NONE)
		ics64 = calendar_base64(cfg, req, k.cal, &n64);
	root = structure(text, html, shared != NULL, ics64, n64, k.cal, &f);
	sb_init(&sb);
	headers(&sb, cfg, req, subject);
	mime_write(&sb, root, req->key);
	mime_free(root);
	if (len)
		*len = sb.len;
	out = sb_take(&sb);
done:
	tpl_vars_free(v);
	files_free(&f);
	free(what);
	free(subject);
	free(text);
	free(html);
	free(ics64);
	return out;
}

/* The hash of salt|key, or of key alone without a salt (programmes whose
 * ledger began before salts: their Message-IDs stay as they were). */
static void id_hash(const char *key, const char *salt, char hash[33])
{
	char *salted;

	if (!salt || !*salt) {
		hash_hex(key ? key : "", key ? strlen(key) : 0, hash);
		return;
	}
	salted = xasprintf("%s|%s", salt, key ? key : "");
	hash_hex(salted, strlen(salted), hash);
	free(salted);
}

bool message_id_is(const char *id, const char *key, const char *salt)
{
	char hash[33];

	id_hash(key, salt, hash);
	return strcspn(id, "@") == 32 && strncasecmp(hash, id, 32) == 0;
}

char *message_id(const char *organizer_email, const char *key, const char *salt)
{
	const char *at = organizer_email ? strrchr(organizer_email, '@') : NULL;
	struct strbuf dom;
	char hash[33], *id;

	id_hash(key, salt, hash);
	sb_init(&dom);
	for (const char *p = at ? at + 1 : ""; *p; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-')
			sb_addc(&dom, *p);
	if (dom.len == 0)
		sb_add(&dom, "localhost");
	id = xasprintf("<%s@%s>", hash, dom.buf);
	sb_free(&dom);
	return id;
}
