/*
 * test_sequence: the compiled-in profiles against the text of PROTOCOL.md 5,
 * sequences files (overrides and every error of the loader), placeholders.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sequence.h"

#define MAXSTEPS	40

/* Every action type of PROTOCOL.md 4.1 but focus, which both ignore. */
static const char *const action_types[] = {
	"settings", "lid_image", "head_image", "lidar_image", "user_image",
	"hunt", "motion", "print", "update_check", "factory_reset",
	"head_firmware_update",
};
static const char *const camera_types[] = {
	"lid_image", "head_image", "lidar_image", "user_image",
};

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

static struct seq_table *
table(const char *profile)
{
	struct seq_table *t;
	char err[256];

	t = seq_table_new(profile, NULL, err, sizeof(err));
	if (t == NULL)
		fail_msg("%s: %s", profile != NULL ? profile : "(default)",
		    err);
	return t;
}

/*
 * A sequence as strings, one per step: an event as its expanded name
 * (suffixed " -action" without action_id, " +report" with the report), an
 * op as "(name)" (" +progress" when it reports progress).  With
 * events_only, the ops are left out.  Returns the number of strings.
 */
static size_t
render(const struct seq *s, const char *type, int events_only,
    char out[][80])
{
	char name[64];
	size_t i, n = 0;

	assert_true(s->nsteps <= MAXSTEPS);
	for (i = 0; i < s->nsteps; i++) {
		const struct seq_step *st = &s->steps[i];

		if (st->op == SEQ_EVENT) {
			assert_non_null(st->event);
			seq_event_name(st->event, type, name, sizeof(name));
			snprintf(out[n++], 80, "%s%s%s", name,
			    st->no_action_id ? " -action" : "",
			    st->report ? " +report" : "");
		} else if (!events_only) {
			assert_null(st->event);
			assert_null(st->extra);
			snprintf(out[n++], 80, "(%s)%s", seq_op_name(st->op),
			    st->progress ? " +progress" : "");
		}
	}
	return n;
}

static void
assert_seq(const struct seq_table *t, const char *type, int events_only,
    const char *const *want)
{
	char got[MAXSTEPS][80];
	const struct seq *s;
	size_t n, i;

	s = seq_find(t, type);
	if (s == NULL)
		fail_msg("no sequence for %s", type);
	assert_string_equal(s->action, type);
	n = render(s, type, events_only, got);
	for (i = 0; i < n; i++) {
		if (want[i] == NULL)
			fail_msg("%s: extra step %zu \"%s\"", type, i, got[i]);
		if (strcmp(got[i], want[i]) != 0)
			fail_msg("%s: step %zu is \"%s\", not \"%s\"", type, i,
			    got[i], want[i]);
	}
	if (want[n] != NULL)
		fail_msg("%s: missing step %zu \"%s\"", type, n, want[n]);
}

static void
test_profiles_complete(void **state)
{
	static const char *const profiles[] = { "2.6", "1.x" };
	struct seq_table *t;
	const struct seq *s;
	size_t p, i, j;

	(void)state;
	for (p = 0; p < nitems(profiles); p++) {
		t = table(profiles[p]);
		for (i = 0; i < nitems(action_types); i++) {
			s = seq_find(t, action_types[i]);
			if (s == NULL)
				fail_msg("%s lacks %s", profiles[p],
				    action_types[i]);
			assert_true(s->nsteps > 0);
			for (j = 0; j < s->nsteps; j++)
				assert_int_equal(s->steps[j].delay_ms, 0);
		}
		assert_null(seq_find(t, "focus"));
		assert_null(seq_find(t, "nonesuch"));
		assert_null(seq_find(t, ""));
		assert_null(seq_find(t, NULL));
		seq_table_free(t);
	}
	assert_null(seq_find(NULL, "print"));
	/* NULL picks the 2.6 default. */
	t = table(NULL);
	assert_non_null(seq_find(t, "print"));
	seq_table_free(t);
}

/* The events of profile 2.6 are the table of PROTOCOL.md 5, word for word
 * (the failure variants are the dispatcher's). */
static void
test_26_is_the_table(void **state)
{
	static const char *const settings[] = {
		"settings:completed +report", NULL };
	static const char *const hunt[] = {
		"hunt:starting", "hunt:completed", NULL };
	static const char *const motion[] = {
		"motion:starting", "motion:completed", NULL };
	static const char *const print[] = {
		"print:starting", "print:download:completed",
		"print:warmup:starting", "print:running",
		"print:return_to_home:succeeded", "print:completed", NULL };
	static const char *const update_check[] = {
		"update_check:completed", NULL };
	static const char *const refused[] = { NULL };
	static const struct {
		const char		*type;
		const char *const	*events;
	} t26[] = {
		{ "settings", settings },
		{ "hunt", hunt },
		{ "motion", motion },
		{ "print", print },
		{ "update_check", update_check },
		{ "factory_reset", refused },
		{ "head_firmware_update", refused },
	};
	char want[8][80];
	const char *w[9];
	struct seq_table *t;
	size_t i;

	(void)state;
	t = table("2.6");
	for (i = 0; i < nitems(t26); i++)
		assert_seq(t, t26[i].type, 1, t26[i].events);
	/* X:starting, X:capture:starting, X:capture:completed,
	 * X:upload:starting, X:upload:completed, X:completed */
	for (i = 0; i < nitems(camera_types); i++) {
		static const char *const ph[] = { "starting",
		    "capture:starting", "capture:completed", "upload:starting",
		    "upload:completed", "completed" };
		size_t k;

		for (k = 0; k < nitems(ph); k++) {
			snprintf(want[k], sizeof(want[k]), "%s:%s",
			    camera_types[i], ph[k]);
			w[k] = want[k];
		}
		w[k] = NULL;
		assert_seq(t, camera_types[i], 1, w);
	}
	seq_table_free(t);
}

/* Where the work happens between the 2.6 events. */
static void
test_26_ops(void **state)
{
	static const char *const image[] = {
		"lid_image:starting", "lid_image:capture:starting",
		"(capture)", "lid_image:capture:completed",
		"lid_image:upload:starting", "(upload)",
		"lid_image:upload:completed", "lid_image:completed", NULL };
	static const char *const hunt[] = {
		"hunt:starting", "(download)", "hunt:completed", NULL };
	static const char *const motion[] = {
		"motion:starting", "(download)", "motion:completed", NULL };
	static const char *const print[] = {
		"print:starting", "(download)", "print:download:completed",
		"(button)", "print:warmup:starting", "(warmup)",
		"print:running", "print:return_to_home:succeeded",
		"(cooldown)", "print:completed", NULL };
	static const char *const update_check[] = {
		"(fw_probe)", "update_check:completed", NULL };
	static const char *const refuse[] = { "(refuse)", NULL };
	struct seq_table *t;

	(void)state;
	t = table("2.6");
	assert_seq(t, "lid_image", 0, image);
	assert_seq(t, "hunt", 0, hunt);
	assert_seq(t, "motion", 0, motion);
	assert_seq(t, "print", 0, print);
	assert_seq(t, "update_check", 0, update_check);
	assert_seq(t, "factory_reset", 0, refuse);
	assert_seq(t, "head_firmware_update", 0, refuse);
	seq_table_free(t);
}

/* The four camera actions run one pattern, with their own names. */
static void
test_camera_shared(void **state)
{
	static const char *const profiles[] = { "2.6", "1.x" };
	const struct seq *a, *b;
	struct seq_table *t;
	size_t p, i, j;

	(void)state;
	for (p = 0; p < nitems(profiles); p++) {
		t = table(profiles[p]);
		a = seq_find(t, camera_types[0]);
		for (i = 1; i < nitems(camera_types); i++) {
			b = seq_find(t, camera_types[i]);
			assert_int_equal(a->nsteps, b->nsteps);
			for (j = 0; j < a->nsteps; j++) {
				assert_int_equal(a->steps[j].op,
				    b->steps[j].op);
				if (a->steps[j].event == NULL)
					continue;
				assert_string_equal(a->steps[j].event,
				    b->steps[j].event);
				assert_non_null(strstr(a->steps[j].event,
				    "{type}"));
			}
		}
		seq_table_free(t);
	}
}

/* Profile 1.x: the prose of PROTOCOL.md 5. */
static void
test_1x(void **state)
{
	static const char *const print[] = {
		"print:received", "print:starting", "print:download:starting",
		"(download) +progress", "print:download:completed",
		"print:waiting", "(button)", "button:pressed -action",
		"print:idle:succeeded", "print:warmup:starting", "(warmup)",
		"print:warmup:succeeded", "print:starting:starting",
		"print:running", "print:starting:succeeded",
		"print:running:starting", "estop:deactivated -action",
		"button:released -action", "print:running:succeeded",
		"print:finished:starting", "print:finished:succeeded",
		"print:return_to_home:starting",
		"print:return_to_home:succeeded", "print:resting:starting",
		"print:resting", "(cooldown)", "estop:activated -action",
		"print:completed", "print:reset",
		":resting:succeeded -action", ":idle:starting -action", NULL };
	static const char *const hunt[] = {
		"hunt:received", "hunt:starting", "(download)",
		"hunt:homing:completed", "hunt:idle:succeeded",
		"hunt:warmup:starting", "hunt:warmup:succeeded",
		"hunt:starting:starting", "hunt:starting:succeeded",
		"hunt:running", "hunt:running:starting",
		"hunt:running:succeeded", "hunt:finished:starting",
		"hunt:finished:succeeded", "hunt:resting:starting",
		"hunt:completed", "hunt:reset", NULL };
	static const char *const motion[] = {
		"motion:received", "motion:starting",
		"motion:download:starting", "(download)",
		"motion:download:completed", "motion:idle:succeeded",
		"motion:warmup:starting", "motion:warmup:succeeded",
		"motion:starting:starting", "motion:starting:succeeded",
		"motion:running", "motion:running:starting",
		"motion:running:succeeded", "motion:finished:starting",
		"motion:finished:succeeded", "motion:resting:starting",
		"motion:completed", "motion:reset", NULL };
	static const char *const image[] = {
		"user_image:received", "user_image:starting",
		"user_image:capture:starting", "(capture)",
		"user_image:capture:completed", "user_image:upload:starting",
		"(upload)", "user_image:upload:completed",
		"user_image:completed", "user_image:reset", NULL };
	static const char *const settings[] = {
		"settings:received", "settings:starting",
		"settings:completed +report", "settings:reset", NULL };
	static const char *const update_check[] = {
		"(fw_probe)", "update_check:completed", NULL };
	static const char *const refuse[] = { "(refuse)", NULL };
	/* The extra members the text gives, by event. */
	static const struct {
		const char	*type;
		const char	*event;		/* pattern */
		const char	*extra;		/* printed */
	} extras[] = {
		{ "print", "print:received", "{\"log\":\"state=ready\"}" },
		{ "print", "print:download:starting",
		    "{\"log\":\"downloading pulse data from {url}\"}" },
		{ "print", "print:waiting",
		    "{\"log\":\"waiting for button press\"}" },
		{ "lid_image", "{type}:capture:completed",
		    "{\"log\":\"capture time: 1.47755\"}" },
	};
	const struct seq *s;
	struct seq_table *t;
	size_t i, j, found;
	char *p;

	(void)state;
	t = table("1.x");
	assert_seq(t, "print", 0, print);
	assert_seq(t, "hunt", 0, hunt);
	assert_seq(t, "motion", 0, motion);
	assert_seq(t, "user_image", 0, image);
	assert_seq(t, "settings", 0, settings);
	assert_seq(t, "update_check", 0, update_check);
	assert_seq(t, "factory_reset", 0, refuse);
	assert_seq(t, "head_firmware_update", 0, refuse);

	/* Extras exactly where listed, nowhere else. */
	found = 0;
	for (i = 0; i < nitems(action_types); i++) {
		s = seq_find(t, action_types[i]);
		for (j = 0; j < s->nsteps; j++) {
			size_t k;

			if (s->steps[j].extra == NULL)
				continue;
			for (k = 0; k < nitems(extras); k++)
				if (strcmp(s->steps[j].event,
				    extras[k].event) == 0)
					break;
			if (k == nitems(extras))
				fail_msg("%s: unexpected extra on %s",
				    action_types[i], s->steps[j].event);
			p = cJSON_PrintUnformatted(s->steps[j].extra);
			assert_string_equal(p, extras[k].extra);
			free(p);
			if (strcmp(action_types[i], extras[k].type) == 0)
				found++;
		}
	}
	assert_int_equal(found, nitems(extras));
	seq_table_free(t);
}

/* --- sequences files --- */

static void
test_override(void **state)
{
	static const char doc[] =
	    "{\"print\":[{\"event\":\"print:starting\",\"delay_ms\":250},"
	    " {\"op\":\"download\",\"progress\":true},"
	    " {\"op\":\"button\"},"
	    " {\"event\":\"button:pressed\",\"action_id\":false},"
	    " {\"event\":\"print:completed\",\"extra\":{\"log\":\"x\"},"
	    "   \"action_id\":true,\"report\":false}],"
	    " \"focus\":[{\"event\":\"{type}:completed\",\"report\":true}]}";
	static const char *const print[] = {
		"print:starting", "(download) +progress", "(button)",
		"button:pressed -action", "print:completed", NULL };
	static const char *const focus[] = {
		"focus:completed +report", NULL };
	static const char *const hunt[] = {
		"hunt:starting", "(download)", "hunt:completed", NULL };
	struct seq_table *t;
	const struct seq *s;
	char err[256];

	(void)state;
	t = table("2.6");
	if (seq_table_load_json(t, doc, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_seq(t, "print", 0, print);
	s = seq_find(t, "print");
	assert_int_equal(s->steps[0].delay_ms, 250);
	assert_int_equal(s->steps[1].delay_ms, 0);
	assert_non_null(s->steps[4].extra);
	/* A type the profile lacks is added. */
	assert_seq(t, "focus", 0, focus);
	/* The others keep the profile's. */
	assert_seq(t, "hunt", 0, hunt);
	assert_non_null(seq_find(t, "lid_image"));
	assert_int_equal(seq_find(t, "lid_image")->nsteps, 8);

	/* A later document replaces again; an empty one changes nothing. */
	assert_int_equal(seq_table_load_json(t,
	    "{\"print\":[{\"op\":\"refuse\"}]}", err, sizeof(err)), 0);
	assert_int_equal(seq_find(t, "print")->nsteps, 1);
	assert_int_equal(seq_table_load_json(t, " {} ", err, sizeof(err)), 0);
	assert_int_equal(seq_find(t, "print")->nsteps, 1);
	seq_table_free(t);
}

/* Every error of the loader, with its message; and a bad document leaves
 * the table as it was (all or nothing). */
static void
test_load_errors(void **state)
{
	static const struct {
		const char	*doc;
		const char	*err;	/* the whole message */
	} t[] = {
		{ "", "not JSON (error at byte 0)" },
		{ "{\"print\":[}", "not JSON (error at byte 10)" },
		{ "{} x", "not JSON (error at byte 3)" },
		{ "[]", "not a JSON object" },
		{ "\"print\"", "not a JSON object" },
		{ "{\"profile\":\"1.x\"}", "profile: not allowed here (set "
		    "protocol_profile in the configuration)" },
		{ "{\"Print\":[{\"op\":\"refuse\"}]}",
		    "Print: not an action type ([a-z_]{1,32})" },
		{ "{\"../x\":[{\"op\":\"refuse\"}]}",
		    "../x: not an action type ([a-z_]{1,32})" },
		{ "{\"\":[{\"op\":\"refuse\"}]}",
		    ": not an action type ([a-z_]{1,32})" },
		{ "{\"abcdefghijklmnopqrstuvwxyz_abcdef\":[{\"op\":"
		    "\"refuse\"}]}", "abcdefghijklmnopqrstuvwxyz_abcdef: not "
		    "an action type ([a-z_]{1,32})" },
		{ "{\"print\":{}}", "print: not an array of steps" },
		{ "{\"print\":\"refuse\"}", "print: not an array of steps" },
		{ "{\"print\":[]}", "print: no steps" },
		{ "{\"print\":[{\"op\":\"refuse\"}],\"print\":[{\"op\":"
		    "\"refuse\"}]}", "print: given twice" },
		{ "{\"print\":[5]}", "print: step 1: not an object" },
		{ "{\"print\":[{\"op\":\"refuse\"},[]]}",
		    "print: step 2: not an object" },
		{ "{\"print\":[{}]}",
		    "print: step 1: neither \"event\" nor \"op\"" },
		{ "{\"print\":[{\"delay_ms\":1}]}",
		    "print: step 1: neither \"event\" nor \"op\"" },
		{ "{\"print\":[{\"event\":\"a\",\"op\":\"button\"}]}",
		    "print: step 1: both \"event\" and \"op\"" },
		{ "{\"print\":[{\"event\":\"a\",\"bogus\":1}]}",
		    "print: step 1: unknown member \"bogus\"" },
		{ "{\"print\":[{\"event\":\"a\",\"event\":\"b\"}]}",
		    "print: step 1: repeated member \"event\"" },
		{ "{\"print\":[{\"event\":5}]}",
		    "print: step 1: event is not a string" },
		{ "{\"print\":[{\"event\":\"\"}]}",
		    "print: step 1: event is not 1 to 128 bytes long" },
		{ "{\"print\":[{\"event\":\"a\\nb\"}]}",
		    "print: step 1: event has a control character" },
		{ "{\"print\":[{\"op\":true}]}",
		    "print: step 1: op is not a string" },
		{ "{\"print\":[{\"op\":\"event\"}]}",
		    "print: step 1: unknown op \"event\"" },
		{ "{\"print\":[{\"op\":\"launch\"}]}",
		    "print: step 1: unknown op \"launch\"" },
		{ "{\"print\":[{\"op\":\"Download\"}]}",
		    "print: step 1: unknown op \"Download\"" },
		{ "{\"print\":[{\"event\":\"a\",\"extra\":[]}]}",
		    "print: step 1: extra is not an object" },
		{ "{\"print\":[{\"event\":\"a\",\"extra\":\"x\"}]}",
		    "print: step 1: extra is not an object" },
		{ "{\"print\":[{\"event\":\"a\",\"delay_ms\":-1}]}",
		    "print: step 1: delay_ms is not an integer in 0..600000" },
		{ "{\"print\":[{\"event\":\"a\",\"delay_ms\":600001}]}",
		    "print: step 1: delay_ms is not an integer in 0..600000" },
		{ "{\"print\":[{\"event\":\"a\",\"delay_ms\":1.5}]}",
		    "print: step 1: delay_ms is not an integer in 0..600000" },
		{ "{\"print\":[{\"event\":\"a\",\"delay_ms\":\"10\"}]}",
		    "print: step 1: delay_ms is not an integer in 0..600000" },
		{ "{\"print\":[{\"event\":\"a\",\"action_id\":0}]}",
		    "print: step 1: action_id is not true or false" },
		{ "{\"print\":[{\"event\":\"a\",\"report\":\"yes\"}]}",
		    "print: step 1: report is not true or false" },
		{ "{\"print\":[{\"op\":\"download\",\"progress\":1}]}",
		    "print: step 1: progress is not true or false" },
		{ "{\"print\":[{\"op\":\"button\",\"extra\":{}}]}",
		    "print: step 1: extra, action_id and report need an "
		    "event" },
		{ "{\"print\":[{\"op\":\"button\",\"report\":true}]}",
		    "print: step 1: extra, action_id and report need an "
		    "event" },
		{ "{\"print\":[{\"op\":\"upload\",\"progress\":true}]}",
		    "print: step 1: progress needs op \"download\"" },
		{ "{\"print\":[{\"event\":\"a\",\"progress\":false}]}",
		    "print: step 1: progress needs op \"download\"" },
		/* A good action before a bad one: neither is applied. */
		{ "{\"hunt\":[{\"op\":\"refuse\"}],\"motion\":[{\"op\":"
		    "\"button\"},{\"op\":\"download\"},{\"op\":\"x\"}]}",
		    "motion: step 3: unknown op \"x\"" },
	};
	struct seq_table *tb;
	char err[256];
	size_t i;

	(void)state;
	tb = table("2.6");
	for (i = 0; i < nitems(t); i++) {
		memset(err, 0, sizeof(err));
		if (seq_table_load_json(tb, t[i].doc, err, sizeof(err)) == 0)
			fail_msg("row %zu accepted", i);
		if (strcmp(err, t[i].err) != 0)
			fail_msg("row %zu: \"%s\", not \"%s\"", i, err,
			    t[i].err);
		assert_int_equal(seq_find(tb, "hunt")->nsteps, 3);
		assert_int_equal(seq_find(tb, "print")->nsteps, 10);
		assert_null(seq_find(tb, "Print"));
	}
	assert_int_equal(seq_table_load_json(tb, NULL, err, sizeof(err)), -1);
	assert_int_equal(seq_table_load_json(tb, "[]", NULL, 0), -1);
	seq_table_free(tb);
}

/* seq_table_new: the profile name, and the file with its name in front of
 * the loader's message. */
static void
test_table_new(void **state)
{
	char path[] = "/tmp/test_sequence.XXXXXX", err[512], want[600];
	static const char good[] = "{\"hunt\":[{\"op\":\"refuse\"}]}\n";
	static const char bad[] = "{\"hunt\":[{\"op\":\"fly\"}]}";
	struct seq_table *t;
	FILE *fp;
	int fd;

	(void)state;
	assert_null(seq_table_new("3.0", NULL, err, sizeof(err)));
	assert_string_equal(err,
	    "unknown protocol profile \"3.0\" (2.6 or 1.x)");
	assert_null(seq_table_new("", NULL, NULL, 0));

	fd = mkstemp(path);
	assert_true(fd != -1);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	fputs(good, fp);
	fclose(fp);
	t = seq_table_new("1.x", path, err, sizeof(err));
	if (t == NULL)
		fail_msg("%s", err);
	assert_int_equal(seq_find(t, "hunt")->nsteps, 1);
	assert_int_equal(seq_find(t, "hunt")->steps[0].op, SEQ_REFUSE);
	assert_int_equal(seq_find(t, "print")->nsteps, 31);	/* 1.x kept */
	seq_table_free(t);

	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(bad, fp);
	fclose(fp);
	assert_null(seq_table_new("2.6", path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: hunt: step 1: unknown op \"fly\"",
	    path);
	assert_string_equal(err, want);

	/* A NUL in the file is not silently the end of it. */
	fp = fopen(path, "w");
	assert_non_null(fp);
	fwrite("{}\0{", 1, 4, fp);
	fclose(fp);
	assert_null(seq_table_new("2.6", path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: NUL byte in the file", path);
	assert_string_equal(err, want);

	unlink(path);
	assert_null(seq_table_new("2.6", path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);
	seq_table_free(NULL);
}

/* --- placeholders --- */

static void
test_event_name(void **state)
{
	static const struct {
		const char	*pattern;
		const char	*type;
		size_t		 buflen;
		const char	*want;
	} t[] = {
		{ "{type}:starting", "lid_image", 64, "lid_image:starting" },
		{ "{type}:{type}", "ab", 64, "ab:ab" },
		{ "print:running", "lid_image", 64, "print:running" },
		{ "{type}", "hunt", 64, "hunt" },
		{ "", "hunt", 64, "" },
		{ "{type}:x", NULL, 64, ":x" },
		{ "{typ}:{type", "x", 64, "{typ}:{type" },
		{ "{{type}}", "x", 64, "{x}" },
		/* Cut, always terminated. */
		{ "{type}:starting", "lid_image", 10, "lid_image" },
		{ "{type}:starting", "lid_image", 5, "lid_" },
		{ "{type}:starting", "lid_image", 12, "lid_image:s" },
		{ "abc", "x", 1, "" },
		{ "abc", "x", 3, "ab" },
	};
	char buf[64];
	size_t i;

	(void)state;
	for (i = 0; i < nitems(t); i++) {
		memset(buf, 'Z', sizeof(buf));
		assert_ptr_equal(seq_event_name(t[i].pattern, t[i].type, buf,
		    t[i].buflen), buf);
		assert_string_equal(buf, t[i].want);
		/* Nothing written past buflen. */
		if (t[i].buflen < sizeof(buf))
			assert_int_equal(buf[t[i].buflen], 'Z');
	}
	buf[0] = 'Z';
	assert_ptr_equal(seq_event_name("x", "y", buf, 0), buf);
	assert_int_equal(buf[0], 'Z');
}

static void
test_expand(void **state)
{
	static const struct {
		const char	*pattern;
		const char	*type;
		const char	*url;
		const char	*want;
	} t[] = {
		{ "downloading pulse data from {url}", "print",
		    "https://x.example/a.puls",
		    "downloading pulse data from https://x.example/a.puls" },
		{ "{type}:{url}:{type}", "a", "b", "a:b:a" },
		{ "{url}", NULL, NULL, "" },
		{ "{url", "a", "b", "{url" },
		{ "plain", "a", "b", "plain" },
		{ "", "a", "b", "" },
	};
	cJSON *extra, *x;
	size_t i;
	char *s;

	(void)state;
	for (i = 0; i < nitems(t); i++) {
		s = seq_expand(t[i].pattern, t[i].type, t[i].url);
		assert_non_null(s);
		assert_string_equal(s, t[i].want);
		free(s);
	}

	extra = cJSON_Parse("{\"log\":\"from {url}\",\"n\":1,"
	    "\"deep\":{\"t\":[\"{type}\",\"longer than {type}\"]}}");
	assert_non_null(extra);
	x = seq_extra_expand(extra, "print", "http://u");
	assert_non_null(x);
	s = cJSON_PrintUnformatted(x);
	assert_string_equal(s, "{\"log\":\"from http://u\",\"n\":1,"
	    "\"deep\":{\"t\":[\"print\",\"longer than print\"]}}");
	free(s);
	cJSON_Delete(x);
	/* The step's own extra is left alone. */
	s = cJSON_PrintUnformatted(extra);
	assert_string_equal(s, "{\"log\":\"from {url}\",\"n\":1,"
	    "\"deep\":{\"t\":[\"{type}\",\"longer than {type}\"]}}");
	free(s);
	cJSON_Delete(extra);
	assert_null(seq_extra_expand(NULL, "a", "b"));

	assert_string_equal(seq_op_name(SEQ_DOWNLOAD), "download");
	assert_string_equal(seq_op_name(SEQ_REFUSE), "refuse");
	assert_string_equal(seq_op_name((enum seq_op)99), "?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_profiles_complete),
		cmocka_unit_test(test_26_is_the_table),
		cmocka_unit_test(test_26_ops),
		cmocka_unit_test(test_camera_shared),
		cmocka_unit_test(test_1x),
		cmocka_unit_test(test_override),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_table_new),
		cmocka_unit_test(test_event_name),
		cmocka_unit_test(test_expand),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
