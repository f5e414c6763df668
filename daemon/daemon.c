#include "daemon.h"

#include "await.h"
#include "clock.h"
#include "log.h"
#include "preflight.h"
#include "programme.h"
#include "regdigest.h"
#include "replies.h"
#include "send.h"
#include "transport.h"
#include "tz.h"

#include <errno.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <sysexits.h>
#include <unistd.h>

/* Editors and export jobs save in bursts; re-plan once it settles. */
#define DEBOUNCE_NS (250 * 1000 * 1000L)
#define DEBOUNCE_MAX_S 2 /* arm_debounce */
#define INTERRUPT_AFTER_S 5 /* should_stop */

struct daemon {
	struct programme *pg;
	struct state *st;
	struct transport *tr;
	struct sender *snd;
	int sigfd, timerfd, inofd, debouncefd, repliesfd; /* closed in this order */
	bool stop, reload, replan;
	/* What inotify saw since the last reload: the registration database,
	 * the site templates, the configuration's files, anything else. */
	bool changed_reg, changed_tpl, changed_conf, changed_other;
	char *pidfile;
	int failed; /* passes failed in a row: the next try waits 5 s, doubling to a minute */
	struct timespec pass_began; /* of the pass under way (work) */
	struct timespec pending_since; /* the first change not read yet, or zero */
	uint64_t watchdog_usec;
	struct timespec pinged; /* the last WATCHDOG=1 */
};

/* WATCHDOG=1 at most every half interval: from the wait loop, and between
 * messages of a long send, which may run longer than the interval. */
static void ping_watchdog(struct daemon *d)
{
	struct timespec now;
	uint64_t since;

	if (!d->watchdog_usec)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	since = (uint64_t)(now.tv_sec - d->pinged.tv_sec) * 1000000 +
		(uint64_t)((now.tv_nsec - d->pinged.tv_nsec) / 1000);
	if (since < d->watchdog_usec / 2)
		return;
	sd_notify(0, "WATCHDOG=1");
	d->pinged = now;
}

static void drain_signals(struct daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			d->reload = true;
		else if (si.ssi_signo == SIGUSR1)
			d->replan = true; /* another kallad changed the ledger */
		else
			d->stop = true;
	}
}

static void on_inotify(struct daemon *d);

/* A change of what the planner reads (registrations, configuration,
 * calendar or material) that the debounce's reload has not read yet. */
static bool inputs_pending(const struct daemon *d)
{
	return d->changed_reg || d->changed_conf || d->changed_other;
}

/* Asked by the sender between messages: a SIGTERM ends the run after the
 * message in flight. A change of what the planner reads (the calendar,
 * the registrations, the configuration) ends a pass that has sent for
 * INTERRUPT_AFTER_S: one paced by max-per-minute or a slow relay may run
 * for many minutes, and would go on sending what the change may have
 * made wrong (an invitation to a session cancelled meanwhile). What it
 * has not sent is planned again from the new inputs at once; a shorter
 * pass ends first (so that inputs written again and again cannot keep
 * every pass from sending). */
static bool should_stop(void *arg)
{
	struct daemon *d = arg;
	struct timespec now;

	ping_watchdog(d);
	drain_signals(d);
	if (d->stop)
		return true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - d->pass_began.tv_sec < INTERRUPT_AFTER_S)
		return false;
	on_inotify(d);
	if (!inputs_pending(d))
		return false;
	log_info("the inputs changed while sending: this pass stops, and what it has not sent "
		 "is planned again");
	return true;
}

/* optional: a folder that need not be there (the drop-ins'): its absence
 * is no warning, its parent's watch sees it come (on_inotify). */
static void add_watch(struct daemon *d, const char *path, bool optional)
{
	char *copy = xstrdup(path);
	const char *dir = dirname(copy);

	/* Watch the directory: a file replaced by rename keeps being seen. */
	if (inotify_add_watch(d->inofd, dir,
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MODIFY |
				      IN_MOVED_FROM | IN_ATTRIB) < 0 &&
	    !(optional && errno == ENOENT))
		log_warn("%s: cannot watch for changes: %m", dir);
	free(copy);
}

static void watch_inputs(struct daemon *d, const struct config *cfg)
{
	char *dropins = config_dropin_dir(cfg->path), *confd = xasprintf("%s/x", dropins);
	char *tpl_dir = cfg->templates ? xasprintf("%s/x/x", cfg->templates) : NULL;

	/* One descriptor for the daemon's life: what was written while a
	 * reload read the inputs waits in it, seen once the reload is done. */
	if (d->inofd < 0)
		d->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	add_watch(d, cfg->path, false);
	add_watch(d, confd, true);
	add_watch(d, cfg->calendar, false);
	add_watch(d, cfg->registrations, false); /* the database, its -wal and -journal */
	if (cfg->csv_absences)
		add_watch(d, cfg->csv_absences, false);
	if (cfg->csv_attachments)
		add_watch(d, cfg->csv_attachments, false);
	if (tpl_dir) {
		/* templates/<language>/<message>: the folder and each language. */
		char *base = xasprintf("%s/x", cfg->templates);
		add_watch(d, base, false);
		for (const char *lang = "sv"; lang; lang = strcmp(lang, "sv") ? NULL : "en") {
			char *p = xasprintf("%s/%s/x", cfg->templates, lang);
			add_watch(d, p, false);
			free(p);
		}
		free(base);
	}
	free(confd);
	free(dropins);
	free(tpl_dir);
}

/* The inputs the configuration names, watched before they are first read:
 * a write while the daemon starts is seen. (Read again with them; a broken
 * configuration is named then.) */
static void watch_early(struct daemon *d, const char *config_path)
{
	struct errlist errs = {0};
	struct config *cfg = config_load(config_path, &errs);

	if (cfg)
		watch_inputs(d, cfg);
	config_free(cfg);
	errlist_free(&errs);
}

static bool same_base(const char *path, const char *name, const char *suffix)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t n = strlen(base);

	return strncmp(name, base, n) == 0 && strcmp(name + n, suffix) == 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Only kallad's inputs count; a log file or an editor's swap file beside
 * them does not. The watched folders may hold other things. */
static bool is_registrations(const struct config *cfg, const char *name)
{
	return same_base(cfg->registrations, name, "") ||
	       same_base(cfg->registrations, name, "-wal") ||
	       same_base(cfg->registrations, name, "-journal");
}

/* A database's -wal or -journal, whose content changes only by a write to
 * it: kallad's own read of the database (read-only) may create an empty
 * -wal, set its mode and close it, and that is no change. */
static bool is_db_companion(const struct config *cfg, const struct inotify_event *ev)
{
	return !reg_is_csv(cfg->registrations) &&
	       (same_base(cfg->registrations, ev->name, "-wal") ||
		same_base(cfg->registrations, ev->name, "-journal"));
}

/* The main file or a drop-in. */
static bool is_config(const struct config *cfg, const char *name)
{
	return same_base(cfg->path, name, "") || ends_with(name, ".conf");
}

/* What the planner reads (with the state database). */
static bool is_planned_from(const struct config *cfg, const char *name)
{
	return is_config(cfg, name) ||
	       same_base(cfg->calendar, name, "") || is_registrations(cfg, name) ||
	       (cfg->csv_absences && same_base(cfg->csv_absences, name, "")) ||
	       (cfg->csv_attachments && same_base(cfg->csv_attachments, name, ""));
}

/* A site template: the words of the messages, which the planner does
 * not read. */
static bool is_template(const struct config *cfg, const char *name)
{
	return cfg->templates && !is_planned_from(cfg, name) &&
	       (ends_with(name, ".txt") || ends_with(name, ".html"));
}

/* The reload waits for the writes to settle (DEBOUNCE_NS after the last)
 * but never longer than DEBOUNCE_MAX_S after the first change it has not
 * read: inputs written again and again are read that often, and a wake-up
 * meanwhile, which waits for the reload (daemon_run), waits no longer. */
static void arm_debounce(struct daemon *d)
{
	struct itimerspec its = {0};
	struct timespec now;
	long long left;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!d->pending_since.tv_sec && !d->pending_since.tv_nsec)
		d->pending_since = now;
	left = (d->pending_since.tv_sec + DEBOUNCE_MAX_S - now.tv_sec) * 1000000000LL +
	       (d->pending_since.tv_nsec - now.tv_nsec);
	if (left > DEBOUNCE_NS)
		left = DEBOUNCE_NS;
	if (left < 1)
		left = 1; /* (zero would disarm it) */
	its.it_value.tv_sec = (time_t)(left / 1000000000LL);
	its.it_value.tv_nsec = (long)(left % 1000000000LL);
	timerfd_settime(d->debouncefd, 0, &its, NULL);
}

static void on_inotify(struct daemon *d)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool relevant = false;
	ssize_t n;

	while ((n = read(d->inofd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			const struct config *cfg = d->pg->cfg;

			if (ev->len && is_db_companion(cfg, ev) && !(ev->mask & IN_MODIFY)) {
				; /* a read of the database, kallad's own reloads' included */
			} else if (ev->len && (ev->mask & IN_ISDIR) &&
				   strcmp(ev->name, "kallad.conf.d") == 0) {
				/* The drop-ins' folder (config_dropin_dir) made
				 * after the start: watched from now, and what it
				 * holds already read by the reload this makes. */
				watch_inputs(d, cfg);
				relevant = d->changed_conf = true;
			} else if (!ev->len || is_planned_from(cfg, ev->name) ||
				 is_template(cfg, ev->name)) {
				relevant = true;
				/* A database's -shm is not ours: its own write shows
				 * as the database or its -wal. */
				if (ev->len && is_registrations(cfg, ev->name) &&
				    !reg_is_csv(cfg->registrations))
					d->changed_reg = true;
				else if (ev->len && is_template(cfg, ev->name))
					d->changed_tpl = true;
				else if (ev->len && is_config(cfg, ev->name))
					d->changed_conf = true;
				else
					d->changed_other = true;
			}
			p += sizeof(*ev) + ev->len;
		}
	}
	if (relevant)
		arm_debounce(d);
}

/* What the transport is made of: a change means a new one. */
static char *smtp_settings(const struct config *cfg)
{
	return xasprintf("%s|%d|%s|%s|%d|%d|%d|%d|%s|%s", cfg->smtp_url ? cfg->smtp_url : "",
			 cfg->smtp_tls_required, cfg->smtp_user ? cfg->smtp_user : "",
			 cfg->smtp_password ? cfg->smtp_password : "", cfg->timeout,
			 cfg->end_of_data_timeout, cfg->idle_timeout, cfg->smtp_connections,
			 cfg->smtp_ca_file ? cfg->smtp_ca_file : "", cfg->from ? cfg->from : "");
}

/* A new [smtp] takes effect on reload: opened first, swapped only if it
 * opens (a wrong password file keeps the old transport, and says so). */
static void reload_transport(struct daemon *d, const char *before)
{
	struct errlist errs = {0};
	char *after = smtp_settings(d->pg->cfg);
	struct transport *tr;

	if (strcmp(before, after) != 0) {
		if ((tr = transport_open(d->pg->cfg, &errs))) {
			transport_close(d->tr);
			d->tr = tr;
			send_set_transport(d->snd, tr);
			/* New settings deserve a try at once, suspended or not. */
			state_relay_clear(d->st, clock_now());
			log_info("[smtp] changed: using the new settings");
		} else {
			for (size_t i = 0; i < errs.n; i++)
				log_error("%s", errs.items[i]);
			log_error("[smtp] changed but cannot be used: still sending as before");
		}
	}
	errlist_free(&errs);
	free(after);
}

/* by_signal: SIGHUP; debounced: inotify saw kallad's inputs change. */
static void reload(struct daemon *d, bool by_signal, bool debounced)
{
	struct errlist errs = {0};
	struct programme *pg;
	char *smtp_before = smtp_settings(d->pg->cfg), *state_before = xstrdup(d->pg->cfg->state);
	/* Only the registrations, the site templates or the configuration
	 * changed: the registrations' fingerprints tell whom the change
	 * touches (a template touches nobody: the planner does not read
	 * templates; nor a change of [smtp] alone, as the configuration's
	 * plan_digest tells), a write of the registrations while this reload
	 * reads them included. */
	bool reg_only = debounced && (d->changed_reg || d->changed_tpl || d->changed_conf) &&
			!d->changed_other;
	char what[120];
	struct regdigest *digests = reg_only ? reg_take_digests(d->pg->reg) : NULL;
	char cal_before[FILE_ID_MAX], plan_before[sizeof(d->pg->cfg->plan_digest)];

	const char *inputs = d->changed_reg && d->changed_tpl ? "the registrations and templates"
			     : d->changed_reg		       ? "the registrations"
			     : d->changed_tpl		       ? "the templates"
							       : "";

	snprintf(what, sizeof(what), "%s%s%s", inputs, *inputs && d->changed_conf ? " and " : "",
		 d->changed_conf ? "the configuration (no planning setting)" : "");
	memcpy(cal_before, d->pg->cal_id, sizeof(cal_before));
	memcpy(plan_before, d->pg->cfg->plan_digest, sizeof(plan_before));
	if (debounced) {
		d->changed_reg = d->changed_tpl = d->changed_conf = d->changed_other = false;
		d->pending_since = (struct timespec){0};
	}
	if (by_signal)
		sd_notify(0, "RELOADING=1\nSTATUS=reloading");
	/* An input the configuration now names in a folder not watched yet
	 * is watched before it is read, as at the start. */
	watch_early(d, d->pg->cfg->path);
	pg = programme_reload(d->pg, &errs);
	bool swapped = pg != d->pg;

	if (!swapped && digests) {
		pg->reg->digests = digests; /* still the registrations read */
		digests = NULL;
	}
	for (size_t i = 0; i < errs.n; i++)
		log_error("%s", errs.items[i]);
	if (pg == d->pg) {
		log_error("reload failed: still running on the previous configuration");
	} else {
		/* Skipped events and rows, last good copies kept: on every reload. */
		for (size_t i = 0; i < pg->warnings.n; i++)
			log_warn("%s", pg->warnings.items[i]);
		log_info("reloaded %s", pg->cfg->path);
	}
	errlist_free(&errs);
	d->pg = pg;
	/* The calendar read may be newer than inotify said so far; a change
	 * of the configuration outside [smtp] may change any plan. */
	if (reg_only && swapped && str_eq(cal_before, pg->cal_id) &&
	    str_eq(plan_before, pg->cfg->plan_digest))
		send_set_programme_registrations(d->snd, pg, digests, pg->reg->digests, what);
	else
		send_set_programme(d->snd, pg);
	regdigest_free(digests);
	reload_transport(d, smtp_before);
	if (strcmp(state_before, pg->cfg->state) != 0)
		log_warn("[programme] state moved to %s: restart kallad to use it; still using %s",
			 pg->cfg->state, state_before);
	free(smtp_before);
	free(state_before);
	/* The inputs stayed watched while they were read (a write meanwhile
	 * makes another reload), new ones too (watch_early above); and those
	 * of the configuration as it was read, if it changed meanwhile. */
	watch_inputs(d, pg->cfg);
	if (by_signal)
		sd_notify(0, "READY=1");
}

struct retry_scan {
	time_t now, next;
	bool claimed; /* another process holds claims: it may die holding them */
};

/* The earliest retry still ahead. One already due was tried in this pass
 * (or is no longer planned): counting it would spin. */
static void min_retry(const struct delivery_row *row, void *arg)
{
	struct retry_scan *r = arg;

	if (row->state == DS_CLAIMED) {
		r->claimed = true;
		return;
	}
	if (row->next_attempt > r->now && (!r->next || row->next_attempt < r->next))
		r->next = row->next_attempt;
}

static const char *months[] = {"jan", "feb", "mar", "apr", "may", "jun",
			       "jul", "aug", "sep", "oct", "nov", "dec"};

static void say_next(const struct send_stats *st, time_t wake)
{
	const struct delivery *n = &st->next;
	struct tm tm;

	char held[200] = "";

	/* What waits for an administrator comes first. */
	if (st->removals_held || st->removed_held)
		snprintf(held, sizeof(held), "held: mass removal (%zu sessions, %zu participants), "
			 "%ld change notices wait for --release-changes; ", st->removals_held,
			 st->removed_held, st->held);
	else if (st->held)
		snprintf(held, sizeof(held), "held: %ld change notices wait for --release-changes; ",
			 st->held);
	if (st->relay_until) {
		/* What holds everything up comes first. */
		tz_local(st->relay_until, &tm);
		sd_notifyf(0, "STATUS=%srelay down, next try %d %s %02d:%02d: %.200s", held,
			   tm.tm_mday, months[tm.tm_mon], tm.tm_hour, tm.tm_min,
			   st->relay_fault ? st->relay_fault : "?");
		return;
	}
	if (!st->next_due) {
		sd_notifyf(0, "STATUS=%sidle: nothing ahead%s", held, wake ? " but retries" : "");
		return;
	}
	tz_local(st->next_due, &tm);
	sd_notifyf(0, "STATUS=%snext: %d %s %02d:%02d, %s '%s' to %ld", held, tm.tm_mday,
		   months[tm.tm_mon], tm.tm_hour, tm.tm_min, n->message,
		   n->session ? n->session->summary : n->deadline ? n->deadline->summary : "-",
		   st->next_count);
}

/* One pass: send what is due, then arm the timer for what comes next. */
static void work(struct daemon *d)
{
	struct itimerspec its = {0};
	struct send_stats st;
	time_t now = clock_now(), wake;
	struct retry_scan retry = {.now = now};

	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &d->pass_began);
	/* A calendar saved since it was read is read before planning (the
	 * debounce may not have fired yet): never plan from a stale copy. */
	for (int tries = 0;; tries++) {
		char disk[FILE_ID_MAX];

		file_identity(d->pg->cfg->calendar, disk);
		if (tries < 3 && disk[0] && !str_eq(disk, d->pg->cal_id))
			reload(d, false, false);
		send_note_known(d->snd, now);
		ok = send_due_wake(d->snd, now, &st);
		if (!st.stale || tries == 3)
			break;
		reload(d, false, false);
	}
	if (!ok || st.stale) {
		/* A writer holding a database past the busy timeout is soon
		 * gone; a full disk is not: soon first, then once a minute. */
		int wait = d->failed < 4 ? 5 << d->failed : 60;

		d->failed++;
		log_error("%s; trying again in %d s",
			  st.stale ? "the calendar keeps changing under kallad"
				   : "the ledger or the registrations failed (above)",
			  wait);
		retry.next = clock_now() + wait; /* from now: the pass may have waited */
	} else {
		d->failed = 0;
	}
	state_delivery_each(d->st, DS_TRANSIENT, min_retry, &retry);
	state_delivery_each(d->st, DS_UNKNOWN, min_retry, &retry);
	state_delivery_each(d->st, DS_CLAIMED, min_retry, &retry);
	if (retry.claimed && (!retry.next || retry.next > now + 60))
		retry.next = now + 60;
	wake = st.next_due;
	if (st.next_wake && (!wake || st.next_wake < wake))
		wake = st.next_wake;
	if (retry.next && (!wake || retry.next < wake))
		wake = retry.next;
	/* What was due and waits for the relay has no row to wake for. */
	if (st.relay_until && (!wake || st.relay_until < wake))
		wake = st.relay_until;
	/* Nothing to send soon: no connection left open for the relay to
	 * time out (its 421 would meet the next message). */
	if (!wake || wake - now >= d->pg->cfg->idle_timeout)
		transport_hangup(d->tr);
	say_next(&st, retry.next);
	/* Due times are on kallad's clock; the timer runs on the system's. A
	 * zero it_value would disarm it, so anything already due is "now". */
	if (wake)
		its.it_value = wake > now ? clock_real(wake) : (struct timespec){0, 1};
	if (timerfd_settime(d->timerfd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0)
		log_error("cannot arm the timer: %m");
}

/* [replies]: read the mailbox now and then every interval; nothing
 * without it. Armed again after each reload (the interval may change). */
static void arm_replies(struct daemon *d)
{
	struct itimerspec its = {0};
	int every = d->pg->cfg->replies_interval;

	if (d->pg->cfg->replies_url) {
		its.it_value.tv_nsec = 1;
		its.it_interval.tv_sec = every;
	}
	if (timerfd_settime(d->repliesfd, 0, &its, NULL) < 0)
		log_error("cannot arm the replies timer: %m");
}

/* Each message read: a first read of a mailbox of years may outlast the
 * watchdog's interval. */
static void replies_progress(const char *kind, const char *email, const char *what,
			     const char *uid, const char *detail, void *arg)
{
	(void)kind, (void)email, (void)what, (void)uid, (void)detail;
	ping_watchdog(arg);
}

/* One pass over the mailbox; true when what it read changes the plan. */
static bool read_replies(struct daemon *d)
{
	struct replies_stats stats;
	struct errlist errs = {0};

	if (!d->pg->cfg->replies_url)
		return false;
	if (!replies_fetch(d->pg->cfg, d->st, clock_now(), replies_progress, d, &stats, &errs))
		for (size_t i = 0; i < errs.n; i++)
			log_warn("%s; reading it again in %ds", errs.items[i],
				 d->pg->cfg->replies_interval);
	errlist_free(&errs);
	if (stats.replies || stats.bounces || stats.delays || stats.ignored)
		log_info("replies: %ld repl%s, %ld bounce%s, %ld delay%s, %ld ignored",
			 stats.replies, stats.replies == 1 ? "y" : "ies", stats.bounces,
			 stats.bounces == 1 ? "" : "s", stats.delays, stats.delays == 1 ? "" : "s",
			 stats.ignored);
	return stats.replies || stats.bounces;
}

static bool write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return false;
	fprintf(f, "%ld\n", (long)getpid());
	return fclose(f) == 0;
}

/* Returns 0 when running, an exit status, or -1 when stopped while waiting
 * for the programme's inputs. */
static int daemon_open(struct daemon *d, const struct cli *c)
{
	struct errlist errs = {0};
	int rc;
	sigset_t mask;

	clock_mark(); /* --now is the time at the start (clock.h) */
	/* Each load of the registrations fingerprints them: a reload then
	 * tells whom a change of the database touches (regdigest.h). */
	reg_keep_digests(true);
	watch_early(d, c->config);
	/* A fresh install has no calendar or registrations yet: wait for them. */
	if (!(d->pg = await_programme(c->config, &rc)))
		return rc;
	for (size_t i = 0; i < d->pg->warnings.n; i++)
		log_warn("%s", d->pg->warnings.items[i]);
	rc = preflight(d->pg, &errs);
	if (!rc) {
		d->st = state_open(d->pg->cfg->state, false, &errs);
		if (d->st)
			d->tr = transport_open(d->pg->cfg, &errs);
	}
	for (size_t i = 0; i < errs.n; i++)
		log_error("%s", errs.items[i]);
	errlist_free(&errs);
	if (rc) /* preflight's: what --check also refuses */
		return rc;
	if (!d->st || !d->tr)
		return d->st ? EX_CONFIG : 1;
	if (!cli_start_clock(c))
		return EX_USAGE;

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	d->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	d->timerfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	d->debouncefd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	d->repliesfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->sigfd < 0 || d->timerfd < 0 || d->debouncefd < 0 || d->repliesfd < 0) {
		log_error("cannot set up signals and timers: %m");
		return 1;
	}
	watch_inputs(d, d->pg->cfg);
	d->pidfile = programme_pidfile(d->pg->cfg);
	if (!write_pidfile(d->pidfile))
		log_warn("%s: cannot write: %m (--send-now and the like cannot wake this daemon)",
			 d->pidfile);
	/* A start is an administrator's doing (or a boot): a suspension left
	 * by the last run is not held against the relay. */
	state_relay_clear(d->st, clock_now());
	d->snd = send_new(d->pg, d->st, d->tr);
	send_set_stop(d->snd, should_stop, d);
	send_keep_due_index(d->snd);
	arm_replies(d);
	if (sd_watchdog_enabled(0, &d->watchdog_usec) <= 0)
		d->watchdog_usec = 0;
	return 0;
}


static void daemon_close(struct daemon *d)
{
	if (d->pidfile) {
		unlink(d->pidfile);
		free(d->pidfile);
	}
	send_free(d->snd);
	transport_close(d->tr);
	state_close(d->st);
	programme_free(d->pg);
	for (int *fd = &d->sigfd; fd <= &d->repliesfd; fd++)
		if (*fd > 0)
			close(*fd);
}

static void drain(int fd)
{
	uint64_t n;

	while (read(fd, &n, sizeof(n)) > 0)
		;
}

int daemon_run(const struct cli *c)
{
	struct daemon d = {.sigfd = -1, .timerfd = -1, .inofd = -1, .debouncefd = -1,
			   .repliesfd = -1};
	int rc;

	if ((rc = daemon_open(&d, c))) {
		daemon_close(&d);
		return rc < 0 ? 0 : rc; /* < 0: stopped while waiting for its inputs */
	}
	log_info("started on %s", d.pg->cfg->path);
	sd_notify(0, "READY=1");
	work(&d);
	while (!d.stop) {
		struct pollfd fds[] = {{d.sigfd, POLLIN, 0}, {d.timerfd, POLLIN, 0},
				       {d.inofd, POLLIN, 0}, {d.debouncefd, POLLIN, 0},
				       {d.repliesfd, POLLIN, 0}};
		/* No wake-ups while waiting, unless systemd asked for a watchdog. */
		int timeout = d.watchdog_usec ? (int)(d.watchdog_usec / 2000) : -1;

		/* A SIGHUP or SIGUSR1 read while sending is still to be acted on. */
		if (d.reload || d.replan)
			timeout = 0;
		bool due = false;

		if (poll(fds, ARRAY_SIZE(fds), timeout) < 0 && errno != EINTR) {
			log_error("poll: %m");
			rc = 1;
			break;
		}
		ping_watchdog(&d);
		if (fds[0].revents)
			drain_signals(&d);
		if (d.stop)
			break;
		if (fds[1].revents) {
			uint64_t n;
			/* ECANCELED: the clock jumped; what is due has changed. */
			if (read(d.timerfd, &n, sizeof(n)) < 0 && errno == ECANCELED) {
				log_info("the system clock changed; planning again");
				send_inputs_changed(d.snd);
			}
			due = true;
		}
		if (fds[2].revents)
			on_inotify(&d);
		if (fds[3].revents) {
			drain(d.debouncefd);
			reload(&d, false, true);
			due = true;
		}
		if (d.reload) {
			d.reload = false;
			reload(&d, true, false);
			arm_replies(&d);
			due = true;
		}
		if (fds[4].revents) {
			drain(d.repliesfd);
			if (read_replies(&d)) {
				send_inputs_changed(d.snd); /* answers and bounces are the planner's */
				due = true;
			}
		}
		if (d.replan) {
			d.replan = false;
			log_info("another kallad changed the ledger: planning again");
			send_inputs_changed(d.snd);
			due = true;
		}
		/* A change seen while a pass sent (which it stopped) is read
		 * first: the debounce's reload, within a quarter of a second,
		 * plans from it. */
		if (due && !inputs_pending(&d))
			work(&d);
	}
	sd_notify(0, "STOPPING=1");
	log_info("stopping");
	daemon_close(&d);
	return rc;
}
