/* smtp.c: SMTP through one reused libcurl easy handle, and the reading of
 * what happened into ok / transient / permanent / unknown.
 *
 * libcurl 7.88 traps this file works around (SPEC §4, "SMTP with libcurl"):
 * - after a timeout waiting for the reply to ".", libcurl keeps the
 *   connection and would read that late reply as the answer to the next
 *   command; so after any failure the next transfer gets a fresh connection
 *   (CURLOPT_FRESH_CONNECT), and CURLOPT_MAXCONNECTS = 1 closes the old one;
 * - CURLUSESSL_TRY sends in clear when STARTTLS is missing: only _ALL/_NONE;
 * - CURLOPT_CRLF on CRLF input doubles the CR: the message is strict CRLF and
 *   fed as is; libcurl dot-stuffs "\r\n." itself (tests/test_transport.c
 *   checks that "." and ".foo" lines arrive intact). */
#include "smtp.h"

#include "log.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct smtp {
	CURL *curl;
	CURLM *multi;    /* drives curl, so the caller can work while a reply is awaited */
	struct curl_slist *rcpts; /* the transaction's one recipient */
	bool running;    /* a transaction was started and not yet finished */
	void (*tick)(void *); /* called about once a second while waiting */
	void *tick_arg;
	char *url;
	char *from;      /* "<addr>" for MAIL FROM */
	bool fresh;      /* the last transaction failed: do not reuse its connection */
	bool slow;
	char errbuf[CURL_ERROR_SIZE];

	/* The transaction in flight. */
	const char *msg;
	size_t len, pos;
	bool quitting;         /* QUIT went out: its reply says nothing of the message */
	bool data_go;          /* DATA got its 354 */
	char stage[16];        /* the command the next reply answers */
	char reply_stage[16];  /* the command last_reply answered */
	struct strbuf reply;   /* lines of the reply being read */
	char *last_reply;      /* the last complete reply, continuation lines joined */
	int last_code;
};

static size_t smtp_read(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct smtp *s = userdata;
	size_t n = size * nitems;

	if (n > s->len - s->pos)
		n = s->len - s->pos;
	memcpy(buf, s->msg + s->pos, n);
	s->pos += n;
	return n;
}

/* Only command names are kept from what goes out: the rest of an AUTH line
 * and the base64 lines after it carry the password. */
static void smtp_note_command(struct smtp *s, const char *line, size_t n)
{
	static const char *known[] = {"EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT",
				      "DATA", "QUIT", "RSET", "NOOP", "VRFY"};
	for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
		size_t k = strlen(known[i]);
		if (n >= k && strncasecmp(line, known[i], k) == 0 &&
		    (n == k || line[k] == ' ' || line[k] == '\r' || line[k] == '\n')) {
			if (strcmp(known[i], "QUIT") == 0)
				s->quitting = true;
			else
				snprintf(s->stage, sizeof(s->stage), "%s", known[i]);
			return;
		}
	}
}

static void smtp_note_reply_line(struct smtp *s, const char *line, size_t n)
{
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
		n--;
	if (n < 3 || line[0] < '2' || line[0] > '5' || s->quitting)
		return;
	bool last = n == 3 || line[3] != '-';
	if (s->reply.len == 0)
		sb_addn(&s->reply, line, n);
	else if (n > 4) { /* continuation: drop the repeated code */
		sb_addc(&s->reply, ' ');
		sb_addn(&s->reply, line + 4, n - 4);
	}
	if (!last)
		return;
	if (s->reply.buf[3] == '-')
		s->reply.buf[3] = ' ';
	free(s->last_reply);
	s->last_reply = sb_take(&s->reply);
	s->last_code = atoi(line);
	memcpy(s->reply_stage, s->stage, sizeof(s->stage));
	/* libcurl writes the final "." without a debug record: after 354 the
	 * next reply answers the end of the data. */
	if (s->last_code == 354) {
		s->data_go = true;
		snprintf(s->stage, sizeof(s->stage), "end of data");
	}
}

static int smtp_debug(CURL *curl, curl_infotype type, char *data, size_t size, void *userdata)
{
	struct smtp *s = userdata;

	(void)curl;
	if (type == CURLINFO_HEADER_OUT)
		smtp_note_command(s, data, size);
	else if (type == CURLINFO_HEADER_IN) {
		while (size > 0) {
			char *nl = memchr(data, '\n', size);
			size_t n = nl ? (size_t)(nl - data) + 1 : size;
			smtp_note_reply_line(s, data, n);
			data += n;
			size -= n;
		}
	}
	return 0;
}

/* "Name <addr>" or "addr" to "<addr>". */
static char *smtp_angle_addr(const char *from)
{
	const char *lt = strrchr(from, '<');
	const char *gt = lt ? strchr(lt, '>') : NULL;

	if (lt && gt)
		return xasprintf("%.*s", (int)(gt - lt + 1), lt);
	if (lt || strchr(from, '>') || !strchr(from, '@'))
		return NULL;
	return xasprintf("<%s>", from);
}

static bool smtp_set_options(struct smtp *s, const struct config *cfg, const char *password)
{
	CURL *c = s->curl;
	const char *cainfo = getenv("KALLAD_SMTP_CAINFO");
	CURLcode rc = CURLE_OK;

#define SET(opt, val) \
	do { \
		if (rc == CURLE_OK) \
			rc = curl_easy_setopt(c, opt, val); \
	} while (0)
	SET(CURLOPT_URL, s->url);
	SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	SET(CURLOPT_MAIL_FROM, s->from);
	SET(CURLOPT_UPLOAD, 1L);
	SET(CURLOPT_READFUNCTION, smtp_read);
	SET(CURLOPT_READDATA, s);
	SET(CURLOPT_VERBOSE, 1L); /* feeds smtp_debug only; nothing is printed */
	SET(CURLOPT_DEBUGFUNCTION, smtp_debug);
	SET(CURLOPT_DEBUGDATA, s);
	SET(CURLOPT_ERRORBUFFER, s->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_MAXCONNECTS, 1L);
	SET(CURLOPT_CONNECTTIMEOUT, (long)cfg->timeout);
	SET(CURLOPT_SERVER_RESPONSE_TIMEOUT, (long)cfg->timeout);
	/* A server that stops reading our data for `timeout` seconds. */
	SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET(CURLOPT_LOW_SPEED_TIME, (long)cfg->timeout);
	SET(CURLOPT_USE_SSL, cfg->smtp_tls_required ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_NONE);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (!str_empty(cainfo))
		SET(CURLOPT_CAINFO, cainfo);
	if (cfg->smtp_user && password) {
		SET(CURLOPT_USERNAME, cfg->smtp_user);
		SET(CURLOPT_PASSWORD, password);
	}
#undef SET
	return rc == CURLE_OK;
}

struct smtp *smtp_open(const struct config *cfg, const char *password, struct errlist *errs)
{
	const char *url = cfg->smtp_url;

	if (strncasecmp(url, "smtp://", 7) != 0 && strncasecmp(url, "smtps://", 8) != 0) {
		errlist_add(errs, "[smtp] url: %s: must start with smtp:// or smtps://", url);
		return NULL;
	}
	char *from = cfg->from ? smtp_angle_addr(cfg->from) : NULL;
	if (!from) {
		errlist_add(errs, "[organizer] from: %s: no address for MAIL FROM",
			    cfg->from ? cfg->from : "(unset)");
		return NULL;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct smtp *s = xcalloc(1, sizeof(*s));
	s->url = xstrdup(url);
	s->from = from;
	sb_init(&s->reply);
	s->curl = curl_easy_init();
	s->multi = curl_multi_init();
	/* One connection, kept by the multi handle between transactions. */
	if (s->multi)
		curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, 1L);
	if (!s->curl || !s->multi || !smtp_set_options(s, cfg, password)) {
		errlist_add(errs, "[smtp] url: %s: libcurl cannot be set up for it", url);
		smtp_close(s);
		return NULL;
	}
	return s;
}

static bool smtp_cert_problem(CURLcode rc)
{
	return rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
	       rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_ISSUER_ERROR ||
	       rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH || rc == CURLE_SSL_INVALIDCERTSTATUS;
}

/* The server may hold the message only once "." went out, which libcurl
 * does only after our read callback handed out the last byte (it stops
 * reading at CURLOPT_INFILESIZE, set so that SIZE lets a server refuse a
 * big message before the upload). If all was handed out and no 4xx/5xx
 * answered (the last code is still DATA's 354), the message may well be
 * queued over there: unknown. Before that point nothing can have been
 * accepted, so a drop is transient. A drop during the upload of the last
 * bytes is thus called unknown too: the safe side, as the retry carries the
 * same Message-ID. */
static enum send_result smtp_classify(CURLcode rc, long code, bool data_out)
{
	if (rc == CURLE_OK)
		return SEND_OK;
	if (rc == CURLE_LOGIN_DENIED)
		return code >= 400 && code < 500 ? SEND_TRANSIENT : SEND_PERMANENT;
	if (rc == CURLE_USE_SSL_FAILED || smtp_cert_problem(rc))
		return SEND_PERMANENT;
	if (code >= 400 && code < 500)
		return SEND_TRANSIENT;
	if (code >= 500 && code < 600)
		return SEND_PERMANENT;
	return data_out ? SEND_UNKNOWN : SEND_TRANSIENT;
}

static char *smtp_detail(const struct smtp *s, CURLcode rc, enum send_result r, long code)
{
	const char *err = s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc);
	const char *reply = s->last_reply ? s->last_reply : "no reply";

	if (r == SEND_OK)
		return xstrdup(reply);
	if (rc == CURLE_LOGIN_DENIED)
		return xasprintf("authentication failed for [smtp] user: %s (at AUTH)", reply);
	if (rc == CURLE_USE_SSL_FAILED)
		return xasprintf("server offers no STARTTLS and [smtp] tls = required: %s", err);
	if (smtp_cert_problem(rc))
		return xasprintf("server certificate not trusted: %s", err);
	if (r == SEND_UNKNOWN)
		return xasprintf("no reply after end of data (%s): the server may have the message",
				 err);
	if (code >= 400 && code < 600 && s->last_reply)
		return xasprintf("%s (at %s)", s->last_reply, s->reply_stage);
	return xasprintf("%s (at %s)", err, s->stage);
}

static bool smtp_slow_words(const char *reply)
{
	static const char *words[] = {"too many", "try again later", "ratelimit", "rate limit",
				      "rate-limit", "rate exceeded", "throttl"};
	for (size_t i = 0; reply && i < ARRAY_SIZE(words); i++)
		if (strcasestr(reply, words[i]))
			return true;
	return false;
}

static void smtp_reset_transaction(struct smtp *s, const char *msg, size_t len)
{
	s->msg = msg;
	s->len = len;
	s->pos = 0;
	s->quitting = false;
	s->data_go = false;
	s->reply_stage[0] = '\0';
	s->errbuf[0] = '\0';
	snprintf(s->stage, sizeof(s->stage), "connect");
	sb_free(&s->reply);
	sb_init(&s->reply);
	free(s->last_reply);
	s->last_reply = NULL;
	s->last_code = 0;
}

void smtp_start(struct smtp *s, const char *rcpt, const char *msg, size_t len)
{
	char *angle = xasprintf("<%s>", rcpt);
	int running;

	s->rcpts = curl_slist_append(NULL, angle);
	free(angle);
	if (!s->rcpts)
		abort(); /* out of memory: util.h's policy */
	smtp_reset_transaction(s, msg, len);
	curl_easy_setopt(s->curl, CURLOPT_MAIL_RCPT, s->rcpts);
	curl_easy_setopt(s->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(s->curl, CURLOPT_FRESH_CONNECT, s->fresh ? 1L : 0L);
	curl_multi_add_handle(s->multi, s->curl);
	s->running = true;
	/* Sends what can go without waiting (MAIL FROM on a warm connection). */
	curl_multi_perform(s->multi, &running);
}

/* Runs the transfer to its end; its CURLcode. */
static CURLcode smtp_wait(struct smtp *s)
{
	CURLcode rc = CURLE_RECV_ERROR;
	int running = 1, left;
	CURLMsg *m;

	while (running) {
		if (curl_multi_perform(s->multi, &running) != CURLM_OK)
			break;
		if (running && curl_multi_poll(s->multi, NULL, 0, 1000, NULL) != CURLM_OK)
			break;
		if (running && s->tick)
			s->tick(s->tick_arg);
	}
	while ((m = curl_multi_info_read(s->multi, &left)))
		if (m->msg == CURLMSG_DONE && m->easy_handle == s->curl)
			rc = m->data.result;
	return rc;
}

enum send_result smtp_finish(struct smtp *s, char **detail)
{
	long code = 0;
	CURLcode rc = smtp_wait(s);

	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
	curl_multi_remove_handle(s->multi, s->curl);
	s->running = false;
	curl_easy_setopt(s->curl, CURLOPT_MAIL_RCPT, NULL);
	curl_slist_free_all(s->rcpts);
	s->rcpts = NULL;

	enum send_result r = smtp_classify(rc, code, s->data_go && s->pos == s->len);
	s->fresh = r != SEND_OK;
	s->slow = r != SEND_OK &&
		  (code == 421 || code == 451 || code == 452 || smtp_slow_words(s->last_reply));
	*detail = smtp_detail(s, rc, r, code);
	s->msg = NULL;
	return r;
}

void smtp_set_tick(struct smtp *s, void (*tick)(void *), void *arg)
{
	s->tick = tick;
	s->tick_arg = arg;
}

bool smtp_should_slow(const struct smtp *s)
{
	return s->slow;
}

void smtp_close(struct smtp *s)
{
	if (!s)
		return;
	if (s->running)
		curl_multi_remove_handle(s->multi, s->curl);
	curl_slist_free_all(s->rcpts);
	/* The multi handle owns the open connection: it sends QUIT. */
	if (s->curl)
		curl_easy_cleanup(s->curl);
	if (s->multi)
		curl_multi_cleanup(s->multi);
	curl_global_cleanup();
	free(s->url);
	free(s->from);
	free(s->last_reply);
	sb_free(&s->reply);
	free(s);
}
