/* inbound.c: replies and bounces as mail clients and MTAs write them.
 *
 * Outlook, Thunderbird, Gmail and Apple Mail all answer an invitation with
 * a text/calendar part carrying METHOD:REPLY, but place it differently:
 * the whole message, an alternative beside text/plain, or an attachment
 * (application/ics or text/calendar, often base64). So every leaf of the
 * MIME tree is looked at, except what is inside an attached message: a
 * bounce returns kallad's own invitation, which must not read as anyone's
 * answer. A DSN is multipart/report; report-type=delivery-status (or
 * global-delivery-status, RFC 6533), whose message/delivery-status part is
 * blocks of header fields (RFC 3464). */
#include "inbound.h"

#include "util.h"

#include <ctype.h>
#include <gmime/gmime.h>
#include <libical/ical.h>
#include <string.h>

static void gmime_once(void)
{
	static bool done;

	if (!done) {
		g_mime_init();
		done = true;
	}
}

static char *lower_dup(const char *s)
{
	char *out = xstrdup(s);

	for (char *p = out; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

/* An address from "mailto:X", "rfc822; X" or "<X>", lower case. */
static char *bare_address(const char *v)
{
	const char *semi = strchr(v, ';');
	char *copy, *a, *out;
	size_t n;

	if (strncasecmp(v, "mailto:", 7) == 0)
		v += 7;
	else if (semi)
		v = semi + 1;
	copy = xstrdup(v);
	a = str_trim(copy);
	n = strlen(a);
	while (n && isspace((unsigned char)a[n - 1]))
		a[--n] = '\0';
	if (*a == '<' && n > 1 && a[n - 1] == '>') {
		a[n - 1] = '\0';
		a++;
	}
	out = *a ? lower_dup(a) : NULL;
	free(copy);
	return out;
}

/* The decoded bytes of a leaf part, in UTF-8 for text parts. */
static char *part_text(GMimeObject *obj)
{
	GMimeDataWrapper *dw;
	GMimeStream *mem;
	GByteArray *bytes;
	char *out;

	if (GMIME_IS_TEXT_PART(obj)) {
		char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(obj));

		out = xstrdup(t);
		g_free(t);
		return out;
	}
	if (!GMIME_IS_PART(obj) || !(dw = g_mime_part_get_content(GMIME_PART(obj))))
		return NULL;
	mem = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(dw, mem);
	bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	/* An empty part has no buffer at all. */
	out = bytes->len ? xstrndup((const char *)bytes->data, bytes->len) : xstrdup("");
	g_object_unref(mem);
	return out;
}

static bool is_type(GMimeObject *obj, const char *type, const char *subtype)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);

	return ct && g_mime_content_type_is_type(ct, type, subtype);
}

/* ---- iMIP REPLY --------------------------------------------------------- */

/* The ATTENDEE of a REPLY: the one that is the sender when there are
 * several (a client copying the whole list), else the first. */
static icalproperty *reply_attendee(icalcomponent *ev, const char *from)
{
	icalproperty *first = icalcomponent_get_first_property(ev, ICAL_ATTENDEE_PROPERTY);

	for (icalproperty *p = first; p && from;
	     p = icalcomponent_get_next_property(ev, ICAL_ATTENDEE_PROPERTY)) {
		const char *v = icalproperty_get_attendee(p);
		char *addr = v ? bare_address(v) : NULL;
		bool same = addr && str_eq(addr, from);

		free(addr);
		if (same)
			return p;
	}
	return first;
}

static bool read_reply(const char *text, struct inbound *in)
{
	icalcomponent *cal = icalparser_parse_string(text), *ev;
	icalproperty *att;
	icalparameter *ps;
	bool ok = false;

	if (!cal)
		return false;
	if (icalcomponent_isa(cal) == ICAL_VCALENDAR_COMPONENT &&
	    icalcomponent_get_method(cal) == ICAL_METHOD_REPLY &&
	    (ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT)) &&
	    icalcomponent_get_uid(ev) && (att = reply_attendee(ev, in->from)) &&
	    icalproperty_get_attendee(att) &&
	    (ps = icalproperty_get_first_parameter(att, ICAL_PARTSTAT_PARAMETER))) {
		struct icaltimetype st = icalcomponent_get_dtstamp(ev);
		const char *word = icalparameter_enum_to_string(icalparameter_get_partstat(ps));

		in->uid = xstrdup(icalcomponent_get_uid(ev));
		in->attendee = bare_address(icalproperty_get_attendee(att));
		in->partstat = lower_dup(word ? word : "x-unknown");
		in->sequence = icalcomponent_get_sequence(ev);
		if (in->sequence < 0)
			in->sequence = 0;
		in->dtstamp = icaltime_is_null_time(st)
				      ? 0
				      : icaltime_as_timet_with_zone(st, icaltimezone_get_utc_timezone());
		ok = in->attendee != NULL;
	}
	icalcomponent_free(cal);
	return ok;
}

/* Depth first over the parts, not into attached messages. */
static bool find_reply(GMimeObject *obj, struct inbound *in)
{
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);

		for (int i = 0; i < g_mime_multipart_get_count(mp); i++)
			if (find_reply(g_mime_multipart_get_part(mp, i), in))
				return true;
		return false;
	}
	if (!GMIME_IS_PART(obj) ||
	    !(is_type(obj, "text", "calendar") || is_type(obj, "application", "ics")))
		return false;
	char *text = part_text(obj);
	/* An answer is a few kilobytes (with Outlook's HTML description, some
	 * tens); libical takes time of the square of an unfolded line's
	 * length (a hostile part would hold the daemon: 8 MB, 12 s). */
	bool ok = text && strlen(text) <= INBOUND_CALENDAR_MAX && read_reply(text, in);

	free(text);
	return ok;
}

/* ---- delivery status notifications -------------------------------------- */

/* The value of field name in one block of "Name: value" lines (folded
 * lines continue with white space), unfolded; NULL when absent. */
static char *field(const char *block, const char *name)
{
	size_t n = strlen(name);

	for (const char *line = block; *line; line += strcspn(line, "\n"), line += *line == '\n') {
		if (strncasecmp(line, name, n) != 0 || line[n] != ':')
			continue;
		struct strbuf sb;
		const char *p = line + n + 1;

		sb_init(&sb);
		for (;;) {
			size_t len = strcspn(p, "\n");

			sb_addn(&sb, p, len);
			p += len;
			if (*p != '\n' || (p[1] != ' ' && p[1] != '\t'))
				break;
			/* A folded line continues after one space. */
			p += 1 + strspn(p + 1, " \t");
			sb_addc(&sb, ' ');
		}
		char *v = xstrdup(str_trim(sb.buf));
		size_t vl = strlen(v);

		while (vl && isspace((unsigned char)v[vl - 1]))
			v[--vl] = '\0';
		sb_free(&sb);
		return v;
	}
	return NULL;
}

static void add_rcpt(struct inbound *in, const char *block)
{
	char *final = field(block, "Final-Recipient"), *orig = field(block, "Original-Recipient");
	char *action = field(block, "Action"), *status = field(block, "Status");
	char *email = final ? bare_address(final) : orig ? bare_address(orig) : NULL;

	if (email && action && status) {
		struct inbound_rcpt *r;

		in->rcpts = xrealloc(in->rcpts, (in->n_rcpts + 1) * sizeof(*in->rcpts));
		r = &in->rcpts[in->n_rcpts++];
		r->email = email;
		r->original = orig ? bare_address(orig) : NULL;
		r->action = lower_dup(action);
		r->status = xstrndup(status, strcspn(status, " \t("));
		r->diagnostic = field(block, "Diagnostic-Code");
		email = NULL;
	}
	free(email);
	free(final);
	free(orig);
	free(action);
	free(status);
}

/* The per-message block, then one block per recipient, blank lines
 * between (RFC 3464 §2.1). */
static void read_status(const char *text, struct inbound *in)
{
	char *copy = xstrdup(text), *w = copy;

	/* CRLF to LF, so blocks split on one kind of blank line. */
	for (const char *r = text; *r; r++)
		if (*r != '\r')
			*w++ = *r;
	*w = '\0';
	for (char *block = copy; *block;) {
		char *end = strstr(block, "\n\n");

		if (end)
			*end = '\0';
		add_rcpt(in, block);
		if (!end)
			break;
		block = end + 2;
		while (*block == '\n')
			block++;
	}
	free(copy);
}

static char *returned_id(GMimeObject *obj)
{
	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		const char *id = m ? g_mime_message_get_message_id(m) : NULL;

		return xstrdup(id);
	}
	if (is_type(obj, "text", "rfc822-headers")) {
		char *text = part_text(obj), *id = text ? field(text, "Message-ID") : NULL, *out;

		free(text);
		if (!id)
			return NULL;
		out = xstrndup(id + (*id == '<'), strcspn(id + (*id == '<'), ">"));
		free(id);
		return out;
	}
	return NULL;
}

static void read_dsn(GMimeMultipart *mp, struct inbound *in)
{
	for (int i = 0; i < g_mime_multipart_get_count(mp); i++) {
		GMimeObject *part = g_mime_multipart_get_part(mp, i);

		if (is_type(part, "message", "delivery-status") ||
		    is_type(part, "message", "global-delivery-status")) {
			char *text = part_text(part);

			if (text)
				read_status(text, in);
			free(text);
		} else if (!in->original_id) {
			in->original_id = returned_id(part);
		}
	}
}

static bool is_dsn(GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *rt = ct ? g_mime_content_type_get_parameter(ct, "report-type") : NULL;

	/* RFC 6533's global-delivery-status: what Postfix and Exchange send
	 * for SMTPUTF8 mail (read_dsn reads its status part alike). */
	return GMIME_IS_MULTIPART(obj) && is_type(obj, "multipart", "report") &&
	       (str_caseeq(rt, "delivery-status") || str_caseeq(rt, "global-delivery-status"));
}

/* ---- the message -------------------------------------------------------- */

static char *from_address(GMimeMessage *msg)
{
	InternetAddressList *list = g_mime_message_get_from(msg);
	InternetAddress *ia;

	if (!list || internet_address_list_length(list) < 1)
		return NULL;
	ia = internet_address_list_get_address(list, 0);
	if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
		return NULL;
	return lower_dup(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
}

void inbound_parse(const char *data, size_t len, struct inbound *out)
{
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeMessage *msg;
	GMimeObject *body;
	const char *id;

	memset(out, 0, sizeof(*out));
	gmime_once();
	stream = g_mime_stream_mem_new_with_buffer(data, len);
	parser = g_mime_parser_new_with_stream(stream);
	msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	if (!msg) {
		out->why = "not a mail message";
		return;
	}
	out->from = from_address(msg);
	if ((id = g_mime_message_get_message_id(msg)))
		out->message_id = xstrdup(id);
	body = g_mime_message_get_mime_part(msg);
	if (body && is_dsn(body)) {
		read_dsn(GMIME_MULTIPART(body), out);
		out->kind = out->n_rcpts ? IN_DSN : IN_OTHER;
		out->why = out->n_rcpts ? NULL : "a delivery report without a recipient kallad can read";
	} else if (body && find_reply(body, out)) {
		out->kind = IN_REPLY;
	} else {
		out->why = "neither a calendar reply nor a delivery status notification";
	}
	g_object_unref(msg);
}

void inbound_clear(struct inbound *in)
{
	free(in->from);
	free(in->message_id);
	free(in->uid);
	free(in->attendee);
	free(in->partstat);
	for (size_t i = 0; i < in->n_rcpts; i++) {
		free(in->rcpts[i].email);
		free(in->rcpts[i].original);
		free(in->rcpts[i].action);
		free(in->rcpts[i].status);
		free(in->rcpts[i].diagnostic);
	}
	free(in->rcpts);
	free(in->original_id);
	memset(in, 0, sizeof(*in));
}
