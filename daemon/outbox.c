/* outbox.c: a Maildir that stands in for the SMTP server, so that a new
 * user sees every message kallad would send before configuring one. */
#include "outbox.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct outbox {
	char *dir;
	char *host;        /* this host's name, made safe for a Maildir name */
	unsigned counter;  /* messages written by this process */
};

char *outbox_dir(const char *state)
{
	const char *slash = strrchr(state, '/');

	if (!slash)
		return xstrdup("outbox");
	if (slash == state)
		return xstrdup("/outbox");
	return xasprintf("%.*s/outbox", (int)(slash - state), state);
}

/* mkdir -p: the state directory may not exist yet on a first run. */
static bool outbox_mkdirs(const char *path, struct errlist *errs)
{
	char *p = xstrdup(path);
	bool ok = true;

	for (char *s = p + 1; ok; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0750) < 0 && errno != EEXIST) {
			errlist_add(errs, "outbox: %s: cannot create: %s", p, strerror(errno));
			ok = false;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return ok;
}

/* Maildir names may hold neither '/' nor ':' (the flag separator); the
 * convention writes them as octal escapes. */
static char *outbox_hostname(void)
{
	char host[HOST_NAME_MAX + 1] = "localhost";
	struct strbuf sb;

	if (gethostname(host, sizeof(host)) < 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	sb_init(&sb);
	for (const char *c = host; *c; c++) {
		if (*c == '/')
			sb_add(&sb, "\\057");
		else if (*c == ':')
			sb_add(&sb, "\\072");
		else
			sb_addc(&sb, *c);
	}
	return sb_take(&sb);
}

struct outbox *outbox_open(const char *dir, struct errlist *errs)
{
	static const char *subs[] = {"tmp", "new", "cur"};
	bool ok = outbox_mkdirs(dir, errs);

	for (size_t i = 0; ok && i < ARRAY_SIZE(subs); i++) {
		char *sub = xasprintf("%s/%s", dir, subs[i]);
		ok = outbox_mkdirs(sub, errs);
		free(sub);
	}
	if (!ok)
		return NULL;
	struct outbox *o = xcalloc(1, sizeof(*o));
	o->dir = xstrdup(dir);
	o->host = outbox_hostname();
	log_info("outbox: no [smtp] url; mail is written to the Maildir %s/new", dir);
	return o;
}

static bool outbox_write_all(int fd, const char *msg, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, msg, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		msg += n;
		len -= (size_t)n;
	}
	return true;
}

/* A rename is durable only once the directory holding it is synced. */
static bool outbox_sync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool ok = fd >= 0 && fsync(fd) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* time.pid_counter.host: unique per process and message; O_EXCL below
 * catches the impossible rest. */
static char *outbox_name(struct outbox *o)
{
	return xasprintf("%lld.%ld_%u.%s", (long long)time(NULL), (long)getpid(), ++o->counter,
			 o->host);
}

/* Writes tmp to disk for good; returns what failed, or NULL, with errno. */
static const char *outbox_write_tmp(const char *tmp, const char *msg, size_t len)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	const char *what = NULL;

	if (fd < 0)
		return "cannot create";
	if (!outbox_write_all(fd, msg, len))
		what = "cannot write";
	else if (fsync(fd) < 0)
		what = "cannot sync";
	int saved = errno;
	if (close(fd) < 0 && !what)
		return "cannot close";
	errno = saved;
	return what;
}

enum send_result outbox_send(struct outbox *o, const char *msg, size_t len, char **detail)
{
	char *name = outbox_name(o);
	char *tmp = xasprintf("%s/tmp/%s", o->dir, name);
	char *new = xasprintf("%s/new/%s", o->dir, name);
	char *newdir = xasprintf("%s/new", o->dir);
	const char *what = outbox_write_tmp(tmp, msg, len);

	if (!what && rename(tmp, new) < 0)
		what = "cannot move into new/";
	/* Once in new/ the message is delivered: a failed directory sync only
	 * weakens durability, and calling it a failure would duplicate it. */
	if (!what && !outbox_sync_dir(newdir))
		log_warn("outbox: %s: cannot sync: %s", newdir, strerror(errno));

	enum send_result r = SEND_OK;
	if (what) {
		*detail = xasprintf("outbox: %s: %s: %s", tmp, what, strerror(errno));
		unlink(tmp); /* no partial mail left behind; fails harmlessly if never made */
		r = SEND_TRANSIENT;
	} else {
		*detail = xasprintf("written to %s", new);
	}
	free(name);
	free(tmp);
	free(new);
	free(newdir);
	return r;
}

void outbox_close(struct outbox *o)
{
	if (!o)
		return;
	free(o->dir);
	free(o->host);
	free(o);
}
