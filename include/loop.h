/*
 * loop: the process's one libwebsockets context and the thread that
 * services it.  Every lws call but one happens on that thread; other
 * threads hand work over through their own queues or mutex-guarded
 * requests, then call loop_wake() (lws_cancel_service(), the one lws
 * function that is safe from anywhere).  Each lws protocol then gets
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED on the loop thread and acts.
 *
 * Machines (the Glowforge status socket, the FlashForge listeners) each
 * add a vhost of their own, from any thread before loop_start() or from
 * the loop thread after it, so they share the loop and nothing else.
 *
 * The loop thread also feeds the systemd watchdog (WATCHDOG=1 at half
 * of $WATCHDOG_USEC): if it stops turning, systemd restarts the daemon.
 */
#ifndef GFE_LOOP_H
#define GFE_LOOP_H

struct loop;
struct lws_context;

struct loop	*loop_new(void);
/* Destroys the context: closes every connection still open, calling the
 * protocols' close callbacks on this thread.  After loop_stop(). */
void		 loop_free(struct loop *l);
/* For lws_create_vhost() and client connects (see the threading rule). */
struct lws_context *loop_context(struct loop *l);
int		 loop_start(struct loop *l);
/* Any thread: wake the loop.  A no-op before loop_start(). */
void		 loop_wake(struct loop *l);
/* Stops and joins the loop thread; the context stays until loop_free(). */
void		 loop_stop(struct loop *l);
/* 1 once loop_stop() was asked: the close callbacks that follow are
 * the shutdown's, not a socket lost while serving. */
int		 loop_stopping(struct loop *l);
/* 1 once the loop thread has died of an lws error (it then raised
 * SIGTERM, so the daemon stops, and exits non-zero for Restart=). */
int		 loop_failed(struct loop *l);

#endif
