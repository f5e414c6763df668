#include "describe.h"

#include "datefmt.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* " for "Title" (20 Feb 10:00)": the session or deadline, in words. */
static void add_session(struct strbuf *sb, const struct session *s)
{
	char *when = datefmt_brief("en", s->start);

	sb_addf(sb, " for \"%s\" (%s)", s->summary ? s->summary : s->uid, when);
	free(when);
}

static void add_deadline(struct strbuf *sb, const struct deadline *d)
{
	/* A date-only deadline passes at the end of its day: name that day. */
	char *when = d->date_only ? datefmt_date("en", d->due - 1) : datefmt_brief("en", d->due);

	sb_addf(sb, " for \"%s\" (%s)", d->summary ? d->summary : d->uid, when);
	free(when);
}

static void add_key(struct strbuf *sb, const char *key)
{
	if (log_is_verbose() && key && *key)
		sb_addf(sb, " [%s]", key);
}

/* add_session and add_deadline write " for ...": the thing itself,
 * without " for ". */
static char *without_for(struct strbuf *sb)
{
	memmove(sb->buf, sb->buf + 5, sb->len - 4);
	sb->len -= 5;
	return sb_take(sb);
}

char *describe_session(const struct session *s)
{
	struct strbuf sb;

	sb_init(&sb);
	add_session(&sb, s);
	add_key(&sb, s->uid);
	return without_for(&sb);
}

char *describe_deadline(const struct deadline *d)
{
	struct strbuf sb;

	sb_init(&sb);
	add_deadline(&sb, d);
	add_key(&sb, d->uid);
	return without_for(&sb);
}

char *describe_delivery(const struct delivery *d)
{
	struct strbuf sb;

	sb_init(&sb);
	sb_addf(&sb, "%s to ", d->message);
	if (d->p && !str_empty(d->p->name))
		sb_addf(&sb, "%s <%s>", d->p->name, d->p->email);
	else
		sb_add(&sb, d->p && d->p->email ? d->p->email : "?");
	if (d->session)
		add_session(&sb, d->session);
	else if (d->deadline)
		add_deadline(&sb, d->deadline);
	if (d->rule)
		sb_addf(&sb, " by rule %s", d->rule->name);
	if (d->rule && d->offset >= 0 && (size_t)d->offset < d->rule->n_offsets)
		sb_addf(&sb, " (%d%c before)", d->rule->offsets[d->offset].amount,
			d->rule->offsets[d->offset].days ? 'd' : 'h');
	add_key(&sb, d->key);
	return sb_take(&sb);
}

char *describe_row(const struct calendar *cal, const struct delivery_row *row)
{
	const struct session *s = cal && row->target ? calendar_session(cal, row->target) : NULL;
	const struct deadline *d = cal && row->target && !s ? calendar_deadline(cal, row->target)
							     : NULL;
	struct strbuf sb;

	sb_init(&sb);
	sb_addf(&sb, "%s to %s", row->message, row->email);
	if (s)
		add_session(&sb, s);
	else if (d)
		add_deadline(&sb, d);
	else if (row->target && !str_eq(row->target, "-"))
		sb_addf(&sb, " for %s", row->target);
	if (row->rule && !str_eq(row->rule, "-") && !str_eq(row->rule, "manual"))
		sb_addf(&sb, " by rule %s", row->rule);
	add_key(&sb, row->key);
	return sb_take(&sb);
}

void describe_log(int priority, const struct delivery *d, const char *what)
{
	char *words = describe_delivery(d);

	log_msg(priority, "%s: %s", words, what);
	free(words);
}

void describe_log_row(const struct calendar *cal, int priority, const struct delivery_row *row,
		      const char *what)
{
	char *words = describe_row(cal, row);

	log_msg(priority, "%s: %s", words, what);
	free(words);
}
