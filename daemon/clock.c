#include "clock.h"

#include <stdint.h>

/* Nanoseconds to add to CLOCK_REALTIME; kept to the nanosecond so a timer
 * fires exactly when kallad's clock reaches a due second. Every instant
 * is first held to 1970-2262 (what 64-bit nanoseconds hold): inputs are
 * checked against 1970-2200 where they come from, and whatever arithmetic
 * makes of them here saturates instead of wrapping. */
static int64_t offset_ns;
/* clock_mark(): the real instant the next clock_start() anchors to. */
static int64_t mark_ns;

#define NS 1000000000LL
#define MAX_SEC (INT64_MAX / NS - 1)

static int64_t sec_to_ns(time_t t)
{
	if (t < 0)
		t = 0;
	if ((int64_t)t > MAX_SEC)
		t = (time_t)MAX_SEC;
	return (int64_t)t * NS;
}

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static int64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return sec_to_ns(ts.tv_sec) + ts.tv_nsec;
}

void clock_mark(void)
{
	mark_ns = real_ns();
}

void clock_start(time_t at)
{
	offset_ns = at ? sat_add(sec_to_ns(at), -(mark_ns ? mark_ns : real_ns())) : 0;
	mark_ns = 0;
}

time_t clock_now(void)
{
	int64_t ns = sat_add(real_ns(), offset_ns);

	return (time_t)(ns >= 0 ? ns / NS : (ns - (NS - 1)) / NS);
}

struct timespec clock_real(time_t t)
{
	int64_t ns = sat_add(sec_to_ns(t), -offset_ns);
	struct timespec ts = {.tv_sec = (time_t)(ns / NS), .tv_nsec = (long)(ns % NS)};

	if (ts.tv_nsec < 0) {
		ts.tv_nsec += NS;
		ts.tv_sec--;
	}
	if (ts.tv_sec < 0) /* before the epoch: already due */
		ts = (struct timespec){0, 1};
	return ts;
}
