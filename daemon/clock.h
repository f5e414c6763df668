/* clock.h: the one clock every mode reads. `--now` sets where it starts;
 * from there it runs at real speed (monotonic), so a rehearsal started a
 * minute before a reminder sees it fall due a minute later. */
#ifndef KALLAD_CLOCK_H
#define KALLAD_CLOCK_H

#include <time.h>

/* Starts the clock at `at`, or at the real time when at is 0. */
void clock_start(time_t at);
time_t clock_now(void);
/* The offset to add to CLOCK_REALTIME readings to get clock_now(). */
time_t clock_offset(void);

#endif
