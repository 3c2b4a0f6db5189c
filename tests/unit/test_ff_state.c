/*
 * Unit tests for ff_state.c: a rename written and read back, whose it is,
 * files that are not state files, and a folder that cannot be written.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ff_state.h"

static char dir[64], path[128];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_ff_state.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/flashforge.state", dir);
	return 0;
}

static int
teardown(void **state)
{
	DIR *d;
	struct dirent *e;
	char p[512];

	(void)state;
	if ((d = opendir(dir)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
	return 0;
}

static void
put_file(const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* Files in dir: the state file only, no temporary left behind. */
static int
files_in_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static const struct ff_state_key me = { "adventurer3", "SN1", "My A3" };

static void
test_round_trip(void **state)
{
	char name[65];

	(void)state;
	assert_int_equal(ff_state_load(path, &me, name, sizeof(name)), 1);
	assert_int_equal(ff_state_save(path, &me, "Renamed"), 0);
	assert_int_equal(files_in_dir(), 1);
	assert_int_equal(ff_state_load(path, &me, name, sizeof(name)), 0);
	assert_string_equal(name, "Renamed");
	/* A second rename replaces the first. */
	assert_int_equal(ff_state_save(path, &me, "Again \"quoted\""), 0);
	assert_int_equal(files_in_dir(), 1);
	assert_int_equal(ff_state_load(path, &me, name, sizeof(name)), 0);
	assert_string_equal(name, "Again \"quoted\"");
}

/* Whose the rename is: each key field must match. */
static const struct key_case {
	const char		*what;
	struct ff_state_key	 key;
	int			 rc;
} key_cases[] = {
	{ "the same printer", { "adventurer3", "SN1", "My A3" }, 0 },
	{ "another model", { "finder", "SN1", "My A3" }, 1 },
	{ "another serial", { "adventurer3", "SN2", "My A3" }, 1 },
	{ "a new configured name", { "adventurer3", "SN1", "Yours" }, 1 },
};

static void
test_keys(void **state)
{
	char name[65];
	size_t i;

	(void)state;
	assert_int_equal(ff_state_save(path, &me, "Renamed"), 0);
	for (i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
		name[0] = '\0';
		if (ff_state_load(path, &key_cases[i].key, name,
		    sizeof(name)) != key_cases[i].rc)
			fail_msg("%s", key_cases[i].what);
		if (key_cases[i].rc == 1 && name[0] != '\0')
			fail_msg("%s: a name was copied", key_cases[i].what);
	}
}

/* Files that are not state files: -1, the name untouched. */
static const struct bad_case {
	const char	*what;
	const char	*text;
	size_t		 len;	/* the name buffer, bytes */
} bad_cases[] = {
	{ "empty", "", 65 },
	{ "not JSON", "name: x\n", 65 },
	{ "no name", "{\"model\":\"adventurer3\"}", 65 },
	{ "a number for a name", "{\"name\":5}", 65 },
	{ "an empty name", "{\"name\":\"\"}", 65 },
	{ "a name too long", "{\"model\":\"adventurer3\",\"serial\":\"SN1\","
	    "\"configured_name\":\"My A3\",\"name\":\"0123456789\"}", 8 },
};

static void
test_bad_files(void **state)
{
	char name[65];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		put_file(bad_cases[i].text);
		strcpy(name, "untouched");
		if (ff_state_load(path, &me, name, bad_cases[i].len) != -1)
			fail_msg("%s", bad_cases[i].what);
		assert_string_equal(name, "untouched");
	}
}

static void
test_too_big(void **state)
{
	char name[65], *big = malloc(FF_STATE_MAX + 2);

	(void)state;
	assert_non_null(big);
	memset(big, ' ', FF_STATE_MAX + 1);
	big[FF_STATE_MAX + 1] = '\0';
	put_file(big);
	free(big);
	assert_int_equal(ff_state_load(path, &me, name, sizeof(name)), -1);
}

static void
test_unwritable(void **state)
{
	char bad[160], name[65];

	(void)state;
	snprintf(bad, sizeof(bad), "%s/no/such/dir/flashforge.state", dir);
	assert_int_equal(ff_state_save(bad, &me, "Renamed"), -1);
	assert_int_equal(ff_state_load(bad, &me, name, sizeof(name)), 1);
	/* A directory where the file should be: not readable as one. */
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(ff_state_save(path, &me, "Renamed"), -1);
	assert_int_equal(ff_state_load(path, &me, name, sizeof(name)), -1);
	/* Nothing left behind but the directory. */
	assert_int_equal(files_in_dir(), 1);
	rmdir(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_files, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
