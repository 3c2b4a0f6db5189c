/*
 * web_jobs: see web_jobs.h.
 *
 * The worker looks at each folder's mtime once a second (or when poked):
 * a job kept, a picture drawn, a file removed, all change it (and a
 * listing that saw a fresh mtime is taken again: see web_jobs_racy).  A
 * fleet has a folder per machine; the snapshot merges their listings,
 * newest first.  A change means a new listing, published at once, then
 * each missing picture
 * drawn (two passes, as gf-puls render does on a file: the extents, then
 * the toolpath streamed onto the canvas, so memory is the picture's) and
 * the listing published again.  A job that cannot be drawn is remembered
 * and not tried again while the daemon runs.  Temporary files are hidden
 * (".<base>.png.XXXXXX"), as the store's are, removed on failure, and
 * swept at start when a crash left them.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cairo.h>
#include <cjson/cJSON.h>

#include "log.h"
#include "mono.h"
#include "puls.h"
#include "puls_render.h"
#include "store.h"
#include "web_jobs.h"

#define WEB_JOBS_SCAN_MS	1000		/* between looks at the folder */
#define WEB_JOBS_INFO_MAX	(256 * 1024)	/* bytes of a .info read */
#define WEB_JOBS_READ_BUF	(256 * 1024)	/* bytes per read of a .puls */
#define WEB_JOBS_FAILED_MAX	64		/* names not drawn, remembered */
#define WEB_JOBS_FILE_MODE	0640		/* as the store's: a design */
#define WEB_JOBS_STALE_S	600		/* s: a temporary left behind */

struct web_jobs_snap {
	char			*json;
	size_t			 len;
	struct web_jobs_name	*names;
	size_t			 n;
};

/* A folder of kept jobs, and its last listing (the worker's). */
struct web_jobs_folder {
	char			*path;		/* never shown: it names a serial */
	char			*key;		/* URL segment, or NULL */
	char			*label;		/* shown, or NULL */
	struct timespec		 seen;		/* mtime before the last listing */
	int			 racy;		/* list again: web_jobs_racy */
	int			 exists;
	int			 swept;		/* stale temporaries removed */
	struct web_jobs_name	*names;
	size_t			 n;
};

/* A job not drawn, not tried again while the daemon runs. */
struct web_jobs_failure {
	uint32_t		 dir;
	char			 base[WEB_JOBS_BASE_MAX + 1];
};

struct web_jobs {
	struct web_jobs_folder	*folders;	/* fixed at web_jobs_new */
	size_t			 nfolders;
	void			(*notify)(void *);
	void			*arg;
	pthread_t		 thread;
	int			 started;
	atomic_int		 stop;
	atomic_uint_fast64_t	 gen;
	pthread_mutex_t		 mtx;		/* guards what follows */
	pthread_cond_t		 cond;
	int			 poked;
	struct web_jobs_snap	 snap;
	/* Worker only. */
	struct web_jobs_failure	 failed[WEB_JOBS_FAILED_MAX];
	size_t			 nfailed;
};

/* ---- names ---- */

static int
web_jobs_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

int
web_jobs_base_ok(const char *base)
{
	const char *id, *type;
	size_t n = strlen(base), tn, i;

	/* YYYY-MM-DD_HHMMSS_ */
	if (n > WEB_JOBS_BASE_MAX || n < 20 || !web_jobs_digits(base, 4) ||
	    base[4] != '-' || !web_jobs_digits(base + 5, 2) || base[7] != '-' ||
	    !web_jobs_digits(base + 8, 2) || base[10] != '_' ||
	    !web_jobs_digits(base + 11, 6) || base[17] != '_')
		return 0;
	type = base + 18;
	if ((id = strrchr(type, '_')) == NULL)
		return 0;
	tn = (size_t)(id - type);
	for (i = 0; i < tn; i++)
		if (!((type[i] >= 'a' && type[i] <= 'z') || type[i] == '_'))
			return 0;
	id++;
	if (*id == '-')
		id++;
	return tn > 0 && *id != '\0' && web_jobs_digits(id, strlen(id));
}

static const struct {
	const char		*ext;
	enum web_jobs_kind	 kind;
	const char		*ctype;
} web_jobs_exts[] = {
	{ ".puls", WEB_JOBS_PULS, "application/octet-stream" },
	{ ".info", WEB_JOBS_INFO, "application/json" },
	{ ".png", WEB_JOBS_PNG, "image/png" },
};

long
web_jobs_lookup(const struct web_jobs_name *names, size_t n,
    const char *file, enum web_jobs_kind *kind)
{
	const char *f;
	size_t i, j, bl, kl;

	for (i = 0; i < n; i++) {
		/* A fleet's: "<key>/<base>.<ext>", the key a whole segment. */
		f = file;
		if (names[i].key != NULL) {
			kl = strlen(names[i].key);
			if (strncmp(f, names[i].key, kl) != 0 || f[kl] != '/')
				continue;
			f += kl + 1;
		}
		bl = strlen(names[i].base);
		if (strncmp(f, names[i].base, bl) != 0)
			continue;
		for (j = 0; j < sizeof(web_jobs_exts) /
		    sizeof(web_jobs_exts[0]); j++) {
			if (strcmp(f + bl, web_jobs_exts[j].ext) != 0)
				continue;
			if (web_jobs_exts[j].kind == WEB_JOBS_PNG &&
			    !names[i].has_png)
				return -1;
			*kind = web_jobs_exts[j].kind;
			return (long)i;
		}
	}
	return -1;
}

/* ---- reading the folder ---- */

/* 1 when dir/name is a regular file (a link is not), its size in *size. */
static int
web_jobs_regular(int dfd, const char *name, off_t *size)
{
	struct stat sb;

	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(sb.st_mode))
		return 0;
	if (size != NULL)
		*size = sb.st_size;
	return 1;
}

/* Newest first (the name starts with its stamp), then by folder. */
static int
web_jobs_cmp_desc(const void *a, const void *b)
{
	const struct web_jobs_name *x = a, *y = b;
	int c = strcmp(x->base, y->base);

	if (c != 0)
		return -c;
	return x->dir < y->dir ? -1 : x->dir > y->dir;
}

/* The jobs of folder dir (its dfd), newest first, at most
 * WEB_JOBS_MAX. */
static size_t
web_jobs_list(int dfd, uint32_t dir, const char *key,
    struct web_jobs_name **out)
{
	struct web_jobs_name *v = NULL, *nv;
	struct dirent *de;
	size_t n = 0, cap = 0, len;
	char info[WEB_JOBS_BASE_MAX + 8];
	DIR *d;
	int fd;

	*out = NULL;
	if ((fd = dup(dfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return 0;
	}
	/* A dup shares the offset: the last listing left it at the end. */
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len <= 5 || len - 5 > WEB_JOBS_BASE_MAX ||
		    strcmp(de->d_name + len - 5, ".puls") != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				break;
			v = nv;
		}
		memcpy(v[n].base, de->d_name, len - 5);
		v[n].base[len - 5] = '\0';
		snprintf(info, sizeof(info), "%s.info", v[n].base);
		if (!web_jobs_base_ok(v[n].base) ||
		    !web_jobs_regular(dfd, de->d_name, NULL) ||
		    !web_jobs_regular(dfd, info, NULL))
			continue;
		snprintf(info, sizeof(info), "%s.png", v[n].base);
		v[n].has_png = web_jobs_regular(dfd, info, NULL);
		v[n].dir = dir;
		v[n].key = key;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), web_jobs_cmp_desc);
	*out = v;
	return n > WEB_JOBS_MAX ? WEB_JOBS_MAX : n;
}

/* A small JSON file of the folder, parsed; NULL when absent or bad. */
static cJSON *
web_jobs_read_json(int dfd, const char *name)
{
	char *buf;
	ssize_t r;
	size_t len = 0;
	cJSON *j = NULL;
	int fd;

	if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
	    O_NONBLOCK)) == -1)
		return NULL;
	if ((buf = malloc(WEB_JOBS_INFO_MAX)) != NULL) {
		while (len < WEB_JOBS_INFO_MAX && (r = read(fd, buf + len,
		    WEB_JOBS_INFO_MAX - len)) > 0)
			len += (size_t)r;
		if (len < WEB_JOBS_INFO_MAX)
			j = cJSON_ParseWithLength(buf, len);
		free(buf);
	}
	close(fd);
	return j;
}

/* ---- drawing ---- */

struct web_jobs_walk {
	struct puls_stream	*s;
	struct puls_trace	*t;
	uint64_t		 plain;		/* bytes through the sink */
};

/* Body bytes to the trace; the header comes through the sink first. */
static int
web_jobs_sink(const void *buf, size_t len, void *arg)
{
	struct web_jobs_walk *w = arg;
	const struct puls_header *h = puls_stream_header(w->s);
	uint64_t skip = 0;

	if (h != NULL && w->plain < h->header_len) {
		skip = h->header_len - w->plain;
		if (skip > len)
			skip = len;
	}
	w->plain += len;
	if (len > skip)
		puls_trace_add(w->t, (const uint8_t *)buf + skip, len - skip);
	return 0;
}

/* Walks dir/<name> into t; *stfr from its header.  -1: unreadable, bad,
 * or the worker is stopping. */
static int
web_jobs_walk(struct web_jobs *wj, int dfd, const char *name,
    struct puls_trace *t, uint32_t *stfr)
{
	struct web_jobs_walk w;
	uint8_t *buf = NULL;
	ssize_t r;
	int fd, rc = -1;

	memset(&w, 0, sizeof(w));
	w.t = t;
	if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) ==
	    -1)
		return -1;
	if ((w.s = puls_stream_new(0, PULS_MAX_BODY, web_jobs_sink, &w)) ==
	    NULL || (buf = malloc(WEB_JOBS_READ_BUF)) == NULL)
		goto done;
	puls_stream_nocheck(w.s);
	puls_stream_nostats(w.s);
	while ((r = read(fd, buf, WEB_JOBS_READ_BUF)) > 0) {
		if (atomic_load(&wj->stop) ||
		    puls_stream_feed(w.s, buf, (size_t)r) == -1)
			goto done;
	}
	if (r == -1 || puls_stream_finish(w.s) == -1)
		goto done;
	puls_trace_finish(t);
	if (stfr != NULL)
		puls_header_get(puls_stream_header(w.s), "STfr", stfr);
	rc = 0;
done:
	puls_stream_free(w.s);
	free(buf);
	close(fd);
	return rc;
}

/*
 * A new hidden file in the folder, under a name nobody can guess
 * (mkostemp: O_EXCL, so nothing planted there is opened or followed),
 * mode set on the fd; its path in tmp.  Whoever may write to the folder
 * must not get the daemon to write or chmod a file of their choosing.
 */
static int
web_jobs_tmp(const char *dir, const char *name, char *tmp, size_t len)
{
	int fd;

	snprintf(tmp, len, "%s/.%s.XXXXXX", dir, name);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		tmp[0] = '\0';
		return -1;
	}
	if (fchmod(fd, WEB_JOBS_FILE_MODE) == -1) {
		close(fd);
		unlink(tmp);
		tmp[0] = '\0';
		return -1;
	}
	return fd;
}

/* Closes fd and renames tmp to path, synced first as the store does;
 * -1 (errno) with tmp removed. */
static int
web_jobs_place(int fd, const char *tmp, const char *path)
{
	int e, rc;

	/* close() once, whatever it says: other threads open files too. */
	rc = fsync(fd);
	e = errno;
	if (close(fd) == -1 && rc == 0) {
		rc = -1;
		e = errno;
	}
	if (rc == 0 && (rc = rename(tmp, path)) == -1)
		e = errno;
	if (rc == -1) {
		unlink(tmp);
		errno = e;
	}
	return rc;
}

/* Writes j as dir/name through a hidden temporary file. */
static int
web_jobs_write_json(const char *dir, const char *name, const cJSON *j)
{
	char tmp[4096], path[4096], *text;
	int fd, rc = -1;

	if ((text = cJSON_Print(j)) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = web_jobs_tmp(dir, name, tmp, sizeof(tmp))) != -1) {
		if (store_write_all(fd, text, strlen(text)) == -1) {
			close(fd);
			unlink(tmp);
		} else
			rc = web_jobs_place(fd, tmp, path);
	}
	cJSON_free(text);
	return rc;
}

/* The canvas's PNG into the file made for it (a puls_sink_fn). */
static int
web_jobs_png_write(const void *buf, size_t len, void *arg)
{
	return store_write_all(*(const int *)arg, buf, len);
}

/* <base>.png and <base>.view.json in folder dir (its dfd); -1 logged. */
static int
web_jobs_render(struct web_jobs *wj, const char *dir, int dfd,
    const char *base)
{
	struct puls_trace ext, t;
	struct puls_canvas *c = NULL;
	char puls[WEB_JOBS_BASE_MAX + 8], tmp[4096], png[4096], err[256];
	char title[256], view[WEB_JOBS_BASE_MAX + 16];
	uint32_t stfr = 10000;
	cJSON *j = NULL;
	int fd = -1, rc = -1;

	tmp[0] = '\0';
	snprintf(puls, sizeof(puls), "%s.puls", base);
	snprintf(png, sizeof(png), "%s/%s.png", dir, base);
	snprintf(err, sizeof(err), "cannot read it");
	puls_trace_init(&ext, 0, 1);
	puls_trace_init(&t, 1,
	    puls_render_steps_per_px(WEB_JOBS_PNG_WIDTH) / 2);
	/* The extents first: they set the view the toolpath streams onto. */
	if (web_jobs_walk(wj, dfd, puls, &ext, NULL) == -1)
		goto done;
	snprintf(view, sizeof(view), "%s.png", base);
	if ((fd = web_jobs_tmp(dir, view, tmp, sizeof(tmp))) == -1) {
		snprintf(err, sizeof(err), "no file for it: %s",
		    strerror(errno));
		goto done;
	}
	if ((c = puls_canvas_open_sink(&ext, web_jobs_png_write, &fd, tmp,
	    WEB_JOBS_PNG_WIDTH, err, sizeof(err))) == NULL)
		goto done;
	puls_trace_sink(&t, puls_canvas_sink, c);
	if (web_jobs_walk(wj, dfd, puls, &t, &stfr) == -1)
		goto done;
	puls_trace_flush(&t);
	snprintf(title, sizeof(title), "%s: cut %.1f mm, travel %.1f mm",
	    base, puls_trace_cut_mm(&t), puls_trace_travel_mm(&t));
	rc = puls_canvas_close(c, &t, title, err, sizeof(err));
	c = NULL;
	if (rc == 0) {
		rc = web_jobs_place(fd, tmp, png);
		fd = -1;	/* closed, and tmp gone or renamed */
		if (rc == -1)
			snprintf(err, sizeof(err), "keeping it: %s",
			    strerror(errno));
	}
	snprintf(view, sizeof(view), "%s.view.json", base);
	if (rc == 0 && ((j = puls_trace_json(&t, stfr)) == NULL ||
	    web_jobs_write_json(dir, view, j) == -1))
		log_warnx("web: %s: extents not written", base);
done:
	if (c != NULL)
		puls_canvas_abort(c);
	if (fd != -1) {
		close(fd);
		unlink(tmp);
	}
	if (rc == -1 && !atomic_load(&wj->stop))
		log_warnx("web: %s: no picture: %s", base, err);
	cJSON_Delete(j);
	puls_trace_free(&ext);
	puls_trace_free(&t);
	return rc;
}

/* ---- the snapshot ---- */

static cJSON *
web_jobs_entry(int dfd, const struct web_jobs_folder *fo,
    const struct web_jobs_name *nm, int failed)
{
	char name[WEB_JOBS_BASE_MAX + 16], url[WEB_JOBS_BASE_MAX + 96];
	char at[72];
	const char *type = nm->base + 18, *id = strrchr(type, '_');
	cJSON *o, *info;
	off_t size = 0;

	/* The name was checked: 18 chars of stamp, then <type>_<id>. */
	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "name", nm->base);
	if (fo->label != NULL)
		cJSON_AddStringToObject(o, "machine", fo->label);
	/* The URLs are relative: "jobs/[<key>/]<base>.<ext>". */
	snprintf(at, sizeof(at), "%s%s", fo->key != NULL ? fo->key : "",
	    fo->key != NULL ? "/" : "");
	snprintf(name, sizeof(name), "%.*s", (int)(id - type), type);
	cJSON_AddStringToObject(o, "type", name);
	cJSON_AddStringToObject(o, "id", id + 1);
	snprintf(name, sizeof(name), "%.10s %.2s:%.2s:%.2s", nm->base,
	    nm->base + 11, nm->base + 13, nm->base + 15);
	cJSON_AddStringToObject(o, "kept", name);
	snprintf(name, sizeof(name), "%s.puls", nm->base);
	web_jobs_regular(dfd, name, &size);
	cJSON_AddNumberToObject(o, "puls_bytes", (double)size);
	snprintf(url, sizeof(url), "jobs/%s%s.puls", at, nm->base);
	cJSON_AddStringToObject(o, "puls_url", url);
	snprintf(url, sizeof(url), "jobs/%s%s.info", at, nm->base);
	cJSON_AddStringToObject(o, "info_url", url);
	snprintf(url, sizeof(url), "jobs/%s%s.png", at, nm->base);
	if (nm->has_png)
		cJSON_AddStringToObject(o, "image_url", url);
	else
		cJSON_AddNullToObject(o, "image_url");
	cJSON_AddStringToObject(o, "picture", nm->has_png ? "ready" :
	    failed ? "failed" : "pending");
	snprintf(name, sizeof(name), "%s.info", nm->base);
	if ((info = web_jobs_read_json(dfd, name)) != NULL)
		cJSON_AddItemToObject(o, "info", info);
	else
		cJSON_AddNullToObject(o, "info");
	snprintf(name, sizeof(name), "%s.view.json", nm->base);
	if (nm->has_png && (info = web_jobs_read_json(dfd, name)) != NULL)
		cJSON_AddItemToObject(o, "view", info);
	else
		cJSON_AddNullToObject(o, "view");
	return o;
}

static int
web_jobs_failed(const struct web_jobs *wj, uint32_t dir, const char *base)
{
	size_t i;

	for (i = 0; i < wj->nfailed && i < WEB_JOBS_FAILED_MAX; i++)
		if (wj->failed[i].dir == dir &&
		    strcmp(wj->failed[i].base, base) == 0)
			return 1;
	return 0;
}

/* The folders' listings, merged newest first, at most WEB_JOBS_MAX: 0,
 * or -1 when out of memory. */
static int
web_jobs_merge(const struct web_jobs *wj, struct web_jobs_snap *s)
{
	size_t i, total = 0;

	for (i = 0; i < wj->nfolders; i++)
		total += wj->folders[i].n;
	if (total == 0)
		return 0;
	if ((s->names = malloc(total * sizeof(*s->names))) == NULL)
		return -1;
	for (i = 0; i < wj->nfolders; i++) {
		if (wj->folders[i].n == 0)
			continue;
		memcpy(s->names + s->n, wj->folders[i].names,
		    wj->folders[i].n * sizeof(*s->names));
		s->n += wj->folders[i].n;
	}
	if (wj->nfolders > 1)
		qsort(s->names, s->n, sizeof(*s->names), web_jobs_cmp_desc);
	if (s->n > WEB_JOBS_MAX)
		s->n = WEB_JOBS_MAX;
	return 0;
}

/* Publishes the listings; *todo: a job lacks its picture. */
static void
web_jobs_publish(struct web_jobs *wj, int *todo)
{
	struct web_jobs_snap s, old;
	cJSON *root = NULL, *arr, *e;
	uint32_t at = UINT32_MAX;	/* the folder dfd is open on */
	size_t i;
	int dfd = -1, exists = 0, failed;

	memset(&s, 0, sizeof(s));
	*todo = 0;
	for (i = 0; i < wj->nfolders; i++)
		exists |= wj->folders[i].exists;
	if (web_jobs_merge(wj, &s) == -1 ||
	    (root = cJSON_CreateObject()) == NULL)
		goto fail;
	cJSON_AddBoolToObject(root, "folder", exists);
	if ((arr = cJSON_AddArrayToObject(root, "jobs")) == NULL)
		goto fail;
	for (i = 0; i < s.n; i++) {
		failed = web_jobs_failed(wj, s.names[i].dir, s.names[i].base);
		if (!s.names[i].has_png && !failed)
			*todo = 1;
		if (s.names[i].dir != at) {
			if (dfd != -1)
				close(dfd);
			at = s.names[i].dir;
			dfd = open(wj->folders[at].path, O_RDONLY |
			    O_DIRECTORY | O_CLOEXEC);
		}
		if ((e = web_jobs_entry(dfd, &wj->folders[at], &s.names[i],
		    failed)) == NULL || !cJSON_AddItemToArray(arr, e)) {
			cJSON_Delete(e);
			goto fail;
		}
	}
	if (dfd != -1)
		close(dfd);
	dfd = -1;
	if ((s.json = cJSON_PrintUnformatted(root)) == NULL)
		goto fail;
	s.len = strlen(s.json);
	cJSON_Delete(root);
	pthread_mutex_lock(&wj->mtx);
	old = wj->snap;
	wj->snap = s;
	pthread_mutex_unlock(&wj->mtx);
	free(old.json);
	free(old.names);
	atomic_fetch_add(&wj->gen, 1);
	if (wj->notify != NULL)
		wj->notify(wj->arg);
	return;
fail:
	log_warnx("web: out of memory listing the jobs");
	if (dfd != -1)
		close(dfd);
	cJSON_Delete(root);
	free(s.json);
	free(s.names);
}

/*
 * 1 when a change could still land with the mtime a listing just saw.
 * The kernel stamps a folder from a coarse clock (a tick, up to 10 ms),
 * so a file made right after the listing may leave the mtime as it was;
 * such a listing is taken again at the next look, as git treats a racy
 * index entry.  A second of margin covers any tick.
 */
static int
web_jobs_racy(const struct timespec *mtime)
{
	struct timespec now;

	if (clock_gettime(CLOCK_REALTIME, &now) == -1)
		return 1;
	return mtime->tv_sec >= now.tv_sec - 1;
}

/*
 * A drawing cut short (a crash, a kill) leaves its hidden temporary file
 * (".<base>.png.XXXXXX", ".<base>.view.json.XXXXXX"): the first look at a
 * folder removes those of our form that are older than a drawing takes,
 * so another daemon's picture in progress on a shared folder is spared.
 */
static void
web_jobs_sweep(int dfd)
{
	static const char *const exts[] = { ".png.", ".view.json." };
	char base[WEB_JOBS_BASE_MAX + 1];
	struct dirent *de;
	struct stat sb;
	const char *dot;
	size_t len, i, el;
	time_t now = time(NULL);
	DIR *d;
	int fd;

	if ((fd = dup(dfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (de->d_name[0] != '.' || len < 8 || len > sizeof(base) + 20)
			continue;
		for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
			el = strlen(exts[i]);
			dot = de->d_name + len - 6 - el;
			if (dot <= de->d_name + 1 || strncmp(dot, exts[i], el))
				continue;
			snprintf(base, sizeof(base), "%.*s",
			    (int)(dot - de->d_name - 1), de->d_name + 1);
			if (!web_jobs_base_ok(base) ||
			    fstatat(dfd, de->d_name, &sb,
			    AT_SYMLINK_NOFOLLOW) == -1 ||
			    !S_ISREG(sb.st_mode) ||
			    now - sb.st_mtime < WEB_JOBS_STALE_S)
				continue;
			if (unlinkat(dfd, de->d_name, 0) == 0)
				log_info("web: removed %s, left by a drawing "
				    "cut short", de->d_name);
		}
	}
	closedir(d);
}

/* Looks at folder i: lists it again when its mtime moved, when its
 * last listing was racy, or when forced; 1 when it was listed. */
static int
web_jobs_look(struct web_jobs *wj, uint32_t i, int force)
{
	struct web_jobs_folder *fo = &wj->folders[i];
	struct web_jobs_name *names = NULL;
	struct stat sb;
	size_t n = 0;
	int dfd;

	/* stat, not open: a fleet has a folder per machine, most idle. */
	if (stat(fo->path, &sb) == -1) {
		sb.st_mtim.tv_sec = -2;
		sb.st_mtim.tv_nsec = 0;
	}
	if (!force && !fo->racy && sb.st_mtim.tv_sec == fo->seen.tv_sec &&
	    sb.st_mtim.tv_nsec == fo->seen.tv_nsec)
		return 0;
	/* The mtime from before the listing: anything after it, our own
	 * pictures included, is looked at again (one more listing). */
	fo->seen = sb.st_mtim;
	fo->racy = sb.st_mtim.tv_sec >= 0 && web_jobs_racy(&sb.st_mtim);
	dfd = open(fo->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd != -1 && !fo->swept) {
		web_jobs_sweep(dfd);
		fo->swept = 1;
	}
	fo->exists = dfd != -1;
	if (dfd != -1) {
		n = web_jobs_list(dfd, i, fo->key, &names);
		close(dfd);
	}
	free(fo->names);
	fo->names = names;
	fo->n = n;
	return 1;
}

/* Draws the newest job lacking a picture; 1 when one was tried. */
static int
web_jobs_draw_one(struct web_jobs *wj)
{
	struct web_jobs_failure *f;
	struct web_jobs_name nm;
	const char *dir;
	size_t i;
	int found = 0, dfd;

	pthread_mutex_lock(&wj->mtx);
	for (i = 0; i < wj->snap.n && !found; i++)
		if (!wj->snap.names[i].has_png &&
		    !web_jobs_failed(wj, wj->snap.names[i].dir,
		    wj->snap.names[i].base)) {
			nm = wj->snap.names[i];
			found = 1;
		}
	pthread_mutex_unlock(&wj->mtx);
	if (!found)
		return 0;
	dir = wj->folders[nm.dir].path;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (web_jobs_render(wj, dir, dfd, nm.base) == -1 &&
	    !atomic_load(&wj->stop)) {
		f = &wj->failed[wj->nfailed++ % WEB_JOBS_FAILED_MAX];
		f->dir = nm.dir;
		snprintf(f->base, sizeof(f->base), "%s", nm.base);
	}
	if (dfd != -1)
		close(dfd);
	web_jobs_look(wj, nm.dir, 1);
	return 1;
}

static void *
web_jobs_run(void *arg)
{
	struct web_jobs *wj = arg;
	struct timespec ts;
	uint32_t i;
	int todo, poked, changed;

	while (!atomic_load(&wj->stop)) {
		pthread_mutex_lock(&wj->mtx);
		poked = wj->poked;
		wj->poked = 0;
		pthread_mutex_unlock(&wj->mtx);
		changed = 0;
		for (i = 0; i < wj->nfolders && !atomic_load(&wj->stop); i++)
			changed |= web_jobs_look(wj, i, poked);
		if (changed) {
			web_jobs_publish(wj, &todo);
			/* Each picture shows as soon as it is drawn. */
			while (todo && !atomic_load(&wj->stop) &&
			    web_jobs_draw_one(wj))
				web_jobs_publish(wj, &todo);
		}
		mono_deadline(&ts, WEB_JOBS_SCAN_MS);
		pthread_mutex_lock(&wj->mtx);
		if (!wj->poked && !atomic_load(&wj->stop))
			pthread_cond_timedwait(&wj->cond, &wj->mtx, &ts);
		pthread_mutex_unlock(&wj->mtx);
	}
	return NULL;
}

/* ---- the loop thread's side ---- */

struct web_jobs *
web_jobs_new(const struct web_jobs_dir *dirs, size_t n,
    void (*notify)(void *), void *arg)
{
	struct web_jobs_folder *fo;
	struct web_jobs *wj;
	size_t i;

	if (n == 0 || n > UINT32_MAX || (wj = calloc(1, sizeof(*wj))) == NULL)
		return NULL;
	pthread_mutex_init(&wj->mtx, NULL);
	mono_cond_init(&wj->cond);
	if ((wj->folders = calloc(n, sizeof(*wj->folders))) == NULL) {
		web_jobs_free(wj);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		fo = &wj->folders[wj->nfolders++];
		fo->seen.tv_sec = -1;	/* never seen: the first look lists */
		if ((fo->path = strdup(dirs[i].path)) == NULL ||
		    (dirs[i].key != NULL &&
		    (fo->key = strdup(dirs[i].key)) == NULL) ||
		    (dirs[i].label != NULL &&
		    (fo->label = strdup(dirs[i].label)) == NULL)) {
			web_jobs_free(wj);
			return NULL;
		}
	}
	wj->notify = notify;
	wj->arg = arg;
	atomic_init(&wj->stop, 0);
	atomic_init(&wj->gen, 0);
	if (pthread_create(&wj->thread, NULL, web_jobs_run, wj) != 0) {
		log_warnx("web: cannot start the jobs thread");
		web_jobs_free(wj);
		return NULL;
	}
	wj->started = 1;
	return wj;
}

void
web_jobs_stop(struct web_jobs *wj)
{
	if (wj == NULL)
		return;
	atomic_store(&wj->stop, 1);
	pthread_mutex_lock(&wj->mtx);
	pthread_cond_broadcast(&wj->cond);
	pthread_mutex_unlock(&wj->mtx);
	if (wj->started) {
		pthread_join(wj->thread, NULL);
		wj->started = 0;
		/* No cairo object is left: its font caches go too (a leak
		 * checker then sees only fontconfig's own, as gf-puls). */
		cairo_debug_reset_static_data();
	}
}

void
web_jobs_free(struct web_jobs *wj)
{
	size_t i;

	if (wj == NULL)
		return;
	web_jobs_stop(wj);
	free(wj->snap.json);
	free(wj->snap.names);
	for (i = 0; i < wj->nfolders; i++) {
		free(wj->folders[i].path);
		free(wj->folders[i].key);
		free(wj->folders[i].label);
		free(wj->folders[i].names);
	}
	free(wj->folders);
	pthread_cond_destroy(&wj->cond);
	pthread_mutex_destroy(&wj->mtx);
	free(wj);
}

void
web_jobs_poke(struct web_jobs *wj)
{
	pthread_mutex_lock(&wj->mtx);
	wj->poked = 1;
	pthread_cond_broadcast(&wj->cond);
	pthread_mutex_unlock(&wj->mtx);
}

uint64_t
web_jobs_gen(struct web_jobs *wj)
{
	return atomic_load(&wj->gen);
}

char *
web_jobs_json(struct web_jobs *wj, size_t *len)
{
	static const char empty[] = "{\"folder\":false,\"jobs\":[]}";
	char *s;

	pthread_mutex_lock(&wj->mtx);
	if (wj->snap.json == NULL) {
		*len = sizeof(empty) - 1;
		s = strdup(empty);
	} else if ((s = malloc(wj->snap.len + 1)) != NULL) {
		memcpy(s, wj->snap.json, wj->snap.len + 1);
		*len = wj->snap.len;
	}
	pthread_mutex_unlock(&wj->mtx);
	return s;
}

int
web_jobs_open(struct web_jobs *wj, const char *file, const char **ctype)
{
	enum web_jobs_kind kind;
	const char *key = NULL;
	char path[4096];
	struct stat sb;
	uint32_t dir = 0;
	size_t i;
	long k;
	int fd;

	pthread_mutex_lock(&wj->mtx);
	k = web_jobs_lookup(wj->snap.names, wj->snap.n, file, &kind);
	if (k != -1) {
		dir = wj->snap.names[k].dir;
		key = wj->snap.names[k].key;
	}
	pthread_mutex_unlock(&wj->mtx);
	if (k == -1)
		return -1;
	/* file is now known to be one of the listing's own names: the
	 * folders are fixed, so their paths need no lock. */
	snprintf(path, sizeof(path), "%s/%s", wj->folders[dir].path,
	    file + (key != NULL ? strlen(key) + 1 : 0));
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
	    O_NONBLOCK)) == -1)
		return -1;
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return -1;
	}
	for (i = 0; i < sizeof(web_jobs_exts) / sizeof(web_jobs_exts[0]); i++)
		if (web_jobs_exts[i].kind == kind)
			*ctype = web_jobs_exts[i].ctype;
	return fd;
}
