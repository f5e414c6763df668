/* backoff.h: how hard kallad pushes the relay (SPEC §3), after Postfix's
 * queue manager: messages are spaced by max-per-minute, further apart on
 * signs of a limit; a fault of the relay as a whole (connection, TLS,
 * AUTH, MAIL FROM) fails no message but suspends the transport, with
 * exponential backoff from one minute to one hour (AUTH: at least 15
 * minutes). The suspension is recorded in the ledger, so every kallad
 * process on it, --status and the daemon's STATUS= see it. */
#ifndef KALLAD_BACKOFF_H
#define KALLAD_BACKOFF_H

#include "config.h"
#include "state.h"
#include "transport.h"

#include <stdbool.h>
#include <time.h>

struct backoff;

/* Over cfg and st (borrowed; backoff_set_config follows a reload). */
struct backoff *backoff_new(const struct config *cfg, struct state *st);
void backoff_free(struct backoff *b);
void backoff_set_config(struct backoff *b, const struct config *cfg);

/* At the start of a pass: reads the suspension recorded in the ledger.
 * With honour, a suspension still running holds this pass too; without
 * (--send-now: a person's deliberate act), the relay is tried, and a new
 * fault still counts on from the recorded ones. */
void backoff_begin(struct backoff *b, time_t now, bool honour);
/* True while the relay is suspended; *until (may be NULL) gets its end. */
bool backoff_suspended(const struct backoff *b, time_t now, time_t *until);
/* What suspended it ("535 5.7.8 ... (at AUTH)"); "" when nothing did. */
const char *backoff_fault(const struct backoff *b);

/* One send's outcome. SEND_OK ends a suspension and eases the spacing;
 * SEND_RELAY (fault says where) suspends the relay; limit (a reply that
 * asks to slow down) spreads the next messages, and three in a row
 * suspend the relay too. detail is the server's words. */
void backoff_note(struct backoff *b, enum send_result r, enum relay_fault fault, bool limit,
		  const char *detail, time_t now);

/* Whether messages are spaced now (max-per-minute, or a relay asking to
 * slow down): then sending, not planning, sets the pace. */
bool backoff_spaced(const struct backoff *b);
/* Waits for the next message's turn (max-per-minute, stretched after signs
 * of a limit, for all connections together), in slices of at most a
 * second, each spent in pause(arg, seconds) (which lets the sends in
 * flight go on; NULL: sleep); false when pause says to stop. */
bool backoff_wait_turn(struct backoff *b, bool (*pause)(void *, double), void *arg);
/* Seconds until the next message's turn (0: now). */
double backoff_turn_in(const struct backoff *b);
/* How many times this process suspended the relay: an outcome of a send
 * started under an older count says nothing new of the relay. */
unsigned backoff_generation(const struct backoff *b);

/* Seconds the relay is suspended after `faults` faults in a row of kind
 * (r in [0,1) jitters it): 60 doubling to 3600; AUTH at least 900. */
time_t backoff_relay_delay(int faults, enum relay_fault kind, double r);
/* "AUTH", "TLS", ... for a fault kind, for people. */
const char *backoff_fault_name(enum relay_fault kind);

#endif
