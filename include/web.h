/*
 * web: the daemon's own status page, on the shared loop ([WEB]).
 *
 *   /             one page (compiled in, no CDN): the machine's state, the
 *                 live list of recent actions, the kept jobs' gallery
 *   /metrics      Prometheus text (metrics.h)
 *   /api/status   JSON: machines, running actions, the last 100 actions
 *   /api/jobs     JSON: kept jobs with their .info (web_jobs.h)
 *   /api/events   server-sent events: actions as they change, "jobs"
 *   /jobs/<file>  a kept job's .puls, .info or .png, by listed name only
 *                 (a fleet's: /jobs/m<index>/<file>)
 *
 * Read-only (GET and HEAD; anything else 405), one request per
 * connection, bounded in connections, event streams and time, as the
 * FlashForge HTTP server is.  Every callback runs on the loop thread;
 * listing and drawing the jobs is web_jobs's worker's.
 */
#ifndef GFE_WEB_H
#define GFE_WEB_H

#include <stddef.h>

struct config;
struct lws_context;
struct web;
struct web_jobs_dir;

/* A vhost on ctx (before or on its loop thread), listening where [WEB]
 * says, its gallery on the n folders of kept jobs (none: no gallery);
 * NULL after logging why.  web_free() after the context (or the vhost)
 * is destroyed. */
struct web	*web_new(struct lws_context *ctx, const struct config *cf,
		    const struct web_jobs_dir *dirs, size_t n);
/* On the loop, before the context is destroyed: no thread (the jobs
 * worker, history) wakes it any more, and the jobs worker has ended.
 * NULL: nothing. */
void		 web_detach(struct web *w);
void		 web_free(struct web *w);

#endif
