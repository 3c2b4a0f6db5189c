/*
 * store: keeps every accepted job in motion_dl_dir as
 * <YYYY-MM-DD_HHMMSS>_<type>_<id>.puls with its .info beside it.  Both are
 * written to a temporary file in the same folder and renamed into place, so
 * a reader never sees half a file.
 */
#ifndef GFE_STORE_H
#define GFE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

struct store_job;
struct mlog;

/* type must be a validated action type; NULL (logged) when the folder is
 * unusable: the job then runs without a kept copy.  lg: the machine's
 * lines (NULL: a single machine's).  In a fleet the folder holds the
 * serial, so the job's lines name its files inside the folder only. */
struct store_job *store_begin(const char *dir, const char *type, int64_t id,
    const struct mlog *lg);
/* Fits puls_sink_fn: 0, or -1 (logged once) after a write error. */
int	 store_write(const void *buf, size_t len, void *job);
/* Writes the .info, renames both into place; -1 (logged) on failure.
 * Frees job either way.  final_name, when not NULL, gets the .puls path
 * (malloc'ed). */
int	 store_commit(struct store_job *job, const cJSON *info, char **final_name);
/* Removes the temporary file and frees job. */
void	 store_abort(struct store_job *job);
/* save_sent_images: jpeg as <dir>/<type>_<id>.jpg, overwritten in place.
 * Whatever is at that name already must be a regular file: a FIFO or a
 * link there is skipped, never followed or waited on.  0, or -1 (logged;
 * the caller's job goes on).  lg: as store_begin(). */
int	 store_save_image(const char *dir, const char *type, int64_t id,
	    const void *jpeg, size_t len, const struct mlog *lg);
/* All of buf to fd, EINTR retried; -1 and errno (ENOSPC: no progress). */
int	 store_write_all(int fd, const void *buf, size_t len);

#endif
