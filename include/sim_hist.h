/*
 * sim_hist: a log-linear latency histogram (HdrHistogram-like), for the
 * load mode of gf-cloud-sim.  Values below SIM_HIST_SUB are counted
 * exactly; above, each power of two is split into SIM_HIST_SUB / 2 equal
 * buckets, so a bucket is at most 1/64 (1.6 %) of its values wide.  A
 * fixed array: adding is O(1) and allocates nothing.
 */
#ifndef GFE_SIM_HIST_H
#define GFE_SIM_HIST_H

#include <stddef.h>
#include <stdint.h>

#define SIM_HIST_SUB_BITS	7
#define SIM_HIST_SUB		(1 << SIM_HIST_SUB_BITS)	/* 128 */
#define SIM_HIST_MAX_BITS	40	/* values up to 2^40 - 1 (us: 12 d) */
#define SIM_HIST_BUCKETS	(SIM_HIST_SUB + \
	(SIM_HIST_MAX_BITS - SIM_HIST_SUB_BITS) * (SIM_HIST_SUB / 2))

struct sim_hist {
	uint64_t	 count;
	int64_t		 min, max;	/* exact, of the values added */
	int64_t		 sum;		/* of the values added */
	uint64_t	 n[SIM_HIST_BUCKETS];
};

void	 sim_hist_init(struct sim_hist *h);
/* Negative values count as 0, values past the range as the last bucket
 * (max stays exact). */
void	 sim_hist_add(struct sim_hist *h, int64_t v);
/* The bucket holding v, and the values a bucket holds (low..high). */
size_t	 sim_hist_index(int64_t v);
int64_t	 sim_hist_low(size_t idx);
int64_t	 sim_hist_high(size_t idx);
/* Nearest rank: the smallest value with at least pct % of the values at
 * or below it, as the high end of its bucket (never past max).  0 when
 * empty.  pct in (0, 100]. */
int64_t	 sim_hist_percentile(const struct sim_hist *h, double pct);

#endif
