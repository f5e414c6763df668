#include "preflight.h"

#include "state.h"
#include "transport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

/* Messages kallad sends on its own, whatever the rules say. */
static const char *const own_messages[] = {"invite", "update", "cancel"};

static void check_templates(const struct programme *pg, struct errlist *errs)
{
	const struct config *cfg = pg->cfg;

	for (size_t i = 0; i < cfg->n_rules; i++) {
		const struct rule *r = &cfg->rules[i];

		if (r->message && !tpl_has(pg->tpl, cfg->language, cfg->language, r->message))
			errlist_add(errs, "%s:%d: message: no template %s in language %s", r->file,
				    r->line, r->message, cfg->language);
	}
	for (size_t i = 0; i < ARRAY_SIZE(own_messages); i++)
		if (!tpl_has(pg->tpl, cfg->language, cfg->language, own_messages[i]))
			errlist_add(errs, "%s: no template %s in language %s (kallad sends it on its own)",
				    cfg->templates ? cfg->templates : programme_shipped_templates(),
				    own_messages[i], cfg->language);
}

/* The nearest folder of path that exists: state_open creates the rest. */
static char *existing_parent(const char *path)
{
	char *dir = xstrdup(path);
	struct stat st;

	for (;;) {
		char *slash = strrchr(dir, '/');

		if (!slash) {
			free(dir);
			return xstrdup(".");
		}
		if (slash == dir) {
			dir[1] = '\0';
			return dir;
		}
		*slash = '\0';
		if (stat(dir, &st) == 0)
			return dir;
	}
}

/* The ledger, its WAL files and the outbox are written beside it. */
static void check_state(const struct programme *pg, struct errlist *errs)
{
	const char *path = pg->cfg->state;
	size_t before = errs->n;
	struct state *st;
	struct stat sb;
	char *dir;

	if (access(path, F_OK) == 0 && access(path, R_OK | W_OK) != 0)
		errlist_add(errs, "[programme] state: %s: kallad cannot write it: %s", path,
			    strerror(errno));
	dir = existing_parent(path);
	if (stat(dir, &sb) == 0 && !S_ISDIR(sb.st_mode))
		errlist_add(errs, "[programme] state: %s: %s is not a directory", path, dir);
	else if (access(dir, W_OK | X_OK) != 0)
		errlist_add(errs, "[programme] state: %s: kallad cannot write in %s: %s", path, dir,
			    strerror(errno));
	free(dir);
	/* A schema newer than this kallad, or a file that is no database. */
	if (errs->n == before) {
		st = state_open(path, true, errs);
		state_close(st);
	}
}

/* The [replies] password, opened as each pass over the mailbox opens it. */
static void check_replies(const struct programme *pg, struct errlist *errs)
{
	char *pw;

	if (!pg->cfg->replies_url || str_empty(pg->cfg->replies_password))
		return;
	pw = transport_secret("[replies] password", pg->cfg->replies_password, errs);
	if (pw)
		explicit_bzero(pw, strlen(pw));
	free(pw);
}

int preflight(const struct programme *pg, struct errlist *errs)
{
	size_t before = errs->n;

	check_templates(pg, errs);
	transport_check_password(pg->cfg, errs);
	check_replies(pg, errs);
	check_state(pg, errs);
	return errs->n > before ? EX_CONFIG : 0;
}
