/* await.h: a daemon started before its programme is there (a fresh
 * install: no calendar or no registration database yet) stays up, tells
 * systemd and the log what it waits for, sends nothing, and goes on as soon
 * as the missing inputs appear. */
#ifndef KALLAD_AWAIT_H
#define KALLAD_AWAIT_H

#include "programme.h"

/* Loads the programme of config_path. When the calendar or the
 * registration database does not exist (and the configuration itself is
 * valid), waits for them: READY=1 and STATUS=waiting: ... to systemd, a
 * warning per missing file, a fresh attempt on each change in their folders
 * and on SIGHUP; an input that appears but fails is reported, and waited
 * for again. Returns the programme (the caller frees it with
 * programme_free()), or NULL with *rc: the exit status of a load that
 * failed otherwise (78 configuration, 1 registrations), or -1 when SIGTERM
 * or SIGINT ended the wait. Leaves SIGHUP, SIGTERM, SIGINT and SIGUSR1
 * blocked. */
struct programme *await_programme(const char *config_path, int *rc);

#endif
