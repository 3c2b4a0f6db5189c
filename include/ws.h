/*
 * ws: the status WebSocket (libwebsockets, client role), a client vhost on
 * the shared loop (evloop.h).  The loop thread makes every lws call; other
 * threads talk to it only through queues and mutex-protected requests,
 * then wake it.
 *
 * Received messages are split into lines, each pushed to the rx queue.
 * Frames popped from the tx queue are written one per WebSocket message; a
 * frame popped but not written when the link drops goes back to the queue.
 */
#ifndef GFE_WS_H
#define GFE_WS_H

#include <stdint.h>

struct evloop;
struct queue;
struct ws;

struct ws_params {
	const char	*url;		/* ws:// or wss:// base; token appended */
	const char	*ca_file;	/* extra trust anchors, or NULL */
	const char	*user_agent;	/* "OpenGlow/<fw>" */
	const char	*origin;	/* "http://status.glowforge.com" */
	int		 ping_secs;	/* keep-alive period, default 30 */
	int		 ping_timeout_secs;	/* default 10 */
};

/* Adds the client vhost to ev's context, before the loop runs.
 * ws_free() only after evloop_free(): destroying the context calls back
 * into w. */
struct ws	*ws_new(struct evloop *ev, const struct ws_params *p);
void		 ws_free(struct ws *w);
/* rx, tx: queues owned by the caller; tx's wake hook must be ws_wake. */
void		 ws_start(struct ws *w, struct queue *rx, struct queue *tx);
/* From any thread: open the socket with this single-use token (copied and
 * wiped after use).  -1 if a connection is already up or pending. */
int		 ws_open(struct ws *w, const char *token);
/* Blocks until the socket opened with ws_open() is closed (or failed to
 * open) or ws_stop() ran.  Returns how many ms it was up (0: never). */
int64_t		 ws_wait_closed(struct ws *w);
/* 1 while a connection is established. */
int		 ws_is_up(struct ws *w);
/* The tx queue's wake hook: lws_cancel_service(). */
void		 ws_wake(void *w);
/* Flush tx (up to timeout_ms), close with 1001; returns once closed (or
 * the loop is found dead).  ws_open() fails from then on. */
void		 ws_stop(struct ws *w, int timeout_ms);
/* No more sd_notify(3) from this socket, from the moment it returns: the
 * daemon is about to send STOPPING=1, which must stay the last message
 * (a close seen while jobs are stopped said "reconnecting" after it). */
void		 ws_quiet(struct ws *w);

#endif
