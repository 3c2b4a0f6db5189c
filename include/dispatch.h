/*
 * dispatch: the action dispatcher of one machine, on its loop (evloop.h).
 * Received lines come in through dispatch_line(); each is validated
 * (frame.h), and each ready action runs as a job, a step runner following
 * its sequence (sequence.h) and queueing events on tx.  A "cancelled" for
 * the running job's id ends it with "{type}:cancelled"; an action arriving
 * while its lane is busy is not started.  Every call on the loop thread.
 */
#ifndef GFE_DISPATCH_H
#define GFE_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

/* Action ids remembered per machine: a repeated "ready" for one of them
 * is not run again (PROTOCOL.md 4.3). */
#define DISPATCH_SEEN_MAX	1024

struct config;
struct cloud;
struct evloop;
struct mlog;
struct queue;
struct seq_table;
struct dispatch;

/* Which machine (NULL: cf's [MACHINE], today's layout and lines). */
struct dispatch_id {
	const char		*serial;	/* MCsn, a job's owner */
	const char		*dl_dir;	/* jobs kept there; NULL: not */
	const struct mlog	*lg;		/* its lines */
};

/* Transfers run on ev's curl multi through cloud; tx is the caller's. */
struct dispatch	*dispatch_new(const struct config *cf, struct cloud *cloud,
		    const struct seq_table *seq, struct evloop *ev,
		    struct queue *tx, const struct dispatch_id *id);
/* After dispatch_stop()'s idle, once the loop ran the closes. */
void		 dispatch_free(struct dispatch *d);
/* One received line (the WebSocket's, tests, fuzzing). */
void		 dispatch_line(struct dispatch *d, const char *line, size_t len);
/* The emulated button is pressed now (SIGUSR1). */
void		 dispatch_press_button(struct dispatch *d);
/* Stop taking actions; running jobs are cancelled and end with their
 * terminal event, on the loop.  idle(arg) is called once no job is left:
 * before this returns when none runs. */
void		 dispatch_stop(struct dispatch *d, void (*idle)(void *),
		    void *arg);
/* Jobs not yet freed (tests). */
unsigned	 dispatch_jobs(const struct dispatch *d);
/* Actions started, and those that ended "failed", so far. */
void		 dispatch_counts(const struct dispatch *d, uint64_t *actions,
		    uint64_t *failures);

#endif
