/*
 * web: see web.h.
 *
 * Built as ff_server's HTTP port is: at most WEB_MAX connections (a
 * newcomer past it closes the quietest, and past twice that, while
 * those close, it is refused); lws's own timeouts end a client slow to
 * send its headers; each connection carries one request, answered with
 * "connection: close".  An answer leaves WEB_CHUNK bytes per writable
 * callback, so a client that does not read costs one chunk and its
 * connection, which WEB_SEND_SECS without progress closes.  Event
 * streams are at most WEB_SSE_MAX (a newcomer closes the oldest: the
 * browser's EventSource comes back), and each is sent a comment every
 * WEB_KEEPALIVE_US so a dead one is found.
 *
 * History changes (thousands a second in a fleet) are pushed at most
 * every WEB_PUSH_MS: the first change arms one wake-up and a timer on
 * the loop; when it fires, what changed since the last push is built
 * ONCE and the same text goes to every stream (a stream that missed a
 * push, a new one, a keep-alive get their own).  A change after the
 * timer fired arms the next, so the last state is always pushed.
 *
 * Nothing a client sends becomes a path: /jobs/<file> is looked up among
 * the names web_jobs listed (web_jobs_open()).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libwebsockets.h>

#include "config.h"
#include "ff_server.h"
#include "history.h"
#include "log.h"
#include "metrics.h"
#include "mono.h"
#include "web.h"
#include "web_assets.h"
#include "web_jobs.h"

#define WEB_MAX		32		/* connections at once */
#define WEB_SLOTS	(2 * WEB_MAX)	/* with those still closing */
#define WEB_SSE_MAX	8		/* event streams at once */
#define WEB_CHUNK	(16 * 1024)	/* bytes per writable callback */
#define WEB_SEND_SECS	30		/* s without progress: closed */
#define WEB_KEEPALIVE_US (15 * 1000000)	/* µs between stream comments */
#define WEB_PATH_MAX	256		/* bytes of a path looked at */
#define WEB_PUSH_MS	100		/* ms between pushes, at least */

enum web_body { WB_NONE, WB_MEM, WB_FD, WB_SSE };

struct web_slot {
	struct lws		*wsi;		/* NULL: free */
	int64_t			 seen_ms;	/* last progress */
	int			 evicting;
	int			 sse;
};

struct web {
	struct lws_vhost	*vh;
	struct web_jobs		*jobs;
	pthread_mutex_t		 ctx_mtx;	/* guards ctx for web_wake() */
	struct lws_context	*ctx;		/* NULL once it goes */
	int			 glowforge, flashforge;
	int			 remote;	/* allow_remote: any Host */
	char			 ip[64];	/* listened on */
	unsigned		 badhost;	/* requests refused for Host */
	struct web_slot		 slot[WEB_SLOTS];
	int			 open, dying, evicted, nsse;
	/* The shared push (loop thread, but armed: any thread). */
	atomic_int		 armed;		/* a change awaits its push */
	lws_sorted_usec_list_t	 push_sul;
	int			 scheduled;	/* push_sul pending */
	int64_t			 push_ms;	/* mono ms of the last */
	char			*push;		/* "event: update…", NULL: none */
	size_t			 push_len;	/* bytes */
	uint64_t		 push_from, push_to;	/* actions' seqs in it:
						 * (from, to] */
	uint64_t		 push_gen;	/* bumps with each */
	uint64_t		 push_hver;	/* history version it shows */
};

/* Per request; lws allocates and zeroes it. */
struct web_req {
	enum web_body		 body;
	int			 status;
	const char		*ctype;
	int			 head;		/* HEAD: headers only */
	int			 hdr_sent, sent;
	char			*mem;		/* LWS_PRE + len, ours */
	const unsigned char	*cmem;		/* or static, no headroom */
	size_t			 len, off;	/* bytes */
	int			 fd;		/* WB_FD; 0 (zeroed): none */
	int			 fd_open;
	uint64_t		 hseq;		/* WB_SSE: last action seq sent */
	uint64_t		 pgen, jgen;	/* push and jobs seen */
	int			 primed;	/* first update sent */
	int			 ka;		/* a keep-alive is due */
};

static struct web *
web_of(struct lws *wsi)
{
	struct lws_vhost *vh = lws_get_vhost(wsi);

	return vh != NULL ? lws_get_vhost_user(vh) : NULL;
}

/* Any thread: history or the jobs changed; the loop looks.  One wake
 * per push: the changes until it fires ride on it. */
static void
web_wake(void *arg)
{
	struct web *w = arg;

	if (atomic_exchange(&w->armed, 1))
		return;
	pthread_mutex_lock(&w->ctx_mtx);
	if (w->ctx != NULL)
		lws_cancel_service(w->ctx);
	pthread_mutex_unlock(&w->ctx_mtx);
}

/* ---- connections ---- */

static struct web_slot *
web_slot(struct web *w, const struct lws *wsi)
{
	size_t i;

	for (i = 0; i < WEB_SLOTS; i++)
		if (w->slot[i].wsi == wsi)
			return &w->slot[i];
	return NULL;
}

/* The quietest live connection (sse: among event streams only). */
static void
web_evict(struct web *w, int sse)
{
	struct web_slot *q, *old = NULL;
	size_t i;

	for (i = 0; i < WEB_SLOTS; i++) {
		q = &w->slot[i];
		if (q->wsi != NULL && !q->evicting && (!sse || q->sse) &&
		    (old == NULL || q->seen_ms < old->seen_ms))
			old = q;
	}
	if (old == NULL)
		return;
	old->evicting = 1;
	w->dying++;
	if (old->sse) {
		old->sse = 0;
		w->nsse--;
	}
	lws_set_timeout(old->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	if (w->evicted++ == 0)
		log_warnx("web: %d clients (or %d event streams); closing the "
		    "quietest for each newcomer", WEB_MAX, WEB_SSE_MAX);
}

static int
web_accept(struct web *w, struct lws *wsi)
{
	struct web_slot *q;

	if (web_slot(w, wsi) != NULL)
		return -1;	/* a CONNECT turned it raw: no tunnels */
	if (w->open - w->dying >= WEB_MAX)
		web_evict(w, 0);
	else if (w->evicted > 0 && w->open < WEB_MAX / 2) {
		log_info("web: %d connections were closed for newcomers",
		    w->evicted);
		w->evicted = 0;
	}
	if ((q = web_slot(w, NULL)) == NULL)
		return -1;	/* too many still closing */
	memset(q, 0, sizeof(*q));
	q->wsi = wsi;
	q->seen_ms = mono_now_ms();
	w->open++;
	lws_set_opaque_user_data(wsi, w);
	return 0;
}

static void
web_gone(struct lws *wsi)
{
	struct web *w = lws_get_opaque_user_data(wsi);
	struct web_slot *q;

	if (w == NULL || (q = web_slot(w, wsi)) == NULL)
		return;
	if (q->evicting)
		w->dying--;
	if (q->sse)
		w->nsse--;
	w->open--;
	memset(q, 0, sizeof(*q));
}

/* Progress: the send timer starts again. */
static void
web_touch(struct web *w, struct lws *wsi)
{
	struct web_slot *q = web_slot(w, wsi);

	if (q != NULL)
		q->seen_ms = mono_now_ms();
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, WEB_SEND_SECS);
}

static void
web_req_clear(struct web_req *r)
{
	free(r->mem);
	r->mem = NULL;
	if (r->fd_open) {
		close(r->fd);
		r->fd_open = 0;
	}
}

/* ---- answers ---- */

/* Takes s (malloc'd, len bytes); NULL: out of memory, a 500. */
static void
web_answer_take(struct web_req *r, int status, const char *ctype, char *s,
    size_t len)
{
	if (s == NULL) {
		r->status = 500;
		r->ctype = "text/plain";
		r->cmem = (const unsigned char *)"out of memory\n";
		r->len = 14;
		r->body = WB_MEM;
		return;
	}
	if ((r->mem = malloc(LWS_PRE + len)) == NULL) {
		free(s);
		web_answer_take(r, 500, NULL, NULL, 0);
		return;
	}
	memcpy(r->mem + LWS_PRE, s, len);
	free(s);
	r->status = status;
	r->ctype = ctype;
	r->len = len;
	r->body = WB_MEM;
}

static void
web_answer_const(struct web_req *r, int status, const char *ctype,
    const void *buf, size_t len)
{
	r->status = status;
	r->ctype = ctype;
	r->cmem = buf;
	r->len = len;
	r->body = WB_MEM;
}

static void
web_answer_json(struct web_req *r, cJSON *j)
{
	char *s = j != NULL ? cJSON_PrintUnformatted(j) : NULL;

	cJSON_Delete(j);
	web_answer_take(r, 200, "application/json", s, s != NULL ?
	    strlen(s) : 0);
}

/* The FlashForge printer's own state, when one runs (loop thread). */
static void
web_ff_json(cJSON *o)
{
	struct ff_server_view v;
	cJSON *f;

	if (ff_server_view(&v) == -1 ||
	    (f = cJSON_AddObjectToObject(o, "printer")) == NULL)
		return;
	cJSON_AddStringToObject(f, "model", v.model);
	cJSON_AddStringToObject(f, "name", v.name);
	cJSON_AddStringToObject(f, "state", v.state);
	cJSON_AddStringToObject(f, "file", v.file);
	cJSON_AddNumberToObject(f, "progress", v.progress);
	cJSON_AddNumberToObject(f, "clients", v.clients);
}

/* The machines: counts by state, and the one machine's state. */
static cJSON *
web_machines_json(const struct web *w)
{
	cJSON *o, *by;
	const char *state = "none";
	int s;

	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	cJSON_AddBoolToObject(o, "glowforge", w->glowforge);
	cJSON_AddBoolToObject(o, "flashforge", w->flashforge);
	by = cJSON_AddObjectToObject(o, "by_state");
	for (s = 0; s < METRICS_STATES; s++) {
		cJSON_AddNumberToObject(by, metrics_state_name(s),
		    (double)metrics_machines(s));
		if (metrics_machines(s) > 0)
			state = metrics_state_name(s);
	}
	cJSON_AddStringToObject(o, "state", state);
	web_ff_json(o);
	cJSON_AddNumberToObject(o, "flashforge_connections_total",
	    (double)metrics_get(METRICS_FF_CONNECTIONS));
	cJSON_AddNumberToObject(o, "flashforge_commands_total",
	    (double)metrics_get(METRICS_FF_COMMANDS));
	return o;
}

static cJSON *
web_status_json(const struct web *w, uint64_t after)
{
	cJSON *o, *m;

	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "version", GFE_VERSION);
	if ((m = web_machines_json(w)) != NULL)
		cJSON_AddItemToObject(o, "machines", m);
	if ((m = history_running_json()) != NULL)
		cJSON_AddItemToObject(o, "running", m);
	if ((m = history_json(after)) != NULL)
		cJSON_AddItemToObject(o, "actions", m);
	return o;
}

/* "/jobs/[<key>/]<file>": a listed name, or 404. */
static void
web_answer_job(struct web *w, struct web_req *r, const char *file)
{
	const char *ctype = NULL;
	off_t size;
	int fd;

	/* Only an exact listed name matches: "..", "%2f", a link, none. */
	if (w->jobs == NULL ||
	    (fd = web_jobs_open(w->jobs, file, &ctype)) == -1) {
		web_answer_const(r, 404, "text/plain", "not found\n", 10);
		return;
	}
	if ((size = lseek(fd, 0, SEEK_END)) == -1 ||
	    lseek(fd, 0, SEEK_SET) == -1) {
		close(fd);
		web_answer_const(r, 404, "text/plain", "not found\n", 10);
		return;
	}
	r->fd = fd;
	r->fd_open = 1;
	r->len = (size_t)size;
	r->status = 200;
	r->ctype = ctype;
	r->body = WB_FD;
}

/* The route for path (GET or HEAD). */
static void
web_route(struct web *w, struct lws *wsi, struct web_req *r, const char *path)
{
	struct web_slot *q;
	char *s;
	size_t len = 0;

	if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)
		web_answer_const(r, 200, "text/html; charset=utf-8",
		    web_asset_index, web_asset_index_len);
	else if (strcmp(path, "/metrics") == 0) {
		s = metrics_text(&len);
		web_answer_take(r, 200, "text/plain; version=0.0.4; "
		    "charset=utf-8", s, len);
	} else if (strcmp(path, "/api/status") == 0)
		web_answer_json(r, web_status_json(w, 0));
	else if (strcmp(path, "/api/jobs") == 0) {
		s = w->jobs != NULL ? web_jobs_json(w->jobs, &len) : NULL;
		web_answer_take(r, 200, "application/json", s, len);
	} else if (strncmp(path, "/jobs/", 6) == 0)
		web_answer_job(w, r, path + 6);
	else if (strcmp(path, "/api/events") == 0 && !r->head) {
		if (w->nsse >= WEB_SSE_MAX)
			web_evict(w, 1);
		if ((q = web_slot(w, wsi)) != NULL) {
			q->sse = 1;
			w->nsse++;
		}
		r->status = 200;
		r->ctype = "text/event-stream";
		r->body = WB_SSE;
	} else
		web_answer_const(r, 404, "text/plain", "not found\n", 10);
}

/* ---- sending ---- */

static int
web_send_headers(struct lws *wsi, struct web_req *r)
{
	static const struct {
		const char	*name, *value;
	} extra[] = {
		{ "x-content-type-options:", "nosniff" },
		{ "cache-control:", "no-store" },
		/* Everything is ours: no script or style from elsewhere. */
		{ "content-security-policy:", "default-src 'self'; "
		    "img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
		    "script-src 'self' 'unsafe-inline'" },
	};
	unsigned char hdr[LWS_PRE + 1024], *p = hdr + LWS_PRE,
	    *end = hdr + sizeof(hdr) - 1;
	size_t i;

	if (lws_add_http_common_headers(wsi, (unsigned int)r->status,
	    r->ctype, r->body == WB_SSE ? LWS_ILLEGAL_HTTP_CONTENT_LEN :
	    (lws_filepos_t)r->len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
	    (const unsigned char *)"close", 5, &p, end))
		return -1;
	if (r->status == 405 && lws_add_http_header_by_name(wsi,
	    (const unsigned char *)"allow:", (const unsigned char *)
	    "GET, HEAD", 9, &p, end))
		return -1;
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)
		    extra[i].name, (const unsigned char *)extra[i].value,
		    (int)strlen(extra[i].value), &p, end))
			return -1;
	if (lws_finalize_write_http_header(wsi, hdr + LWS_PRE, &p, end))
		return -1;
	r->hdr_sent = 1;
	return 0;
}

/* The next chunk of a memory or file body; -1 closes. */
static int
web_send_chunk(struct lws *wsi, struct web_req *r)
{
	unsigned char buf[LWS_PRE + WEB_CHUNK];
	size_t n = r->len - r->off < WEB_CHUNK ? r->len - r->off : WEB_CHUNK;
	ssize_t got;

	if (r->body == WB_FD) {
		got = pread(r->fd, buf + LWS_PRE, n, (off_t)r->off);
		if (got <= 0)
			return -1;	/* shrank or failed: cut it short */
		n = (size_t)got;
	} else if (r->mem != NULL)
		memcpy(buf + LWS_PRE, r->mem + LWS_PRE + r->off, n);
	else
		memcpy(buf + LWS_PRE, r->cmem + r->off, n);
	r->off += n;
	if (lws_write(wsi, buf + LWS_PRE, n, r->off >= r->len ?
	    LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
		return -1;
	return 0;
}

/* The highest action seq in status st, at least seq. */
static uint64_t
web_status_seq(const cJSON *st, uint64_t seq)
{
	const cJSON *a;
	uint64_t v;

	cJSON_ArrayForEach(a, cJSON_GetObjectItem(st, "actions")) {
		v = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(a,
		    "seq"));
		if (v > seq)
			seq = v;
	}
	return seq;
}

/* "event: update" with the status of what changed after seq *seq,
 * which becomes the highest sent; NULL when out of memory. */
static char *
web_update_text(const struct web *w, uint64_t *seq, size_t *len)
{
	cJSON *st;
	char *json = NULL, *s = NULL;
	int n;

	if ((st = web_status_json(w, *seq)) != NULL &&
	    (json = cJSON_PrintUnformatted(st)) != NULL &&
	    /* cJSON escapes newlines: one data line. */
	    (n = asprintf(&s, "event: update\ndata: %s\n\n", json)) >= 0) {
		*len = (size_t)n;
		*seq = web_status_seq(st, *seq);
	} else
		s = NULL;
	cJSON_free(json);
	cJSON_Delete(st);
	return s;
}

/* Loop thread: the timer a change armed.  Built once for all streams. */
static void
web_push(lws_sorted_usec_list_t *sul)
{
	struct web *w = (struct web *)(void *)((char *)sul -
	    offsetof(struct web, push_sul));
	uint64_t hver, to;
	size_t len = 0;
	char *s;

	w->scheduled = 0;
	/* Before looking: a change from here on arms the next push. */
	atomic_store(&w->armed, 0);
	w->push_ms = mono_now_ms();
	if (w->nsse == 0)
		return;
	hver = history_version();
	to = w->push_to;
	if (hver != w->push_hver &&
	    (s = web_update_text(w, &to, &len)) != NULL) {
		free(w->push);
		w->push = s;
		w->push_len = len;
		w->push_from = w->push_to;
		w->push_to = to;
		w->push_hver = hver;
		w->push_gen++;
	}
	/* The jobs' news too (each stream compares its jgen). */
	lws_callback_on_writable_all_protocol_vhost(w->vh,
	    lws_vhost_name_to_protocol(w->vh, "gfe-web"));
}

/* Loop thread, after a wake: the push is due WEB_PUSH_MS after the
 * last one (at once after a quiet spell). */
static void
web_push_arm(struct web *w, struct lws_context *ctx)
{
	int64_t due;

	if (w->scheduled || !atomic_load(&w->armed))
		return;
	due = w->push_ms + WEB_PUSH_MS - mono_now_ms();
	w->scheduled = 1;
	lws_sul_schedule(ctx, 0, &w->push_sul, web_push,
	    (lws_usec_t)(due > 0 ? due : 0) * LWS_US_PER_MS);
}

/* The update a stream is due into fp: the shared push, or its own when
 * it is new, missed a push or a keep-alive is due; -1: out of memory. */
static int
web_sse_update(struct web *w, struct web_req *r, FILE *fp)
{
	char *s;
	size_t len;

	/* The keep-alive brings the machines' state too (a sign-in changes
	 * it without an action). */
	if (!r->primed || r->ka ||
	    (r->pgen != w->push_gen && r->hseq < w->push_from)) {
		if ((s = web_update_text(w, &r->hseq, &len)) == NULL)
			return -1;
		fwrite(s, 1, len, fp);
		free(s);
		r->primed = 1;
	} else if (r->pgen != w->push_gen && r->hseq < w->push_to) {
		/* Built after this stream's own: newer for every action. */
		fwrite(w->push, 1, w->push_len, fp);
		r->hseq = w->push_to;
	}
	r->pgen = w->push_gen;
	return 0;
}

/* An event stream's news, as one write; -1 closes. */
static int
web_send_sse(struct web *w, struct lws *wsi, struct web_req *r)
{
	uint64_t jgen;
	char *buf = NULL, *out;
	size_t n = 0;
	FILE *fp;
	int rc = -1;

	jgen = w->jobs != NULL ? web_jobs_gen(w->jobs) : 0;
	if ((fp = open_memstream(&buf, &n)) == NULL)
		return -1;
	if (!r->primed)
		fputs("retry: 3000\n\n", fp);
	if (web_sse_update(w, r, fp) == -1)
		goto done;
	if (jgen != r->jgen) {
		fprintf(fp, "event: jobs\ndata: %llu\n\n",
		    (unsigned long long)jgen);
		r->jgen = jgen;
	}
	if (r->ka) {
		fputs(": keep-alive\n\n", fp);
		r->ka = 0;
	}
	if (fclose(fp) != 0) {
		fp = NULL;
		goto done;
	}
	fp = NULL;
	rc = 0;
	if (n > 0) {
		if ((out = malloc(LWS_PRE + n)) == NULL) {
			rc = -1;
			goto done;
		}
		memcpy(out + LWS_PRE, buf, n);
		if (lws_write(wsi, (unsigned char *)out + LWS_PRE, n,
		    LWS_WRITE_HTTP) < (int)n)
			rc = -1;
		free(out);
	}
done:
	if (fp != NULL)
		fclose(fp);
	free(buf);
	return rc;
}

static int
web_writeable(struct web *w, struct lws *wsi, struct web_req *r)
{
	if (r->sent)
		return -1;	/* all of it went: close */
	if (r->body == WB_NONE)
		return 0;	/* not answered yet */
	web_touch(w, wsi);
	if (!r->hdr_sent) {
		if (web_send_headers(wsi, r) == -1)
			return -1;
		if (r->body == WB_SSE)
			lws_set_timer_usecs(wsi, WEB_KEEPALIVE_US);
		if (r->head || (r->body != WB_SSE && r->len == 0)) {
			/* Nothing follows: closed once the headers left. */
			web_req_clear(r);
			r->sent = 1;
			lws_callback_on_writable(wsi);
			return 0;
		}
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (r->body == WB_SSE)
		return web_send_sse(w, wsi, r);
	if (web_send_chunk(wsi, r) == -1)
		return -1;
	if (r->off >= r->len) {
		web_req_clear(r);
		r->sent = 1;
	}
	lws_callback_on_writable(wsi);
	return 0;
}

/*
 * On loopback, the Host must name it: a site whose name was rebound to
 * 127.0.0.1 (DNS rebinding) would otherwise be same-origin with the view
 * and read the jobs.  No Host (HTTP/1.0) is no browser's.
 */
static int
web_host_ok(struct web *w, struct lws *wsi)
{
	char host[256], *colon;
	size_t i;

	if (w->remote || lws_hdr_total_length(wsi, WSI_TOKEN_HOST) <= 0)
		return 1;
	if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) < 0)
		return 0;
	if ((colon = strrchr(host, ':')) != NULL) {
		for (i = 1; colon[i] >= '0' && colon[i] <= '9'; i++)
			;
		if (colon[i] != '\0')
			return 0;
		*colon = '\0';
	}
	return strcasecmp(host, "localhost") == 0 ||
	    strcmp(host, "127.0.0.1") == 0 || strcmp(host, w->ip) == 0;
}

static int
web_http(struct web *w, struct lws *wsi, struct web_req *r, const char *in)
{
	char path[WEB_PATH_MAX];

	if (r->status != 0)
		return 0;	/* answered already */
	memset(r, 0, sizeof(*r));
	snprintf(path, sizeof(path), "%s", in != NULL ? in : "");
	r->head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
	if (!r->head && lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
		web_answer_const(r, 405, "text/plain",
		    "read-only: GET or HEAD\n", 23);
	else if (!web_host_ok(w, wsi)) {
		if (w->badhost++ == 0)
			log_warnx("web: a request for another host than %s "
			    "refused (DNS rebinding?); more are not logged",
			    w->ip);
		web_answer_const(r, 403, "text/plain", "wrong host\n", 11);
	} else
		web_route(w, wsi, r, path);
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, WEB_SEND_SECS);
	lws_callback_on_writable(wsi);
	return 0;
}

static int
web_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct web *w = web_of(wsi);
	struct web_req *r = user;

	if (w == NULL)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	switch (reason) {
	case LWS_CALLBACK_PROTOCOL_DESTROY:
		/* The timer lives in the context: off it while it is. */
		lws_sul_cancel(&w->push_sul);
		w->scheduled = 0;
		pthread_mutex_lock(&w->ctx_mtx);
		w->ctx = NULL;
		pthread_mutex_unlock(&w->ctx_mtx);
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		/* News: a push is due (any module's wake-up lands here). */
		web_push_arm(w, lws_get_context(wsi));
		return 0;
	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
		return web_accept(w, wsi);
	case LWS_CALLBACK_WSI_DESTROY:
		web_gone(wsi);
		return 0;
	case LWS_CALLBACK_RAW_ADOPT:
		return -1;	/* no tunnels */
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return -1;	/* no WebSocket: nothing would answer it */
	case LWS_CALLBACK_HTTP:
		return web_http(w, wsi, r, in);
	case LWS_CALLBACK_HTTP_BODY:
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return 0;	/* a body is never read: the answer is 405 */
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return r != NULL ? web_writeable(w, wsi, r) : 0;
	case LWS_CALLBACK_TIMER:
		if (r != NULL && r->body == WB_SSE) {
			r->ka = 1;
			lws_set_timer_usecs(wsi, WEB_KEEPALIVE_US);
			lws_callback_on_writable(wsi);
		}
		return 0;
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (r != NULL)
			web_req_clear(r);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols web_protocols[] = {
	{ "gfe-web", web_callback, sizeof(struct web_req), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

struct web *
web_new(struct lws_context *ctx, const struct config *cf,
    const struct web_jobs_dir *dirs, size_t n)
{
	struct lws_context_creation_info info;
	struct web *w;
	char ip[64];
	int port, remote;

	if ((remote = config_web_listen(cf->web_listen, ip, sizeof(ip),
	    &port)) == -1) {
		log_warnx("web: listen %s is not IPv4:port", cf->web_listen);
		return NULL;
	}
	if (remote && !cf->web_allow_remote) {
		log_warnx("web: %s is not loopback and allow_remote is off",
		    cf->web_listen);
		return NULL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	pthread_mutex_init(&w->ctx_mtx, NULL);
	w->ctx = ctx;
	w->remote = remote;
	snprintf(w->ip, sizeof(w->ip), "%s", ip);
	w->glowforge = cf->glowforge;
	w->flashforge = cf->ff_enabled == 1;
	memset(&info, 0, sizeof(info));
	info.vhost_name = "gfe-web";
	info.protocols = web_protocols;
	info.port = port;	/* 0: any free port, logged (tests) */
	info.iface = strcmp(ip, "0.0.0.0") == 0 ? NULL : ip;
	/* See ff_server: an IPv4 literal needs IPv6 off to be bound. */
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	info.user = w;
	if ((w->vh = lws_create_vhost(ctx, &info)) == NULL) {
		log_warnx("web: cannot listen on %s", cf->web_listen);
		web_free(w);
		return NULL;
	}
	port = lws_get_vhost_listen_port(w->vh);
	if (n > 0 && (w->jobs = web_jobs_new(dirs, n, web_wake, w)) == NULL)
		log_warnx("web: no job gallery");
	history_set_notify(web_wake, w);
	if (remote)
		log_notice("web: listening on http://%s:%d, reachable from "
		    "other hosts (allow_remote)", ip, port);
	else
		log_info("web: listening on http://%s:%d", ip, port);
	return w;
}

/*
 * lws_context_destroy() closes the context's wake-up eventfd before
 * PROTOCOL_DESTROY (which also clears ctx) reaches us: a wake from the
 * jobs worker in between wrote to a closed descriptor, or to whatever
 * took its number (TSan saw the close race the write, web-busy).
 * The worker is also stopped here, not at web_free(): lws 4.1.6 closes
 * that eventfd a second time a loop iteration later, and a folder the
 * worker opened in between could take the number and be closed under it
 * (the loops' teardown fence in emulator.c holds the other loops, not
 * this thread).  The page keeps serving the last listing until then.
 */
void
web_detach(struct web *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->ctx_mtx);
	w->ctx = NULL;
	pthread_mutex_unlock(&w->ctx_mtx);
	web_jobs_stop(w->jobs);
}

void
web_free(struct web *w)
{
	if (w == NULL)
		return;
	history_set_notify(NULL, NULL);
	if (w->scheduled && w->ctx != NULL)
		lws_sul_cancel(&w->push_sul);	/* the loop stopped early */
	web_jobs_free(w->jobs);
	free(w->push);
	pthread_mutex_destroy(&w->ctx_mtx);
	free(w);
}
