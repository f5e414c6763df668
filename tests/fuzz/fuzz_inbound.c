/* fuzz_inbound.c: arbitrary bytes as a message in the organiser's mailbox,
 * through daemon/inbound.c (GMime and libical underneath). A crash, a
 * sanitizer report, a reply without its UID, ATTENDEE or PARTSTAT, an
 * address that is not lower case, or a DSN recipient without an action
 * and a status is a bug. Then the message goes through replies_take()
 * into a state database in which kallad invited the reply's
 * ATTENDEE to its session and sent to every DSN recipient: an answer
 * recorded although From is not that ATTENDEE (a forgery), or one that is
 * not the PARTSTAT, or an address suppressed without a failed 5.x.x
 * notice for it, is a bug too.
 *
 *   scripts/fuzz (cmake -DKALLAD_FUZZ=ON with clang) builds and runs it. */
#include "inbound.h"
#include "replies.h"
#include "state.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define NOW 1580000000L

static void lower_or_abort(const char *s)
{
	for (; s && *s; s++)
		if (isupper((unsigned char)*s))
			abort();
}

/* As a sending pass leaves it: the participant's calendar holds the
 * session, and the invite is in the ledger as sent. */
static void sent_to(struct state *st, const char *email, const char *uid, int sequence)
{
	struct attendance a = {.invited = true, .sequence = sequence, .content = sequence};
	struct delivery_row row = {.message = (char *)"invite", .email = (char *)email,
				   .target = (char *)uid, .rule = (char *)"-"};

	state_set_attendance(st, email, uid, &a);
	row.key = xasprintf("invite|%s|%s|-|-|%d", email, uid, sequence);
	if (state_delivery_claim(st, &row, NOW - 86400, 600))
		state_delivery_mark(st, row.key, DS_SENT, "250 ok", 0, NOW - 86400);
	free(row.key);
}

static void noted(const char *kind, const char *email, const char *what, const char *uid,
		  const char *detail, void *arg)
{
	(void)arg;
	if (!kind || !email || !what || !uid || !detail)
		abort();
}

static char dir[] = "/tmp/kallad-fuzz-inbound-XXXXXX";

static void cleanup(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
	rmdir(dir);
}

static void check_recorded(const char *data, size_t size, const struct inbound *in)
{
	static struct state *st;
	struct replies_stats stats = {0};

	/* One database (a file: the ledger's SQL functions are set up only
	 * for one); each input's writes are rolled back. */
	if (!st) {
		struct errlist errs = {0};
		char path[sizeof(dir) + 16];

		if (!mkdtemp(dir))
			abort();
		atexit(cleanup);
		snprintf(path, sizeof(path), "%s/state.db", dir);
		if (!(st = state_open(path, false, &errs)))
			abort();
		errlist_free(&errs);
	}
	if (!state_begin_light(st))
		abort();
	if (in->kind == IN_REPLY)
		sent_to(st, in->attendee, in->uid, in->sequence);
	for (size_t i = 0; i < in->n_rcpts; i++) {
		sent_to(st, in->rcpts[i].email, "s1@example.org", 0);
		if (in->rcpts[i].original && i % 2)
			sent_to(st, in->rcpts[i].original, "s1@example.org", 0);
	}
	replies_take(st, data, size, NOW, "imap://fuzz/INBOX", 1, 1, noted, NULL, &stats);
	if (in->kind == IN_REPLY) {
		enum answer a = replies_answer(st, in->attendee, in->uid);
		const char *want = a == ANS_ACCEPTED ? "accepted" : a == ANS_DECLINED ? "declined"
				   : a == ANS_TENTATIVE ? "tentative" : NULL;

		if (a != ANS_NONE && (!in->from || strcasecmp(in->from, in->attendee) != 0))
			abort(); /* a forged reply counted */
		if (want && strcmp(want, in->partstat) != 0)
			abort();
	}
	/* An address suppressed is one a permanent failure names, as its
	 * Final-Recipient or (kallad sent to that) its Original-Recipient. */
	for (size_t i = 0; i < 2 * in->n_rcpts; i++) {
		const char *addr = i % 2 ? in->rcpts[i / 2].original : in->rcpts[i / 2].email;
		bool failed = false;

		if (!addr || !replies_bounced(st, addr))
			continue;
		for (size_t j = 0; j < in->n_rcpts; j++)
			failed |= (strcasecmp(in->rcpts[j].email, addr) == 0 ||
				   (in->rcpts[j].original &&
				    strcasecmp(in->rcpts[j].original, addr) == 0)) &&
				  strcasecmp(in->rcpts[j].action, "failed") == 0 &&
				  in->rcpts[j].status[0] == '5';
		if (!failed)
			abort(); /* suppressed without a permanent failure */
	}
	state_rollback(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inbound in;

	inbound_parse((const char *)data, size, &in);
	lower_or_abort(in.from);
	if (in.kind == IN_REPLY) {
		if (!in.uid || !in.attendee || !in.partstat)
			abort();
		lower_or_abort(in.attendee);
		lower_or_abort(in.partstat);
	}
	if (in.kind == IN_DSN && !in.n_rcpts)
		abort();
	for (size_t i = 0; i < in.n_rcpts; i++) {
		if (!in.rcpts[i].email || !in.rcpts[i].action || !in.rcpts[i].status)
			abort();
		lower_or_abort(in.rcpts[i].email);
		lower_or_abort(in.rcpts[i].original);
	}
	if (in.kind == IN_OTHER && !in.why)
		abort();
	check_recorded((const char *)data, size, &in);
	inbound_clear(&in);
	return 0;
}
