/*
 * web_jobs: the kept jobs as the web page shows them.  A worker thread
 * lists motion_dl_dir (the store's names only: <stamp>_<type>_<id>.puls
 * with its .info, regular files, no links), draws each job's toolpath
 * once with gf-puls render's code into <base>.png beside it (its
 * extents and lengths into <base>.view.json), and publishes a snapshot:
 * the /api/jobs text and the names a client may fetch.  The loop thread
 * only copies that snapshot under a lock; it never lists, reads a .info
 * or renders.
 */
#ifndef GFE_WEB_JOBS_H
#define GFE_WEB_JOBS_H

#include <stddef.h>
#include <stdint.h>

#define WEB_JOBS_MAX		500	/* newest jobs listed */
#define WEB_JOBS_BASE_MAX	95	/* chars of <stamp>_<type>_<id> */
#define WEB_JOBS_PNG_WIDTH	640	/* px of a picture */

enum web_jobs_kind { WEB_JOBS_PULS, WEB_JOBS_INFO, WEB_JOBS_PNG };

struct web_jobs;

/* A listed job's names (for the lookup). */
struct web_jobs_name {
	char		 base[WEB_JOBS_BASE_MAX + 1];
	int		 has_png;
	uint32_t	 dir;		/* its folder's index */
	const char	*key;		/* its folder's URL segment, or NULL */
};

/*
 * A folder of kept jobs: the one machine's motion_dl_dir, or in a fleet
 * each machine's <motion_dl_dir>/<serial>.  The path names a serial,
 * half a login (PROTOCOL.md 2), so it is never shown: a fleet's jobs are
 * served as "<key>/<file>" and shown under the machine's label.
 */
struct web_jobs_dir {
	const char	*path;
	const char	*key;		/* "m<index>", or NULL: "<file>" */
	const char	*label;		/* hostname or m<index>, or NULL */
};

/* Starts the worker on n folders (which may not exist yet), copied.
 * notify (any thread) after each new snapshot.  NULL after logging. */
struct web_jobs	*web_jobs_new(const struct web_jobs_dir *dirs, size_t n,
		    void (*notify)(void *), void *arg);
/* Stops the worker and waits for it (a render in progress is abandoned);
 * the last snapshot is still served.  Again: nothing. */
void		 web_jobs_stop(struct web_jobs *wj);
/* Stops the worker, then frees. */
void		 web_jobs_free(struct web_jobs *wj);
/* Look again soon (a job may have been kept). */
void		 web_jobs_poke(struct web_jobs *wj);
/* Changes with every new snapshot. */
uint64_t	 web_jobs_gen(struct web_jobs *wj);
/* A copy of the /api/jobs JSON text (malloc'd), NULL when out of memory. */
char		*web_jobs_json(struct web_jobs *wj, size_t *len);
/* Opens file ("[<key>/]<base>.puls", ".info" or ".png") when, and only
 * when, it is one of the snapshot's names: the fd (regular file, not followed
 * through a link) and its content type, or -1. */
int		 web_jobs_open(struct web_jobs *wj, const char *file,
		    const char **ctype);

/* Pure parts, for tests. */
/* 1 when base has the store's form: YYYY-MM-DD_HHMMSS_<type>_<id>. */
int		 web_jobs_base_ok(const char *base);
/* The index of the job file names among names[0..n), *kind set; -1
 * when it is none of them (a PNG only when the job has one). */
long		 web_jobs_lookup(const struct web_jobs_name *names, size_t n,
		    const char *file, enum web_jobs_kind *kind);

#endif
