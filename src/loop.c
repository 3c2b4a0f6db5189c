/*
 * loop: see loop.h.  The thread runs lws_service() until loop_stop() sets
 * the flag and wakes it; nothing here polls on a period.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "loop.h"

/* Sockets per loop: the status socket, the FlashForge listeners and their
 * clients (ff_server gives each port a budget well below this), with
 * room to spare.  lws sizes its tables by this, not by RLIMIT_NOFILE,
 * which may be a million. */
#define LOOP_FD_LIMIT	1024

struct loop {
	struct lws_context	*ctx;
	pthread_t		 thread;
	int			 started;
	atomic_int		 stop;		/* loop_stop() asked */
	atomic_int		 failed;	/* lws_service() failed */
	lws_sorted_usec_list_t	 sul_dog;	/* loop thread only */
	uint64_t		 dog_us;	/* watchdog period, 0: off */
};

static void
loop_lws_log(int level, const char *line)
{
	size_t n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	log_emit(level == LLL_ERR ? LOG_WARNING : LOG_DEBUG, 0, "lws", "lws",
	    "%.*s", (int)n, line);
}

/* From the loop thread only: a wedged loop stops the pings. */
static void
loop_watchdog(lws_sorted_usec_list_t *sul)
{
	struct loop *l = lws_container_of(sul, struct loop, sul_dog);

	sd_notify(0, "WATCHDOG=1");
	lws_sul_schedule(l->ctx, 0, &l->sul_dog, loop_watchdog,
	    (lws_usec_t)(l->dog_us / 2));
}

struct loop *
loop_new(void)
{
	struct lws_context_creation_info info;
	struct loop *l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	lws_set_log_level(log_getlevel() >= LOG_DEBUG ? LLL_ERR | LLL_WARN :
	    LLL_ERR, loop_lws_log);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	/* Vhosts come from the machines; TLS is set up once for all.
	 * RAW_ORIGIN is read from the context: clients send Origin as
	 * given, where lws would prefix "http://". */
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
	    LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
	    LWS_SERVER_OPTION_JUST_USE_RAW_ORIGIN;
	info.fd_limit_per_thread = LOOP_FD_LIMIT;
	if ((l->ctx = lws_create_context(&info)) == NULL) {
		log_warnx("cannot create the libwebsockets context");
		free(l);
		return NULL;
	}
	return l;
}

void
loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	if (l->started)
		loop_stop(l);
	lws_context_destroy(l->ctx);
	free(l);
}

struct lws_context *
loop_context(struct loop *l)
{
	return l->ctx;
}

static void *
loop_thread(void *arg)
{
	struct loop *l = arg;

	if (l->dog_us > 0)
		loop_watchdog(&l->sul_dog);
	while (!atomic_load(&l->stop)) {
		if (lws_service(l->ctx, 0) < 0) {
			/* Nothing can be served any more: stop the daemon
			 * rather than leave a process that looks alive. */
			log_errx("the event loop failed; stopping");
			atomic_store(&l->failed, 1);
			kill(getpid(), SIGTERM);
			break;
		}
	}
	lws_sul_cancel(&l->sul_dog);
	return NULL;
}

int
loop_start(struct loop *l)
{
	uint64_t us = 0;

	/* > 0 only under systemd with WatchdogSec= (and our PID). */
	if (sd_watchdog_enabled(0, &us) > 0)
		l->dog_us = us;
	if (pthread_create(&l->thread, NULL, loop_thread, l) != 0) {
		log_warnx("cannot start the event loop thread");
		return -1;
	}
	l->started = 1;
	return 0;
}

void
loop_wake(struct loop *l)
{
	if (l != NULL && l->ctx != NULL)
		lws_cancel_service(l->ctx);
}

void
loop_stop(struct loop *l)
{
	if (!l->started)
		return;
	atomic_store(&l->stop, 1);
	lws_cancel_service(l->ctx);
	pthread_join(l->thread, NULL);
	l->started = 0;
}

int
loop_stopping(struct loop *l)
{
	return atomic_load(&l->stop);
}

int
loop_failed(struct loop *l)
{
	return atomic_load(&l->failed);
}
