/*
 * evloop: one libuv loop with lws and libcurl's multi interface on it.
 * See evloop.h for who owns what.
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when
 * to call it back (CURLMOPT_TIMERFUNCTION); each watched socket gets a
 * uv_poll_t, the timeout one uv_timer_t.  lws brings its own uv handles
 * onto the loop we pass it as a foreign loop.
 *
 * Teardown order (lws 4.1.6 on a foreign loop, checked): the first
 * lws_context_destroy(), from inside the loop, closes the sockets (their
 * callbacks run) and lws' uv handles, but cannot free the context while
 * those closes are pending; once uv_run() has drained them, a second call
 * finishes, writing NULL through info.pcontext.  So stop destroys the
 * context, ends curl's transfers and closes our handles; evloop_run()
 * drains, destroys again, drains again; then uv_loop_close() succeeds.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <libwebsockets.h>

#include "evloop.h"
#include "log.h"

/* One transfer in the multi; CURLOPT_PRIVATE points here. */
struct evloop_xfer {
	struct evloop		*ev;
	CURL			*easy;
	evloop_http_done	 done;
	void			*arg;
	struct evloop_xfer	*prev, *next;
};

/* One socket curl asked us to watch (curl_multi_assign's pointer). */
struct evloop_sock {
	struct evloop		*ev;
	uv_poll_t		 poll;
	curl_socket_t		 fd;
	int			 events;	/* UV_READABLE|UV_WRITABLE */
	struct evloop_sock	*prev, *next;
};

struct evloop {
	uv_loop_t		 loop;
	struct lws_context	*lws;		/* NULL once stopping */
	struct lws_context	*lws_alive;	/* NULLed by lws when gone */
	CURLM			*multi;
	CURLSH			*share;
	uv_timer_t		 curl_timer;
	int			 curl_timer_open;
	struct evloop_xfer	*xfers;
	struct evloop_sock	*socks;
	unsigned		 running;	/* transfers in the multi */
	int			 stopping;
	int			 lent;		/* evloop_lws() handed it out */
};

/*
 * lws before 4.2 takes new OpenSSL ex-data indexes, process-wide, for
 * each context it creates (its issue 2178, fixed by "openssl: acquire ex
 * indexes once for multicontext").  A vhost's client SSL_CTX is tagged
 * under the index of its day and looked up under the newest one when the
 * vhost goes: made before a later context, it is never found, so never
 * freed (the OS CA store, ~730 kB, per earlier context).  So a new
 * context is refused while any other has been handed out: make every
 * loop first, then the vhosts.
 */
#if LWS_LIBRARY_VERSION_MAJOR < 4 || \
    (LWS_LIBRARY_VERSION_MAJOR == 4 && LWS_LIBRARY_VERSION_MINOR < 2)
#define EVLOOP_LWS_REKEYS	1
#else
#define EVLOOP_LWS_REKEYS	0
#endif

static atomic_int	evloop_lent;	/* live evloops with ->lent */

/*
 * Handshakes lws runs at once (its header pool).  A client connect waits
 * for a header, and times out waiting: with lws 4.1.6's default, 10,000
 * WebSockets opened at once left 7,127 failed after 15 s on this 2-core
 * box; with 64 all came up in 3.2 s, with 256 in 2.5 s.  Headers are
 * allocated only while used.
 */
#define EVLOOP_HEADER_POOL	256

/*
 * lws 4.1 keeps two tables by descriptor, 16 bytes per fd up to the fd
 * limit (320 KiB at 20,000, every page written).  Given a smaller
 * fd_limit_per_thread it keeps that many slots instead and finds a
 * socket on each event by a search over the sockets it holds: a bound
 * over this many gets the full map.
 */
#define EVLOOP_FDS_SEARCH_MAX	4096

static void	evloop_curl_check(struct evloop *);

long
evloop_raise_nofile(void)
{
	return evloop_raise_nofile_to(0);
}

long
evloop_raise_nofile_to(long cap)
{
	struct rlimit rl;
	rlim_t want;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit");
		return -1;
	}
	want = cap > 0 && (rlim_t)cap < rl.rlim_max ? (rlim_t)cap :
	    rl.rlim_max;
	/* With a cap, lowered too: a container's soft limit of 1,048,576
	 * would cost lws an 8 MiB table scan at every new socket. */
	if (rl.rlim_cur < want || (cap > 0 && rl.rlim_cur > want)) {
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
			log_warn("setrlimit RLIMIT_NOFILE %llu",
			    (unsigned long long)want);
			return -1;
		}
	}
	/* lws sizes per-thread tables by this: keep it an int. */
	return rl.rlim_cur > 1048576 ? 1048576 : (long)rl.rlim_cur;
}

static void
evloop_sock_free(uv_handle_t *h)
{
	free(h->data);
}

static void
evloop_sock_close(struct evloop *ev, struct evloop_sock *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		ev->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	uv_close((uv_handle_t *)&s->poll, evloop_sock_free);
}

/*
 * A status < 0 is libuv's UV_EBADF for EPOLLERR: the peer reset the
 * connection (or a connect failed), and libuv has stopped the handle and
 * dropped the EPOLLIN that comes with it.  The response may still be
 * queued in full ahead of the reset (the sim closes every connection
 * after its answer), so curl is told the socket is readable and writable,
 * as poll() would: it reads what is there and meets the error or EOF
 * itself.  CURL_CSELECT_ERR alone failed such a finished transfer with
 * "select/poll returned error".  SO_ERROR is left for curl to read.
 */
static void
evloop_poll_cb(uv_poll_t *h, int status, int events)
{
	struct evloop_sock *s = h->data;
	struct evloop *ev = s->ev;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(ev->multi, s->fd, flags, &running);
	/* Still wanted (not closed by CURL_POLL_REMOVE meanwhile) but
	 * stopped by libuv: curl will not ask again, so watch it again. */
	if (status < 0 && !uv_is_closing((uv_handle_t *)h) &&
	    !uv_is_active((uv_handle_t *)h) && s->events != 0 &&
	    uv_poll_start(h, s->events, evloop_poll_cb) != 0)
		log_warnx("evloop: cannot watch fd %d again", (int)s->fd);
	evloop_curl_check(ev);
}

static int
evloop_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
    void *socketp)
{
	struct evloop *ev = userp;
	struct evloop_sock *s = socketp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			curl_multi_assign(ev->multi, fd, NULL);
			evloop_sock_close(ev, s);
		}
		return 0;
	}
	if (s == NULL) {
		if (ev->stopping || (s = calloc(1, sizeof(*s))) == NULL)
			return -1;
		s->ev = ev;
		s->fd = fd;
		if (uv_poll_init_socket(&ev->loop, &s->poll, fd) != 0) {
			log_warnx("uv_poll_init_socket failed for fd %d",
			    (int)fd);
			free(s);
			return -1;
		}
		s->poll.data = s;
		s->next = ev->socks;
		if (ev->socks != NULL)
			ev->socks->prev = s;
		ev->socks = s;
		curl_multi_assign(ev->multi, fd, s);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	s->events = events;
	return uv_poll_start(&s->poll, events, evloop_poll_cb) == 0 ? 0 : -1;
}

static void
evloop_curl_timeout(uv_timer_t *t)
{
	struct evloop *ev = t->data;
	int running;

	curl_multi_socket_action(ev->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	evloop_curl_check(ev);
}

/* curl must not be called back from inside this: a 0 ms timer does it. */
static int
evloop_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct evloop *ev = userp;

	(void)multi;
	if (timeout_ms < 0)
		return uv_timer_stop(&ev->curl_timer) == 0 ? 0 : -1;
	return uv_timer_start(&ev->curl_timer, evloop_curl_timeout,
	    (uint64_t)timeout_ms, 0) == 0 ? 0 : -1;
}

static void
evloop_xfer_unlink(struct evloop *ev, struct evloop_xfer *x)
{
	if (x->prev != NULL)
		x->prev->next = x->next;
	else
		ev->xfers = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	curl_multi_remove_handle(ev->multi, x->easy);
	curl_easy_setopt(x->easy, CURLOPT_SHARE, NULL);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, NULL);
	ev->running--;
}

/* Hands finished transfers back; done() may start more, or stop. */
static void
evloop_curl_check(struct evloop *ev)
{
	struct evloop_xfer *x;
	CURLMsg *m;
	CURLcode rc;
	int left;

	while (ev->multi != NULL &&
	    (m = curl_multi_info_read(ev->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		x = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (x == NULL)
			continue;
		rc = m->data.result;	/* m dies with the removal */
		evloop_xfer_unlink(ev, x);
		x->done(x->arg, x->easy, rc);
		free(x);
	}
}

static int
evloop_curl_new(struct evloop *ev, long max_transfers)
{
	if ((ev->share = curl_share_init()) == NULL ||
	    (ev->multi = curl_multi_init()) == NULL) {
		log_warnx("cannot create the curl multi or share handle");
		return -1;
	}
	/* One thread: the share needs no lock callbacks. */
	if (curl_share_setopt(ev->share, CURLSHOPT_SHARE,
	    CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(ev->share, CURLSHOPT_SHARE,
	    CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
	    curl_share_setopt(ev->share, CURLSHOPT_SHARE,
	    CURL_LOCK_DATA_CONNECT) != CURLSHE_OK) {
		log_warnx("cannot share DNS, TLS sessions and connections");
		return -1;
	}
	curl_multi_setopt(ev->multi, CURLMOPT_SOCKETFUNCTION,
	    evloop_curl_socket);
	curl_multi_setopt(ev->multi, CURLMOPT_SOCKETDATA, ev);
	curl_multi_setopt(ev->multi, CURLMOPT_TIMERFUNCTION, evloop_curl_timer);
	curl_multi_setopt(ev->multi, CURLMOPT_TIMERDATA, ev);
	if (max_transfers > 0)
		curl_multi_setopt(ev->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
		    max_transfers);
	if (uv_timer_init(&ev->loop, &ev->curl_timer) != 0)
		return -1;
	ev->curl_timer.data = ev;
	ev->curl_timer_open = 1;
	return 0;
}

/* lws' own lines go through our log, at our levels. */
static void
evloop_lws_log(int level, const char *line)
{
	size_t n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	log_emit(level == LLL_ERR ? LOG_WARNING : LOG_DEBUG, 0, "lws", "lws",
	    "%.*s", (int)n, line);
}

static int
evloop_lws_new(struct evloop *ev, void *user, long slots, unsigned read_buf)
{
	struct lws_context_creation_info info;
	void *loops[1] = { &ev->loop };

	lws_set_log_level(log_getlevel() >= LOG_DEBUG ? LLL_ERR | LLL_WARN :
	    LLL_ERR, evloop_lws_log);
	memset(&info, 0, sizeof(info));
	/* RAW_ORIGIN: clients send Origin as given, where lws would
	 * prefix "http://". */
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
	    LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
	    LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
	    LWS_SERVER_OPTION_JUST_USE_RAW_ORIGIN;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.user = user;
	info.foreign_loops = loops;
	info.pcontext = &ev->lws_alive;
	info.max_http_header_pool2 = EVLOOP_HEADER_POOL;
	info.pt_serv_buf_size = read_buf;	/* 0: lws' default */
	/* Size lws' tables by the raised limit, not its 4.1 default, or by
	 * the caller's small bound (see EVLOOP_FDS_SEARCH_MAX). */
	if (slots > 0)
		info.fd_limit_per_thread = (unsigned int)slots;
	if ((ev->lws = lws_create_context(&info)) == NULL) {
		log_warnx("cannot create the lws context on the uv loop "
		    "(is libwebsockets-evlib-uv installed?)");
		return -1;
	}
	ev->lws_alive = ev->lws;
	return 0;
}

struct evloop *
evloop_new(void *user, long max_transfers)
{
	return evloop_new_fds(user, max_transfers, 0);
}

struct evloop *
evloop_new_fds(void *user, long max_transfers, long lws_fds)
{
	struct evloop_params p;

	memset(&p, 0, sizeof(p));
	p.max_transfers = max_transfers;
	p.lws_fds = lws_fds;
	return evloop_new_params(user, &p);
}

struct evloop *
evloop_new_params(void *user, const struct evloop_params *p)
{
	static const struct evloop_params none;
	struct evloop *ev;
	long nofile, slots, lws_fds;

	if (p == NULL)
		p = &none;
	lws_fds = p->lws_fds;

	if (EVLOOP_LWS_REKEYS && atomic_load(&evloop_lent) > 0) {
		log_warnx("evloop: a new lws context now would leak the TLS "
		    "client context of one in use (lws < 4.2): make every "
		    "loop before the first vhost");
		return NULL;
	}
	if ((ev = calloc(1, sizeof(*ev))) == NULL) {
		log_warn("evloop");
		return NULL;
	}
	if (uv_loop_init(&ev->loop) != 0) {
		log_warnx("cannot create the uv loop");
		free(ev);
		return NULL;
	}
	nofile = evloop_raise_nofile_to(p->nofile_max);
	slots = lws_fds > 0 && lws_fds <= EVLOOP_FDS_SEARCH_MAX &&
	    (nofile <= 0 || lws_fds < nofile) ? lws_fds : nofile;
	if (evloop_curl_new(ev, p->max_transfers) == -1 ||
	    evloop_lws_new(ev, user, slots, p->read_buf) == -1) {
		evloop_free(ev);
		return NULL;
	}
	log_debug("evloop: libuv %s, descriptors up to %ld, lws sockets up "
	    "to %ld", uv_version_string(), nofile, slots);
	return ev;
}

/* Every transfer ends with done(), even the ones stop cuts short. */
static void
evloop_curl_stop(struct evloop *ev)
{
	struct evloop_xfer *x;

	/*
	 * curl closes its sockets below: stop watching them first (closing
	 * a poll handle is an epoll_ctl() on its fd), and have it tell us
	 * nothing more.  First of all, before any transfer is removed: for
	 * a transfer removed mid-way curl 7.88 closes the socket itself and
	 * says REMOVE only after (its cf-socket "not active" close, gone in
	 * 8.5), when the number may already be another loop's socket.
	 */
	while (ev->socks != NULL) {
		curl_multi_assign(ev->multi, ev->socks->fd, NULL);
		evloop_sock_close(ev, ev->socks);
	}
	while ((x = ev->xfers) != NULL) {
		evloop_xfer_unlink(ev, x);
		x->done(x->arg, x->easy, CURLE_ABORTED_BY_CALLBACK);
		free(x);
	}
	if (ev->multi != NULL) {
		curl_multi_setopt(ev->multi, CURLMOPT_SOCKETFUNCTION, NULL);
		curl_multi_setopt(ev->multi, CURLMOPT_TIMERFUNCTION, NULL);
		curl_multi_cleanup(ev->multi);
		ev->multi = NULL;
	}
	if (ev->share != NULL) {
		if (curl_share_cleanup(ev->share) != CURLSHE_OK)
			log_warnx("the curl share handle is still in use");
		ev->share = NULL;
	}
	if (ev->curl_timer_open) {
		ev->curl_timer_open = 0;
		uv_close((uv_handle_t *)&ev->curl_timer, NULL);
	}
}

void
evloop_stop(struct evloop *ev)
{
	struct lws_context *ctx = ev->lws;

	if (ev->stopping)
		return;
	ev->stopping = 1;
	ev->lws = NULL;
	/* lws first: its close callbacks may still end transfers. */
	if (ctx != NULL)
		lws_context_destroy(ctx);
	evloop_curl_stop(ev);
}

int
evloop_stopping(const struct evloop *ev)
{
	return ev->stopping;
}

static void
evloop_walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	log_warnx("evloop: a %s handle is still open",
	    uv_handle_type_name(uv_handle_get_type(h)));
}

int
evloop_run(struct evloop *ev)
{
	uv_run(&ev->loop, UV_RUN_DEFAULT);
	/* Stopped from outside the loop (or never started): drain the
	 * closes stop began. */
	if (!ev->stopping) {
		evloop_stop(ev);
		uv_run(&ev->loop, UV_RUN_DEFAULT);
	}
	if (ev->lws_alive != NULL) {
		/* lws 4.1.6: the context is freed by this second call,
		 * now that its handles have closed (see the top). */
		lws_context_destroy(ev->lws_alive);
		uv_run(&ev->loop, UV_RUN_DEFAULT);
	}
	if (uv_loop_alive(&ev->loop)) {
		uv_walk(&ev->loop, evloop_walk_cb, NULL);
		return -1;
	}
	return 0;
}

void
evloop_free(struct evloop *ev)
{
	if (ev == NULL)
		return;
	if (!ev->stopping || ev->lws_alive != NULL)
		(void)evloop_run(ev);
	if (uv_loop_close(&ev->loop) != 0) {
		uv_walk(&ev->loop, evloop_walk_cb, NULL);
		log_warnx("evloop: the uv loop did not close");
	}
	if (ev->lent)
		atomic_fetch_sub(&evloop_lent, 1);
	free(ev);
}

uv_loop_t *
evloop_uv(struct evloop *ev)
{
	return &ev->loop;
}

struct lws_context *
evloop_lws(struct evloop *ev)
{
	if (ev->lws != NULL && !ev->lent) {
		ev->lent = 1;
		atomic_fetch_add(&evloop_lent, 1);
	}
	return ev->lws;
}

int
evloop_http_start(struct evloop *ev, CURL *easy, evloop_http_done done,
    void *arg)
{
	struct evloop_xfer *x;

	if (ev->stopping || ev->multi == NULL)
		return -1;
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		log_warn("evloop transfer");
		return -1;
	}
	x->ev = ev;
	x->easy = easy;
	x->done = done;
	x->arg = arg;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(easy, CURLOPT_SHARE, ev->share);
	if (curl_multi_add_handle(ev->multi, easy) != CURLM_OK) {
		curl_easy_setopt(easy, CURLOPT_SHARE, NULL);
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		free(x);
		return -1;
	}
	x->next = ev->xfers;
	if (ev->xfers != NULL)
		ev->xfers->prev = x;
	ev->xfers = x;
	ev->running++;
	return 0;
}

unsigned
evloop_http_running(const struct evloop *ev)
{
	return ev->running;
}
