/* backoff.c: spacing of messages and suspension of the relay (backoff.h). */
#include "backoff.h"

#include "log.h"
#include "tz.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Three replies in a row asking to slow down: the relay means it. */
#define LIMIT_REPLIES_TO_SUSPEND 3
/* How far apart messages may be pushed (times the max-per-minute gap). */
#define SLOW_MAX 32.0
/* Each message that goes eases the spacing a little: about 70 to halve it,
 * so a relay's per-minute limit is not run into again at once. */
#define SLOW_EASE 0.99

struct backoff {
	const struct config *cfg;
	struct state *st;
	unsigned seed;
	double next_turn;  /* monotonic time before which no message may start */
	double slow;       /* >= 1: how much further apart than max-per-minute */
	int limit_replies; /* limit signs in a row */
	unsigned generation; /* suspensions by this process */

	/* The suspension, as recorded in the ledger. */
	bool recorded;     /* a row is in the ledger (to clear on success) */
	bool suspended;    /* it holds in this pass */
	int faults;
	time_t since, until;
	char *fault;
};

struct backoff *backoff_new(const struct config *cfg, struct state *st)
{
	struct backoff *b = xcalloc(1, sizeof(*b));

	b->cfg = cfg;
	b->st = st;
	b->slow = 1;
	b->seed = (unsigned)getpid() ^ (unsigned)time(NULL) ^ 0x5bd1e995u;
	b->fault = xstrdup("");
	return b;
}

void backoff_free(struct backoff *b)
{
	if (!b)
		return;
	free(b->fault);
	free(b);
}

void backoff_set_config(struct backoff *b, const struct config *cfg)
{
	b->cfg = cfg;
}

const char *backoff_fault_name(enum relay_fault kind)
{
	switch (kind) {
	case RELAY_NONE:
		return "none";
	case RELAY_CONNECT:
		return "connection";
	case RELAY_TLS:
		return "TLS";
	case RELAY_AUTH:
		return "AUTH";
	case RELAY_SENDER:
		return "MAIL FROM";
	case RELAY_LIMIT:
		return "rate limit";
	}
	return "?";
}

time_t backoff_relay_delay(int faults, enum relay_fault kind, double r)
{
	double d = 60.0 * pow(2.0, faults > 1 ? (faults < 12 ? faults - 1 : 11) : 0);

	d *= 0.9 + 0.2 * r; /* kallads started together do not return together */
	if (d < 60)
		d = 60;
	if (d > 3600)
		d = 3600;
	/* A wrong password tried again and again locks the account at many
	 * relays: a quarter of an hour at least. */
	if (kind == RELAY_AUTH && d < 900)
		d = 900;
	return (time_t)d;
}

void backoff_begin(struct backoff *b, time_t now, bool honour)
{
	struct relay_row row;

	b->recorded = state_relay_get(b->st, &row);
	b->suspended = false;
	b->faults = 0;
	if (!b->recorded) {
		free(b->fault);
		b->fault = xstrdup("");
		return;
	}
	b->faults = row.faults;
	b->since = row.since;
	b->until = row.until;
	b->suspended = honour && row.until > now;
	free(b->fault);
	b->fault = row.fault;
	row.fault = NULL;
	state_relay_free(&row);
}

bool backoff_suspended(const struct backoff *b, time_t now, time_t *until)
{
	bool on = b->suspended && b->until > now;

	if (until)
		*until = on ? b->until : 0;
	return on;
}

const char *backoff_fault(const struct backoff *b)
{
	return b->fault;
}

unsigned backoff_generation(const struct backoff *b)
{
	return b->generation;
}

static void backoff_suspend(struct backoff *b, enum relay_fault kind, const char *detail,
			    time_t now)
{
	struct relay_row row;
	char when[40];

	if (!b->faults)
		b->since = now;
	b->faults++;
	b->generation++;
	b->until = now + backoff_relay_delay(b->faults, kind, rand_r(&b->seed) / (RAND_MAX + 1.0));
	b->suspended = true;
	free(b->fault);
	b->fault = xstrdup(detail ? detail : "");
	row = (struct relay_row){b->fault, (int)kind, b->faults, b->since, b->until};
	state_relay_put(b->st, &row);
	b->recorded = true;
	tz_rfc3339(b->until, when, sizeof(when));
	log_error("the relay is down (%s): %s; no message is failed for it; trying again at %s "
		  "(fault %d in a row)",
		  backoff_fault_name(kind), b->fault, when, b->faults);
}

static void backoff_recover(struct backoff *b, time_t now)
{
	if (b->recorded) {
		state_relay_clear(b->st, now);
		log_info("the relay works again");
	}
	b->recorded = b->suspended = false;
	b->faults = 0;
	b->fault[0] = '\0';
}

void backoff_note(struct backoff *b, enum send_result r, enum relay_fault fault, bool limit,
		  const char *detail, time_t now)
{
	if (limit) {
		b->slow = b->slow * 2 < SLOW_MAX ? b->slow * 2 : SLOW_MAX;
		b->limit_replies++;
	} else if (r == SEND_OK) {
		b->limit_replies = 0;
		b->slow = b->slow * SLOW_EASE > 1 ? b->slow * SLOW_EASE : 1;
	}
	if (r == SEND_OK)
		backoff_recover(b, now);
	else if (r == SEND_RELAY)
		backoff_suspend(b, fault, detail, now);
	else if (b->limit_replies >= LIMIT_REPLIES_TO_SUSPEND) {
		b->limit_replies = 0;
		backoff_suspend(b, RELAY_LIMIT, detail, now);
	}
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Seconds between two messages' starts: max-per-minute, stretched while
 * the relay asks to slow down; 0 when they may start at once. */
static double turn_gap(const struct backoff *b)
{
	int per_minute = b->cfg->smtp_url ? b->cfg->max_per_minute : 0;
	double gap = per_minute > 0 ? 60.0 / per_minute : 0;

	if (b->slow > 1 && b->cfg->smtp_url)
		gap = (gap > 0 ? gap : 1.0) * b->slow;
	return gap;
}

bool backoff_spaced(const struct backoff *b)
{
	return turn_gap(b) > 0;
}

double backoff_turn_in(const struct backoff *b)
{
	double left = b->next_turn - mono();

	return left > 0 ? left : 0;
}

bool backoff_wait_turn(struct backoff *b, bool (*pause)(void *, double), void *arg)
{
	double gap = turn_gap(b);
	double now = mono();

	while (b->next_turn > now) {
		double d = b->next_turn - now < 1.0 ? b->next_turn - now : 1.0;
		struct timespec ts = {(time_t)d, (long)((d - (time_t)d) * 1e9)};

		if (pause) {
			if (!pause(arg, d))
				return false;
		} else {
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
		}
		now = mono();
	}
	/* The turns of all connections together: max-per-minute holds for
	 * the sum of them. */
	b->next_turn = now + gap;
	return true;
}
