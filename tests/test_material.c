/* test_material.c: attachments are read only from beneath the material
 * directory (daemon/material.c), whatever path a registration row holds. */
#include "material.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

static char root[64], dir[96];

static int setup(void **state)
{
	char *p;

	(void)state;
	strcpy(root, "/tmp/kallad-material-XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/material", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	p = xasprintf("%s/sub", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	put_file(root, "secret.txt", "hemligt\n");
	put_file(root, "material/program.pdf", "%PDF program\n");
	put_file(root, "material/sub/karta.pdf", "%PDF karta\n");
	p = xasprintf("%s/out.pdf", dir);
	assert_int_equal(symlink("../secret.txt", p), 0);
	free(p);
	p = xasprintf("%s/abs.pdf", dir);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	free(p);
	p = xasprintf("%s/inside.pdf", dir);
	assert_int_equal(symlink("sub/karta.pdf", p), 0);
	free(p);
	p = xasprintf("%s/fifo", dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	free(p);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	assert_true(remove_tree(root));
	return 0;
}

static void expect_file(const char *rel, const char *want)
{
	size_t len = 0;
	char *why = NULL, *data = material_read(dir, rel, &len, &why);

	if (!data)
		fail_msg("%s: %s", rel, why);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(data, want, len);
	free(data);
}

static void expect_refused(const char *rel, const char *words)
{
	size_t len = 0;
	char *why = NULL, *data = material_read(dir, rel, &len, &why);

	assert_null(data);
	assert_non_null(why);
	if (!strstr(why, words))
		fail_msg("%s: \"%s\" does not say \"%s\"", rel, why, words);
	free(why);
	why = material_problem(dir, rel);
	assert_non_null(why);
	free(why);
}

static void test_beneath(void **state)
{
	(void)state;
	expect_file("program.pdf", "%PDF program\n");
	expect_file("sub/karta.pdf", "%PDF karta\n");
	expect_file("./sub//karta.pdf", "%PDF karta\n");
	/* A symbolic link that stays beneath: openat2 follows it (Debian 12's
	 * kernel has it; the fallback walk would refuse every link). */
	expect_file("inside.pdf", "%PDF karta\n");
	assert_null(material_problem(dir, "program.pdf"));
}

static void test_refused(void **state)
{
	char *abs = xasprintf("%s/program.pdf", dir);

	(void)state;
	expect_refused("/etc/passwd", "is absolute");
	expect_refused(abs, "is absolute"); /* even inside: rows hold relative paths */
	expect_refused("../secret.txt", "leads out");
	expect_refused("../../../../../../etc/passwd", "leads out");
	expect_refused("sub/../../secret.txt", "leads out");
	expect_refused("out.pdf", "leads out");
	expect_refused("abs.pdf", "leads out");
	expect_refused("sub", "not a regular file");
	expect_refused("fifo", "not a regular file"); /* and does not block */
	expect_refused("saknas.pdf", "No such file");
	expect_refused("", "is empty");
	free(abs);
}

static void test_missing_directory(void **state)
{
	size_t len;
	char *why = NULL;

	(void)state;
	assert_null(material_read("/nonexistent/material", "program.pdf", &len, &why));
	assert_non_null(strstr(why, "/nonexistent/material"));
	free(why);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_beneath),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_missing_directory),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
