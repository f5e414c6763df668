/* fuzz_csv.c: arbitrary bytes as a spreadsheet's CSV of registrations,
 * through daemon/csv_registrations.c (libcsv, iconv), read as participants,
 * absences and attachments alike. A crash, a sanitizer report, a file
 * rejected without a word, or a participant let through whose address
 * kallad would not put in To: (header injection) is a bug.
 *
 *   scripts/fuzz (cmake -DKALLAD_FUZZ=ON with clang) builds and runs it. */
#include "registrations.h"
#include "tz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int memfd = -1;
static char path[64];

static void check_participant(const struct participant *p, void *arg)
{
	(void)arg;
	if (!reg_valid_email(p->email) || !p->name || !*p->name || !p->language ||
	    (unsigned)p->status > PS_CANCELLED)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg = {.path = "fuzz.conf", .language = "sv",
			     .csv_columns = "E-post:email, Namn:name, Status:status"};
	struct errlist warnings = {0}, errs = {0};
	struct registrations *reg;

	if (memfd < 0) {
		if (!tz_set("Europe/Stockholm") || (memfd = memfd_create("fuzz.csv", 0)) < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	}
	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
		abort();
	cfg.registrations = cfg.csv_absences = cfg.csv_attachments = path;
	reg = reg_load_csv(&cfg, &warnings, &errs);
	if (!reg && !errs.n)
		abort();
	if (reg)
		reg_each(reg, check_participant, NULL, NULL);
	reg_free(reg);
	errlist_free(&warnings);
	errlist_free(&errs);
	return 0;
}
