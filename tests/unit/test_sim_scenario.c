/*
 * Unit tests for the scenario parser (sim_scenario.c: each error names its
 * line), the player (sim_player.c) driven through fake operations (what it
 * sends, when it waits, what fails it) and the transcript (sim_transcript.c:
 * redaction, secrets file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "log.h"
#include "sim_player.h"
#include "sim_scenario.h"
#include "sim_transcript.h"

/* --- parsing --- */

static struct sim_scenario *
parse(const char *text, char *err, size_t errlen)
{
	err[0] = '\0';
	return sim_scenario_parse(text, strlen(text), "t.jsonl", err, errlen);
}

static void
test_parse_ok(void **state)
{
	const char *text =
	    "# a comment\n"
	    "\n"
	    "   \t\n"
	    "{\"comment\": \"only a comment\"}\n"
	    "{\"config\": {\"EMULATOR\": {\"button_press_delay\": 30}}}\n"
	    "{\"send\": {\"action_type\": \"print\", \"motion_file\": "
	    "\"job.puls.gz\"}, \"label\": \"p1\", \"expect\": "
	    "\"print:completed\","
	    " \"events\": [\"print:starting\", \"print:completed\"], "
	    "\"timeout\": 2.5}\r\n"
	    "{\"await\": \"print:download:completed\", \"label\": \"p1\"}\n"
	    "{\"cancel\": \"p1\", \"expect\": \"print:cancelled\"}\n"
	    "{\"raw\": \"garbage\"}\n"
	    "{\"expect_none\": \"p1\"}\n"
	    "{\"drop\": true, \"timeout\": 5}\n"
	    "{\"expire_token\": true}\n"
	    "{\"fail_upload\": 2, \"comment\": \"two\"}\n"
	    "{\"fail_pulse\": 1}\n"
	    "{\"fail_signin\": 3}\n"
	    "{\"send\": [{\"action_type\": \"settings\"}, {\"action_type\": "
	    "\"hunt\"}], \"label\": [\"a\", \"b\"]}\n"
	    "{\"config\": {\"EMULATOR\": {\"button_press_delay\": 0.5, "
	    "\"bypass_homing\": false}, \"LOGGING\": {\"level\": \"DEBUG\"}}}";
	struct sim_scenario *sc;
	char err[256], *buf = NULL;
	size_t len = 0;
	FILE *fp;

	(void)state;
	sc = parse(text, err, sizeof(err));
	assert_non_null(sc);
	assert_string_equal(err, "");
	assert_int_equal(sim_scenario_steps(sc), 11);

	/* Later config lines override earlier ones, key by key. */
	fp = open_memstream(&buf, &len);
	assert_non_null(fp);
	assert_int_equal(sim_scenario_print_config(sc, fp), 0);
	fclose(fp);
	assert_string_equal(buf, "[EMULATOR]\nbutton_press_delay: 0.5\n"
	    "bypass_homing: False\n[LOGGING]\nlevel: DEBUG\n");
	free(buf);
	sim_scenario_free(sc);
}

static void
test_parse_errors(void **state)
{
	static const struct {
		const char	*text;
		const char	*err;
	} cases[] = {
		{ "{\"sned\": {}}", "t.jsonl:1: unknown verb \"sned\"" },
		{ "\n{\"send\": {\"action_type\": \"a\"}, \"raw\": \"x\"}",
		    "t.jsonl:2: two verbs" },
		{ "{\"raw\": \"x\", \"label\": \"l\"}",
		    "t.jsonl:1: \"label\" is not allowed with \"raw\"" },
		{ "{\"send\": {\"action_type\": \"a\"}, \"expect\": \"a:x\", "
		    "\"expect\": \"a:y\"}",
		    "t.jsonl:1: \"expect\" given twice" },
		{ "{\"send\": {\"action_type\": \"a\"}, \"label\": \"a b\"}",
		    "t.jsonl:1: bad label" },
		{ "{\"send\": {\"action_type\": \"a\"}, \"label\": \"x\"}\n"
		    "{\"send\": {\"action_type\": \"a\"}, \"label\": \"x\"}",
		    "t.jsonl:2: label \"x\" used twice" },
		{ "{\"await\": \"a:b\", \"label\": \"nope\"}",
		    "t.jsonl:1: \"label\": no earlier send is labelled "
		    "\"nope\"" },
		{ "{\"cancel\": \"nope\"}",
		    "t.jsonl:1: \"cancel\": no earlier" },
		{ "{\"expect_none\": \"nope\"}", "t.jsonl:1: \"expect_none\"" },
		{ "{\"send\": {\"id\": 3}}", "t.jsonl:1: the action needs an "
		    "\"action_type\"" },
		{ "{\"send\": {\"action_type\": \"a\", \"id\": 1.5}}",
		    "t.jsonl:1: \"id\" must be a positive integer" },
		{ "{\"send\": {\"action_type\": \"a\", \"motion_file\": "
		    "\"../x\"}}",
		    "t.jsonl:1: \"motion_file\" must be a plain" },
		{ "{\"send\": {\"action_type\": \"a\", \"motion_file\": \"x\", "
		    "\"motion_url\": \"y\"}}",
		    "t.jsonl:1: \"motion_file\" and" },
		{ "{\"send\": {\"action_type\": \"a\", \"endpoint\": 1}}",
		    "t.jsonl:1: \"endpoint\" must be true" },
		{ "{\"send\": {\"action_type\": \"a\"}, \"timeout\": 0}",
		    "t.jsonl:1: \"timeout\" must be seconds" },
		{ "{\"send\": {\"action_type\": \"a\"}, \"timeout\": \"1\"}",
		    "t.jsonl:1: \"timeout\" must be seconds" },
		{ "{\"send\": {\"action_type\": \"a\"}, \"events\": []}",
		    "t.jsonl:1: \"events\" must be a non-empty array" },
		{ "{\"send\": {\"action_type\": \"a\"}, \"events\": [1]}",
		    "t.jsonl:1: \"events\" must hold names" },
		{ "{\"send\": {\"action_type\": \"a\"}, \"expect\": \"a b\"}",
		    "t.jsonl:1: \"expect\" must be an event name" },
		{ "{\"send\": [{\"action_type\": \"a\"}], \"expect\": \"a:b\"}",
		    "t.jsonl:1: \"expect\"/\"events\" need a single action" },
		{ "{\"send\": [{\"action_type\": \"a\"}], \"label\": \"x\"}",
		    "t.jsonl:1: \"label\" must be an array" },
		{ "{\"send\": []}", "t.jsonl:1: \"send\" array" },
		{ "{\"send\": 3}", "t.jsonl:1: \"send\" must be an action" },
		{ "{\"fail_upload\": 0}", "t.jsonl:1: \"fail_upload\" must be "
		    "a count" },
		{ "{\"fail_signin\": 2.5}", "t.jsonl:1: \"fail_signin\"" },
		{ "{\"drop\": false}", "t.jsonl:1: \"drop\" must be true" },
		{ "{\"expire_token\": 1}", "t.jsonl:1: \"expire_token\" must" },
		{ "{\"raw\": 5}", "t.jsonl:1: \"raw\" must be a string" },
		{ "{\"await\": \"x\"} trailing",
		    "t.jsonl:1: not a JSON object" },
		{ "{\"await\": \"x\"", "t.jsonl:1: not a JSON object" },
		{ "[1]", "t.jsonl:1: a line must be a JSON object" },
		{ "{\"config\": {\"EMULATOR\": 3}}",
		    "t.jsonl:1: config section" },
		{ "{\"config\": {\"E\": {\"k\": \"a\\nb\"}}}",
		    "t.jsonl:1: config E.k" },
		{ "{\"config\": {\"E\": {\"k\": 1}}}",
		    "t.jsonl: no line to play" },
		{ "# nothing\n", "t.jsonl: no line to play" },
		{ "{\"send_big\": 15}", "t.jsonl:1: \"send_big\" must be "
		    "bytes" },
		{ "{\"send_big\": 67108865}", "t.jsonl:1: \"send_big\"" },
		{ "{\"send_big\": 100, \"timeout\": 1}",
		    "t.jsonl:1: \"timeout\" is not allowed with \"send_big\"" },
		{ "{\"expect_close\": 999}", "t.jsonl:1: \"expect_close\" must "
		    "be a close code" },
		{ "{\"expect_close\": \"1009\"}",
		    "t.jsonl:1: \"expect_close\"" },
		{ "{\"await_signin\": 403}", "t.jsonl:1: \"await_signin\" must "
		    "be 200, 401 or 503" },
		{ "{\"await_file\": \"../x\"}", "t.jsonl:1: \"await_file\" "
		    "must be a file name" },
		{ "{\"await_file\": \"..\"}", "t.jsonl:1: \"await_file\"" },
		{ "{\"await_file\": 1}", "t.jsonl:1: \"await_file\"" },
		{ "{\"await_file\": \"x\", \"label\": \"a\"}",
		    "t.jsonl:1: \"label\" is not allowed with \"await_file\"" },
		{ "{\"refuse_signin\": 0}", "t.jsonl:1: \"refuse_signin\" must "
		    "be a count" },
		{ "{\"drop\": true, \"reconnect\": 0}",
		    "t.jsonl:1: \"reconnect\" must be true or false" },
		{ "{\"drop\": true, \"reconnect\": false, \"timeout\": 3}",
		    "t.jsonl:1: \"timeout\" needs a reconnect" },
		{ "{\"harness\": \"--x\"}\n{\"raw\": \"x\"}",
		    "t.jsonl:1: \"harness\" must be an array" },
		{ "{\"harness\": []}", "t.jsonl:1: \"harness\" must be an "
		    "array" },
		{ "{\"harness\": [\"a\\nb\"]}", "t.jsonl:1: \"harness\" must "
		    "hold one-line strings" },
		{ "{\"harness\": [\"--x\"]}", "t.jsonl: no line to play" },
	};
	struct sim_scenario *sc;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sc = parse(cases[i].text, err, sizeof(err));
		if (sc != NULL || strncmp(err, cases[i].err,
		    strlen(cases[i].err)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err,
			    cases[i].err);
	}
	/* A NUL byte inside the file. */
	sc = sim_scenario_parse("{\"raw\": \"a\"}\0", 13, "t.jsonl", err,
	    sizeof(err));
	assert_null(sc);
	assert_string_equal(err, "t.jsonl: holds a NUL byte");
}

static void
test_load(void **state)
{
	char path[] = "/tmp/test_sim_scenario.XXXXXX", err[256];
	struct sim_scenario *sc;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"raw\": \"x\"}\n", 13), 13);
	close(fd);
	sc = sim_scenario_load(path, err, sizeof(err));
	assert_non_null(sc);
	sim_scenario_free(sc);
	unlink(path);
	assert_null(sim_scenario_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "No such file"));
}

/* --- the player, through fake operations --- */

struct fake {
	char	*sent[32];
	int	 nsent;
	int	 drops;
	int	 knobs[8];
	int	 uploads;
	int	 signins[3];	/* answered 200, 401, 503 */
	char	 file[32];	/* the one file the harness made, or "" */
};

static int
fake_send(void *arg, const char *text, size_t len)
{
	struct fake *f = arg;

	assert_true(f->nsent < 32);
	f->sent[f->nsent] = strndup(text, len);
	assert_non_null(f->sent[f->nsent]);
	f->nsent++;
	return 0;
}

static void
fake_drop(void *arg)
{
	((struct fake *)arg)->drops++;
}

static void
fake_knob(void *arg, enum sim_knob knob, int n)
{
	((struct fake *)arg)->knobs[knob] += n;
}

static char *
fake_pulse_url(void *arg, const char *name)
{
	char *s;

	(void)arg;
	assert_true(asprintf(&s, "http://sim/pulse/%s", name) > 0);
	return s;
}

static char *
fake_upload_url(void *arg, int64_t id)
{
	char *s;

	(void)arg;
	assert_true(asprintf(&s, "http://sim/upload/%lld?sig=s",
	    (long long)id) > 0);
	return s;
}

static int
fake_uploads(void *arg, int64_t id)
{
	(void)id;
	return ((struct fake *)arg)->uploads;
}

static int
fake_signins(void *arg, int status)
{
	struct fake *f = arg;

	return status == 200 ? f->signins[0] : status == 401 ?
	    f->signins[1] : status == 503 ? f->signins[2] : 0;
}

static int
fake_file_exists(void *arg, const char *name)
{
	return strcmp(((struct fake *)arg)->file, name) == 0;
}

struct rig {
	struct fake		 f;
	struct sim_scenario	*sc;
	struct sim_player	*p;
	struct sim_transcript	*tr;
	long			 next_frame_id;
};

static void
rig_start(struct rig *r, const char *text)
{
	struct sim_player_ops ops = {
		.send = fake_send, .drop = fake_drop, .knob = fake_knob,
		.pulse_url = fake_pulse_url, .upload_url = fake_upload_url,
		.uploads = fake_uploads, .signins = fake_signins,
		.file_exists = fake_file_exists,
	};
	char err[256];

	memset(r, 0, sizeof(*r));
	r->next_frame_id = 32;
	r->sc = parse(text, err, sizeof(err));
	if (r->sc == NULL)
		fail_msg("%s", err);
	r->tr = sim_transcript_new(NULL, NULL);
	assert_non_null(r->tr);
	ops.arg = &r->f;
	r->p = sim_player_new(r->sc, &ops, r->tr, "12345678");
	assert_non_null(r->p);
}

static void
rig_end(struct rig *r)
{
	int i;

	for (i = 0; i < r->f.nsent; i++)
		free(r->f.sent[i]);
	sim_player_free(r->p);
	sim_transcript_free(r->tr);
	sim_scenario_free(r->sc);
}

/* An event frame from the machine, well formed. */
static void
rig_event(struct rig *r, long action_id, const char *event, int64_t now)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "{\"id\":%ld,\"timestamp\":%ld,\"type\":"
	    "\"event\",\"version\":1,\"action_id\":%ld,\"level\":\"INFO\","
	    "\"event\":\"%s\"}\n", r->next_frame_id, 3800 + r->next_frame_id,
	    action_id, event);
	r->next_frame_id++;
	sim_player_rx(r->p, buf, strlen(buf), now);
}

static void
rig_raw(struct rig *r, const char *msg, int64_t now)
{
	sim_player_rx(r->p, msg, strlen(msg), now);
}

static void
assert_failed_with(struct rig *r, const char *part)
{
	assert_int_equal(sim_player_result(r->p), SIM_FAILED);
	if (strstr(sim_player_reason(r->p), part) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"",
		    sim_player_reason(r->p), part);
}

static void
test_send_fills_in(void **state)
{
	struct rig r;
	cJSON *a;

	(void)state;
	rig_start(&r, "{\"send\": {\"action_type\": \"motion\", "
	    "\"motion_file\":"
	    " \"job.puls.gz\", \"extra\": [1]}, \"label\": \"m\"}\n"
	    "{\"send\": {\"action_type\": \"lid_image\", \"endpoint\": true, "
	    "\"status\": \"new\", \"machine_serial\": \"S1\"}}\n"
	    "{\"send\": {\"action_type\": \"settings\", \"id\": 3116302}}\n"
	    "{\"cancel\": \"m\"}");
	/* Nothing before the machine connects. */
	sim_player_tick(r.p, 0);
	assert_int_equal(r.f.nsent, 0);
	assert_int_equal(sim_player_result(r.p), SIM_RUNNING);
	sim_player_connected(r.p, 0);
	assert_int_equal(r.f.nsent, 4);
	assert_string_equal(r.f.sent[0], "{\"id\":3116300,\"action_type\":"
	    "\"motion\",\"motion_url\":\"http://sim/pulse/job.puls.gz\","
	    "\"extra\":[1],\"machine_serial\":\"S12345678\",\"status\":"
	    "\"ready\"}");
	assert_string_equal(r.f.sent[1], "{\"id\":3116301,\"action_type\":"
	    "\"lid_image\",\"endpoint\":\"http://sim/upload/3116301?sig=s\","
	    "\"status\":\"new\",\"machine_serial\":\"S1\"}");
	a = cJSON_Parse(r.f.sent[2]);
	assert_int_equal(cJSON_GetObjectItem(a, "id")->valueint, 3116302);
	cJSON_Delete(a);
	/* The cancel is the action as sent, with another status. */
	assert_string_equal(r.f.sent[3], "{\"id\":3116300,\"action_type\":"
	    "\"motion\",\"motion_url\":\"http://sim/pulse/job.puls.gz\","
	    "\"extra\":[1],\"machine_serial\":\"S12345678\",\"status\":"
	    "\"cancelled\"}");
	assert_int_equal(sim_player_result(r.p), SIM_PASSED);
	rig_end(&r);
}

static void
test_auto_ids_skip_explicit(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, "{\"send\": {\"action_type\": \"a\", \"id\": 3116300}}\n"
	    "{\"send\": {\"action_type\": \"a\"}}\n"
	    "{\"send\": {\"action_type\": \"a\", \"id\": 3116301}}");
	sim_player_connected(r.p, 0);
	assert_int_equal(r.f.nsent, 2);
	assert_non_null(strstr(r.f.sent[1], "\"id\":3116301"));
	assert_failed_with(&r, "line 3: action id 3116301 sent twice");
	rig_end(&r);
}

static void
test_expect_and_events(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, "{\"send\": {\"action_type\": \"print\"}, \"label\": "
	    "\"p\", \"expect\": \"print:completed\", \"events\": "
	    "[\"print:starting\", \"print:download:completed\", "
	    "\"print:completed\"]}\n"
	    "{\"send\": {\"action_type\": \"settings\"}}");
	sim_player_connected(r.p, 0);
	assert_int_equal(r.f.nsent, 1);
	assert_int_equal(sim_player_deadline(r.p), 10000);
	rig_event(&r, 3116300, "print:starting", 10);
	/* A sub-phase ending in ":completed" is not terminal. */
	rig_event(&r, 3116300, "print:download:completed", 20);
	assert_int_equal(r.f.nsent, 1);
	assert_int_equal(sim_player_result(r.p), SIM_RUNNING);
	rig_event(&r, 3116300, "print:completed", 30);
	assert_int_equal(r.f.nsent, 2);
	assert_int_equal(sim_player_result(r.p), SIM_PASSED);
	assert_int_equal(sim_player_deadline(r.p), -1);
	rig_end(&r);
}

static void
test_events_differ(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, "{\"send\": {\"action_type\": \"motion\"}, \"label\": "
	    "\"m\", \"events\": [\"motion:starting\", \"motion:completed\"]}\n"
	    "{\"await\": \"motion:completed\", \"label\": \"m\"}");
	sim_player_connected(r.p, 0);
	rig_event(&r, 3116300, "motion:starting", 1);
	rig_event(&r, 3116300, "motion:extra", 2);
	rig_event(&r, 3116300, "motion:completed", 3);
	assert_failed_with(&r, "line 1: m (motion 3116300): events differ at "
	    "#2: got [motion:starting, motion:extra, motion:completed], "
	    "expected [\"motion:starting\",\"motion:completed\"]");
	rig_end(&r);
}

static void
test_events_never_end(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, "{\"send\": {\"action_type\": \"motion\"}, \"label\": "
	    "\"m\", \"events\": [\"motion:starting\", \"motion:completed\"]}\n"
	    "{\"await\": \"motion:starting\", \"label\": \"m\"}");
	sim_player_connected(r.p, 0);
	rig_event(&r, 3116300, "motion:starting", 1);
	assert_failed_with(&r, "line 1: m (motion 3116300) never ended "
	    "(saw: motion:starting)");
	rig_end(&r);
}

static void
test_wrong_terminal(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, "{\"send\": {\"action_type\": \"motion\"}, \"label\": "
	    "\"m\", \"expect\": \"motion:completed\"}");
	sim_player_connected(r.p, 0);
	rig_event(&r, 3116300, "motion:starting", 1);
	rig_event(&r, 3116300, "motion:failed", 2);
	assert_failed_with(&r, "line 1: m (motion 3116300) ended with "
	    "motion:failed while waiting for motion:completed (saw: "
	    "motion:starting, motion:failed)");
	rig_end(&r);
}

static void
test_timeout(void **state)
{
	struct rig r;
	char where[128];

	(void)state;
	rig_start(&r, "{\"send\": {\"action_type\": \"hunt\"}, \"label\": "
	    "\"h\", \"expect\": \"hunt:completed\", \"timeout\": 2}");
	sim_player_connected(r.p, 1000);
	assert_int_equal(sim_player_deadline(r.p), 3000);
	sim_player_where(r.p, where, sizeof(where));
	assert_string_equal(where, "line 1: waiting for hunt:completed from h "
	    "(hunt 3116300)");
	sim_player_tick(r.p, 2999);
	assert_int_equal(sim_player_result(r.p), SIM_RUNNING);
	sim_player_tick(r.p, 3000);
	assert_failed_with(&r, "line 1: no hunt:completed for h (hunt "
	    "3116300) within 2000 ms (saw: nothing)");
	rig_end(&r);
}

static void
test_await_history_and_loose(void **state)
{
	struct rig r;
	char buf[256];

	(void)state;
	rig_start(&r, "{\"send\": {\"action_type\": \"print\"}, \"label\": "
	    "\"p\"}\n"
	    "{\"send\": {\"action_type\": \"settings\"}, \"expect\": "
	    "\"settings:completed\"}\n"
	    "{\"await\": \"print:download:completed\", \"label\": \"p\"}\n"
	    "{\"await\": \"button:pressed\"}\n"
	    "{\"await\": \"button:pressed\"}");
	sim_player_connected(r.p, 0);
	rig_event(&r, 3116300, "print:download:completed", 1);
	snprintf(buf, sizeof(buf), "{\"id\":%ld,\"timestamp\":3900,\"type\":"
	    "\"event\",\"version\":1,\"event\":\"button:pressed\"}\n",
	    r.next_frame_id++);
	rig_raw(&r, buf, 2);
	/* The earlier event counts; one loose event satisfies one await. */
	rig_event(&r, 3116301, "settings:completed", 3);
	assert_int_equal(sim_player_result(r.p), SIM_RUNNING);
	snprintf(buf, sizeof(buf), "{\"id\":%ld,\"timestamp\":3900,\"type\":"
	    "\"event\",\"version\":1,\"event\":\"button:pressed\"}\n",
	    r.next_frame_id++);
	rig_raw(&r, buf, 4);
	assert_int_equal(sim_player_result(r.p), SIM_PASSED);
	rig_end(&r);
}

static void
test_expect_none(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, "{\"send\": {\"action_type\": \"motion\"}, \"label\": "
	    "\"busy\"}\n"
	    "{\"expect_none\": \"busy\"}\n"
	    "{\"send\": {\"action_type\": \"settings\"}, \"expect\": "
	    "\"settings:completed\"}");
	sim_player_connected(r.p, 0);
	rig_event(&r, 3116300, "motion:failed", 1);
	assert_failed_with(&r, "busy (motion 3116300) got motion:failed, "
	    "expected no event");
	rig_end(&r);

	/* An event that came before the line counts too. */
	rig_start(&r, "{\"send\": {\"action_type\": \"motion\"}, \"label\": "
	    "\"busy\"}\n"
	    "{\"send\": {\"action_type\": \"settings\"}, \"expect\": "
	    "\"settings:completed\"}\n"
	    "{\"expect_none\": \"busy\"}");
	sim_player_connected(r.p, 0);
	rig_event(&r, 3116300, "motion:starting", 1);
	rig_event(&r, 3116301, "settings:completed", 2);
	assert_failed_with(&r, "line 3: busy got motion:starting");
	rig_end(&r);
}

static void
test_drop_and_knobs(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, "{\"expire_token\": true}\n"
	    "{\"fail_upload\": 2}\n"
	    "{\"fail_pulse\": 3}\n"
	    "{\"fail_signin\": 4}\n"
	    "{\"drop\": true, \"timeout\": 5}\n"
	    "{\"raw\": \"hello\"}");
	sim_player_connected(r.p, 0);
	assert_int_equal(r.f.knobs[SIM_KNOB_EXPIRE_TOKEN], 1);
	assert_int_equal(r.f.knobs[SIM_KNOB_FAIL_UPLOAD], 2);
	assert_int_equal(r.f.knobs[SIM_KNOB_FAIL_PULSE], 3);
	assert_int_equal(r.f.knobs[SIM_KNOB_FAIL_SIGNIN], 4);
	assert_int_equal(r.f.drops, 1);
	assert_int_equal(r.f.nsent, 0);
	/* The old socket's close is no reconnect. */
	sim_player_disconnected(r.p, 10);
	assert_int_equal(sim_player_result(r.p), SIM_RUNNING);
	sim_player_connected(r.p, 20);
	assert_int_equal(r.f.nsent, 1);
	assert_string_equal(r.f.sent[0], "hello");
	assert_int_equal(sim_player_result(r.p), SIM_PASSED);
	rig_end(&r);

	rig_start(&r, "{\"drop\": true, \"timeout\": 5}\n{\"raw\": \"x\"}");
	sim_player_connected(r.p, 0);
	sim_player_tick(r.p, 5000);
	assert_failed_with(&r, "line 1: the machine did not reconnect within "
	    "5000 ms");
	rig_end(&r);
}

/* send_big, expect_close, refuse_signin, await_signin, and a drop that
 * does not wait for the machine. */
static void
test_close_and_signin(void **state)
{
	struct rig r;
	size_t i, n;

	(void)state;
	rig_start(&r, "{\"harness\": [\"--expect-kept\", \"0\"]}\n"
	    "{\"send_big\": 1048577}\n"
	    "{\"expect_close\": 1009, \"timeout\": 5}\n"
	    "{\"raw\": \"after\"}");
	assert_int_equal(sim_scenario_steps(r.sc), 3);
	sim_player_connected(r.p, 0);
	assert_int_equal(r.f.nsent, 1);
	n = strlen(r.f.sent[0]);
	assert_int_equal(n, 1048577);
	assert_memory_equal(r.f.sent[0], "{\"pad\":\"x", 9);
	assert_string_equal(r.f.sent[0] + n - 3, "x\"}");
	for (i = 8; i < n - 2; i++)
		if (r.f.sent[0][i] != 'x')
			fail_msg("byte %zu is not padding", i);
	/* The machine closes with the code: the line holds, and the next
	 * frame is queued (for its next connection). */
	sim_player_peer_close(r.p, 1009);
	sim_player_disconnected(r.p, 10);
	assert_int_equal(sim_player_result(r.p), SIM_PASSED);
	assert_int_equal(r.f.nsent, 2);
	rig_end(&r);

	rig_start(&r, "{\"expect_close\": 1009}\n{\"raw\": \"x\"}");
	sim_player_connected(r.p, 0);
	sim_player_peer_close(r.p, 1000);
	sim_player_disconnected(r.p, 10);
	assert_failed_with(&r, "line 1: the machine closed its socket with "
	    "code 1000, expected 1009");
	rig_end(&r);

	rig_start(&r, "{\"expect_close\": 1009}\n{\"raw\": \"x\"}");
	sim_player_connected(r.p, 0);
	sim_player_disconnected(r.p, 10);
	assert_failed_with(&r, "without a close code, expected 1009");
	rig_end(&r);

	rig_start(&r, "{\"expect_close\": 1009, \"timeout\": 2}\n"
	    "{\"raw\": \"x\"}");
	sim_player_connected(r.p, 0);
	sim_player_tick(r.p, 1999);
	assert_int_equal(sim_player_result(r.p), SIM_RUNNING);
	sim_player_tick(r.p, 2000);
	assert_failed_with(&r, "line 1: the machine did not close its socket "
	    "within 2000 ms");
	rig_end(&r);

	/* The timeout counts from when the big frame was written, not
	 * queued: the sim's own slowness is not the machine's. */
	rig_start(&r, "{\"send_big\": 1048577}\n"
	    "{\"expect_close\": 1009, \"timeout\": 2}\n{\"raw\": \"x\"}");
	sim_player_connected(r.p, 0);
	sim_player_written(r.p, 1500000);
	sim_player_tick(r.p, 3499);
	assert_int_equal(sim_player_result(r.p), SIM_RUNNING);
	sim_player_tick(r.p, 3500);
	assert_failed_with(&r, "line 2: the machine did not close its socket "
	    "within 2000 ms");
	rig_end(&r);

	/* A close the sim made (drop) is not the machine's. */
	rig_start(&r, "{\"drop\": true, \"reconnect\": false}\n"
	    "{\"expect_close\": 1009, \"timeout\": 1}\n{\"raw\": \"x\"}");
	sim_player_connected(r.p, 0);
	assert_int_equal(r.f.drops, 1);
	sim_player_disconnected(r.p, 10);
	sim_player_tick(r.p, 1000);
	assert_failed_with(&r, "did not close its socket within 1000 ms");
	rig_end(&r);

	/* Each sign-in answered 401 satisfies one await; they count while
	 * the machine has no socket. */
	rig_start(&r, "{\"refuse_signin\": 5}\n"
	    "{\"drop\": true, \"reconnect\": false}\n"
	    "{\"await_signin\": 401, \"timeout\": 3}\n"
	    "{\"await_signin\": 401, \"timeout\": 3}\n"
	    "{\"await_signin\": 200, \"timeout\": 3}");
	r.f.signins[0] = 1;	/* the first sign-in, before play */
	sim_player_connected(r.p, 0);
	assert_int_equal(r.f.knobs[SIM_KNOB_REFUSE_SIGNIN], 5);
	assert_int_equal(r.f.drops, 1);
	/* That earlier 200 counts too: the third await is satisfied at
	 * once when reached. */
	sim_player_tick(r.p, 100);
	assert_int_equal(sim_player_result(r.p), SIM_RUNNING);
	r.f.signins[1] = 1;
	sim_player_tick(r.p, 200);
	assert_int_equal(sim_player_result(r.p), SIM_RUNNING);
	r.f.signins[1] = 2;
	sim_player_tick(r.p, 300);
	assert_int_equal(sim_player_result(r.p), SIM_PASSED);
	rig_end(&r);

	rig_start(&r, "{\"await_signin\": 503, \"timeout\": 3}");
	sim_player_connected(r.p, 0);
	sim_player_tick(r.p, 3000);
	assert_failed_with(&r, "line 1: no sign-in answered 503 within "
	    "3000 ms");
	rig_end(&r);
}

/* await_file: nothing is sent before the file is there; the player asks
 * for a tick soon (it has nothing else to wake it); no file in time
 * fails. */
static void
test_await_file(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, "{\"await_file\": \"page-open\", \"timeout\": 5}\n"
	    "{\"send\": {\"action_type\": \"settings\"}}");
	sim_player_connected(r.p, 0);
	assert_int_equal(r.f.nsent, 0);
	assert_int_equal(sim_player_deadline(r.p), 50);
	snprintf(r.f.file, sizeof(r.f.file), "other");
	sim_player_tick(r.p, 50);
	assert_int_equal(r.f.nsent, 0);
	assert_int_equal(sim_player_deadline(r.p), 100);
	snprintf(r.f.file, sizeof(r.f.file), "page-open");
	sim_player_tick(r.p, 100);
	assert_int_equal(r.f.nsent, 1);
	assert_int_equal(sim_player_result(r.p), SIM_PASSED);
	rig_end(&r);

	rig_start(&r, "{\"await_file\": \"page-open\", \"timeout\": 1}");
	sim_player_connected(r.p, 0);
	sim_player_tick(r.p, 980);
	assert_int_equal(sim_player_deadline(r.p), 1000);
	sim_player_tick(r.p, 1000);
	assert_failed_with(&r, "line 1: no file page-open within 1000 ms");
	rig_end(&r);
}

static void
test_batch(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, "{\"send\": [{\"action_type\": \"settings\"}, "
	    "{\"action_type\": \"hunt\"}], \"label\": [\"s\", \"h\"]}\n"
	    "{\"await\": \"hunt:completed\", \"label\": \"h\"}");
	sim_player_connected(r.p, 0);
	assert_int_equal(r.f.nsent, 1);
	assert_string_equal(r.f.sent[0], "{\"id\":3116300,\"action_type\":"
	    "\"settings\",\"machine_serial\":\"S12345678\",\"status\":"
	    "\"ready\"}\n{\"id\":3116301,\"action_type\":\"hunt\","
	    "\"machine_serial\":\"S12345678\",\"status\":\"ready\"}");
	rig_event(&r, 3116301, "hunt:completed", 1);
	assert_int_equal(sim_player_result(r.p), SIM_PASSED);
	rig_end(&r);
}

/* Each bad frame fails the run with its reason. */
static void
test_bad_frames(void **state)
{
	static const struct {
		const char	*msg;
		const char	*why;
	} cases[] = {
		{ "{\"id\":40,\"timestamp\":1,\"type\":\"log\",\"version\":1,"
		    "\"log\":\"x\"}", "not newline-terminated" },
		{ "\n", "an empty line" },
		{ "{\"id\":40,\"timestamp\":1,\"type\":\"log\",\"version\":1,"
		    "\"log\":\"x\"}\n\n", "an empty line" },
		{ "[1]\n", "not a JSON object" },
		{ "{\"id\":40} x\n", "not a JSON object" },
		{ "{\"id\":40,\"timestamp\":1,\"type\":\"blob\","
		    "\"version\":1}\n",
		    "\"type\" is not event, log or progress" },
		{ "{\"id\":40,\"timestamp\":1,\"type\":\"log\",\"version\":2,"
		    "\"log\":\"x\"}\n", "\"version\" is not 1" },
		{ "{\"id\":40,\"timestamp\":1.5,\"type\":\"log\",\"version\":1,"
		    "\"log\":\"x\"}\n", "\"timestamp\" is not an integer" },
		{ "{\"id\":\"40\",\"timestamp\":1,\"type\":\"log\","
		    "\"version\":1,"
		    "\"log\":\"x\"}\n", "\"id\" is not an integer" },
		{ "{\"id\":40,\"timestamp\":1,\"type\":\"log\","
		    "\"version\":1}\n",
		    "a log without \"log\"" },
		{ "{\"id\":40,\"timestamp\":1,\"type\":\"progress\","
		    "\"version\":1,"
		    "\"action_id\":3116300}\n", "a progress without" },
		{ "{\"id\":40,\"timestamp\":1,\"type\":\"event\","
		    "\"version\":1}\n",
		    "no valid \"event\"" },
		{ "{\"id\":40,\"timestamp\":1,\"type\":\"event\",\"version\":1,"
		    "\"event\":\"x\",\"action_id\":\"3116300\"}\n",
		    "\"action_id\" is not an integer" },
		{ "{\"id\":40,\"timestamp\":1,\"type\":\"event\",\"version\":1,"
		    "\"event\":\"x\",\"action_id\":99}\n",
		    "event x for action 99, which the sim never sent" },
		{ "{\"id\":32,\"timestamp\":1,\"type\":\"log\",\"version\":1,"
		    "\"log\":\"x\"}\n", "\"id\" 32 does not rise past 32" },
		{ "{\"id\":40,\"timestamp\":1,\"type\":\"log\",\"version\":1,"
		    "\"log\":\"\xc3\x28\"}\n", "not UTF-8" },
		{ "{\"id\":40,\"timestamp\":1,\"type\":\"log\",\"version\":1,"
		    "\"log\":\"token=0123456789abcdef\"}\n", "holds a secret" },
	};
	struct rig r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rig_start(&r, "{\"send\": {\"action_type\": \"motion\"}, "
		    "\"expect\": \"motion:completed\"}");
		sim_transcript_secret(r.tr, "0123456789abcdef");
		sim_player_connected(r.p, 0);
		/* A good frame first: id 32 is taken. */
		rig_raw(&r, "{\"id\":32,\"timestamp\":3800,"
		    "\"type\":\"progress\","
		    "\"version\":1,\"action_id\":3116300,\"progress\":"
		    "\"motion:download\",\"current\":1,\"total\":2}\n", 1);
		assert_int_equal(sim_player_result(r.p), SIM_RUNNING);
		rig_raw(&r, cases[i].msg, 2);
		if (sim_player_result(r.p) != SIM_FAILED ||
		    strstr(sim_player_reason(r.p), cases[i].why) ==
		    NULL)
			fail_msg("case %zu: reason \"%s\", want \"%s\"", i,
			    sim_player_reason(r.p), cases[i].why);
		rig_end(&r);
	}
}

static void
test_second_terminal_and_upload(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, "{\"send\": {\"action_type\": \"motion\"}, \"expect\": "
	    "\"motion:completed\"}\n"
	    "{\"send\": {\"action_type\": \"settings\"}, \"expect\": "
	    "\"settings:completed\"}");
	sim_player_connected(r.p, 0);
	rig_event(&r, 3116300, "motion:completed", 1);
	rig_event(&r, 3116300, "motion:failed", 2);
	assert_failed_with(&r, "motion 3116300: a second terminal event, "
	    "motion:failed (saw: motion:completed)");
	rig_end(&r);

	rig_start(&r, "{\"send\": {\"action_type\": \"lid_image\", "
	    "\"endpoint\": true}, \"expect\": \"lid_image:completed\"}");
	sim_player_connected(r.p, 0);
	rig_event(&r, 3116300, "lid_image:upload:starting", 1);
	rig_event(&r, 3116300, "lid_image:upload:completed", 2);
	assert_failed_with(&r, "lid_image 3116300: lid_image:upload:completed "
	    "but no valid image was uploaded");
	rig_end(&r);

	rig_start(&r, "{\"send\": {\"action_type\": \"lid_image\", "
	    "\"endpoint\": true}, \"expect\": \"lid_image:completed\"}");
	r.f.uploads = 1;
	sim_player_connected(r.p, 0);
	rig_event(&r, 3116300, "lid_image:upload:completed", 2);
	rig_event(&r, 3116300, "lid_image:completed", 3);
	assert_int_equal(sim_player_result(r.p), SIM_PASSED);
	rig_end(&r);
}

/* An event as rig_event() makes it, at now_us on the microsecond clock. */
static void
rig_event_us(struct rig *r, long action_id, const char *event, int64_t now_us)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "{\"id\":%ld,\"timestamp\":%ld,\"type\":"
	    "\"event\",\"version\":1,\"action_id\":%ld,\"level\":\"INFO\","
	    "\"event\":\"%s\"}\n", r->next_frame_id, 3800 + r->next_frame_id,
	    action_id, event);
	r->next_frame_id++;
	sim_player_rx_us(r->p, buf, strlen(buf), now_us);
}

/*
 * Latency: from the write of an action's frame to its first event.  Frames
 * are reported written in queueing order, one call each, a raw frame
 * (no action) and a batch (two actions) included; a later event of an
 * action does not move its time; an action never written does not count.
 */
static void
test_latency(void **state)
{
	struct sim_latency lat;
	struct rig r;
	char *buf = NULL;
	size_t len = 0;
	FILE *fp;

	(void)state;
	rig_start(&r, "{\"send\": {\"action_type\": \"settings\"}, "
	    "\"expect\": \"settings:completed\"}\n"
	    "{\"raw\": \"garbage\"}\n"
	    "{\"send\": [{\"action_type\": \"settings\"}, "
	    "{\"action_type\": \"hunt\"}], \"label\": [\"a\", \"h\"]}\n"
	    "{\"await\": \"hunt:completed\", \"label\": \"h\"}\n"
	    "{\"send\": {\"action_type\": \"settings\"}, "
	    "\"expect\": \"settings:completed\"}\n");
	sim_player_connected(r.p, 0);
	assert_int_equal(sim_player_latency(r.p, &lat), 0);
	assert_int_equal(lat.count, 0);
	sim_player_written(r.p, 1000);
	rig_event_us(&r, 3116300, "settings:completed", 1250);
	assert_int_equal(r.f.nsent, 3);		/* then the raw and the batch */
	sim_player_written(r.p, 2000);
	sim_player_written(r.p, 3000);
	rig_event_us(&r, 3116302, "hunt:starting", 3100);
	rig_event_us(&r, 3116301, "settings:completed", 3400);
	rig_event_us(&r, 3116302, "hunt:completed", 9000);
	/* The last settings is queued but never written: not measured. */
	assert_int_equal(r.f.nsent, 4);
	rig_event_us(&r, 3116303, "settings:completed", 9500);
	assert_int_equal(sim_player_result(r.p), SIM_PASSED);

	assert_int_equal(sim_player_latency(r.p, &lat), 0);
	assert_int_equal(lat.count, 3);		/* 250, 400, 100 us */
	assert_int_equal(lat.p50, 250);
	assert_int_equal(lat.p90, 400);
	assert_int_equal(lat.p99, 400);
	assert_int_equal(lat.max, 400);
	fp = open_memstream(&buf, &len);
	assert_int_equal(sim_player_latencies(r.p, fp), 0);
	fclose(fp);
	assert_string_equal(buf, "3116300 settings 250\n3116301 settings 400\n"
	    "3116302 hunt 100\n");
	free(buf);
	buf = NULL;
	fp = open_memstream(&buf, &len);
	sim_player_summary(r.p, fp);
	fclose(fp);
	assert_non_null(strstr(buf, "latency: 3 actions, frame written to "
	    "first event: p50 250 us, p90 400 us, p99 400 us, max 400 us\n"));
	free(buf);
	rig_end(&r);
}

static void
test_outside_failure_and_summary(void **state)
{
	struct rig r;
	char *buf = NULL;
	size_t len = 0;
	FILE *fp;

	(void)state;
	rig_start(&r, "{\"send\": {\"action_type\": \"hunt\"}, \"label\": "
	    "\"h\", \"expect\": \"hunt:completed\"}");
	sim_player_connected(r.p, 0);
	rig_event(&r, 3116300, "hunt:starting", 1);
	sim_player_fail(r.p, "http: %s", "first");
	sim_player_fail(r.p, "second");
	assert_string_equal(sim_player_reason(r.p), "http: first");
	/* Frames after the end are recorded, not judged. */
	rig_raw(&r, "garbage", 2);
	assert_string_equal(sim_player_reason(r.p), "http: first");
	fp = open_memstream(&buf, &len);
	sim_player_summary(r.p, fp);
	fclose(fp);
	assert_string_equal(buf, "line 1 h (hunt 3116300): hunt:starting "
	    "(not ended)\nFAILED: http: first\n");
	free(buf);
	rig_end(&r);
}

/* --- transcript --- */

static char *
slurp(const char *path)
{
	char *buf;
	FILE *fp = fopen(path, "r");
	size_t n;

	assert_non_null(fp);
	buf = calloc(1, 65536);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void
test_transcript(void **state)
{
	char dir[] = "/tmp/test_sim_tr.XXXXXX", tpath[64], spath[64], *s;
	struct sim_transcript *tr;
	struct stat sb;
	cJSON *o;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(tpath, sizeof(tpath), "%s/tr.jsonl", dir);
	snprintf(spath, sizeof(spath), "%s/secrets", dir);
	tr = sim_transcript_new(tpath, spath);
	assert_non_null(tr);
	assert_int_equal(sim_transcript_secret(tr, "s3cr3t"), 0);
	assert_int_equal(sim_transcript_secret(tr, ""), 0);
	assert_true(sim_transcript_leaks(tr, "xxs3cr3txx", 10));
	assert_false(sim_transcript_leaks(tr, "xxs3cr3", 7));

	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "note", "s3cr3t and s3cr3ts3cr3t");
	sim_transcript_record(tr, 12, "http", o);
	cJSON_Delete(o);
	o = cJSON_CreateObject();
	sim_transcript_record(tr, 13, "ws", o);
	cJSON_Delete(o);
	sim_transcript_frame(tr, 14, "tx", "{\"a\":1}", 7);
	sim_transcript_frame(tr, 15, "tx", "{\"a\":1}\n{\"b\":2}",
	    15);
	sim_transcript_frame(tr, 16, "rx", "bad \xff\x00 s3cr3t", 13);
	sim_transcript_free(tr);

	s = slurp(tpath);
	assert_string_equal(s,
	    "{\"t\":12,\"dir\":\"http\",\"note\":\"<redacted> and "
	    "<redacted><redacted>\"}\n"
	    "{\"t\":13,\"dir\":\"ws\"}\n"
	    "{\"t\":14,\"dir\":\"tx\",\"frame\":{\"a\":1}}\n"
	    "{\"t\":15,\"dir\":\"tx\",\"frames\":[{\"a\":1},{\"b\":2}]}\n"
	    "{\"t\":16,\"dir\":\"rx\",\"raw\":\"bad ?? <redacted>\"}\n");
	free(s);
	s = slurp(spath);
	assert_string_equal(s, "s3cr3t\n");
	free(s);
	assert_int_equal(stat(spath, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	unlink(tpath);
	unlink(spath);
	rmdir(dir);
}

/* Issued tokens (64 hex chars) are found by hashing the 64-char windows
 * of a frame's hex runs: wherever they sit in a run, and never from a
 * shorter run.  Other secrets are searched as they are. */
struct leak_case {
	const char	*name;
	const char	*text;
	int		 leaks;
	const char	*redacted;	/* NULL: not checked */
};

#define T64	"0123456789abcdef0123456789abcdef" \
		"0123456789abcdef0123456789abcdef"
#define U64	"fedcba9876543210fedcba9876543210" \
		"fedcba9876543210fedcba9876543210"

static const struct leak_case leak_cases[] = {
	{ "alone", T64, 1, "<redacted>" },
	{ "in a JSON string", "{\"t\":\"" T64 "\"}", 1,
	    "{\"t\":\"<redacted>\"}" },
	{ "inside a longer hex run", "ab" T64 "cd", 1, "ab<redacted>cd" },
	{ "at the end, after hex", "x00" U64, 1, "x00<redacted>" },
	{ "two of them", T64 "-" U64, 1, "<redacted>-<redacted>" },
	/* Hex says the same in either case: an upper-cased token leaks. */
	{ "upper case", "0123456789ABCDEF0123456789ABCDEF"
	    "0123456789ABCDEF0123456789ABCDEF", 1, "<redacted>" },
	{ "mixed case in a run", "x" "FEDCBA9876543210fedcba9876543210"
	    "fedcba9876543210fedcba9876543210" "0", 1, "x<redacted>0" },
	{ "one char short", "0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcde", 0, NULL },
	{ "another token", "1123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef", 0, NULL },
	{ "the password", "pw=hunter2!", 1, "pw=<redacted>" },
	{ "nothing", "{\"id\":32,\"event\":\"settings:completed\"}", 0,
	    NULL },
};

static void
test_transcript_tokens(void **state)
{
	char dir[] = "/tmp/test_sim_leaksXXXXXX", tpath[64], want[256];
	struct sim_transcript *tr;
	cJSON *o;
	char *s;
	size_t i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(tpath, sizeof(tpath), "%s/tr.jsonl", dir);
	for (i = 0; i < sizeof(leak_cases) / sizeof(leak_cases[0]); i++) {
		const struct leak_case *tc = &leak_cases[i];

		tr = sim_transcript_new(tpath, NULL);
		assert_non_null(tr);
		assert_int_equal(sim_transcript_secret(tr, T64), 0);
		assert_int_equal(sim_transcript_secret(tr, U64), 0);
		assert_int_equal(sim_transcript_secret(tr, T64), 0);
		assert_int_equal(sim_transcript_secret(tr,
		    "hunter2!"), 0);
		if (sim_transcript_leaks(tr, tc->text,
		    strlen(tc->text)) != tc->leaks)
			fail_msg("%s: leaks is not %d", tc->name, tc->leaks);
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "n", tc->text);
		sim_transcript_record(tr, 1, "rx", o);
		cJSON_Delete(o);
		sim_transcript_free(tr);
		if (tc->redacted == NULL)
			continue;
		s = slurp(tpath);
		o = cJSON_CreateString(tc->redacted);
		{
			char *js = cJSON_PrintUnformatted(o);

			snprintf(want, sizeof(want), "{\"t\":1,\"dir\":\"rx\","
			    "\"n\":%s}\n", js);
			free(js);
		}
		cJSON_Delete(o);
		if (strcmp(s, want) != 0)
			fail_msg("%s: got %s", tc->name, s);
		free(s);
	}
	unlink(tpath);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_send_fills_in),
		cmocka_unit_test(test_auto_ids_skip_explicit),
		cmocka_unit_test(test_expect_and_events),
		cmocka_unit_test(test_events_differ),
		cmocka_unit_test(test_events_never_end),
		cmocka_unit_test(test_wrong_terminal),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_await_history_and_loose),
		cmocka_unit_test(test_expect_none),
		cmocka_unit_test(test_drop_and_knobs),
		cmocka_unit_test(test_close_and_signin),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_bad_frames),
		cmocka_unit_test(test_second_terminal_and_upload),
		cmocka_unit_test(test_outside_failure_and_summary),
		cmocka_unit_test(test_await_file),
		cmocka_unit_test(test_latency),
		cmocka_unit_test(test_transcript),
		cmocka_unit_test(test_transcript_tokens),
	};

	log_init(LOG_TO_CONSOLE, LOG_WARNING, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
