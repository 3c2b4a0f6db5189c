/*
 * Unit tests for evloop.c: teardown with transfers running or queued and
 * with lws listening, on real loopback sockets.  Each case starts its
 * transfers to a listener that accepts and never answers, stops once the
 * listener has seen the connections it waits for, and checks that every
 * transfer ended exactly once with CURLE_ABORTED_BY_CALLBACK and that the
 * loop closed with no handle left.
 *
 * No descriptor is watched or unwatched after it was closed: libuv's
 * epoll_ctl() calls come through this program's (the executable's symbol
 * comes first), which counts those on a closed descriptor.  curl 7.88
 * closes the socket of a transfer removed mid-way before it says
 * CURL_POLL_REMOVE; with loops on several threads the number may by then
 * be another loop's socket.
 *
 * A transfer whose answer arrives in full with the server's reset right
 * behind it completes: libuv reports the reset alone (EPOLLERR), and
 * curl must still be let to read what is queued.
 *
 * Several loops: with lws < 4.2, a loop made after another handed out its
 * lws context is refused, as that context's client TLS context would
 * never be freed (see evloop.c); made first, both free everything (the
 * ASan build checks that).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <libwebsockets.h>

#include "evloop.h"

#define MAX_XFERS	8

struct test_case {
	const char	*name;
	long		 cap;		/* evloop_new's max_transfers */
	int		 transfers;	/* started to the silent listener */
	int		 stop_at;	/* connections accepted, then stop */
	int		 vhost;		/* an lws vhost listening too */
};

static const struct test_case cases[] = {
	{ "nothing running", 0, 0, 0, 0 },
	{ "an lws listener", 0, 0, 0, 1 },
	{ "transfers in flight", 0, 5, 5, 0 },
	{ "transfers queued past the cap", 2, 6, 2, 0 },
	{ "transfers and lws together", 0, 3, 3, 1 },
};

struct run {
	const struct test_case	*tc;
	struct evloop		*ev;
	uv_tcp_t		 listener;
	uv_tcp_t		 peers[MAX_XFERS];
	uv_timer_t		 kick;
	int			 accepted;
	struct xfer {
		int		 done;	/* times done() was called */
		CURLcode	 rc;
	}			 xf[MAX_XFERS];
};

static int	stale_ctl;	/* epoll_ctl() calls on a closed fd */

int
epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
	static int (*real)(int, int, int, struct epoll_event *);

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "epoll_ctl");
	if (fcntl(fd, F_GETFD) == -1 && errno == EBADF)
		stale_ctl++;
	return real(epfd, op, fd, event);
}

static const struct lws_protocols protocols[] = {
	{ "test", lws_callback_http_dummy, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void
stop(struct run *r)
{
	int i;

	uv_close((uv_handle_t *)&r->listener, NULL);
	uv_close((uv_handle_t *)&r->kick, NULL);
	for (i = 0; i < r->accepted; i++)
		uv_close((uv_handle_t *)&r->peers[i], NULL);
	evloop_stop(r->ev);
	assert_int_equal(evloop_stopping(r->ev), 1);
	assert_null(evloop_lws(r->ev));
	assert_int_equal(evloop_http_running(r->ev), 0);
}

static void
kick_cb(uv_timer_t *t)
{
	stop(t->data);
}

static void
accept_cb(uv_stream_t *l, int status)
{
	struct run *r = l->data;
	uv_tcp_t *peer = &r->peers[r->accepted];

	assert_int_equal(status, 0);
	assert_true(r->accepted < MAX_XFERS);
	uv_tcp_init(l->loop, peer);
	assert_int_equal(uv_accept(l, (uv_stream_t *)peer), 0);
	if (++r->accepted == r->tc->stop_at)
		stop(r);
}

static void
done_cb(void *arg, CURL *easy, CURLcode rc)
{
	struct xfer *x = arg;

	curl_easy_cleanup(easy);
	x->done++;
	x->rc = rc;
}

static int
listen_silent(struct run *r)
{
	struct sockaddr_in sa;
	int len = sizeof(sa);

	uv_ip4_addr("127.0.0.1", 0, &sa);
	uv_tcp_init(evloop_uv(r->ev), &r->listener);
	r->listener.data = r;
	if (uv_tcp_bind(&r->listener, (struct sockaddr *)&sa, 0) != 0 ||
	    uv_listen((uv_stream_t *)&r->listener, 16, accept_cb) != 0 ||
	    uv_tcp_getsockname(&r->listener, (struct sockaddr *)&sa, &len) !=
	    0)
		return -1;
	return ntohs(sa.sin_port);
}

static void
run_case(const struct test_case *tc)
{
	struct lws_context_creation_info info;
	struct run r;
	char url[64];
	CURL *e;
	int i, port;

	print_message("case: %s\n", tc->name);
	memset(&r, 0, sizeof(r));
	r.tc = tc;
	stale_ctl = 0;
	assert_non_null(r.ev = evloop_new(&r, tc->cap));
	assert_true((port = listen_silent(&r)) > 0);
	uv_timer_init(evloop_uv(r.ev), &r.kick);
	r.kick.data = &r;
	if (tc->stop_at == 0)
		uv_timer_start(&r.kick, kick_cb, 0, 0);
	if (tc->vhost) {
		memset(&info, 0, sizeof(info));
		info.port = 0;
		info.iface = "127.0.0.1";
		info.protocols = protocols;
		info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
		assert_non_null(lws_create_vhost(evloop_lws(r.ev), &info));
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	for (i = 0; i < tc->transfers; i++) {
		assert_non_null(e = curl_easy_init());
		curl_easy_setopt(e, CURLOPT_URL, url);
		assert_int_equal(evloop_http_start(r.ev, e, done_cb,
		    &r.xf[i]), 0);
	}
	assert_int_equal(evloop_http_running(r.ev), tc->transfers);
	assert_int_equal(evloop_run(r.ev), 0);
	for (i = 0; i < tc->transfers; i++) {
		assert_int_equal(r.xf[i].done, 1);
		assert_int_equal(r.xf[i].rc, CURLE_ABORTED_BY_CALLBACK);
	}
	assert_int_equal(r.accepted, tc->stop_at);
	assert_int_equal(stale_ctl, 0);
	/* Once stopped, nothing more starts. */
	assert_non_null(e = curl_easy_init());
	assert_int_equal(evloop_http_start(r.ev, e, done_cb, &r.xf[0]), -1);
	curl_easy_cleanup(e);
	evloop_free(r.ev);
}

static void
test_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
}

#if LWS_LIBRARY_VERSION_MAJOR < 4 || \
    (LWS_LIBRARY_VERSION_MAJOR == 4 && LWS_LIBRARY_VERSION_MINOR < 2)
#define LWS_REKEYS	1
#else
#define LWS_REKEYS	0
#endif

struct order_case {
	const char	*name;
	int		 vhost_first;	/* on loop a before loop b is made */
	int		 want_b;	/* evloop_new() of b succeeds */
};

static const struct order_case order_cases[] = {
	{ "both loops, then their vhosts", 0, 1 },
	{ "a vhost, then another loop", 1, !LWS_REKEYS },
};

/* A vhost with a client TLS context (the OS CA store), as ws.c makes. */
static void
client_vhost(struct evloop *ev)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	assert_non_null(lws_create_vhost(evloop_lws(ev), &info));
}

static void
test_loop_order(void **state)
{
	const struct order_case *tc;
	struct evloop *a, *b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(order_cases) / sizeof(order_cases[0]); i++) {
		tc = &order_cases[i];
		print_message("case: %s\n", tc->name);
		assert_non_null(a = evloop_new(NULL, 0));
		if (tc->vhost_first)
			client_vhost(a);
		b = evloop_new(NULL, 0);
		assert_int_equal(b != NULL, tc->want_b);
		if (!tc->vhost_first)
			client_vhost(a);
		if (b != NULL) {
			client_vhost(b);
			evloop_stop(b);		/* never run: stop first */
			evloop_free(b);
		}
		evloop_stop(a);
		evloop_free(a);
		/* All gone: a loop may be made again. */
		assert_non_null(a = evloop_new(NULL, 0));
		evloop_stop(a);
		evloop_free(a);
	}
}

static void
test_raise_nofile(void **state)
{
	struct rlimit rl;
	long n;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur > 256) {
		/* Start low, as a default shell does. */
		rl.rlim_cur = 256;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	/* A cap sets the soft limit, up or down, within the hard one. */
	if (rl.rlim_max >= 300) {
		static const struct {
			long	 cap, want;
		} tcs[] = {
			{ 300, 300 },
			{ 280, 280 },	/* below the soft limit: lowered */
		};
		size_t i;

		for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++) {
			n = evloop_raise_nofile_to(tcs[i].cap);
			assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
			assert_int_equal(n, tcs[i].want);
			assert_int_equal((long)rl.rlim_cur, tcs[i].want);
		}
	}
	n = evloop_raise_nofile();
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_true(rl.rlim_cur == rl.rlim_max);
	assert_true(n == (long)(rl.rlim_max > 1048576 ? 1048576 :
	    rl.rlim_max));
}

/* An answer in full, then the connection closed or reset. */
struct reset_case {
	const char	*name;
	int		 reset;		/* SO_LINGER 0: RST, not FIN */
};

static const struct reset_case reset_cases[] = {
	{ "answered, then closed", 0 },
	{ "answered, then reset", 1 },
};

#define RESET_BODY	"0123456789abcdef"

struct reset_run {
	const struct reset_case	*tc;
	struct evloop		*ev;
	uv_tcp_t		 listener;
	uv_tcp_t		 peer;
	char			 req[1024];
	size_t			 reqlen;
	size_t			 got;		/* body bytes curl wrote */
	int			 done;
	CURLcode		 rc;
};

static void
reset_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct reset_run *r = h->data;

	(void)hint;
	*buf = uv_buf_init(r->req + r->reqlen, sizeof(r->req) - 1 -
	    r->reqlen);
}

/* The whole request read: answer and close at once, in one callback,
 * so the client's next poll sees the answer and the reset together. */
static void
reset_read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	static char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n"
	    "Connection: close\r\n\r\n" RESET_BODY;
	struct reset_run *r = st->data;
	struct linger lg = { 1, 0 };
	uv_buf_t out = uv_buf_init(answer, sizeof(answer) - 1);
	uv_os_fd_t fd;

	(void)buf;
	assert_true(n >= 0);
	r->reqlen += (size_t)n;
	r->req[r->reqlen] = '\0';
	if (strstr(r->req, "\r\n\r\n") == NULL)
		return;
	assert_int_equal(uv_try_write(st, &out, 1), (int)out.len);
	if (r->tc->reset) {
		assert_int_equal(uv_fileno((uv_handle_t *)st, &fd), 0);
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg,
		    sizeof(lg)), 0);
	}
	uv_close((uv_handle_t *)st, NULL);
	uv_close((uv_handle_t *)&r->listener, NULL);
}

static void
reset_accept_cb(uv_stream_t *l, int status)
{
	struct reset_run *r = l->data;

	assert_int_equal(status, 0);
	uv_tcp_init(l->loop, &r->peer);
	r->peer.data = r;
	assert_int_equal(uv_accept(l, (uv_stream_t *)&r->peer), 0);
	assert_int_equal(uv_read_start((uv_stream_t *)&r->peer,
	    reset_alloc_cb, reset_read_cb), 0);
}

static size_t
reset_write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct reset_run *r = arg;

	(void)p;
	r->got += size * n;
	return size * n;
}

static void
reset_done_cb(void *arg, CURL *easy, CURLcode rc)
{
	struct reset_run *r = arg;

	curl_easy_cleanup(easy);
	r->done++;
	r->rc = rc;
	evloop_stop(r->ev);
}

static void
test_answer_then_reset(void **state)
{
	struct sockaddr_in sa;
	struct reset_run r;
	struct evloop *ev;
	char url[64];
	size_t i;
	CURL *e;
	int len;

	(void)state;
	for (i = 0; i < sizeof(reset_cases) / sizeof(reset_cases[0]); i++) {
		print_message("case: %s\n", reset_cases[i].name);
		memset(&r, 0, sizeof(r));
		r.tc = &reset_cases[i];
		assert_non_null(ev = r.ev = evloop_new(NULL, 0));
		uv_ip4_addr("127.0.0.1", 0, &sa);
		uv_tcp_init(evloop_uv(ev), &r.listener);
		r.listener.data = &r;
		len = sizeof(sa);
		assert_int_equal(uv_tcp_bind(&r.listener,
		    (struct sockaddr *)&sa, 0), 0);
		assert_int_equal(uv_listen((uv_stream_t *)&r.listener, 4,
		    reset_accept_cb), 0);
		assert_int_equal(uv_tcp_getsockname(&r.listener,
		    (struct sockaddr *)&sa, &len), 0);
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/job",
		    ntohs(sa.sin_port));
		assert_non_null(e = curl_easy_init());
		curl_easy_setopt(e, CURLOPT_URL, url);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, reset_write_cb);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &r);
		assert_int_equal(evloop_http_start(ev, e, reset_done_cb, &r),
		    0);
		assert_int_equal(evloop_run(ev), 0);
		evloop_free(ev);
		assert_int_equal(r.done, 1);
		assert_int_equal(r.rc, CURLE_OK);
		assert_int_equal(r.got, sizeof(RESET_BODY) - 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_loop_order),
		cmocka_unit_test(test_raise_nofile),
		cmocka_unit_test(test_answer_then_reset),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
