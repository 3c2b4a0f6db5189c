/*
 * Unit tests for sim_fleet.c: the machines CSV (each bad line named by
 * its number), serial ranges, lookups by serial and by token, and a
 * second sign-in's tokens replacing that machine's own only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sim_fleet.h"

struct test_case {
	const char	*name;
	const char	*csv;
	const char	*err;		/* NULL: parses */
	size_t		 n;		/* machines when it parses */
	const char	*serial;	/* the last machine's */
	const char	*password;
	const char	*host;
};

static const struct test_case csv_cases[] = {
	{ "one", "12345678,pw\n", NULL, 1, "12345678", "pw", "" },
	{ "S prefix, host, no newline", "S1,a\nS2,b,gf-2.local", NULL, 2,
	    "2", "b", "gf-2.local" },
	{ "comments, blanks, CRLF, spaces", "# fleet\n\n 7 , p7 \r\n"
	    "  # more\n8,p8,h8\r\n", NULL, 2, "8", "p8", "h8" },
	/* The daemon's machines_file takes these too: one file serves both. */
	{ "';' comment, '_' in a hostname", "; fleet\n1,a\n2,b,gf_2.lan\n",
	    NULL, 2, "2", "b", "gf_2.lan" },
	{ "empty", "", "f.csv: 1 to 200000 machines, not 0", 0, NULL, NULL,
	    NULL },
	{ "comments only", "# x\n\n", "f.csv: 1 to 200000 machines, not 0",
	    0, NULL, NULL, NULL },
	{ "one field", "1,a\n2\n", "f.csv:2: expected "
	    "serial,password[,hostname]", 0, NULL, NULL, NULL },
	{ "four fields", "1,a\n\n3,b,c,d\n", "f.csv:3: more than 3 fields",
	    0, NULL, NULL, NULL },
	{ "serial not digits", "# c\n12a4,pw\n", "f.csv:2: the serial is "
	    "not 1 to 20 digits", 0, NULL, NULL, NULL },
	{ "serial too long", "123456789012345678901,pw\n", "f.csv:1: the "
	    "serial is not 1 to 20 digits", 0, NULL, NULL, NULL },
	{ "empty password", "1,pw\n2,\n", "f.csv:2: a password is 1 to 256 "
	    "bytes", 0, NULL, NULL, NULL },
	{ "password with a quote", "1,p\"w\n", "f.csv:1: a password holds a "
	    "control character, a comma or a quote", 0, NULL, NULL, NULL },
	{ "bad hostname", "1,pw,bad host\n", "f.csv:1: the hostname is not "
	    "up to 63 of [A-Za-z0-9._-]", 0, NULL, NULL, NULL },
	{ "duplicate serial", "1,a\n2,b\nS1,c\n", "f.csv:3: serial 1 given "
	    "twice", 0, NULL, NULL, NULL },
};

static void
test_csv(void **state)
{
	struct sim_fleet *f;
	struct sim_machine *m;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(csv_cases) / sizeof(csv_cases[0]); i++) {
		const struct test_case *tc = &csv_cases[i];

		err[0] = '\0';
		f = sim_fleet_parse_csv(tc->csv, strlen(tc->csv), "f.csv", err,
		    sizeof(err));
		if (tc->err != NULL) {
			if (f != NULL || strcmp(err, tc->err) != 0)
				fail_msg("%s: got \"%s\", want \"%s\"",
				    tc->name, err, tc->err);
			continue;
		}
		if (f == NULL)
			fail_msg("%s: %s", tc->name, err);
		assert_int_equal(sim_fleet_count(f), tc->n);
		m = sim_fleet_machine(f, tc->n - 1);
		assert_string_equal(m->serial, tc->serial);
		assert_string_equal(m->password, tc->password);
		assert_string_equal(m->hostname, tc->host);
		assert_ptr_equal(sim_fleet_by_serial(f, tc->serial), m);
		sim_fleet_free(f);
	}
}

struct range_case {
	const char	*first;
	size_t		 n;
	const char	*err;
	const char	*last;
};

static const struct range_case ranges[] = {
	{ "20000000", 10000, NULL, "20009999" },
	{ "0098", 5, NULL, "0102" },		/* width kept */
	{ "99999999999999999999", 1, NULL, "99999999999999999999" },
	{ "1234567890123456789", 2, "serial \"1234567890123456789\": 1 to "
	    "18 digits, without the S", NULL },
	{ "S12", 2, "serial \"S12\": 1 to 18 digits, without the S", NULL },
	{ "1", 0, "1 to 200000 machines", NULL },
};

static void
test_range(void **state)
{
	struct sim_fleet *f;
	char err[256], sn[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		const struct range_case *tc = &ranges[i];

		err[0] = '\0';
		f = sim_fleet_range(tc->first, tc->n, "pw", err, sizeof(err));
		if (tc->err != NULL) {
			assert_null(f);
			assert_string_equal(err, tc->err);
			continue;
		}
		assert_non_null(f);
		assert_string_equal(sim_fleet_machine(f, tc->n - 1)->serial,
		    tc->last);
		snprintf(sn, sizeof(sn), "S%s", tc->last);
		assert_ptr_equal(sim_fleet_by_serial(f, sn),
		    sim_fleet_machine(f, tc->n - 1));
		assert_null(sim_fleet_by_serial(f, "S1"));
		sim_fleet_free(f);
	}
}

static void
tok(char *buf, unsigned n)
{
	snprintf(buf, SIM_FLEET_TOKEN_LEN + 1, "%064x", n);
}

/* A second sign-in of one machine replaces its auth token and takes a ws
 * slot of its own: the other machines' tokens stay. */
static void
test_tokens(void **state)
{
	struct sim_machine *a, *b;
	struct sim_tok *t, *w1, *w2, *w3;
	struct sim_fleet *f;
	char err[128], t1[80], t2[80], t3[80], t4[80], t5[80];

	(void)state;
	f = sim_fleet_range("100", 3, "pw", err, sizeof(err));
	assert_non_null(f);
	a = sim_fleet_machine(f, 0);
	b = sim_fleet_machine(f, 1);
	tok(t1, 1); tok(t2, 2); tok(t3, 3); tok(t4, 4); tok(t5, 5);
	sim_fleet_token_set(f, &a->auth, t1, 0);
	w1 = sim_fleet_ws_slot(a, 0, 30000);
	sim_fleet_token_set(f, w1, t2, 0);
	sim_fleet_token_set(f, &b->auth, t3, 0);
	w3 = sim_fleet_ws_slot(b, 0, 30000);
	sim_fleet_token_set(f, w3, t4, 0);

	t = sim_fleet_by_token(f, t1);
	assert_non_null(t);
	assert_ptr_equal(t->m, a);
	assert_int_equal(t->kind, SIM_TOK_AUTH);
	assert_ptr_equal(sim_fleet_by_token(f, t4)->m, b);
	assert_null(sim_fleet_by_token(f, "short"));

	/* a signs in again: a new auth token, a second ws slot. */
	sim_fleet_token_set(f, &a->auth, t5, 10);
	w2 = sim_fleet_ws_slot(a, 10, 30000);
	assert_ptr_not_equal(w2, w1);
	assert_null(sim_fleet_by_token(f, t1));	/* retired */
	assert_ptr_equal(sim_fleet_by_token(f, t5)->m, a);
	assert_ptr_equal(sim_fleet_by_token(f, t2), w1);	/* still live */
	assert_ptr_equal(sim_fleet_by_token(f, t3)->m, b);	/* untouched */
	assert_ptr_equal(sim_fleet_by_token(f, t4), w3);
	/* A used or expired slot is taken first. */
	w1->live = 0;
	sim_fleet_token_set(f, w2, t1, 10);
	assert_ptr_equal(sim_fleet_ws_slot(a, 20, 30000), w1);
	assert_ptr_equal(sim_fleet_ws_slot(a, 50000, 30000), w1);
	sim_fleet_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csv),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_tokens),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
