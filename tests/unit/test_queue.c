/*
 * Unit tests for queue.c: order, the drop policy, blocking, and many
 * producers against one consumer.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "queue.h"

static char *
dup_str(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

static void
push_str(struct queue *q, const char *s, enum queue_prio prio, int expect)
{
	assert_int_equal(queue_push(q, dup_str(s), strlen(s), prio), expect);
}

static void
expect_pop(struct queue *q, const char *s)
{
	size_t len;
	char *p = queue_pop(q, &len, NULL);

	assert_non_null(p);
	assert_string_equal(p, s);
	assert_int_equal(len, strlen(s));
	free(p);
}

static void
test_fifo(void **state)
{
	struct queue *q = queue_new(8, 0, NULL, NULL);

	(void)state;
	push_str(q, "a", QUEUE_PRIO_HIGH, 0);
	push_str(q, "b", QUEUE_PRIO_LOW, 0);
	push_str(q, "c", QUEUE_PRIO_HIGH, 0);
	assert_int_equal(queue_len(q), 3);
	expect_pop(q, "a");
	expect_pop(q, "b");
	expect_pop(q, "c");
	assert_null(queue_pop(q, NULL, NULL));
	queue_free(q);
}

/* Each row: what is pushed into a queue of bound 3, what pops out. */
static const struct drop_case {
	const char	*name;
	const char	*push;		/* letters; upper case = HIGH */
	const char	*want;		/* popped, in order */
	size_t		 dropped;
} drop_cases[] = {
	{ "under the bound",		"ab",		"ab",		0 },
	{ "oldest low goes first",	"abcd",		"bcd",		1 },
	{ "low after high goes",	"AbCd",		"ACd",		1 },
	{ "high is never dropped",	"ABCD",		"ABCD",		0 },
	{ "low into a high-only queue",	"ABCd",		"ABC",		1 },
	{ "high pushes out low",	"abcD",		"bcD",		1 },
	{ "the newest lows survive",	"abcdefg",	"efg",		4 },
};

static void
test_drop_policy(void **state)
{
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(drop_cases) / sizeof(drop_cases[0]); i++) {
		const struct drop_case *c = &drop_cases[i];
		struct queue *q = queue_new(3, 0, NULL, NULL);
		char got[32] = "", *p;
		size_t n = 0;

		for (k = 0; c->push[k] != '\0'; k++) {
			char s[2] = { c->push[k], '\0' };
			enum queue_prio prio = (s[0] >= 'A' && s[0] <= 'Z') ?
			    QUEUE_PRIO_HIGH : QUEUE_PRIO_LOW;

			queue_push(q, dup_str(s), 1, prio);
		}
		while ((p = queue_pop(q, NULL, NULL)) != NULL) {
			got[n++] = p[0];
			free(p);
		}
		got[n] = '\0';
		if (strcmp(got, c->want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", c->name, got,
			    c->want);
		assert_int_equal(queue_dropped(q), c->dropped);
		queue_free(q);
	}
}

/* Rows: pushes of (bytes, prio) into a queue of 100 items and 10 bytes. */
static const struct bytes_case {
	const char	*name;
	const char	*push;		/* letter: an item; upper case = HIGH */
	size_t		 sizes[8];	/* bytes of each item */
	const char	*want;
	size_t		 bytes;		/* left queued */
	size_t		 dropped;
} bytes_cases[] = {
	{ "under the bound", "ab", { 4, 6 }, "ab", 10, 0 },
	{ "one byte over drops the oldest", "abc", { 4, 6, 1 }, "bc", 7, 1 },
	{ "a big one pushes out several", "abcd", { 3, 3, 3, 9 }, "d", 9, 3 },
	{ "alone over the bound is kept", "a", { 50 }, "a", 50, 0 },
	{ "events stay, the low one goes", "ABc", { 5, 5, 1 }, "AB", 10, 1 },
	{ "an event past the bound is kept", "aBC", { 5, 5, 5 }, "BC", 10, 1 },
};

static void
test_byte_bound(void **state)
{
	size_t i, k, n;

	(void)state;
	for (i = 0; i < sizeof(bytes_cases) / sizeof(bytes_cases[0]); i++) {
		const struct bytes_case *c = &bytes_cases[i];
		struct queue *q = queue_new(100, 10, NULL, NULL);
		char got[16] = "", *p;

		for (k = 0; c->push[k] != '\0'; k++) {
			char *d = calloc(1, c->sizes[k] + 1);
			enum queue_prio prio = c->push[k] >= 'A' &&
			    c->push[k] <= 'Z' ? QUEUE_PRIO_HIGH :
			    QUEUE_PRIO_LOW;

			assert_non_null(d);
			d[0] = c->push[k];
			queue_push(q, d, c->sizes[k], prio);
		}
		if (queue_bytes(q) != c->bytes)
			fail_msg("%s: %zu bytes queued, want %zu", c->name,
			    queue_bytes(q), c->bytes);
		n = 0;
		while ((p = queue_pop(q, NULL, NULL)) != NULL) {
			got[n++] = p[0];
			free(p);
		}
		got[n] = '\0';
		if (strcmp(got, c->want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", c->name, got,
			    c->want);
		assert_int_equal(queue_dropped(q), c->dropped);
		assert_int_equal(queue_bytes(q), 0);
		queue_free(q);
	}
}

/* A consumer blocked on a backlog's queue returns at close: it must not
 * work through the backlog (a 49 s shutdown, issue 9). */
static void *
close_later(void *arg)
{
	queue_close(arg);
	return NULL;
}

static void
test_close_stops_backlog(void **state)
{
	struct queue *q = queue_new(1000, 0, NULL, NULL);
	pthread_t t;
	size_t len, popped = 0;
	char *p;
	int i;

	(void)state;
	for (i = 0; i < 500; i++)
		push_str(q, "line", QUEUE_PRIO_LOW, 0);
	p = queue_pop_wait(q, &len, -1);
	assert_non_null(p);
	free(p);
	pthread_create(&t, NULL, close_later, q);
	pthread_join(t, NULL);
	while ((p = queue_pop_wait(q, &len, -1)) != NULL) {
		popped++;
		free(p);
	}
	assert_int_equal(popped, 0);
	assert_int_equal(queue_len(q), 499);
	queue_free(q);	/* frees the backlog: ASan checks */
}

static void
test_unpop(void **state)
{
	struct queue *q = queue_new(4, 0, NULL, NULL);
	enum queue_prio prio;
	size_t len;
	char *p;

	(void)state;
	push_str(q, "first", QUEUE_PRIO_HIGH, 0);
	push_str(q, "second", QUEUE_PRIO_HIGH, 0);
	p = queue_pop(q, &len, &prio);
	assert_string_equal(p, "first");
	assert_int_equal(prio, QUEUE_PRIO_HIGH);
	queue_unpop(q, p, len, prio);	/* not sent: back to the head */
	expect_pop(q, "first");
	expect_pop(q, "second");
	queue_free(q);
}

static int wakes;

static void
count_wake(void *arg)
{
	(void)arg;
	wakes++;
}

static void
test_wake_hook(void **state)
{
	struct queue *q = queue_new(4, 0, count_wake, NULL);

	(void)state;
	wakes = 0;
	push_str(q, "x", QUEUE_PRIO_HIGH, 0);
	push_str(q, "y", QUEUE_PRIO_LOW, 0);
	assert_int_equal(wakes, 2);
	queue_free(q);
}

static void
test_pop_wait_timeout_and_close(void **state)
{
	struct queue *q = queue_new(4, 0, NULL, NULL);
	size_t len;

	(void)state;
	assert_null(queue_pop_wait(q, &len, 10));	/* times out */
	push_str(q, "left", QUEUE_PRIO_HIGH, 0);
	queue_close(q);
	/* Closed: pushes fail, and what is queued never comes out (a
	 * backlog must not hold up shutdown); queue_free() frees it. */
	assert_int_equal(queue_push(q, dup_str("late"), 4, QUEUE_PRIO_HIGH),
	    -1);
	assert_null(queue_pop_wait(q, &len, -1));	/* closed: no block */
	assert_null(queue_pop(q, NULL, NULL));
	assert_int_equal(queue_len(q), 1);
	queue_free(q);
}

#define PRODUCERS	4
#define PER_PRODUCER	20000

struct producer {
	struct queue	*q;
	int		 id;
};

static void *
produce(void *arg)
{
	struct producer *p = arg;
	char buf[32];
	int i;

	for (i = 0; i < PER_PRODUCER; i++) {
		int n = snprintf(buf, sizeof(buf), "%d:%d", p->id, i);

		queue_push(p->q, strdup(buf), (size_t)n, QUEUE_PRIO_HIGH);
	}
	return NULL;
}

static void *
consumer_closer(void *arg)
{
	pthread_t *t = arg;
	int i;

	for (i = 0; i < PRODUCERS; i++)
		pthread_join(t[i], NULL);
	return NULL;
}

static void
test_threads_keep_order_and_lose_nothing(void **state)
{
	/* High priority and a small bound: nothing may be lost, and each
	 * producer's items arrive in the order it pushed them. */
	struct queue *q = queue_new(16, 0, NULL, NULL);
	struct producer pr[PRODUCERS];
	pthread_t t[PRODUCERS], joiner;
	int next[PRODUCERS] = { 0 };
	int total = 0, id, seq;
	char *p;

	(void)state;
	for (id = 0; id < PRODUCERS; id++) {
		pr[id].q = q;
		pr[id].id = id;
		pthread_create(&t[id], NULL, produce, &pr[id]);
	}
	pthread_create(&joiner, NULL, consumer_closer, t);
	while (total < PRODUCERS * PER_PRODUCER &&
	    (p = queue_pop_wait(q, NULL, -1)) != NULL) {
		assert_int_equal(sscanf(p, "%d:%d", &id, &seq), 2);
		assert_true(id >= 0 && id < PRODUCERS);
		assert_int_equal(seq, next[id]);
		next[id]++;
		total++;
		free(p);
	}
	pthread_join(joiner, NULL);
	assert_int_equal(total, PRODUCERS * PER_PRODUCER);
	assert_int_equal(queue_dropped(q), 0);
	queue_free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_drop_policy),
		cmocka_unit_test(test_byte_bound),
		cmocka_unit_test(test_close_stops_backlog),
		cmocka_unit_test(test_unpop),
		cmocka_unit_test(test_wake_hook),
		cmocka_unit_test(test_pop_wait_timeout_and_close),
		cmocka_unit_test(test_threads_keep_order_and_lose_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
