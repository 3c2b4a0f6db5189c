/*
 * dispatch: the action dispatcher.  Its thread takes lines from the rx
 * queue, validates them (frame.h), and runs each ready action as a job on a
 * job thread, one job at a time, following its sequence (sequence.h) and
 * queueing events on tx.  A "cancelled" for the running job's id ends it
 * with "{type}:cancelled"; an action arriving while a job runs is not started.
 */
#ifndef GFE_DISPATCH_H
#define GFE_DISPATCH_H

#include <stddef.h>

/* Action ids remembered per machine: a repeated "ready" for one of them
 * is not run again (PROTOCOL.md 4.3). */
#define DISPATCH_SEEN_MAX	1024

struct config;
struct cloud;
struct queue;
struct seq_table;
struct dispatch;

struct dispatch	*dispatch_new(const struct config *cf, struct cloud *cloud,
		    const struct seq_table *seq, struct queue *rx,
		    struct queue *tx);
void		 dispatch_free(struct dispatch *d);
int		 dispatch_start(struct dispatch *d);
/* One received line, as the dispatcher thread handles it (tests, fuzzing). */
void		 dispatch_line(struct dispatch *d, const char *line, size_t len);
/* The emulated button is pressed now (SIGUSR1). */
void		 dispatch_press_button(struct dispatch *d);
/* Stop taking actions; a running job ends with "{type}:cancelled" (within
 * timeout_ms); joins the threads. */
void		 dispatch_stop(struct dispatch *d, int timeout_ms);

#endif
