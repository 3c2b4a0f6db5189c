/*
 * machine: see machine.h.  The link's rules are today's: back-off from
 * 250 ms doubling to 60 s with up to 25 % jitter, reset after 30 s up;
 * wrong credentials are said once, then retried quietly every 60 s.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>
#include <uv.h>

#include "cloud.h"
#include "config.h"
#include "dispatch.h"
#include "evloop.h"
#include "log.h"
#include "machine.h"
#include "metrics.h"
#include "mlog.h"
#include "proto.h"
#include "queue.h"
#include "secret.h"
#include "ws.h"

#define MACHINE_QUEUE_MAX	1000	/* frames; the reference's bound */
#define MACHINE_BACKOFF_MIN	250	/* ms, first retry after a drop */
#define MACHINE_BACKOFF_MAX	60000	/* ms */
#define MACHINE_BACKOFF_AUTH	60000	/* ms, after wrong credentials */
#define MACHINE_HEALTHY_MS	30000	/* ms up that resets the back-off */
#define MACHINE_STOP_FLUSH_MS	1000	/* ms to flush tx at shutdown */

const struct mlog mlog_single = { "", LOG_INFO, "" };

/*
 * The fleet's sign-ins go through one token bucket: at most rate a second,
 * bursts of a tenth of a second's worth, so a cloud that dropped every
 * socket sees them come back spread out.  Waiting machines queue in order.
 */
struct machine_gate {
	double			 rate;		/* sign-ins/s; <= 0: no limit */
	double			 tokens;
	double			 cap;
	uint64_t		 last_ms;	/* uv_now() of the last refill */
	uv_timer_t		 timer;
	int			 timer_open;
	struct machine		*head, *tail;	/* waiting, in order */
	struct evloop		*ev;
};

struct machine {
	const struct config	*cf;
	char			*serial;	/* secret half of the login */
	char			*password;	/* secret; wiped at free */
	char			 label[MLOG_LABEL_MAX - 2];	/* "" alone */
	struct mlog		 lgbuf;
	const struct mlog	*lg;		/* &lgbuf */
	struct machine_gate	*gate;		/* or NULL */
	struct machine		*gate_next;	/* waiting at the gate */
	int			 gated;		/* on the gate's list */
	struct evloop		*ev;
	char			*dl_dir;	/* jobs kept there, or NULL */
	struct cloud		*cloud;
	struct ws		*ws;
	struct queue		*tx;		/* frames to the service */
	struct dispatch		*dispatch;
	enum machine_state	 state;
	uv_timer_t		 timer;		/* back-off */
	int			 timer_open;
	struct cloud_op		*signin;	/* under way, or NULL */
	struct cloud_op		*probe;		/* under way, or NULL */
	int64_t			 backoff;	/* ms, next base */
	unsigned		 seed;		/* jitter */
	int			 probed;
	int			 auth_reported;
	int			 ws_stopping;	/* ws_stop() asked; await closed */
	int			 metric;	/* counted as: metrics_state, -1 */
	void			(*stopped)(void *);
	void			*stopped_arg;
};

static void	machine_sign_in(struct machine *);
static void	machine_sign_in_now(struct machine *);

/* ---- the fleet's sign-in gate ------------------------------------------ */

static void
machine_gate_refill(struct machine_gate *g)
{
	uint64_t now = uv_now(evloop_uv(g->ev));

	g->tokens += (double)(now - g->last_ms) * g->rate / 1000.0;
	if (g->tokens > g->cap)
		g->tokens = g->cap;
	g->last_ms = now;
}

static void	machine_gate_tick(uv_timer_t *);

static void
machine_gate_arm(struct machine_gate *g)
{
	double need = 1.0 - g->tokens;		/* tokens */
	uint64_t ms = need <= 0 ? 0 : (uint64_t)(need * 1000.0 / g->rate) + 1;

	uv_timer_start(&g->timer, machine_gate_tick, ms, 0);
}

static void
machine_gate_tick(uv_timer_t *t)
{
	struct machine_gate *g = t->data;
	struct machine *m;

	machine_gate_refill(g);
	while (g->head != NULL && g->tokens >= 1.0) {
		m = g->head;
		if ((g->head = m->gate_next) == NULL)
			g->tail = NULL;
		m->gate_next = NULL;
		m->gated = 0;
		g->tokens -= 1.0;
		machine_sign_in_now(m);
	}
	if (g->head != NULL)
		machine_gate_arm(g);
}

/* 1: m may sign in now; 0: it waits its turn. */
static int
machine_gate_take(struct machine_gate *g, struct machine *m)
{
	if (g->rate <= 0)
		return 1;
	machine_gate_refill(g);
	if (g->head == NULL && g->tokens >= 1.0) {
		g->tokens -= 1.0;
		return 1;
	}
	m->gated = 1;
	if (g->tail != NULL)
		g->tail->gate_next = m;
	else
		g->head = m;
	g->tail = m;
	if (!uv_is_active((uv_handle_t *)&g->timer))
		machine_gate_arm(g);
	return 0;
}

static void
machine_gate_leave(struct machine_gate *g, struct machine *m)
{
	struct machine **pp, *prev = NULL;

	for (pp = &g->head; *pp != NULL; prev = *pp, pp = &(*pp)->gate_next)
		if (*pp == m) {
			*pp = m->gate_next;
			if (g->tail == m)
				g->tail = prev;
			m->gate_next = NULL;
			m->gated = 0;
			return;
		}
}

struct machine_gate *
machine_gate_new(struct evloop *ev, double rate)
{
	struct machine_gate *g;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	g->ev = ev;
	g->rate = rate;
	g->cap = rate / 10 > 1 ? rate / 10 : 1;
	g->tokens = g->cap;
	g->last_ms = uv_now(evloop_uv(ev));
	if (uv_timer_init(evloop_uv(ev), &g->timer) != 0) {
		free(g);
		return NULL;
	}
	g->timer.data = g;
	g->timer_open = 1;
	return g;
}

void
machine_gate_close(struct machine_gate *g)
{
	if (g != NULL && g->timer_open) {
		g->timer_open = 0;
		uv_close((uv_handle_t *)&g->timer, NULL);
	}
}

void
machine_gate_free(struct machine_gate *g)
{
	free(g);
}

const char *
machine_state_name(enum machine_state s)
{
	static const char *const names[MACHINE_STATES] = {
		"idle", "signing_in", "connecting", "up", "backing_off",
		"stopping", "stopped"
	};

	return s < MACHINE_STATES ? names[s] : "?";
}

enum machine_state
machine_state(const struct machine *m)
{
	return m->state;
}

/* The /metrics gauge of machines by state. */
static void
machine_metric(struct machine *m, int to)
{
	if (m->metric != to)
		metrics_machine_move(m->metric, to);
	m->metric = to;
}

/* Back-off with up to 25 % jitter, so a fleet does not reconnect at once. */
static int64_t
machine_jitter(struct machine *m, int64_t ms)
{
	return ms + (int64_t)(rand_r(&m->seed) % (unsigned)(ms / 4 + 1));
}

static void
machine_backoff_grow(struct machine *m)
{
	m->backoff = m->backoff * 2 > MACHINE_BACKOFF_MAX ?
	    MACHINE_BACKOFF_MAX : m->backoff * 2;
}

static void
machine_retry(uv_timer_t *t)
{
	machine_sign_in(t->data);
}

static void
machine_wait(struct machine *m, int64_t ms)
{
	m->state = MACHINE_BACKING_OFF;
	uv_timer_start(&m->timer, machine_retry, (uint64_t)ms, 0);
}

static void
machine_probe_done(void *arg, enum cloud_result r, char *version)
{
	struct machine *m = arg;

	m->probe = NULL;
	if (m->state == MACHINE_STOPPING || r == CLOUD_ERR_CANCELLED) {
		free(version);
		return;
	}
	/* At start-up, a current firmware goes without saying. */
	(void)cloud_fw_probe_check(m->lg, r, version,
	    proto_fw_version(m->cf->fw_version), 0);
	free(version);
}

/* The socket closed (or never opened) while serving: back off, again. */
static void
machine_lost(struct machine *m, int64_t up)
{
	int64_t wait;

	machine_metric(m, METRICS_SIGNING_IN);
	metrics_inc(METRICS_RECONNECTS);
	if (up >= MACHINE_HEALTHY_MS)
		m->backoff = MACHINE_BACKOFF_MIN;
	wait = machine_jitter(m, m->backoff);
	MLOG(m->lg, LOG_INFO, 0,
	    "status socket lost after %lld ms; reconnecting in %lld ms",
	    (long long)up, (long long)wait);
	machine_backoff_grow(m);
	machine_wait(m, wait);
}

static void
machine_signed_in(void *arg, enum cloud_result r, char *token)
{
	struct machine *m = arg;
	int64_t wait;

	m->signin = NULL;
	if (m->state != MACHINE_SIGNING_IN) {	/* stopping */
		secret_free(token);
		return;
	}
	metrics_inc(r == CLOUD_OK ? METRICS_SIGN_INS : METRICS_SIGN_IN_FAILURES);
	if (r == CLOUD_ERR_AUTH) {
		/* One clear line, then quiet, slow retries. */
		if (!m->auth_reported)
			MLOG(m->lg, LOG_ERR, 0,
			    "sign-in refused: check the serial and "
			    "password; retrying every %d s",
			    MACHINE_BACKOFF_AUTH / 1000);
		m->auth_reported = 1;
		sd_notify(0, "STATUS=sign-in refused (credentials)");
		machine_wait(m, MACHINE_BACKOFF_AUTH);
		return;
	}
	if (r != CLOUD_OK) {
		wait = machine_jitter(m, m->backoff);
		MLOG(m->lg, LOG_WARNING, 0,
		    "sign-in failed (%s); retrying in %lld ms",
		    cloud_strerror(r), (long long)wait);
		machine_backoff_grow(m);
		machine_wait(m, wait);
		return;
	}
	m->auth_reported = 0;
	m->state = MACHINE_CONNECTING;
	r = ws_open(m->ws, token) == 0 ? CLOUD_OK : CLOUD_ERR_NET;
	secret_free(token);
	if (r != CLOUD_OK) {
		machine_lost(m, 0);
		return;
	}
	machine_metric(m, METRICS_ONLINE);
	/* After the socket is asked for: the ws_token lives ~30 s and a
	 * slow probe must not outlast it. */
	if (!m->probed && m->cf->fw_check) {
		m->probed = 1;
		m->probe = cloud_fw_probe_start(m->cloud, m->ev,
		    machine_probe_done, m);
	}
}

static int	machine_gate_take(struct machine_gate *, struct machine *);

static void
machine_sign_in(struct machine *m)
{
	m->state = MACHINE_SIGNING_IN;
	if (m->gate != NULL && !machine_gate_take(m->gate, m))
		return;		/* the gate calls machine_sign_in_now() */
	machine_sign_in_now(m);
}

static void
machine_sign_in_now(struct machine *m)
{
	if ((m->signin = cloud_sign_in_start(m->cloud, m->ev,
	    machine_signed_in, m)) == NULL) {
		MLOG(m->lg, LOG_WARNING, 0,
		    "cannot start a sign-in; retrying in %d ms",
		    MACHINE_BACKOFF_MAX);
		machine_wait(m, MACHINE_BACKOFF_MAX);
	}
}

/* ---- the socket's hooks ------------------------------------------------- */

static void
machine_line(void *arg, const char *line, size_t len)
{
	struct machine *m = arg;

	if (m->state != MACHINE_STOPPING && m->state != MACHINE_STOPPED)
		dispatch_line(m->dispatch, line, len);
}

static void
machine_up(void *arg)
{
	struct machine *m = arg;

	if (m->state == MACHINE_CONNECTING)
		m->state = MACHINE_UP;
}

static void	machine_stopped(struct machine *);

static void
machine_closed(void *arg, int64_t up)
{
	struct machine *m = arg;

	switch (m->state) {
	case MACHINE_STOPPING:
		if (m->ws_stopping)
			machine_stopped(m);
		return;
	case MACHINE_CONNECTING:
	case MACHINE_UP:
		machine_lost(m, up);
		return;
	default:
		return;
	}
}

/* ---- life --------------------------------------------------------------- */

/* The label, the folder and the cloud of machine id. */
static int
machine_identity(struct machine *m, const struct machine_id *id)
{
	const struct config *cf = m->cf;
	int fleet = id != NULL && id->fleet_n > 1;

	m->lg = &m->lgbuf;
	m->lgbuf.info_pri = fleet ? LOG_DEBUG : LOG_INFO;
	m->lgbuf.label = m->label;
	/* Never the serial: see mlog.h. */
	if (fleet && id->hostname != NULL && *id->hostname != '\0')
		snprintf(m->label, sizeof(m->label), "%s", id->hostname);
	else if (fleet)
		snprintf(m->label, sizeof(m->label), "m%zu", id->index);
	if (fleet)
		snprintf(m->lgbuf.prefix, sizeof(m->lgbuf.prefix), "%s: ",
		    m->label);
	m->gate = id != NULL ? id->gate : NULL;
	if ((m->serial = strdup(id != NULL && id->serial != NULL ? id->serial :
	    cf->serial != NULL ? cf->serial : "")) == NULL ||
	    (m->password = strdup(id != NULL && id->password != NULL ?
	    id->password : cf->password != NULL ? cf->password : "")) == NULL)
		return -1;
	/* A fleet keeps each machine's jobs in a folder of its own. */
	if (id != NULL && !id->keep_jobs)
		m->dl_dir = NULL;
	else if (fleet && cf->motion_dl_dir != NULL) {
		if (asprintf(&m->dl_dir, "%s/%s", cf->motion_dl_dir,
		    m->serial) < 0) {
			m->dl_dir = NULL;
			return -1;
		}
	} else if (cf->motion_dl_dir != NULL &&
	    (m->dl_dir = strdup(cf->motion_dl_dir)) == NULL)
		return -1;
	/* The label names the cloud's lines too; none for a single one. */
	m->cloud = cloud_new_identity(cf, m->serial, m->password,
	    fleet ? m->label : NULL);
	if (m->cloud == NULL) {
		MLOG(m->lg, LOG_WARNING, 0, "cannot set up the HTTP client");
		return -1;
	}
	return 0;
}

struct machine *
machine_new(const struct config *cf, const struct seq_table *seq,
    struct evloop *ev, const struct machine_id *id)
{
	struct ws_hooks h = { machine_line, machine_up, machine_closed, NULL };
	struct dispatch_id did;
	struct ws_params wp;
	struct machine *m;
	char ua[64];

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->cf = cf;
	m->ev = ev;
	m->metric = -1;
	m->backoff = MACHINE_BACKOFF_MIN;
	m->seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)m;
	h.arg = m;
	if (uv_timer_init(evloop_uv(ev), &m->timer) != 0) {
		free(m);
		return NULL;
	}
	m->timer.data = m;
	m->timer_open = 1;
	if (machine_identity(m, id) == -1)
		goto fail;
	memset(&wp, 0, sizeof(wp));
	snprintf(ua, sizeof(ua), "OpenGlow/%s",
	    proto_fw_version(cf->fw_version));
	wp.url = cf->status_service_url;
	wp.ca_file = cf->ca_file;
	wp.user_agent = ua;
	wp.origin = "http://status.glowforge.com";
	wp.lg = m->lg;
	if ((m->ws = ws_new(ev, &wp, &h)) == NULL)
		goto fail;
	/* Ours, small frames: bounded by count alone. */
	if ((m->tx = queue_new(MACHINE_QUEUE_MAX, 0, ws_wake, m->ws)) == NULL)
		goto fail;
	ws_start(m->ws, m->tx);
	/* The .info/.puls folder is made (and checked) by the store on the
	 * first job; a problem there is logged but never stops the machine. */
	did.serial = m->serial;
	did.dl_dir = m->dl_dir;
	did.lg = m->lg;
	if ((m->dispatch = dispatch_new(cf, m->cloud, seq, ev, m->tx,
	    &did)) == NULL)
		goto fail;
	return m;
fail:
	/* Handles on the loop close asynchronously: the caller stops and
	 * frees it as any other; machine_start() refuses it. */
	m->state = MACHINE_STOPPED;
	return m;
}

int
machine_start(struct machine *m)
{
	if (m->state != MACHINE_IDLE || m->dispatch == NULL)
		return -1;
	machine_metric(m, METRICS_SIGNING_IN);
	machine_sign_in(m);
	return 0;
}

void
machine_press_button(struct machine *m)
{
	if (m->dispatch != NULL)
		dispatch_press_button(m->dispatch);
}

void
machine_counts(const struct machine *m, uint64_t *actions,
    uint64_t *failures)
{
	*actions = *failures = 0;
	if (m->dispatch != NULL)
		dispatch_counts(m->dispatch, actions, failures);
}

void
machine_quiet(struct machine *m)
{
	if (m->ws != NULL)
		ws_quiet(m->ws);
}

static void
machine_stopped(struct machine *m)
{
	void (*cb)(void *) = m->stopped;

	if (m->tx != NULL && queue_len(m->tx) > 0)
		MLOG(m->lg, LOG_WARNING, 0,
		    "%zu frames not sent at shutdown", queue_len(m->tx));
	m->state = MACHINE_STOPPED;
	machine_metric(m, -1);
	if (m->timer_open) {
		m->timer_open = 0;
		uv_close((uv_handle_t *)&m->timer, NULL);
	}
	m->stopped = NULL;
	if (cb != NULL)
		cb(m->stopped_arg);
}

/* Every job has ended, its terminal event queued: flush and close. */
static void
machine_jobs_done(void *arg)
{
	struct machine *m = arg;

	m->ws_stopping = 1;
	if (m->ws == NULL || ws_stop(m->ws, MACHINE_STOP_FLUSH_MS) == 1)
		machine_stopped(m);
}

void
machine_stop(struct machine *m, void (*stopped)(void *), void *arg)
{
	if (m->state == MACHINE_STOPPING)
		return;
	m->stopped = stopped;
	m->stopped_arg = arg;
	if (m->state == MACHINE_STOPPED) {	/* never built or started */
		machine_stopped(m);
		return;
	}
	m->state = MACHINE_STOPPING;
	uv_timer_stop(&m->timer);
	if (m->gated)
		machine_gate_leave(m->gate, m);
	/* Their done() runs in here, and sees the state. */
	if (m->signin != NULL)
		cloud_op_cancel(m->signin);
	if (m->probe != NULL)
		cloud_op_cancel(m->probe);
	dispatch_stop(m->dispatch, machine_jobs_done, m);
}

void
machine_free(struct machine *m)
{
	if (m == NULL)
		return;
	dispatch_free(m->dispatch);
	ws_free(m->ws);
	queue_free(m->tx);
	cloud_free(m->cloud);
	secret_free(m->password);
	secret_free(m->serial);		/* half a login */
	free(m->dl_dir);
	free(m);
}

const char *
machine_dl_dir(const struct machine *m)
{
	return m->dl_dir;
}

const char *
machine_label(const struct machine *m)
{
	return m->label;
}
