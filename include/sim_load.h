/*
 * sim_load: gf-cloud-sim's load mode.  A profile (a scenario file whose
 * played lines each send one action) is what one machine goes through,
 * repeated.  Actions are scheduled open-loop at a fixed rate over the
 * whole fleet: action k is due at start + k / rate, and goes to the next
 * connected machine with no action under way (a machine runs one at a
 * time, as the protocol says).  Latency runs from the due time, so a
 * backlog shows in it (no coordinated omission).
 *
 * Every frame is checked as in a scenario: JSON objects per line, type,
 * version, id rising per socket, the events of each action in the
 * profile's order, exactly one terminal event, no secret.
 *
 * Nothing here knows about sockets: the server feeds it messages and
 * times and gives it operations.  Single-threaded.
 */
#ifndef GFE_SIM_LOAD_H
#define GFE_SIM_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct sim_fleet;
struct sim_machine;
struct sim_scenario;
struct sim_transcript;

struct sim_load_params {
	const struct sim_scenario *profile;
	double		 rate;		/* actions/s over the fleet; 0: none */
	double		 duration_s;	/* of the schedule */
	double		 grace_s;	/* after it, for the last terminals */
	double		 ramp_s;	/* the schedule starts once every
					 * machine is up, or this late */
	unsigned	 start_signins;	/* ... and this many sign-ins were
					 * answered (0: no condition) */
	double		 max_p99_ms;	/* terminal p99 cap; 0: none */
	const char	*summary_json;	/* or NULL */
	int		 progress;	/* a line per second on stderr */
	double		 drop_at_s;	/* after the schedule starts, close
					 * every socket at once; 0: never */
	int		 lockstep;	/* every machine starts at the
					 * profile's first step (else machine
					 * i at step i mod steps) */
};

struct sim_load_ops {
	void	*arg;
	/* Queues a text frame on m's socket; 0, or -1. */
	int	(*send)(void *arg, struct sim_machine *m, const char *text,
		    size_t len);
	char	*(*pulse_url)(void *arg, const char *name);
	char	*(*upload_url)(void *arg, int64_t action_id);
	int	(*uploads)(void *arg, int64_t action_id);
	/* Sign-ins answered 200 so far. */
	int	(*signins)(void *arg);
	/* Closes every machine's socket (1001), as a scenario's "drop"
	 * does; the server reports each as disconnected before it returns.
	 * NULL: drop_at_s is not honoured. */
	void	(*drop_all)(void *arg);
};

struct sim_load;

/* NULL with the reason in err (a profile line that is not one action). */
struct sim_load	*sim_load_new(const struct sim_load_params *p,
		    struct sim_fleet *fleet, struct sim_transcript *tr,
		    const struct sim_load_ops *ops, int64_t now_us,
		    char *err, size_t errlen);
void		 sim_load_free(struct sim_load *l);

void		 sim_load_connected(struct sim_load *l, struct sim_machine *m,
		    int64_t now_us);
void		 sim_load_disconnected(struct sim_load *l,
		    struct sim_machine *m, int64_t now_us);
/* A sign-in was answered 200 now. */
void		 sim_load_signin(struct sim_load *l, int64_t now_us);
/* The most of the sorted times t[0..n) that fit in any window
 * [x, x + win_us) (a sliding window, not fixed seconds). */
size_t		 sim_load_window_max(const int64_t *t, size_t n,
		    int64_t win_us);
/* One whole WebSocket message from m. */
void		 sim_load_rx(struct sim_load *l, struct sim_machine *m,
		    const char *msg, size_t len, int64_t now_us);
/* Something outside the frames went wrong (HTTP misuse). */
void		 sim_load_violation(struct sim_load *l, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));
/* Sends what is due; when next to call it (us, same clock), or -1 once
 * the run is over (sim_load_done). */
int64_t		 sim_load_tick(struct sim_load *l, int64_t now_us);
int		 sim_load_done(const struct sim_load *l);
/* Ends the run now (a signal). */
void		 sim_load_stop(struct sim_load *l, int64_t now_us);
/* The progress line (one a second). */
void		 sim_load_progress(struct sim_load *l, int64_t now_us,
		    FILE *fp);
/* The counters and the terminal latency histogram as Prometheus text
 * (malloc'ed; NULL when out of memory).  Bucket bounds are 2^k - 1 us,
 * exact edges of the histogram's own buckets. */
char		*sim_load_metrics(struct sim_load *l);
/* Writes the summary (params.summary_json), prints the verdict: 0 the
 * run passed, 1 it did not (the reasons on stderr). */
int		 sim_load_finish(struct sim_load *l, int64_t now_us);

#endif
