/* imap.c: one mailbox over IMAP, through libcurl, without changing it.
 *
 * libcurl fetches a message only from a mailbox it SELECTed itself, and
 * it fetches with BODY[], which sets \Seen in a mailbox opened
 * read-write. So the first request of a pass lets libcurl SELECT and then
 * sends EXAMINE for the same mailbox on the same connection: the server
 * now holds it read-only (it says [READ-ONLY], checked), libcurl still
 * counts it as selected, and what it fetches next leaves every flag as
 * it was. Should the connection be lost, libcurl would connect again and
 * SELECT on its own: once the mailbox is examined, no new connection is
 * opened at all (the socket callback refuses it), so the request fails
 * before any command; and should a SELECT still go out, the debug
 * callback sees it and the progress callback stops the transfer before
 * anything is fetched in a read-write mailbox. The pass ends there and
 * the next one starts over. */
#include "imap.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

struct imap {
	CURL *curl;
	char *url;            /* imap://host:port/MAILBOX as configured */
	char *mailbox;        /* MAILBOX, URL-decoded */
	struct strbuf body;   /* what the write callback got */
	struct strbuf lines;  /* the server's lines (never ours: they hold the password) */
	bool examined;        /* the server holds the mailbox read-only */
	bool reselected;      /* libcurl sent SELECT after that, or would have: stop */
	unsigned long uidnext; /* EXAMINE's UIDNEXT, or 0 if it gave none */
	unsigned long exists;  /* EXAMINE's EXISTS: how many messages */
	char errbuf[CURL_ERROR_SIZE];
};

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
	struct imap *im = arg;

	sb_addn(&im->body, data, size * n);
	return size * n;
}

static int on_debug(CURL *c UNUSED, curl_infotype type, char *data, size_t n, void *arg)
{
	struct imap *im = arg;
	const char *sp;

	if (type == CURLINFO_HEADER_IN && im->lines.len < 65536) {
		sb_addn(&im->lines, data, n);
	} else if (type == CURLINFO_HEADER_OUT && im->examined) {
		/* "A005 SELECT INBOX": the tag, then the command. */
		sp = memchr(data, ' ', n);
		if (sp && (size_t)(data + n - sp) > 7 && strncasecmp(sp + 1, "SELECT ", 7) == 0)
			im->reselected = true;
	}
	return 0;
}

static int on_progress(void *arg, curl_off_t a UNUSED, curl_off_t b UNUSED, curl_off_t c UNUSED,
		       curl_off_t d UNUSED)
{
	return ((struct imap *)arg)->reselected;
}

/* A new connection after EXAMINE could only go on with libcurl's own
 * SELECT: refused, whenever libcurl asks. */
static curl_socket_t on_socket(void *arg, curlsocktype purpose UNUSED, struct curl_sockaddr *a)
{
	struct imap *im = arg;

	if (im->examined) {
		im->reselected = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

struct imap *imap_open(const struct config *cfg, const char *password, struct errlist *errs)
{
	struct imap *im;
	const char *path = strstr(cfg->replies_url, "://");
	int len = 0;
	CURLcode rc = CURLE_OK;
	char *box;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	im = xcalloc(1, sizeof(*im));
	im->curl = curl_easy_init();
	im->url = xstrdup(cfg->replies_url);
	path = path ? strchr(path + 3, '/') : NULL;
	box = im->curl && path ? curl_easy_unescape(im->curl, path + 1, 0, &len) : NULL;
	im->mailbox = box ? xstrndup(box, (size_t)len) : NULL;
	curl_free(box);
	sb_init(&im->body);
	sb_init(&im->lines);
#define SET(opt, val) \
	do { \
		if (rc == CURLE_OK) \
			rc = curl_easy_setopt(im->curl, opt, val); \
	} while (0)
	if (im->curl) {
		SET(CURLOPT_PROTOCOLS_STR, "imap,imaps");
		SET(CURLOPT_WRITEFUNCTION, on_write);
		SET(CURLOPT_WRITEDATA, im);
		SET(CURLOPT_VERBOSE, 1L); /* feeds on_debug only; nothing is printed */
		SET(CURLOPT_DEBUGFUNCTION, on_debug);
		SET(CURLOPT_DEBUGDATA, im);
		SET(CURLOPT_NOPROGRESS, 0L);
		SET(CURLOPT_XFERINFOFUNCTION, on_progress);
		SET(CURLOPT_XFERINFODATA, im);
		SET(CURLOPT_OPENSOCKETFUNCTION, on_socket);
		SET(CURLOPT_OPENSOCKETDATA, im);
		SET(CURLOPT_ERRORBUFFER, im->errbuf);
		SET(CURLOPT_NOSIGNAL, 1L);
		SET(CURLOPT_CONNECTTIMEOUT, (long)cfg->timeout);
		SET(CURLOPT_SERVER_RESPONSE_TIMEOUT, (long)cfg->timeout);
		SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
		SET(CURLOPT_LOW_SPEED_TIME, (long)cfg->timeout);
		/* The rules of [smtp]: STARTTLS required unless tls = none
		 * (loopback only, checked with the configuration). */
		SET(CURLOPT_USE_SSL, cfg->replies_tls_required ? (long)CURLUSESSL_ALL
							       : (long)CURLUSESSL_NONE);
		SET(CURLOPT_SSL_VERIFYPEER, 1L);
		SET(CURLOPT_SSL_VERIFYHOST, 2L);
		/* A private CA: [replies] ca-file, checked with the configuration. */
		if (!str_empty(cfg->replies_ca_file))
			SET(CURLOPT_CAINFO, cfg->replies_ca_file);
		if (cfg->replies_user && password) {
			SET(CURLOPT_USERNAME, cfg->replies_user);
			SET(CURLOPT_PASSWORD, password);
		}
	}
#undef SET
	if (!im->curl || rc != CURLE_OK || !im->mailbox || !*im->mailbox) {
		errlist_add(errs, "[replies] url: %s: libcurl cannot be set up for it", cfg->replies_url);
		imap_close(im);
		return NULL;
	}
	return im;
}

void imap_close(struct imap *im)
{
	if (!im)
		return;
	if (im->curl)
		curl_easy_cleanup(im->curl);
	free(im->url);
	free(im->mailbox);
	sb_free(&im->body);
	sb_free(&im->lines);
	free(im);
}

/* The certificate could not be verified (as smtp.c tells them apart). */
static bool cert_problem(CURLcode rc)
{
	return rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
	       rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_ISSUER_ERROR;
}

/* One request: url, and a command of our own (or NULL: libcurl's FETCH). */
static bool perform(struct imap *im, const char *url, const char *command, const char *what,
		    struct errlist *errs)
{
	CURLcode rc;

	im->body.len = 0;
	im->body.buf[0] = '\0';
	im->lines.len = 0;
	im->lines.buf[0] = '\0';
	im->errbuf[0] = '\0';
	curl_easy_setopt(im->curl, CURLOPT_URL, url);
	curl_easy_setopt(im->curl, CURLOPT_CUSTOMREQUEST, command);
	rc = curl_easy_perform(im->curl);
	if (im->reselected) {
		errlist_add(errs, "[replies] %s: the connection was lost and would open the "
			    "mailbox read-write: stopped, to leave it unchanged", im->url);
		im->examined = im->reselected = false;
		return false;
	}
	if (rc != CURLE_OK) {
		const char *err = im->errbuf[0] ? im->errbuf : curl_easy_strerror(rc);

		if (cert_problem(rc))
			errlist_add(errs, "[replies] %s: server certificate not trusted: %s (set "
				    "[replies] ca-file for a private CA)", im->url, err);
		else if (rc == CURLE_USE_SSL_FAILED)
			errlist_add(errs, "[replies] %s: server offers no STARTTLS and [replies] tls "
				    "= required: %s", im->url, err);
		else if (rc == CURLE_SSL_CONNECT_ERROR)
			errlist_add(errs, "[replies] %s: TLS handshake failed: %s", im->url, err);
		else
			errlist_add(errs, "[replies] %s: %s: %s", im->url, what, err);
		return false;
	}
	return true;
}

/* A mailbox name as an IMAP quoted string. */
static char *quoted(const char *s)
{
	struct strbuf sb;

	sb_init(&sb);
	sb_addc(&sb, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			sb_addc(&sb, '\\');
		sb_addc(&sb, *s);
	}
	sb_addc(&sb, '"');
	return sb_take(&sb);
}

bool imap_examine(struct imap *im, unsigned long *uidvalidity, struct errlist *errs)
{
	char *box = quoted(im->mailbox), *cmd = xasprintf("EXAMINE %s", box);
	const char *v;
	bool ok;

	im->examined = im->reselected = false;
	ok = perform(im, im->url, cmd, "EXAMINE", errs);
	free(cmd);
	free(box);
	if (!ok)
		return false;
	/* The tagged reply to EXAMINE is the last line the server sent. */
	if (!strstr(im->lines.buf, "[READ-ONLY]")) {
		errlist_add(errs, "[replies] %s: the server did not open the mailbox read-only",
			    im->url);
		return false;
	}
	v = strstr(im->body.buf, "[UIDVALIDITY ");
	if (!v || !(*uidvalidity = strtoul(v + 13, NULL, 10))) {
		errlist_add(errs, "[replies] %s: the server gave no UIDVALIDITY", im->url);
		return false;
	}
	v = strstr(im->body.buf, "[UIDNEXT ");
	im->uidnext = v ? strtoul(v + 9, NULL, 10) : 0;
	/* "* 4000 EXISTS" */
	im->exists = 0;
	for (v = im->body.buf; (v = strstr(v, "* ")); v += 2)
		if (isdigit((unsigned char)v[2])) {
			char *end;
			unsigned long n = strtoul(v + 2, &end, 10);

			if (strncmp(end, " EXISTS", 7) == 0) {
				im->exists = n;
				break;
			}
		}
	im->examined = true;
	return true;
}

static int cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/* UIDs a UID SEARCH asks for at once. Its answer is one line, and libcurl
 * 7.88 passes a line longer than its buffer (16 KiB) on with its middle
 * cut out (curl's known bug 90): of 4 000 messages 517 UIDs came, and the
 * mark moved past the rest for good. 1 000 UIDs of up to 10 digits keep
 * the line under 12 KiB. */
#define SEARCH_WINDOW 1000UL

/* One UID SEARCH of the UIDs above `after` among the messages numbered
 * lo to hi (0: all), appended to *uids. */
static bool search_window(struct imap *im, unsigned long lo, unsigned long hi,
			  unsigned long after, unsigned long **uids, size_t *n, size_t *cap,
			  struct errlist *errs)
{
	char *cmd = hi ? xasprintf("UID SEARCH %lu:%lu UID %lu:*", lo, hi, after + 1)
		       : xasprintf("UID SEARCH UID %lu:*", after + 1);
	bool ok = perform(im, im->url, cmd, "UID SEARCH", errs);
	const char *p;

	free(cmd);
	if (!ok)
		return false;
	/* "* SEARCH 4 7 9": with n:*, the last message comes even when its
	 * UID is below n, so each is compared. */
	for (p = strstr(im->body.buf, "SEARCH"); p && *p && *p != '\n';) {
		char *end;
		unsigned long uid;

		p += strcspn(p, "0123456789\n");
		if (*p == '\n' || !*p)
			break;
		uid = strtoul(p, &end, 10);
		p = end;
		if (uid > after) {
			*uids = xgrow(*uids, cap, *n, sizeof(**uids));
			(*uids)[(*n)++] = uid;
		}
	}
	return true;
}

bool imap_uids_after(struct imap *im, unsigned long after, unsigned long **uids, size_t *n,
		     struct errlist *errs)
{
	size_t cap = 0;
	bool ok = im->examined;

	*uids = NULL;
	*n = 0;
	/* Few new UIDs can come (UIDNEXT says so): one search. Else windows
	 * of the messages by number, up to EXISTS when examined (what comes
	 * since is read next time: its UID is above any read now). */
	if (ok && im->exists && !(im->uidnext && im->uidnext - (after + 1) <= SEARCH_WINDOW)) {
		for (unsigned long lo = 1; ok && lo <= im->exists; lo += SEARCH_WINDOW) {
			unsigned long hi = lo + SEARCH_WINDOW - 1;

			ok = search_window(im, lo, hi < im->exists ? hi : im->exists, after, uids, n,
					   &cap, errs);
		}
	} else {
		ok = ok && search_window(im, 0, 0, after, uids, n, &cap, errs);
	}
	if (!ok) {
		free(*uids);
		*uids = NULL;
		*n = 0;
		return false;
	}
	if (*n > 1) {
		qsort(*uids, *n, sizeof(**uids), cmp_ulong);
		/* (A server may repeat a UID across windows: once each.) */
		size_t k = 1;

		for (size_t i = 1; i < *n; i++)
			if ((*uids)[i] != (*uids)[k - 1])
				(*uids)[k++] = (*uids)[i];
		*n = k;
	}
	return true;
}

char *imap_fetch(struct imap *im, unsigned long uid, size_t *len, struct errlist *errs)
{
	char *url = xasprintf("%s/;UID=%lu", im->url, uid);
	bool ok = im->examined && perform(im, url, NULL, "UID FETCH", errs);

	free(url);
	if (!ok)
		return NULL;
	char *out = xmalloc(im->body.len + 1);

	memcpy(out, im->body.buf, im->body.len + 1);
	*len = im->body.len;
	return out;
}
