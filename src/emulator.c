/*
 * emulator: wires the modules together and runs the daemon's life.
 *
 * Threads: main (signals, via sigwaitinfo, so no async-signal-safety
 * puzzles), loop (evloop.h: one libuv loop with every lws call on it, the
 * status socket and the FlashForge listeners; the systemd watchdog is a
 * uv timer there), and for the Glowforge: link (sign-in and reconnects),
 * dispatch (actions) and at most one job.  Signals are blocked before any
 * thread starts, so only main ever receives them.
 *
 * A reload (SIGHUP) reads the file again; a bad one is rejected and the
 * machines keep running.  A good one stops them as at shutdown (a running
 * job ends with its terminal event, the socket closes with 1001), then
 * starts them again with the new settings.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "cloud.h"
#include "config.h"
#include "dispatch.h"
#include "emulator.h"
#include "event.h"
#include "ff_server.h"
#include "log.h"
#include "evloop.h"
#include "mono.h"
#include "queue.h"
#include "sequence.h"
#include "ws.h"

#define EMULATOR_QUEUE_MAX	1000	/* frames; the reference's bound */
/* bytes of received lines waiting for the dispatcher: four of the largest
 * messages (FRAME_MAX_LEN); a burst past it drops the oldest. */
#define EMULATOR_RX_BYTES	(4 << 20)
#define EMULATOR_BACKOFF_MIN	250	/* ms, first retry after a drop */
#define EMULATOR_BACKOFF_MAX	60000	/* ms */
#define EMULATOR_BACKOFF_AUTH	60000	/* ms, after wrong credentials */
#define EMULATOR_HEALTHY_MS	30000	/* ms up that resets the back-off */
#define EMULATOR_STOP_JOB_MS	800	/* ms for a job to end at shutdown */
#define EMULATOR_STOP_FLUSH_MS	1000	/* ms to flush tx at shutdown */

struct emulator {
	const struct config	*cf;
	struct evloop		*ev;
	pthread_t		 loop;		/* runs ev */
	int			 loop_started;
	/* On ev, loop thread only once it runs: the stop request (the one
	 * cross-thread wake evloop needs) and the systemd watchdog. */
	uv_async_t		 loop_stop;
	uv_timer_t		 dog;
	int			 handles_open;
	uint64_t		 dog_ms;	/* ms between pings, 0: off */
	atomic_int		 loop_stop_asked;
	atomic_int		 loop_failed;
	struct ff_server	*ff;		/* or NULL: no FlashForge */
	struct seq_table	*seq;
	struct cloud		*cloud;
	struct ws		*ws;
	struct queue		*rx;	/* lines from the service -> dispatch */
	struct queue		*tx;	/* frames to the service -> ws */
	struct dispatch		*dispatch;
	pthread_t		 link;
	int			 link_started;

	pthread_mutex_t		 mtx;	/* guards stopping */
	pthread_cond_t		 cond;
	int			 stopping;
};

/* Waits ms unless stopping; returns 1 when stopping. */
static int
emulator_sleep(struct emulator *e, int64_t ms)
{
	struct timespec ts;
	int stop, rc = 0;

	mono_deadline(&ts, ms);
	pthread_mutex_lock(&e->mtx);
	while (!e->stopping && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&e->cond, &e->mtx, &ts);
	stop = e->stopping;
	pthread_mutex_unlock(&e->mtx);
	return stop;
}

static int
emulator_is_stopping(struct emulator *e)
{
	int stop;

	pthread_mutex_lock(&e->mtx);
	stop = e->stopping;
	pthread_mutex_unlock(&e->mtx);
	return stop;
}

/* Back-off with up to 25 % jitter, so a fleet does not reconnect at once. */
static int64_t
emulator_jitter(int64_t ms, unsigned *seed)
{
	return ms + (int64_t)(rand_r(seed) % (unsigned)(ms / 4 + 1));
}

static void
emulator_fw_check(struct emulator *e)
{
	const char *mine = e->cf->fw_version ? e->cf->fw_version : "2.6.0-2228";
	enum cloud_result r;
	char *v = NULL;

	if ((r = cloud_fw_probe(e->cloud, &v)) != CLOUD_OK) {
		log_warnx("firmware probe failed: %s", cloud_strerror(r));
		return;
	}
	if (strcmp(v, mine) != 0)
		log_notice("service offers firmware %s, machine runs %s "
		    "(nothing is installed)", v, mine);
	free(v);
}

/*
 * Sign in, open the socket, wait for it to close, back off, again.  Each
 * connection gets a fresh sign-in: a ws_token opens one socket only.
 */
static void *
emulator_link(void *arg)
{
	struct emulator *e = arg;
	int64_t backoff = EMULATOR_BACKOFF_MIN, up, wait;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)e;
	enum cloud_result r;
	int probed = 0, auth_reported = 0;
	char *token = NULL;

	while (!emulator_is_stopping(e)) {
		r = cloud_sign_in(e->cloud, &token);
		if (r == CLOUD_ERR_CANCELLED)
			break;		/* shutdown aborted it */
		if (r == CLOUD_ERR_AUTH) {
			/* One clear line, then quiet, slow retries. */
			if (!auth_reported)
				log_errx("sign-in refused: check the serial and "
				    "password; retrying every %d s",
				    EMULATOR_BACKOFF_AUTH / 1000);
			auth_reported = 1;
			sd_notify(0, "STATUS=sign-in refused (credentials)");
			if (emulator_sleep(e, EMULATOR_BACKOFF_AUTH))
				break;
			continue;
		}
		if (r != CLOUD_OK) {
			wait = emulator_jitter(backoff, &seed);
			log_warnx("sign-in failed (%s); retrying in %lld ms",
			    cloud_strerror(r), (long long)wait);
			backoff = backoff * 2 > EMULATOR_BACKOFF_MAX ?
			    EMULATOR_BACKOFF_MAX : backoff * 2;
			if (emulator_sleep(e, wait))
				break;
			continue;
		}
		auth_reported = 0;
		r = ws_open(e->ws, token) == 0 ? CLOUD_OK : CLOUD_ERR_NET;
		explicit_bzero(token, strlen(token));
		free(token);
		token = NULL;
		if (r != CLOUD_OK) {
			if (emulator_is_stopping(e))
				break;
			/* The loop thread died: nothing can reconnect. */
			log_errx("the WebSocket loop has stopped; exiting");
			kill(getpid(), SIGTERM);
			break;
		}
		/* After the socket is asked for: the ws_token lives ~30 s and
		 * a slow probe must not outlast it. */
		if (!probed && e->cf->fw_check) {
			probed = 1;
			emulator_fw_check(e);
		}

		up = ws_wait_closed(e->ws);
		if (emulator_is_stopping(e))
			break;
		if (up >= EMULATOR_HEALTHY_MS)
			backoff = EMULATOR_BACKOFF_MIN;
		wait = emulator_jitter(backoff, &seed);
		log_info("status socket lost after %lld ms; reconnecting in "
		    "%lld ms", (long long)up, (long long)wait);
		backoff = backoff * 2 > EMULATOR_BACKOFF_MAX ?
		    EMULATOR_BACKOFF_MAX : backoff * 2;
		if (emulator_sleep(e, wait))
			break;
	}
	return NULL;
}

/* ---- the loop thread ------------------------------------------------ */

/* A wedged loop stops the pings, and systemd restarts the daemon. */
static void
emulator_dog(uv_timer_t *t)
{
	(void)t;
	sd_notify(0, "WATCHDOG=1");
}

static void
emulator_loop_close_handles(struct emulator *e)
{
	if (!e->handles_open)
		return;
	e->handles_open = 0;
	uv_close((uv_handle_t *)&e->loop_stop, NULL);
	uv_timer_stop(&e->dog);
	uv_close((uv_handle_t *)&e->dog, NULL);
}

/* On the loop: everything that still needs it (the socket's flush and
 * close) is done; the context goes, and evloop_run() returns. */
static void
emulator_loop_stop_cb(uv_async_t *a)
{
	struct emulator *e = a->data;

	emulator_loop_close_handles(e);
	evloop_stop(e->ev);
}

static void *
emulator_loop_thread(void *arg)
{
	struct emulator *e = arg;

	if (e->dog_ms > 0)
		uv_timer_start(&e->dog, emulator_dog, 0, e->dog_ms);
	if (evloop_run(e->ev) == -1 || !atomic_load(&e->loop_stop_asked)) {
		/* Nothing can be served any more: stop the daemon rather
		 * than leave a process that looks alive. */
		log_errx("the event loop failed; stopping");
		atomic_store(&e->loop_failed, 1);
		kill(getpid(), SIGTERM);
	}
	return NULL;
}

static int
emulator_loop_start(struct emulator *e)
{
	uint64_t us = 0;

	/* > 0 only under systemd with WatchdogSec= (and our PID). */
	if (sd_watchdog_enabled(0, &us) > 0)
		e->dog_ms = us / 2000 > 0 ? us / 2000 : 1;
	if (uv_async_init(evloop_uv(e->ev), &e->loop_stop,
	    emulator_loop_stop_cb) != 0 ||
	    uv_timer_init(evloop_uv(e->ev), &e->dog) != 0) {
		log_warnx("cannot set up the event loop's handles");
		return -1;
	}
	e->loop_stop.data = e;
	e->handles_open = 1;
	if (pthread_create(&e->loop, NULL, emulator_loop_thread, e) != 0) {
		log_warnx("cannot start the event loop thread");
		return -1;
	}
	e->loop_started = 1;
	return 0;
}

/* Stops the loop (joins its thread) and frees it. */
static void
emulator_loop_free(struct emulator *e)
{
	if (e->ev == NULL)
		return;
	if (e->loop_started) {
		atomic_store(&e->loop_stop_asked, 1);
		uv_async_send(&e->loop_stop);
		pthread_join(e->loop, NULL);
		e->loop_started = 0;
	} else {
		/* Never ran: nothing else touches it from here. */
		emulator_loop_close_handles(e);
		evloop_stop(e->ev);
	}
	evloop_free(e->ev);
	e->ev = NULL;
}

/* The Glowforge: HTTP client, status socket, queues, dispatcher, link. */
static int
emulator_glowforge_up(struct emulator *e)
{
	const struct config *cf = e->cf;
	struct ws_params wp;
	char ua[64], err[512];

	if ((e->seq = seq_table_new(cf->protocol_profile, cf->sequences_file,
	    err, sizeof(err))) == NULL) {
		log_errx("%s", err);
		return -1;
	}
	/* Not the serial: it is half of the machine's login (PROTOCOL.md 2). */
	log_info("glowforge: profile %s", cf->protocol_profile ?
	    cf->protocol_profile : "2.6");
	if ((e->cloud = cloud_new(cf)) == NULL) {
		log_warnx("cannot set up the HTTP client");
		return -1;
	}
	memset(&wp, 0, sizeof(wp));
	snprintf(ua, sizeof(ua), "OpenGlow/%s",
	    cf->fw_version ? cf->fw_version : "2.6.0-2228");
	wp.url = cf->status_service_url;
	wp.ca_file = cf->ca_file;
	wp.user_agent = ua;
	wp.origin = "http://status.glowforge.com";
	if ((e->ws = ws_new(e->ev, &wp)) == NULL)
		return -1;
	e->rx = queue_new(EMULATOR_QUEUE_MAX, EMULATOR_RX_BYTES, NULL, NULL);
	/* Ours, small frames: bounded by count alone. */
	e->tx = queue_new(EMULATOR_QUEUE_MAX, 0, ws_wake, e->ws);
	if (e->rx == NULL || e->tx == NULL)
		return -1;
	ws_start(e->ws, e->rx, e->tx);
	/* The .info/.puls folder is made (and checked) by the store on the
	 * first job; a problem there is logged but never stops the machine. */
	if ((e->dispatch = dispatch_new(cf, e->cloud, e->seq, e->rx,
	    e->tx)) == NULL || dispatch_start(e->dispatch) == -1)
		return -1;
	return 0;
}

/* Builds and starts every configured machine; -1 leaves e for _down(). */
static int
emulator_up(struct emulator *e, const struct config *cf)
{
	memset(e, 0, sizeof(*e));
	e->cf = cf;
	pthread_mutex_init(&e->mtx, NULL);
	mono_cond_init(&e->cond);
	if ((e->ev = evloop_new(e, 0)) == NULL)
		return -1;
	if (cf->glowforge && emulator_glowforge_up(e) == -1)
		return -1;
	if (cf->ff_enabled && (e->ff = ff_server_new(e->ev, cf)) == NULL)
		return -1;
	if (emulator_loop_start(e) == -1)
		return -1;
	if (cf->glowforge) {
		if (pthread_create(&e->link, NULL, emulator_link, e) != 0) {
			log_warnx("cannot start the link thread");
			return -1;
		}
		e->link_started = 1;
		sd_notify(0, "STATUS=signing in");
	} else {
		/* Listening is all a FlashForge needs to serve. */
		sd_notify(0, "READY=1\nSTATUS=flashforge listening");
	}
	return 0;
}

/* Stops and frees what _up() made, in the order that loses nothing. */
static void
emulator_down(struct emulator *e)
{
	pthread_mutex_lock(&e->mtx);
	e->stopping = 1;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->mtx);

	/* The job ends (its terminal event queued), then the socket flushes
	 * and closes, then nothing is left to wake the loop, which goes. */
	if (e->dispatch != NULL)
		dispatch_stop(e->dispatch, EMULATOR_STOP_JOB_MS);
	if (e->ws != NULL)
		ws_stop(e->ws, EMULATOR_STOP_FLUSH_MS);
	if (e->link_started)
		pthread_join(e->link, NULL);
	if (e->tx != NULL && queue_len(e->tx) > 0)
		log_warnx("%zu frames not sent at shutdown", queue_len(e->tx));
	/* Destroying the context calls back into ws and ff: they go after. */
	emulator_loop_free(e);
	ff_server_free(e->ff);
	dispatch_free(e->dispatch);
	ws_free(e->ws);
	queue_free(e->rx);
	queue_free(e->tx);
	cloud_free(e->cloud);
	seq_table_free(e->seq);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->mtx);
	memset(e, 0, sizeof(*e));
}

static void
emulator_log_levels(const struct config *cf, int foreground, int verbose)
{
	int level = foreground ? cf->console_level : cf->log_level;

	if (log_init(log_getmode(), verbose ? LOG_DEBUG : level,
	    cf->log_file) == -1)
		log_warn("log file %s", cf->log_file);
}

/*
 * SIGHUP: 0 with *cf replaced and the machines restarted, 1 when the new
 * file was rejected (nothing changed), -1 when restarting failed.
 */
static int
emulator_reload(struct emulator *e, struct config *cf, int foreground,
    int verbose)
{
	struct config ncf;

	log_info("SIGHUP: reading %s again", cf->path);
	sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
	/* config_load() prints each problem as file:line: message. */
	if (config_load(&ncf, cf->path) == -1) {
		config_free(&ncf);
		log_errx("configuration %s rejected; the running one is kept",
		    cf->path);
		sd_notify(0, "READY=1\nSTATUS=reload rejected; running on");
		return 1;
	}
	emulator_down(e);
	config_free(cf);
	*cf = ncf;
	emulator_log_levels(cf, foreground, verbose);
	log_info("configuration reloaded; restarting the machines");
	return emulator_up(e, cf) == -1 ? -1 : 0;
}

int
emulator_run(struct config *cf, int foreground, int verbose)
{
	struct emulator e;
	sigset_t set;
	siginfo_t si;
	int sig, ret = 1;

	/* Block before any thread exists: they all inherit the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Past RLIMIT_FSIZE a write fails with EFBIG, which the store
	 * reports, instead of the signal killing the daemon. */
	signal(SIGXFSZ, SIG_IGN);

	event_init();
	log_info("gf-machine-emulator %s", GFE_VERSION);
	if (emulator_up(&e, cf) == -1)
		goto stop;

	for (;;) {
		if ((sig = sigwaitinfo(&set, &si)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("sigwaitinfo");
			break;
		}
		if (sig == SIGUSR1) {
			if (e.dispatch != NULL)
				dispatch_press_button(e.dispatch);
			else
				log_info("SIGUSR1: no Glowforge, no button");
			continue;
		}
		if (sig == SIGHUP) {
			if (emulator_reload(&e, cf, foreground, verbose) == -1)
				goto stop;
			continue;
		}
		log_info("%s: shutting down", sig == SIGINT ? "SIGINT" :
		    "SIGTERM");
		break;
	}
	ret = atomic_load(&e.loop_failed) ? 1 : 0;
stop:
	if (e.ws != NULL)
		ws_quiet(e.ws);
	sd_notify(0, "STOPPING=1");
	/* A second SIGINT/SIGTERM during shutdown exits at once. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	emulator_down(&e);
	return ret;
}
