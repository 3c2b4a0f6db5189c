/*
 * machine: one emulated Glowforge on a loop (evloop.h), with no thread of
 * its own: its cloud (identity and tokens), its status socket (ws.h), its
 * dispatcher (dispatch.h) and its link, a state machine driven by uv
 * timers and completions:
 *
 *   signing_in -> connecting -> up -> (drop) -> backing_off -> signing_in
 *   any -> stopping -> stopped
 *
 * Each connection gets a fresh sign-in: a ws_token opens one socket only.
 * Every call on the loop thread.
 */
#ifndef GFE_MACHINE_H
#define GFE_MACHINE_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct evloop;
struct machine;
struct machine_gate;
struct seq_table;

enum machine_state {
	MACHINE_IDLE,		/* made, not started */
	MACHINE_SIGNING_IN,
	MACHINE_CONNECTING,
	MACHINE_UP,
	MACHINE_BACKING_OFF,
	MACHINE_STOPPING,
	MACHINE_STOPPED,
	MACHINE_STATES
};

/* A fleet's sign-ins at most rate a second (<= 0: no limit), on ev.
 * Close it once every machine has stopped; free after the loop. */
struct machine_gate *machine_gate_new(struct evloop *ev, double rate);
void		 machine_gate_close(struct machine_gate *g);
void		 machine_gate_free(struct machine_gate *g);

/* Which machine of a fleet; strings copied. */
struct machine_id {
	const char		*serial;
	const char		*password;
	const char		*hostname;	/* or NULL */
	size_t			 index;		/* in the whole fleet */
	size_t			 fleet_n;	/* machines in this process */
	int			 keep_jobs;
	struct machine_gate	*gate;		/* or NULL */
};

/* id NULL: cf->serial and cf->password, today's single machine.  cf and
 * seq must outlive the machine.  NULL only when out of memory: a machine whose parts could
 * not be made (logged) is returned all the same, for machine_stop() and
 * machine_free(), and machine_start() refuses it. */
struct machine	*machine_new(const struct config *cf,
		    const struct seq_table *seq, struct evloop *ev,
		    const struct machine_id *id);
/* After machine_stop() and once the loop ran every close (evloop_run()
 * returned). */
void		 machine_free(struct machine *m);
/* Signs in and connects, on the loop; -1 for a machine not fully made. */
int		 machine_start(struct machine *m);
/* SIGUSR1: the emulated button. */
void		 machine_press_button(struct machine *m);
/* No more sd_notify(3) from its socket (STOPPING=1 must stay last). */
void		 machine_quiet(struct machine *m);
/* Actions started, and ended "failed", so far. */
void		 machine_counts(const struct machine *m, uint64_t *actions,
		    uint64_t *failures);
/* A running job ends with its terminal event, the events still queued
 * are flushed (up to a second), the socket closes with 1001; then
 * stopped(arg), maybe before this returns.  stopped may be NULL. */
void		 machine_stop(struct machine *m, void (*stopped)(void *),
		    void *arg);
enum machine_state machine_state(const struct machine *m);
/* Where its jobs are kept, or NULL (keep_jobs off, or no folder). */
const char	*machine_dl_dir(const struct machine *m);
/* Its name in logs and pages: "" for a machine alone. */
const char	*machine_label(const struct machine *m);
const char	*machine_state_name(enum machine_state s);

#endif
