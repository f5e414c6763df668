/* log.h: one line per event on stderr. Under systemd (JOURNAL_STREAM set)
 * each line starts with the journald priority prefix "<N>"; on a terminal
 * it starts with "kallad: LEVEL: ". Never pass a secret to these. */
#ifndef KALLAD_LOG_H
#define KALLAD_LOG_H

#include <stdbool.h>
#include <syslog.h>

void log_init(bool verbose);
/* True with --verbose: debug lines are written, and deliveries are named
 * with their keys too (describe.h). */
bool log_is_verbose(void);
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
