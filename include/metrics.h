/*
 * metrics: the daemon's counters, gauges and histograms, process-wide,
 * C11 atomics only, so any thread (today's link, dispatch and job
 * threads; tomorrow's one loop) may count without a lock.  A fleet adds
 * to the same totals: no series is ever per machine, so the Prometheus
 * page stays small whatever the number of machines.
 */
#ifndef GFE_METRICS_H
#define GFE_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum metrics_counter {
	METRICS_SIGN_INS,		/* sign-ins that got a token */
	METRICS_SIGN_IN_FAILURES,	/* refused or failed */
	METRICS_RECONNECTS,		/* status socket lost, retried */
	METRICS_BYTES_DOWN,		/* job bytes on the wire */
	METRICS_BYTES_UP,		/* image bytes uploaded */
	METRICS_JOBS_KEPT,		/* .puls + .info in place */
	METRICS_JOBS_REFUSED,		/* a job the stream turned away */
	METRICS_DISK_ERRORS,		/* a job not kept: the folder failed */
	METRICS_FF_CONNECTIONS,		/* FlashForge command connections */
	METRICS_FF_COMMANDS,		/* FlashForge command lines */
	METRICS_FF_HTTP_REQUESTS,	/* FlashForge HTTP API requests */
	METRICS_COUNTERS
};

/* A Glowforge link's state; machines move between them. */
enum metrics_state {
	METRICS_OFFLINE,
	METRICS_SIGNING_IN,
	METRICS_ONLINE,
	METRICS_STATES
};

/* Action latency buckets, ms (Prometheus gets seconds). */
#define METRICS_BUCKETS		14
/* Distinct action types counted by name; more go to "other". */
#define METRICS_TYPES_MAX	32
#define METRICS_TYPE_LEN	32	/* chars of a type name */

void	 metrics_add(enum metrics_counter c, uint64_t n);
void	 metrics_inc(enum metrics_counter c);
uint64_t metrics_get(enum metrics_counter c);
/* from or to -1: a machine appears or goes. */
void	 metrics_machine_move(int from, int to);
int64_t	 metrics_machines(enum metrics_state s);
/* Command connections open now: +1 or -1. */
void	 metrics_ff_clients(int delta);
/* Actions started and not ended: +1 or -1. */
void	 metrics_running(int delta);
/* An action ended: result "completed", "failed" or "cancelled";
 * first_ms and end_ms from its receipt (first_ms -1: no event before). */
void	 metrics_action_end(const char *type, const char *result,
	    int64_t first_ms, int64_t end_ms);
uint64_t metrics_actions(const char *type, const char *result);
const char *metrics_state_name(enum metrics_state s);
/* The Prometheus text exposition (version 0.0.4), malloc'd; NULL when
 * out of memory. */
char	*metrics_text(size_t *len);
/* Tests: every value back to zero (no other thread counting). */
void	 metrics_reset(void);

#endif
