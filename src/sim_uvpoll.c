/*
 * sim_uvpoll: gf-cloud-sim's uv_poll_start() and uv_poll_stop(), which
 * skip the calls that change nothing and pass the others to libuv's.
 *
 * Why: libuv 1.44's uv_poll_start() first stops the handle, which takes
 * the descriptor out of epoll at once (EPOLL_CTL_DEL), and the loop puts
 * it back (EPOLL_CTL_ADD) before it next waits: two system calls for
 * every call, even one that asks for what the handle already watches.
 * lws 4.1.6's libuv glue makes many such calls.  Each socket it closes
 * re-arms every listening socket (its accept modulation, twice per
 * close), and it starts a new socket's handle twice.  strace of the sim
 * under the mixed fleet load: 16 epoll_ctl() per HTTP request, 9 of
 * them for nothing; perf stat: 12.2 epoll_ctl() per action with libuv's
 * calls alone, 6.0 with these.
 *
 * The executable exports both symbols (CMakeLists.txt), so lws' evlib
 * plugin, which binds them at dlopen() time, finds these first; libuv's
 * own are found with RTLD_NEXT.  A call is skipped only when libuv's
 * would end in the state the handle is already in: started, not closing,
 * the same callback and the same events (uv_poll_start()), or already
 * stopped (uv_poll_stop()).  A descriptor left in epoll after libuv
 * stopped its handle on an error is disarmed by libuv on its next event,
 * as it would be without us.  One thread: the sim's loop.
 * (_GNU_SOURCE, for RTLD_NEXT, comes from CMakeLists.txt.)
 */
#include <dlfcn.h>
#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>

#include <uv.h>

#include "sim_uvpoll.h"

static int	(*sim_uvpoll_start_next)(uv_poll_t *, int, uv_poll_cb);
static int	(*sim_uvpoll_stop_next)(uv_poll_t *);
static uint64_t	 sim_uvpoll_nskipped;

/* libuv's events for the watcher, as uv_poll_start() computes them. */
static unsigned
sim_uvpoll_pevents(int events)
{
	unsigned pe = 0;

	if (events & UV_READABLE)
		pe |= POLLIN;
	if (events & UV_PRIORITIZED)
		pe |= POLLPRI;
	if (events & UV_WRITABLE)
		pe |= POLLOUT;
	if (events & UV_DISCONNECT)
		pe |= EPOLLRDHUP;
	return pe;
}

static int
sim_uvpoll_resolve(void)
{
	if (sim_uvpoll_start_next == NULL) {
		*(void **)&sim_uvpoll_start_next = dlsym(RTLD_NEXT,
		    "uv_poll_start");
		*(void **)&sim_uvpoll_stop_next = dlsym(RTLD_NEXT,
		    "uv_poll_stop");
	}
	return sim_uvpoll_start_next != NULL && sim_uvpoll_stop_next != NULL ?
	    0 : -1;
}

int
uv_poll_start(uv_poll_t *h, int events, uv_poll_cb cb)
{
	if (sim_uvpoll_resolve() == -1)
		return UV_ENOSYS;
	if (events != 0 && uv_is_active((uv_handle_t *)h) &&
	    !uv_is_closing((uv_handle_t *)h) && h->poll_cb == cb &&
	    h->io_watcher.pevents == sim_uvpoll_pevents(events)) {
		sim_uvpoll_nskipped++;
		return 0;
	}
	return sim_uvpoll_start_next(h, events, cb);
}

int
uv_poll_stop(uv_poll_t *h)
{
	if (sim_uvpoll_resolve() == -1)
		return UV_ENOSYS;
	if (!uv_is_active((uv_handle_t *)h)) {
		sim_uvpoll_nskipped++;
		return 0;
	}
	return sim_uvpoll_stop_next(h);
}

uint64_t
sim_uvpoll_skipped(void)
{
	return sim_uvpoll_nskipped;
}
