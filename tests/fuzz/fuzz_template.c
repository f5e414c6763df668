/* fuzz_template.c: arbitrary bytes as a template file, through the parser
 * and (when it parses) the renderer, as .txt and as .html. Any crash,
 * leak, sanitizer report or runaway output is a bug.
 *
 *   clang -std=gnu17 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Idaemon \
 *     daemon/util.c daemon/log.c daemon/template.c tests/fuzz/fuzz_template.c -o fuzz_template
 *   ./fuzz_template -max_total_time=20 */
#include "template.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct tpl_vars *vars;

/* Values that would do harm if re-expanded or left unescaped. */
static void fill(struct tpl_vars *v, const char *tag)
{
	for (size_t i = 0; tpl_known_names[i]; i++) {
		char *val = xasprintf("<{{%s}} & '{{%s}}' \"%s\">", tag, tpl_known_names[i], tag);

		tpl_vars_set(v, tpl_known_names[i], val);
		free(val);
	}
}

static void setup(void)
{
	vars = tpl_vars_new();
	fill(vars, "outer");
	for (int i = 0; i < 3; i++) {
		fill(tpl_vars_item(vars, "sessions"), "session");
		fill(tpl_vars_item(vars, "attachments"), "attachment");
	}
	tpl_vars_set(vars, "session.description", ""); /* an empty value too */
}

/* Every value starts with "<{{". Template text can never put "{{" in the
 * output (it always opens a tag), so in HTML output "<{{" can only be a
 * value left unescaped. (The old check, a value's first word absent from
 * the input, was fooled by "<ses{{!}}sion", which renders "<session".) */
static void check_escaped(const char *html)
{
	if (html && strstr(html, "<{{"))
		abort();
}

static void render(struct templates *t)
{
	struct errlist errs = {0};
	char *subject, *text, *html;

	if (!t)
		return;
	if (!tpl_render(t, "sv", "en", "fuzz", vars, &subject, &text, &html, &errs))
		abort();
	if (strchr(subject, '\n') || strchr(subject, '\r'))
		abort();
	check_escaped(html);
	free(subject);
	free(text);
	free(html);
	errlist_free(&errs);
	tpl_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char txt[] = "Subject: s\n\nb\n";
	struct errlist errs = {0};

	if (!vars)
		setup();
	render(tpl_parse_mem("sv", "fuzz", (const char *)data, size, NULL, 0, &errs));
	render(tpl_parse_mem("sv", "fuzz", txt, sizeof(txt) - 1, (const char *)data, size, &errs));
	errlist_free(&errs);
	return 0;
}
