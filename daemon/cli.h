/* cli.h: the modes of the command line (SPEC §4), each a small function
 * over the same modules. */
#ifndef KALLAD_CLI_H
#define KALLAD_CLI_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum cli_mode {
	MODE_DAEMON, MODE_CHECK, MODE_PLAN, MODE_ONCE, MODE_SEND_NOW, MODE_PREVIEW,
	MODE_RELEASE, MODE_DISCARD, MODE_STATUS, MODE_RETRY, MODE_VERSION, MODE_HELP,
	MODE_FETCH_REPLIES, MODE_RESPONSES, MODE_HISTORY, MODE_REPORT, MODE_UNSUPPRESS,
};

struct cli {
	enum cli_mode mode;
	const char *config;
	const char *now_arg;   /* --now, parsed in the programme zone */
	bool verbose;
	int days;              /* --days, -1 when absent */
	bool all, force, dry_run, failed;
	const char *message;   /* --send-now / --preview */
	const char *session, *deadline, *test_to, *out;
	const char *explain;   /* --plan --explain EMAIL */
	const char **to;       /* --to, n_to of them */
	size_t n_to;
	const char *statuses;  /* --send-now --all --status STATUS[,...] */
	const char *email;     /* --history / --unsuppress EMAIL */
};

/* The participant statuses of "registered,invited,..." (or "all": all but
 * cancelled) as bits 1 << enum pstatus; prints why not and returns false
 * for an unknown one, or for "cancelled" (never mailed). */
bool cli_parse_statuses(const char *list, unsigned *mask);
/* Checks the options fit the mode; prints why not and returns -1. */
int cli_validate(const struct cli *c);
/* Starts the clock at --now, read in the programme zone (after tz_set);
 * says why not and returns false when it does not parse. */
bool cli_start_clock(const struct cli *c);
struct config;
struct state;
/* The configuration and the ledger alone, for the modes that must work
 * when the calendar or the registrations are broken (--status,
 * --retry-failed, the reply commands); the clock started at --now. Says
 * why not and returns the exit status (78, 64 or 1), 0 on success. */
int cli_open_ledger(const struct cli *c, bool readonly, struct config **cfg,
		    struct state **st);
/* Runs the mode; returns the exit status (0, 1, 64 or 78). */
int cli_run(const struct cli *c);

/* cli_replies.c: --fetch-replies, --responses, --history, --report and
 * --unsuppress; the exit status as cli_run's. */
int cli_replies_run(const struct cli *c);
/* --status --failed: the suppressed addresses, one line each. */
struct state;
void cli_status_bounced(struct state *st);

#endif
