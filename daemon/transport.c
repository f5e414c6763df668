/* transport.c: picks SMTP or the outbox, reads the SMTP password, and
 * refuses recipients that could not be sent safely to either. */
#include "transport.h"

#include "outbox.h"
#include "smtp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Sends started and settled at once (the outbox, a refused recipient),
 * whose outcomes were not taken yet: at most one per connection. */
#define SETTLED_MAX 16

struct transport {
	struct smtp *smtp;     /* exactly one of these two is set */
	struct outbox *outbox;
	struct outcome settled[SETTLED_MAX];
	int n_settled;
	bool slow;             /* of the last outcome taken */
	enum relay_fault fault;
};

/* Opens and reads a password file. Files a user names must be private:
 * mode & 077 means others on the machine can read (or swap) the secret.
 * systemd's credential files are trusted as they are. */
static char *transport_read_secret(const char *label, const char *path, bool check_mode,
				   struct errlist *errs)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	struct strbuf sb;
	char chunk[512];
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0) {
		errlist_add(errs, "%s: %s: cannot read: %s", label, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (check_mode && (st.st_mode & 077)) {
		errlist_add(errs,
			    "%s: %s: refused: the file is open to group or others "
			    "(mode %04o); make it private with: chmod 600 %s",
			    label, path, (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return NULL;
	}
	sb_init(&sb);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		sb_addn(&sb, chunk, (size_t)n);
	explicit_bzero(chunk, sizeof(chunk));
	close(fd);
	if (n < 0) {
		errlist_add(errs, "%s: %s: cannot read: %s", label, path, strerror(errno));
		explicit_bzero(sb.buf, sb.len);
		sb_free(&sb);
		return NULL;
	}
	if (sb.len > 0 && sb.buf[sb.len - 1] == '\n')
		sb.buf[--sb.len] = '\0'; /* editors add one; a password has none */
	if (sb.len > 0 && sb.buf[sb.len - 1] == '\r')
		sb.buf[--sb.len] = '\0';
	return sb_take(&sb);
}

/* A value with '/' is a file path; else a systemd credential name
 * (LoadCredential=NAME:...), found in $CREDENTIALS_DIRECTORY. */
char *transport_secret(const char *label, const char *value, struct errlist *errs)
{
	if (strchr(value, '/'))
		return transport_read_secret(label, value, true, errs);
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	if (str_empty(dir)) {
		errlist_add(errs,
			    "%s: %s: a credential name, but CREDENTIALS_DIRECTORY is "
			    "not set (run under systemd with LoadCredential=%s:FILE, or give a "
			    "file path)",
			    label, value, value);
		return NULL;
	}
	char *path = xasprintf("%s/%s", dir, value);
	char *pw = transport_read_secret(label, path, false, errs);
	free(path);
	/* The units' SetCredential= default: the file LoadCredential= names
	 * was not there when the service started. */
	if (pw && !*pw) {
		errlist_add(errs,
			    "%s: the credential %s is empty: put the password in the "
			    "file the unit's LoadCredential=%s:FILE names (/etc/kallad/%s) and "
			    "restart the service",
			    label, value, value, value);
		free(pw);
		return NULL;
	}
	return pw;
}

static void transport_free_secret(char *pw)
{
	if (pw)
		explicit_bzero(pw, strlen(pw));
	free(pw);
}

static struct transport *transport_open_smtp(const struct config *cfg, struct errlist *errs)
{
	char *pw = NULL;

	/* libcurl would quietly skip AUTH with half the credentials. */
	if (str_empty(cfg->smtp_user) != str_empty(cfg->smtp_password)) {
		errlist_add(errs, "[smtp] %s: must be set together with %s",
			    str_empty(cfg->smtp_user) ? "user" : "password",
			    str_empty(cfg->smtp_user) ? "password" : "user");
		return NULL;
	}
	if (!str_empty(cfg->smtp_password)) {
		pw = transport_secret("[smtp] password", cfg->smtp_password, errs);
		if (!pw)
			return NULL;
	}
	struct smtp *s = smtp_open(cfg, pw, errs);
	transport_free_secret(pw);
	if (!s)
		return NULL;
	struct transport *t = xcalloc(1, sizeof(*t));
	t->smtp = s;
	return t;
}

bool transport_check_password(const struct config *cfg, struct errlist *errs)
{
	char *pw;

	if (!cfg->smtp_url)
		return true;
	if (str_empty(cfg->smtp_user) != str_empty(cfg->smtp_password)) {
		errlist_add(errs, "[smtp] %s: must be set together with %s",
			    str_empty(cfg->smtp_user) ? "user" : "password",
			    str_empty(cfg->smtp_user) ? "password" : "user");
		return false;
	}
	if (str_empty(cfg->smtp_password))
		return true;
	pw = transport_secret("[smtp] password", cfg->smtp_password, errs);
	transport_free_secret(pw);
	return pw != NULL;
}

struct transport *transport_open(const struct config *cfg, struct errlist *errs)
{
	if (cfg->smtp_url)
		return transport_open_smtp(cfg, errs);
	if (str_empty(cfg->state)) {
		errlist_add(errs, "[programme] state: unset, so there is no place for the outbox");
		return NULL;
	}
	char *dir = outbox_dir(cfg->state);
	struct outbox *o = outbox_open(dir, errs);
	free(dir);
	if (!o)
		return NULL;
	struct transport *t = xcalloc(1, sizeof(*t));
	t->outbox = o;
	return t;
}

/* Whatever reaches RCPT TO must be one plain address: no controls (command
 * injection), no spaces or angle brackets (another parameter). */
static bool transport_rcpt_ok(const char *rcpt)
{
	const char *at = strrchr(rcpt, '@');

	if (!at || at == rcpt || at[1] == '\0')
		return false;
	for (const unsigned char *c = (const unsigned char *)rcpt; *c; c++)
		if (*c <= ' ' || *c == 0x7f || *c == '<' || *c == '>')
			return false;
	return true;
}

int transport_connections(const struct transport *t)
{
	return t->smtp ? smtp_connections(t->smtp) : 1;
}

int transport_in_flight(const struct transport *t)
{
	return t->n_settled + (t->smtp ? smtp_in_flight(t->smtp) : 0);
}

bool transport_ready(struct transport *t)
{
	return t->n_settled > 0 || (t->smtp && smtp_ready(t->smtp));
}

bool transport_can_start(const struct transport *t)
{
	if (transport_in_flight(t) >= transport_connections(t))
		return false;
	return !t->smtp || smtp_can_start(t->smtp);
}

void transport_start(struct transport *t, const char *rcpt, const char *msg, size_t len,
		     void *tag)
{
	struct outcome *o;

	if (t->smtp && rcpt && transport_rcpt_ok(rcpt)) {
		smtp_start(t->smtp, rcpt, msg, len, tag);
		return;
	}
	if (t->n_settled >= SETTLED_MAX)
		abort(); /* a caller's bug: transport_can_start() said no */
	o = &t->settled[t->n_settled++];
	*o = (struct outcome){.tag = tag};
	if (!rcpt || !transport_rcpt_ok(rcpt)) {
		o->detail = xasprintf("invalid recipient address \"%s\"", rcpt ? rcpt : "");
		o->result = SEND_PERMANENT;
	} else {
		o->result = outbox_send(t->outbox, msg, len, &o->detail);
	}
}

bool transport_finish(struct transport *t, struct outcome *o)
{
	if (t->n_settled > 0) {
		/* A result settled here (a refused address) says nothing of the
		 * server. */
		*o = t->settled[0];
		memmove(&t->settled[0], &t->settled[1], (size_t)--t->n_settled * sizeof(*o));
	} else if (!t->smtp || !smtp_finish(t->smtp, o)) {
		return false;
	}
	t->slow = o->slow;
	t->fault = o->result == SEND_RELAY ? o->fault : RELAY_NONE;
	return true;
}

void transport_pause(struct transport *t, double secs)
{
	struct timespec ts = {(time_t)secs, (long)((secs - (time_t)secs) * 1e9)};

	if (t->smtp) {
		smtp_pause(t->smtp, secs);
		return;
	}
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

enum send_result transport_send(struct transport *t, const char *rcpt, const char *msg,
				size_t len, char **detail)
{
	struct outcome o;

	transport_start(t, rcpt, msg, len, NULL);
	if (!transport_finish(t, &o)) {
		*detail = xstrdup("no send was in flight");
		return SEND_TRANSIENT;
	}
	*detail = o.detail;
	return o.result;
}

bool transport_should_slow(const struct transport *t)
{
	return t->slow;
}

enum relay_fault transport_fault(const struct transport *t)
{
	return t->fault;
}

void transport_hangup(struct transport *t)
{
	if (t && t->smtp)
		smtp_hangup(t->smtp);
}

void transport_set_tick(struct transport *t, void (*tick)(void *), void *arg)
{
	if (t->smtp)
		smtp_set_tick(t->smtp, tick, arg);
}

void transport_close(struct transport *t)
{
	if (!t)
		return;
	smtp_close(t->smtp);
	outbox_close(t->outbox);
	for (int i = 0; i < t->n_settled; i++)
		free(t->settled[i].detail);
	free(t);
}

const char *transport_result_name(enum send_result r)
{
	switch (r) {
	case SEND_OK:
		return "ok";
	case SEND_TRANSIENT:
		return "transient";
	case SEND_PERMANENT:
		return "permanent";
	case SEND_UNKNOWN:
		return "unknown";
	case SEND_RELAY:
		return "relay";
	}
	return "?";
}
