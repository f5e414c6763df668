/* test_met.c: the sets a pass keeps in temporary SQLite files to find,
 * by merges instead of look-ups, who is gone (met.c) and whom a change
 * of the registrations touches (regdigest.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "met.h"
#include "regdigest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_met_in_order_and_out_of_order(void **state)
{
	struct met *m = met_new();
	(void)state;

	assert_non_null(m);
	/* Added in any order, in any case. */
	met_add(m, "b@example.org");
	met_add(m, "Anna@Example.org");
	met_add(m, "d@example.org");
	met_add(m, "b@example.org");
	met_done(m);
	assert_true(met_ok(m));
	/* Asked in ascending NOCASE order: a merge. */
	assert_true(met_has(m, "anna@example.org"));
	assert_true(met_has(m, "B@EXAMPLE.ORG"));
	assert_false(met_has(m, "c@example.org"));
	assert_true(met_has(m, "d@example.org"));
	assert_false(met_has(m, "e@example.org"));
	/* Behind the walk: still right. */
	assert_true(met_has(m, "anna@example.org"));
	assert_false(met_has(m, "a@example.org"));
	assert_true(met_has(m, "b@example.org"));
	/* From the start again. */
	met_rewind(m);
	assert_false(met_has(m, "0@example.org"));
	assert_true(met_has(m, "ANNA@example.org"));
	assert_true(met_has(m, "d@example.org"));
	met_free(m);
}

static void test_met_empty(void **state)
{
	struct met *m = met_new();
	(void)state;

	met_done(m);
	assert_false(met_has(m, "a@example.org"));
	met_rewind(m);
	assert_false(met_has(m, "a@example.org"));
	met_free(m);
}

static struct participant person(const char *email, const char *name, enum pstatus status)
{
	return (struct participant){.email = (char *)email, .name = (char *)name,
				    .language = "sv", .status = status, .updated_at = 1};
}

struct seen {
	char names[8][64];
	int n;
};

static void note(const char *email, void *arg)
{
	struct seen *s = arg;

	snprintf(s->names[s->n++], sizeof(s->names[0]), "%s", email);
}

/* Two loads: the first of three participants, the second as given. */
static struct regdigest *load(const struct participant *ps, size_t n)
{
	struct regdigest *r = regdigest_new();

	for (size_t i = 0; i < n; i++)
		regdigest_participant(r, &ps[i]);
	regdigest_absence(r, "b@example.org", "s1");
	regdigest_attachment(r, "a@example.org", "material", "a.pdf");
	regdigest_done(r);
	return r;
}

static void test_regdigest_new_and_changed(void **state)
{
	struct participant before[] = {person("a@example.org", "A", PS_REGISTERED),
				       person("b@example.org", "B", PS_INVITED),
				       person("c@example.org", "C", PS_REGISTERED)};
	struct participant after[] = {person("a@example.org", "A", PS_REGISTERED),
				      person("aa@example.org", "New", PS_REGISTERED),
				      person("b@example.org", "B", PS_REGISTERED),
				      person("c@example.org", "C", PS_REGISTERED),
				      person("z@example.org", "Last", PS_INVITED)};
	struct regdigest *b = load(before, 3), *a = load(after, 5);
	struct seen s = {0};
	(void)state;

	assert_true(regdigest_diff(b, a, note, &s));
	assert_int_equal(s.n, 3);
	assert_string_equal(s.names[0], "aa@example.org");
	assert_string_equal(s.names[1], "b@example.org");
	assert_string_equal(s.names[2], "z@example.org");
	/* Nothing changed: nobody. */
	memset(&s, 0, sizeof(s));
	regdigest_free(b);
	b = load(after, 5);
	assert_true(regdigest_diff(b, a, note, &s));
	assert_int_equal(s.n, 0);
	regdigest_free(a);
	regdigest_free(b);
}

static void test_regdigest_more_than_rows_changed(void **state)
{
	struct participant three[] = {person("a@example.org", "A", PS_REGISTERED),
				      person("b@example.org", "B", PS_INVITED),
				      person("c@example.org", "C", PS_REGISTERED)};
	struct participant upper[] = {person("a@example.org", "A", PS_REGISTERED),
				      person("B@example.org", "B", PS_INVITED),
				      person("c@example.org", "C", PS_REGISTERED)};
	struct regdigest *b = load(three, 3), *a;
	struct seen s = {0};
	(void)state;

	/* One gone. */
	a = load(three, 2);
	assert_false(regdigest_diff(b, a, note, &s));
	regdigest_free(a);
	/* The same address in other bytes. */
	a = load(upper, 3);
	assert_false(regdigest_diff(b, a, note, &s));
	regdigest_free(a);
	/* An absence more. */
	a = load(three, 3);
	regdigest_absence(a, "c@example.org", "s2");
	assert_false(regdigest_diff(b, a, note, &s));
	regdigest_free(a);
	/* An attachment row otherwise. */
	a = load(three, 3);
	regdigest_attachment(a, "a@example.org", "material", "b.pdf");
	assert_false(regdigest_diff(b, a, note, &s));
	regdigest_free(a);
	/* No fingerprints before. */
	a = load(three, 3);
	assert_false(regdigest_diff(NULL, a, note, &s));
	assert_true(regdigest_diff(b, a, note, &s));
	regdigest_free(a);
	regdigest_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_met_in_order_and_out_of_order),
		cmocka_unit_test(test_met_empty),
		cmocka_unit_test(test_regdigest_new_and_changed),
		cmocka_unit_test(test_regdigest_more_than_rows_changed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
