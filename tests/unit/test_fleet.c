/*
 * test_fleet: the shard arithmetic (slices disjoint, contiguous and the
 * whole fleet, for many fleet sizes and shard counts), one shard's
 * machines from each kind of configuration, machines_file errors with
 * their line numbers, and passwords wiped before they are freed.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "fleet.h"

#define PW	"0123456789abcdef0123456789abcdef" \
		"0123456789abcdef0123456789abcdef"
#define PW2	"fedcba9876543210fedcba9876543210" \
		"fedcba9876543210fedcba9876543210"

void	 __real_free(void *);
void	 __wrap_free(void *);

/* Passwords fleet_free() must have wiped when they reach free(). */
#define WATCH_MAX	64
static struct {
	void	*p;
	size_t	 len;
} watch[WATCH_MAX];
static size_t	 nwatch, nwiped, nunwiped;

void
__wrap_free(void *p)
{
	size_t i, j;

	for (i = 0; p != NULL && i < nwatch; i++) {
		if (watch[i].p != p)
			continue;
		for (j = 0; j < watch[i].len; j++)
			if (((unsigned char *)p)[j] != 0)
				break;
		if (j == watch[i].len)
			nwiped++;
		else
			nunwiped++;
		watch[i].p = NULL;
	}
	__real_free(p);
}

static char	topdir[] = "/tmp/test_fleet.XXXXXX";
static int	ncase;

/* --- the arithmetic --- */

static const struct slice_case {
	size_t		 total;
	unsigned	 nshards;
} slices[] = {
	{ 1, 1 }, { 1, 2 }, { 1, 7 }, { 2, 3 }, { 3, 2 }, { 7, 3 },
	{ 10, 3 }, { 10, 10 }, { 10, 11 }, { 10, 64 }, { 100, 7 },
	{ 10000, 1 }, { 10000, 3 }, { 10000, 16 }, { 10001, 16 },
	{ 999999, 1000 }, { 1000000, 65536 }, { 5, 65536 },
	{ SIZE_MAX, 65536 }, { SIZE_MAX - 1, 3 }, { 0, 4 },
};

static void
test_slices(void **state)
{
	const struct slice_case *c;
	size_t i, first, count, end, sum, lo, hi;
	unsigned s;

	(void)state;
	for (i = 0; i < sizeof(slices) / sizeof(slices[0]); i++) {
		c = &slices[i];
		lo = c->total / c->nshards;
		hi = lo + (c->total % c->nshards != 0);
		end = 0;
		sum = 0;
		for (s = 0; s < c->nshards; s++) {
			assert_int_equal(fleet_slice(c->total, s, c->nshards,
			    &first, &count), 0);
			/* Starts where the last one ended: no gap, no
			 * overlap; balanced to within one machine. */
			if (first != end)
				fail_msg("total %zu, %u shards: shard %u starts"
				    " at %zu, not %zu", c->total, c->nshards,
				    s, first, end);
			if (count < lo || count > hi)
				fail_msg("total %zu, %u shards: shard %u has "
				    "%zu", c->total, c->nshards, s, count);
			end = first + count;
			sum += count;
		}
		if (end != c->total || sum != c->total)
			fail_msg("total %zu, %u shards: end %zu, sum %zu",
			    c->total, c->nshards, end, sum);
	}
}

static void
test_slice_bad(void **state)
{
	size_t first = 7, count = 7;

	(void)state;
	assert_int_equal(fleet_slice(10, 0, 0, &first, &count), -1);
	assert_int_equal(fleet_slice(10, 3, 3, &first, &count), -1);
	assert_int_equal(fleet_slice(10, UINT_MAX, 3, &first, &count), -1);
	assert_int_equal(first, 7);
	assert_int_equal(count, 7);
}

/* --- one shard of a real configuration --- */

static void
write_file(const char *dir, const char *name, const char *content,
    size_t len)
{
	char path[PATH_MAX];
	int fd;

	if (len == 0)
		len = strlen(content);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
}

/* config_load() of cfg (and csv as m.csv, csvlen bytes or 0 for all,
 * PW in pw) with stderr kept. */
static char *
load(struct config *cf, const char *cfg, const char *csv, size_t csvlen,
    int *rc)
{
	char dir[256], path[PATH_MAX], *buf;
	int fd, saved;
	off_t len;

	snprintf(dir, sizeof(dir), "%s/%d", topdir, ++ncase);
	assert_int_equal(mkdir(dir, 0700), 0);
	write_file(dir, "gf.cfg", cfg, 0);
	write_file(dir, "pw", PW "\n", 0);
	if (csv != NULL)
		write_file(dir, "m.csv", csv, csvlen);
	snprintf(path, sizeof(path), "%s/stderr", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	snprintf(path, sizeof(path), "%s/gf.cfg", dir);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	*rc = config_load(cf, path);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	len = lseek(fd, 0, SEEK_END);
	assert_non_null(buf = calloc(1, (size_t)len + 1));
	assert_int_equal(pread(fd, buf, (size_t)len, 0), len);
	close(fd);
	return buf;
}

static const struct build_case {
	const char	*name;
	const char	*cfg;
	const char	*csv;		/* m.csv, or NULL */
	unsigned	 shard, nshards;
	int		 rc;		/* of fleet_build() */
	const char	*why;		/* in its reason when rc is -1 */
	size_t		 first, n, total;
	const char	*serial0;	/* m[0] */
	const char	*serial_last;	/* m[n - 1] */
	const char	*password0;
	const char	*hostname0;	/* or NULL */
	double		 rate;
	int		 keep_jobs;
} builds[] = {
	{ "[MACHINE] alone is a fleet of one",
	    "[MACHINE]\nserial = S12345678\npassword = " PW "\n"
	    "hostname = ABC-123\n", NULL, 0, 1, 0, NULL,
	    0, 1, 1, "12345678", "12345678", PW, "ABC-123", 100, 1 },
	{ "[MACHINE] alone, shard 0/2: empty",
	    "[MACHINE]\nserial = 1\npassword = " PW "\n", NULL, 0, 2, -1,
	    "shard 0/2 has no machines: the fleet has 1", 0, 0, 0, NULL,
	    NULL, NULL, NULL, 0, 0 },
	{ "[MACHINE] alone, shard 1/2: the one machine",
	    "[MACHINE]\nserial = 1\npassword = " PW "\n", NULL, 1, 2, 0,
	    NULL, 0, 1, 1, "1", "1", PW, NULL, 50, 1 },
	{ "count, the whole fleet",
	    "[FLEET]\ncount = 10\nserial_first = S20000000\n"
	    "password_file = pw\n", NULL, 0, 1, 0, NULL,
	    0, 10, 10, "20000000", "20000009", PW, NULL, 100, 0 },
	{ "count, shard 1/3, rate split, keep_jobs",
	    "[FLEET]\ncount = 10\nserial_first = 20000000\n"
	    "password_file = pw\nconnect_rate = 90\nkeep_jobs = yes\n", NULL,
	    1, 3, 0, NULL, 3, 3, 10, "20000003", "20000005", PW, NULL, 30,
	    1 },
	{ "count, serials past a power of ten",
	    "[FLEET]\ncount = 3\nserial_first = 99999999\n"
	    "password_file = pw\n", NULL, 0, 1, 0, NULL,
	    0, 3, 3, "99999999", "100000001", PW, NULL, 100, 0 },
	{ "machines_file, shard 1/2",
	    "[FLEET]\nmachines_file = m.csv\n",
	    "# serial,password,hostname\n\nS11," PW ",host-a\n"
	    "  12 , " PW2 " \n; off\n13," PW ",host.c\n", 1, 2, 0, NULL,
	    1, 2, 3, "12", "13", PW2, NULL, 50, 0 },
	{ "machines_file, shard 0/2: its hostname",
	    "[FLEET]\nmachines_file = m.csv\n",
	    "S11," PW ",host-a\n12," PW2 "\n13," PW "\n", 0, 2, 0, NULL,
	    0, 1, 3, "11", "11", PW, "host-a", 50, 0 },
	{ "machines_file, more shards than machines",
	    "[FLEET]\nmachines_file = m.csv\n",
	    "11," PW "\n12," PW "\n", 0, 3, -1,
	    "shard 0/3 has no machines: the fleet has 2, so at most 2",
	    0, 0, 0, NULL, NULL, NULL, NULL, 0, 0 },
	{ "shard index past the count",
	    "[FLEET]\ncount = 4\nserial_first = 1\npassword_file = pw\n",
	    NULL, 4, 4, -1, "shard 4/4: the index must be below the count",
	    0, 0, 0, NULL, NULL, NULL, NULL, 0, 0 },
};

static void
run_build(const struct build_case *c)
{
	struct config cf;
	struct fleet fl;
	char why[256] = "", *err;
	size_t i;
	int rc;

	err = load(&cf, c->cfg, c->csv, 0, &rc);
	if (rc != 0)
		fail_msg("%s: config_load failed:\n%s", c->name, err);
	free(err);
	cf.shard_index = c->shard;
	cf.shard_count = c->nshards;
	rc = fleet_build(&fl, &cf, why, sizeof(why));
	if (rc != c->rc)
		fail_msg("%s: fleet_build %d (%s)", c->name, rc, why);
	if (rc == -1) {
		if (strstr(why, c->why) == NULL)
			fail_msg("%s: reason '%s', not '%s'", c->name, why,
			    c->why);
		assert_null(fl.m);
		fleet_free(&fl);
		config_free(&cf);
		return;
	}
	if (fl.first != c->first || fl.n != c->n || fl.total != c->total)
		fail_msg("%s: first %zu n %zu total %zu", c->name, fl.first,
		    fl.n, fl.total);
	assert_string_equal(fl.m[0].serial, c->serial0);
	assert_string_equal(fl.m[fl.n - 1].serial, c->serial_last);
	assert_string_equal(fl.m[0].password, c->password0);
	if (c->hostname0 == NULL)
		assert_null(fl.m[0].hostname);
	else
		assert_string_equal(fl.m[0].hostname, c->hostname0);
	for (i = 0; i < fl.n; i++)
		assert_int_equal(fl.m[i].index, c->first + i);
	assert_true(fl.connect_rate > c->rate - 1e-9 &&
	    fl.connect_rate < c->rate + 1e-9);
	assert_int_equal(fl.keep_jobs, c->keep_jobs);
	assert_int_equal(fl.shard, c->shard);
	assert_int_equal(fl.nshards, c->nshards);

	/* fleet_free() wipes every password before free() sees it. */
	nwatch = nwiped = nunwiped = 0;
	for (i = 0; i < fl.n && nwatch < WATCH_MAX; i++) {
		watch[nwatch].p = fl.m[i].password;
		watch[nwatch++].len = strlen(fl.m[i].password);
	}
	fleet_free(&fl);
	if (nwiped != nwatch || nunwiped != 0)
		fail_msg("%s: %zu of %zu passwords wiped, %zu not", c->name,
		    nwiped, nwatch, nunwiped);
	nwatch = 0;
	assert_null(fl.m);
	config_free(&cf);
}

static void
test_build(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(builds) / sizeof(builds[0]); i++)
		run_build(&builds[i]);
}

/* Every shard of a count fleet: each serial exactly once, in order. */
static void
test_shards_cover(void **state)
{
	static const unsigned ns[] = { 1, 2, 3, 7, 50, 97 };
	struct config cf;
	struct fleet fl;
	char why[256], want[32], *err;
	size_t i, next;
	unsigned s, k;
	int rc;

	(void)state;
	err = load(&cf, "[FLEET]\ncount = 97\nserial_first = 30000000\n"
	    "password_file = pw\n", NULL, 0, &rc);
	assert_int_equal(rc, 0);
	free(err);
	for (k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		next = 0;
		for (s = 0; s < ns[k]; s++) {
			cf.shard_index = s;
			cf.shard_count = ns[k];
			if (fleet_build(&fl, &cf, why, sizeof(why)) == -1)
				fail_msg("%u/%u: %s", s, ns[k], why);
			for (i = 0; i < fl.n; i++, next++) {
				snprintf(want, sizeof(want), "%zu",
				    30000000 + next);
				assert_string_equal(fl.m[i].serial, want);
				assert_int_equal(fl.m[i].index, next);
			}
			fleet_free(&fl);
		}
		assert_int_equal(next, 97);
	}
	config_free(&cf);
}

/* --- machines_file errors: file:line each, nothing secret --- */

static const struct csv_case {
	const char	*name;
	const char	*csv;
	const char	*err[3];	/* "m.csv:LINE: ..." expected */
	size_t		 len;		/* of csv; 0: strlen */
} csvs[] = {
	{ "bad serial digits", "1," PW "\n\nS12x," PW "\n",
	    { "m.csv:3: serial must be 1 to 15 decimal digits" }, 0 },
	{ "serial too long", "1234567890123456," PW "\n",
	    { "m.csv:1: serial must be 1 to 15 decimal digits" }, 0 },
	{ "password not 64 hex", "# head\n1," PW "\n2,abc\n3," PW "g\n",
	    { "m.csv:3: password must be 64 hexadecimal characters",
	    "m.csv:4: password must be 64 hexadecimal characters" }, 0 },
	{ "duplicate serial, S and zeros", "S7," PW "\n8," PW "\n007," PW
	    "\n", { "m.csv:3: duplicate serial (first on line 1)" }, 0 },
	{ "too many fields", "1," PW ",h,extra\n",
	    { "m.csv:1: too many fields: expected serial,password"
	    "[,hostname]" }, 0 },
	{ "too few fields", "1\n", { "m.csv:1: too few fields" }, 0 },
	{ "bad hostname", "1," PW ",has space\n",
	    { "m.csv:1: hostname must be letters, digits" }, 0 },
	{ "no machines", "# nothing\n\n", { "m.csv: no machines in it" },
	    0 },
	{ "NUL byte", "1," PW "\n2\0,x\n", { "m.csv:2: NUL byte" },
	    2 + 64 + 1 + 5 },
};

static void
test_csv_errors(void **state)
{
	const struct csv_case *c;
	struct config cf;
	char *err;
	size_t i, j;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(csvs) / sizeof(csvs[0]); i++) {
		c = &csvs[i];
		err = load(&cf, "[FLEET]\nmachines_file = m.csv\n", c->csv,
		    c->len, &rc);
		if (rc != -1)
			fail_msg("%s: config_load %d", c->name, rc);
		for (j = 0; j < 3 && c->err[j] != NULL; j++)
			if (strstr(err, c->err[j]) == NULL)
				fail_msg("%s: '%s' not in:\n%s", c->name,
				    c->err[j], err);
		if (strstr(err, PW) != NULL || strstr(err, "S12x") != NULL)
			fail_msg("%s: a secret on stderr:\n%s", c->name, err);
		free(err);
		config_free(&cf);
	}
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(topdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", topdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slices),
		cmocka_unit_test(test_slice_bad),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_shards_cover),
		cmocka_unit_test(test_csv_errors),
	};

	unsetenv("CREDENTIALS_DIRECTORY");
	return cmocka_run_group_tests(tests, setup, teardown);
}
