/*
 * test_event: the machine -> service frames of PROTOCOL.md 4.2: key order,
 * the shared id counter (across kinds and threads), action_id, extras.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"

#define NTHREADS	4
#define NFRAMES		1000

/* Parses a frame, checking the "\n" framing; the caller cJSON_Delete()s. */
static cJSON *
parse_frame(const char *s)
{
	size_t n;
	cJSON *o;

	assert_non_null(s);
	n = strlen(s);
	assert_true(n > 2);
	assert_int_equal(s[n - 1], '\n');
	assert_null(memchr(s, '\n', n - 1));	/* one line, unformatted */
	o = cJSON_Parse(s);
	assert_non_null(o);
	assert_true(cJSON_IsObject(o));
	return o;
}

static void
assert_keys(const cJSON *o, const char *const *keys)
{
	const cJSON *c;
	size_t i = 0;

	cJSON_ArrayForEach(c, o) {
		assert_non_null(keys[i]);
		assert_string_equal(c->string, keys[i]);
		i++;
	}
	assert_null(keys[i]);
}

static int64_t
get_int(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	assert_true(cJSON_IsNumber(v));
	return (int64_t)v->valuedouble;
}

static const char *
get_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	assert_true(cJSON_IsString(v));
	return v->valuestring;
}

static int
setup(void **state)
{
	(void)state;
	event_init();
	return 0;
}

/* The three kinds, with the key order of the captures in 4.2. */
static void
test_shapes(void **state)
{
	static const char *const ev_keys[] = { "id", "timestamp", "type",
	    "version", "action_id", "level", "event", NULL };
	static const char *const ev_noaction_keys[] = { "id", "timestamp",
	    "type", "version", "level", "event", NULL };
	static const char *const log_keys[] = { "id", "timestamp", "type",
	    "version", "log", "level", NULL };
	static const char *const prog_keys[] = { "id", "timestamp", "type",
	    "version", "action_id", "progress", "current", "units", "total",
	    NULL };
	static const struct {
		int		 kind;	/* 0 event, 1 no action, 2 log, 3 progress */
		const char	*type;
		const char *const *keys;
	} t[] = {
		{ 0, "event", ev_keys },
		{ 1, "event", ev_noaction_keys },
		{ 2, "log", log_keys },
		{ 3, "progress", prog_keys },
	};
	size_t i;
	char *s = NULL;
	cJSON *o;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		switch (t[i].kind) {
		case 0:
			s = event_frame(3116308, "lid_image:starting", NULL);
			break;
		case 1:
			s = event_frame(EVENT_NO_ACTION, "estop:activated",
			    NULL);
			break;
		case 2:
			s = event_log_frame("INFO", "hw: clearing pulse data");
			break;
		case 3:
			s = event_progress_frame(3116308, "print:download",
			    1024, 20454, "bytes");
			break;
		}
		o = parse_frame(s);
		assert_keys(o, t[i].keys);
		assert_string_equal(get_str(o, "type"), t[i].type);
		assert_int_equal(get_int(o, "version"), 1);
		assert_true(get_int(o, "timestamp") >= 3800);
		assert_true(get_int(o, "id") >= 32);
		cJSON_Delete(o);
		free(s);
	}
}

static void
test_values(void **state)
{
	cJSON *o;
	char *s;

	(void)state;
	s = event_frame(3116308, "lid_image:starting", NULL);
	o = parse_frame(s);
	assert_int_equal(get_int(o, "action_id"), 3116308);
	assert_string_equal(get_str(o, "level"), "INFO");
	assert_string_equal(get_str(o, "event"), "lid_image:starting");
	cJSON_Delete(o);
	free(s);

	s = event_log_frame("WARNING", "a \"quoted\"\tmessage");
	o = parse_frame(s);
	assert_string_equal(get_str(o, "log"), "a \"quoted\"\tmessage");
	assert_string_equal(get_str(o, "level"), "WARNING");
	cJSON_Delete(o);
	free(s);

	/* Byte counts are printed from the integers, exact past 2^53. */
	s = event_progress_frame(7, "print:download", 9007199254740993ULL,
	    UINT64_MAX, "bytes");
	assert_non_null(strstr(s, "\"current\":9007199254740993,"));
	assert_non_null(strstr(s, "\"total\":18446744073709551615}"));
	o = parse_frame(s);
	assert_string_equal(get_str(o, "progress"), "print:download");
	assert_string_equal(get_str(o, "units"), "bytes");
	cJSON_Delete(o);
	free(s);

	/* Required names missing: nothing to send. */
	assert_null(event_frame(1, NULL, NULL));
	assert_null(event_progress_frame(1, NULL, 0, 0, "bytes"));
}

/* Extras ride along; the frame's identity is not theirs to change. */
static void
test_extra(void **state)
{
	static const struct {
		const char	*extra;		/* JSON */
		int64_t		 action;
		const char	*key;		/* checked in the output */
		const char	*want;		/* its JSON text, NULL: absent */
	} t[] = {
		{ "{\"log\":\"state=ready\"}", 5, "log", "\"state=ready\"" },
		{ "{\"settings\":{\"values\":{\"SAid\":5,\"MCsn\":1}}}", 5,
		    "settings", "{\"values\":{\"SAid\":5,\"MCsn\":1}}" },
		{ "{\"settings\":{}}", 5, "settings", "{}" },
		{ "{\"event\":\"evil\"}", 5, "event", "\"x:y\"" },
		{ "{\"id\":1}", 5, "type", "\"event\"" },
		{ "{\"type\":\"log\"}", 5, "type", "\"event\"" },
		{ "{\"version\":2}", 5, "version", "1" },
		{ "{\"timestamp\":0}", 5, "version", "1" },
		{ "{\"action_id\":9}", 5, "action_id", "5" },
		{ "{\"action_id\":9}", EVENT_NO_ACTION, "action_id", NULL },
		{ "{\"level\":\"WARNING\"}", 5, "level", "\"WARNING\"" },
		{ "[1,2]", 5, "event", "\"x:y\"" },	/* not an object */
		{ "{}", 5, "event", "\"x:y\"" },
	};
	size_t i;
	cJSON *extra, *o, *v, *id;
	char *s, *txt, *before;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		extra = cJSON_Parse(t[i].extra);
		assert_non_null(extra);
		before = cJSON_PrintUnformatted(extra);
		s = event_frame(t[i].action, "x:y", extra);
		o = parse_frame(s);
		v = cJSON_GetObjectItemCaseSensitive(o, t[i].key);
		if (t[i].want == NULL)
			assert_null(v);
		else {
			assert_non_null(v);
			txt = cJSON_PrintUnformatted(v);
			assert_string_equal(txt, t[i].want);
			free(txt);
		}
		/* Never a repeated key, the id always the counter's. */
		id = cJSON_GetObjectItemCaseSensitive(o, "id");
		assert_true(id->valuedouble >= 32);
		assert_int_equal(cJSON_GetArraySize(o),
		    (t[i].action == EVENT_NO_ACTION ? 6 : 7) +
		    (strcmp(t[i].key, "log") == 0 ||
		    strcmp(t[i].key, "settings") == 0));
		/* The extra is copied, never taken or changed. */
		txt = cJSON_PrintUnformatted(extra);
		assert_string_equal(txt, before);
		free(txt);
		free(before);
		cJSON_Delete(extra);
		cJSON_Delete(o);
		free(s);
	}
}

/* One counter for every kind: each frame's id is the last one's plus one
 * (single thread), the timestamp never goes back. */
static void
test_ids_across_kinds(void **state)
{
	int64_t id, prev = -1, ts, prevts = 0;
	char *s = NULL;
	cJSON *o;
	int i;

	(void)state;
	for (i = 0; i < 30; i++) {
		switch (i % 3) {
		case 0:
			s = event_frame(i, "a:b", NULL);
			break;
		case 1:
			s = event_log_frame("INFO", "m");
			break;
		case 2:
			s = event_progress_frame(i, "p", 1, 2, "bytes");
			break;
		}
		o = parse_frame(s);
		id = get_int(o, "id");
		ts = get_int(o, "timestamp");
		if (prev != -1)
			assert_int_equal(id, prev + 1);
		assert_true(ts >= prevts);
		prev = id;
		prevts = ts;
		cJSON_Delete(o);
		free(s);
	}
}

static void
test_timestamp_moves(void **state)
{
	struct timespec nap = { 0, 50 * 1000 * 1000 };
	int64_t t0, t1;
	cJSON *o;
	char *s;

	(void)state;
	s = event_log_frame("INFO", "t0");
	o = parse_frame(s);
	t0 = get_int(o, "timestamp");
	cJSON_Delete(o);
	free(s);
	nanosleep(&nap, NULL);
	s = event_log_frame("INFO", "t1");
	o = parse_frame(s);
	t1 = get_int(o, "timestamp");
	cJSON_Delete(o);
	free(s);
	/* nanosleep sleeps at least 50 ms, which is 5 cs; allow for the
	 * clock's rounding.  No upper bound: a loaded machine may stall. */
	assert_true(t1 - t0 >= 4);
}

struct worker {
	int	 kind;
	int64_t	 ids[NFRAMES];
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	char *s = NULL, *p;
	int i;

	for (i = 0; i < NFRAMES; i++) {
		switch (w->kind) {
		case 0:
			s = event_frame(i + 1, "print:running", NULL);
			break;
		case 1:
			s = event_log_frame("INFO", "worker");
			break;
		default:
			s = event_progress_frame(i + 1, "print:download",
			    (uint64_t)i, NFRAMES, "bytes");
			break;
		}
		/* "{"id":N,...": read N without a parser (cmocka's asserts
		 * are not for threads). */
		w->ids[i] = -1;
		if (s != NULL && strncmp(s, "{\"id\":", 6) == 0)
			w->ids[i] = strtoll(s + 6, &p, 10);
		free(s);
	}
	return NULL;
}

static int
cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void
test_ids_threads(void **state)
{
	static struct worker w[NTHREADS];
	static int64_t all[NTHREADS * NFRAMES];
	pthread_t th[NTHREADS];
	size_t i, j, n = 0;

	(void)state;
	for (i = 0; i < NTHREADS; i++) {
		w[i].kind = (int)(i % 3);
		assert_int_equal(pthread_create(&th[i], NULL, worker_run,
		    &w[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (i = 0; i < NTHREADS; i++) {
		for (j = 0; j < NFRAMES; j++) {
			assert_true(w[i].ids[j] >= 32);
			/* Each thread sees its own ids rise. */
			if (j > 0)
				assert_true(w[i].ids[j] > w[i].ids[j - 1]);
			all[n++] = w[i].ids[j];
		}
	}
	qsort(all, n, sizeof(all[0]), cmp_id);
	for (i = 1; i < n; i++)
		assert_true(all[i] > all[i - 1]);
	/* And none went missing: the counter is dense. */
	assert_int_equal(all[n - 1] - all[0], (int64_t)n - 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_extra),
		cmocka_unit_test(test_ids_across_kinds),
		cmocka_unit_test(test_timestamp_moves),
		cmocka_unit_test(test_ids_threads),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
