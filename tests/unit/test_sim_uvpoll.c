/*
 * Unit tests for sim_uvpoll.c: a uv_poll_start() that asks for what the
 * handle already watches, or a uv_poll_stop() of a stopped handle, is
 * skipped, costing no epoll_ctl(); every other call reaches libuv, and the
 * handle then reports what it was last asked for.
 *
 * libuv's epoll_ctl() calls come through this program's own (the
 * executable's symbol comes first), which counts them.  Each case runs a
 * list of calls on one handle over a socketpair whose peer has written a
 * byte (so the handle is readable and writable), then one loop pass.
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "sim_uvpoll.h"

static int	nctl;	/* epoll_ctl() calls */

int
epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
	static int (*next)(int, int, int, struct epoll_event *);

	if (next == NULL)
		*(void **)&next = dlsym(RTLD_NEXT, "epoll_ctl");
	nctl++;
	return next(epfd, op, fd, event);
}

enum op { END, START, STOP, RUN };

struct step {
	enum op	 op;
	int	 events;	/* START: UV_READABLE|UV_WRITABLE */
	int	 skipped;	/* the call is skipped */
};

struct test_case {
	const char	*name;
	struct step	 steps[8];
	int		 seen;		/* events reported by the last RUN */
};

#define R	UV_READABLE
#define W	UV_WRITABLE

static const struct test_case tcs[] = {
	{ "start twice, same events: the second skipped",
	    { { START, R, 0 }, { START, R, 1 }, { RUN, 0, 0 } }, R },
	{ "start again once watched: skipped, still reported",
	    { { START, R, 0 }, { RUN, 0, 0 }, { START, R, 1 },
	      { RUN, 0, 0 } }, R },
	{ "more events: passed on",
	    { { START, R, 0 }, { RUN, 0, 0 }, { START, R | W, 0 },
	      { RUN, 0, 0 } }, R | W },
	{ "fewer events: passed on",
	    { { START, R | W, 0 }, { RUN, 0, 0 }, { START, W, 0 },
	      { RUN, 0, 0 } }, W },
	{ "stop twice: the second skipped, nothing reported",
	    { { START, R, 0 }, { RUN, 0, 0 }, { STOP, 0, 0 },
	      { STOP, 0, 1 }, { RUN, 0, 0 } }, 0 },
	{ "stopped, then started: passed on",
	    { { START, R, 0 }, { STOP, 0, 0 }, { START, R, 0 },
	      { RUN, 0, 0 } }, R },
	{ "a stop never started: skipped",
	    { { STOP, 0, 1 }, { START, W, 0 }, { RUN, 0, 0 } }, W },
};

struct run {
	int	 seen;
};

static void
poll_cb(uv_poll_t *h, int status, int events)
{
	struct run *r = h->data;

	assert_int_equal(status, 0);
	r->seen |= events;
}

static void
run_case(const struct test_case *tc)
{
	const struct step *st;
	uv_loop_t loop;
	uv_poll_t h;
	struct run r;
	uint64_t skipped;
	int sv[2], ctl;

	print_message("case: %s\n", tc->name);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(uv_poll_init_socket(&loop, &h, sv[0]), 0);
	h.data = &r;
	for (st = tc->steps; st->op != END; st++) {
		skipped = sim_uvpoll_skipped();
		ctl = nctl;
		r.seen = 0;
		if (st->op == START)
			assert_int_equal(uv_poll_start(&h, st->events,
			    poll_cb), 0);
		else if (st->op == STOP)
			assert_int_equal(uv_poll_stop(&h), 0);
		else
			uv_run(&loop, UV_RUN_NOWAIT);
		if (st->op == RUN)
			continue;
		assert_int_equal(sim_uvpoll_skipped() - skipped,
		    st->skipped ? 1 : 0);
		/* Skipped: not a system call.  Passed on: libuv's stop
		 * takes the fd out of epoll at once. */
		if (st->skipped)
			assert_int_equal(nctl, ctl);
		else
			assert_true(nctl > ctl);
	}
	assert_int_equal(r.seen, tc->seen);
	uv_close((uv_handle_t *)&h, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	close(sv[0]);
	close(sv[1]);
}

static void
test_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++)
		run_case(&tcs[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
