#include "await.h"

#include "clock.h"

#include "log.h"

#include <errno.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <sysexits.h>
#include <unistd.h>

/* A database written in place appears in several steps: try once it settles. */
#define SETTLE_NS (250 * 1000 * 1000L)

struct waiting {
	const char *config_path;
	char *status; /* the last STATUS= sent, to say each change once */
	int sigfd, inofd, settlefd;
	uint64_t watchdog_usec;
};

static bool absent(const char *path)
{
	return access(path, F_OK) < 0 && errno == ENOENT;
}

/* "no calendar at X, no registration database at Y", or NULL when both
 * exist. */
static char *missing_inputs(const struct config *cfg)
{
	bool cal = absent(cfg->calendar), reg = absent(cfg->registrations);

	if (cal && reg)
		return xasprintf("no calendar at %s, no registration database at %s",
				 cfg->calendar, cfg->registrations);
	if (cal)
		return xasprintf("no calendar at %s", cfg->calendar);
	if (reg)
		return xasprintf("no registration database at %s", cfg->registrations);
	return NULL;
}

/* Whether an error is only the "cannot open" of a file said missing. */
static bool about_missing(const struct config *cfg, const char *err)
{
	const char *paths[] = {cfg->calendar, cfg->registrations};

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		size_t n = strlen(paths[i]);
		if (absent(paths[i]) && strncmp(err, paths[i], n) == 0 && err[n] == ':')
			return true;
	}
	return false;
}

/* The nearest folder of path that exists: a state directory not created
 * yet is seen when its parent gains it. */
static void watch_folder_of(int fd, const char *path)
{
	char *dir = xstrdup(path);

	for (;;) {
		char *parent = xstrdup(dirname(dir));
		free(dir);
		dir = parent;
		if (inotify_add_watch(fd, dir, IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY |
							IN_ATTRIB | IN_DELETE | IN_MOVED_FROM) >= 0)
			break;
		if (errno != ENOENT || strcmp(dir, "/") == 0 || strcmp(dir, ".") == 0) {
			log_warn("%s: cannot watch for changes: %m (SIGHUP makes kallad look again)",
				 dir);
			break;
		}
	}
	free(dir);
}

static void watch(struct waiting *w, const struct config *cfg)
{
	char *confd = xasprintf("%s.d/x", w->config_path);

	if (w->inofd >= 0)
		close(w->inofd);
	w->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	watch_folder_of(w->inofd, w->config_path);
	watch_folder_of(w->inofd, confd);
	if (cfg) {
		watch_folder_of(w->inofd, cfg->calendar);
		watch_folder_of(w->inofd, cfg->registrations);
	}
	free(confd);
}

static void say(struct waiting *w, const char *what)
{
	if (w->status && strcmp(w->status, what) == 0)
		return;
	free(w->status);
	w->status = xstrdup(what);
	sd_notifyf(0, "STATUS=waiting: %s", what);
}

/* One attempt. Returns the programme, or NULL having said what it still
 * waits for; *fatal when the first attempt failed otherwise than by
 * something missing (the daemon then exits as it always has). */
static struct programme *attempt(struct waiting *w, bool first, int *fatal)
{
	struct errlist errs = {0}, cfg_errs = {0};
	struct programme *pg;
	struct config *cfg;
	char *missing = NULL;
	int failed;

	*fatal = 0;
	if ((pg = programme_load(w->config_path, &errs, &failed))) {
		errlist_free(&errs);
		return pg;
	}
	cfg = failed & PART_CONFIG ? NULL : config_load(w->config_path, &cfg_errs);
	if (cfg)
		missing = missing_inputs(cfg);
	if (first && (!missing || failed & (PART_CONFIG | PART_TEMPLATES))) {
		for (size_t i = 0; i < errs.n; i++)
			log_error("%s", errs.items[i]);
		*fatal = failed & PART_REGISTRATIONS && !(failed & ~PART_REGISTRATIONS) ? 1 : EX_CONFIG;
	} else {
		const char *first_err = NULL;

		for (size_t i = 0; i < errs.n; i++) {
			if (cfg && about_missing(cfg, errs.items[i]))
				continue;
			log_error("%s", errs.items[i]);
			if (!first_err)
				first_err = errs.items[i];
		}
		const char *what = missing ? missing : first_err ? first_err : "the programme does not load";

		if (missing && !str_eq(w->status, what))
			log_warn("%s: waiting, sending nothing until it is there", missing);
		say(w, what);
		watch(w, cfg);
	}
	free(missing);
	config_free(cfg);
	errlist_free(&cfg_errs);
	errlist_free(&errs);
	return NULL;
}

static void ping_watchdog(struct waiting *w)
{
	if (w->watchdog_usec)
		sd_notify(0, "WATCHDOG=1");
}

/* The wait: a fresh attempt after each settled change and each SIGHUP.
 * Returns the programme, or NULL with *rc -1 (stopped) or 1 (failed). */
static struct programme *wait_loop(struct waiting *w, int *rc)
{
	struct itimerspec settle = {.it_value = {0, SETTLE_NS}};
	struct programme *pg = NULL;
	int fatal;

	while (!pg) {
		struct pollfd fds[] = {{w->sigfd, POLLIN, 0}, {w->inofd, POLLIN, 0},
				       {w->settlefd, POLLIN, 0}};
		int timeout = w->watchdog_usec ? (int)(w->watchdog_usec / 2000) : -1;
		struct signalfd_siginfo si;
		char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
		bool again = false;
		uint64_t n;

		if (poll(fds, ARRAY_SIZE(fds), timeout) < 0 && errno != EINTR) {
			log_error("poll: %m");
			*rc = 1;
			return NULL;
		}
		ping_watchdog(w);
		while (read(w->sigfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
				sd_notify(0, "STOPPING=1");
				log_info("stopping");
				*rc = -1;
				return NULL;
			}
			if (si.ssi_signo == SIGHUP)
				again = true;
		}
		if (fds[1].revents) {
			while (read(w->inofd, buf, sizeof(buf)) > 0)
				;
			timerfd_settime(w->settlefd, 0, &settle, NULL);
		}
		if (fds[2].revents && read(w->settlefd, &n, sizeof(n)) > 0)
			again = true;
		if (again)
			pg = attempt(w, false, &fatal);
	}
	return pg;
}

struct programme *await_programme(const char *config_path, int *rc)
{
	struct waiting w = {.config_path = config_path, .sigfd = -1, .inofd = -1, .settlefd = -1};
	struct programme *pg;
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	*rc = 0;
	if ((pg = attempt(&w, true, rc)) || *rc)
		goto out;
	w.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	w.settlefd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (w.sigfd < 0 || w.settlefd < 0 || w.inofd < 0) {
		log_error("cannot set up signals, timers and watches: %m");
		*rc = 1;
		goto out;
	}
	if (sd_watchdog_enabled(0, &w.watchdog_usec) <= 0)
		w.watchdog_usec = 0;
	sd_notify(0, "READY=1");
	if ((pg = wait_loop(&w, rc))) {
		log_info("%s: what was missing is there: starting", config_path);
		clock_mark(); /* --now holds from here, after the wait */
	}
out:
	free(w.status);
	if (w.sigfd >= 0)
		close(w.sigfd);
	if (w.inofd >= 0)
		close(w.inofd);
	if (w.settlefd >= 0)
		close(w.settlefd);
	return pg;
}
