/* fuzz_config.c: arbitrary bytes as kallad.conf, through libinih and the
 * checks of daemon/config.c. A crash, a sanitizer report, a file rejected
 * without a word, an error that does not name the file, or an accepted
 * configuration without what it requires is a bug.
 *
 *   scripts/fuzz (cmake -DKALLAD_FUZZ=ON with clang) builds and runs it. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int memfd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct errlist errs = {0};
	struct config *cfg;

	if (memfd < 0) {
		if ((memfd = memfd_create("kallad.conf", 0)) < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	}
	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
		abort();
	cfg = config_load(path, &errs);
	if (!cfg && !errs.n)
		abort();
	for (size_t i = 0; i < errs.n; i++)
		if (strncmp(errs.items[i], path, strlen(path)) != 0)
			abort(); /* every error names its file */
	if (cfg && (!cfg->name || !cfg->calendar || !cfg->registrations || !cfg->state ||
		    !cfg->timezone || !cfg->organizer_email || !cfg->from || !cfg->material))
		abort();
	for (size_t i = 0; cfg && i < cfg->n_rules; i++)
		if (!cfg->rules[i].message || !cfg->rules[i].n_offsets)
			abort();
	config_free(cfg);
	errlist_free(&errs);
	return 0;
}
