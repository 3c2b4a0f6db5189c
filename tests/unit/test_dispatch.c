/*
 * Unit tests for dispatch.c: an action whose job cannot start (its
 * allocation fails) still ends with exactly one terminal event,
 * "<type>:failed", and the lane stays free for the next action; an action
 * id is started once, however often it comes "ready"; a job waiting for
 * the button ends at a press, or with one ":cancelled" at a cancel.
 *
 * The dispatcher runs on an evloop that the test turns itself
 * (UV_RUN_ONCE until the next frame is queued): one thread, no sleeps.
 *
 * Linked with -Wl,--wrap=calloc: the wrapper below fails the next call
 * from the thread that armed it.  Between dispatch_line() and the job's calloc() nothing
 * else calls calloc() (frame.c and cJSON do not), so the failure lands on
 * the job.  Should that change, the event check fails rather than passing
 * by chance.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "cloud.h"
#include "config.h"
#include "dispatch.h"
#include "event.h"
#include "evloop.h"
#include "queue.h"
#include "sequence.h"

void	*__real_calloc(size_t, size_t);
void	*__wrap_calloc(size_t, size_t);

static atomic_int	 fail_calloc;
static pthread_t	 calloc_thread;

void *
__wrap_calloc(size_t n, size_t size)
{
	if (atomic_load(&fail_calloc) &&
	    pthread_equal(pthread_self(), calloc_thread) &&
	    atomic_exchange(&fail_calloc, 0)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_calloc(n, size);
}

struct rig {
	struct config		 cf;
	struct cloud		*cloud;
	struct seq_table	*seq;
	struct evloop		*ev;
	struct queue		*tx;
	struct dispatch		*d;
};

static int
rig_setup(void **state)
{
	struct rig *r = calloc(1, sizeof(*r));
	char err[256];

	if (r == NULL)
		return -1;
	event_init();
	/* The fields a settings action reads; no network is used. */
	r->cf.serial = (char *)"12345678";
	r->cf.password = (char *)"x";
	r->cf.server_url = (char *)"http://127.0.0.1:9";
	if ((r->cloud = cloud_new(&r->cf)) == NULL ||
	    (r->seq = seq_table_new("2.6", NULL, err, sizeof(err))) == NULL ||
	    (r->ev = evloop_new(r, 0)) == NULL ||
	    (r->tx = queue_new(100, 0, NULL, NULL)) == NULL ||
	    (r->d = dispatch_new(&r->cf, r->cloud, r->seq, r->ev,
	    r->tx, NULL)) == NULL)
		return -1;
	*state = r;
	return 0;
}

static int
rig_teardown(void **state)
{
	struct rig *r = *state;

	dispatch_stop(r->d, NULL, NULL);
	/* The cancelled jobs end, their timers close; then the loop. */
	evloop_stop(r->ev);
	assert_int_equal(evloop_run(r->ev), 0);
	assert_int_equal(dispatch_jobs(r->d), 0);
	dispatch_free(r->d);
	evloop_free(r->ev);
	queue_free(r->tx);
	seq_table_free(r->seq);
	cloud_free(r->cloud);
	free(r);
	return 0;
}

static void
send_action(struct rig *r, long id, const char *type)
{
	char line[160];

	snprintf(line, sizeof(line), "{\"id\":%ld,\"action_type\":\"%s\","
	    "\"machine_serial\":\"S12345678\",\"status\":\"ready\"}", id,
	    type);
	dispatch_line(r->d, line, strlen(line));
}

/* The next frame on tx (waiting up to 10 s) must be this event. */
static void
expect_event(struct rig *r, long id, const char *event)
{
	const cJSON *ev, *aid;
	cJSON *f;
	size_t len;
	char *s;
	int turns = 0;

	/* Turns of the loop, not time: the waits that end here end at
	 * once (a 0 ms timer, a wake); NOWAIT, since ONCE would then sit in
	 * poll until lws' next timer.  A wait that does not end fails. */
	while ((s = queue_pop(r->tx, &len, NULL)) == NULL && turns++ < 1000)
		uv_run(evloop_uv(r->ev), UV_RUN_NOWAIT);
	if (s == NULL)
		fail_msg("no frame; expected %s for %ld", event, id);
	f = cJSON_ParseWithLength(s, len);
	ev = cJSON_GetObjectItemCaseSensitive(f, "event");
	aid = cJSON_GetObjectItemCaseSensitive(f, "action_id");
	if (!cJSON_IsString(ev) || strcmp(ev->valuestring, event) != 0 ||
	    !cJSON_IsNumber(aid) || (long)aid->valuedouble != id)
		fail_msg("got %s; expected %s for %ld", s, event, id);
	cJSON_Delete(f);
	free(s);
}

static void
test_calloc_fails(void **state)
{
	struct rig *r = *state;

	calloc_thread = pthread_self();
	atomic_store(&fail_calloc, 1);
	send_action(r, 9, "settings");
	assert_int_equal(atomic_load(&fail_calloc), 0);
	assert_int_equal(queue_len(r->tx), 1);
	expect_event(r, 9, "settings:failed");
	send_action(r, 10, "settings");
	expect_event(r, 10, "settings:completed");
	assert_int_equal(queue_len(r->tx), 0);
}

/* A machine-lane job (the download would need a server: it has no
 * motion_url, so it fails at once; what counts is the launch). */
static void
test_machine_lane(void **state)
{
	struct rig *r = *state;

	calloc_thread = pthread_self();
	atomic_store(&fail_calloc, 1);
	send_action(r, 11, "motion");
	assert_int_equal(queue_len(r->tx), 1);
	expect_event(r, 11, "motion:failed");
	calloc_thread = pthread_self();
	atomic_store(&fail_calloc, 1);
	send_action(r, 12, "hunt");
	assert_int_equal(queue_len(r->tx), 1);
	expect_event(r, 12, "hunt:failed");
	send_action(r, 13, "motion");
	expect_event(r, 13, "motion:starting");
	expect_event(r, 13, "motion:failed");
}

/* PROTOCOL.md 4.3: an id starts once.  A repeated "ready", in the same
 * frame or after the job ended, gets no second run and no event. */
static void
test_repeated_ready(void **state)
{
	struct rig *r = *state;

	send_action(r, 20, "settings");
	send_action(r, 20, "settings");		/* the same frame: held */
	expect_event(r, 20, "settings:completed");
	send_action(r, 20, "settings");		/* after it ended */
	send_action(r, 21, "settings");
	/* Nothing for 20 in between: the next frame is 21's. */
	expect_event(r, 21, "settings:completed");
	send_action(r, 22, "motion");		/* fails: no motion_url */
	expect_event(r, 22, "motion:starting");
	expect_event(r, 22, "motion:failed");
	send_action(r, 22, "motion");
	send_action(r, 23, "settings");
	expect_event(r, 23, "settings:completed");
	assert_int_equal(queue_len(r->tx), 0);
}

/* The memory is bounded: past DISPATCH_SEEN_MAX newer ids, the oldest is
 * forgotten (and would run again); the ones after it are still known. */
static void
test_repeated_ready_bound(void **state)
{
	struct rig *r = *state;
	long id, first = 1000;

	for (id = first; id <= first + DISPATCH_SEEN_MAX; id++) {
		send_action(r, id, "settings");
		expect_event(r, id, "settings:completed");
	}
	send_action(r, first + 1, "settings");	/* still known */
	send_action(r, first, "settings");	/* forgotten: runs */
	expect_event(r, first, "settings:completed");
	assert_int_equal(queue_len(r->tx), 0);
}


/* ---- the step runner: waits end at a press, a cancel or their time ---- */

enum op { END, SEND, PRESS, CANCEL, EXPECT };

struct op_step {
	enum op		 op;
	const char	*event;		/* EXPECT: the next frame's */
};

struct test_case {
	const char	*name;
	double		 button_delay;	/* s, [EMULATOR] button_press_delay */
	double		 warm_up;	/* s, warm_up_delay */
	struct op_step	 steps[8];
};

/* A print without its download: its waits are what is tested. */
static const char print_json[] =
    "{\"print\": [{\"event\": \"print:starting\"}, {\"op\": \"button\"},"
    " {\"event\": \"print:warmup:starting\"}, {\"op\": \"warmup\"},"
    " {\"event\": \"print:running\"}]}";

/* An hour stands for "never" here: a wait it does not see end fails. */
static const struct test_case tcs[] = {
	{ "a press ends the button's wait", 3600, 0, {
	    { SEND, NULL }, { EXPECT, "print:starting" }, { PRESS, NULL },
	    { EXPECT, "print:warmup:starting" }, { EXPECT, "print:running" },
	    { EXPECT, "print:completed" } } },
	{ "no press: the delay runs out", 0, 0, {
	    { SEND, NULL }, { EXPECT, "print:starting" },
	    { EXPECT, "print:warmup:starting" }, { EXPECT, "print:running" },
	    { EXPECT, "print:completed" } } },
	{ "a cancel ends the button's wait", 3600, 0, {
	    { SEND, NULL }, { EXPECT, "print:starting" }, { CANCEL, NULL },
	    { EXPECT, "print:cancelled" } } },
	{ "a cancel ends the warm-up", 3600, 3600, {
	    { SEND, NULL }, { EXPECT, "print:starting" }, { PRESS, NULL },
	    { EXPECT, "print:warmup:starting" }, { CANCEL, NULL },
	    { EXPECT, "print:cancelled" } } },
};

static void
test_waits(void **state)
{
	struct rig *r = *state;
	const struct test_case *tc;
	const struct op_step *st;
	char err[256], line[160];
	size_t i, k;
	long id = 40;

	assert_int_equal(seq_table_load_json(r->seq, print_json, err,
	    sizeof(err)), 0);
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++, id++) {
		tc = &tcs[i];
		r->cf.button_press_delay = tc->button_delay;
		r->cf.warm_up_delay = tc->warm_up;
		for (k = 0; k < 8 && (st = &tc->steps[k])->op != END; k++) {
			switch (st->op) {
			case END:
				break;
			case SEND:
				send_action(r, id, "print");
				break;
			case PRESS:
				dispatch_press_button(r->d);
				break;
			case CANCEL:
				snprintf(line, sizeof(line), "{\"id\":%ld,"
				    "\"action_type\":\"print\",\"status\":"
				    "\"cancelled\"}", id);
				dispatch_line(r->d, line, strlen(line));
				break;
			case EXPECT:
				expect_event(r, id, st->event);
				break;
			}
		}
		/* Exactly one terminal: nothing follows once the job went. */
		for (k = 0; dispatch_jobs(r->d) > 0 && k < 1000; k++)
			uv_run(evloop_uv(r->ev), UV_RUN_NOWAIT);
		if (queue_len(r->tx) != 0)
			fail_msg("%s: %zu frames after the terminal event",
			    tc->name, queue_len(r->tx));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_calloc_fails, rig_setup,
		    rig_teardown),
		cmocka_unit_test_setup_teardown(test_machine_lane, rig_setup,
		    rig_teardown),
		cmocka_unit_test_setup_teardown(test_repeated_ready,
		    rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_repeated_ready_bound,
		    rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_waits, rig_setup,
		    rig_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
