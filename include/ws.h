/*
 * ws: the status WebSocket (libwebsockets, client role), a client vhost on
 * the machine's loop (evloop.h).  Every call, and every hook, on the loop
 * thread: no lock.
 *
 * Received messages are split into lines, each handed to the line hook.
 * Frames popped from the tx queue are written one per WebSocket message,
 * as they are queued while the socket keeps up (ws_wake()); a
 * frame popped but not written when the link drops goes back to the queue.
 */
#ifndef GFE_WS_H
#define GFE_WS_H

#include <stddef.h>
#include <stdint.h>

struct evloop;
struct mlog;
struct queue;
struct ws;

struct ws_params {
	const char	*url;		/* ws:// or wss:// base; token appended */
	const char	*ca_file;	/* extra trust anchors, or NULL */
	const char	*user_agent;	/* "OpenGlow/<fw>" */
	const char	*origin;	/* "http://status.glowforge.com" */
	int		 ping_secs;	/* keep-alive period, default 30 */
	int		 ping_timeout_secs;	/* default 10 */
	const struct mlog *lg;		/* its machine's lines, or NULL */
};

/* What the owner hears; arg is passed back to each. */
struct ws_hooks {
	void	(*line)(void *arg, const char *line, size_t len);
	void	(*up)(void *arg);
	/* A connection asked for by ws_open() ended, or failed to open:
	 * how many ms it was up (0: never). */
	void	(*closed)(void *arg, int64_t up_ms);
	void	*arg;
};

/* Adds the client vhost to ev's context.  ws_free() only after
 * evloop_free(): destroying the context calls back into w. */
struct ws	*ws_new(struct evloop *ev, const struct ws_params *p,
		    const struct ws_hooks *h);
void		 ws_free(struct ws *w);
/* tx: the caller's queue; its wake hook must be ws_wake. */
void		 ws_start(struct ws *w, struct queue *tx);
/* Opens the socket with this single-use token (the caller wipes it).  -1
 * if a connection is up or pending, after ws_stop(), or when lws refused
 * at once: the closed hook is not called then. */
int		 ws_open(struct ws *w, const char *token);
/* 1 while a connection is established. */
int		 ws_is_up(struct ws *w);
/* The tx queue's wake hook: writes the queued frames now when the socket
 * is up and lws holds nothing unsent, else asks for a writable callback. */
void		 ws_wake(void *w);
/* Flush tx (up to timeout_ms), close with 1001.  1: nothing was open
 * (done now); 0: the closed hook follows.  ws_open() fails from then on. */
int		 ws_stop(struct ws *w, int timeout_ms);
/* No more sd_notify(3) from this socket: the daemon is about to send
 * STOPPING=1, which must stay the last message. */
void		 ws_quiet(struct ws *w);

#endif
