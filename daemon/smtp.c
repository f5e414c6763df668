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

struct smtp;

/* One connection: an easy handle, its own multi handle that keeps its
 * connection between transactions (so a connection that failed is never
 * another slot's), and the transaction it carries. */
struct slot {
	struct smtp *pool;
	CURL *curl;
	CURLM *multi;
	struct curl_slist *rcpts; /* the transaction's one recipient */
	bool running;    /* a transaction was started and not yet finished */
	void *tag;       /* the caller's, handed back with the outcome */
	bool fresh;      /* the last transaction failed: do not reuse its connection */
	bool connected;  /* a connection may be open (kept by the multi handle) */
	double used;     /* when the last transaction ended, for idle-timeout */
	pthread_t thread; /* runs the slot's transfers */
	bool job;        /* under the pool's lock: a transfer for the thread to run */
	bool done;       /* under the pool's lock: it ended, with rc */
	unsigned long done_seq; /* ... as the how-manieth */
	CURLcode rc;
	bool slow;
	enum relay_fault fault;
	char errbuf[CURL_ERROR_SIZE];

	/* The transaction in flight. */
	const char *msg;
	size_t len, pos;
	double progress_at;    /* when the upload last moved */
	bool stalled;          /* the server stopped reading the message */
	bool quitting;         /* QUIT went out: its reply says nothing of the message */
	bool data_go;          /* DATA got its 354 */
	char stage[16];        /* the command the next reply answers */
	char reply_stage[16];  /* the command last_reply answered */
	struct strbuf reply;   /* lines of the reply being read */
	char *last_reply;      /* the last complete reply, continuation lines joined */
	int last_code;
};

struct smtp {
	pthread_mutex_t lock; /* guards job, done, rc, quit, opened, failing */
	pthread_cond_t job_cv, done_cv;
	bool quit;       /* the threads end */
	unsigned long done_seq; /* transfers ended */
	int threads;     /* started */
	struct slot *slots;
	int n;           /* [smtp] connections */
	int running;     /* slots with a transaction in flight */
	bool proven;     /* a transaction went through since the pool (re)opened or a relay
			  * fault: more than one may be in flight */
	bool failing;    /* the last transaction failed: new connections are spaced */
	void (*tick)(void *); /* called about once a second while waiting */
	void *tick_arg;
	double ticked;   /* when tick was last called */
	char *url;
	char *from;      /* "<addr>" for MAIL FROM */
	long timeout, eod_timeout, idle_timeout; /* [smtp], in seconds */
	double opened;   /* when the last connection was opened; 0: never */
};

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
			pthread_cond_wait(&s->job_cv, &s->lock);
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
		ok = ok && sl->curl && sl->multi && smtp_set_options(sl, cfg, password);
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->job_cv, NULL);
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

static bool smtp_cert_problem(CURLcode rc)
{
	return rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
	       rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_ISSUER_ERROR ||
	       rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH || rc == CURLE_SSL_INVALIDCERTSTATUS;
}

static bool smtp_tls_problem(CURLcode rc)
{
	return rc == CURLE_USE_SSL_FAILED || rc == CURLE_SSL_CONNECT_ERROR || smtp_cert_problem(rc);
}

/* The command the failure answered: the one whose reply said 4xx/5xx, or
 * the one left without a reply. */
static const char *smtp_where(const struct slot *s, long code)
{
	return code >= 400 && s->last_reply ? s->reply_stage : s->stage;
}

static bool at(const char *where, const char *stage)
{
	return strcmp(where, stage) == 0;
}

/* RFC 1870: a 552 (5.3.4) at MAIL FROM with SIZE refuses this message's
 * size, not the sender. */
static bool smtp_too_big(const struct slot *s, long code)
{
	return code == 552 || (s->last_reply && strncmp(s->last_reply + 3, " 5.3.4", 6) == 0);
}

/* The message may be queued over there only once "." went out, which
 * libcurl does only after our read callback handed out the last byte (it
 * stops reading at CURLOPT_INFILESIZE, set so that SIZE lets a server
 * refuse a big message before the upload). If all was handed out and no
 * reply answered the end of data, the outcome is unknown. Before that
 * point nothing can have been accepted. A drop during the upload of the
 * last bytes is thus called unknown too: the safe side, as the retry
 * carries the same Message-ID. Every reply is read by its code: 5xx
 * permanent, 4xx transient; a 421 anywhere before the data means the
 * relay is closing, whatever the command. */
static enum send_result smtp_classify(struct slot *s, CURLcode rc, long code)
{
	const char *where = smtp_where(s, code);

	s->fault = RELAY_NONE;
	if (rc == CURLE_OK)
		return SEND_OK;
	if (at(where, "end of data")) {
		if (code >= 500 && code < 600)
			return SEND_PERMANENT;
		if (code >= 400 && code < 500)
			return SEND_TRANSIENT;
		/* A failure to send means "." never went out whole: the
		 * server cannot have taken the message. */
		return s->data_go && s->pos == s->len && !s->stalled && rc != CURLE_SEND_ERROR
			       ? SEND_UNKNOWN
			       : SEND_TRANSIENT;
	}
	if ((at(where, "RCPT") || at(where, "DATA")) && code >= 400 && code < 600 && code != 421)
		return code >= 500 ? SEND_PERMANENT : SEND_TRANSIENT;
	if (at(where, "MAIL") && code >= 500 && code < 600 && smtp_too_big(s, code))
		return SEND_PERMANENT;
	if (rc == CURLE_LOGIN_DENIED || at(where, "AUTH"))
		s->fault = RELAY_AUTH;
	else if (smtp_tls_problem(rc) || at(where, "STARTTLS"))
		s->fault = RELAY_TLS;
	else if (at(where, "MAIL") && code >= 400 && code != 421)
		s->fault = RELAY_SENDER;
	else
		s->fault = RELAY_CONNECT;
	return SEND_RELAY;
}

static char *smtp_no_reply(const struct slot *s, CURLcode rc, const char *err)
{
	double connect = 0;

	if (rc != CURLE_OPERATION_TIMEDOUT)
		return xasprintf("%s (at %s)", err, s->stage);
	if (at(s->stage, "connect")) {
		curl_easy_getinfo(s->curl, CURLINFO_CONNECT_TIME, &connect);
		if (connect > 0)
			return xasprintf("the server accepted the connection but sent no greeting "
					 "within %ld s (at connect)", s->pool->timeout);
		return xasprintf("cannot connect within %ld s (at connect)", s->pool->timeout);
	}
	return xasprintf("no reply within %ld s (at %s)", s->pool->timeout, s->stage);
}

static char *smtp_detail(const struct slot *s, CURLcode rc, enum send_result r, long code)
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
		return xasprintf("server certificate not trusted: %s (set [smtp] ca-file for a "
				 "private CA)", err);
	if (rc == CURLE_SSL_CONNECT_ERROR)
		return xasprintf("TLS handshake failed: %s", err);
	if (s->stalled)
		return xasprintf("the server stopped reading the message for %ld s (at end of data)",
				 s->pool->timeout);
	if (rc == CURLE_SEND_ERROR && s->data_go && code == 354)
		/* Linux drops what a server said before its reset: its words
		 * are lost, but "." never went out whole. */
		return xasprintf("the server closed the connection before the end of the data "
				 "(%s): not delivered (at end of data)", err);
	if (r == SEND_UNKNOWN)
		return xasprintf("no reply after end of data (%s): the server may have the message",
				 rc == CURLE_OPERATION_TIMEDOUT ? "timed out" : err);
	if (code >= 400 && code < 600 && s->last_reply)
		return xasprintf("%s (at %s)", s->last_reply, s->reply_stage);
	return smtp_no_reply(s, rc, err);
}

/* "rate" as a word: not "separate", "generate" or "moderate". */
static bool has_word(const char *text, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = text; (p = strcasestr(p, word)); p++)
		if ((p == text || !isalpha((unsigned char)p[-1])) && !isalpha((unsigned char)p[n]))
			return true;
	return false;
}

/* Signs of a limit, from Postfix (anvil's "450 4.7.1 Error: too much mail
 * from ..."), Exim, Microsoft and Google: 421 anywhere; 450, 451 or 452
 * with an enhanced code 4.7.x (security or policy) or rate words. A
 * greylisting reply (often 451 4.7.1 "try again later" too) is about one
 * recipient: it makes that message wait, not the relay slow down. */
static bool smtp_limit_sign(long code, const char *reply)
{
	static const char *words[] = {"too much mail", "too many", "try again later", "ratelimit",
				      "rate-limit", "throttl", "slow down"};
	if (code == 421)
		return true;
	if ((code != 450 && code != 451 && code != 452) || !reply ||
	    strcasestr(reply, "greylist") || strcasestr(reply, "graylist"))
		return false;
	if (strncmp(reply + 3, " 4.7.", 5) == 0 || has_word(reply, "rate"))
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (strcasestr(reply, words[i]))
			return true;
	return false;
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
	pthread_cond_broadcast(&s->pool->job_cv);
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
	       at(smtp_where(s, o->code), "MAIL");
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
	pthread_cond_broadcast(&s->job_cv);
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
	}
	curl_global_cleanup();
	{
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->job_cv);
		pthread_cond_destroy(&s->done_cv);
	}
	free(s->slots);
	free(s->url);
	free(s->from);
	free(s);
}
