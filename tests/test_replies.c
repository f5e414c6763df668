/* test_replies.c: what replies_take() keeps of each message, in a real
 * state database: a reply counts only from the participant kallad invited,
 * the latest DTSTAMP wins, a reply to an older SEQUENCE is recorded as
 * such, the same message twice changes nothing, and a bounce suppresses
 * only an address kallad sent to. */
#include "replies.h"
#include "state.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

static const time_t NOW = 1580376000; /* 2020-01-30 09:20 UTC */
static const char *const S1 = "styra-leda-2020-1@example.org";
static const char *const ASA = "asa.granqvist@vasteras.example.se";
static const char *const PER = "per.hallberg+styraleda@umea.example.se";

struct seen {
	char kinds[256];
	char last_detail[256];
};

static void note(const char *kind, const char *email UNUSED, const char *what UNUSED,
		 const char *uid UNUSED, const char *detail, void *arg)
{
	struct seen *s = arg;

	strncat(s->kinds, kind, sizeof(s->kinds) - strlen(s->kinds) - 2);
	strcat(s->kinds, " ");
	snprintf(s->last_detail, sizeof(s->last_detail), "%s", detail);
}

static struct state *fresh(char *dir, size_t len)
{
	struct errlist errs = {0};
	struct state *st;
	char *path;

	snprintf(dir, len, "/tmp/kallad-test-replies-XXXXXX");
	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/state.db", dir);
	st = state_open(path, false, &errs);
	free(path);
	assert_non_null(st);
	errlist_free(&errs);
	return st;
}

static void gone(struct state *st, const char *dir)
{
	state_close(st);
	assert_true(remove_tree(dir));
}

/* Takes a fixture as if it were message uid of the mailbox. */
static void take(struct state *st, const char *name, unsigned long uid, struct seen *seen,
		 struct replies_stats *stats)
{
	char *path = xasprintf("%s/replies/%s", FIXTURES, name);
	size_t len;
	char *data = read_file(path, &len);

	assert_non_null(data);
	replies_take(st, data, len, NOW, "imap://test/INBOX", 7, uid, note, seen, stats);
	free(data);
	free(path);
}

static void invite(struct state *st, const char *email, int sequence)
{
	struct attendance a = {.invited = true, .sequence = sequence, .content = sequence};
	struct delivery_row row = {.key = (char *)"k", .message = (char *)"invite",
				   .email = (char *)email, .target = (char *)S1, .rule = (char *)"-"};

	state_set_attendance(st, email, S1, &a);
	row.key = xasprintf("invite|%s|%s|-|-|%d", email, S1, sequence);
	assert_true(state_delivery_claim(st, &row, NOW - 86400, 600));
	state_delivery_mark(st, row.key, DS_SENT, "250 ok", 0, NOW - 86400);
	free(row.key);
}

static void test_reply_from_the_invited_only(void **state UNUSED)
{
	char dir[64];
	struct state *st = fresh(dir, sizeof(dir));
	struct seen seen = {0};
	struct replies_stats stats = {0};

	/* Not invited yet: the reply names no one kallad wrote to. */
	take(st, "outlook-accepted.eml", 1, &seen, &stats);
	assert_string_equal(seen.kinds, "ignored ");
	assert_non_null(strstr(seen.last_detail, "sent"));
	assert_int_equal(replies_answer(st, ASA, S1), ANS_NONE);

	invite(st, ASA, 0);
	take(st, "outlook-accepted.eml", 2, &seen, &stats);
	assert_int_equal(replies_answer(st, "ASA.Granqvist@vasteras.example.se", S1), ANS_ACCEPTED);
	assert_int_equal(stats.replies, 1);
	assert_int_equal(stats.ignored, 1);
	gone(st, dir);
}

static void test_older_sequence_is_said(void **state UNUSED)
{
	char dir[64];
	struct state *st = fresh(dir, sizeof(dir));
	struct seen seen = {0};
	struct replies_stats stats = {0};

	invite(st, ASA, 2); /* the session moved twice since the reply's invite */
	take(st, "outlook-accepted.eml", 1, &seen, &stats);
	assert_string_equal(seen.kinds, "reply ");
	assert_non_null(strstr(seen.last_detail, "older than the 2 they hold"));
	assert_int_equal(replies_answer(st, ASA, S1), ANS_ACCEPTED);
	gone(st, dir);
}

static void count_events(const struct inbound_row *r UNUSED, void *arg)
{
	(*(int *)arg)++;
}

static void test_same_message_twice_changes_nothing(void **state UNUSED)
{
	char dir[64];
	struct state *st = fresh(dir, sizeof(dir));
	struct seen seen = {0};
	struct replies_stats stats = {0};
	int events = 0;

	invite(st, ASA, 0);
	take(st, "outlook-accepted.eml", 1, &seen, &stats);
	/* The mailbox read again after its UIDVALIDITY changed: a new UID. */
	take(st, "outlook-accepted.eml", 9, &seen, &stats);
	assert_non_null(strstr(seen.last_detail, "as late or later"));
	replies_each_event(st, ASA, count_events, &events);
	assert_int_equal(events, 1);
	assert_int_equal(replies_answer(st, ASA, S1), ANS_ACCEPTED);
	gone(st, dir);
}

static void test_bounce_only_for_an_address_kallad_sent_to(void **state UNUSED)
{
	char dir[64];
	struct state *st = fresh(dir, sizeof(dir));
	struct seen seen = {0};
	struct replies_stats stats = {0};

	take(st, "postfix-bounce.eml", 1, &seen, &stats);
	assert_string_equal(seen.kinds, "ignored ");
	assert_false(replies_bounced(st, PER));

	invite(st, PER, 0);
	take(st, "postfix-bounce.eml", 2, &seen, &stats);
	assert_true(replies_bounced(st, PER));
	assert_true(replies_bounced(st, "Per.Hallberg+styraleda@UMEA.example.se"));
	assert_int_equal(stats.bounces, 1);
	/* A delay is recorded, not acted on. */
	invite(st, "lars.ostlund@orebro.example.se", 0);
	take(st, "postfix-delayed.eml", 3, &seen, &stats);
	assert_int_equal(stats.delays, 1);
	assert_false(replies_bounced(st, "lars.ostlund@orebro.example.se"));

	assert_true(replies_unsuppress(st, PER, NOW));
	assert_false(replies_bounced(st, PER));
	assert_false(replies_unsuppress(st, PER, NOW));
	gone(st, dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_from_the_invited_only),
		cmocka_unit_test(test_older_sequence_is_said),
		cmocka_unit_test(test_same_message_twice_changes_nothing),
		cmocka_unit_test(test_bounce_only_for_an_address_kallad_sent_to),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
