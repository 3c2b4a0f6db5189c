/*
 * evloop: one libuv loop that owns every event source of a fleet shard
 * (issue 10): a libwebsockets context running on it as a foreign loop
 * (LWS_SERVER_OPTION_LIBUV), libcurl's multi interface driven by
 * uv_poll/uv_timer handles on it, and a curl share handle (DNS, TLS
 * sessions, connections) for every transfer it starts.
 *
 * Ownership: the loop, the lws context, the multi and the share belong to
 * the thread that calls evloop_run(); every evloop_* call but
 * evloop_new() and evloop_free() happens on that thread, from inside a
 * callback of the loop.  Nothing here takes a lock.
 *
 * Life: evloop_new() -> users add vhosts and timers -> evloop_run() ...
 * evloop_stop() from a callback (lws context destroyed, transfers
 * cancelled, handles closed) -> evloop_run() returns once every handle
 * is closed -> evloop_free().
 */
#ifndef GFE_EVLOOP_H
#define GFE_EVLOOP_H

#include <curl/curl.h>
#include <uv.h>

struct evloop;
struct lws_context;

/* Called once per transfer, on the loop, after it left the multi; the
 * callee owns the easy handle again (and usually cleans it up). */
typedef void	(*evloop_http_done)(void *arg, CURL *easy, CURLcode rc);

/* Raises RLIMIT_NOFILE's soft limit to the hard limit; the new soft limit,
 * or -1. */
long		 evloop_raise_nofile(void);
/* Sets the soft limit to cap, raised or lowered (at most the hard limit);
 * cap 0: as evloop_raise_nofile(). */
long		 evloop_raise_nofile_to(long cap);

/* user: lws_context_user() of the context.  max_transfers caps the
 * connections curl opens at once (0: no cap); more transfers queue.
 * Several loops in a process: make them all before the first
 * evloop_lws(); with lws < 4.2 a new one is refused (NULL, logged) while
 * another has handed out its context (see evloop.c). */
struct evloop	*evloop_new(void *user, long max_transfers);
/* The same, told that lws will hold lws_fds sockets at most at once (its
 * links, web and FlashForge clients): a small bound makes lws keep a
 * table that size instead of one slot per descriptor up to RLIMIT_NOFILE
 * (16 bytes each, 320 KiB at 20,000), and search the sockets it holds on
 * each event: for a few sockets only.  0, or a bound over 4,096: the
 * full table.  lws refuses a socket past the bound. */
struct evloop	*evloop_new_fds(void *user, long max_transfers, long lws_fds);

struct evloop_params {
	long		 max_transfers;	/* as evloop_new()'s */
	long		 lws_fds;	/* as evloop_new_fds()'s */
	/* Bytes lws reads from a socket per wake-up (one buffer per loop,
	 * not per socket); 0: lws' 4 KiB, which takes 53 reads and wake-ups
	 * for one 217 KB image upload. */
	unsigned	 read_buf;
	/* The soft RLIMIT_NOFILE to set (0: raised to the hard limit).
	 * lws sizes its fd table by the limit, and lws 4.1.6 as Debian
	 * builds it scans that whole table on every new socket: at a hard
	 * limit of 524,288 (systemd's default) that is 4 MiB per accept. */
	long		 nofile_max;
};
/* The same, with every setting; p NULL: all 0. */
struct evloop	*evloop_new_params(void *user, const struct evloop_params *p);
/* After evloop_run() returned; stops first if evloop_stop() was never
 * called. */
void		 evloop_free(struct evloop *ev);
/* Runs until evloop_stop() and every handle closed: 0, or -1 when
 * handles were left (logged). */
int		 evloop_run(struct evloop *ev);
/* From a callback: destroys the lws context (its sockets close with
 * their callbacks), cancels the transfers still running (each done()
 * gets CURLE_ABORTED_BY_CALLBACK) and closes evloop's handles. */
void		 evloop_stop(struct evloop *ev);
int		 evloop_stopping(const struct evloop *ev);

uv_loop_t	*evloop_uv(struct evloop *ev);
/* For lws_create_vhost() and client connects; NULL once stopping. */
struct lws_context *evloop_lws(struct evloop *ev);

/* Starts a transfer the caller set up on easy (URL, body, ...): evloop
 * adds the share handle and calls done(arg, easy, rc) when it ends.
 * 0, or -1 (done is then never called). */
int		 evloop_http_start(struct evloop *ev, CURL *easy,
		    evloop_http_done done, void *arg);
/* Transfers running or queued. */
unsigned	 evloop_http_running(const struct evloop *ev);

#endif
