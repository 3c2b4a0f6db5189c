/*
 * history: the last HISTORY_MAX actions a machine received, with their
 * events, for the web page and /api/status; and, as each ends, the
 * action's line in metrics (type, terminal event, latencies).  Fed by
 * four one-line calls in the dispatcher: an action is received, a job
 * starts, an event is sent (the terminal one ends the action), or it is
 * refused (busy).  Any
 * thread; a mutex guards the ring, held for a copy at most.
 */
#ifndef GFE_HISTORY_H
#define GFE_HISTORY_H

#include <stdint.h>
#include <cjson/cJSON.h>

#define HISTORY_MAX		100	/* actions kept */
#define HISTORY_EVENTS_MAX	24	/* events kept per action */
#define HISTORY_MACHINE_LEN	63	/* chars of a machine's label kept */

/* machine: the machine's label in a fleet (mlog.h: never the serial), ""
 * or NULL for a single machine.  Ids are per machine: an action is the
 * pair.  /metrics stays totals only. */
/* An action that will run (repeats of an id in the ring are ignored). */
void	 history_received(int64_t id, const char *type, const char *machine);
/* Its job started (it is then "running" until its terminal event). */
void	 history_started(int64_t id, const char *machine);
/* An event was queued for the service; "{type}:completed|failed|
 * cancelled" ends the action. */
void	 history_event(int64_t id, const char *name, const char *machine);
/* Not started: the machine answered with a log frame (busy), no event;
 * "refused" (terminal) with why.  Only an action still "received". */
void	 history_refused(int64_t id, const char *why,
	    const char *machine);
/* Changes with every call above: a reader polls it to see news. */
uint64_t history_version(void);
/* Called (from the recording thread, nothing held) after each change;
 * one at a time: the web server's wake-up.  NULL: none. */
void	 history_set_notify(void (*fn)(void *), void *arg);
/* [{"seq","id","machine" (a fleet's only),"type","received" (unix ms),
 * "state","events":[{"name","ms" (from receipt)}],"first_ms","end_ms",
 * "refused" (why)}], oldest first, only those
 * with seq > after (0: all).  NULL when out of memory. */
cJSON	*history_json(uint64_t after);
/* The running actions: [{"id","machine" (a fleet's),"type","received"}]. */
cJSON	*history_running_json(void);
/* Tests. */
void	 history_reset(void);

#endif
