/*
 * test_metrics: the Prometheus text of metrics.c and the action history
 * that feeds it (history.c), table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "history.h"
#include "metrics.h"

/* 1 when text has line as a whole line. */
static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p;

	for (p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

static char *
text_now(void)
{
	char *t = metrics_text(NULL);

	assert_non_null(t);
	return t;
}

/* ---- counters: one name each, added to ---- */

struct counter_case {
	enum metrics_counter	 c;
	uint64_t		 add;
	int			 times;
	const char		*line;
};

static void
test_counters(void **state)
{
	static const struct counter_case tcs[] = {
		{ METRICS_SIGN_INS, 1, 3, "gfe_sign_ins_total 3" },
		{ METRICS_SIGN_IN_FAILURES, 1, 1,
		    "gfe_sign_in_failures_total 1" },
		{ METRICS_RECONNECTS, 1, 2, "gfe_reconnects_total 2" },
		{ METRICS_BYTES_DOWN, 1500, 2,
		    "gfe_download_bytes_total 3000" },
		{ METRICS_BYTES_UP, 7, 1, "gfe_upload_bytes_total 7" },
		{ METRICS_JOBS_KEPT, 1, 4, "gfe_jobs_kept_total 4" },
		{ METRICS_JOBS_REFUSED, 1, 1, "gfe_jobs_refused_total 1" },
		{ METRICS_DISK_ERRORS, 1, 5, "gfe_disk_errors_total 5" },
		{ METRICS_FF_CONNECTIONS, 1, 2,
		    "gfe_flashforge_connections_total 2" },
		{ METRICS_FF_COMMANDS, 1, 9,
		    "gfe_flashforge_commands_total 9" },
		{ METRICS_FF_HTTP_REQUESTS, 1, 1,
		    "gfe_flashforge_http_requests_total 1" },
		/* Out of range: nothing counted, nothing printed. */
		{ METRICS_COUNTERS, 1, 1, NULL },
	};
	size_t i;
	char *t;
	int k;

	(void)state;
	metrics_reset();
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++)
		for (k = 0; k < tcs[i].times; k++)
			metrics_add(tcs[i].c, tcs[i].add);
	t = text_now();
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++) {
		if (tcs[i].line == NULL)
			continue;
		if (!has_line(t, tcs[i].line))
			fail_msg("case %zu: no line \"%s\" in\n%s", i,
			    tcs[i].line, t);
	}
	assert_true(has_line(t, "# TYPE gfe_sign_ins_total counter"));
	free(t);
}

/* ---- actions by type and result, and the histograms ---- */

struct action_case {
	const char	*type, *result;
	int64_t		 first_ms, end_ms;
};

static void
test_actions(void **state)
{
	static const struct action_case in[] = {
		{ "print", "completed", 3, 40 },
		{ "print", "completed", 4, 2000 },
		{ "motion", "failed", -1, 7 },	/* the terminal was first */
		{ "hunt", "cancelled", 20, 400000 },
		{ "BAD TYPE\"", "completed", 1, 1 },	/* "other" */
		{ "print", "exploded", 1, 1 },	/* no such result: ignored */
	};
	static const char *const want[] = {
		"gfe_actions_total{type=\"print\",result=\"completed\"} 2",
		"gfe_actions_total{type=\"print\",result=\"failed\"} 0",
		"gfe_actions_total{type=\"motion\",result=\"failed\"} 1",
		"gfe_actions_total{type=\"hunt\",result=\"cancelled\"} 1",
		"gfe_actions_total{type=\"other\",result=\"completed\"} 1",
		/* first: 3, 4, 7, 20, 1 ms */
		"gfe_action_first_event_seconds_bucket{le=\"0.005\"} 3",
		"gfe_action_first_event_seconds_bucket{le=\"0.01\"} 4",
		"gfe_action_first_event_seconds_bucket{le=\"0.025\"} 5",
		"gfe_action_first_event_seconds_bucket{le=\"+Inf\"} 5",
		"gfe_action_first_event_seconds_count 5",
		"gfe_action_first_event_seconds_sum 0.035",
		/* end: 40, 2000, 7, 400000, 1 ms */
		"gfe_action_duration_seconds_bucket{le=\"0.005\"} 1",
		"gfe_action_duration_seconds_bucket{le=\"0.05\"} 3",
		"gfe_action_duration_seconds_bucket{le=\"2.5\"} 4",
		"gfe_action_duration_seconds_bucket{le=\"300\"} 4",
		"gfe_action_duration_seconds_bucket{le=\"+Inf\"} 5",
		"gfe_action_duration_seconds_sum 402.048",
		"# TYPE gfe_action_duration_seconds histogram",
	};
	size_t i;
	char *t;

	(void)state;
	metrics_reset();
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		metrics_action_end(in[i].type, in[i].result, in[i].first_ms,
		    in[i].end_ms);
	t = text_now();
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!has_line(t, want[i]))
			fail_msg("no line \"%s\" in\n%s", want[i], t);
	assert_null(strstr(t, "BAD TYPE"));
	assert_null(strstr(t, "exploded"));
	assert_int_equal(metrics_actions("print", "completed"), 2);
	free(t);
}

/* Past METRICS_TYPES_MAX names, the rest count as "other". */
static void
test_types_bounded(void **state)
{
	char type[16], *t;
	int i;

	(void)state;
	metrics_reset();
	for (i = 0; i < METRICS_TYPES_MAX + 5; i++) {
		snprintf(type, sizeof(type), "t%d", i);
		metrics_action_end(type, "completed", 1, 1);
	}
	assert_int_equal(metrics_actions("other", "completed"), 5);
	t = text_now();
	assert_true(has_line(t,
	    "gfe_actions_total{type=\"t0\",result=\"completed\"} 1"));
	assert_null(strstr(t, "type=\"t36\""));
	free(t);
}

static void
test_machines(void **state)
{
	static const struct {
		int		 from, to;
	} moves[] = {
		{ -1, METRICS_SIGNING_IN }, { -1, METRICS_SIGNING_IN },
		{ METRICS_SIGNING_IN, METRICS_ONLINE },
		{ -1, METRICS_OFFLINE }, { METRICS_OFFLINE, -1 },
		{ 7, 99 },	/* out of range: nothing */
	};
	size_t i;
	char *t;

	(void)state;
	metrics_reset();
	for (i = 0; i < sizeof(moves) / sizeof(moves[0]); i++)
		metrics_machine_move(moves[i].from, moves[i].to);
	t = text_now();
	assert_true(has_line(t, "gfe_machines{state=\"signing_in\"} 1"));
	assert_true(has_line(t, "gfe_machines{state=\"online\"} 1"));
	assert_true(has_line(t, "gfe_machines{state=\"offline\"} 0"));
	free(t);
}

/* ---- history: what the dispatcher's calls make of an action ---- */

struct hist_step {
	char		 op;	/* r received, s started, e event */
	int64_t		 id;
	const char	*arg;
	const char	*machine;	/* NULL: a single machine */
};

static void
hist_play(const struct hist_step *steps, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		switch (steps[i].op) {
		case 'r':
			history_received(steps[i].id, steps[i].arg,
			    steps[i].machine);
			break;
		case 's':
			history_started(steps[i].id, steps[i].machine);
			break;
		default:
			history_event(steps[i].id, steps[i].arg,
			    steps[i].machine);
		}
	}
}

static void
test_history(void **state)
{
	static const struct hist_step steps[] = {
		{ 'r', 1, "print", NULL }, { 's', 1, NULL, NULL },
		{ 'e', 1, "print:starting", NULL },
		{ 'r', 1, "print", NULL },		/* a repeat: ignored */
		{ 'e', 99, "print:running", NULL },	/* unknown id: ignored */
		{ 'r', 2, "motion", NULL },
		{ 'e', 1, "print:completed", NULL },
		/* after the end: ignored */
		{ 'e', 1, "print:completed", NULL },
		{ 'e', 2, "motion:failed", NULL },
		/* still running */
		{ 'r', 3, "hunt", NULL }, { 's', 3, NULL, NULL },
	};
	cJSON *arr, *a, *ev, *run;

	(void)state;
	metrics_reset();
	history_reset();
	hist_play(steps, sizeof(steps) / sizeof(steps[0]));
	assert_int_equal(metrics_actions("print", "completed"), 1);
	assert_int_equal(metrics_actions("motion", "failed"), 1);
	assert_int_equal(metrics_actions("hunt", "completed"), 0);
	arr = history_json(0);
	assert_int_equal(cJSON_GetArraySize(arr), 3);
	a = cJSON_GetArrayItem(arr, 0);
	assert_string_equal(cJSON_GetObjectItem(a, "type")->valuestring,
	    "print");
	assert_string_equal(cJSON_GetObjectItem(a, "result")->valuestring,
	    "completed");
	ev = cJSON_GetObjectItem(a, "events");
	assert_int_equal(cJSON_GetArraySize(ev), 2);
	a = cJSON_GetArrayItem(arr, 2);
	assert_string_equal(cJSON_GetObjectItem(a, "state")->valuestring,
	    "running");
	/* Only what changed after the last seq seen. */
	cJSON_Delete(history_json((uint64_t)cJSON_GetObjectItem(a,
	    "seq")->valuedouble));
	run = history_running_json();
	assert_int_equal(cJSON_GetArraySize(run), 1);
	cJSON_Delete(run);
	cJSON_Delete(arr);
}

/* A busy refusal ends an action that never started, and only such. */
static void
test_history_refused(void **state)
{
	static const struct {
		int64_t		 id;
		const char	*state;		/* after the refusals */
		const char	*why;		/* "refused", or NULL */
	} tcs[] = {
		{ 1, "running", NULL },		/* the busy job: untouched */
		{ 2, "refused", "busy: motion 2 not started" },
		{ 3, "ended", NULL },		/* ended first: untouched */
	};
	cJSON *arr, *a, *why;
	size_t i;
	(void)state;
	metrics_reset();
	history_reset();
	history_received(1, "print", NULL);
	history_started(1, NULL);
	history_received(2, "motion", NULL);
	history_received(3, "settings", NULL);
	history_event(3, "settings:completed", NULL);
	history_refused(1, "busy: print 1", NULL);
	history_refused(2, "busy: motion 2 not started", NULL);
	history_refused(2, "again", NULL);		/* once refused, it stays */
	history_refused(3, "busy: settings 3", NULL);
	history_refused(99, "unknown id", NULL);
	arr = history_json(0);
	assert_int_equal(cJSON_GetArraySize(arr), 3);
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++) {
		a = cJSON_GetArrayItem(arr, (int)i);
		assert_int_equal(cJSON_GetObjectItem(a, "id")->valueint,
		    tcs[i].id);
		assert_string_equal(cJSON_GetObjectItem(a,
		    "state")->valuestring, tcs[i].state);
		why = cJSON_GetObjectItem(a, "refused");
		if (tcs[i].why == NULL)
			assert_null(why);
		else
			assert_string_equal(why->valuestring, tcs[i].why);
	}
	/* Not an action's end in /metrics: no event was sent for it. */
	assert_int_equal(metrics_actions("motion", "failed"), 0);
	cJSON_Delete(arr);
	/* Sent again ("ready" once more) after the refusal: a new try. */
	history_received(2, "motion", NULL);
	arr = history_json(0);
	a = cJSON_GetArrayItem(arr, 1);		/* its slot in the ring */
	assert_int_equal(cJSON_GetObjectItem(a, "id")->valueint, 2);
	assert_string_equal(cJSON_GetObjectItem(a, "state")->valuestring,
	    "received");
	assert_null(cJSON_GetObjectItem(a, "refused"));
	cJSON_Delete(arr);
}

/* A fleet: two machines both run an action 7; each event ends its own
 * machine's, and the JSON names the machine (a single one's has none). */
static void
test_history_fleet(void **state)
{
	static const struct hist_step steps[] = {
		{ 'r', 7, "print", "m0" }, { 'r', 7, "settings", "m1" },
		{ 'r', 8, "hunt", NULL },
		{ 's', 7, NULL, "m0" },
		{ 'e', 7, "settings:completed", "m1" },
		{ 'e', 7, "print:completed", "m2" },	/* no such: ignored */
		{ 'e', 7, "print:running", "m0" },
	};
	cJSON *arr, *a, *run;

	(void)state;
	metrics_reset();
	history_reset();
	hist_play(steps, sizeof(steps) / sizeof(steps[0]));
	assert_int_equal(metrics_actions("settings", "completed"), 1);
	assert_int_equal(metrics_actions("print", "completed"), 0);
	arr = history_json(0);
	assert_int_equal(cJSON_GetArraySize(arr), 3);
	a = cJSON_GetArrayItem(arr, 0);
	assert_string_equal(cJSON_GetObjectItem(a, "machine")->valuestring,
	    "m0");
	assert_string_equal(cJSON_GetObjectItem(a, "state")->valuestring,
	    "running");
	a = cJSON_GetArrayItem(arr, 1);
	assert_string_equal(cJSON_GetObjectItem(a, "machine")->valuestring,
	    "m1");
	assert_string_equal(cJSON_GetObjectItem(a, "result")->valuestring,
	    "completed");
	assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 2),
	    "machine"));
	run = history_running_json();
	assert_int_equal(cJSON_GetArraySize(run), 1);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(run, 0),
	    "machine")->valuestring, "m0");
	cJSON_Delete(run);
	cJSON_Delete(arr);
	history_reset();
	metrics_reset();
}

/* The ring keeps HISTORY_MAX; the newest survive. */
static void
test_history_ring(void **state)
{
	cJSON *arr, *a;
	int64_t id;

	(void)state;
	history_reset();
	for (id = 1; id <= HISTORY_MAX + 30; id++)
		history_received(id, "settings", NULL);
	arr = history_json(0);
	assert_int_equal(cJSON_GetArraySize(arr), HISTORY_MAX);
	a = cJSON_GetArrayItem(arr, 0);
	assert_int_equal((int64_t)cJSON_GetObjectItem(a, "id")->valuedouble,
	    31);
	cJSON_Delete(arr);
}

/* An action pushed out of the ring while it runs (more than HISTORY_MAX
 * received meanwhile: a fleet) still counts when it ends: the metrics
 * are not the page's ring. */
static void
test_history_evicted_counts(void **state)
{
	char *t;
	int64_t id;

	(void)state;
	metrics_reset();
	history_reset();
	history_received(1, "motion", NULL);
	history_started(1, NULL);
	history_event(1, "motion:running", NULL);
	for (id = 2; id <= HISTORY_MAX + 1; id++)
		history_received(id, "settings", NULL);
	history_event(1, "motion:completed", NULL);
	history_event(1, "motion:completed", NULL);	/* once only */
	assert_int_equal(metrics_actions("motion", "completed"), 1);
	t = text_now();
	assert_true(has_line(t, "gfe_action_duration_seconds_count 1"));
	assert_true(has_line(t, "gfe_action_first_event_seconds_count 1"));
	assert_true(has_line(t, "gfe_actions_running 0"));
	free(t);
	history_reset();
	metrics_reset();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_types_bounded),
		cmocka_unit_test(test_machines),
		cmocka_unit_test(test_history),
		cmocka_unit_test(test_history_fleet),
		cmocka_unit_test(test_history_ring),
		cmocka_unit_test(test_history_refused),
		cmocka_unit_test(test_history_evicted_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
