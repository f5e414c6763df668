/* smtp_reply.c: what an SMTP transfer's end means: for the message (sent,
 * transient, permanent, unknown) or for the relay as a whole (connection,
 * TLS, AUTH, a refused sender), by the command the last reply answered and
 * its code; the server's own words kept for the ledger; replies that ask
 * to slow down. */
#include "smtp.h"
#include "smtp_internal.h"

#include "log.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
const char *smtp_where(const struct slot *s, long code)
{
	return code >= 400 && s->last_reply ? s->reply_stage : s->stage;
}

bool smtp_at(const char *where, const char *stage)
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
enum send_result smtp_classify(struct slot *s, CURLcode rc, long code)
{
	const char *where = smtp_where(s, code);

	s->fault = RELAY_NONE;
	if (rc == CURLE_OK)
		return SEND_OK;
	if (smtp_at(where, "end of data")) {
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
	if ((smtp_at(where, "RCPT") || smtp_at(where, "DATA")) && code >= 400 && code < 600 &&
	    code != 421)
		return code >= 500 ? SEND_PERMANENT : SEND_TRANSIENT;
	if (smtp_at(where, "MAIL") && code >= 500 && code < 600 && smtp_too_big(s, code))
		return SEND_PERMANENT;
	if (rc == CURLE_LOGIN_DENIED || smtp_at(where, "AUTH"))
		s->fault = RELAY_AUTH;
	else if (smtp_tls_problem(rc) || smtp_at(where, "STARTTLS"))
		s->fault = RELAY_TLS;
	else if (smtp_at(where, "MAIL") && code >= 400 && code != 421)
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
	if (smtp_at(s->stage, "connect")) {
		curl_easy_getinfo(s->curl, CURLINFO_CONNECT_TIME, &connect);
		if (connect > 0)
			return xasprintf("the server accepted the connection but sent no greeting "
					 "within %ld s (at connect)", s->pool->timeout);
		return xasprintf("cannot connect within %ld s (at connect)", s->pool->timeout);
	}
	return xasprintf("no reply within %ld s (at %s)", s->pool->timeout, s->stage);
}

char *smtp_detail(const struct slot *s, CURLcode rc, enum send_result r, long code)
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
bool smtp_limit_sign(long code, const char *reply)
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
