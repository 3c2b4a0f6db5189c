/*
 * test_web_jobs: which names the web server may serve.  A client's path
 * never reaches the filesystem: it must equal one of the listing's own
 * names plus .puls, .info or (when drawn) .png.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "web_jobs.h"

#define A	"2026-12-03_061035_motion_3116300"
#define B	"2026-12-03_061035_lid_image_42"

struct test_case {
	const char		*file;
	long			 want;		/* index, or -1 */
	enum web_jobs_kind	 kind;
};

static void
test_lookup(void **state)
{
	static const struct web_jobs_name names[] = {
		{ A, 1 },
		{ B, 0 },	/* not drawn yet: no .png */
	};
	static const struct test_case tcs[] = {
		{ A ".puls", 0, WEB_JOBS_PULS },
		{ A ".info", 0, WEB_JOBS_INFO },
		{ A ".png", 0, WEB_JOBS_PNG },
		{ B ".puls", 1, WEB_JOBS_PULS },
		{ B ".info", 1, WEB_JOBS_INFO },
		{ B ".png", -1, 0 },
		{ A, -1, 0 },
		{ A ".", -1, 0 },
		{ A ".PULS", -1, 0 },
		{ A ".puls/..", -1, 0 },
		{ A ".puls.gz", -1, 0 },
		{ A ".view.json", -1, 0 },
		{ "." A ".png.tmp", -1, 0 },
		{ "../" A ".puls", -1, 0 },
		{ "..", -1, 0 },
		{ "../../etc/passwd", -1, 0 },
		{ "%2e%2e/password", -1, 0 },
		{ "..%2f..%2fetc%2fpasswd", -1, 0 },
		{ "/etc/passwd", -1, 0 },
		{ "", -1, 0 },
		{ ".puls", -1, 0 },
		{ "2026-12-03_061035_motion_3116300.puls ", -1, 0 },
		{ "2026-12-03_061035_motion_311630.puls", -1, 0 },
	};
	enum web_jobs_kind kind;
	size_t i;
	long got;

	(void)state;
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++) {
		kind = (enum web_jobs_kind)-1;
		got = web_jobs_lookup(names, 2, tcs[i].file, &kind);
		if (got != tcs[i].want)
			fail_msg("case %zu \"%s\": %ld, not %ld", i,
			    tcs[i].file, got, tcs[i].want);
		if (got != -1 && kind != tcs[i].kind)
			fail_msg("case %zu \"%s\": kind %d, not %d", i,
			    tcs[i].file, kind, tcs[i].kind);
	}
	/* An empty listing serves nothing. */
	assert_int_equal(web_jobs_lookup(names, 0, A ".puls", &kind), -1);
}

struct base_case {
	const char	*base;
	int		 ok;
};

static void
test_base_ok(void **state)
{
	static const struct base_case tcs[] = {
		{ A, 1 },
		{ B, 1 },
		{ "2026-12-03_061035_motion_-5", 1 },
		{ "2026-12-03_061035_motion_", 0 },
		{ "2026-12-03_061035__5", 0 },
		{ "2026-12-03_061035_Motion_5", 0 },
		{ "2026-12-03_061035_mo.tion_5", 0 },
		{ "2026-12-03_061035_motion_5x", 0 },
		{ "2026-12-03-061035_motion_5", 0 },
		{ "2026-12-3_061035_motion_5", 0 },
		{ "../12-03_061035_motion_5", 0 },
		{ "2026-12-03_061035_motion/../x_5", 0 },
		{ ".2026-12-03_061035_motion_5", 0 },
		{ "", 0 },
		{ "2026-12-03_061035_"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaa_1", 0 },	/* past WEB_JOBS_BASE_MAX */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++)
		if (web_jobs_base_ok(tcs[i].base) != tcs[i].ok)
			fail_msg("case %zu \"%s\": want %d", i, tcs[i].base,
			    tcs[i].ok);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_base_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
