#include "clock.h"

static time_t offset;

void clock_start(time_t at)
{
	offset = at ? at - time(NULL) : 0;
}

time_t clock_now(void)
{
	/* A wall-clock jump moves both the real clock and ours: kallad follows
	 * the system clock, shifted by the rehearsal offset. */
	return time(NULL) + offset;
}

time_t clock_offset(void)
{
	return offset;
}
