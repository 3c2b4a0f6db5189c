/*
 * sim_player: plays a parsed scenario (sim_scenario) while the machine is
 * connected, checking each frame the machine sends, and records what went
 * over the wire in the transcript (sim_transcript).
 *
 * Nothing here knows about libwebsockets: the player acts through a table of
 * operations and is fed messages and times, so it runs the same under the
 * server and under the unit tests.  Single-threaded: one caller at a time.
 */
#ifndef GFE_SIM_PLAYER_H
#define GFE_SIM_PLAYER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sim_scenario.h"

#define SIM_MSG_MAX		(256 * 1024)	/* bytes per message */

struct sim_player;
struct sim_transcript;

/* What the player needs from the server.  Every pointer must be set. */
struct sim_player_ops {
	void	*arg;
	/* Queues a text frame for the machine (sent on the next connection
	 * when none is up).  0, or -1 when the queue is full. */
	int	(*send)(void *arg, const char *text, size_t len);
	/* Closes the machine's socket. */
	void	(*drop)(void *arg);
	void	(*knob)(void *arg, enum sim_knob knob, int n);
	/* malloc'ed absolute URLs, or NULL on error. */
	char	*(*pulse_url)(void *arg, const char *name);
	char	*(*upload_url)(void *arg, int64_t action_id);
	/* How many valid images were uploaded for this action. */
	int	(*uploads)(void *arg, int64_t action_id);
	/* How many sign-ins were answered with this HTTP status so far. */
	int	(*signins)(void *arg, int status);
	/* 1 when the harness made the file name (no '/') in its folder
	 * (--pulse-dir), else 0 (await_file). */
	int	(*file_exists)(void *arg, const char *name);
};

enum sim_result { SIM_RUNNING, SIM_PASSED, SIM_FAILED };

/* serial: the machine's, without the "S".  sc and tr must outlive it. */
struct sim_player *sim_player_new(const struct sim_scenario *sc,
		    const struct sim_player_ops *ops,
		    struct sim_transcript *tr, const char *serial);
void		 sim_player_free(struct sim_player *p);
/* A machine socket is up / went down.  The first connection starts play. */
void		 sim_player_connected(struct sim_player *p,
		    int64_t now_ms);
void		 sim_player_disconnected(struct sim_player *p,
		    int64_t now_ms);
/* The machine sent a close frame with this code (0: none given) on its
 * current socket; sim_player_disconnected() follows. */
void		 sim_player_peer_close(struct sim_player *p,
		    int code);
/* One WebSocket message from the machine, whole. */
void		 sim_player_rx(struct sim_player *p,
		    const char *msg, size_t len, int64_t now_ms);
/* The same, timed in microseconds (same origin as the ms clock): the
 * server's, so action latencies are measured finer than the ms clock. */
void		 sim_player_rx_us(struct sim_player *p,
		    const char *msg, size_t len, int64_t now_us);
/* The server wrote the oldest frame handed to ops.send and not yet
 * reported, at now_us.  One call per frame, in queueing order (the
 * server's queue is FIFO): that is how the player knows which actions
 * went out, without parsing its own frames again. */
void		 sim_player_written(struct sim_player *p,
		    int64_t now_us);
/* Time passes, or something outside the WebSocket happened (an HTTP
 * request): deadlines and waits are checked. */
void		 sim_player_tick(struct sim_player *p,
		    int64_t now_ms);
/* When the player next needs a tick (ms, same clock), or -1. */
int64_t		 sim_player_deadline(
		    const struct sim_player *p);
/* Ends play with a failure from outside (HTTP misuse, global timeout,
 * signal); the first reason given is kept. */
void		 sim_player_fail(struct sim_player *p,
		    const char *fmt, ...) __attribute__((format(printf, 2, 3)));
enum sim_result	 sim_player_result(const struct sim_player *p);
/* Why it failed (one line), or "" while running or after a pass. */
const char	*sim_player_reason(const struct sim_player *p);
/* Where play stands, for a timeout message: "line 12: waiting for ...". */
void		 sim_player_where(const struct sim_player *p,
		    char *buf, size_t len);
/* Line by line: each action sent, its label, and the events it got;
 * then the latency line when there is one (sim_player_latency). */
void		 sim_player_summary(const struct sim_player *p,
		    FILE *fp);

/* Action latency: from the write of an action's frame to the arrival of
 * the first message carrying an event for it, in microseconds.  Only
 * actions with both times count (the unit tests' fake server writes
 * nothing).  Percentiles are nearest-rank over the measured actions. */
struct sim_latency {
	size_t	 count;
	int64_t	 p50, p90, p99, max;	/* us */
};
/* 0, or -1 when out of memory (lat is then all zero). */
int		 sim_player_latency(const struct sim_player *p,
		    struct sim_latency *lat);
/* Every measured action, a line each: "<id> <action_type> <us>", in the
 * order sent.  0, or -1 on a write error. */
int		 sim_player_latencies(const struct sim_player *p,
		    FILE *fp);

#endif
