/* datefmt.h: dates and times as people write them, in Swedish and
 * English, in the programme zone (tz.h), without installed locales.
 * Every function returns a string the caller frees; an unknown language
 * is treated as English. */
#ifndef KALLAD_DATEFMT_H
#define KALLAD_DATEFMT_H

#include <time.h>

/* sv: "torsdag 20 februari 2020 kl. 10.00"; en: "Thursday 20 February 2020 at 10:00" */
char *datefmt_when(const char *lang, time_t t);
/* sv: "fredag 13 december 2019"; en: "Friday 13 December 2019" */
char *datefmt_date(const char *lang, time_t t);
/* sv: "20 feb 10.00"; en: "20 Feb 10:00": short, for subjects and logs */
char *datefmt_brief(const char *lang, time_t t);
/* sv: "10.00"; en: "10:00" */
char *datefmt_time(const char *lang, time_t t);
/* A span. Same day: "torsdag 20 februari 2020 kl. 10.00–13.00".
 * Other days: "torsdag 20 februari 2020 kl. 10.00 – fredag 21 februari kl. 13.00"
 * (the year repeated only when it differs); English likewise:
 * "Thursday 20 February 2020 at 10:00 – Friday 21 February at 13:00". */
char *datefmt_range(const char *lang, time_t start, time_t end);

#endif
