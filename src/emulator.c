/*
 * emulator: wires the modules together and runs the daemon's life.
 *
 * One thread runs it all: a libuv loop (evloop.h) carrying the status
 * sockets, the FlashForge listeners, every HTTP transfer (curl multi), the
 * machines' timers, the systemd watchdog and the signals.  Signals are
 * blocked from the start and read from a signalfd watched on the loop, so
 * a signal that comes while the loop is rebuilt (a reload) waits for the
 * next one instead of killing the process; threads that libraries start
 * (curl's resolver) inherit the mask.  SIGTERM and SIGINT alone are taken
 * by a small thread of their own (emulator_stopper()): a loop held in a
 * write (a log on a full FIFO, a stuck disk) must not keep the daemon
 * from stopping, nor a second one from killing it.
 *
 * [FLEET] loops = N > 1 adds N - 1 loops with a thread each (struct
 * emuloop) for slices of the machines; they inherit the mask too.
 *
 * A reload (SIGHUP) reads the file again; a bad one is rejected and the
 * machines keep running.  A good one stops them as at shutdown (a running
 * job ends with its terminal event, the socket closes with 1001), then the
 * loop is built again with the new settings.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <uv.h>

#include "config.h"
#include "emulator.h"
#include "event.h"
#include "evloop.h"
#include "ff_server.h"
#include "fleet.h"
#include "log.h"
#include "machine.h"
#include "sequence.h"
#include "web.h"
#include "web_jobs.h"

#define EMULATOR_SUMMARY_MS	10000	/* ms between a fleet's summaries */

#define EMULATOR_TICK_MS	1000	/* ms between a loop's counts */
/* lws sockets besides the machines' links: web and FlashForge clients
 * (evloop_new_fds(): past the bound lws refuses a socket). */
#define EMULATOR_LWS_SPARE	1024
#define EMULATOR_LWS_SEARCH_MAX	16	/* machines: a bounded lws table */

enum emulator_next { EMULATOR_RUN, EMULATOR_EXIT, EMULATOR_RELOAD };

/* What the main thread asks of another loop (emuloop_wake()). */
enum { EMULOOP_STOP = 1, EMULOOP_QUIET = 2, EMULOOP_BUTTON = 4 };

/*
 * The loops' teardowns, one at a time and with every other loop held.
 * lws 4.1.6 closes a context's event pipe twice: in lws_context_destroy()
 * and again when the pipe's uv handle has closed, a loop iteration later
 * (lws issues 2514, 3541; fixed upstream after 4.3).  In between, the
 * number is free: another loop's new socket took it, and the second
 * close closed that socket (fleet-loops under TSan, after a reload).  So
 * loops k > 0, their machines stopped, wait here; loop 0 waits for them
 * all, tears down, then lets them go one at a time.  Waiting threads
 * make no descriptor.  The web gallery's worker has ended by then
 * (web_detach()); not held: curl's resolver threads (hostnames only),
 * whose rare opens could still meet such a window.
 */
struct emulator_fence {
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cv;
	size_t			 want;		/* loops k > 0 asked to stop */
	size_t			 quiet;		/* of those, now waiting */
	int			 open;		/* loop 0 is down */
	int			 busy;		/* one tears down */
};

/*
 * [FLEET] loops > 1 (issue 10): loop k > 0 runs on its own thread with
 * its own evloop (lws context, curl multi and share) and gate, and a
 * contiguous slice of the shard's machines.  Everything is made on the
 * main thread before the thread starts and freed after it is joined; in
 * between, the main thread only sets asks and wakes it, and reads the
 * counts it copies under mtx.
 */
struct emuloop {
	struct evloop		*ev;
	struct machine_gate	*gate;
	struct machine		**machines;	/* a slice of e->machines */
	size_t			 n;		/* made on this loop */
	size_t			 running;	/* not yet stopped */
	pthread_t		 thread;
	int			 started, ret;	/* ret: 1 if handles left */
	int			 handles_open, stopping;
	struct emulator_fence	*fence;
	int			 fence_want;	/* counted in fence->want */
	int			 fenced;	/* passed (holds busy) */
	uv_async_t		 wake;
	uv_timer_t		 tick;		/* copies the counts */
	atomic_int		 asks;		/* EMULOOP_* */
	pthread_mutex_t		 mtx;		/* over what follows */
	size_t			 states[MACHINE_STATES];
	uint64_t		 actions, failures;
};

struct emulator {
	struct config		*cf;
	int			 foreground, verbose;
	int			 sigfd;		/* HUP, USR1 */
	int			 stopfd;	/* eventfd: the signal number
						 * of a TERM or INT taken */
	struct config		 ncf;		/* a reload's, until swapped */
	int			 have_ncf;

	struct evloop		*ev;
	struct ff_server	*ff;		/* or NULL: no FlashForge */
	struct web		*web;		/* or NULL: no [WEB] */
	struct seq_table	*seq;
	struct fleet		 fl;		/* this shard's Glowforges */
	struct machine		**machines;	/* fl.n of them, or none */
	size_t			 nmachines;
	size_t			 nlocal;	/* machines[0..nlocal) on ev */
	struct emuloop		*loops;		/* nloops - 1 more, or NULL */
	size_t			 nloops;
	struct machine_gate	*gate;		/* the sign-in rate */
	size_t			 running;	/* machines not yet stopped */
	uv_poll_t		 sigpoll;
	uv_poll_t		 stoppoll;
	uv_timer_t		 dog;
	uv_timer_t		 summary;	/* a fleet's line every 10 s */
	int			 handles_open;
	enum emulator_next	 next;
	struct emulator_fence	 fence;
};

/* A wedged loop stops the pings, and systemd restarts the daemon. */
static void
emulator_dog(uv_timer_t *t)
{
	(void)t;
	sd_notify(0, "WATCHDOG=1");
}

/* Loop 0, before its teardown: until every loop asked to stop waits. */
static void
emulator_fence_wait(struct emulator *e)
{
	struct emulator_fence *f = &e->fence;

	pthread_mutex_lock(&f->mtx);
	while (f->quiet < f->want)
		pthread_cond_wait(&f->cv, &f->mtx);
	pthread_mutex_unlock(&f->mtx);
}

/* Loop k > 0, before its teardown: once loop 0 is down, alone. */
static void
emuloop_fence_wait(struct emuloop *l)
{
	struct emulator_fence *f = l->fence;

	if (l->fenced)
		return;
	l->fenced = 1;
	pthread_mutex_lock(&f->mtx);
	f->quiet++;
	pthread_cond_broadcast(&f->cv);
	while (!f->open || f->busy)
		pthread_cond_wait(&f->cv, &f->mtx);
	f->busy = 1;
	pthread_mutex_unlock(&f->mtx);
}

/* Loop k > 0, torn down: the next may go. */
static void
emuloop_fence_leave(struct emuloop *l)
{
	struct emulator_fence *f = l->fence;

	if (!l->fenced)
		return;
	pthread_mutex_lock(&f->mtx);
	f->busy = 0;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mtx);
}

/* Every machine has stopped: the loop may go. */
static void
emulator_machine_stopped(void *arg)
{
	struct emulator *e = arg;

	if (e->running > 0 && --e->running > 0)
		return;
	if (e->handles_open) {
		e->handles_open = 0;
		uv_poll_stop(&e->sigpoll);
		uv_close((uv_handle_t *)&e->sigpoll, NULL);
		uv_poll_stop(&e->stoppoll);
		uv_close((uv_handle_t *)&e->stoppoll, NULL);
		uv_timer_stop(&e->dog);
		uv_close((uv_handle_t *)&e->dog, NULL);
		uv_timer_stop(&e->summary);
		uv_close((uv_handle_t *)&e->summary, NULL);
	}
	machine_gate_close(e->gate);
	web_detach(e->web);	/* before the context goes */
	emulator_fence_wait(e);
	evloop_stop(e->ev);
}

/* On loop l: every machine of it has stopped, the loop may go. */
static void
emuloop_machine_stopped(void *arg)
{
	struct emuloop *l = arg;

	if (l->running > 0 && --l->running > 0)
		return;
	if (l->handles_open) {
		l->handles_open = 0;
		uv_close((uv_handle_t *)&l->wake, NULL);
		uv_timer_stop(&l->tick);
		uv_close((uv_handle_t *)&l->tick, NULL);
	}
	machine_gate_close(l->gate);
	emuloop_fence_wait(l);
	evloop_stop(l->ev);
}

/* On loop l: its counts, for the main thread's summary line. */
static void
emuloop_tick(uv_timer_t *t)
{
	struct emuloop *l = t->data;
	size_t n[MACHINE_STATES] = { 0 }, i;
	uint64_t actions = 0, failures = 0, a, f;

	for (i = 0; i < l->n; i++) {
		n[machine_state(l->machines[i])]++;
		machine_counts(l->machines[i], &a, &f);
		actions += a;
		failures += f;
	}
	pthread_mutex_lock(&l->mtx);
	memcpy(l->states, n, sizeof(n));
	l->actions = actions;
	l->failures = failures;
	pthread_mutex_unlock(&l->mtx);
}

/* On loop l: what the main thread asked. */
static void
emuloop_wake(uv_async_t *w)
{
	struct emuloop *l = w->data;
	int asks = atomic_exchange(&l->asks, 0);
	size_t i;

	if ((asks & EMULOOP_BUTTON) && !l->stopping)
		for (i = 0; i < l->n; i++)
			machine_press_button(l->machines[i]);
	if (!(asks & EMULOOP_STOP) || l->stopping)
		return;
	l->stopping = 1;
	l->running = 1;		/* held until every stop is asked */
	for (i = 0; i < l->n; i++) {
		if (asks & EMULOOP_QUIET)
			machine_quiet(l->machines[i]);
		l->running++;
		machine_stop(l->machines[i], emuloop_machine_stopped, l);
	}
	emuloop_machine_stopped(l);
}

static void *
emuloop_main(void *arg)
{
	struct emuloop *l = arg;

	/* "gfe-loop": how ps -L and the tests tell a loop's thread. */
	pthread_setname_np(pthread_self(), "gfe-loop");
	l->ret = evloop_run(l->ev) == -1;
	emuloop_fence_leave(l);
	return NULL;
}

/* From the main thread: asks loop l, started if it was not (a failed
 * start-up still runs it to close what was made). */
static void
emuloop_ask(struct emuloop *l, int asks)
{
	if (l->ev == NULL)
		return;
	if (!l->started) {
		if (!l->handles_open)
			evloop_stop(l->ev);	/* not running yet */
		if (pthread_create(&l->thread, NULL, emuloop_main, l) != 0) {
			log_warnx("cannot start a loop's thread");
			return;
		}
		l->started = 1;
	}
	if (l->handles_open) {
		/* It stops through emuloop_wake(), so waits at the fence. */
		if ((asks & EMULOOP_STOP) && !l->fence_want) {
			l->fence_want = 1;
			pthread_mutex_lock(&l->fence->mtx);
			l->fence->want++;
			pthread_mutex_unlock(&l->fence->mtx);
		}
		atomic_fetch_or(&l->asks, asks);
		uv_async_send(&l->wake);
	}
}

/* Stops the machines (the loop goes once they have): at shutdown or
 * before a reload rebuilds everything. */
static void
emulator_stop(struct emulator *e, enum emulator_next next)
{
	size_t i;

	if (e->next != EMULATOR_RUN)
		return;
	e->next = next;
	for (i = 0; e->loops != NULL && i + 1 < e->nloops; i++)
		emuloop_ask(&e->loops[i], EMULOOP_STOP |
		    (next == EMULATOR_EXIT ? EMULOOP_QUIET : 0));
	e->running = 1;		/* held until every stop is asked */
	for (i = 0; i < e->nlocal; i++) {
		e->running++;
		machine_stop(e->machines[i], emulator_machine_stopped, e);
	}
	emulator_machine_stopped(e);
}

/*
 * The stop signals' thread: takes the first SIGTERM or SIGINT, lets the
 * next one kill the process (its default action, on this thread, the only
 * one that no longer blocks them), says so, and hands the stop to the loop
 * through stopfd.  The line goes out even while the loop is held in a
 * write, because log.c writes stderr without a lock.
 */
static void *
emulator_stopper(void *arg)
{
	struct emulator *e = arg;
	uint64_t v;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	while (sigwait(&set, &sig) != 0)
		;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	log_info("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	v = (uint64_t)sig;
	if (write(e->stopfd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		log_warn("stop signal to the loop");
	for (;;)
		pause();	/* a second signal ends the process here */
	return NULL;
}

/* On the loop, once the stopper has taken a SIGTERM or SIGINT. */
static void
emulator_shutdown(struct emulator *e)
{
	size_t i;

	for (i = 0; i < e->nlocal; i++)
		machine_quiet(e->machines[i]);
	sd_notify(0, "STOPPING=1");
	/* Amid a reload's stop: exit once it has stopped, not rebuild. */
	if (e->next == EMULATOR_RELOAD)
		e->next = EMULATOR_EXIT;
	emulator_stop(e, EMULATOR_EXIT);
}

static void
emulator_stoppoll(uv_poll_t *p, int status, int events)
{
	struct emulator *e = p->data;
	uint64_t v;

	(void)status;
	(void)events;
	if (read(e->stopfd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		emulator_shutdown(e);
}

/* SIGHUP: a good file stops the machines for a rebuild, a bad one is
 * rejected and nothing changes. */
static void
emulator_reload(struct emulator *e)
{
	log_info("SIGHUP: reading %s again", e->cf->path);
	sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
	/* config_load() prints each problem as file:line: message. */
	if (config_load(&e->ncf, e->cf->path) == -1) {
		config_free(&e->ncf);
		log_errx("configuration %s rejected; the running one is kept",
		    e->cf->path);
		sd_notify(0, "READY=1\nSTATUS=reload rejected; running on");
		return;
	}
	/* The shard came from the command line: a reload keeps it. */
	config_keep_runtime(&e->ncf, e->cf);
	e->have_ncf = 1;
	emulator_stop(e, EMULATOR_RELOAD);
}

static void
emulator_signal(struct emulator *e, int sig)
{
	size_t i;

	switch (sig) {
	case SIGUSR1:
		/* Every machine's button: a fleet's prints all go on. */
		for (i = 0; i < e->nlocal; i++)
			machine_press_button(e->machines[i]);
		for (i = 0; e->next == EMULATOR_RUN && e->loops != NULL &&
		    i + 1 < e->nloops; i++)
			emuloop_ask(&e->loops[i], EMULOOP_BUTTON);
		if (e->nmachines == 0)
			log_info("SIGUSR1: no Glowforge, no button");
		break;
	case SIGHUP:
		if (e->next == EMULATOR_RUN)
			emulator_reload(e);
		break;
	default:
		break;
	}
}

static void
emulator_sigpoll(uv_poll_t *p, int status, int events)
{
	struct emulator *e = p->data;
	struct signalfd_siginfo si;
	ssize_t n;

	(void)status;
	(void)events;
	while ((n = read(e->sigfd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
		emulator_signal(e, (int)si.ssi_signo);
		if (!e->handles_open)
			break;		/* stopped: the rest waits */
	}
	if (n == -1 && errno != EAGAIN && errno != EINTR)
		log_warn("signalfd");
}

static int
emulator_handles(struct emulator *e)
{
	uint64_t us = 0;

	if (uv_poll_init(evloop_uv(e->ev), &e->sigpoll, e->sigfd) != 0 ||
	    uv_poll_init(evloop_uv(e->ev), &e->stoppoll, e->stopfd) != 0 ||
	    uv_timer_init(evloop_uv(e->ev), &e->dog) != 0 ||
	    uv_timer_init(evloop_uv(e->ev), &e->summary) != 0) {
		log_warnx("cannot set up the loop's signal and watchdog");
		return -1;
	}
	e->sigpoll.data = e;
	e->stoppoll.data = e;
	e->summary.data = e;
	e->handles_open = 1;
	uv_poll_start(&e->sigpoll, UV_READABLE, emulator_sigpoll);
	uv_poll_start(&e->stoppoll, UV_READABLE, emulator_stoppoll);
	/* > 0 only under systemd with WatchdogSec= (and our PID). */
	if (sd_watchdog_enabled(0, &us) > 0)
		uv_timer_start(&e->dog, emulator_dog, 0,
		    us / 2000 > 0 ? us / 2000 : 1);
	return 0;
}

/* Adds the other loops' last counts (at most EMULATOR_TICK_MS old). */
static void
emulator_summary_loops(struct emulator *e, size_t *n, uint64_t *actions,
    uint64_t *failures)
{
	struct emuloop *l;
	size_t i, s;

	for (i = 0; e->loops != NULL && i + 1 < e->nloops; i++) {
		l = &e->loops[i];
		pthread_mutex_lock(&l->mtx);
		for (s = 0; s < MACHINE_STATES; s++)
			n[s] += l->states[s];
		*actions += l->actions;
		*failures += l->failures;
		pthread_mutex_unlock(&l->mtx);
	}
}

/* A fleet's INFO lines are DEBUG: this line says what they would. */
static void
emulator_summary(uv_timer_t *t)
{
	struct emulator *e = t->data;
	size_t n[MACHINE_STATES] = { 0 }, i;
	uint64_t actions = 0, failures = 0, a, f;

	for (i = 0; i < e->nlocal; i++) {
		n[machine_state(e->machines[i])]++;
		machine_counts(e->machines[i], &a, &f);
		actions += a;
		failures += f;
	}
	emulator_summary_loops(e, n, &actions, &failures);
	log_info("fleet: %zu machines: %zu up, %zu signing in, %zu "
	    "connecting, %zu backing off, %zu stopping; %llu actions, %llu "
	    "failed", e->nmachines, n[MACHINE_UP], n[MACHINE_SIGNING_IN],
	    n[MACHINE_CONNECTING], n[MACHINE_BACKING_OFF],
	    n[MACHINE_STOPPING] + n[MACHINE_STOPPED],
	    (unsigned long long)actions, (unsigned long long)failures);
}

/* Makes and starts machines [first, first + count) of the shard on ev;
 * those made count in e->nmachines even when one fails. */
static int
emulator_machines_on(struct emulator *e, struct evloop *ev,
    struct machine_gate *gate, size_t first, size_t count)
{
	struct machine_id id;
	size_t i;

	for (i = first; i < first + count; i++) {
		memset(&id, 0, sizeof(id));
		id.serial = e->fl.m[i].serial;
		id.password = e->fl.m[i].password;
		id.hostname = e->fl.m[i].hostname;
		id.index = e->fl.m[i].index;
		id.fleet_n = e->fl.n;
		id.keep_jobs = e->fl.keep_jobs;
		id.gate = gate;
		if ((e->machines[i] = machine_new(e->cf, e->seq, ev, &id)) ==
		    NULL)
			return -1;
		e->nmachines++;
		if (machine_start(e->machines[i]) == -1)
			return -1;
	}
	return 0;
}

/* The sockets lws holds at most: a link per machine, and one more while
 * it reconnects, and the spare.  lws then finds a socket by a search
 * over the live ones (a pointer followed each) on every event: only for
 * a few machines; 0, lws' full table, for more.  The fleet's whole size,
 * not the shard's: a bound. */
static long
emulator_lws_fds(const struct config *cf)
{
	size_t n = config_fleet_size(cf);

	if (n > EMULATOR_LWS_SEARCH_MAX)
		return 0;
	return (long)n * 2 + EMULATOR_LWS_SPARE;
}

/* Loop l (k > 0): its evloop, wake-up, tick and gate; no machine yet. */
static int
emuloop_new(struct emuloop *l, double rate, long lws_fds)
{
	if ((l->ev = evloop_new_fds(l, 0, lws_fds)) == NULL)
		return -1;
	if (uv_async_init(evloop_uv(l->ev), &l->wake, emuloop_wake) != 0 ||
	    uv_timer_init(evloop_uv(l->ev), &l->tick) != 0) {
		log_warnx("cannot set up a loop's wake-up");
		return -1;
	}
	l->wake.data = l;
	l->tick.data = l;
	l->handles_open = 1;
	uv_timer_start(&l->tick, emuloop_tick, 0, EMULATOR_TICK_MS);
	if ((l->gate = machine_gate_new(l->ev, rate)) == NULL)
		return -1;
	return 0;
}

/* Loop l's slice, then its thread. */
static int
emuloop_start(struct emulator *e, struct emuloop *l, size_t first,
    size_t count)
{
	size_t made = e->nmachines;
	int rc;

	l->machines = e->machines + first;
	rc = emulator_machines_on(e, l->ev, l->gate, first, count);
	l->n = e->nmachines - made;
	if (rc == -1)
		return -1;
	if (pthread_create(&l->thread, NULL, emuloop_main, l) != 0) {
		log_warnx("cannot start a loop's thread");
		return -1;
	}
	l->started = 1;
	return 0;
}

/*
 * Every loop first, then loop 0's slice on e->ev, then the other loops'
 * (each its share of the sign-in rate).  Every lws context must exist
 * before the first vhost (evloop.h): with lws 4.1 a context made after
 * loop 0's machines left loop 0's client TLS context unfreed at exit.
 * That also makes every context before any loop's thread runs.
 */
static int
emulator_loops_up(struct emulator *e)
{
	double rate = e->fl.connect_rate / (double)e->nloops;
	size_t first, count, made, k;

	if ((e->machines = calloc(e->fl.n, sizeof(*e->machines))) == NULL ||
	    (e->gate = machine_gate_new(e->ev, rate)) == NULL)
		return -1;
	if (e->nloops > 1) {
		if ((e->loops = calloc(e->nloops - 1, sizeof(*e->loops))) ==
		    NULL)
			return -1;
		for (k = 0; k + 1 < e->nloops; k++) {
			pthread_mutex_init(&e->loops[k].mtx, NULL);
			e->loops[k].fence = &e->fence;
		}
		for (k = 0; k + 1 < e->nloops; k++)
			if (emuloop_new(&e->loops[k], rate,
			    emulator_lws_fds(e->cf)) == -1)
				return -1;
	}
	fleet_slice(e->fl.n, 0, (unsigned)e->nloops, &first, &count);
	made = e->nmachines;
	if (emulator_machines_on(e, e->ev, e->gate, first, count) == -1) {
		e->nlocal = e->nmachines - made;
		return -1;
	}
	e->nlocal = e->nmachines - made;
	for (k = 1; k < e->nloops; k++) {
		fleet_slice(e->fl.n, (unsigned)k, (unsigned)e->nloops, &first,
		    &count);
		if (emuloop_start(e, &e->loops[k - 1], first, count) == -1)
			return -1;
	}
	return 0;
}

/* After loop 0 stopped: waits for the others; -1 if one left handles. */
static int
emulator_loops_join(struct emulator *e)
{
	size_t k;
	int rc = 0;

	/* Loop 0 is down (or never ran): the others may tear down. */
	pthread_mutex_lock(&e->fence.mtx);
	e->fence.open = 1;
	pthread_cond_broadcast(&e->fence.cv);
	pthread_mutex_unlock(&e->fence.mtx);
	for (k = 0; e->loops != NULL && k + 1 < e->nloops; k++)
		if (e->loops[k].started) {
			pthread_join(e->loops[k].thread, NULL);
			e->loops[k].started = 0;
			if (e->loops[k].ret)
				rc = -1;
		}
	return rc;
}

/* The Glowforges: the sequence table, this shard's machines. */
static int
emulator_glowforge_up(struct emulator *e)
{
	const struct config *cf = e->cf;
	char err[512];

	if ((e->seq = seq_table_new(cf->protocol_profile, cf->sequences_file,
	    err, sizeof(err))) == NULL) {
		log_errx("%s", err);
		return -1;
	}
	if (fleet_build(&e->fl, cf, err, sizeof(err)) == -1) {
		log_errx("%s", err);
		return -1;
	}
	e->nloops = cf->fleet_loops > 0 ? (size_t)cf->fleet_loops :
	    (size_t)sysconf(_SC_NPROCESSORS_ONLN);
	if (e->nloops < 1 || e->nloops > e->fl.n)
		e->nloops = e->nloops < 1 ? 1 : e->fl.n;
	/* Not the serial: it is half of the machine's login (PROTOCOL.md 2). */
	if (e->nloops > 1)
		log_info("glowforge: %zu loops, a thread each, machines split "
		    "by serial", e->nloops);
	if (e->fl.n == 1)
		log_info("glowforge: profile %s", cf->protocol_profile ?
		    cf->protocol_profile : "2.6");
	else
		log_info("glowforge: profile %s, machines %zu to %zu of %zu, "
		    "%g sign-ins/s", cf->protocol_profile ?
		    cf->protocol_profile : "2.6", e->fl.first,
		    e->fl.first + e->fl.n - 1, e->fl.total,
		    e->fl.connect_rate);
	if (emulator_loops_up(e) == -1)
		return -1;
	if (e->nmachines > 1)
		uv_timer_start(&e->summary, emulator_summary,
		    EMULATOR_SUMMARY_MS, EMULATOR_SUMMARY_MS);
	return 0;
}

/* [WEB], its gallery on each machine's folder of kept jobs.  A fleet's
 * are served under "m<index>", never under the folder's name: that is
 * the serial, half of a login. */
static int
emulator_web_up(struct emulator *e)
{
	struct web_jobs_dir *dirs;
	char (*keys)[24];
	size_t i, n = 0;
	int rc = -1;

	dirs = calloc(e->nmachines + 1, sizeof(*dirs));
	keys = calloc(e->nmachines + 1, sizeof(*keys));
	if (dirs == NULL || keys == NULL)
		goto done;
	for (i = 0; i < e->nmachines; i++) {
		if ((dirs[n].path = machine_dl_dir(e->machines[i])) == NULL)
			continue;
		if (*machine_label(e->machines[i]) != '\0') {
			snprintf(keys[n], sizeof(keys[n]), "m%zu",
			    e->fl.m[i].index);
			dirs[n].key = keys[n];
			dirs[n].label = machine_label(e->machines[i]);
		}
		n++;
	}
	if ((e->web = web_new(evloop_lws(e->ev), e->cf, dirs, n)) != NULL)
		rc = 0;
done:
	free(dirs);
	free(keys);
	return rc;
}

/* Builds every configured machine on a new loop; -1 leaves e for
 * emulator_down() (the loop then runs only to close what was made). */
static int
emulator_up(struct emulator *e)
{
	const struct config *cf = e->cf;

	e->next = EMULATOR_RUN;
	/* No loop thread runs yet. */
	e->fence.want = e->fence.quiet = 0;
	e->fence.open = e->fence.busy = 0;
	if ((e->ev = evloop_new_fds(e, 0, emulator_lws_fds(cf))) == NULL)
		return -1;
	if (emulator_handles(e) == -1)
		return -1;
	if (cf->glowforge && emulator_glowforge_up(e) == -1)
		return -1;
	if (cf->ff_enabled && (e->ff = ff_server_new(e->ev, cf)) == NULL)
		return -1;
	if (cf->web_enabled == 1 && emulator_web_up(e) == -1)
		return -1;
	if (cf->glowforge)
		sd_notify(0, "STATUS=signing in");
	else	/* Listening is all a FlashForge needs to serve. */
		sd_notify(0, "READY=1\nSTATUS=flashforge listening");
	return 0;
}

/* After the loop: frees what _up() made.  Destroying the context (done by
 * evloop_run()) called back into ws and ff: they go after it. */
static void
emulator_down(struct emulator *e)
{
	size_t i;

	for (i = 0; i < e->nmachines; i++)
		machine_free(e->machines[i]);
	free(e->machines);
	e->machines = NULL;
	e->nmachines = 0;
	e->nlocal = 0;
	machine_gate_free(e->gate);
	e->gate = NULL;
	for (i = 0; e->loops != NULL && i + 1 < e->nloops; i++) {
		machine_gate_free(e->loops[i].gate);
		evloop_free(e->loops[i].ev);
		pthread_mutex_destroy(&e->loops[i].mtx);
	}
	free(e->loops);
	e->loops = NULL;
	e->nloops = 0;
	fleet_free(&e->fl);
	ff_server_free(e->ff);
	web_free(e->web);
	e->web = NULL;
	seq_table_free(e->seq);
	evloop_free(e->ev);
	e->ff = NULL;
	e->seq = NULL;
	e->ev = NULL;
}

static void
emulator_log_levels(const struct config *cf, int foreground, int verbose)
{
	int level = foreground ? cf->console_level : cf->log_level;

	if (log_init(log_getmode(), verbose ? LOG_DEBUG : level,
	    cf->log_file) == -1)
		log_warn("log file %s", cf->log_file);
}

/* One life of the loop: 0 to go on (a reload), 1 to exit with *ret. */
static int
emulator_life(struct emulator *e, int *ret)
{
	size_t i;

	if (emulator_up(e) == -1) {
		*ret = 1;
		for (i = 0; i < e->nlocal; i++)
			machine_quiet(e->machines[i]);
		sd_notify(0, "STOPPING=1");
		if (e->ev != NULL) {
			e->next = EMULATOR_RUN;
			emulator_stop(e, EMULATOR_EXIT);
			evloop_run(e->ev);
		}
		emulator_loops_join(e);
		emulator_down(e);
		return 1;
	}
	if (evloop_run(e->ev) == -1)
		*ret = 1;
	if (emulator_loops_join(e) == -1)
		*ret = 1;
	emulator_down(e);
	if (e->next != EMULATOR_RELOAD)
		return 1;
	config_free(e->cf);
	*e->cf = e->ncf;
	e->have_ncf = 0;
	emulator_log_levels(e->cf, e->foreground, e->verbose);
	log_info("configuration reloaded; restarting the machines");
	return 0;
}

int
emulator_run(struct config *cf, int foreground, int verbose)
{
	struct emulator e;
	pthread_t stopper;
	sigset_t set;
	int ret = 0;

	/* Blocked before any thread exists: they all inherit the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Past RLIMIT_FSIZE a write fails with EFBIG, which the store
	 * reports, instead of the signal killing the daemon. */
	signal(SIGXFSZ, SIG_IGN);

	memset(&e, 0, sizeof(e));
	e.cf = cf;
	e.foreground = foreground;
	e.verbose = verbose;
	e.stopfd = -1;
	pthread_mutex_init(&e.fence.mtx, NULL);
	pthread_cond_init(&e.fence.cv, NULL);
	/* TERM and INT stay blocked here but go to the stopper, not the
	 * signalfd. */
	sigdelset(&set, SIGTERM);
	sigdelset(&set, SIGINT);
	if ((e.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1 ||
	    (e.stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		log_warn("signalfd");
		goto done;
	}
	if (pthread_create(&stopper, NULL, emulator_stopper, &e) != 0) {
		log_warnx("cannot start the stop signals' thread");
		goto done;
	}
	event_init();
	log_info("gf-machine-emulator %s", GFE_VERSION);
	while (emulator_life(&e, &ret) == 0)
		;
	/* Waiting in sigwait() or pause(): both are cancellation points. */
	pthread_cancel(stopper);
	pthread_join(stopper, NULL);
	if (e.have_ncf)
		config_free(&e.ncf);
	close(e.sigfd);
	close(e.stopfd);
	pthread_cond_destroy(&e.fence.cv);
	pthread_mutex_destroy(&e.fence.mtx);
	return ret;
done:
	if (e.sigfd != -1)
		close(e.sigfd);
	if (e.stopfd != -1)
		close(e.stopfd);
	pthread_cond_destroy(&e.fence.cv);
	pthread_mutex_destroy(&e.fence.mtx);
	return 1;
}
