/* daemon.h: the service (SPEC §4): sleeps until the next due instant or a
 * change of its inputs, sends, tells systemd what it does. */
#ifndef KALLAD_DAEMON_H
#define KALLAD_DAEMON_H

#include "cli.h"

/* Runs until SIGTERM or SIGINT; returns the exit status. */
int daemon_run(const struct cli *c);

#endif
