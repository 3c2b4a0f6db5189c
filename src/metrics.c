/*
 * metrics: see metrics.h.
 *
 * Action types are claimed a slot each on first sight, under a lock (a
 * handful per process); the name is written before the slot count is
 * published (release), so a reader that sees the count sees the name.
 * Everything else is a relaxed atomic add: a scrape reads each value
 * once, and a histogram's sum may lag its count by one observation,
 * which Prometheus tolerates.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define METRICS_RESULTS	3

static const char *const metrics_results[METRICS_RESULTS] = {
	"completed", "failed", "cancelled",
};

/* Upper bounds, ms; the last bucket (+Inf) is implied. */
static const int64_t metrics_bounds[METRICS_BUCKETS] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
	300000,
};

static const char *const metrics_states[METRICS_STATES] = {
	"offline", "signing_in", "online",
};

static const struct {
	const char	*name;
	const char	*help;
} metrics_counters[METRICS_COUNTERS] = {
	{ "gfe_sign_ins_total", "Sign-ins that got a token." },
	{ "gfe_sign_in_failures_total", "Sign-ins refused or failed." },
	{ "gfe_reconnects_total", "Status sockets lost and reopened." },
	{ "gfe_download_bytes_total", "Job bytes downloaded (on the wire)." },
	{ "gfe_upload_bytes_total", "Image bytes uploaded." },
	{ "gfe_jobs_kept_total", "Jobs kept as .puls and .info." },
	{ "gfe_jobs_refused_total", "Jobs refused (bad or foreign file)." },
	{ "gfe_disk_errors_total", "Jobs not kept: the folder failed." },
	{ "gfe_flashforge_connections_total",
	    "FlashForge command connections accepted." },
	{ "gfe_flashforge_commands_total", "FlashForge command lines." },
	{ "gfe_flashforge_http_requests_total",
	    "FlashForge HTTP API requests." },
};

struct metrics_hist {
	atomic_uint_fast64_t	 bucket[METRICS_BUCKETS + 1];	/* +Inf last */
	atomic_uint_fast64_t	 sum_ms;
	atomic_uint_fast64_t	 count;
};

static struct {
	atomic_uint_fast64_t	 counter[METRICS_COUNTERS];
	atomic_int_fast64_t	 machines[METRICS_STATES];
	atomic_int_fast64_t	 ff_clients;
	atomic_int_fast64_t	 running;
	pthread_mutex_t		 type_mtx;	/* claiming a type slot */
	atomic_int		 ntypes;
	char			 type[METRICS_TYPES_MAX][METRICS_TYPE_LEN + 1];
	/* [METRICS_TYPES_MAX]: "other" */
	atomic_uint_fast64_t	 actions[METRICS_TYPES_MAX + 1][METRICS_RESULTS];
	struct metrics_hist	 first, end;
} metrics = { .type_mtx = PTHREAD_MUTEX_INITIALIZER };

void
metrics_add(enum metrics_counter c, uint64_t n)
{
	if ((unsigned)c < METRICS_COUNTERS)
		atomic_fetch_add_explicit(&metrics.counter[c], n,
		    memory_order_relaxed);
}

void
metrics_inc(enum metrics_counter c)
{
	metrics_add(c, 1);
}

uint64_t
metrics_get(enum metrics_counter c)
{
	if ((unsigned)c >= METRICS_COUNTERS)
		return 0;
	return atomic_load_explicit(&metrics.counter[c], memory_order_relaxed);
}

void
metrics_machine_move(int from, int to)
{
	if (from >= 0 && from < METRICS_STATES)
		atomic_fetch_sub(&metrics.machines[from], 1);
	if (to >= 0 && to < METRICS_STATES)
		atomic_fetch_add(&metrics.machines[to], 1);
}

int64_t
metrics_machines(enum metrics_state s)
{
	if ((unsigned)s >= METRICS_STATES)
		return 0;
	return atomic_load(&metrics.machines[s]);
}

const char *
metrics_state_name(enum metrics_state s)
{
	return (unsigned)s < METRICS_STATES ? metrics_states[s] : "unknown";
}

void
metrics_ff_clients(int delta)
{
	atomic_fetch_add(&metrics.ff_clients, delta);
}

void
metrics_running(int delta)
{
	atomic_fetch_add(&metrics.running, delta);
}

/* [a-z0-9_]{1,32}: anything else would need escaping in a label. */
static int
metrics_type_ok(const char *type)
{
	size_t n = strlen(type);

	return n > 0 && n <= METRICS_TYPE_LEN &&
	    strspn(type, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* The slot of type, claimed if new; METRICS_TYPES_MAX: "other". */
static int
metrics_type_slot(const char *type, int claim)
{
	int i, n;

	if (type == NULL || !metrics_type_ok(type))
		return METRICS_TYPES_MAX;
	n = atomic_load_explicit(&metrics.ntypes, memory_order_acquire);
	for (i = 0; i < n; i++)
		if (strcmp(metrics.type[i], type) == 0)
			return i;
	if (!claim)
		return -1;
	pthread_mutex_lock(&metrics.type_mtx);
	n = atomic_load_explicit(&metrics.ntypes, memory_order_relaxed);
	for (i = 0; i < n; i++)
		if (strcmp(metrics.type[i], type) == 0)
			break;
	if (i == n && n < METRICS_TYPES_MAX) {
		snprintf(metrics.type[n], sizeof(metrics.type[n]), "%s", type);
		atomic_store_explicit(&metrics.ntypes, n + 1,
		    memory_order_release);
	} else if (i == n)
		i = METRICS_TYPES_MAX;
	pthread_mutex_unlock(&metrics.type_mtx);
	return i;
}

static int
metrics_result_slot(const char *result)
{
	int i;

	for (i = 0; i < METRICS_RESULTS; i++)
		if (result != NULL && strcmp(result, metrics_results[i]) == 0)
			return i;
	return -1;
}

static void
metrics_observe(struct metrics_hist *h, int64_t ms)
{
	int i;

	if (ms < 0)
		ms = 0;
	for (i = 0; i < METRICS_BUCKETS && ms > metrics_bounds[i]; i++)
		;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ms, (uint64_t)ms,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void
metrics_action_end(const char *type, const char *result, int64_t first_ms,
    int64_t end_ms)
{
	int t, r;

	if ((r = metrics_result_slot(result)) == -1)
		return;
	t = metrics_type_slot(type, 1);
	atomic_fetch_add_explicit(&metrics.actions[t][r], 1,
	    memory_order_relaxed);
	/* The terminal is an event too: the first when nothing came before. */
	metrics_observe(&metrics.first, first_ms >= 0 ? first_ms : end_ms);
	metrics_observe(&metrics.end, end_ms);
}

uint64_t
metrics_actions(const char *type, const char *result)
{
	int t, r;

	if ((r = metrics_result_slot(result)) == -1)
		return 0;
	if (type != NULL && strcmp(type, "other") == 0)
		t = METRICS_TYPES_MAX;
	else if ((t = metrics_type_slot(type, 0)) == -1)
		return 0;
	return atomic_load(&metrics.actions[t][r]);
}

/* ---- the text exposition ---- */

static void
metrics_hist_text(FILE *fp, const char *name, const char *help,
    struct metrics_hist *h)
{
	uint64_t cum = 0;
	int i;

	fprintf(fp, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (i = 0; i <= METRICS_BUCKETS; i++) {
		cum += atomic_load_explicit(&h->bucket[i],
		    memory_order_relaxed);
		if (i < METRICS_BUCKETS)
			fprintf(fp, "%s_bucket{le=\"%g\"} %llu\n", name,
			    (double)metrics_bounds[i] / 1000,
			    (unsigned long long)cum);
		else
			fprintf(fp, "%s_bucket{le=\"+Inf\"} %llu\n", name,
			    (unsigned long long)cum);
	}
	/* count is the +Inf bucket, so the two always agree. */
	fprintf(fp, "%s_sum %.3f\n%s_count %llu\n", name,
	    (double)atomic_load(&h->sum_ms) / 1000, name,
	    (unsigned long long)cum);
}

static void
metrics_actions_text(FILE *fp)
{
	int t, r, n = atomic_load_explicit(&metrics.ntypes,
	    memory_order_acquire);
	uint64_t v;

	fputs("# HELP gfe_actions_total Actions ended, by type and terminal "
	    "event.\n# TYPE gfe_actions_total counter\n", fp);
	for (t = 0; t <= METRICS_TYPES_MAX; t++) {
		if (t >= n && t < METRICS_TYPES_MAX)
			continue;
		for (r = 0; r < METRICS_RESULTS; r++) {
			v = atomic_load(&metrics.actions[t][r]);
			/* "other" only once something overflowed into it. */
			if (t == METRICS_TYPES_MAX && v == 0)
				continue;
			fprintf(fp, "gfe_actions_total{type=\"%s\","
			    "result=\"%s\"} %llu\n", t < METRICS_TYPES_MAX ?
			    metrics.type[t] : "other", metrics_results[r],
			    (unsigned long long)v);
		}
	}
}

char *
metrics_text(size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *fp;
	int i;

	if ((fp = open_memstream(&buf, &n)) == NULL)
		return NULL;
	fputs("# HELP gfe_machines Machines by link state.\n"
	    "# TYPE gfe_machines gauge\n", fp);
	for (i = 0; i < METRICS_STATES; i++)
		fprintf(fp, "gfe_machines{state=\"%s\"} %lld\n",
		    metrics_states[i], (long long)atomic_load(
		    &metrics.machines[i]));
	fprintf(fp, "# HELP gfe_actions_running Actions started, not "
	    "ended.\n# TYPE gfe_actions_running gauge\n"
	    "gfe_actions_running %lld\n",
	    (long long)atomic_load(&metrics.running));
	metrics_actions_text(fp);
	metrics_hist_text(fp, "gfe_action_first_event_seconds",
	    "From an action's receipt to its first event.", &metrics.first);
	metrics_hist_text(fp, "gfe_action_duration_seconds",
	    "From an action's receipt to its terminal event.", &metrics.end);
	for (i = 0; i < METRICS_COUNTERS; i++)
		fprintf(fp, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n",
		    metrics_counters[i].name, metrics_counters[i].help,
		    metrics_counters[i].name, metrics_counters[i].name,
		    (unsigned long long)metrics_get((enum metrics_counter)i));
	fprintf(fp, "# HELP gfe_flashforge_clients FlashForge command "
	    "connections open.\n# TYPE gfe_flashforge_clients gauge\n"
	    "gfe_flashforge_clients %lld\n",
	    (long long)atomic_load(&metrics.ff_clients));
	if (ferror(fp)) {
		fclose(fp);
		free(buf);
		return NULL;
	}
	if (fclose(fp) != 0) {
		free(buf);
		return NULL;
	}
	if (len != NULL)
		*len = n;
	return buf;
}

void
metrics_reset(void)
{
	int i, j;

	for (i = 0; i < METRICS_COUNTERS; i++)
		atomic_store(&metrics.counter[i], 0);
	for (i = 0; i < METRICS_STATES; i++)
		atomic_store(&metrics.machines[i], 0);
	atomic_store(&metrics.ff_clients, 0);
	atomic_store(&metrics.running, 0);
	for (i = 0; i <= METRICS_TYPES_MAX; i++)
		for (j = 0; j < METRICS_RESULTS; j++)
			atomic_store(&metrics.actions[i][j], 0);
	for (i = 0; i <= METRICS_BUCKETS; i++) {
		atomic_store(&metrics.first.bucket[i], 0);
		atomic_store(&metrics.end.bucket[i], 0);
	}
	atomic_store(&metrics.first.sum_ms, 0);
	atomic_store(&metrics.first.count, 0);
	atomic_store(&metrics.end.sum_ms, 0);
	atomic_store(&metrics.end.count, 0);
	atomic_store(&metrics.ntypes, 0);
}
