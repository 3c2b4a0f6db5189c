/*
 * test_settings: the generated table, settings_find() and the report of
 * PROTOCOL.md 6, and the generator's refusal of malformed CSV rows.
 */
#include <sys/wait.h>

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "settings.h"

#define TABLE_ROWS	549
#define REPORTED_ROWS	547

static void
test_table_shape(void **state)
{
	size_t i, reported = 0;

	(void)state;
	assert_int_equal(settings_table_len, TABLE_ROWS);
	for (i = 0; i < settings_table_len; i++) {
		assert_int_equal(strlen(settings_table[i].code), 4);
		if (i > 0)	/* strictly sorted: bsearch() needs it */
			assert_true(strcmp(settings_table[i - 1].code,
			    settings_table[i].code) < 0);
		reported += settings_table[i].reported != 0;
	}
	assert_int_equal(reported, REPORTED_ROWS);
}

static void
test_find_every_row(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < settings_table_len; i++)
		assert_ptr_equal(settings_find(settings_table[i].code),
		    &settings_table[i]);
}

static void
test_find(void **state)
{
	static const struct {
		const char		*code;
		int			 found;
		enum settings_type	 type;
		int			 reported;
		const char		*defval;
	} cases[] = {
		{ "LLvl", 1, SETTINGS_INT, 1, "132" },
		{ "MCla", 1, SETTINGS_FLOAT, 1, "0.13574219" },
		{ "NIma", 1, SETTINGS_STR, 1, "de:ad:be:ef:00:00" },
		{ "PTmx", 1, SETTINGS_INT, 1, "4294967295" },
		{ "STfr", 1, SETTINGS_INT, 0, "10000" },
		{ "HCil", 1, SETTINGS_INT, 0, "" },
		{ "MCsn", 1, SETTINGS_INT, 1, "" },
		{ "AAdc", 1, SETTINGS_INT, 1, "204" },	/* first */
		{ "llvl", 0, 0, 0, NULL },		/* codes keep case */
		{ "LLv", 0, 0, 0, NULL },
		{ "LLvlx", 0, 0, 0, NULL },
		{ "", 0, 0, 0, NULL },
		{ "ZZZZ", 0, 0, 0, NULL },
		{ "0000", 0, 0, 0, NULL },
	};
	const struct settings_row *row;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		row = settings_find(cases[i].code);
		if (!cases[i].found) {
			assert_null(row);
			continue;
		}
		assert_non_null(row);
		assert_string_equal(row->code, cases[i].code);
		assert_int_equal(row->type, cases[i].type);
		assert_int_equal(row->reported, cases[i].reported);
		assert_string_equal(row->defval, cases[i].defval);
	}
	assert_null(settings_find(NULL));
	row = settings_find("STfr");
	assert_string_equal(row->min, "1000");
	assert_string_equal(row->max, "200000");
}

static int
count_members(const cJSON *obj)
{
	const cJSON *it;
	int n = 0;

	cJSON_ArrayForEach(it, obj)
		n++;
	return n;
}

static void
test_report_members_and_types(void **state)
{
	const struct settings_row *row;
	const cJSON *it;
	cJSON *rep;

	(void)state;
	rep = settings_report(NULL);
	assert_non_null(rep);
	assert_true(cJSON_IsObject(rep));
	assert_int_equal(count_members(rep), REPORTED_ROWS);
	cJSON_ArrayForEach(it, rep) {
		row = settings_find(it->string);
		assert_non_null(row);
		assert_true(row->reported);
		if (row->type == SETTINGS_STR)
			assert_true(cJSON_IsString(it));
		else
			assert_true(cJSON_IsNumber(it));
	}
	assert_null(cJSON_GetObjectItemCaseSensitive(rep, "STfr"));
	assert_null(cJSON_GetObjectItemCaseSensitive(rep, "HCil"));
	cJSON_Delete(rep);
}

/* Spot values, both as parsed numbers and as the exact text sent. */
static void
test_report_values(void **state)
{
	static const struct {
		const char	*code;
		const char	*str;	/* a string member, or NULL */
		double		 num;
		const char	*json;	/* as printed */
	} cases[] = {
		{ "LLvl", NULL, 132, "\"LLvl\":132" },
		{ "MCla", NULL, 0.13574219, "\"MCla\":0.13574219" },
		{ "NItr", NULL, 72.199997, "\"NItr\":72.199997" },
		{ "NIma", "de:ad:be:ef:00:00", 0,
		    "\"NIma\":\"de:ad:be:ef:00:00\"" },
		{ "PTmx", NULL, 4294967295.0, "\"PTmx\":4294967295" },
		{ "BTin", NULL, -2147483648.0, "\"BTin\":-2147483648" },
		{ "MCov", "2.6.0-2228", 0, "\"MCov\":\"2.6.0-2228\"" },
		{ "HEfv", NULL, 199234110, "\"HEfv\":199234110" },
		{ "HEid", NULL, 1100, "\"HEid\":1100" },
		{ "HEsn", NULL, 123456789, "\"HEsn\":123456789" },
		{ "SAid", NULL, 0, "\"SAid\":0" },
		{ "MCsn", NULL, 0, "\"MCsn\":0" },
	};
	struct settings_overrides ov = { .now = 1700000000 };
	const cJSON *it;
	cJSON *rep;
	char *text;
	size_t i;

	(void)state;
	rep = settings_report(&ov);
	assert_non_null(rep);
	text = cJSON_PrintUnformatted(rep);
	assert_non_null(text);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		it = cJSON_GetObjectItemCaseSensitive(rep, cases[i].code);
		assert_non_null(it);
		if (cases[i].str != NULL)
			assert_string_equal(it->valuestring, cases[i].str);
		else
			assert_true(it->valuedouble == cases[i].num);
		if (strstr(text, cases[i].json) == NULL)
			fail_msg("%s not in the report", cases[i].json);
	}
	it = cJSON_GetObjectItemCaseSensitive(rep, "MCdt");
	assert_true(it->valuedouble == 1700000000.0);
	free(text);
	cJSON_Delete(rep);
}

static void
test_report_overrides(void **state)
{
	static const struct {
		const char	*name;
		struct settings_overrides ov;
		const char	*want[8];	/* printed members */
	} cases[] = {
		{ "all set", {
			.action_id = 3116308, .serial = 12345678,
			.fw_version = "2.6.1-3000", .app_version = "deadbeef",
			.head_firmware = "199234111", .head_id = "1101",
			.head_serial = "987654321", .now = 1712345678 },
		    { "\"SAid\":3116308", "\"MCsn\":12345678",
		    "\"MCov\":\"2.6.1-3000\"", "\"MCdv\":\"deadbeef\"",
		    "\"HEfv\":199234111", "\"HEid\":1101",
		    "\"HEsn\":987654321", "\"MCdt\":1712345678" } },
		{ "NULL strings keep the defaults", {
			.action_id = 1, .serial = 7, .now = 5 },
		    { "\"SAid\":1", "\"MCsn\":7", "\"MCov\":\"2.6.0-2228\"",
		    "\"MCdv\":\"370ee0b4dad80d10d088b6b65fd10a9144eff5a5\"",
		    "\"HEfv\":199234110", "\"HEid\":1100",
		    "\"HEsn\":123456789", "\"MCdt\":5" } },
		{ "non-numbers fall back to the defaults", {
			.head_firmware = "abc", .head_id = "12x",
			.head_serial = "", .now = 1 },
		    { "\"HEfv\":199234110", "\"HEid\":1100",
		    "\"HEsn\":123456789" } },
		{ "no sign, space or hex sneaks through", {
			.head_firmware = " 5", .head_id = "+5",
			.head_serial = "0x10", .now = 1 },
		    { "\"HEfv\":199234110", "\"HEid\":1100",
		    "\"HEsn\":123456789" } },
		{ "large and negative values stay exact", {
			.action_id = 999999999999999LL,
			.serial = 999999999999999ULL, .head_id = "-5",
			.head_serial = "4294967295", .now = 1 },
		    { "\"SAid\":999999999999999",
		    "\"MCsn\":999999999999999", "\"HEid\":-5",
		    "\"HEsn\":4294967295" } },
		{ "an override cJSON could not print exactly", {
			.head_serial = "9007199254740991", .now = 1 },
		    { "\"HEsn\":123456789" } },
	};
	cJSON *rep;
	char *text, *fast;
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rep = settings_report(&cases[i].ov);
		assert_non_null(rep);
		assert_int_equal(count_members(rep), REPORTED_ROWS);
		text = cJSON_PrintUnformatted(rep);
		assert_non_null(text);
		for (j = 0; j < 8 && cases[i].want[j] != NULL; j++)
			if (strstr(text, cases[i].want[j]) == NULL)
				fail_msg("%s: %s not in the report",
				    cases[i].name, cases[i].want[j]);
		/* The text a frame carries is the tree's, byte for byte,
		 * though its fixed rows were printed once, long before. */
		fast = settings_report_text(&cases[i].ov);
		assert_non_null(fast);
		if (strcmp(fast, text) != 0)
			fail_msg("%s: settings_report_text() differs from the "
			    "printed tree", cases[i].name);
		free(fast);
		free(text);
		cJSON_Delete(rep);
	}
}

static void
test_report_now_default(void **state)
{
	struct settings_overrides ov = { .action_id = 3 };
	const cJSON *it;
	cJSON *rep;
	time_t before, after;

	(void)state;
	before = time(NULL);
	rep = settings_report(&ov);
	after = time(NULL);
	assert_non_null(rep);
	it = cJSON_GetObjectItemCaseSensitive(rep, "MCdt");
	assert_true(it->valuedouble >= (double)before &&
	    it->valuedouble <= (double)after);
	cJSON_Delete(rep);
}

/*
 * The generator, run as the build runs it, on small CSVs: the good ones
 * must come out right, the bad ones must fail the build.
 */
static void
test_generator(void **state)
{
	static const char hdr[] = "code,type,reported,min,max,default\n";
	static const struct {
		const char	*name;
		const char	*csv;		/* after the header */
		int		 ok;
		const char	*want;		/* in the output, or NULL */
	} cases[] = {
		{ "a plain row", "AAaa,int,1,0,9,5\n", 1,
		    "{ \"AAaa\", SETTINGS_INT, 1, \"5\", \"0\", \"9\" }" },
		{ "rows come out sorted", "ZZzz,int,1,,,1\nAAaa,str,0,,,x\n",
		    1, "{ \"AAaa\", SETTINGS_STR, 0, \"x\", \"\", \"\" },\n"
		    "\t{ \"ZZzz\"" },
		{ "quotes, backslashes and C's ? are escaped",
		    "AAaa,str,1,,,\"a,\"\"b\"\"\\c?\?=\"\n", 1,
		    "\"a,\\042b\\042\\134c\\077\\077=\"" },
		{ "control and 8-bit bytes are octal",
		    "AAaa,str,1,,,\"t\tcaf\xc3\xa9\"\n", 1,
		    "\"t\\011caf\\303\\251\"" },
		{ "CRLF and no final newline", "AAaa,float,1,,,.5\r\n"
		    "AAab,float,1,,,-1e3", 1,
		    "{ \"AAab\", SETTINGS_FLOAT, 1, \"-1e3\"" },
		{ "too few fields", "AAaa,int,1,,\n", 0, NULL },
		{ "too many fields", "AAaa,int,1,,,5,\n", 0, NULL },
		{ "bad type", "AAaa,long,1,,,5\n", 0, NULL },
		{ "bad reported", "AAaa,int,yes,,,5\n", 0, NULL },
		{ "short code", "AAa,int,1,,,5\n", 0, NULL },
		{ "code with a quote", "AA\"a,int,1,,,5\n", 0, NULL },
		{ "int default not a number", "AAaa,int,1,,,5x\n", 0, NULL },
		{ "float default nan", "AAaa,float,1,,,nan\n", 0, NULL },
		{ "int too large to be exact",
		    "AAaa,int,1,,,12345678901234567\n", 0, NULL },
		{ "duplicate code", "AAaa,int,1,,,1\nAAaa,int,1,,,2\n", 0,
		    NULL },
		{ "unterminated quote", "AAaa,str,1,,,\"abc\n", 0, NULL },
		{ "junk after a quote", "AAaa,str,1,,,\"abc\"d\n", 0, NULL },
		{ "bad header", NULL, 0, NULL },
	};
	const char *cmake = getenv("GFE_CMAKE"), *srcdir = getenv("GFE_SRC");
	char dir[] = "/tmp/test_settings.XXXXXX", csv[PATH_MAX];
	char out[PATH_MAX], cmd[3 * PATH_MAX + 128], buf[4096];
	FILE *fp;
	size_t i, n;
	int st;

	(void)state;
	if (cmake == NULL || srcdir == NULL)
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(csv, sizeof(csv), "%s/in.csv", dir);
	snprintf(out, sizeof(out), "%s/out.c", dir);
	snprintf(cmd, sizeof(cmd), "'%s' -DCSV='%s' -DOUT='%s' -P "
	    "'%s/src/settings_table.cmake' >/dev/null 2>&1", cmake, csv, out,
	    srcdir);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unlink(out);
		assert_non_null(fp = fopen(csv, "w"));
		if (cases[i].csv != NULL)
			fprintf(fp, "%s%s", hdr, cases[i].csv);
		else
			fputs("code,type,default\nAAaa,int,1\n", fp);
		fclose(fp);
		st = system(cmd);
		assert_true(WIFEXITED(st));
		if ((WEXITSTATUS(st) == 0) != cases[i].ok)
			fail_msg("%s: cmake exited %d", cases[i].name,
			    WEXITSTATUS(st));
		if (!cases[i].ok) {
			/* Nothing half-written for the build to pick up. */
			assert_int_equal(access(out, F_OK), -1);
			continue;
		}
		assert_non_null(fp = fopen(out, "r"));
		n = fread(buf, 1, sizeof(buf) - 1, fp);
		buf[n] = '\0';
		fclose(fp);
		if (cases[i].want != NULL && strstr(buf, cases[i].want) == NULL)
			fail_msg("%s: '%s' not in:\n%s", cases[i].name,
			    cases[i].want, buf);
	}
	unlink(csv);
	unlink(out);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_shape),
		cmocka_unit_test(test_find_every_row),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_report_members_and_types),
		cmocka_unit_test(test_report_values),
		cmocka_unit_test(test_report_overrides),
		cmocka_unit_test(test_report_now_default),
		cmocka_unit_test(test_generator),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
