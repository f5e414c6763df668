/* test_inbound.c: replies and bounces as Outlook, Thunderbird, Gmail,
 * Apple Mail and Postfix write them (tests/fixtures/replies), read by
 * inbound_parse(); and what must not read as a reply. */
#include "inbound.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void parse_fixture(const char *name, struct inbound *in)
{
	char *path = xasprintf("%s/replies/%s", FIXTURES, name);
	size_t len;
	char *data = read_file(path, &len);

	assert_non_null(data);
	inbound_parse(data, len, in);
	free(data);
	free(path);
}

static void test_outlook_base64_alternative(void **state)
{
	struct inbound in;

	(void)state;
	parse_fixture("outlook-accepted.eml", &in);
	assert_int_equal(in.kind, IN_REPLY);
	/* Addresses compare without case: both are lower-cased here. */
	assert_string_equal(in.from, "asa.granqvist@vasteras.example.se");
	assert_string_equal(in.attendee, "asa.granqvist@vasteras.example.se");
	assert_string_equal(in.uid, "styra-leda-2020-1@example.org");
	assert_string_equal(in.partstat, "accepted");
	assert_int_equal(in.sequence, 0);
	assert_int_equal(in.dtstamp, 1580116462); /* 2020-01-27T09:14:22Z */
	assert_string_equal(in.message_id,
			    "HE1PR0701MB22175A1C6F8D7E4B2C9A1E3BC1D50@HE1PR0701MB2217.eurprd07.prod.outlook.com");
	inbound_clear(&in);
}

static void test_thunderbird_inline_and_attached(void **state)
{
	struct inbound in;

	(void)state;
	parse_fixture("thunderbird-declined.eml", &in);
	assert_int_equal(in.kind, IN_REPLY);
	assert_string_equal(in.attendee, "anna.berglund@gavle.example.se");
	assert_string_equal(in.uid, "styra-leda-2020-2@example.org");
	assert_string_equal(in.partstat, "declined");
	assert_int_equal(in.dtstamp, 1580206500); /* 2020-01-28T10:15:00Z */
	inbound_clear(&in);
}

static void test_gmail_nested_alternative(void **state)
{
	struct inbound in;

	(void)state;
	parse_fixture("gmail-tentative.eml", &in);
	assert_int_equal(in.kind, IN_REPLY);
	assert_string_equal(in.attendee, "johan.lindqvist@regionvasterbotten.example.se");
	assert_string_equal(in.from, "johan.lindqvist@regionvasterbotten.example.se");
	assert_string_equal(in.partstat, "tentative");
	inbound_clear(&in);
}

static void test_apple_quoted_printable_attachment(void **state)
{
	struct inbound in;

	(void)state;
	parse_fixture("apple-accepted.eml", &in);
	assert_int_equal(in.kind, IN_REPLY);
	assert_string_equal(in.attendee, "maria.ekstrom@lund.example.se");
	assert_string_equal(in.uid, "styra-leda-2020-3@example.org");
	assert_string_equal(in.partstat, "accepted");
	inbound_clear(&in);
}

/* Parsed as written: whether it counts is for replies.c to judge. */
static void test_forged_keeps_both_addresses(void **state)
{
	struct inbound in;

	(void)state;
	parse_fixture("forged-declined.eml", &in);
	assert_int_equal(in.kind, IN_REPLY);
	assert_string_equal(in.from, "mallory@evil.example");
	assert_string_equal(in.attendee, "karin.hedlund@skane.example.se");
	inbound_clear(&in);
}

static void test_postfix_bounce(void **state)
{
	struct inbound in;

	(void)state;
	parse_fixture("postfix-bounce.eml", &in);
	assert_int_equal(in.kind, IN_DSN);
	assert_int_equal(in.n_rcpts, 1);
	assert_string_equal(in.rcpts[0].email, "per.hallberg+styraleda@umea.example.se");
	assert_string_equal(in.rcpts[0].action, "failed");
	assert_string_equal(in.rcpts[0].status, "5.1.1");
	assert_non_null(in.rcpts[0].diagnostic);
	assert_non_null(strstr(in.rcpts[0].diagnostic, "550 5.1.1"));
	assert_non_null(strstr(in.rcpts[0].diagnostic, "User unknown"));
	assert_null(strchr(in.rcpts[0].diagnostic, '\n')); /* unfolded */
	assert_string_equal(in.original_id, "adb687aebd3d71f55b50d84784008a0a@example.org");
	/* The bounced invitation inside is no one's reply. */
	assert_null(in.uid);
	inbound_clear(&in);
}

static void test_postfix_delay(void **state)
{
	struct inbound in;

	(void)state;
	parse_fixture("postfix-delayed.eml", &in);
	assert_int_equal(in.kind, IN_DSN);
	assert_int_equal(in.n_rcpts, 1);
	assert_string_equal(in.rcpts[0].email, "lars.ostlund@orebro.example.se");
	assert_string_equal(in.rcpts[0].action, "delayed");
	assert_string_equal(in.rcpts[0].status, "4.4.1");
	inbound_clear(&in);
}

static void test_ordinary_and_garbage(void **state)
{
	struct inbound in;
	static const char *const junk[] = {
		"",
		"not a message at all",
		"Content-Type: text/calendar; method=REPLY\n\nBEGIN:VCALENDAR\nMETHOD:REPLY\n",
		"Content-Type: text/calendar\n\nBEGIN:VCALENDAR\nMETHOD:REQUEST\nBEGIN:VEVENT\n"
		"UID:x\nATTENDEE;PARTSTAT=ACCEPTED:mailto:a@b.example\nEND:VEVENT\nEND:VCALENDAR\n",
		"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n"
		"Content-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n--b--\n",
	};

	(void)state;
	parse_fixture("ordinary.eml", &in);
	assert_int_equal(in.kind, IN_OTHER);
	assert_non_null(in.why);
	assert_string_equal(in.from, "sofia.nyberg@regionuppsala.example.se");
	inbound_clear(&in);
	for (size_t i = 0; i < ARRAY_SIZE(junk); i++) {
		inbound_parse(junk[i], strlen(junk[i]), &in);
		assert_int_equal(in.kind, IN_OTHER);
		inbound_clear(&in);
	}
}

/* A server that rewrote the address (a forward, an alias): the report
 * names both, the one kallad sent to as Original-Recipient. */
static void test_forwarded_bounce(void **state)
{
	struct inbound in;

	(void)state;
	parse_fixture("forwarded-bounce.eml", &in);
	assert_int_equal(in.kind, IN_DSN);
	assert_int_equal(in.n_rcpts, 1);
	assert_string_equal(in.rcpts[0].email, "per.hallberg@mail.umea.example.se");
	assert_string_equal(in.rcpts[0].original, "per.hallberg+styraleda@umea.example.se");
	assert_string_equal(in.rcpts[0].status, "5.2.1");
	inbound_clear(&in);
}

/* RFC 6533: report-type=global-delivery-status, addresses typed utf-8. */
static void test_global_bounce(void **state)
{
	struct inbound in;

	(void)state;
	parse_fixture("postfix-global-bounce.eml", &in);
	assert_int_equal(in.kind, IN_DSN);
	assert_int_equal(in.n_rcpts, 1);
	assert_string_equal(in.rcpts[0].email, "anna.berglund@gavle.example.se");
	assert_string_equal(in.rcpts[0].action, "failed");
	assert_string_equal(in.rcpts[0].status, "5.1.1");
	inbound_clear(&in);
}

/* A calendar part past INBOUND_CALENDAR_MAX is not parsed: libical takes
 * time of the square of an unfolded line's length. */
static void test_huge_calendar_part_is_no_answer(void **state)
{
	static const char head[] = "From: anna.berglund@gavle.example.se\n"
				   "Content-Type: text/calendar; method=REPLY\n\n"
				   "BEGIN:VCALENDAR\nMETHOD:REPLY\nBEGIN:VEVENT\nUID:s1@example.org\n"
				   "ATTENDEE;PARTSTAT=DECLINED:mailto:anna.berglund@gavle.example.se\n"
				   "DESCRIPTION:";
	static const char tail[] = "\nEND:VEVENT\nEND:VCALENDAR\n";
	size_t pad[] = {1000, INBOUND_CALENDAR_MAX};
	struct inbound in;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(pad); i++) {
		size_t n = strlen(head) + pad[i] + strlen(tail);
		char *msg = xmalloc(n + 1);

		memcpy(msg, head, strlen(head));
		memset(msg + strlen(head), 'x', pad[i]);
		memcpy(msg + strlen(head) + pad[i], tail, strlen(tail) + 1);
		inbound_parse(msg, n, &in);
		assert_int_equal(in.kind, i == 0 ? IN_REPLY : IN_OTHER);
		inbound_clear(&in);
		free(msg);
	}
}

/* Found by fuzz_inbound: an empty message/delivery-status part has no
 * buffer at all (UBSan: NULL handed to memcpy). */
static void test_empty_part(void **state)
{
	char *path = xasprintf("%s/../fuzz/regressions/inbound-empty-delivery-status", FIXTURES);
	size_t len;
	char *data = read_file(path, &len);
	struct inbound in;

	(void)state;
	assert_non_null(data);
	inbound_parse(data, len, &in);
	assert_int_equal(in.kind, IN_OTHER);
	inbound_clear(&in);
	free(data);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outlook_base64_alternative),
		cmocka_unit_test(test_thunderbird_inline_and_attached),
		cmocka_unit_test(test_gmail_nested_alternative),
		cmocka_unit_test(test_apple_quoted_printable_attachment),
		cmocka_unit_test(test_forged_keeps_both_addresses),
		cmocka_unit_test(test_postfix_bounce),
		cmocka_unit_test(test_postfix_delay),
		cmocka_unit_test(test_ordinary_and_garbage),
		cmocka_unit_test(test_empty_part),
		cmocka_unit_test(test_forwarded_bounce),
		cmocka_unit_test(test_global_bounce),
		cmocka_unit_test(test_huge_calendar_part_is_no_answer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
