/*
 * history: see history.h.  A ring of HISTORY_MAX entries; every change
 * bumps seq, and an entry carries the seq of its last change, so a
 * reader that saw up to N asks for what changed after N.  The ring's
 * 200 KiB are static: scans stop at the slots taken, so an idle daemon
 * that served two actions has touched two, not all (a kernel with no
 * shared zero page backs even a read with a page of its own).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "history.h"
#include "metrics.h"
#include "mono.h"

#define HISTORY_NAME_LEN	63	/* chars of an event name kept */
#define HISTORY_TYPE_LEN	32
#define HISTORY_WHY_LEN		127	/* chars of a refusal kept */
#define HISTORY_GONE_MAX	1024	/* pushed out unended, still counted */

enum history_state { H_RECEIVED, H_RUNNING, H_ENDED, H_REFUSED };

static const char *const history_states[] = {
	"received", "running", "ended", "refused",
};

struct history_event {
	char		 name[HISTORY_NAME_LEN + 1];
	int64_t		 ms;		/* from receipt */
};

struct history_entry {
	uint64_t	 seq;		/* 0: empty slot */
	int64_t		 id;
	char		 machine[HISTORY_MACHINE_LEN + 1];	/* "": alone */
	char		 type[HISTORY_TYPE_LEN + 1];
	int64_t		 wall_ms;	/* unix ms at receipt */
	int64_t		 mono_ms;	/* at receipt */
	enum history_state state;
	int64_t		 first_ms, end_ms;	/* from receipt, -1: not yet */
	char		 result[16];
	char		 why[HISTORY_WHY_LEN + 1];	/* refused: the log line */
	size_t		 nev, dropped;
	struct history_event ev[HISTORY_EVENTS_MAX];
};

/* What the metrics need of an action pushed out of the ring before its
 * end (a fleet receives more than HISTORY_MAX meanwhile). */
struct history_gone {
	int64_t		 id;
	char		 machine[HISTORY_MACHINE_LEN + 1];
	char		 type[HISTORY_TYPE_LEN + 1];
	int64_t		 mono_ms;	/* at receipt; 0: empty slot */
	int64_t		 first_ms;	/* from receipt, -1: not yet */
};

static struct {
	pthread_mutex_t		 mtx;
	struct history_entry	 e[HISTORY_MAX];
	struct history_gone	 gone[HISTORY_GONE_MAX];
	size_t			 gnext;		/* slot the next one takes */
	size_t			 gused;		/* slots taken: 0 .. gused-1 */
	size_t			 next;		/* slot the next action takes */
	size_t			 used;		/* slots taken: 0 .. used-1 */
	uint64_t		 seq;
	atomic_uint_fast64_t	 version;
	void			(*notify)(void *);
	void			*arg;
} history = { .mtx = PTHREAD_MUTEX_INITIALIZER };

/* Ids are per machine: two machines of a fleet may both run action 7. */
static int
history_same(const char *machine, const char *m)
{
	return strncmp(machine, m != NULL ? m : "", HISTORY_MACHINE_LEN) == 0;
}

static struct history_entry *
history_find(const char *machine, int64_t id)
{
	size_t i;

	for (i = 0; i < history.used; i++)
		if (history.e[i].seq != 0 && history.e[i].id == id &&
		    history_same(history.e[i].machine, machine))
			return &history.e[i];
	return NULL;
}

/* After a change, lock released. */
static void
history_changed(void)
{
	void (*fn)(void *);
	void *arg;

	atomic_fetch_add(&history.version, 1);
	pthread_mutex_lock(&history.mtx);
	fn = history.notify;
	arg = history.arg;
	pthread_mutex_unlock(&history.mtx);
	if (fn != NULL)
		fn(arg);
}

static const char *history_terminal(const char *, const char *);

/* Under the lock: h leaves the ring unended. */
static void
history_gone_keep(const struct history_entry *h)
{
	struct history_gone *g = &history.gone[history.gnext];

	history.gnext = (history.gnext + 1) % HISTORY_GONE_MAX;
	if (history.gused < HISTORY_GONE_MAX)
		history.gused++;
	g->id = h->id;
	_Static_assert(sizeof(g->machine) == sizeof(h->machine), "sizes");
	memcpy(g->machine, h->machine, sizeof(g->machine));
	/* Same size, always NUL-terminated: a plain copy (snprintf between
	 * two members of one object trips gcc's -Wrestrict at -O2). */
	_Static_assert(sizeof(g->type) == sizeof(h->type), "type sizes");
	memcpy(g->type, h->type, sizeof(g->type));
	g->mono_ms = h->mono_ms != 0 ? h->mono_ms : 1;
	g->first_ms = h->first_ms;
}

/* Under the lock: an event of an action no longer in the ring.  Its
 * terminal is counted (once); 1 when it was one of those. */
static int
history_gone_event(const char *machine, int64_t id, const char *name,
    char *type, size_t tlen, const char **result, int64_t *first, int64_t *ms)
{
	struct history_gone *g;
	size_t i, n;

	for (i = 0; i < history.gused; i++) {
		g = &history.gone[i];
		if (g->mono_ms == 0 || g->id != id ||
		    !history_same(g->machine, machine))
			continue;
		*ms = mono_now_ms() - g->mono_ms;
		if (g->first_ms == -1)
			g->first_ms = *ms;
		else
			*first = g->first_ms;
		if ((*result = history_terminal(g->type, name)) != NULL) {
			/* A bounded copy: gcc -O2 sizes a snprintf "%s" of
			 * an array member by the whole ring. */
			n = strnlen(g->type, sizeof(g->type) - 1);
			n = n < tlen ? n : tlen - 1;
			memcpy(type, g->type, n);
			type[n] = '\0';
			memset(g, 0, sizeof(*g));
		}
		return 1;
	}
	return 0;
}

void
history_received(int64_t id, const char *type, const char *machine)
{
	struct history_entry *h;
	struct timespec ts;

	pthread_mutex_lock(&history.mtx);
	if ((h = history_find(machine, id)) != NULL) {
		/* Sent again after a busy refusal: a new try. */
		if (h->state == H_REFUSED) {
			h->state = H_RECEIVED;
			h->end_ms = -1;
			h->why[0] = '\0';
			h->seq = ++history.seq;
		} else
			h = NULL;
		pthread_mutex_unlock(&history.mtx);
		if (h != NULL)
			history_changed();
		return;
	}
	h = &history.e[history.next];
	history.next = (history.next + 1) % HISTORY_MAX;
	if (history.used < HISTORY_MAX)
		history.used++;
	/* The one pushed out may still run: it leaves the gauge too, and
	 * its end is still counted. */
	if (h->seq != 0 && h->state == H_RUNNING)
		metrics_running(-1);
	if (h->seq != 0 && h->state != H_ENDED && h->state != H_REFUSED)
		history_gone_keep(h);
	memset(h, 0, sizeof(*h));
	h->seq = ++history.seq;
	h->id = id;
	snprintf(h->machine, sizeof(h->machine), "%s",
	    machine != NULL ? machine : "");
	snprintf(h->type, sizeof(h->type), "%s", type != NULL ? type : "");
	clock_gettime(CLOCK_REALTIME, &ts);
	h->wall_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	h->mono_ms = mono_now_ms();
	h->state = H_RECEIVED;
	h->first_ms = h->end_ms = -1;
	pthread_mutex_unlock(&history.mtx);
	history_changed();
}

void
history_started(int64_t id, const char *machine)
{
	struct history_entry *h;

	pthread_mutex_lock(&history.mtx);
	if ((h = history_find(machine, id)) != NULL &&
	    h->state == H_RECEIVED) {
		h->state = H_RUNNING;
		h->seq = ++history.seq;
		metrics_running(1);
	}
	pthread_mutex_unlock(&history.mtx);
	if (h != NULL)
		history_changed();
}

/* "completed", "failed" or "cancelled" when name is type's terminal. */
static const char *
history_terminal(const char *type, const char *name)
{
	static const char *const ends[] = { "completed", "failed",
	    "cancelled" };
	size_t n = strlen(type), i;

	if (strncmp(name, type, n) != 0 || name[n] != ':')
		return NULL;
	for (i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
		if (strcmp(name + n + 1, ends[i]) == 0)
			return ends[i];
	return NULL;
}

void
history_event(int64_t id, const char *name, const char *machine)
{
	struct history_entry *h;
	const char *result = NULL;
	char type[HISTORY_TYPE_LEN + 1];
	int64_t ms, first = -1;

	pthread_mutex_lock(&history.mtx);
	if (name != NULL && history_find(machine, id) == NULL &&
	    history_gone_event(machine, id, name, type, sizeof(type), &result,
	    &first, &ms)) {
		pthread_mutex_unlock(&history.mtx);
		if (result != NULL)
			metrics_action_end(type, result, first, ms);
		return;
	}
	if (name == NULL || (h = history_find(machine, id)) == NULL ||
	    h->state == H_ENDED) {
		pthread_mutex_unlock(&history.mtx);
		return;
	}
	ms = mono_now_ms() - h->mono_ms;
	if (h->nev < HISTORY_EVENTS_MAX) {
		snprintf(h->ev[h->nev].name, sizeof(h->ev[h->nev].name), "%s",
		    name);
		h->ev[h->nev++].ms = ms;
	} else
		h->dropped++;
	if (h->first_ms == -1)
		h->first_ms = ms;
	else
		first = h->first_ms;
	if ((result = history_terminal(h->type, name)) != NULL) {
		if (h->state == H_RUNNING)
			metrics_running(-1);
		h->state = H_ENDED;
		h->end_ms = ms;
		snprintf(h->result, sizeof(h->result), "%s", result);
		snprintf(type, sizeof(type), "%s", h->type);
	}
	h->seq = ++history.seq;
	pthread_mutex_unlock(&history.mtx);
	if (result != NULL)
		metrics_action_end(type, result, first, ms);
	history_changed();
}

void
history_refused(int64_t id, const char *why, const char *machine)
{
	struct history_entry *h;

	pthread_mutex_lock(&history.mtx);
	/* Only one never started: a job that ran keeps its own end. */
	if ((h = history_find(machine, id)) != NULL && h->state == H_RECEIVED) {
		h->state = H_REFUSED;
		h->end_ms = mono_now_ms() - h->mono_ms;
		snprintf(h->why, sizeof(h->why), "%s", why != NULL ? why : "");
		h->seq = ++history.seq;
	} else
		h = NULL;
	pthread_mutex_unlock(&history.mtx);
	if (h != NULL)
		history_changed();
}

uint64_t
history_version(void)
{
	return atomic_load(&history.version);
}

void
history_set_notify(void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&history.mtx);
	history.notify = fn;
	history.arg = arg;
	pthread_mutex_unlock(&history.mtx);
}

static cJSON *
history_entry_json(const struct history_entry *h)
{
	cJSON *o, *evs, *ev;
	size_t i;

	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	cJSON_AddNumberToObject(o, "seq", (double)h->seq);
	cJSON_AddNumberToObject(o, "id", (double)h->id);
	if (h->machine[0] != '\0')
		cJSON_AddStringToObject(o, "machine", h->machine);
	cJSON_AddStringToObject(o, "type", h->type);
	cJSON_AddNumberToObject(o, "received", (double)h->wall_ms);
	cJSON_AddStringToObject(o, "state", history_states[h->state]);
	if (h->result[0] != '\0')
		cJSON_AddStringToObject(o, "result", h->result);
	if (h->why[0] != '\0')
		cJSON_AddStringToObject(o, "refused", h->why);
	if (h->first_ms >= 0)
		cJSON_AddNumberToObject(o, "first_ms", (double)h->first_ms);
	if (h->end_ms >= 0)
		cJSON_AddNumberToObject(o, "end_ms", (double)h->end_ms);
	if (h->dropped > 0)
		cJSON_AddNumberToObject(o, "events_dropped",
		    (double)h->dropped);
	if ((evs = cJSON_AddArrayToObject(o, "events")) == NULL) {
		cJSON_Delete(o);
		return NULL;
	}
	for (i = 0; i < h->nev; i++) {
		if ((ev = cJSON_CreateObject()) == NULL ||
		    !cJSON_AddItemToArray(evs, ev)) {
			cJSON_Delete(ev);
			cJSON_Delete(o);
			return NULL;
		}
		cJSON_AddStringToObject(ev, "name", h->ev[i].name);
		cJSON_AddNumberToObject(ev, "ms", (double)h->ev[i].ms);
	}
	return o;
}

/* A copy of the ring's entries changed after seq after, oldest first,
 * so the JSON is built unlocked; the lock is held for those only (the
 * web view's pushes ask for what changed since the last one). */
static size_t
history_copy(struct history_entry *out, uint64_t after)
{
	size_t i, n = 0, k;

	pthread_mutex_lock(&history.mtx);
	/* The oldest slot taken first; slots never taken are not read. */
	for (i = 0; i < history.used; i++) {
		k = (history.next + HISTORY_MAX - history.used + i) %
		    HISTORY_MAX;
		if (history.e[k].seq != 0 && history.e[k].seq > after)
			out[n++] = history.e[k];
	}
	pthread_mutex_unlock(&history.mtx);
	return n;
}

cJSON *
history_json(uint64_t after)
{
	static struct history_entry copy[HISTORY_MAX];
	static pthread_mutex_t copy_mtx = PTHREAD_MUTEX_INITIALIZER;
	cJSON *arr, *o;
	size_t i, n;

	if ((arr = cJSON_CreateArray()) == NULL)
		return NULL;
	/* ~200 KiB: static, not on a loop thread's stack. */
	pthread_mutex_lock(&copy_mtx);
	n = history_copy(copy, after);
	for (i = 0; i < n; i++) {
		if ((o = history_entry_json(&copy[i])) == NULL ||
		    !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			arr = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&copy_mtx);
	return arr;
}

cJSON *
history_running_json(void)
{
	cJSON *arr, *o;
	size_t i;

	if ((arr = cJSON_CreateArray()) == NULL)
		return NULL;
	pthread_mutex_lock(&history.mtx);
	for (i = 0; i < history.used; i++) {
		const struct history_entry *h = &history.e[i];

		if (h->seq == 0 || h->state != H_RUNNING)
			continue;
		if ((o = cJSON_CreateObject()) == NULL ||
		    !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			break;
		}
		cJSON_AddNumberToObject(o, "id", (double)h->id);
		if (h->machine[0] != '\0')
			cJSON_AddStringToObject(o, "machine", h->machine);
		cJSON_AddStringToObject(o, "type", h->type);
		cJSON_AddNumberToObject(o, "received", (double)h->wall_ms);
	}
	pthread_mutex_unlock(&history.mtx);
	return arr;
}

void
history_reset(void)
{
	pthread_mutex_lock(&history.mtx);
	memset(history.e, 0, sizeof(history.e));
	history.next = history.used = 0;
	memset(history.gone, 0, sizeof(history.gone));
	history.gnext = history.gused = 0;
	history.seq = 0;
	history.notify = NULL;
	history.arg = NULL;
	pthread_mutex_unlock(&history.mtx);
	atomic_store(&history.version, 0);
}
