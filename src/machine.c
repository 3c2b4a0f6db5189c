/*
 * machine: see machine.h.  The link's rules are today's: back-off from
 * 250 ms doubling to 60 s with up to 25 % jitter, reset after 30 s up;
 * wrong credentials are said once, then retried quietly every 60 s.
 */
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
#include "queue.h"
#include "ws.h"

#define MACHINE_QUEUE_MAX	1000	/* frames; the reference's bound */
#define MACHINE_BACKOFF_MIN	250	/* ms, first retry after a drop */
#define MACHINE_BACKOFF_MAX	60000	/* ms */
#define MACHINE_BACKOFF_AUTH	60000	/* ms, after wrong credentials */
#define MACHINE_HEALTHY_MS	30000	/* ms up that resets the back-off */
#define MACHINE_STOP_FLUSH_MS	1000	/* ms to flush tx at shutdown */
#define MACHINE_DEFAULT_FW	"2.6.0-2228"

struct machine {
	const struct config	*cf;
	struct evloop		*ev;
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
	void			(*stopped)(void *);
	void			*stopped_arg;
};

static void	machine_sign_in(struct machine *);

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
	const char *mine = m->cf->fw_version ? m->cf->fw_version :
	    MACHINE_DEFAULT_FW;

	m->probe = NULL;
	if (m->state == MACHINE_STOPPING || r == CLOUD_ERR_CANCELLED) {
		free(version);
		return;
	}
	if (r != CLOUD_OK || version == NULL)
		log_warnx("firmware probe failed: %s", cloud_strerror(r));
	else if (strcmp(version, mine) != 0)
		log_notice("service offers firmware %s, machine runs %s "
		    "(nothing is installed)", version, mine);
	free(version);
}

/* The socket closed (or never opened) while serving: back off, again. */
static void
machine_lost(struct machine *m, int64_t up)
{
	int64_t wait;

	if (up >= MACHINE_HEALTHY_MS)
		m->backoff = MACHINE_BACKOFF_MIN;
	wait = machine_jitter(m, m->backoff);
	log_info("status socket lost after %lld ms; reconnecting in %lld ms",
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
		cloud_secret_free(token);
		return;
	}
	if (r == CLOUD_ERR_AUTH) {
		/* One clear line, then quiet, slow retries. */
		if (!m->auth_reported)
			log_errx("sign-in refused: check the serial and "
			    "password; retrying every %d s",
			    MACHINE_BACKOFF_AUTH / 1000);
		m->auth_reported = 1;
		sd_notify(0, "STATUS=sign-in refused (credentials)");
		machine_wait(m, MACHINE_BACKOFF_AUTH);
		return;
	}
	if (r != CLOUD_OK) {
		wait = machine_jitter(m, m->backoff);
		log_warnx("sign-in failed (%s); retrying in %lld ms",
		    cloud_strerror(r), (long long)wait);
		machine_backoff_grow(m);
		machine_wait(m, wait);
		return;
	}
	m->auth_reported = 0;
	m->state = MACHINE_CONNECTING;
	r = ws_open(m->ws, token) == 0 ? CLOUD_OK : CLOUD_ERR_NET;
	cloud_secret_free(token);
	if (r != CLOUD_OK) {
		machine_lost(m, 0);
		return;
	}
	/* After the socket is asked for: the ws_token lives ~30 s and a
	 * slow probe must not outlast it. */
	if (!m->probed && m->cf->fw_check) {
		m->probed = 1;
		m->probe = cloud_fw_probe_start(m->cloud, m->ev,
		    machine_probe_done, m);
	}
}

static void
machine_sign_in(struct machine *m)
{
	m->state = MACHINE_SIGNING_IN;
	if ((m->signin = cloud_sign_in_start(m->cloud, m->ev,
	    machine_signed_in, m)) == NULL) {
		log_warnx("cannot start a sign-in; retrying in %d ms",
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

struct machine *
machine_new(const struct config *cf, const struct seq_table *seq,
    struct evloop *ev)
{
	struct ws_hooks h = { machine_line, machine_up, machine_closed, NULL };
	struct ws_params wp;
	struct machine *m;
	char ua[64];

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->cf = cf;
	m->ev = ev;
	m->backoff = MACHINE_BACKOFF_MIN;
	m->seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)m;
	h.arg = m;
	if (uv_timer_init(evloop_uv(ev), &m->timer) != 0)
		goto fail;
	m->timer.data = m;
	m->timer_open = 1;
	if ((m->cloud = cloud_new(cf)) == NULL) {
		log_warnx("cannot set up the HTTP client");
		goto fail;
	}
	memset(&wp, 0, sizeof(wp));
	snprintf(ua, sizeof(ua), "OpenGlow/%s",
	    cf->fw_version ? cf->fw_version : MACHINE_DEFAULT_FW);
	wp.url = cf->status_service_url;
	wp.ca_file = cf->ca_file;
	wp.user_agent = ua;
	wp.origin = "http://status.glowforge.com";
	if ((m->ws = ws_new(ev, &wp, &h)) == NULL)
		goto fail;
	/* Ours, small frames: bounded by count alone. */
	if ((m->tx = queue_new(MACHINE_QUEUE_MAX, 0, ws_wake, m->ws)) == NULL)
		goto fail;
	ws_start(m->ws, m->tx);
	/* The .info/.puls folder is made (and checked) by the store on the
	 * first job; a problem there is logged but never stops the machine. */
	if ((m->dispatch = dispatch_new(cf, m->cloud, seq, ev, m->tx)) == NULL)
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
		log_warnx("%zu frames not sent at shutdown", queue_len(m->tx));
	m->state = MACHINE_STOPPED;
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
	free(m);
}
