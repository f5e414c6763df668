/* cli_internal.h: what the command-line modes share (cli.c, cli_check.c). */
#ifndef KALLAD_CLI_INTERNAL_H
#define KALLAD_CLI_INTERNAL_H

#include "cli.h"
#include "programme.h"
#include "util.h"

/* Each line of e on stderr. */
void cli_print_errors(const struct errlist *e);
/* Loads the programme and starts the clock; on failure says why and sets *rc. */
struct programme *cli_load(const struct cli *c, int *rc);
/* --check. */
int cli_run_check(const struct cli *c);

#endif
