/*
 * Unit tests for sim_hist.c: bucket edges (exact below 128, then 64
 * buckets per power of two, contiguous and non-overlapping), and
 * percentiles against a sorted reference (nearest rank): the histogram's
 * answer must lie in the bucket of the exact answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "sim_hist.h"

struct test_case {
	int64_t	 v;
	size_t	 idx;
	int64_t	 low, high;
};

static const struct test_case edges[] = {
	{ -5,	0,	0,	0 },		/* negative counts as 0 */
	{ 0,	0,	0,	0 },
	{ 1,	1,	1,	1 },
	{ 127,	127,	127,	127 },		/* last exact bucket */
	{ 128,	128,	128,	129 },		/* first of width 2 */
	{ 129,	128,	128,	129 },
	{ 130,	129,	130,	131 },
	{ 255,	191,	254,	255 },
	{ 256,	192,	256,	259 },		/* width 4 */
	{ 1000,	317,	1000,	1007 },		/* width 8 */
	{ 1000000, 954, 999424, 1007615 },	/* width 8192 */
	{ ((int64_t)1 << 40) - 1, SIM_HIST_BUCKETS - 1,
	    ((int64_t)1 << 40) - ((int64_t)1 << 33),
	    ((int64_t)1 << 40) - 1 },
	{ (int64_t)1 << 50, SIM_HIST_BUCKETS - 1,	/* past the range */
	    ((int64_t)1 << 40) - ((int64_t)1 << 33),
	    ((int64_t)1 << 40) - 1 },
};

static void
test_edges(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		const struct test_case *tc = &edges[i];

		assert_int_equal(sim_hist_index(tc->v), tc->idx);
		assert_int_equal(sim_hist_low(tc->idx), tc->low);
		assert_int_equal(sim_hist_high(tc->idx), tc->high);
	}
}

/* Every bucket starts right after the previous one ends, and a bucket is
 * at most 1/64 of its low value wide (past the exact ones). */
static void
test_contiguous(void **state)
{
	size_t i;

	(void)state;
	assert_int_equal(sim_hist_low(0), 0);
	for (i = 1; i < SIM_HIST_BUCKETS; i++) {
		assert_int_equal(sim_hist_low(i), sim_hist_high(i - 1) + 1);
		assert_int_equal(sim_hist_index(sim_hist_low(i)), i);
		assert_int_equal(sim_hist_index(sim_hist_high(i)), i);
		if (i >= SIM_HIST_SUB)
			assert_true((sim_hist_high(i) - sim_hist_low(i) + 1) *
			    64 <= sim_hist_low(i));
	}
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of a sorted array. */
static int64_t
reference(const int64_t *v, size_t n, double pct)
{
	size_t rank = (size_t)(pct / 100.0 * (double)n + 0.999999999);

	if (rank < 1)
		rank = 1;
	return v[rank - 1];
}

struct pct_case {
	const char	*name;
	size_t		 n;
	unsigned	 seed;
	int64_t		 max;		/* values in [0, max) */
	int		 heavy;		/* a long tail: squares */
};

static const struct pct_case pcts[] = {
	{ "one value", 1, 1, 1000, 0 },
	{ "small exact", 100, 2, 128, 0 },
	{ "uniform", 10000, 3, 1000000, 0 },
	{ "long tail", 20000, 4, 3000, 1 },
	{ "two values", 2, 5, 50000, 0 },
};

static void
test_percentiles(void **state)
{
	static const double ps[] = { 1, 50, 90, 99, 99.9, 100 };
	struct sim_hist *h;
	int64_t *v, want, got;
	size_t c, i, k;

	(void)state;
	h = malloc(sizeof(*h));
	assert_non_null(h);
	for (c = 0; c < sizeof(pcts) / sizeof(pcts[0]); c++) {
		const struct pct_case *tc = &pcts[c];

		srandom(tc->seed);
		v = calloc(tc->n, sizeof(*v));
		assert_non_null(v);
		sim_hist_init(h);
		for (i = 0; i < tc->n; i++) {
			v[i] = random() % tc->max;
			if (tc->heavy)
				v[i] *= v[i];
			sim_hist_add(h, v[i]);
		}
		qsort(v, tc->n, sizeof(*v), cmp64);
		assert_int_equal(h->count, tc->n);
		assert_int_equal(h->min, v[0]);
		assert_int_equal(h->max, v[tc->n - 1]);
		for (k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
			want = reference(v, tc->n, ps[k]);
			got = sim_hist_percentile(h, ps[k]);
			if (sim_hist_index(got) != sim_hist_index(want))
				fail_msg("%s p%g: got %lld, want %lld's bucket",
				    tc->name, ps[k], (long long)got,
				    (long long)want);
			assert_true(got >= want);
		}
		assert_int_equal(sim_hist_percentile(h, 100), v[tc->n - 1]);
		free(v);
	}
	sim_hist_init(h);
	assert_int_equal(sim_hist_percentile(h, 99), 0);
	free(h);
}

/* The rank is exact: pct / 100 * n in doubles lands a hair above the
 * integer for some n (99.9 % of 1000 is 999.0000000000001), and a
 * ceiling of that moved p99.9 one rank up, onto the maximum. */
struct rank_case {
	const char	*name;
	double		 pct;
	size_t		 nlow;		/* values 0 */
	size_t		 nhigh;		/* then values 100 */
	int64_t		 want;
};

static const struct rank_case ranks[] = {
	{ "p99.9 of 1000: rank 999", 99.9, 999, 1, 0 },
	{ "p99.9 of 2000: rank 1998", 99.9, 1998, 2, 0 },
	{ "p99.9 of 10000: rank 9990", 99.9, 9990, 10, 0 },
	{ "p99.9 of 1000, 2 high: rank 999", 99.9, 998, 2, 100 },
	{ "p99 of 100: rank 99", 99, 99, 1, 0 },
	{ "p50 of 2: rank 1", 50, 1, 1, 0 },
	{ "p90 of 10: rank 9", 90, 9, 1, 0 },
};

static void
test_rank_exact(void **state)
{
	struct sim_hist *h;
	size_t c, i;

	(void)state;
	h = malloc(sizeof(*h));
	assert_non_null(h);
	for (c = 0; c < sizeof(ranks) / sizeof(ranks[0]); c++) {
		const struct rank_case *tc = &ranks[c];

		sim_hist_init(h);
		for (i = 0; i < tc->nlow; i++)
			sim_hist_add(h, 0);
		for (i = 0; i < tc->nhigh; i++)
			sim_hist_add(h, 100);
		if (sim_hist_percentile(h, tc->pct) != tc->want)
			fail_msg("%s: got %lld, want %lld", tc->name,
			    (long long)sim_hist_percentile(h, tc->pct),
			    (long long)tc->want);
	}
	free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_contiguous),
		cmocka_unit_test(test_percentiles),
		cmocka_unit_test(test_rank_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
