/* kallad: mail for programmes people register for and attend in sessions.
 * main() parses the command line and hands over to one mode; every mode
 * is a small function over the same modules. */
#include "cli.h"
#include "log.h"

#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

static void usage(FILE *f)
{
	fputs("usage: kallad [--config FILE] [--now TIME] [--verbose]    run the daemon (foreground)\n"
	      "       kallad --check                                  validate everything\n"
	      "       kallad --plan [--days N] [--all] [--explain EMAIL]  what will be sent, when, to whom\n"
	      "       kallad --once                                   send what is due now, then exit\n"
	      "       kallad --send-now MESSAGE [--session S | --deadline D]\n"
	      "              [--to EMAIL... | --all [--status STATUS[,...]]]\n"
	      "              [--force] [--dry-run] [--test-to ADDRESS]\n"
	      "       kallad --preview MESSAGE --to EMAIL [--session S | --deadline D] [--out FILE]\n"
	      "              [--force]                                what --send-now would send, byte for byte\n"
	      "       kallad --release-changes [--session S]          send held change notices\n"
	      "       kallad --discard-changes                        take held changes as done, sending nothing\n"
	      "       kallad --status [--failed]                      what was sent, deferred, failed\n"
	      "       kallad --retry-failed                           queue permanent failures again\n"
	      "       kallad --fetch-replies                          read new replies and bounces once\n"
	      "       kallad --responses [--session UID]              who accepted, declined, did not answer\n"
	      "       kallad --history EMAIL                          everything about one participant\n"
	      "       kallad --report                                 participants and sessions as CSV\n"
	      "       kallad --unsuppress EMAIL                       send to an address that bounced again\n"
	      "       kallad --version | --help\n"
	      "\nS and D: a position in time order (2), or the start of a UID or title.\n"
	      "See kallad(8) and kallad.conf(5).\n",
	      f);
}

enum {
	OPT_CONFIG = 256, OPT_NOW, OPT_CHECK, OPT_PLAN, OPT_DAYS, OPT_ALL, OPT_ONCE, OPT_SEND_NOW,
	OPT_SESSION, OPT_DEADLINE, OPT_TO, OPT_FORCE, OPT_DRY_RUN, OPT_TEST_TO, OPT_PREVIEW,
	OPT_OUT, OPT_RELEASE, OPT_STATUS, OPT_FAILED, OPT_RETRY, OPT_VERBOSE, OPT_VERSION, OPT_HELP,
	OPT_EXPLAIN, OPT_DISCARD, OPT_FETCH_REPLIES, OPT_RESPONSES, OPT_HISTORY, OPT_REPORT,
	OPT_UNSUPPRESS,
};

static const struct option options[] = {
	{"config", required_argument, NULL, OPT_CONFIG},
	{"now", required_argument, NULL, OPT_NOW},
	{"check", no_argument, NULL, OPT_CHECK},
	{"plan", no_argument, NULL, OPT_PLAN},
	{"days", required_argument, NULL, OPT_DAYS},
	{"all", no_argument, NULL, OPT_ALL},
	{"explain", required_argument, NULL, OPT_EXPLAIN},
	{"once", no_argument, NULL, OPT_ONCE},
	{"send-now", required_argument, NULL, OPT_SEND_NOW},
	{"session", required_argument, NULL, OPT_SESSION},
	{"deadline", required_argument, NULL, OPT_DEADLINE},
	{"to", required_argument, NULL, OPT_TO},
	{"force", no_argument, NULL, OPT_FORCE},
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	{"test-to", required_argument, NULL, OPT_TEST_TO},
	{"preview", required_argument, NULL, OPT_PREVIEW},
	{"out", required_argument, NULL, OPT_OUT},
	{"release-changes", no_argument, NULL, OPT_RELEASE},
	{"discard-changes", no_argument, NULL, OPT_DISCARD},
	{"status", no_argument, NULL, OPT_STATUS},
	{"failed", no_argument, NULL, OPT_FAILED},
	{"retry-failed", no_argument, NULL, OPT_RETRY},
	{"verbose", no_argument, NULL, OPT_VERBOSE},
	{"version", no_argument, NULL, OPT_VERSION},
	{"help", no_argument, NULL, OPT_HELP},
	{"fetch-replies", no_argument, NULL, OPT_FETCH_REPLIES},
	{"responses", no_argument, NULL, OPT_RESPONSES},
	{"history", required_argument, NULL, OPT_HISTORY},
	{"report", no_argument, NULL, OPT_REPORT},
	{"unsuppress", required_argument, NULL, OPT_UNSUPPRESS},
	{NULL, 0, NULL, 0},
};

static int set_mode(struct cli *c, enum cli_mode m)
{
	if (c->mode != MODE_DAEMON && c->mode != m) {
		fputs("kallad: choose one of --check, --plan, --once, --send-now, --preview, "
		      "--release-changes, --discard-changes, --status, --retry-failed, "
		      "--fetch-replies, --responses, --history, --report, --unsuppress\n",
		      stderr);
		return -1;
	}
	c->mode = m;
	return 0;
}

/* --status is a mode of its own, and with --send-now the statuses --all
 * reaches: it takes an argument only there. */
static bool sending(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strncmp(argv[i], "--send", 6) == 0)
			return true;
	return false;
}

static int parse_args(int argc, char **argv, struct cli *c)
{
	struct option opts[ARRAY_SIZE(options)];
	const char *now_arg = NULL;
	long days;
	int opt;

	memcpy(opts, options, sizeof(opts));
	for (size_t i = 0; sending(argc, argv) && opts[i].name; i++)
		if (opts[i].val == OPT_STATUS)
			opts[i].has_arg = required_argument;

	c->config = "/etc/kallad/kallad.conf";
	c->days = -1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int r = 0;

		switch (opt) {
		case OPT_CONFIG: c->config = optarg; break;
		case OPT_NOW: now_arg = optarg; break;
		case OPT_CHECK: r = set_mode(c, MODE_CHECK); break;
		case OPT_PLAN: r = set_mode(c, MODE_PLAN); break;
		case OPT_DAYS:
			if (!parse_int(optarg, 0, 36500, &days)) {
				fprintf(stderr, "kallad: --days: not a number of days: %s\n", optarg);
				return -1;
			}
			c->days = (int)days;
			break;
		case OPT_ALL: c->all = true; break;
		case OPT_EXPLAIN: c->explain = optarg; break;
		case OPT_ONCE: r = set_mode(c, MODE_ONCE); break;
		case OPT_SEND_NOW: r = set_mode(c, MODE_SEND_NOW); c->message = optarg; break;
		case OPT_SESSION: c->session = optarg; break;
		case OPT_DEADLINE: c->deadline = optarg; break;
		case OPT_TO:
			c->to = xrealloc(c->to, (c->n_to + 1) * sizeof(*c->to));
			c->to[c->n_to++] = optarg;
			break;
		case OPT_FORCE: c->force = true; break;
		case OPT_DRY_RUN: c->dry_run = true; break;
		case OPT_TEST_TO: c->test_to = optarg; break;
		case OPT_PREVIEW: r = set_mode(c, MODE_PREVIEW); c->message = optarg; break;
		case OPT_OUT: c->out = optarg; break;
		case OPT_RELEASE: r = set_mode(c, MODE_RELEASE); break;
		case OPT_DISCARD: r = set_mode(c, MODE_DISCARD); break;
		case OPT_STATUS:
			if (optarg && optarg[0] == '-') {
				fputs("kallad: --status with --send-now needs STATUS[,...] "
				      "(registered, invited, waitlisted or all)\n", stderr);
				return -1;
			}
			if (optarg)
				c->statuses = optarg;
			else
				r = set_mode(c, MODE_STATUS);
			break;
		case OPT_FAILED: c->failed = true; break;
		case OPT_RETRY: r = set_mode(c, MODE_RETRY); break;
		case OPT_VERBOSE: c->verbose = true; break;
		case OPT_VERSION: r = set_mode(c, MODE_VERSION); break;
		case OPT_HELP: r = set_mode(c, MODE_HELP); break;
		case OPT_FETCH_REPLIES: r = set_mode(c, MODE_FETCH_REPLIES); break;
		case OPT_RESPONSES: r = set_mode(c, MODE_RESPONSES); break;
		case OPT_HISTORY: r = set_mode(c, MODE_HISTORY); c->email = optarg; break;
		case OPT_REPORT: r = set_mode(c, MODE_REPORT); break;
		case OPT_UNSUPPRESS: r = set_mode(c, MODE_UNSUPPRESS); c->email = optarg; break;
		default: return -1;
		}
		if (r < 0)
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "kallad: unexpected argument: %s\n", argv[optind]);
		return -1;
	}
	/* Parsed once the programme zone is known: a time without an offset
	 * is read in it. */
	c->now_arg = now_arg;
	return cli_validate(c);
}

int main(int argc, char **argv)
{
	struct cli c = {0};
	int rc;

	if (parse_args(argc, argv, &c) < 0) {
		usage(stderr);
		free(c.to);
		return EX_USAGE;
	}
	log_init(c.verbose);
	/* Every SQLite connection kallad opens is used by the thread that
	 * opened it alone (the SMTP connections' threads never touch one):
	 * SQLite's own locks and its count of the memory it holds are work
	 * on every call for nothing. Before any other SQLite call. */
	sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	switch (c.mode) {
	case MODE_HELP:
		usage(stdout);
		rc = 0;
		break;
	case MODE_VERSION:
		printf("kallad %s\n", KALLAD_VERSION);
		rc = 0;
		break;
	default:
		rc = cli_run(&c);
		break;
	}
	free(c.to);
	return rc;
}
