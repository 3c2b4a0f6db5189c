/*
 * Unit tests for the step runner (dispatch.c) on a fake clock (issue 10,
 * section 5): each case is a table row saying what the service does and
 * when (send, cancel, press the button, shut down, at t ms) and which
 * events must come out, each at its exact time, in order, and nothing
 * else.  No real time passes: an hour's wait takes microseconds.
 *
 * The fake clock.  The runner's waits are libuv timers, due at the loop's
 * time plus their delay; libuv reads that time with clock_gettime(3)
 * (CLOCK_MONOTONIC or _COARSE) in uv_update_time() at the start of each
 * turn.  This program defines clock_gettime() itself, and the dynamic
 * linker binds libuv's (and lws', and curl's) calls to it, as LD_PRELOAD
 * would: the monotonic clocks read fake_ms, other clocks go to the kernel.
 * Nothing in src/ changes.  The test turns the loop itself with
 * UV_RUN_NOWAIT (never blocking in epoll on a fake timeout) and moves the
 * clock straight to the next op or the next due timer
 * (uv_backend_timeout()), so every event is stamped with the fake time
 * at which it was queued.  At a given time, the timers due then run
 * first, then the table's ops of that time.
 *
 * Teardown lets the clock run (real time, on from the fake one): lws and
 * evloop close their handles on timers of their own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "cloud.h"
#include "config.h"
#include "dispatch.h"
#include "event.h"
#include "evloop.h"
#include "queue.h"
#include "sequence.h"

/* ---- the fake clock ---------------------------------------------------- */

#define FAKE_BASE_NS	(1000ULL * 1000000000ULL)	/* its zero: 1000 s */

static int64_t		 fake_ms;	/* the test's time */
static int64_t		 fake_creep_ms;	/* the ms fake_creep_us is in */
static uint64_t		 fake_creep_us;	/* us past fake_ms, < 1000 */
static int		 fake_running;	/* teardown: real time goes on */
static struct timespec	 fake_run_since;	/* real, when it started */

static int
real_clock(clockid_t id, struct timespec *ts)
{
	return (int)syscall(SYS_clock_gettime, id, ts);
}

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	struct timespec now;
	uint64_t ns;

	if (id != CLOCK_MONOTONIC && id != CLOCK_MONOTONIC_COARSE &&
	    id != CLOCK_MONOTONIC_RAW && id != CLOCK_BOOTTIME)
		return real_clock(id, ts);
	/* Within the millisecond, time creeps by a microsecond a read: a
	 * timer due a fraction of a millisecond ahead (lws and curl keep
	 * microseconds; libuv sleeps in whole ones) ripens, as it would,
	 * while libuv's time, in milliseconds, stays put. */
	if (fake_creep_ms != fake_ms) {
		fake_creep_ms = fake_ms;
		fake_creep_us = 0;
	} else if (fake_creep_us < 999)
		fake_creep_us++;
	ns = FAKE_BASE_NS + (uint64_t)fake_ms * 1000000ULL +
	    fake_creep_us * 1000ULL;
	if (fake_running && real_clock(CLOCK_MONOTONIC, &now) == 0)
		ns += (uint64_t)((now.tv_sec - fake_run_since.tv_sec) *
		    1000000000LL + (now.tv_nsec - fake_run_since.tv_nsec));
	ts->tv_sec = (time_t)(ns / 1000000000ULL);
	ts->tv_nsec = (long)(ns % 1000000000ULL);
	return 0;
}

/* ---- the rig: one dispatcher on an evloop, a fresh one per case ----- */

struct rig {
	struct config		 cf;
	struct cloud		*cloud;
	struct seq_table	*seq;
	struct evloop		*ev;
	struct queue		*tx;
	struct dispatch		*d;
	int			 stopped;	/* dispatch_stop() called */
};

/* An event as it came out: when, for which action. */
struct got {
	int64_t		 at;		/* ms, fake */
	long		 id;
	char		 event[64];
};

#define GOT_MAX		32

static struct got	 got[GOT_MAX];
static size_t		 ngot;

static struct rig *
rig_new(const char *seq_json, double button_s, double warm_s, double cool_s)
{
	struct rig *r = calloc(1, sizeof(*r));
	char err[256];

	assert_non_null(r);
	/* The fields a job reads; no network is used. */
	r->cf.serial = (char *)"12345678";
	r->cf.password = (char *)"x";
	r->cf.server_url = (char *)"http://127.0.0.1:9";
	r->cf.button_press_delay = button_s;
	r->cf.warm_up_delay = warm_s;
	r->cf.cool_down_delay = cool_s;
	if ((r->cloud = cloud_new(&r->cf)) == NULL ||
	    (r->seq = seq_table_new("2.6", NULL, err, sizeof(err))) == NULL ||
	    seq_table_load_json(r->seq, seq_json, err, sizeof(err)) != 0 ||
	    (r->ev = evloop_new(r, 0)) == NULL ||
	    (r->tx = queue_new(100, 0, NULL, NULL)) == NULL ||
	    (r->d = dispatch_new(&r->cf, r->cloud, r->seq, r->ev,
	    r->tx, NULL)) == NULL)
		fail_msg("rig: %s", err);
	return r;
}

static void
rig_free(struct rig *r)
{
	if (!r->stopped)
		dispatch_stop(r->d, NULL, NULL);
	fake_running = 1;
	real_clock(CLOCK_MONOTONIC, &fake_run_since);
	evloop_stop(r->ev);
	assert_int_equal(evloop_run(r->ev), 0);
	assert_int_equal(dispatch_jobs(r->d), 0);
	dispatch_free(r->d);
	evloop_free(r->ev);
	queue_free(r->tx);
	seq_table_free(r->seq);
	cloud_free(r->cloud);
	free(r);
	fake_running = 0;
}

/* Every queued frame that is an event, stamped with the time now. */
static void
rig_drain(struct rig *r)
{
	const cJSON *ev, *aid;
	cJSON *f;
	size_t len;
	char *s;

	while ((s = queue_pop(r->tx, &len, NULL)) != NULL) {
		f = cJSON_ParseWithLength(s, len);
		ev = cJSON_GetObjectItemCaseSensitive(f, "event");
		aid = cJSON_GetObjectItemCaseSensitive(f, "action_id");
		if (cJSON_IsString(ev)) {
			if (ngot == GOT_MAX)
				fail_msg("more than %d events", GOT_MAX);
			got[ngot].at = fake_ms;
			got[ngot].id = cJSON_IsNumber(aid) ?
			    (long)aid->valuedouble : -1;
			snprintf(got[ngot].event, sizeof(got[0].event), "%s",
			    ev->valuestring);
			ngot++;
		}
		cJSON_Delete(f);
		free(s);
	}
}

/* Runs what is due at the time now: turns until no timer, close or
 * pending callback is left for now (a 0 ms wake queues the next). */
static void
rig_settle(struct rig *r)
{
	uv_loop_t *loop = evloop_uv(r->ev);
	int turns;

	for (turns = 0; turns < 1000; turns++) {
		uv_run(loop, UV_RUN_NOWAIT);
		rig_drain(r);
		if (uv_backend_timeout(loop) != 0)
			return;
	}
	fail_msg("the loop never settles at t=%lld ms", (long long)fake_ms);
}

/* ---- the cases ---------------------------------------------------------- */

enum op { END, SEND, CANCEL, PRESS, STOP };

struct tc_op {
	int64_t		 at;		/* ms */
	enum op		 op;
	long		 id;		/* SEND, CANCEL */
	const char	*type;		/* SEND, CANCEL */
};

struct tc_event {
	int64_t		 at;		/* ms */
	long		 id;
	const char	*event;		/* NULL: the end of the list */
};

struct test_case {
	const char	*name;
	const char	*seq;		/* sequences file (JSON) */
	double		 button_s, warm_s, cool_s;	/* [EMULATOR] */
	int64_t		 until;		/* ms: the clock stops there */
	struct tc_op	 ops[6];
	struct tc_event	 want[10];
};

/* Events with delays before them (ms), on the service lane. */
#define SEQ_DELAYS "{\"settings\": [{\"event\": \"settings:a\"}," \
    " {\"event\": \"settings:b\", \"delay_ms\": 250}," \
    " {\"event\": \"settings:completed\", \"delay_ms\": 1000}]}"
/* A print without its download: the button, a warm-up, a cool-down. */
#define SEQ_PRINT "{\"print\": [{\"event\": \"print:starting\"}," \
    " {\"op\": \"button\"}, {\"event\": \"print:warmup:starting\"}," \
    " {\"op\": \"warmup\"}, {\"event\": \"print:running\"}," \
    " {\"op\": \"cooldown\"}, {\"event\": \"print:cooled\"}]}"
/* A step ten minutes after the terminal event (1.x, trailing-delay). */
#define SEQ_TRAILING "{\"print\": [{\"event\": \"print:starting\"}," \
    " {\"op\": \"button\"}, {\"event\": \"print:completed\"}," \
    " {\"event\": \"print:reset\", \"delay_ms\": 600000}]}"

static const struct test_case tcs[] = {
	{ "delays before steps", SEQ_DELAYS, 0, 0, 0, 5000,
	    { { 0, SEND, 1, "settings" } },
	    { { 0, 1, "settings:a" }, { 250, 1, "settings:b" },
	      { 1250, 1, "settings:completed" } } },
	{ "a cancel ends a step's delay at once", SEQ_DELAYS, 0, 0, 0, 5000,
	    { { 0, SEND, 1, "settings" }, { 600, CANCEL, 1, "settings" } },
	    { { 0, 1, "settings:a" }, { 250, 1, "settings:b" },
	      { 600, 1, "settings:cancelled" } } },
	{ "a cancel at a delay's end: the step ran first", SEQ_DELAYS,
	    0, 0, 0, 5000,
	    { { 0, SEND, 1, "settings" }, { 250, CANCEL, 1, "settings" } },
	    { { 0, 1, "settings:a" }, { 250, 1, "settings:b" },
	      { 250, 1, "settings:cancelled" } } },
	{ "a held service action starts at the terminal", SEQ_DELAYS,
	    0, 0, 0, 5000,
	    { { 0, SEND, 1, "settings" }, { 100, SEND, 2, "settings" } },
	    { { 0, 1, "settings:a" }, { 250, 1, "settings:b" },
	      { 1250, 1, "settings:completed" }, { 1250, 2, "settings:a" },
	      { 1500, 2, "settings:b" },
	      { 2500, 2, "settings:completed" } } },
	{ "the button's delay, warm-up, cool-down run out", SEQ_PRINT,
	    2, 3, 0.5, 10000,
	    { { 0, SEND, 7, "print" } },
	    { { 0, 7, "print:starting" }, { 2000, 7, "print:warmup:starting" },
	      { 5000, 7, "print:running" }, { 5500, 7, "print:cooled" },
	      { 5500, 7, "print:completed" } } },
	{ "a press ends the button's wait", SEQ_PRINT, 3600, 3, 0.5, 10000,
	    { { 0, SEND, 7, "print" }, { 700, PRESS, 0, NULL } },
	    { { 0, 7, "print:starting" }, { 700, 7, "print:warmup:starting" },
	      { 3700, 7, "print:running" }, { 4200, 7, "print:cooled" },
	      { 4200, 7, "print:completed" } } },
	{ "a press before the job does not count", SEQ_PRINT, 3, 1, 0, 5000,
	    { { 0, PRESS, 0, NULL }, { 10, SEND, 7, "print" } },
	    { { 10, 7, "print:starting" }, { 3010, 7, "print:warmup:starting" },
	      { 4010, 7, "print:running" }, { 4010, 7, "print:cooled" },
	      { 4010, 7, "print:completed" } } },
	{ "a cancel ends the warm-up", SEQ_PRINT, 1, 3600, 0, 10000,
	    { { 0, SEND, 7, "print" }, { 2500, CANCEL, 7, "print" } },
	    { { 0, 7, "print:starting" }, { 1000, 7, "print:warmup:starting" },
	      { 2500, 7, "print:cancelled" } } },
	{ "a busy machine lane starts nothing", SEQ_PRINT, 3600, 0, 0, 5000,
	    { { 0, SEND, 7, "print" }, { 100, SEND, 8, "print" },
	      { 200, CANCEL, 7, "print" } },
	    { { 0, 7, "print:starting" }, { 200, 7, "print:cancelled" } } },
	{ "shutdown ends a running job with its terminal", SEQ_PRINT,
	    3600, 0, 0, 5000,
	    { { 0, SEND, 7, "print" }, { 1500, STOP, 0, NULL } },
	    { { 0, 7, "print:starting" }, { 1500, 7, "print:cancelled" } } },
	{ "a step after the terminal: the next action is not held",
	    SEQ_TRAILING, 1, 0, 0, 700000,
	    { { 0, SEND, 7, "print" }, { 2000, CANCEL, 7, "print" },
	      { 3000, SEND, 8, "print" } },
	    { { 0, 7, "print:starting" }, { 1000, 7, "print:completed" },
	      { 3000, 8, "print:starting" }, { 4000, 8, "print:completed" },
	      { 601000, 7, "print:reset" }, { 604000, 8, "print:reset" } } },
};

static void
do_op(struct rig *r, const struct tc_op *o)
{
	char line[200];

	switch (o->op) {
	case END:
		break;
	case SEND:
	case CANCEL:
		snprintf(line, sizeof(line), "{\"id\":%ld,\"action_type\":"
		    "\"%s\",\"machine_serial\":\"S12345678\",\"status\":"
		    "\"%s\"}", o->id, o->type, o->op == SEND ? "ready" :
		    "cancelled");
		dispatch_line(r->d, line, strlen(line));
		break;
	case PRESS:
		dispatch_press_button(r->d);
		break;
	case STOP:
		dispatch_stop(r->d, NULL, NULL);
		r->stopped = 1;
		break;
	}
}

/* Runs the case on the fake clock until tc->until. */
static void
run_case(const struct test_case *tc)
{
	struct rig *r;
	const struct tc_op *o;
	int64_t next, due;
	size_t k;

	ngot = 0;
	fake_ms = 0;
	r = rig_new(tc->seq, tc->button_s, tc->warm_s, tc->cool_s);
	for (;;) {
		rig_settle(r);
		for (k = 0; k < 6 && (o = &tc->ops[k])->op != END; k++)
			if (o->at == fake_ms) {
				do_op(r, o);
				rig_settle(r);
			}
		if (fake_ms >= tc->until)
			break;
		next = tc->until;
		for (k = 0; k < 6 && (o = &tc->ops[k])->op != END; k++)
			if (o->at > fake_ms && o->at < next)
				next = o->at;
		due = uv_backend_timeout(evloop_uv(r->ev));
		if (due > 0 && fake_ms + due < next)
			next = fake_ms + due;
		fake_ms = next;
	}
	rig_free(r);
}

static void
test_step_runner(void **state)
{
	const struct test_case *tc;
	const struct tc_event *w;
	size_t i, k, nwant;
	int bad;

	(void)state;
	event_init();
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++) {
		tc = &tcs[i];
		run_case(tc);
		for (nwant = 0; nwant < 10 && tc->want[nwant].event != NULL;
		    nwant++)
			;
		bad = ngot != nwant;
		for (k = 0; k < nwant && k < ngot; k++) {
			w = &tc->want[k];
			if (got[k].at != w->at || got[k].id != w->id ||
			    strcmp(got[k].event, w->event) != 0)
				bad = 1;
		}
		if (!bad)
			continue;
		print_error("case \"%s\": got\n", tc->name);
		for (k = 0; k < ngot; k++)
			print_error("  t=%lld %ld %s\n", (long long)got[k].at,
			    got[k].id, got[k].event);
		print_error("expected\n");
		for (k = 0; k < nwant; k++)
			print_error("  t=%lld %ld %s\n",
			    (long long)tc->want[k].at, tc->want[k].id,
			    tc->want[k].event);
		fail_msg("case \"%s\"", tc->name);
	}
}

/* The seam itself: libuv's clock is the fake one. */
static void
test_fake_clock(void **state)
{
	uv_loop_t loop;

	(void)state;
	fake_ms = 0;
	assert_int_equal(uv_loop_init(&loop), 0);
	fake_ms = 123456;
	uv_update_time(&loop);
	assert_int_equal(uv_now(&loop), FAKE_BASE_NS / 1000000 + 123456);
	assert_int_equal(uv_loop_close(&loop), 0);
	fake_ms = 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fake_clock),
		cmocka_unit_test(test_step_runner),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
