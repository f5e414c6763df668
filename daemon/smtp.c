/* smtp.c: SMTP through a pool of libcurl easy handles, each on a multi
 * handle of its own and run by a thread of its own ([smtp] connections
 * transactions in flight, over as many connections), and the reading of
 * what happened into ok / transient / permanent / unknown for a message,
 * or a fault of the relay as a whole (connection, TLS, AUTH, MAIL FROM).
 * Only a slot's thread touches its handles while its transfer runs; the
 * caller (one thread: the ledger is never touched from a slot's thread)
 * takes the outcome once the thread has said, under the pool's lock, that
 * the transfer ended.
 *
 * libcurl 7.88 traps this file works around (SPEC §4, "SMTP with libcurl"):
 * - after a timeout waiting for the reply to ".", libcurl keeps the
 *   connection and would read that late reply as the answer to the next
 *   command; so after any failure the slot's next transfer gets a fresh
 *   connection (CURLOPT_FRESH_CONNECT), and its multi handle's MAXCONNECTS
 *   = 1 closes the old one; no connection passes from one slot to another;
 * - a reply to "." is awaited in a blocking wait inside smtp_done, even
 *   under the multi interface: hence a thread per slot, so that the wait
 *   holds up no other connection;
 * - CURLUSESSL_TRY sends in clear when STARTTLS is missing: only _ALL/_NONE;
 * - CURLOPT_CRLF on CRLF input doubles the CR: the message is strict CRLF and
 *   fed as is; libcurl dot-stuffs "\r\n." itself (tests/test_transport.c
 *   checks that "." and ".foo" lines arrive intact);
 * - one CURLOPT_SERVER_RESPONSE_TIMEOUT covers every reply, and
 *   CURLOPT_LOW_SPEED_TIME also runs while the reply to "." is awaited
 *   (inside a blocking wait in smtp_done): the response timeout is raised to
 *   [smtp] end-of-data-timeout when DATA gets its 354, and a stalled upload
 *   is caught by the progress callback instead of the low-speed check. */
#include "smtp.h"
#include "smtp_internal.h"

#include "log.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double d)
{
	struct timespec ts = {(time_t)d, (long)((d - (time_t)d) * 1e9)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static size_t smtp_read(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct slot *s = userdata;
	size_t n = size * nitems;

	if (n > s->len - s->pos)
		n = s->len - s->pos;
	memcpy(buf, s->msg + s->pos, n);
	s->pos += n;
	s->progress_at = mono();
	return n;
}

/* Only command names are kept from what goes out: the rest of an AUTH line
 * and the base64 lines after it carry the password. */
static void smtp_note_command(struct slot *s, const char *line, size_t n)
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

static void smtp_note_reply_line(struct slot *s, const char *line, size_t n)
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
	 * next reply answers the end of the data, which may take the server
	 * longer (RFC 5321 4.5.3.2.6: ten minutes). */
	if (s->last_code == 354) {
		s->data_go = true;
		s->progress_at = mono();
		snprintf(s->stage, sizeof(s->stage), "end of data");
		curl_easy_setopt(s->curl, CURLOPT_SERVER_RESPONSE_TIMEOUT, s->pool->eod_timeout);
	}
}

static int smtp_debug(CURL *curl, curl_infotype type, char *data, size_t size, void *userdata)
{
	struct slot *s = userdata;

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

static void smtp_tick(struct smtp *s)
{
	double now = mono();

	if (s->tick && now - s->ticked >= 1.0) {
		s->ticked = now;
		s->tick(s->tick_arg);
	}
}

/* About once a second during a transfer (in the slot's thread), also
 * inside libcurl's blocking wait for the reply to ".": ends an upload the
 * server stopped reading for [smtp] timeout seconds. */
static int smtp_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			 curl_off_t ulnow)
{
	struct slot *s = arg;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	if (s->data_go && s->pos < s->len && mono() - s->progress_at > (double)s->pool->timeout) {
		s->stalled = true;
		return 1;
	}
	return 0;
}

/* Every connection libcurl opens comes through here: never more than one
 * a second while transactions fail, however the server fails. (While
 * they go, the pool's connections open as it fills.) */
static curl_socket_t smtp_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct slot *sl = arg;
	struct smtp *s = sl->pool;
	double now = mono(), at = now;

	(void)purpose;
	/* Each connection takes its turn, a second after the one before. */
	pthread_mutex_lock(&s->lock);
	if (s->failing && s->opened > 0 && s->opened + 1.0 > now)
		at = s->opened + 1.0;
	s->opened = at;
	pthread_mutex_unlock(&s->lock);
	if (at > now)
		sleep_s(at - now);
	sl->connected = true;
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
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

static bool smtp_set_options(struct slot *sl, const struct config *cfg, const char *password)
{
	struct smtp *s = sl->pool;
	CURL *c = sl->curl;
	const char *cainfo = cfg->smtp_ca_file ? cfg->smtp_ca_file : getenv("KALLAD_SMTP_CAINFO");
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
	SET(CURLOPT_READDATA, sl);
	SET(CURLOPT_VERBOSE, 1L); /* feeds smtp_debug only; nothing is printed */
	SET(CURLOPT_DEBUGFUNCTION, smtp_debug);
	SET(CURLOPT_DEBUGDATA, sl);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, smtp_progress);
	SET(CURLOPT_XFERINFODATA, sl);
	SET(CURLOPT_OPENSOCKETFUNCTION, smtp_open_socket);
	SET(CURLOPT_OPENSOCKETDATA, sl);
	SET(CURLOPT_ERRORBUFFER, sl->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_MAXCONNECTS, 1L);
	SET(CURLOPT_CONNECTTIMEOUT, s->timeout);
	SET(CURLOPT_SERVER_RESPONSE_TIMEOUT, s->timeout);
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

static CURLM *smtp_multi(void)
{
	CURLM *m = curl_multi_init();

	/* One connection, kept by the multi handle between transactions. */
	if (m)
		curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, 1L);
	return m;
}

/* Runs one transfer on the slot's multi handle to its end. */
static CURLcode smtp_transfer(struct slot *sl)
{
	CURLcode rc = CURLE_RECV_ERROR;
	int running = 1, left;
	CURLMsg *m;

	curl_multi_add_handle(sl->multi, sl->curl);
	while (running) {
		if (curl_multi_perform(sl->multi, &running) != CURLM_OK)
			break;
		if (running && curl_multi_poll(sl->multi, NULL, 0, 1000, NULL) != CURLM_OK)
			break;
	}
	while ((m = curl_multi_info_read(sl->multi, &left)))
		if (m->msg == CURLMSG_DONE && m->easy_handle == sl->curl)
			rc = m->data.result;
	return rc;
}

/* A slot's thread: runs each transfer handed to it. libcurl 7.88 waits
 * for the reply to "." in a blocking loop inside its SMTP code, even
 * under the multi interface: in one thread for all, each connection's
 * wait there would hold up every other. The rest of the slot (its
 * options, the outcome, the reading of it) is the caller's, touched only
 * while no transfer runs. */
static void *smtp_thread(void *arg)
{
	struct slot *sl = arg;
	struct smtp *s = sl->pool;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!sl->job && !s->quit)
			pthread_cond_wait(&sl->job_cv, &s->lock);
		if (!sl->job)
			break;
		sl->job = false;
		pthread_mutex_unlock(&s->lock);
		CURLcode rc = smtp_transfer(sl);
		pthread_mutex_lock(&s->lock);
		sl->rc = rc;
		sl->done = true;
		sl->done_seq = ++s->done_seq;
		pthread_cond_broadcast(&s->done_cv);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
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
	bool ok;

	s->url = xstrdup(url);
	s->from = from;
	s->timeout = cfg->timeout > 0 ? cfg->timeout : 60;
	s->eod_timeout = cfg->end_of_data_timeout > 0 ? cfg->end_of_data_timeout : 600;
	s->idle_timeout = cfg->idle_timeout > 0 ? cfg->idle_timeout : 30;
	s->n = cfg->smtp_connections > 0 ? cfg->smtp_connections : 1;
	s->slots = xcalloc((size_t)s->n, sizeof(*s->slots));
	ok = true;
	for (int i = 0; i < s->n; i++) {
		struct slot *sl = &s->slots[i];
		sl->pool = s;
		sb_init(&sl->reply);
		sl->curl = curl_easy_init();
		sl->multi = smtp_multi();
		pthread_cond_init(&sl->job_cv, NULL);
		ok = ok && sl->curl && sl->multi && smtp_set_options(sl, cfg, password);
	}
	pthread_mutex_init(&s->lock, NULL);
	/* Waits for done_cv are timed on the monotonic clock: a step of the
	 * wall clock neither stalls them nor makes them spin. */
	pthread_condattr_t monotonic;
	pthread_condattr_init(&monotonic);
	pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
	pthread_cond_init(&s->done_cv, &monotonic);
	pthread_condattr_destroy(&monotonic);
	for (int i = 0; ok && i < s->n; i++) {
		ok = pthread_create(&s->slots[i].thread, NULL, smtp_thread, &s->slots[i]) == 0;
		if (ok)
			s->threads++;
	}
	if (!ok) {
		errlist_add(errs, "[smtp] url: %s: libcurl cannot be set up for it", url);
		smtp_close(s);
		return NULL;
	}
	return s;
}

static void smtp_reset_transaction(struct slot *s)
{
	s->pos = 0;
	s->stalled = false;
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

static void smtp_launch(struct slot *s)
{
	smtp_reset_transaction(s);
	curl_easy_setopt(s->curl, CURLOPT_SERVER_RESPONSE_TIMEOUT, s->pool->timeout);
	curl_easy_setopt(s->curl, CURLOPT_FRESH_CONNECT, s->fresh ? 1L : 0L);
	s->running = true;
	s->pool->running++;
	s->progress_at = mono();
	/* The slot's thread takes it from here. */
	pthread_mutex_lock(&s->pool->lock);
	s->job = true;
	pthread_cond_signal(&s->job_cv);
	pthread_mutex_unlock(&s->pool->lock);
}

int smtp_connections(const struct smtp *s)
{
	return s->n;
}

int smtp_in_flight(const struct smtp *s)
{
	return s->running;
}

bool smtp_ready(struct smtp *s)
{
	bool ready = false;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->n && !ready; i++)
		ready = s->slots[i].done;
	pthread_mutex_unlock(&s->lock);
	return ready;
}

bool smtp_can_start(const struct smtp *s)
{
	/* One at a time until one went through: a wrong password or a dead
	 * relay costs one connection, not one each. */
	return s->running < (s->proven ? s->n : 1);
}

/* Closes the connection of sl (QUIT), unless a transaction is on it. */
static void smtp_hangup_slot(struct slot *sl)
{
	if (sl->running || !sl->connected)
		return;
	/* The multi handle owns the open connection: its cleanup sends QUIT. */
	curl_multi_cleanup(sl->multi);
	if (!(sl->multi = smtp_multi()))
		abort(); /* out of memory: util.h's policy */
	sl->connected = false;
	sl->fresh = false;
}

void smtp_start(struct smtp *s, const char *rcpt, const char *msg, size_t len, void *tag)
{
	struct slot *sl = NULL;
	char *angle = xasprintf("<%s>", rcpt);

	/* The warmest connection: the free slot used last, whose connection
	 * is open and sound; else any free slot (a new connection). A
	 * running slot is its thread's (it sets connected when it opens a
	 * connection): not read here. */
	for (int i = 0; i < s->n; i++) {
		struct slot *c = &s->slots[i];
		if (c->running)
			continue;
		bool warm = c->connected && !c->fresh;
		if (!sl || (warm && (!sl->connected || sl->fresh || c->used > sl->used)))
			sl = c;
	}
	if (!sl)
		abort(); /* a caller's bug: smtp_can_start() said no */
	sl->rcpts = curl_slist_append(NULL, angle);
	free(angle);
	if (!sl->rcpts)
		abort(); /* out of memory: util.h's policy */
	sl->msg = msg;
	sl->len = len;
	sl->tag = tag;
	/* A connection unused for idle-timeout may have been closed by the
	 * server, or be about to (Postfix: 300 s, many relays: 30 to 60 s):
	 * end it ourselves rather than read its 421 as the reply to MAIL. */
	if (sl->connected && sl->used > 0 && mono() - sl->used >= (double)s->idle_timeout)
		smtp_hangup_slot(sl);
	curl_easy_setopt(sl->curl, CURLOPT_MAIL_RCPT, sl->rcpts);
	curl_easy_setopt(sl->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	smtp_launch(sl);
}

/* Waits until a transfer ends: its slot and CURLcode. */
static struct slot *smtp_wait(struct smtp *s, CURLcode *rc)
{
	struct slot *sl = NULL;

	pthread_mutex_lock(&s->lock);
	while (!sl && s->running) {
		/* In the order they ended. */
		for (int i = 0; i < s->n; i++)
			if (s->slots[i].done && (!sl || s->slots[i].done_seq < sl->done_seq))
				sl = &s->slots[i];
		if (sl)
			break;
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&s->done_cv, &s->lock, &until);
		pthread_mutex_unlock(&s->lock);
		smtp_tick(s);
		pthread_mutex_lock(&s->lock);
	}
	if (sl) {
		sl->done = false;
		*rc = sl->rc;
	}
	pthread_mutex_unlock(&s->lock);
	return sl;
}

struct run {
	CURLcode rc;
	long code;   /* the last reply code */
	bool reused; /* it ran on a connection kept from before */
	enum send_result r;
};

/* The transaction of sl ended with rc: what came of it. */
static void smtp_run(struct smtp *s, struct slot *sl, CURLcode rc, struct run *o)
{
	long conns = 0;

	o->rc = rc;
	o->code = 0;
	curl_easy_getinfo(sl->curl, CURLINFO_RESPONSE_CODE, &o->code);
	curl_easy_getinfo(sl->curl, CURLINFO_NUM_CONNECTS, &conns);
	curl_multi_remove_handle(sl->multi, sl->curl);
	sl->running = false;
	s->running--;
	o->reused = conns == 0;
	o->r = smtp_classify(sl, o->rc, o->code);
}

/* A connection kept from before that fails at its first command (a 421,
 * a drop) was most likely closed by the server while idle: not a fault of
 * the relay yet. */
static bool smtp_stale(const struct slot *s, const struct run *o)
{
	return o->r == SEND_RELAY && o->reused && s->fault == RELAY_CONNECT &&
	       smtp_at(smtp_where(s, o->code), "MAIL");
}

bool smtp_finish(struct smtp *s, struct outcome *out)
{
	struct slot *sl;
	struct run o;
	CURLcode rc = CURLE_RECV_ERROR;

	memset(out, 0, sizeof(*out));
	for (;;) {
		if (!(sl = smtp_wait(s, &rc)))
			return false;
		smtp_run(s, sl, rc, &o);
		if (!smtp_stale(sl, &o))
			break;
		log_info("the connection kept from before failed at MAIL (%s): reconnecting once",
			 sl->last_reply ? sl->last_reply : "no reply");
		sl->fresh = true;
		smtp_launch(sl);
		/* The stale retry runs like any transaction, once: a second
		 * failure on a fresh connection is no longer "reused". */
	}
	curl_easy_setopt(sl->curl, CURLOPT_MAIL_RCPT, NULL);
	curl_slist_free_all(sl->rcpts);
	sl->rcpts = NULL;
	sl->used = mono();
	sl->fresh = o.r != SEND_OK;
	pthread_mutex_lock(&s->lock);
	s->failing = o.r != SEND_OK;
	pthread_mutex_unlock(&s->lock);
	sl->slow = o.r != SEND_OK && smtp_limit_sign(o.code, sl->last_reply);
	/* Signs of trouble bring the pool back to one transaction at a time
	 * until one goes through again. */
	if (o.r == SEND_RELAY || sl->slow)
		s->proven = false;
	else
		s->proven = true;
	out->tag = sl->tag;
	out->result = o.r;
	out->detail = smtp_detail(sl, o.rc, o.r, o.code);
	out->fault = sl->fault;
	out->slow = sl->slow;
	sl->msg = NULL;
	sl->tag = NULL;
	return true;
}

void smtp_pause(struct smtp *s, double secs)
{
	(void)s; /* the transfers run in their threads meanwhile */
	sleep_s(secs);
}

void smtp_set_tick(struct smtp *s, void (*tick)(void *), void *arg)
{
	s->tick = tick;
	s->tick_arg = arg;
}

void smtp_hangup(struct smtp *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n; i++)
		smtp_hangup_slot(&s->slots[i]);
	/* The next connection proves the relay (and the password) again. */
	if (!s->running)
		s->proven = false;
}

void smtp_close(struct smtp *s)
{
	if (!s)
		return;
	/* A transfer still running is finished by its thread first. */
	pthread_mutex_lock(&s->lock);
	s->quit = true;
	for (int i = 0; i < s->n; i++)
		pthread_cond_signal(&s->slots[i].job_cv);
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < s->threads; i++)
		pthread_join(s->slots[i].thread, NULL);
	for (int i = 0; i < s->n; i++) {
		struct slot *sl = &s->slots[i];
		if (sl->running)
			curl_multi_remove_handle(sl->multi, sl->curl);
		curl_slist_free_all(sl->rcpts);
		if (sl->curl)
			curl_easy_cleanup(sl->curl);
		/* The multi handle owns the open connection: it sends QUIT. */
		if (sl->multi)
			curl_multi_cleanup(sl->multi);
		free(sl->last_reply);
		sb_free(&sl->reply);
		pthread_cond_destroy(&sl->job_cv);
	}
	curl_global_cleanup();
	{
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->done_cv);
	}
	free(s->slots);
	free(s->url);
	free(s->from);
	free(s);
}
