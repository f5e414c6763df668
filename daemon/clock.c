#include "clock.h"

#include <stdint.h>

/* Nanoseconds to add to CLOCK_REALTIME; kept to the nanosecond so a timer
 * fires exactly when kallad's clock reaches a due second. */
static int64_t offset_ns;

static int64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void clock_start(time_t at)
{
	offset_ns = at ? (int64_t)at * 1000000000 - real_ns() : 0;
}

time_t clock_now(void)
{
	int64_t ns = real_ns() + offset_ns;

	return (time_t)(ns >= 0 ? ns / 1000000000 : (ns - 999999999) / 1000000000);
}

struct timespec clock_real(time_t t)
{
	int64_t ns = (int64_t)t * 1000000000 - offset_ns;
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000)};

	if (ts.tv_nsec < 0) {
		ts.tv_nsec += 1000000000;
		ts.tv_sec--;
	}
	return ts;
}
