/*
 * sim_hist: see sim_hist.h.
 *
 * Index of v >= SUB: with m the position of its top bit, shift = m -
 * SUB_BITS + 1 keeps v >> shift in [SUB/2, SUB); each shift adds SUB/2
 * buckets after the SUB exact ones.
 */
#include <math.h>

#include "sim_hist.h"

#define HALF	(SIM_HIST_SUB / 2)

void
sim_hist_init(struct sim_hist *h)
{
	size_t i;

	h->count = 0;
	h->min = h->max = h->sum = 0;
	for (i = 0; i < SIM_HIST_BUCKETS; i++)
		h->n[i] = 0;
}

size_t
sim_hist_index(int64_t v)
{
	unsigned shift;
	size_t idx;

	if (v < SIM_HIST_SUB)
		return v < 0 ? 0 : (size_t)v;
	shift = (unsigned)(63 - __builtin_clzll((unsigned long long)v)) -
	    SIM_HIST_SUB_BITS + 1;
	idx = SIM_HIST_SUB + (size_t)(shift - 1) * HALF +
	    (size_t)((v >> shift) - HALF);
	return idx < SIM_HIST_BUCKETS ? idx : SIM_HIST_BUCKETS - 1;
}

int64_t
sim_hist_low(size_t idx)
{
	size_t shift;

	if (idx < SIM_HIST_SUB)
		return (int64_t)idx;
	shift = (idx - SIM_HIST_SUB) / HALF + 1;
	return (int64_t)(HALF + (idx - SIM_HIST_SUB) % HALF) << shift;
}

int64_t
sim_hist_high(size_t idx)
{
	size_t shift;

	if (idx < SIM_HIST_SUB)
		return (int64_t)idx;
	shift = (idx - SIM_HIST_SUB) / HALF + 1;
	return sim_hist_low(idx) + ((int64_t)1 << shift) - 1;
}

void
sim_hist_add(struct sim_hist *h, int64_t v)
{
	if (v < 0)
		v = 0;
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (h->count == 0 || v > h->max)
		h->max = v;
	h->count++;
	h->sum += v;
	h->n[sim_hist_index(v)]++;
}

int64_t
sim_hist_percentile(const struct sim_hist *h, double pct)
{
	uint64_t rank, ppm, seen = 0;
	int64_t v;
	size_t i;

	if (h->count == 0)
		return 0;
	/* In millionths, in integers: pct / 100 * count in doubles lands
	 * a hair above an integer (99.9 % of 1000), and its ceiling is a
	 * rank too high. */
	if (pct < 0)
		pct = 0;
	if (pct > 100)
		pct = 100;
	ppm = (uint64_t)llround(pct * 10000);
	rank = (h->count * ppm + 999999) / 1000000;
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	for (i = 0; i < SIM_HIST_BUCKETS; i++) {
		seen += h->n[i];
		if (seen >= rank) {
			v = sim_hist_high(i);
			return v > h->max ? h->max : v < h->min ? h->min : v;
		}
	}
	return h->max;
}
