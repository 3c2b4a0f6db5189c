/*
 * Unit tests for sim_load.c, driven through fake operations: two machines,
 * two actions (one each), then the frames of a case; the verdict and the
 * summary's counters must be the case's.  Each check of the load mode
 * (lost, duplicated, order, wrong terminal, another machine's action, a
 * secret, a falling frame id, a frame cut short, the p99 cap) has a case
 * that trips it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "log.h"
#include "sim_fleet.h"
#include "sim_load.h"
#include "sim_scenario.h"
#include "sim_transcript.h"

#define TOKEN	"0123456789abcdef0123456789abcdef" \
		"0123456789abcdef0123456789abcdef"
#define A0	"3116300"	/* the first action: machine 0's */
#define A1	"3116301"	/* machine 1's */
#define EV(id, fid, ev) "{\"id\":" fid ",\"timestamp\":3800,\"type\":" \
	"\"event\",\"version\":1,\"action_id\":" id ",\"event\":\"" ev "\"}\n"

struct rx {
	int		 m;		/* machine, -1: end of list */
	const char	*text;
	int64_t		 at_us;
};

struct test_case {
	const char	*name;
	const char	*profile;
	double		 max_p99_ms;
	struct rx	 rx[5];
	int		 rc;
	int		 lost, dup, violations;
	int		 sent;		/* frames the fake sent */
};

#define SETTINGS "{\"send\": {\"action_type\": \"settings\"}, \"expect\": " \
	"\"settings:completed\", \"events\": [\"settings:completed\"]}\n"
#define OK0	{ 0, EV(A0, "32", "settings:completed"), 3000 }
#define OK1	{ 1, EV(A1, "32", "settings:completed"), 3000 }
#define END	{ -1, NULL, 0 }

/* What /metrics says after the first case: latencies 3000 and 2000 us
 * (due at 0 and 1 ms, both answered at 3 ms). */
static const char *const metrics0[] = {
	"gfsim_machines_connected 2\n",
	"gfsim_actions_sent_total 2\n",
	"gfsim_terminals_total{kind=\"completed\"} 2\n",
	"gfsim_action_latency_microseconds_bucket{le=\"1023\"} 0\n",
	"gfsim_action_latency_microseconds_bucket{le=\"2047\"} 1\n",
	"gfsim_action_latency_microseconds_bucket{le=\"4095\"} 2\n",
	"gfsim_action_latency_microseconds_bucket{le=\"+Inf\"} 2\n",
	"gfsim_action_latency_microseconds_sum 5000\n",
	"gfsim_action_latency_microseconds_count 2\n",
	NULL
};

static const struct test_case cases[] = {
	{ "both answered", SETTINGS, 0, { OK0, OK1, END }, 0, 0, 0, 0, 2 },
	{ "one lost", SETTINGS, 0, { OK0, END }, 1, 1, 0, 0, 2 },
	{ "a second terminal", SETTINGS, 0, { OK0, OK1,
	    { 0, EV(A0, "33", "settings:completed"), 4000 }, END },
	    1, 0, 1, 1, 2 },
	{ "an event out of the profile's order", SETTINGS, 0, {
	    { 0, EV(A0, "32", "settings:starting"), 2000 },
	    { 0, EV(A0, "33", "settings:completed"), 3000 }, OK1, END },
	    1, 0, 0, 1, 2 },
	{ "the wrong terminal",
	    "{\"send\": {\"action_type\": \"settings\"}, \"expect\": "
	    "\"settings:completed\"}\n", 0, {
	    { 0, EV(A0, "32", "settings:failed"), 3000 }, OK1, END },
	    1, 0, 0, 1, 2 },
	{ "another machine's action", SETTINGS, 0, {
	    { 1, EV(A0, "32", "settings:completed"), 3000 }, OK0,
	    { 1, EV(A1, "33", "settings:completed"), 3000 }, END },
	    1, 0, 0, 1, 2 },
	{ "a secret on the wire", SETTINGS, 0, { OK0,
	    { 1, "{\"id\":32,\"timestamp\":1,\"type\":\"log\",\"version\":1,"
	    "\"log\":\"" TOKEN "\"}\n", 2000 }, OK1, END }, 1, 0, 0, 1, 2 },
	{ "a frame id that does not rise", SETTINGS, 0, {
	    { 0, "{\"id\":40,\"timestamp\":1,\"type\":\"log\",\"version\":1,"
	    "\"log\":\"x\"}\n", 2000 },
	    { 0, EV(A0, "40", "settings:completed"), 3000 }, OK1, END },
	    1, 1, 0, 1, 2 },
	{ "a frame without its newline", SETTINGS, 0, {
	    { 0, "{\"id\":32,\"timestamp\":1,\"type\":\"log\",\"version\":1,"
	    "\"log\":\"x\"}", 2000 }, OK0, OK1, END }, 1, 0, 0, 1, 2 },
	{ "several lines in one frame", SETTINGS, 0, {
	    { 0, "{\"id\":31,\"timestamp\":1,\"type\":\"log\",\"version\":1,"
	    "\"log\":\"x\"}\n" EV(A0, "32", "settings:completed"), 3000 },
	    OK1, END }, 0, 0, 0, 0, 2 },
	{ "p99 past the cap", SETTINGS, 0.5, { OK0, OK1, END },
	    1, 0, 0, 0, 2 },
	{ "p99 within the cap", SETTINGS, 10, { OK0, OK1, END },
	    0, 0, 0, 0, 2 },
};

struct fake {
	int	 sent;
	char	 last[512];
};

static int
fake_send(void *arg, struct sim_machine *m, const char *text, size_t len)
{
	struct fake *f = arg;

	(void)m;
	f->sent++;
	snprintf(f->last, sizeof(f->last), "%.*s", (int)len, text);
	return 0;
}

static char *
fake_url(void *arg, const char *name)
{
	(void)arg;
	return strdup(name);
}

static char *
fake_upload(void *arg, int64_t id)
{
	(void)arg; (void)id;
	return strdup("http://x/upload");
}

static int
fake_uploads(void *arg, int64_t id)
{
	(void)arg; (void)id;
	return 1;
}

static int
fake_signins(void *arg)
{
	(void)arg;
	return 2;
}

static int
summary_int(const char *path, const char *key)
{
	char buf[8192];
	FILE *fp;
	size_t n;
	cJSON *j;
	int v;

	fp = fopen(path, "re");
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	j = cJSON_Parse(buf);
	assert_non_null(j);
	v = cJSON_GetObjectItemCaseSensitive(j, key)->valueint;
	cJSON_Delete(j);
	return v;
}

static void
run_case(const struct test_case *tc, const char *summary,
    const char *const *metrics)
{
	struct sim_load_params p;
	struct sim_load_ops ops;
	struct sim_transcript *tr;
	struct sim_scenario *sc;
	struct sim_fleet *fl;
	struct sim_load *l;
	struct fake fk;
	char err[256];
	size_t i;
	int rc;

	sc = sim_scenario_parse(tc->profile, strlen(tc->profile), "p.jsonl",
	    err, sizeof(err));
	assert_non_null(sc);
	fl = sim_fleet_range("100", 2, "pw", err, sizeof(err));
	assert_non_null(fl);
	tr = sim_transcript_new(NULL, NULL);
	assert_non_null(tr);
	assert_int_equal(sim_transcript_secret(tr, TOKEN), 0);
	memset(&p, 0, sizeof(p));
	p.profile = sc;
	p.rate = 1000;		/* 2 actions: due at 0 and 1 ms */
	p.duration_s = 0.002;
	p.grace_s = 1;
	p.max_p99_ms = tc->max_p99_ms;
	p.summary_json = summary;
	memset(&fk, 0, sizeof(fk));
	memset(&ops, 0, sizeof(ops));
	ops.arg = &fk;
	ops.send = fake_send;
	ops.pulse_url = fake_url;
	ops.upload_url = fake_upload;
	ops.uploads = fake_uploads;
	ops.signins = fake_signins;
	l = sim_load_new(&p, fl, tr, &ops, 0, err, sizeof(err));
	assert_non_null(l);
	sim_load_connected(l, sim_fleet_machine(fl, 0), 0);
	sim_load_connected(l, sim_fleet_machine(fl, 1), 0);
	assert_true(sim_load_tick(l, 0) >= 0);
	assert_true(sim_load_tick(l, 1000) >= 0);
	if (fk.sent != tc->sent)
		fail_msg("%s: %d frames sent, want %d", tc->name, fk.sent,
		    tc->sent);
	assert_non_null(strstr(fk.last, "\"machine_serial\":\"S101\""));
	for (i = 0; tc->rx[i].m != -1; i++)
		sim_load_rx(l, sim_fleet_machine(fl, (size_t)tc->rx[i].m),
		    tc->rx[i].text, strlen(tc->rx[i].text), tc->rx[i].at_us);
	for (i = 0; metrics != NULL && metrics[i] != NULL; i++) {
		char *mt = sim_load_metrics(l);

		assert_non_null(mt);
		if (strstr(mt, metrics[i]) == NULL)
			fail_msg("%s: no \"%s\" in:\n%s", tc->name,
			    metrics[i], mt);
		free(mt);
	}
	sim_load_stop(l, 5000);
	rc = sim_load_finish(l, 5000);
	if (rc != tc->rc || summary_int(summary, "lost") != tc->lost ||
	    summary_int(summary, "duplicated") != tc->dup ||
	    summary_int(summary, "violations") != tc->violations)
		fail_msg("%s: rc %d lost %d dup %d violations %d", tc->name,
		    rc, summary_int(summary, "lost"),
		    summary_int(summary, "duplicated"),
		    summary_int(summary, "violations"));
	sim_load_free(l);
	sim_transcript_free(tr);
	sim_fleet_free(fl);
	sim_scenario_free(sc);
}

static void
test_cases(void **state)
{
	char dir[] = "/tmp/test_sim_loadXXXXXX", path[64];
	size_t i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/summary.json", dir);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i], path, i == 0 ? metrics0 : NULL);
	unlink(path);
	rmdir(dir);
}

/* rate x duration actions are scheduled: 0.29 x 100 is 28.999999999999996
 * in doubles, and its floor lost one. */
struct total_case {
	double		 rate, duration;
	int		 want;
};

static const struct total_case totals[] = {
	{ 0.29, 100, 29 },
	{ 0.57, 100, 57 },
	{ 1000, 0.002, 2 },
	{ 2.5, 3, 7 },
};

static void
test_total_exact(void **state)
{
	static const char text[] = SETTINGS;
	char dir[] = "/tmp/test_sim_loadXXXXXX", path[64], err[256];
	struct sim_load_params p;
	struct sim_load_ops ops;
	struct sim_scenario *sc;
	struct sim_fleet *fl;
	struct sim_load *l;
	struct fake fk;
	size_t i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/summary.json", dir);
	sc = sim_scenario_parse(text, strlen(text), "p.jsonl", err,
	    sizeof(err));
	assert_non_null(sc);
	fl = sim_fleet_range("100", 1, "pw", err, sizeof(err));
	assert_non_null(fl);
	for (i = 0; i < sizeof(totals) / sizeof(totals[0]); i++) {
		memset(&p, 0, sizeof(p));
		memset(&ops, 0, sizeof(ops));
		memset(&fk, 0, sizeof(fk));
		p.profile = sc;
		p.rate = totals[i].rate;
		p.duration_s = totals[i].duration;
		p.summary_json = path;
		ops.arg = &fk;
		ops.signins = fake_signins;
		l = sim_load_new(&p, fl, NULL, &ops, 0, err, sizeof(err));
		assert_non_null(l);
		sim_load_stop(l, 0);
		(void)sim_load_finish(l, 0);
		if (summary_int(path, "actions_scheduled") != totals[i].want)
			fail_msg("%g/s for %g s: %d scheduled, want %d",
			    totals[i].rate, totals[i].duration,
			    summary_int(path, "actions_scheduled"),
			    totals[i].want);
		sim_load_free(l);
	}
	sim_fleet_free(fl);
	sim_scenario_free(sc);
	unlink(path);
	rmdir(dir);
}

/* A profile line that is not one action is refused by its number. */
static void
test_bad_profile(void **state)
{
	static const char text[] = SETTINGS "{\"drop\": true}\n";
	struct sim_load_params p;
	struct sim_load_ops ops;
	struct sim_scenario *sc;
	struct sim_fleet *fl;
	char err[256];

	(void)state;
	sc = sim_scenario_parse(text, strlen(text), "p.jsonl", err,
	    sizeof(err));
	assert_non_null(sc);
	fl = sim_fleet_range("100", 1, "pw", err, sizeof(err));
	memset(&p, 0, sizeof(p));
	memset(&ops, 0, sizeof(ops));
	p.profile = sc;
	assert_null(sim_load_new(&p, fl, NULL, &ops, 0, err, sizeof(err)));
	assert_string_equal(err, "load profile line 2: only \"send\" lines "
	    "of one action belong in a profile");
	sim_fleet_free(fl);
	sim_scenario_free(sc);
}

/* The most sign-ins in any sliding window: windows start anywhere, are
 * half-open, and are not cut at whole seconds. */
struct window_case {
	const char	*name;
	int64_t		 t[8];		/* us, sorted */
	size_t		 n;
	int64_t		 win_us;
	size_t		 want;
};

static const struct window_case window_cases[] = {
	{ "none", { 0 }, 0, 1000000, 0 },
	{ "one", { 5 }, 1, 1000000, 1 },
	{ "straddles a whole second", { 900000, 950000, 1050000, 1100000 },
	    4, 1000000, 4 },
	{ "the end is outside", { 0, 1000000 }, 2, 1000000, 1 },
	{ "just inside", { 0, 999999 }, 2, 1000000, 2 },
	{ "the densest run is late", { 0, 2000000, 2100000, 2200000,
	    2900000, 3050000 }, 6, 1000000, 4 },
	{ "ties", { 7, 7, 7, 1000007, 1000007 }, 5, 1000000, 3 },
};

static void
test_window_max(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(window_cases) / sizeof(window_cases[0]); i++) {
		print_message("window: %s\n", window_cases[i].name);
		assert_int_equal(sim_load_window_max(window_cases[i].t,
		    window_cases[i].n, window_cases[i].win_us),
		    window_cases[i].want);
	}
}

/*
 * Where each machine starts in the profile: staggered (machine i at step
 * i mod steps), so the mix is steady at any moment, or all at the first
 * step with --lockstep.
 */
struct first_fake {
	char	 type[4][32];	/* each machine's first action_type */
};

static int
first_send(void *arg, struct sim_machine *m, const char *text, size_t len)
{
	struct first_fake *f = arg;
	cJSON *j = cJSON_ParseWithLength(text, len);
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "action_type");

	assert_true(cJSON_IsString(t) && m->idx < 4);
	if (f->type[m->idx][0] == '\0')
		snprintf(f->type[m->idx], sizeof(f->type[0]), "%s",
		    t->valuestring);
	cJSON_Delete(j);
	return 0;
}

static void
test_stagger(void **state)
{
	static const char profile[] = SETTINGS
	    "{\"send\": {\"action_type\": \"update_check\"}}\n";
	static const struct {
		int		 lockstep;
		const char	*want[3];
	} tcs[] = {
		{ 0, { "settings", "update_check", "settings" } },
		{ 1, { "settings", "settings", "settings" } },
	};
	struct sim_load_params p;
	struct sim_load_ops ops;
	struct sim_scenario *sc;
	struct sim_fleet *fl;
	struct sim_load *l;
	struct first_fake fk;
	char err[256];
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++) {
		sc = sim_scenario_parse(profile, strlen(profile), "p.jsonl",
		    err, sizeof(err));
		assert_non_null(sc);
		fl = sim_fleet_range("100", 3, "pw", err, sizeof(err));
		assert_non_null(fl);
		memset(&p, 0, sizeof(p));
		p.profile = sc;
		p.rate = 1000;
		p.duration_s = 0.003;
		p.grace_s = 1;
		p.lockstep = tcs[i].lockstep;
		memset(&fk, 0, sizeof(fk));
		memset(&ops, 0, sizeof(ops));
		ops.arg = &fk;
		ops.send = first_send;
		ops.pulse_url = fake_url;
		ops.upload_url = fake_upload;
		ops.uploads = fake_uploads;
		ops.signins = fake_signins;
		l = sim_load_new(&p, fl, NULL, &ops, 0, err, sizeof(err));
		assert_non_null(l);
		for (k = 0; k < 3; k++)
			sim_load_connected(l, sim_fleet_machine(fl, k), 0);
		/* Due at 0, 1 and 2 ms from the schedule's start. */
		for (k = 0; k < 3; k++)
			assert_true(sim_load_tick(l, 5000 +
			    1000 * (int64_t)k) >= 0);
		for (k = 0; k < 3; k++)
			if (strcmp(fk.type[k], tcs[i].want[k]) != 0)
				fail_msg("lockstep %d: machine %zu began with "
				    "%s, want %s", tcs[i].lockstep, k,
				    fk.type[k], tcs[i].want[k]);
		sim_load_stop(l, 5000);
		sim_load_free(l);
		sim_fleet_free(fl);
		sim_scenario_free(sc);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_bad_profile),
		cmocka_unit_test(test_total_exact),
		cmocka_unit_test(test_window_max),
		cmocka_unit_test(test_stagger),
	};

	log_init(LOG_TO_CONSOLE, LOG_CRIT, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
