/* clock.h: the one clock every mode reads. `--now` sets where it starts;
 * from there it runs at real speed, following the system clock, so a
 * rehearsal started a minute before a reminder sees it fall due a minute
 * later, and a jump of the system clock moves kallad's clock too. */
#ifndef KALLAD_CLOCK_H
#define KALLAD_CLOCK_H

#include <time.h>

/* Marks now as the real instant at which the next clock_start(at) has
 * the clock read `at`: the daemon's start, not the end of reading a large
 * programme, is when --now holds (else every due time would shift by the
 * time the start-up took). */
void clock_mark(void);
/* Starts the clock at `at` (as of the last clock_mark(), if any, else as
 * of now), or at the real time when at is 0. */
void clock_start(time_t at);
time_t clock_now(void);
/* The CLOCK_REALTIME instant at which kallad's clock reads t. */
struct timespec clock_real(time_t t);

#endif
