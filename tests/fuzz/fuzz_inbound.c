/* fuzz_inbound.c: arbitrary bytes as a message in the organiser's mailbox,
 * through daemon/inbound.c (GMime and libical underneath). A crash, a
 * sanitizer report, a reply without its UID, ATTENDEE or PARTSTAT, an
 * address that is not lower case, or a DSN recipient without an action
 * and a status is a bug.
 *
 *   scripts/fuzz (cmake -DKALLAD_FUZZ=ON with clang) builds and runs it. */
#include "inbound.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>

static void lower_or_abort(const char *s)
{
	for (; s && *s; s++)
		if (isupper((unsigned char)*s))
			abort();
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
	}
	if (in.kind == IN_OTHER && !in.why)
		abort();
	inbound_clear(&in);
	return 0;
}
