/*
 * store: see store.h.  The .puls is written to a hidden temporary file
 * (".<name>.puls.XXXXXX", so a reader globbing *.puls never sees it) and
 * renamed into place at commit, after its .info: whoever finds a .puls
 * finds its .info beside it.  A failed write is logged once and the space
 * given back at once (a full disk must not stay full until the job ends);
 * whether the job goes on without a kept copy is the caller's decision.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "mlog.h"
#include "store.h"

#define STORE_TYPE_MAX	32	/* chars of an action type */
#define STORE_DIR_MODE	0755
#define STORE_FILE_MODE	0640	/* jobs are the user's designs */

struct store_job {
	int		 fd;		/* the temporary .puls, or -1 */
	int		 failed;	/* a write failed, already logged */
	char		*dir;
	char		*base;		/* <stamp>_<type>_<id> */
	char		*tmp;		/* <dir>/.<base>.puls.XXXXXX */
	const struct mlog *lg;		/* its machine's lines */
};

/* A path for a log line.  A fleet's folder holds the serial, half of the
 * login (PROTOCOL.md 2): its lines name the file inside the machine's
 * folder only, after the machine's label. */
static const char *
store_shown(const struct store_job *job, const char *path)
{
	size_t len;

	if (job->lg == &mlog_single)
		return path;
	len = job->dir != NULL ? strlen(job->dir) : 0;
	if (len > 0 && strncmp(path, job->dir, len) == 0 && path[len] == '/')
		return path + len + 1;
	return "its folder";	/* the folder itself, or not known yet */
}

/* [a-z_]{1,32}: the caller validated it, but it goes into a path. */
static int
store_type_ok(const char *type)
{
	size_t i;

	for (i = 0; type[i] != '\0'; i++)
		if (i >= STORE_TYPE_MAX ||
		    !((type[i] >= 'a' && type[i] <= 'z') || type[i] == '_'))
			return 0;
	return i > 0;
}

/* mkdir -p: every missing component, then a directory must be there. */
static int
store_mkdir_p(const char *dir)
{
	struct stat sb;
	char *p, *s;
	int rc = -1;

	if ((p = strdup(dir)) == NULL)
		return -1;
	for (s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		if (s[-1] != '/') {
			char c = *s;

			*s = '\0';
			if (mkdir(p, STORE_DIR_MODE) == -1 && errno != EEXIST)
				goto done;
			*s = c;
		}
		if (*s == '\0')
			break;
	}
	if (stat(dir, &sb) == -1)
		goto done;
	if (!S_ISDIR(sb.st_mode)) {
		errno = ENOTDIR;
		goto done;
	}
	rc = 0;
done:
	free(p);
	return rc;
}

int
store_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t w;

	while (len > 0) {
		w = write(fd, p, len);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return -1;
		if (w == 0) {
			errno = ENOSPC;	/* no progress: treat as a full disk */
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static void
store_job_free(struct store_job *job)
{
	if (job->fd != -1)
		close(job->fd);
	free(job->dir);
	free(job->base);
	free(job->tmp);
	free(job);
}

struct store_job *
store_begin(const char *dir, const char *type, int64_t id,
    const struct mlog *lg)
{
	struct store_job *job;
	char stamp[32];
	struct tm tm;
	time_t now;
	size_t len;

	if (lg == NULL)
		lg = &mlog_single;
	if (dir == NULL || *dir == '\0' || type == NULL ||
	    !store_type_ok(type)) {
		MLOG(lg, LOG_WARNING, 0,
		    "not keeping the job: bad folder or action type");
		return NULL;
	}
	if ((job = calloc(1, sizeof(*job))) == NULL) {
		MLOG(lg, LOG_WARNING, 1, "calloc");
		return NULL;
	}
	job->fd = -1;
	job->lg = lg;
	if ((job->dir = strdup(dir)) == NULL) {
		MLOG(lg, LOG_WARNING, 1, "strdup");
		goto fail;
	}
	/* "dir/" and "dir" name the same files: no "//" in the names. */
	for (len = strlen(job->dir); len > 1 && job->dir[len - 1] == '/'; )
		job->dir[--len] = '\0';
	if (store_mkdir_p(job->dir) == -1) {
		MLOG(lg, LOG_WARNING, 1, "not keeping the job: folder %s",
		    store_shown(job, job->dir));
		goto fail;
	}
	now = time(NULL);
	if (localtime_r(&now, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%Y-%m-%d_%H%M%S", &tm) == 0) {
		MLOG(lg, LOG_WARNING, 0, "not keeping the job: no local time");
		goto fail;
	}
	if (asprintf(&job->base, "%s_%s_%lld", stamp, type,
	    (long long)id) == -1) {
		job->base = NULL;	/* undefined after a failure */
		MLOG(job->lg, LOG_WARNING, 1, "asprintf");
		goto fail;
	}
	if (asprintf(&job->tmp, "%s/.%s.puls.XXXXXX", job->dir,
	    job->base) == -1) {
		job->tmp = NULL;
		MLOG(job->lg, LOG_WARNING, 1, "asprintf");
		goto fail;
	}
	if ((job->fd = mkostemp(job->tmp, O_CLOEXEC)) == -1) {
		MLOG(job->lg, LOG_WARNING, 1, "not keeping the job: %s",
		    store_shown(job, job->tmp));
		goto fail;
	}
	if (fchmod(job->fd, STORE_FILE_MODE) == -1)
		MLOG(job->lg, LOG_WARNING, 1, "fchmod %s",
		    store_shown(job, job->tmp));	/* 0600 will do */
	MLOG(job->lg, LOG_DEBUG, 0, "keeping the job in %s",
	    store_shown(job, job->tmp));
	return job;
fail:
	metrics_inc(METRICS_DISK_ERRORS);
	store_job_free(job);
	return NULL;
}

int
store_write(const void *buf, size_t len, void *arg)
{
	struct store_job *job = arg;

	if (job == NULL || job->failed)
		return -1;
	if (store_write_all(job->fd, buf, len) == -1) {
		MLOG(job->lg, LOG_WARNING, 1, "not keeping the job: writing %s",
		    store_shown(job, job->tmp));
		metrics_inc(METRICS_DISK_ERRORS);
		job->failed = 1;
		/* Give the space back now; the file is lost anyway. */
		if (ftruncate(job->fd, 0) == -1)
			MLOG(job->lg, LOG_DEBUG, 0, "ftruncate %s failed",
			    store_shown(job, job->tmp));
		return -1;
	}
	return 0;
}

static void
store_sync_dir(const struct store_job *job)
{
	int fd;

	/* The renames are durable once the folder is synced. */
	if ((fd = open(job->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	if (fsync(fd) == -1)
		MLOG(job->lg, LOG_DEBUG, 1, "fsync %s failed",
		    store_shown(job, job->dir));
	close(fd);
}

/* The .info, by temporary file and rename; its path in *path. */
static int
store_write_info(struct store_job *job, const cJSON *info, char **path)
{
	char *text = NULL, *tmp = NULL;
	int fd = -1, rc = -1;

	*path = NULL;
	if ((text = cJSON_Print(info)) == NULL) {
		MLOG(job->lg, LOG_WARNING, 0,
		    "not keeping the job: .info not printable");
		goto done;
	}
	if (asprintf(&tmp, "%s/.%s.info.XXXXXX", job->dir, job->base) == -1) {
		tmp = NULL;
		MLOG(job->lg, LOG_WARNING, 1, "asprintf");
		goto done;
	}
	if (asprintf(path, "%s/%s.info", job->dir, job->base) == -1) {
		*path = NULL;
		free(tmp);
		tmp = NULL;
		MLOG(job->lg, LOG_WARNING, 1, "asprintf");
		goto done;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		MLOG(job->lg, LOG_WARNING, 1, "not keeping the job: %s",
		    store_shown(job, tmp));
		free(tmp);
		tmp = NULL;
		goto done;
	}
	if (fchmod(fd, STORE_FILE_MODE) == -1)
		MLOG(job->lg, LOG_WARNING, 1, "fchmod %s",
		    store_shown(job, tmp));
	if (store_write_all(fd, text, strlen(text)) == -1 ||
	    store_write_all(fd, "\n", 1) == -1 || fsync(fd) == -1) {
		MLOG(job->lg, LOG_WARNING, 1, "not keeping the job: writing %s",
		    store_shown(job, tmp));
		goto done;
	}
	if (close(fd) == -1) {
		fd = -1;
		MLOG(job->lg, LOG_WARNING, 1, "not keeping the job: closing %s",
		    store_shown(job, tmp));
		goto done;
	}
	fd = -1;
	if (rename(tmp, *path) == -1) {
		MLOG(job->lg, LOG_WARNING, 1,
		    "not keeping the job: rename to %s", store_shown(job, *path));
		goto done;
	}
	free(tmp);
	tmp = NULL;
	rc = 0;
done:
	if (fd != -1)
		close(fd);
	if (tmp != NULL)
		unlink(tmp);
	if (rc == -1) {
		free(*path);
		*path = NULL;
	}
	free(tmp);
	cJSON_free(text);
	return rc;
}

int
store_commit(struct store_job *job, const cJSON *info, char **final_name)
{
	char *puls = NULL, *infopath = NULL;
	int rc = -1;

	if (final_name != NULL)
		*final_name = NULL;
	if (job == NULL)
		return -1;
	if (job->failed) {
		MLOG(job->lg, LOG_WARNING, 0,
		    "not keeping %s: a write failed", job->base);
		goto done;
	}
	if (fsync(job->fd) == -1) {
		MLOG(job->lg, LOG_WARNING, 1, "not keeping the job: fsync %s",
		    store_shown(job, job->tmp));
		goto done;
	}
	if (close(job->fd) == -1) {
		job->fd = -1;
		MLOG(job->lg, LOG_WARNING, 1, "not keeping the job: closing %s",
		    store_shown(job, job->tmp));
		goto done;
	}
	job->fd = -1;
	if (asprintf(&puls, "%s/%s.puls", job->dir, job->base) == -1) {
		puls = NULL;
		MLOG(job->lg, LOG_WARNING, 1, "asprintf");
		goto done;
	}
	/* The .info first: whoever sees the .puls finds its .info. */
	if (info != NULL && store_write_info(job, info, &infopath) == -1)
		goto done;
	if (rename(job->tmp, puls) == -1) {
		MLOG(job->lg, LOG_WARNING, 1,
		    "not keeping the job: rename to %s", store_shown(job, puls));
		if (infopath != NULL)
			unlink(infopath);
		goto done;
	}
	free(job->tmp);
	job->tmp = NULL;	/* in place now: nothing to clean up */
	store_sync_dir(job);
	MLOG(job->lg, LOG_INFO, 0, "kept the job as %s",
	    store_shown(job, puls));
	if (final_name != NULL) {
		*final_name = puls;
		puls = NULL;
	}
	rc = 0;
done:
	if (rc == 0 || !job->failed)	/* a failed write was counted */
		metrics_inc(rc == 0 ? METRICS_JOBS_KEPT : METRICS_DISK_ERRORS);
	if (job->tmp != NULL)
		unlink(job->tmp);
	free(puls);
	free(infopath);
	store_job_free(job);
	return rc;
}

void
store_abort(struct store_job *job)
{
	if (job == NULL)
		return;
	if (job->fd != -1) {
		close(job->fd);
		job->fd = -1;
	}
	if (job->tmp != NULL && unlink(job->tmp) == -1)
		MLOG(job->lg, LOG_WARNING, 1, "unlink %s",
		    store_shown(job, job->tmp));
	store_job_free(job);
}

/* Opens path for store_save_image(): -1 (logged) unless it is a regular
 * file, or none was there. */
static int
store_image_open(const char *path, const struct mlog *lg)
{
	struct stat sb;
	int fd;

	/* Whatever sits at that name must not hold the job: a FIFO would
	 * block open() and write() for ever, a link would send the image
	 * elsewhere.  So: no blocking, no following, a regular file only. */
	fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOFOLLOW |
	    O_CLOEXEC, STORE_FILE_MODE);
	if (fd == -1) {
		/* ENXIO: a FIFO nobody reads; ELOOP: a symbolic link. */
		if (errno == ENXIO || errno == ELOOP)
			MLOG(lg, LOG_WARNING, 0,
			    "save_sent_images: %s: not a regular file, "
			    "not saved", path);
		else
			MLOG(lg, LOG_WARNING, 1,
			    "save_sent_images: %s", path);
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		MLOG(lg, LOG_WARNING, 0,
		    "save_sent_images: %s: not a regular file, not "
		    "saved", path);
		close(fd);
		return -1;
	}
	return fd;
}

int
store_save_image(const char *dir, const char *type, int64_t id,
    const void *jpeg, size_t len, const struct mlog *lg)
{
	char path[4096];
	int fd, rc = -1;

	if (lg == NULL)
		lg = &mlog_single;
	if (dir == NULL || type == NULL || !store_type_ok(type))
		return -1;
	/* type is [a-z_] and id is a number: a safe name. */
	snprintf(path, sizeof(path), "%s/%s_%lld.jpg", dir, type,
	    (long long)id);
	if ((fd = store_image_open(path, lg)) == -1)
		return -1;
	if (ftruncate(fd, 0) == -1 || store_write_all(fd, jpeg, len) == -1)
		MLOG(lg, LOG_WARNING, 1, "save_sent_images: %s", path);
	else
		rc = 0;
	if (close(fd) == -1) {
		MLOG(lg, LOG_WARNING, 1, "save_sent_images: %s", path);
		rc = -1;
	}
	return rc;
}
