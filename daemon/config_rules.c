/* config_rules.c: the [rule NAME] and [deadline NAME] sections of
 * kallad.conf (SPEC §1.1, §2): declared where first given, each key checked
 * as it arrives; a drop-in may redefine a rule's keys. */
#include "config_internal.h"
#include "tz.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- [rule NAME] ----------------------------------------------------- */

static const char *const audiences[] = {
	[AUD_REGISTERED] = "registered", [AUD_INVITED] = "invited",
	[AUD_WAITLISTED] = "waitlisted", [AUD_ALL] = "all",
};

static const char *const rule_keys[RK_COUNT] = {
	[RK_MESSAGE] = "message", [RK_CATEGORY] = "category", [RK_BEFORE] = "before",
	[RK_AT] = "at", [RK_TO] = "to", [RK_SESSIONS] = "sessions",
};

static struct rule *rule_find(struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_rules; i++)
		if (str_eq(cfg->rules[i].name, name))
			return &cfg->rules[i];
	return NULL;
}

/* Defining a rule twice (a drop-in overriding it) keeps the first place. */
void rule_declare(struct loader *ld, const char *name, int line)
{
	struct config *cfg = ld->cfg;
	struct rule *r;

	if (rule_find(cfg, name))
		return;
	cfg->rules = xgrow(cfg->rules, &cfg->cap_rules, cfg->n_rules, sizeof(*cfg->rules));
	ld->rseen = xgrow(ld->rseen, &ld->cap_rseen, cfg->n_rules, sizeof(*ld->rseen));
	r = &cfg->rules[cfg->n_rules++];
	*r = (struct rule){.name = xstrdup(name), .at = -1, .file = xstrdup(ld->file), .line = line};
}

/* "14d, 2d" or "6h": returns false after reporting the bad item. */
static bool parse_before(struct loader *ld, const char *v, struct offset **out, size_t *n)
{
	char *copy = xstrdup(v), *save = NULL, *item;
	bool ok = true;

	*out = NULL;
	*n = 0;
	for (char *p = copy; ok; p = NULL) {
		long amount;
		char unit;

		item = strtok_r(p, ",", &save);
		if (!item)
			break;
		item = str_trim(item);
		unit = parse_amount(item, strlen(item), 87600, &amount);
		if ((unit != 'd' && unit != 'h') || (unit == 'd' && amount > 3650)) {
			key_error(ld, "before", "\"%s\" is not Nd (days, 0-3650) or Nh (hours, 0-87600)", item);
			ok = false;
			break;
		}
		for (size_t i = 0; i < *n && ok; i++)
			if ((*out)[i].days == (unit == 'd') && (*out)[i].amount == amount) {
				key_error(ld, "before", "\"%s\" is given twice", item);
				ok = false;
			}
		*out = xrealloc(*out, (*n + 1) * sizeof(**out));
		(*out)[(*n)++] = (struct offset){unit == 'd', (int)amount};
	}
	/* strtok_r skips empty items: count commas to catch "14d,,2d" and "14d," */
	if (ok) {
		size_t commas = 0;

		for (const char *c = v; *c; c++)
			commas += *c == ',';
		if (commas + 1 != *n) {
			key_error(ld, "before", "\"%s\" has an empty item", v);
			ok = false;
		}
	}
	free(copy);
	if (!ok) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return ok;
}

static bool rule_set(struct loader *ld, struct rule *r, enum rule_key k, const char *v)
{
	size_t i;

	switch (k) {
	case RK_MESSAGE:
		if (!name_chars(v, "-")) {
			key_error(ld, "message", "\"%s\" is not a template name (a-z, 0-9, -)", v);
			return false;
		}
		put_string(&r->message, xstrdup(v));
		r->deadlines = str_eq(v, "deadline-reminder");
		return true;
	case RK_CATEGORY:
		put_string(&r->category, xstrdup(v));
		return true;
	case RK_BEFORE: {
		struct offset *o;
		size_t n;

		if (!parse_before(ld, v, &o, &n))
			return false;
		free(r->offsets);
		r->offsets = o;
		r->n_offsets = n;
		return true;
	}
	case RK_AT:
		if (parse_hhmm(v, strlen(v)) < 0) {
			key_error(ld, "at", "\"%s\" is not HH:MM (00:00-23:59)", v);
			return false;
		}
		r->at = parse_hhmm(v, strlen(v));
		return true;
	case RK_TO: {
		/* An audience, optionally narrowed: "registered, unanswered". */
		size_t n = strcspn(v, ",");
		const char *more = v[n] ? v + n + 1 + strspn(v + n + 1, " \t") : NULL;

		while (n && isspace((unsigned char)v[n - 1]))
			n--;
		for (i = 0; i < ARRAY_SIZE(audiences) &&
			    !(strlen(audiences[i]) == n && strncmp(v, audiences[i], n) == 0); i++)
			;
		if (i == ARRAY_SIZE(audiences) || (more && !str_eq(more, "unanswered"))) {
			key_error(ld, "to", "must be registered, invited, waitlisted or all, optionally "
				  "followed by \", unanswered\", not \"%s\"", v);
			return false;
		}
		r->to = (enum audience)i;
		r->unanswered = more != NULL;
		return true;
	}
	case RK_SESSIONS:
		if (!str_eq(v, "all") && !str_eq(v, "first")) {
			key_error(ld, "sessions", "must be all or first, not \"%s\"", v);
			return false;
		}
		r->first_only = str_eq(v, "first");
		return true;
	default:
		return false;
	}
}

static void rule_reset(struct rule *r, enum rule_key k)
{
	switch (k) {
	case RK_MESSAGE: put_string(&r->message, NULL); r->deadlines = false; break;
	case RK_CATEGORY: put_string(&r->category, NULL); break;
	case RK_BEFORE: free(r->offsets); r->offsets = NULL; r->n_offsets = 0; break;
	case RK_AT: r->at = -1; break;
	case RK_TO: r->to = AUD_REGISTERED; r->unanswered = false; break;
	case RK_SESSIONS: r->first_only = false; break;
	default: break;
	}
}

void rule_key(struct loader *ld, const char *rule, const char *name, const char *value)
{
	struct rule *r = rule_find(ld->cfg, rule);
	struct rule_seen *seen;
	size_t k;

	if (!r) /* its header was rejected */
		return;
	seen = &ld->rseen[r - ld->cfg->rules];
	for (k = 0; k < RK_COUNT && !str_eq(rule_keys[k], name); k++)
		;
	if (k == RK_COUNT) {
		key_error(ld, name, "unknown key in [rule %s]", rule);
		return;
	}
	seen->bad[k] = false;
	if (!text_ok(ld, name, value)) {
		seen->bad[k] = true;
	} else if (!*value) {
		rule_reset(r, (enum rule_key)k);
		seen->key[k] = (struct where){NULL, 0};
	} else if (rule_set(ld, r, (enum rule_key)k, value)) {
		seen->key[k] = (struct where){ld->file, ld->line};
	} else {
		seen->bad[k] = true;
	}
}

/* ---- [deadline NAME] ------------------------------------------------- */

static struct cfg_deadline *deadline_find(struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_deadlines; i++)
		if (str_eq(cfg->deadlines[i].name, name))
			return &cfg->deadlines[i];
	return NULL;
}

void deadline_declare(struct loader *ld, const char *name, int line)
{
	struct config *cfg = ld->cfg;

	if (deadline_find(cfg, name))
		return;
	cfg->deadlines = xgrow(cfg->deadlines, &cfg->cap_deadlines, cfg->n_deadlines,
			       sizeof(*cfg->deadlines));
	cfg->deadlines[cfg->n_deadlines++] = (struct cfg_deadline){
		.name = xstrdup(name), .file = xstrdup(ld->file), .line = line};
}

/* "2020-01-31" (the whole day) or "2020-01-31T12:00" / "2020-01-31 12:00". */
static bool parse_due(const char *v, struct cfg_deadline *d)
{
	int y, mo, day, h = 0, mi = 0, n = 0;

	if (sscanf(v, "%4d-%2d-%2d%n", &y, &mo, &day, &n) != 3 || n != 10)
		return false;
	if (v[n] != '\0') {
		int k = 0;

		if ((v[n] != 'T' && v[n] != ' ') || sscanf(v + n + 1, "%2d:%2d%n", &h, &mi, &k) != 2 ||
		    k != 5 || v[n + 1 + k] != '\0' || h > 23 || mi > 59 || h < 0 || mi < 0)
			return false;
	}
	if (!tz_date_exists(y, mo, day))
		return false;
	d->year = y;
	d->month = mo;
	d->day = day;
	d->hour = h;
	d->minute = mi;
	d->date_only = v[n] == '\0';
	return true;
}

void deadline_key(struct loader *ld, const char *dname, const char *name, const char *value)
{
	struct cfg_deadline *d = deadline_find(ld->cfg, dname);

	if (!d) /* its header was rejected */
		return;
	if (!text_ok(ld, name, value))
		return;
	if (str_eq(name, "due")) {
		/* Without it the deadline is the calendar's event of that UID:
		 * whether there is one is known once the calendar is read. */
		d->has_due = *value != '\0';
		if (d->has_due && !parse_due(value, d))
			key_error(ld, name, "\"%s\" is not YYYY-MM-DD or YYYY-MM-DDTHH:MM", value);
	} else if (str_eq(name, "title")) {
		put_string(&d->title, *value ? xstrdup(value) : NULL);
	} else if (str_eq(name, "category")) {
		put_string(&d->category, *value ? xstrdup(value) : NULL);
	} else {
		key_error(ld, name, "unknown key in [deadline %s] (due, title, category)", dname);
	}
}

const char *config_audience_name(enum audience a)
{
	return (unsigned)a < ARRAY_SIZE(audiences) ? audiences[a] : "?";
}
