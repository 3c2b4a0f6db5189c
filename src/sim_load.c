/*
 * sim_load: see sim_load.h.
 *
 * Actions live in one array indexed by id - SIM_ID_BASE (ids are handed
 * out in order), so an event finds its action in O(1).  Machines with no
 * action under way wait in a FIFO ring, each at most once; an action due
 * when the ring is empty waits (the backlog) and its latency grows.
 */
#include <sys/resource.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "sim_fleet.h"
#include "sim_hist.h"
#include "sim_load.h"
#include "sim_uvpoll.h"
#include "sim_scenario.h"
#include "sim_transcript.h"

#define SIM_LOAD_REASONS	5	/* violations kept for the summary */
#define SIM_LOAD_LOGGED		20	/* violations logged one by one */
#define SIM_LOAD_TYPE_MAX	32	/* bytes of an action type */

struct sim_load_step {
	const cJSON	*tmpl;
	char		 type[SIM_LOAD_TYPE_MAX];
	const char	*expect;	/* or NULL */
	const cJSON	*events;	/* or NULL */
	int		 nevents;
	int		 lineno;
	struct sim_hist	 term;		/* us from due time, this step's */
};

struct sim_load_action {
	int64_t		 due_us;
	int64_t		 first_us;	/* its first event, or -1 */
	uint32_t	 machine;
	uint16_t	 step;
	uint16_t	 nev;		/* events so far */
	uint8_t		 terminals;
	uint8_t		 bad;		/* its order was already reported */
};

struct sim_load_mach {
	int		 connected;
	unsigned	 connects;
	int64_t		 current;	/* action under way, or 0 */
	size_t		 step;		/* next profile step */
	int		 queued;	/* in the idle ring */
	int		 have_id;
	int64_t		 last_id;	/* frame ids on this socket */
};

struct sim_load {
	struct sim_load_params	 p;
	struct sim_load_ops	 ops;
	struct sim_fleet	*fleet;
	struct sim_transcript	*tr;
	size_t			 n;

	struct sim_load_step	*steps;
	size_t			 nsteps;

	struct sim_load_mach	*m;
	size_t			*ring;		/* idle machines */
	size_t			 rhead, rcount;

	struct sim_load_action	*act;
	size_t			 nact, actcap;
	uint64_t		 total;		/* actions to schedule */
	int64_t			 t0_us;		/* the sim's start */
	int64_t			 start_us;	/* the schedule's, or -1 */
	int64_t			 end_us;	/* past it: finish */
	int			 done;
	int			 stopped;	/* by a signal */

	size_t			 connected;	/* sockets up now */
	size_t			 ever;		/* machines up at least once */
	size_t			 reconnected;	/* machines up twice or more */
	int64_t			 all_up_us;	/* -1 until then */

	uint64_t		 terminals[3];	/* completed/failed/cancelled */
	uint64_t		 ended;		/* actions with a terminal */
	uint64_t		 dup, violations;
	char			 reason[SIM_LOAD_REASONS][200];

	struct sim_hist		 first, term;	/* us from due time */
	/* us from due time to the send: past 0 only when no machine was
	 * free (the backlog), which is the sim's share of a latency. */
	struct sim_hist		 lag;
	struct sim_hist		 win;		/* this second's terminals */
	uint64_t		 win_sent;
	int64_t			 win_us;

	/* --drop-all-at: every sign-in's time after the drop (us, same
	 * clock), to show the fleet comes back within its connect rate. */
	uint64_t		 signins;	/* answered 200, in all */
	int64_t			 drop_us;	/* when dropped, or -1 */
	int64_t			 back_us;	/* all up again after, or -1 */
	size_t			 in_flight;	/* actions under way at it */
	int64_t			*after;		/* sign-in times past it */
	size_t			 nafter, aftercap;
};

static const char *const sim_load_kinds[3] = {
	"completed", "failed", "cancelled",
};

void
sim_load_violation(struct sim_load *l, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (l->violations < SIM_LOAD_REASONS)
		snprintf(l->reason[l->violations], sizeof(l->reason[0]), "%s",
		    msg);
	if (l->violations < SIM_LOAD_LOGGED)
		log_warnx("load: %s", msg);
	l->violations++;
}

/* The profile's steps; 0, or -1 with err. */
static int
sim_load_steps(struct sim_load *l, char *err, size_t errlen)
{
	const struct sim_scenario *sc = l->p.profile;
	struct sim_send_step ss;
	const cJSON *t;
	size_t i, n = sim_scenario_steps(sc);

	if (n == 0) {
		snprintf(err, errlen, "the load profile sends no action");
		return -1;
	}
	if ((l->steps = calloc(n, sizeof(*l->steps))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (sim_scenario_send_step(sc, i, &ss) == -1) {
			snprintf(err, errlen, "load profile line %d: only "
			    "\"send\" lines of one action belong in a profile",
			    ss.lineno);
			return -1;
		}
		t = cJSON_GetObjectItemCaseSensitive(ss.action, "action_type");
		if (cJSON_GetObjectItemCaseSensitive(ss.action, "id") != NULL ||
		    !cJSON_IsString(t) || strlen(t->valuestring) >=
		    SIM_LOAD_TYPE_MAX) {
			snprintf(err, errlen, "load profile line %d: an "
			    "action_type and no fixed id", ss.lineno);
			return -1;
		}
		l->steps[i].tmpl = ss.action;
		snprintf(l->steps[i].type, sizeof(l->steps[i].type), "%s",
		    t->valuestring);
		l->steps[i].expect = ss.expect;
		l->steps[i].events = ss.events;
		l->steps[i].nevents = ss.events != NULL ?
		    cJSON_GetArraySize(ss.events) : 0;
		l->steps[i].lineno = ss.lineno;
		sim_hist_init(&l->steps[i].term);
	}
	l->nsteps = n;
	return 0;
}

struct sim_load *
sim_load_new(const struct sim_load_params *p, struct sim_fleet *fleet,
    struct sim_transcript *tr, const struct sim_load_ops *ops,
    int64_t now_us, char *err, size_t errlen)
{
	struct sim_load *l;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->p = *p;
	l->ops = *ops;
	l->fleet = fleet;
	l->tr = tr;
	l->n = sim_fleet_count(fleet);
	l->t0_us = now_us;
	l->start_us = l->all_up_us = l->drop_us = l->back_us = -1;
	l->win_us = now_us;
	/* A hair up: 0.29 x 100 is 28.999999999999996 in doubles. */
	l->total = (uint64_t)floor(p->rate * p->duration_s * (1 + 1e-12));
	sim_hist_init(&l->first);
	sim_hist_init(&l->term);
	sim_hist_init(&l->win);
	sim_hist_init(&l->lag);
	if ((l->m = calloc(l->n, sizeof(*l->m))) == NULL ||
	    (l->ring = calloc(l->n, sizeof(*l->ring))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (sim_load_steps(l, err, errlen) == -1)
		goto fail;
	return l;
fail:
	sim_load_free(l);
	return NULL;
}

void
sim_load_free(struct sim_load *l)
{
	if (l == NULL)
		return;
	free(l->steps);
	free(l->m);
	free(l->ring);
	free(l->act);
	free(l->after);
	free(l);
}

static void
sim_load_idle(struct sim_load *l, size_t i)
{
	if (l->m[i].queued || l->m[i].current != 0 || !l->m[i].connected)
		return;
	l->ring[(l->rhead + l->rcount++) % l->n] = i;
	l->m[i].queued = 1;
}

void
sim_load_connected(struct sim_load *l, struct sim_machine *m, int64_t now_us)
{
	struct sim_load_mach *lm = &l->m[m->idx];

	if (lm->connected)
		return;
	lm->connected = 1;
	lm->have_id = 0;	/* frame ids rise per process, per socket */
	/* Machines staggered through the profile keep its mix steady: in
	 * lockstep, all of them run one type at a time, so the offered
	 * load is R/s of that type (2,000 lid_image uploads a second),
	 * not R/s of the mix. */
	if (lm->connects++ == 0) {
		l->ever++;
		if (!l->p.lockstep)
			lm->step = m->idx % l->nsteps;
	}
	else if (lm->connects == 2)
		l->reconnected++;
	l->connected++;
	if (l->connected == l->n && l->all_up_us == -1)
		l->all_up_us = now_us;
	if (l->connected == l->n && l->drop_us >= 0 && l->back_us == -1) {
		l->back_us = now_us;
		log_info("load: all %zu machines back %.3f s after the drop",
		    l->n, (double)(now_us - l->drop_us) / 1e6);
		if (l->total > 0 && l->nact == l->total && l->ended >= l->nact)
			l->done = 1;
	}
	sim_load_idle(l, m->idx);
}

void
sim_load_signin(struct sim_load *l, int64_t now_us)
{
	int64_t *na;
	size_t cap;

	l->signins++;
	if (l->drop_us < 0)
		return;
	if (l->nafter == l->aftercap) {
		cap = l->aftercap == 0 ? 1024 : 2 * l->aftercap;
		if ((na = reallocarray(l->after, cap, sizeof(*na))) == NULL) {
			sim_load_violation(l, "out of memory for sign-in "
			    "times");
			return;
		}
		l->after = na;
		l->aftercap = cap;
	}
	l->after[l->nafter++] = now_us;
}

size_t
sim_load_window_max(const int64_t *t, size_t n, int64_t win_us)
{
	size_t lo = 0, hi, best = 0;

	/* Two pointers: [t[lo], t[hi]] is the widest run under win_us that
	 * ends at t[hi]; a window starting at some t[lo] is a best one. */
	for (hi = 0; hi < n; hi++) {
		while (t[hi] - t[lo] >= win_us)
			lo++;
		if (hi - lo + 1 > best)
			best = hi - lo + 1;
	}
	return best;
}

/* --drop-all-at: close every socket once, when due. */
static void
sim_load_drop(struct sim_load *l, int64_t now_us)
{
	size_t i;

	if (l->p.drop_at_s <= 0 || l->drop_us >= 0 || l->ops.drop_all ==
	    NULL || now_us < l->start_us + (int64_t)(l->p.drop_at_s * 1e6))
		return;
	for (i = 0; i < l->n; i++)
		if (l->m[i].current != 0)
			l->in_flight++;
	l->drop_us = now_us;
	log_info("load: dropping all %zu sockets, %zu actions under way",
	    l->connected, l->in_flight);
	l->ops.drop_all(l->ops.arg);
}

void
sim_load_disconnected(struct sim_load *l, struct sim_machine *m,
    int64_t now_us)
{
	struct sim_load_mach *lm = &l->m[m->idx];

	(void)now_us;
	if (!lm->connected)
		return;
	/* An action under way stays so: the machine sends its events
	 * once back.  Its place in the ring is dropped when popped. */
	lm->connected = 0;
	l->connected--;
}

static struct sim_load_action *
sim_load_find(struct sim_load *l, int64_t id)
{
	if (id < SIM_ID_BASE || (uint64_t)(id - SIM_ID_BASE) >= l->nact)
		return NULL;
	return &l->act[id - SIM_ID_BASE];
}

/* No drop asked for, or it happened and every machine came back: the run
 * may end early once all actions are answered. */
static int
sim_load_drop_over(const struct sim_load *l)
{
	return l->p.drop_at_s <= 0 || l->back_us >= 0;
}

/* An event for an action of m's. */
static void
sim_load_event(struct sim_load *l, struct sim_machine *m, int64_t id,
    const char *ev, int64_t now_us)
{
	struct sim_load_action *a = sim_load_find(l, id);
	const struct sim_load_step *st;
	const cJSON *want;
	size_t k;

	if (a == NULL || a->machine != m->idx) {
		sim_load_violation(l, "S%s: event %s for action %lld, not "
		    "one the sim sent it", m->serial, ev, (long long)id);
		return;
	}
	st = &l->steps[a->step];
	if (a->first_us == -1) {
		a->first_us = now_us;
		sim_hist_add(&l->first, now_us - a->due_us);
	}
	if (sim_scenario_is_terminal(st->type, ev) && a->terminals > 0) {
		l->dup++;
		sim_load_violation(l, "S%s: action %lld: a second terminal "
		    "event, %s", m->serial, (long long)id, ev);
		return;
	}
	if (st->events != NULL && !a->bad) {
		want = a->nev < st->nevents ? cJSON_GetArrayItem(st->events,
		    a->nev) : NULL;
		/* One report per action: the rest follows from it. */
		a->bad = want == NULL || strcmp(want->valuestring, ev) != 0;
		if (a->bad)
			sim_load_violation(l, "S%s: action %lld (line %d): "
			    "event #%d is %s, expected %s", m->serial,
			    (long long)id, st->lineno, a->nev + 1, ev,
			    want != NULL ? want->valuestring : "none");
	}
	if (a->nev < UINT16_MAX)
		a->nev++;
	if (!sim_scenario_is_terminal(st->type, ev))
		return;
	a->terminals++;
	l->ended++;
	for (k = 0; k < 3; k++)
		if (strcmp(ev + strlen(st->type) + 1, sim_load_kinds[k]) == 0)
			l->terminals[k]++;
	sim_hist_add(&l->term, now_us - a->due_us);
	sim_hist_add(&l->steps[a->step].term, now_us - a->due_us);
	sim_hist_add(&l->win, now_us - a->due_us);
	if (st->expect != NULL && strcmp(st->expect, ev) != 0)
		sim_load_violation(l, "S%s: action %lld (line %d) ended %s, "
		    "expected %s", m->serial, (long long)id, st->lineno, ev,
		    st->expect);
	else if (st->events != NULL && !a->bad && a->nev != st->nevents)
		sim_load_violation(l, "S%s: action %lld (line %d) ended after "
		    "%d events, expected %d", m->serial, (long long)id,
		    st->lineno, a->nev, st->nevents);
	if (l->m[m->idx].current == id) {
		l->m[m->idx].current = 0;
		sim_load_idle(l, m->idx);
	}
	if (l->total > 0 && l->nact == l->total && l->ended >= l->nact &&
	    sim_load_drop_over(l))
		l->done = 1;	/* all answered: no need to wait longer */
}

/* One line of a frame (PROTOCOL.md 4.2); 0, or -1 when it was bad. */
static int
sim_load_line(struct sim_load *l, struct sim_machine *m, const char *line,
    size_t len, int64_t now_us)
{
	struct sim_load_mach *lm = &l->m[m->idx];
	const cJSON *type, *ver, *ts, *id, *ev, *aid;
	cJSON *f;
	int r = -1;

	f = cJSON_ParseWithLength(line, len);
	type = cJSON_GetObjectItemCaseSensitive(f, "type");
	ver = cJSON_GetObjectItemCaseSensitive(f, "version");
	ts = cJSON_GetObjectItemCaseSensitive(f, "timestamp");
	id = cJSON_GetObjectItemCaseSensitive(f, "id");
	if (!cJSON_IsObject(f) || !cJSON_IsString(type) ||
	    !cJSON_IsNumber(ver) || ver->valuedouble != 1 ||
	    !cJSON_IsNumber(ts) || ts->valuedouble != floor(ts->valuedouble) ||
	    !cJSON_IsNumber(id) || id->valuedouble != floor(id->valuedouble)) {
		sim_load_violation(l, "S%s: a frame line without a valid "
		    "type, version, timestamp and id: %.80s", m->serial, line);
		goto done;
	}
	if (lm->have_id && (int64_t)id->valuedouble <= lm->last_id) {
		sim_load_violation(l, "S%s: frame id %lld does not rise past "
		    "%lld", m->serial, (long long)id->valuedouble,
		    (long long)lm->last_id);
		goto done;
	}
	lm->have_id = 1;
	lm->last_id = (int64_t)id->valuedouble;
	if (strcmp(type->valuestring, "event") != 0) {
		r = strcmp(type->valuestring, "log") == 0 ||
		    strcmp(type->valuestring, "progress") == 0 ? 0 : -1;
		if (r == -1)
			sim_load_violation(l, "S%s: a frame of type %.20s",
			    m->serial, type->valuestring);
		goto done;
	}
	ev = cJSON_GetObjectItemCaseSensitive(f, "event");
	aid = cJSON_GetObjectItemCaseSensitive(f, "action_id");
	if (!cJSON_IsString(ev) || (aid != NULL && !cJSON_IsNumber(aid))) {
		sim_load_violation(l, "S%s: an event without a valid event "
		    "or action_id", m->serial);
		goto done;
	}
	if (aid != NULL)
		sim_load_event(l, m, (int64_t)aid->valuedouble, ev->valuestring,
		    now_us);
	r = 0;
done:
	cJSON_Delete(f);
	return r;
}

void
sim_load_rx(struct sim_load *l, struct sim_machine *m, const char *msg,
    size_t len, int64_t now_us)
{
	const char *line, *nl, *end = msg + len;

	/* One pass over the frame for every secret the sim issued. */
	if (l->tr != NULL && sim_transcript_leaks(l->tr, msg, len)) {
		sim_load_violation(l, "S%s: a frame holds a secret (password "
		    "or token)", m->serial);
		return;
	}
	if (!sim_transcript_utf8_valid(msg, len) || len == 0 ||
	    msg[len - 1] != '\n') {
		sim_load_violation(l, "S%s: a frame that is not "
		    "newline-terminated UTF-8", m->serial);
		return;
	}
	for (line = msg; line < end; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (sim_load_line(l, m, line, (size_t)(nl - line), now_us) ==
		    -1)
			return;
	}
}

/* The next machine free to take an action, or NULL. */
static struct sim_machine *
sim_load_pop(struct sim_load *l)
{
	size_t i;

	while (l->rcount > 0) {
		i = l->ring[l->rhead];
		l->rhead = (l->rhead + 1) % l->n;
		l->rcount--;
		l->m[i].queued = 0;
		if (l->m[i].connected && l->m[i].current == 0)
			return sim_fleet_machine(l->fleet, i);
	}
	return NULL;
}

static int
sim_load_send(struct sim_load *l, struct sim_machine *m, int64_t due_us,
    int64_t now_us)
{
	struct sim_load_mach *lm = &l->m[m->idx];
	struct sim_load_action *na, *a;
	int64_t id = SIM_ID_BASE + (int64_t)l->nact;
	cJSON *j;
	char *txt;
	int r;

	if (l->nact == l->actcap) {
		l->actcap = l->actcap == 0 ? 4096 : 2 * l->actcap;
		if ((na = reallocarray(l->act, l->actcap, sizeof(*na))) ==
		    NULL)
			return -1;
		l->act = na;
	}
	a = &l->act[l->nact];
	memset(a, 0, sizeof(*a));
	a->due_us = due_us;
	a->first_us = -1;
	a->machine = (uint32_t)m->idx;
	a->step = (uint16_t)lm->step;
	j = sim_scenario_action(l->steps[lm->step].tmpl, id, m->serial,
	    l->ops.pulse_url, l->ops.upload_url, l->ops.arg);
	if (j == NULL || (txt = cJSON_PrintUnformatted(j)) == NULL) {
		cJSON_Delete(j);
		return -1;
	}
	cJSON_Delete(j);
	r = l->ops.send(l->ops.arg, m, txt, strlen(txt));
	free(txt);
	if (r == -1)
		return -1;
	l->nact++;
	l->win_sent++;
	sim_hist_add(&l->lag, now_us - due_us);
	lm->current = id;
	lm->step = (lm->step + 1) % l->nsteps;
	return 0;
}

static int
sim_load_ready(struct sim_load *l, int64_t now_us)
{
	if (l->start_us != -1)
		return 1;
	if (now_us - l->t0_us < (int64_t)(l->p.ramp_s * 1e6) &&
	    (l->connected < l->n || (l->p.start_signins > 0 &&
	    l->ops.signins(l->ops.arg) < (int)l->p.start_signins)))
		return 0;
	l->start_us = now_us;
	l->end_us = now_us + (int64_t)((l->p.duration_s + l->p.grace_s) *
	    1e6);
	log_info("load: %zu of %zu machines up; %llu actions at %g/s for "
	    "%g s", l->connected, l->n, (unsigned long long)l->total,
	    l->p.rate, l->p.duration_s);
	return 1;
}

int64_t
sim_load_tick(struct sim_load *l, int64_t now_us)
{
	struct sim_machine *m;
	uint64_t due;
	int64_t t;

	if (l->done)
		return -1;
	if (!sim_load_ready(l, now_us))
		return now_us + 10000;
	/* Actions due so far: k is due at start + k / rate. */
	due = l->p.rate > 0 ? (uint64_t)floor((double)(now_us - l->start_us) *
	    l->p.rate / 1e6) + 1 : 0;
	if (due > l->total)
		due = l->total;
	while (l->nact < due && (m = sim_load_pop(l)) != NULL) {
		t = l->start_us + (int64_t)ceil((double)l->nact * 1e6 /
		    l->p.rate);
		if (sim_load_send(l, m, t, now_us) == -1) {
			sim_load_violation(l, "cannot queue an action for S%s",
			    m->serial);
			break;
		}
	}
	/* After the sends: an action due at the drop is then under way. */
	sim_load_drop(l, now_us);
	/* With no action to send (--rate 0), the sim only serves the fleet
	 * until the end (or a signal). */
	if ((l->total > 0 && l->nact == l->total && l->ended >= l->nact &&
	    sim_load_drop_over(l)) || now_us >= l->end_us) {
		l->done = 1;
		return -1;
	}
	if (l->nact == l->total)
		t = l->end_us;	/* only terminals to wait for */
	else if (l->nact >= due)
		t = l->start_us + (int64_t)ceil((double)l->nact * 1e6 /
		    l->p.rate);
	else
		t = now_us + 1000;	/* a backlog: look again soon */
	if (l->p.drop_at_s > 0 && l->drop_us < 0 && l->start_us +
	    (int64_t)(l->p.drop_at_s * 1e6) < t)
		t = l->start_us + (int64_t)(l->p.drop_at_s * 1e6);
	return t < l->end_us ? t : l->end_us;
}

int
sim_load_done(const struct sim_load *l)
{
	return l->done;
}

void
sim_load_stop(struct sim_load *l, int64_t now_us)
{
	(void)now_us;
	l->stopped = 1;
	l->done = 1;
}

void
sim_load_progress(struct sim_load *l, int64_t now_us, FILE *fp)
{
	double secs = (double)(now_us - l->win_us) / 1e6;

	if (secs <= 0)
		return;
	fprintf(fp, "load: %zu/%zu connected, %.1f actions/s, p99 %lld us, "
	    "%llu/%zu answered, failures %llu, sign-ins %llu", l->connected,
	    l->n, (double)l->win_sent / secs,
	    (long long)sim_hist_percentile(&l->win, 99), (unsigned long
	    long)l->ended, l->nact, (unsigned long long)(l->violations),
	    (unsigned long long)l->signins);
	if (l->drop_us >= 0)
		fprintf(fp, " (%zu since the drop, at most %zu in 1 s)",
		    l->nafter, sim_load_window_max(l->after, l->nafter,
		    1000000));
	fputc('\n', fp);
	fflush(fp);
	sim_hist_init(&l->win);
	l->win_sent = 0;
	l->win_us = now_us;
}

char *
sim_load_metrics(struct sim_load *l)
{
	const struct sim_hist *h = &l->term;
	uint64_t cum = 0;
	size_t i = 0, k;
	char *buf = NULL;
	size_t len = 0;
	FILE *fp;

	if ((fp = open_memstream(&buf, &len)) == NULL)
		return NULL;
	fprintf(fp, "# HELP gfsim_machines Machines in the fleet.\n"
	    "# TYPE gfsim_machines gauge\ngfsim_machines %zu\n"
	    "# HELP gfsim_machines_connected Machines with a socket now.\n"
	    "# TYPE gfsim_machines_connected gauge\n"
	    "gfsim_machines_connected %zu\n"
	    "# HELP gfsim_actions_sent_total Actions sent.\n"
	    "# TYPE gfsim_actions_sent_total counter\n"
	    "gfsim_actions_sent_total %zu\n"
	    "# HELP gfsim_terminals_total Terminal events by kind.\n"
	    "# TYPE gfsim_terminals_total counter\n", l->n, l->connected,
	    l->nact);
	for (k = 0; k < 3; k++)
		fprintf(fp, "gfsim_terminals_total{kind=\"%s\"} %llu\n",
		    sim_load_kinds[k], (unsigned long long)l->terminals[k]);
	fprintf(fp, "# HELP gfsim_duplicated_total Second terminal events.\n"
	    "# TYPE gfsim_duplicated_total counter\n"
	    "gfsim_duplicated_total %llu\n"
	    "# HELP gfsim_violations_total Protocol violations.\n"
	    "# TYPE gfsim_violations_total counter\n"
	    "gfsim_violations_total %llu\n"
	    "# HELP gfsim_action_latency_microseconds From an action's due "
	    "time to its terminal event.\n"
	    "# TYPE gfsim_action_latency_microseconds histogram\n",
	    (unsigned long long)l->dup, (unsigned long long)l->violations);
	/* le = 2^k - 1: every bucket up to there lies wholly below. */
	for (k = SIM_HIST_SUB_BITS; k < SIM_HIST_MAX_BITS; k++) {
		for (; i < SIM_HIST_BUCKETS && sim_hist_high(i) <
		    ((int64_t)1 << k); i++)
			cum += h->n[i];
		fprintf(fp, "gfsim_action_latency_microseconds_bucket{le=\"%lld"
		    "\"} %llu\n", (long long)(((int64_t)1 << k) - 1),
		    (unsigned long long)cum);
	}
	fprintf(fp, "gfsim_action_latency_microseconds_bucket{le=\"+Inf\"} "
	    "%llu\ngfsim_action_latency_microseconds_sum %lld\n"
	    "gfsim_action_latency_microseconds_count %llu\n",
	    (unsigned long long)h->count, (long long)h->sum,
	    (unsigned long long)h->count);
	if (fclose(fp) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void
sim_load_json_hist(FILE *fp, const char *name, const struct sim_hist *h)
{
	fprintf(fp, "    \"%s\": {\"count\": %llu, \"p50\": %lld, \"p90\": "
	    "%lld, \"p99\": %lld, \"p99_9\": %lld, \"max\": %lld}", name,
	    (unsigned long long)h->count,
	    (long long)sim_hist_percentile(h, 50),
	    (long long)sim_hist_percentile(h, 90),
	    (long long)sim_hist_percentile(h, 99),
	    (long long)sim_hist_percentile(h, 99.9), (long long)h->max);
}

/* VmRSS and VmHWM of this process, KiB. */
static void
sim_load_mem(long *rss, long *hwm)
{
	char line[128];
	FILE *fp;

	*rss = *hwm = -1;
	if ((fp = fopen("/proc/self/status", "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), fp) != NULL) {
		(void)(sscanf(line, "VmRSS: %ld kB", rss) == 1 ||
		    sscanf(line, "VmHWM: %ld kB", hwm) == 1);
	}
	fclose(fp);
}

static void
sim_load_json_esc(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(fp, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(fp, "\\u%04x", *s);
		else
			fputc(*s, fp);
	}
	fputc('"', fp);
}

/* The sign-ins, and how the fleet came back after --drop-all-at. */
static void
sim_load_write_drop(struct sim_load *l, FILE *fp)
{
	fprintf(fp, "  \"signins_total\": %llu,\n  \"drop\": ",
	    (unsigned long long)l->signins);
	if (l->drop_us < 0) {
		fprintf(fp, "null,\n");
		return;
	}
	fprintf(fp, "{\"at_s\": %.3f, \"in_flight\": %zu, \"signins_after\": "
	    "%zu, \"max_signins_1s\": %zu, \"all_back_s\": ",
	    (double)(l->drop_us - l->t0_us) / 1e6, l->in_flight, l->nafter,
	    sim_load_window_max(l->after, l->nafter, 1000000));
	if (l->back_us >= 0)
		fprintf(fp, "%.3f},\n", (double)(l->back_us - l->drop_us) / 1e6);
	else
		fprintf(fp, "null},\n");
}

static void
sim_load_write(struct sim_load *l, FILE *fp, int64_t now_us,
    uint64_t lost, uint64_t unsent)
{
	struct rusage ru;
	long rss, hwm;
	size_t i;

	getrusage(RUSAGE_SELF, &ru);
	sim_load_mem(&rss, &hwm);
	fprintf(fp, "{\n  \"machines\": %zu,\n  \"connected\": %zu,\n"
	    "  \"connected_at_end\": %zu,\n  \"reconnected\": %zu,\n",
	    l->n, l->ever, l->connected, l->reconnected);
	if (l->all_up_us >= 0)
		fprintf(fp, "  \"all_up_s\": %.3f,\n",
		    (double)(l->all_up_us - l->t0_us) / 1e6);
	else
		fprintf(fp, "  \"all_up_s\": null,\n");
	fprintf(fp, "  \"signins\": %d,\n  \"rate\": %g,\n"
	    "  \"lockstep\": %s,\n  \"duration_s\": %g,\n  \"elapsed_s\": %.3f,\n  \"stopped_by_signal\": %s,\n"
	    "  \"actions_scheduled\": %llu,\n  \"actions_sent\": %zu,\n"
	    "  \"not_sent\": %llu,\n  \"terminals\": {", l->ops.signins(
	    l->ops.arg), l->p.rate, l->p.lockstep ? "true" : "false",
	    l->p.duration_s, (double)(now_us -
	    l->t0_us) / 1e6, l->stopped ? "true" : "false",
	    (unsigned long long)l->total, l->nact, (unsigned long long)unsent);
	for (i = 0; i < 3; i++)
		fprintf(fp, "%s\"%s\": %llu", i ? ", " : "", sim_load_kinds[i],
		    (unsigned long long)l->terminals[i]);
	fprintf(fp, "},\n");
	sim_load_write_drop(l, fp);
	fprintf(fp, "  \"lost\": %llu,\n  \"duplicated\": %llu,\n"
	    "  \"violations\": %llu,\n  \"violation_reasons\": [",
	    (unsigned long long)lost, (unsigned long long)l->dup,
	    (unsigned long long)l->violations);
	for (i = 0; i < SIM_LOAD_REASONS && i < l->violations; i++) {
		fputs(i ? ", " : "", fp);
		sim_load_json_esc(fp, l->reason[i]);
	}
	fprintf(fp, "],\n  \"latency_us\": {\n");
	sim_load_json_hist(fp, "first_event", &l->first);
	fprintf(fp, ",\n");
	sim_load_json_hist(fp, "terminal", &l->term);
	fprintf(fp, ",\n");
	sim_load_json_hist(fp, "send_lag", &l->lag);
	fprintf(fp, "\n  },\n  \"terminal_by_step_us\": [\n");
	for (i = 0; i < l->nsteps; i++) {
		fprintf(fp, "%s  {\"line\": %d, \"type\": ", i ? ",\n" : "",
		    l->steps[i].lineno);
		sim_load_json_esc(fp, l->steps[i].type);
		fprintf(fp, ",\n");
		sim_load_json_hist(fp, "terminal", &l->steps[i].term);
		fputc('}', fp);
	}
	fprintf(fp, "\n  ],\n  \"sim\": {\"cpu_user_s\": %.3f, \"cpu_sys_s\": "
	    "%.3f, \"rss_kib\": %ld, \"hwm_kib\": %ld, "
	    "\"poll_calls_skipped\": %llu}\n}\n",
	    (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, rss, hwm,
	    (unsigned long long)sim_uvpoll_skipped());
}

int
sim_load_finish(struct sim_load *l, int64_t now_us)
{
	uint64_t lost = 0, unsent = 0, k;
	int64_t p99;
	FILE *fp;
	int rc = 0;

	for (k = 0; k < l->nact; k++)
		if (l->act[k].terminals == 0)
			lost++;
	if (!l->stopped && l->nact < l->total)
		unsent = l->total - l->nact;
	if (l->p.summary_json != NULL) {
		if ((fp = fopen(l->p.summary_json, "we")) == NULL)
			log_warn("%s", l->p.summary_json);
		else {
			sim_load_write(l, fp, now_us, lost, unsent);
			if (fclose(fp) != 0)
				log_warn("%s", l->p.summary_json);
		}
	}
	p99 = sim_hist_percentile(&l->term, 99);
	if (lost > 0 || unsent > 0 || l->dup > 0 || l->violations > 0) {
		fprintf(stderr, "gf-cloud-sim: FAIL: %llu lost, %llu not sent, "
		    "%llu duplicated, %llu violations%s%s\n",
		    (unsigned long long)lost, (unsigned long long)unsent,
		    (unsigned long long)l->dup,
		    (unsigned long long)l->violations,
		    l->violations > 0 ? "; first: " : "",
		    l->violations > 0 ? l->reason[0] : "");
		rc = 1;
	}
	if (l->p.max_p99_ms > 0 && (double)p99 > l->p.max_p99_ms * 1000) {
		fprintf(stderr, "gf-cloud-sim: FAIL: p99 %lld us past "
		    "--max-p99-ms %g\n", (long long)p99, l->p.max_p99_ms);
		rc = 1;
	}
	log_info("load: %zu actions sent, %llu ended, p99 %lld us", l->nact,
	    (unsigned long long)l->ended, (long long)p99);
	return rc;
}
