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
 * A reload (SIGHUP) reads the file again; a bad one is rejected and the
 * machines keep running.  A good one stops them as at shutdown (a running
 * job ends with its terminal event, the socket closes with 1001), then the
 * loop is built again with the new settings.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
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

#define EMULATOR_SUMMARY_MS	10000	/* ms between a fleet's summaries */

enum emulator_next { EMULATOR_RUN, EMULATOR_EXIT, EMULATOR_RELOAD };

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
	struct machine_gate	*gate;		/* the sign-in rate */
	size_t			 running;	/* machines not yet stopped */
	uv_poll_t		 sigpoll;
	uv_poll_t		 stoppoll;
	uv_timer_t		 dog;
	uv_timer_t		 summary;	/* a fleet's line every 10 s */
	int			 handles_open;
	enum emulator_next	 next;
};

/* A wedged loop stops the pings, and systemd restarts the daemon. */
static void
emulator_dog(uv_timer_t *t)
{
	(void)t;
	sd_notify(0, "WATCHDOG=1");
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
	evloop_stop(e->ev);
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
	e->running = 1;		/* held until every stop is asked */
	for (i = 0; i < e->nmachines; i++) {
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

	for (i = 0; i < e->nmachines; i++)
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
		for (i = 0; i < e->nmachines; i++)
			machine_press_button(e->machines[i]);
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

/* A fleet's INFO lines are DEBUG: this line says what they would. */
static void
emulator_summary(uv_timer_t *t)
{
	struct emulator *e = t->data;
	size_t n[MACHINE_STATES] = { 0 }, i;
	uint64_t actions = 0, failures = 0, a, f;

	for (i = 0; i < e->nmachines; i++) {
		n[machine_state(e->machines[i])]++;
		machine_counts(e->machines[i], &a, &f);
		actions += a;
		failures += f;
	}
	log_info("fleet: %zu machines: %zu up, %zu signing in, %zu "
	    "connecting, %zu backing off, %zu stopping; %llu actions, %llu "
	    "failed", e->nmachines, n[MACHINE_UP], n[MACHINE_SIGNING_IN],
	    n[MACHINE_CONNECTING], n[MACHINE_BACKING_OFF],
	    n[MACHINE_STOPPING] + n[MACHINE_STOPPED],
	    (unsigned long long)actions, (unsigned long long)failures);
}

/* The Glowforges: the sequence table, this shard's machines. */
static int
emulator_glowforge_up(struct emulator *e)
{
	const struct config *cf = e->cf;
	struct machine_id id;
	char err[512];
	size_t i;

	if ((e->seq = seq_table_new(cf->protocol_profile, cf->sequences_file,
	    err, sizeof(err))) == NULL) {
		log_errx("%s", err);
		return -1;
	}
	if (fleet_build(&e->fl, cf, err, sizeof(err)) == -1) {
		log_errx("%s", err);
		return -1;
	}
	/* Not the serial: it is half of the machine's login (PROTOCOL.md 2). */
	if (e->fl.n == 1)
		log_info("glowforge: profile %s", cf->protocol_profile ?
		    cf->protocol_profile : "2.6");
	else
		log_info("glowforge: profile %s, machines %zu to %zu of %zu, "
		    "%g sign-ins/s", cf->protocol_profile ?
		    cf->protocol_profile : "2.6", e->fl.first,
		    e->fl.first + e->fl.n - 1, e->fl.total,
		    e->fl.connect_rate);
	if ((e->machines = calloc(e->fl.n, sizeof(*e->machines))) == NULL ||
	    (e->gate = machine_gate_new(e->ev, e->fl.connect_rate)) == NULL)
		return -1;
	for (i = 0; i < e->fl.n; i++) {
		memset(&id, 0, sizeof(id));
		id.serial = e->fl.m[i].serial;
		id.password = e->fl.m[i].password;
		id.hostname = e->fl.m[i].hostname;
		id.index = e->fl.m[i].index;
		id.fleet_n = e->fl.n;
		id.keep_jobs = e->fl.keep_jobs;
		id.gate = e->gate;
		if ((e->machines[i] = machine_new(cf, e->seq, e->ev, &id)) ==
		    NULL)
			return -1;
		e->nmachines++;
		if (machine_start(e->machines[i]) == -1)
			return -1;
	}
	if (e->nmachines > 1)
		uv_timer_start(&e->summary, emulator_summary,
		    EMULATOR_SUMMARY_MS, EMULATOR_SUMMARY_MS);
	return 0;
}

/* Builds every configured machine on a new loop; -1 leaves e for
 * emulator_down() (the loop then runs only to close what was made). */
static int
emulator_up(struct emulator *e)
{
	const struct config *cf = e->cf;

	e->next = EMULATOR_RUN;
	if ((e->ev = evloop_new(e, 0)) == NULL)
		return -1;
	if (emulator_handles(e) == -1)
		return -1;
	if (cf->glowforge && emulator_glowforge_up(e) == -1)
		return -1;
	if (cf->ff_enabled && (e->ff = ff_server_new(e->ev, cf)) == NULL)
		return -1;
	if (cf->web_enabled == 1 && (e->web = web_new(evloop_lws(e->ev),
	    cf)) == NULL)
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
	machine_gate_free(e->gate);
	e->gate = NULL;
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
		for (i = 0; i < e->nmachines; i++)
			machine_quiet(e->machines[i]);
		sd_notify(0, "STOPPING=1");
		if (e->ev != NULL) {
			e->next = EMULATOR_RUN;
			emulator_stop(e, EMULATOR_EXIT);
			evloop_run(e->ev);
		}
		emulator_down(e);
		return 1;
	}
	if (evloop_run(e->ev) == -1)
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
	return ret;
done:
	if (e.sigfd != -1)
		close(e.sigfd);
	if (e.stopfd != -1)
		close(e.stopfd);
	return 1;
}
