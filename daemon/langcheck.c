#include "langcheck.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

/* The notices a registered participant gets whatever the rules say. */
static const char *const notices[] = {"invite", "update", "cancel"};

static bool in_audience(enum audience to, enum pstatus st)
{
	switch (to) {
	case AUD_REGISTERED: return st == PS_REGISTERED;
	case AUD_INVITED: return st == PS_INVITED;
	case AUD_WAITLISTED: return st == PS_WAITLISTED;
	case AUD_ALL: return st != PS_CANCELLED;
	}
	return false;
}

bool langcheck_gets(const struct config *cfg, enum pstatus st, const char *message)
{
	if (st == PS_CANCELLED)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(notices); i++)
		if (st == PS_REGISTERED && str_eq(message, notices[i]))
			return true;
	for (size_t i = 0; i < cfg->n_rules; i++)
		if (str_eq(cfg->rules[i].message, message) && in_audience(cfg->rules[i].to, st))
			return true;
	return false;
}

/* One language lacking one message, and whom that concerns. */
struct gap {
	char *lang;
	const char *message;
	long people;
	char *example;
};

struct scan {
	const struct programme *pg;
	const char **messages; /* every message anyone may get, once each */
	size_t n_messages;
	struct gap *gaps;
	size_t n_gaps, cap_gaps;
};

static void add_message(struct scan *sc, const char *m)
{
	for (size_t i = 0; i < sc->n_messages; i++)
		if (str_eq(sc->messages[i], m))
			return;
	sc->messages = xrealloc(sc->messages, (sc->n_messages + 1) * sizeof(*sc->messages));
	sc->messages[sc->n_messages++] = m;
}

static void note_gap(struct scan *sc, const struct participant *p, const char *message)
{
	for (size_t i = 0; i < sc->n_gaps; i++) {
		struct gap *g = &sc->gaps[i];

		if (g->message == message && str_eq(g->lang, p->language)) {
			g->people++;
			return;
		}
	}
	sc->gaps = xgrow(sc->gaps, &sc->cap_gaps, sc->n_gaps, sizeof(*sc->gaps));
	sc->gaps[sc->n_gaps++] = (struct gap){xstrdup(p->language), message, 1, xstrdup(p->email)};
}

static void scan_one(const struct participant *p, void *arg)
{
	struct scan *sc = arg;

	for (size_t i = 0; i < sc->n_messages; i++) {
		const char *m = sc->messages[i];

		if (langcheck_gets(sc->pg->cfg, p->status, m) &&
		    !tpl_has(sc->pg->tpl, p->language, p->language, m))
			note_gap(sc, p, m);
	}
}

long langcheck_report(const struct programme *pg)
{
	const char *fallback = pg->cfg->language;
	struct scan sc = {.pg = pg};
	bool ok;

	for (size_t i = 0; i < ARRAY_SIZE(notices); i++)
		add_message(&sc, notices[i]);
	for (size_t i = 0; i < pg->cfg->n_rules; i++)
		if (pg->cfg->rules[i].message)
			add_message(&sc, pg->cfg->rules[i].message);
	ok = reg_each(pg->reg, scan_one, NULL, &sc);
	for (size_t i = 0; i < sc.n_gaps; i++) {
		struct gap *g = &sc.gaps[i];
		bool other = tpl_has(pg->tpl, fallback, fallback, g->message);

		log_warn("%s: %ld participant%s with language %s (%s%s) will get %s, which has no "
			 "template in %s: %s%s",
			 pg->cfg->registrations, g->people, g->people == 1 ? "" : "s", g->lang,
			 g->example, g->people > 1 ? ", ..." : "", g->message, g->lang,
			 other ? "it goes in " : "it cannot be sent in the programme's language ",
			 fallback);
		free(g->lang);
		free(g->example);
	}
	free(sc.gaps);
	free(sc.messages);
	return ok ? (long)sc.n_gaps : -1;
}
