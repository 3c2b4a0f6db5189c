/*
 * sim_http: see sim_http.h.
 *
 * Answers (but pulse files, which lws_serve_http_file() streams) are written
 * from LWS_CALLBACK_HTTP_WRITEABLE, after the request's body has been read
 * in full, even when the answer was known from the headers:
 * an unread body would otherwise be parsed as the next request of a
 * keep-alive connection.  Only a body announced past its cap closes the
 * connection at once.  Uploads stream to a temporary file beside their final
 * name, so memory stays small whatever the image size.  A chunked request
 * body would never end in lws 4.1, so it is refused (411) from its headers,
 * much as presigned storage refuses an upload without a Content-Length.
 *
 * Every answer closes its connection ("connection: close"), keep-alive or
 * not: lws 4.1.6 spins for ever in BODY_COMPLETION when a second request
 * with a body was pipelined behind the first, and its pipelining path is
 * never entered if we never call lws_http_transaction_completed().  The
 * machine opens a connection per request anyway.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libwebsockets.h>

#include "log.h"
#include "proto.h"
#include "sim_fleet.h"
#include "sim_http.h"
#include "sim_transcript.h"

#define SIM_HTTP_TOKEN_BYTES	32	/* random bytes: 64 hex chars */
#define SIM_HTTP_TOKEN_LEN	(2 * SIM_HTTP_TOKEN_BYTES)
#define SIM_HTTP_SIG_BYTES	16
#define SIM_HTTP_SIGS		4	/* presigned URLs per action kept */
#define SIM_HTTP_AUTH_MAX	256	/* bytes of an Authorization */
#define SIM_HTTP_ENDLESS_CHUNK	16384	/* bytes per write of an endless body */
#define SIM_HTTP_TRICKLE_BYTES	4	/* bytes per tick of a trickle */
#define SIM_HTTP_TRICKLE_US	1000000	/* between two ticks */
#define SIM_HTTP_HUGE_LEN	(1ULL << 40)	/* bytes: "never" ends */

/* Hostile pulse names (tests/integration/scenarios/README.md): a 302 whose body never
 * ends, a 200 that trickles, a job served only with the Bearer. */
#define SIM_HTTP_PULSE_ENDLESS	"endless-302.puls.gz"
#define SIM_HTTP_PULSE_TRICKLE	"trickle.puls.gz"
#define SIM_HTTP_PULSE_BEARER	"bearer-"	/* + a file name */

enum sim_http_route {
	ROUTE_NONE,
	ROUTE_SIGNIN,		/* POST /machines/sign_in */
	ROUTE_UPDATE,		/* GET /update/current */
	ROUTE_FIRMWARE,		/* GET /update/<package> */
	ROUTE_METRICS,		/* GET /metrics, load mode */
	ROUTE_PUT,		/* PUT /upload/<id>?sig= */
	ROUTE_POST_IMAGE,	/* POST /api/machines/<type>/<id> */
	ROUTE_PULSE,		/* GET /pulse/<name> */
	ROUTE_OTHER,		/* answered from the headers */
};

struct sim_http_sess {
	int			 active;
	enum sim_http_route	 route;
	const char		*method;
	char			 path[160];	/* for the records */
	char			 host[128];	/* the Host header */
	int			 far;		/* on the storage listener */
	int64_t			 action_id;	/* uploads */
	char			 ctype[64];	/* its Content-Type */

	/* An answer decided before the body: given once it is read. */
	int			 early;
	char			 early_msg[128];

	char			*body;		/* JSON requests */
	size_t			 blen;
	int			 body_over;	/* past the JSON cap */

	int			 fd;		/* upload, if have_fd */
	int			 have_fd;
	char			 tmp[PATH_MAX];
	char			 dst[PATH_MAX];
	uint64_t		 received;
	uint8_t			 head[2];
	uint8_t			 tail[2];

	/* The answer: written at once once the request is read whole,
	 * else when the socket is writeable (sim_http_answer()). */
	int			 body_pending;	/* lws will read a body */
	int			 status;
	const char		*rtype;
	unsigned char		*resp;		/* LWS_PRE + body */
	size_t			 rlen;
	int			 responding;

	/* A body streamed for ever (endless 302, trickle): never ends. */
	int			 stream;	/* 0, or SIM_STREAM_* */
	uint64_t		 streamed;	/* bytes */
	FILE			*trickle;	/* what a trickle sends */
};

enum { SIM_STREAM_NONE, SIM_STREAM_ENDLESS, SIM_STREAM_TRICKLE };

struct sim_http {
	struct sim_http_params	 p;
	int			 urandom;

	/* Per action: the presigned URLs handed out, the images taken.
	 * Open addressing on the id, grown at half full. */
	struct sim_http_upl {
		int64_t	 id;		/* 0: empty */
		int	 n;		/* valid images stored */
		unsigned nsig;		/* URLs handed out (ring) */
		char	 sig[SIM_HTTP_SIGS][2 * SIM_HTTP_SIG_BYTES + 1];
	}			*upl;
	size_t			 uplcap, nupl;

	int			 fail_upload;
	int			 fail_pulse;
	int			 hostile_fw;	/* probes left to forge */
	int			 fail_signin;
	int			 refuse_signin;
	int			 signins[3];	/* answered 200/401/503 */
	unsigned		 seq;		/* temporary file names */
	int			 active;	/* requests unanswered */
};

/* The entry of an action id, made when create is set; NULL when absent
 * or out of memory. */
static struct sim_http_upl *
sim_http_upl(struct sim_http *h, int64_t id, int create)
{
	struct sim_http_upl *nu;
	size_t i, cap;

	if (create && 2 * (h->nupl + 1) > h->uplcap) {
		cap = h->uplcap == 0 ? 256 : 2 * h->uplcap;
		if ((nu = calloc(cap, sizeof(*nu))) == NULL) {
			log_warn("calloc");
			return NULL;
		}
		for (i = 0; i < h->uplcap; i++) {
			size_t j;

			if (h->upl[i].id == 0)
				continue;
			j = (size_t)h->upl[i].id * 0x9e3779b97f4a7c15ULL &
			    (cap - 1);
			while (nu[j].id != 0)
				j = (j + 1) & (cap - 1);
			nu[j] = h->upl[i];
		}
		free(h->upl);
		h->upl = nu;
		h->uplcap = cap;
	}
	if (h->uplcap == 0 || id <= 0)
		return NULL;
	i = (size_t)id * 0x9e3779b97f4a7c15ULL & (h->uplcap - 1);
	while (h->upl[i].id != 0 && h->upl[i].id != id)
		i = (i + 1) & (h->uplcap - 1);
	if (h->upl[i].id == id)
		return &h->upl[i];
	if (!create)
		return NULL;
	h->upl[i].id = id;
	h->nupl++;
	return &h->upl[i];
}

struct sim_http *
sim_http_new(const struct sim_http_params *p)
{
	struct sim_http *h;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		log_warn("calloc");
		return NULL;
	}
	h->p = *p;
	h->urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (h->urandom == -1) {
		log_warn("/dev/urandom");
		free(h);
		return NULL;
	}
	return h;
}

void
sim_http_free(struct sim_http *h)
{
	if (h == NULL)
		return;
	close(h->urandom);
	if (h->upl != NULL)
		explicit_bzero(h->upl, h->uplcap * sizeof(*h->upl));
	free(h->upl);
	explicit_bzero(h, sizeof(*h));
	free(h);
}

size_t
sim_http_session_size(void)
{
	return sizeof(struct sim_http_sess);
}

static int
sim_http_random_hex(struct sim_http *h, char *out, size_t nbytes)
{
	unsigned char buf[64];
	size_t got = 0, i;
	ssize_t r;

	if (nbytes > sizeof(buf))
		return -1;
	while (got < nbytes) {
		r = read(h->urandom, buf + got, nbytes - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			log_warn("/dev/urandom");
			return -1;
		}
		got += (size_t)r;
	}
	for (i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, 3, "%02x", buf[i]);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

/* Token comparison that does not tell, by its time, how much matched. */
#define sim_http_same	sim_fleet_same

static void
sim_http_violation(struct sim_http *h, struct sim_http_sess *s,
    const char *why)
{
	char msg[320];

	snprintf(msg, sizeof(msg), "%s %s: %s", s->method, s->path, why);
	log_warnx("%s", msg);
	h->p.violation(h->p.arg, msg);
}

/* Frees what the request held; unfinished uploads leave no file. */
static void
sim_http_sess_clear(struct sim_http *h, struct sim_http_sess *s)
{
	if (s->active && h->active > 0)
		h->active--;
	if (s->have_fd) {
		close(s->fd);
		unlink(s->tmp);
	}
	if (s->body != NULL) {
		explicit_bzero(s->body, s->blen);
		free(s->body);
	}
	free(s->resp);
	if (s->trickle != NULL)
		fclose(s->trickle);
	memset(s, 0, sizeof(*s));
}

static void
sim_http_record(struct sim_http *h, struct sim_http_sess *s, int status,
    uint64_t out_bytes)
{
	cJSON *o;

	if ((o = cJSON_CreateObject()) == NULL)
		return;
	cJSON_AddStringToObject(o, "method", s->method);
	cJSON_AddStringToObject(o, "path", s->path);
	cJSON_AddNumberToObject(o, "status", status);
	if (s->route == ROUTE_PUT || s->route == ROUTE_POST_IMAGE ||
	    s->route == ROUTE_SIGNIN) {
		cJSON_AddNumberToObject(o, "bytes", (double)s->received);
		if (s->ctype[0] != '\0')
			cJSON_AddStringToObject(o, "content_type", s->ctype);
	}
	if (s->action_id > 0)
		cJSON_AddNumberToObject(o, "action_id", (double)s->action_id);
	if (out_bytes > 0)
		cJSON_AddNumberToObject(o, "sent", (double)out_bytes);
	if (s->early_msg[0] != '\0')
		cJSON_AddStringToObject(o, "note", s->early_msg);
	sim_transcript_record(h->p.tr, h->p.now_ms(h->p.arg), "http",
	    o);
	cJSON_Delete(o);
}

/* Keeps the answer for sim_http_answer().  body is copied. */
static int
sim_http_respond(struct sim_http *h, struct lws *wsi,
    struct sim_http_sess *s, int status, const char *type, const char *body)
{
	size_t len = body != NULL ? strlen(body) : 0;

	free(s->resp);
	if ((s->resp = malloc(LWS_PRE + len + 1)) == NULL) {
		log_warn("malloc");
		return -1;
	}
	if (len > 0)
		memcpy(s->resp + LWS_PRE, body, len);
	s->rlen = len;
	s->status = status;
	s->rtype = type;
	s->responding = 1;
	sim_http_record(h, s, status, len);
	log_debug("%s %s -> %d", s->method, s->path, status);
	(void)wsi;
	return 0;
}

static int
sim_http_respond_error(struct sim_http *h, struct lws *wsi,
    struct sim_http_sess *s, int status, const char *msg)
{
	cJSON *o;
	char *txt;
	int r;

	if ((o = cJSON_CreateObject()) == NULL)
		return -1;
	cJSON_AddStringToObject(o, "error", msg);
	txt = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (txt == NULL)
		return -1;
	r = sim_http_respond(h, wsi, s, status, "application/json", txt);
	free(txt);
	return r;
}

/* Answered once the body is in. */
static void
sim_http_early(struct sim_http_sess *s, int status, const char *msg)
{
	if (s->early != 0)
		return;
	s->early = status;
	snprintf(s->early_msg, sizeof(s->early_msg), "%s", msg);
}

/* Starts a hostile stream: its head now, its body on each writeable. */
static int
sim_http_stream_head(struct lws *wsi, struct sim_http_sess *s)
{
	unsigned char hdr[LWS_PRE + 512];
	unsigned char *start = hdr + LWS_PRE, *p = start;
	unsigned char *end = hdr + sizeof(hdr) - 1;
	static const char loc[] = "/pulse/job.puls.gz";
	int endless = s->stream == SIM_STREAM_ENDLESS;

	/* The 302 declares 1 TiB on a connection kept alive: curl drains
	 * a redirect's body to reuse the connection (it drops it unread
	 * when the connection closes anyway, as lws says it will when no
	 * length is given).  The trickle declares none: a length past
	 * max_job_size would be refused before the first byte. */
	if (lws_add_http_common_headers(wsi, endless ? 302 : 200,
	    "application/octet-stream", endless ? SIM_HTTP_HUGE_LEN :
	    LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
	    (endless && lws_add_http_header_by_token(wsi,
	    WSI_TOKEN_HTTP_LOCATION, (const unsigned char *)loc,
	    (int)sizeof(loc) - 1, &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	return 0;
}

static int
sim_http_stream_body(struct lws *wsi, struct sim_http_sess *s)
{
	unsigned char buf[LWS_PRE + SIM_HTTP_ENDLESS_CHUNK];
	size_t n = s->stream == SIM_STREAM_ENDLESS ? SIM_HTTP_ENDLESS_CHUNK :
	    SIM_HTTP_TRICKLE_BYTES;

	/* A trickle sends a real job, so only its pace is wrong; past its
	 * end it stalls. */
	if (s->trickle != NULL)
		n = fread(buf + LWS_PRE, 1, n, s->trickle);
	else
		memset(buf + LWS_PRE, 'x', n);
	if (n > 0 && lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP) != (int)n)
		return -1;
	s->streamed += n;
	/* Only the machine may give up: no lws idle timeout. */
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	if (s->stream == SIM_STREAM_ENDLESS)
		lws_callback_on_writable(wsi);
	else
		lws_set_timer_usecs(wsi, SIM_HTTP_TRICKLE_US);
	return 0;
}

static int
sim_http_write(struct sim_http *h, struct lws *wsi, struct sim_http_sess *s)
{
	unsigned char hdr[LWS_PRE + 1024];
	unsigned char *start = hdr + LWS_PRE, *p = start;
	unsigned char *end = hdr + sizeof(hdr) - 1;

	if (s->stream != SIM_STREAM_NONE) {
		if (s->responding) {
			s->responding = 0;
			if (sim_http_stream_head(wsi, s) == -1)
				return -1;
		}
		return sim_http_stream_body(wsi, s);
	}
	if (!s->responding)
		return 0;
	s->responding = 0;
	if (lws_add_http_common_headers(wsi, (unsigned int)s->status, s->rtype,
	    s->rlen, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
	    (const unsigned char *)"close", 5, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (s->rlen > 0 && lws_write(wsi, s->resp + LWS_PRE, s->rlen,
	    LWS_WRITE_HTTP_FINAL) != (int)s->rlen)
		return -1;
	sim_http_sess_clear(h, s);
	/* Close once it is out (see the top): never the pipelining path. */
	return lws_raw_transaction_completed(wsi);
}

/* The request's Authorization: 1 a live Bearer, 0 a stale or malformed
 * one, -1 none at all. */
static int
sim_http_bearer(struct sim_http *h, struct lws *wsi)
{
	char buf[SIM_HTTP_AUTH_MAX];
	struct sim_tok *t;
	int n, ok;

	n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
	if (n <= 0)
		return -1;
	if (n >= (int)sizeof(buf) ||
	    lws_hdr_copy(wsi, buf, sizeof(buf),
	    WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
		return 0;
	t = strncasecmp(buf, "Bearer ", 7) == 0 ?
	    sim_fleet_by_token(h->p.fleet, buf + 7) : NULL;
	ok = t != NULL && t->kind == SIM_TOK_AUTH && t->live;
	explicit_bzero(buf, sizeof(buf));
	return ok;
}

static int
sim_http_digits(const char *s, int64_t *v)
{
	char *end;
	long long n;

	if (!isdigit((unsigned char)*s) || strlen(s) > 15)
		return 0;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || n <= 0)
		return 0;
	*v = n;
	return 1;
}

static void
sim_http_host(struct lws *wsi, struct sim_http_sess *s)
{
	char buf[sizeof(s->host)];
	size_t i;

	if (lws_hdr_total_length(wsi, WSI_TOKEN_HOST) >= (int)sizeof(buf) ||
	    lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HOST) <= 0)
		return;
	/* Only what a host[:port] may hold: it is echoed into URLs. */
	for (i = 0; buf[i] != '\0'; i++)
		if (!isalnum((unsigned char)buf[i]) &&
		    strchr(".-:[]", buf[i]) == NULL)
			return;
	snprintf(s->host, sizeof(s->host), "%s", buf);
}

static int
sim_http_open_upload(struct sim_http *h, struct sim_http_sess *s)
{
	if (h->p.upload_dir == NULL)
		return 0;
	if ((size_t)snprintf(s->dst, sizeof(s->dst), "%s/%lld.jpg",
	    h->p.upload_dir, (long long)s->action_id) >= sizeof(s->dst) ||
	    (size_t)snprintf(s->tmp, sizeof(s->tmp), "%s/.%lld.jpg.%u",
	    h->p.upload_dir, (long long)s->action_id, h->seq++) >=
	    sizeof(s->tmp)) {
		sim_http_early(s, 500, "upload path too long");
		return 0;
	}
	s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (s->fd == -1) {
		log_warn("%s", s->tmp);
		sim_http_early(s, 500, "cannot store the upload");
		return 0;
	}
	s->have_fd = 1;
	return 0;
}

/* PUT /upload/<id>?sig=...: storage, as a presigned URL sees it. */
static void
sim_http_begin_put(struct sim_http *h, struct lws *wsi,
    struct sim_http_sess *s, const char *rest)
{
	char sigbuf[128];
	struct sim_http_upl *u;
	const char *sig;
	size_t i;
	int found = 0;

	if (!sim_http_digits(rest, &s->action_id)) {
		sim_http_early(s, 404, "no such upload URL");
		sim_http_violation(h, s, "not an upload URL the sim handed "
		    "out");
		return;
	}
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) > 0) {
		/* What storage answers when a presigned request also
		 * carries a Bearer header. */
		sim_http_early(s, 400, "Only one auth mechanism allowed");
		sim_http_violation(h, s, "an Authorization header on a "
		    "presigned upload");
		return;
	}
	sig = lws_get_urlarg_by_name(wsi, "sig=", sigbuf, sizeof(sigbuf));
	u = sim_http_upl(h, s->action_id, 0);
	for (i = 0; sig != NULL && u != NULL && i < SIM_HTTP_SIGS; i++)
		if (sim_http_same(sig, u->sig[i]))
			found = 1;
	if (!found) {
		sim_http_early(s, 403, "SignatureDoesNotMatch");
		sim_http_violation(h, s, "the presigned signature is missing "
		    "or not the one handed out");
		return;
	}
	if (strcasecmp(s->ctype, "image/jpeg") != 0) {
		sim_http_early(s, 400, "Content-Type must be image/jpeg");
		sim_http_violation(h, s, "the upload's Content-Type is not "
		    "image/jpeg");
		return;
	}
	if (h->fail_upload > 0) {
		h->fail_upload--;
		sim_http_early(s, 500, "fail_upload knob");
		return;
	}
	sim_http_open_upload(h, s);
}

/* POST /api/machines/<type>/<id>: the legacy upload, with Bearer. */
static void
sim_http_begin_post_image(struct sim_http *h, struct lws *wsi,
    struct sim_http_sess *s, const char *rest)
{
	char type[48];
	const char *slash = strchr(rest, '/');
	size_t n, i;
	int b;

	n = slash != NULL ? (size_t)(slash - rest) : 0;
	if (n == 0 || n >= sizeof(type) ||
	    !sim_http_digits(slash + 1, &s->action_id)) {
		sim_http_early(s, 404, "no such path");
		sim_http_violation(h, s, "not /api/machines/<type>/<id>");
		return;
	}
	memcpy(type, rest, n);
	type[n] = '\0';
	for (i = 0; i < n; i++)
		if (!islower((unsigned char)type[i]) && type[i] != '_') {
			sim_http_early(s, 404, "no such action type");
			sim_http_violation(h, s, "a malformed action type");
			return;
		}
	if ((b = sim_http_bearer(h, wsi)) != 1) {
		sim_http_early(s, 401, "invalid or expired token");
		if (b == -1)
			sim_http_violation(h, s, "no Authorization header");
		return;
	}
	if (h->fail_upload > 0) {
		h->fail_upload--;
		sim_http_early(s, 500, "fail_upload knob");
		return;
	}
	sim_http_open_upload(h, s);
}

static int
sim_http_get_pulse(struct sim_http *h, struct lws *wsi,
    struct sim_http_sess *s, const char *name)
{
	char path[PATH_MAX];
	struct stat sb;
	int n;

	if (!sim_scenario_name_ok(name)) {
		sim_http_violation(h, s, "a pulse name the sim never hands "
		    "out");
		return sim_http_respond_error(h, wsi, s, 400, "bad name");
	}
	if (h->fail_pulse > 0) {
		h->fail_pulse--;
		snprintf(s->early_msg, sizeof(s->early_msg), "fail_pulse knob");
		return sim_http_respond_error(h, wsi, s, 500, "fail_pulse");
	}
	if (strcmp(name, SIM_HTTP_PULSE_TRICKLE) == 0) {
		if (h->p.pulse_dir == NULL ||
		    (size_t)snprintf(path, sizeof(path), "%s/job.puls.gz",
		    h->p.pulse_dir) >= sizeof(path) ||
		    (s->trickle = fopen(path, "re")) == NULL)
			return sim_http_respond_error(h, wsi, s, 404,
			    "no job.puls.gz to trickle");
	}
	if (strcmp(name, SIM_HTTP_PULSE_ENDLESS) == 0 ||
	    strcmp(name, SIM_HTTP_PULSE_TRICKLE) == 0) {
		s->stream = strcmp(name, SIM_HTTP_PULSE_ENDLESS) == 0 ?
		    SIM_STREAM_ENDLESS : SIM_STREAM_TRICKLE;
		sim_http_record(h, s, s->stream == SIM_STREAM_ENDLESS ? 302 :
		    200, 0);
		s->responding = 1;
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (s->far && lws_hdr_total_length(wsi,
	    WSI_TOKEN_HTTP_AUTHORIZATION) > 0)
		sim_http_violation(h, s, "the machine's token went to another "
		    "host (the storage listener)");
	if (strncmp(name, SIM_HTTP_PULSE_BEARER,
	    sizeof(SIM_HTTP_PULSE_BEARER) - 1) == 0) {
		/* Served only with a live Bearer, as the app host may; the
		 * storage host wants credentials of its own. */
		if (s->far || sim_http_bearer(h, wsi) != 1)
			return sim_http_respond_error(h, wsi, s, 401,
			    "invalid or expired token");
		name += sizeof(SIM_HTTP_PULSE_BEARER) - 1;
	}
	if (h->p.pulse_dir == NULL ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", h->p.pulse_dir,
	    name) >= sizeof(path) || stat(path, &sb) == -1 ||
	    !S_ISREG(sb.st_mode))
		return sim_http_respond_error(h, wsi, s, 404, "no such file");
	sim_http_record(h, s, 200, (uint64_t)sb.st_size);
	/* As is, gzip or not: the machine detects gzip by its magic. */
	n = lws_serve_http_file(wsi, path, "application/octet-stream", NULL,
	    0);
	if (n < 0)
		return -1;
	if (n > 0) {
		/* Sent at once: no FILE_COMPLETION will come. */
		sim_http_sess_clear(h, s);
		return lws_raw_transaction_completed(wsi);
	}
	return 0;
}

static int
sim_http_get_update(struct sim_http *h, struct lws *wsi,
    struct sim_http_sess *s)
{
	/* JSON-escaped: a newline, then what a forged log line of the
	 * daemon's file would look like, then ESC [2J (clear the screen). */
	static const char hostile[] = "9.9.9\\n2026-01-01 00:00:00 ERROR "
	    "forged:line injected\\u001b[2J";
	const char *version = PROTO_FW_VERSION;
	char body[512];
	int b;

	if ((b = sim_http_bearer(h, wsi)) != 1) {
		if (b == -1)
			sim_http_violation(h, s, "no Authorization header");
		return sim_http_respond_error(h, wsi, s, 401,
		    "invalid or expired token");
	}
	if (h->hostile_fw > 0) {
		h->hostile_fw--;
		version = hostile;
	}
	snprintf(body, sizeof(body), "{\"version\":\"%s\",\"download_url\":"
	    "\"%s://%s/update/gf-%s.fw\"}", version,
	    h->p.tls ? "https" : "http",
	    s->host[0] != '\0' ? s->host : "localhost", PROTO_FW_VERSION);
	return sim_http_respond(h, wsi, s, 200, "application/json", body);
}

/* libcurl announces bodies past 1 KiB with "Expect: 100-continue" and
 * holds them back a second unless told to go on; lws does not answer it.
 * Every body is read, even one to be refused (see the top), so always
 * invite it. */
static int
sim_http_continue(struct lws *wsi)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	unsigned char buf[LWS_PRE + sizeof(cont)];
	char expect[64];

	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_EXPECT) >=
	    (int)sizeof(expect) || lws_hdr_copy(wsi, expect, sizeof(expect),
	    WSI_TOKEN_HTTP_EXPECT) <= 0 || strcasecmp(expect,
	    "100-continue") != 0)
		return 0;
	memcpy(buf + LWS_PRE, cont, sizeof(cont) - 1);
	if (lws_write(wsi, buf + LWS_PRE, sizeof(cont) - 1,
	    LWS_WRITE_HTTP_HEADERS) != (int)sizeof(cont) - 1)
		return -1;
	return 0;
}

/* GET /metrics: 0 when answered (load mode), -1 when the sim has none. */
static int
sim_http_metrics(struct sim_http *h, struct lws *wsi, struct sim_http_sess *s)
{
	char *text;

	if (h->p.metrics == NULL || (text = h->p.metrics(h->p.arg)) == NULL)
		return -1;
	s->route = ROUTE_METRICS;
	sim_http_respond(h, wsi, s, 200, "text/plain; version=0.0.4", text);
	free(text);
	return 0;
}

static int	 sim_http_finish(struct sim_http *, struct lws *,
		    struct sim_http_sess *);

/* The Content-Length header (its text in clen): 1 when there is one,
 * its value in *cl (ULLONG_MAX when it is not a number). */
static int
sim_http_clen(struct lws *wsi, char *clen, size_t len,
    unsigned long long *cl)
{
	char *end;

	*cl = 0;
	if (lws_hdr_copy(wsi, clen, (int)len, WSI_TOKEN_HTTP_CONTENT_LENGTH) <=
	    0)
		return 0;
	errno = 0;
	*cl = strtoull(clen, &end, 10);
	if (errno != 0 || *end != '\0' || !isdigit((unsigned char)*clen))
		*cl = ULLONG_MAX;
	return 1;
}

/* LWS_CALLBACK_HTTP: route on the headers; answer now when no body. */
static int
sim_http_begin(struct sim_http *h, struct lws *wsi, struct sim_http_sess *s,
    const char *uri)
{
	static const char *const names[] = {
		"GET", "POST", "OPTIONS", "PUT", "PATCH", "DELETE", "CONNECT",
		"HEAD",
	};
	char clen[32];
	char *puri;
	int m, plen, body_method;
	unsigned long long cl = 0;
	int have_cl = 0, chunked;

	sim_http_sess_clear(h, s);
	s->active = 1;
	h->active++;
	m = lws_http_get_uri_and_method(wsi, &puri, &plen);
	s->method = m >= 0 && (size_t)m < sizeof(names) / sizeof(names[0]) ?
	    names[m] : "?";
	snprintf(s->path, sizeof(s->path), "%s", uri);
	sim_http_host(wsi, s);
	s->far = strcmp(lws_get_vhost_name(lws_get_vhost(wsi)),
	    SIM_HTTP_FAR_VHOST) == 0;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE) <
	    (int)sizeof(s->ctype))
		lws_hdr_copy(wsi, s->ctype, sizeof(s->ctype),
		    WSI_TOKEN_HTTP_CONTENT_TYPE);
	body_method = m == LWSHUMETH_POST || m == LWSHUMETH_PUT;

	have_cl = sim_http_clen(wsi, clen, sizeof(clen), &cl);
	chunked = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) >
	    0;
	if (have_cl && cl > SIM_HTTP_UPLOAD_MAX) {
		snprintf(s->early_msg, sizeof(s->early_msg), "body of %s "
		    "bytes, past the cap", clen);
		sim_http_record(h, s, 413, 0);
		log_warnx("%s %s: body past the cap, closing", s->method,
		    s->path);
		lws_return_http_status(wsi, 413, NULL);
		return -1;
	}

	if (chunked) {
		/* lws 4.1 never ends a chunked body (no BODY_COMPLETION):
		 * refuse it now, as storage does, and close. */
		snprintf(s->early_msg, sizeof(s->early_msg), "a chunked body");
		sim_http_record(h, s, 411, 0);
		log_warnx("%s %s: a chunked body, refused", s->method,
		    s->path);
		lws_return_http_status(wsi, 411, NULL);
		return -1;
	}

	if (m == LWSHUMETH_POST && strcmp(uri, "/machines/sign_in") == 0) {
		s->route = ROUTE_SIGNIN;
		if (h->fail_signin > 0) {
			h->fail_signin--;
			sim_http_early(s, 503, "fail_signin knob");
		}
	} else if (m == LWSHUMETH_PUT && strncmp(uri, "/upload/", 8) == 0) {
		s->route = ROUTE_PUT;
		sim_http_begin_put(h, wsi, s, uri + 8);
	} else if (m == LWSHUMETH_POST &&
	    strncmp(uri, "/api/machines/", 14) == 0) {
		s->route = ROUTE_POST_IMAGE;
		sim_http_begin_post_image(h, wsi, s, uri + 14);
	} else if (m == LWSHUMETH_GET && strcmp(uri, "/update/current") == 0) {
		s->route = ROUTE_UPDATE;
		return sim_http_get_update(h, wsi, s);
	} else if (m == LWSHUMETH_GET && strncmp(uri, "/update/", 8) == 0 &&
	    sim_scenario_name_ok(uri + 8)) {
		s->route = ROUTE_FIRMWARE;
		return sim_http_respond(h, wsi, s, 200,
		    "application/octet-stream", "not a firmware: "
		    "gf-cloud-sim\n");
	} else if (m == LWSHUMETH_GET && strcmp(uri, "/metrics") == 0 &&
	    sim_http_metrics(h, wsi, s) == 0) {
		return 0;
	} else if (m == LWSHUMETH_GET && strncmp(uri, "/pulse/", 7) == 0) {
		s->route = ROUTE_PULSE;
		return sim_http_get_pulse(h, wsi, s, uri + 7);
	} else {
		s->route = ROUTE_OTHER;
		sim_http_early(s, 404, "no such endpoint");
		sim_http_violation(h, s, "a path or method the service does "
		    "not have");
	}

	/* Without a body to wait for, the answer is due now.  lws delivers
	 * BODY_COMPLETION only for a body it was told about. */
	if (!body_method)
		return sim_http_respond_error(h, wsi, s,
		    s->early != 0 ? s->early : 405,
		    s->early != 0 ? s->early_msg : "method not allowed");
	if ((!have_cl || cl == 0) && !chunked)
		return sim_http_finish(h, wsi, s);
	s->body_pending = 1;
	return sim_http_continue(wsi);
}

static int
sim_http_body(struct sim_http *h, struct lws *wsi, struct sim_http_sess *s,
    const uint8_t *in, size_t len)
{
	size_t off = 0;
	ssize_t w;
	char *nb;

	if (len == 0)
		return 0;
	if (s->received + len > SIM_HTTP_UPLOAD_MAX) {
		/* A chunked body that never ends: cut it off. */
		snprintf(s->early_msg, sizeof(s->early_msg), "body past the "
		    "cap");
		sim_http_record(h, s, 413, 0);
		return -1;
	}
	if (s->received < 2)
		memcpy(s->head + s->received, in, len < 2 - s->received ?
		    len : 2 - s->received);
	if (len >= 2)
		memcpy(s->tail, in + len - 2, 2);
	else {
		s->tail[0] = s->tail[1];
		s->tail[1] = in[0];
	}
	s->received += len;

	if (s->route == ROUTE_SIGNIN) {
		if (s->blen + len > SIM_HTTP_JSON_MAX) {
			s->body_over = 1;
			return 0;
		}
		if ((nb = realloc(s->body, s->blen + len + 1)) == NULL) {
			log_warn("realloc");
			return -1;
		}
		s->body = nb;
		memcpy(s->body + s->blen, in, len);
		s->blen += len;
		s->body[s->blen] = '\0';
		return 0;
	}
	if (!s->have_fd || s->early != 0)
		return 0;
	while (off < len) {
		w = write(s->fd, in + off, len - off);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_warn("%s", s->tmp);
			sim_http_early(s, 500, "cannot store the upload");
			return 0;
		}
		off += (size_t)w;
	}
	(void)wsi;
	return 0;
}

/* The machine whose serial and password the sign-in body holds, or NULL
 * (a violation is reported).  -1 in *bad when it was not JSON. */
static struct sim_machine *
sim_http_credentials(struct sim_http *h, struct sim_http_sess *s, int *bad)
{
	const cJSON *sn, *pw;
	struct sim_machine *m = NULL;
	cJSON *j;
	int r = 0;

	*bad = 0;
	j = s->body != NULL ? cJSON_ParseWithLength(s->body, s->blen) : NULL;
	sn = cJSON_GetObjectItemCaseSensitive(j, "serial");
	pw = cJSON_GetObjectItemCaseSensitive(j, "password");
	if (!cJSON_IsObject(j) || !cJSON_IsString(sn) || !cJSON_IsString(pw)) {
		cJSON_Delete(j);
		sim_http_violation(h, s, "the sign-in body is not a JSON "
		    "object with serial and password strings");
		*bad = -1;
		return NULL;
	}
	if (sn->valuestring[0] == 'S')
		m = sim_fleet_by_serial(h->p.fleet, sn->valuestring);
	r = m != NULL && sim_http_same(pw->valuestring, m->password);
	if (pw->valuestring != NULL)
		explicit_bzero(pw->valuestring, strlen(pw->valuestring));
	cJSON_Delete(j);
	if (!r) {
		sim_http_violation(h, s, "a wrong serial or password");
		return NULL;
	}
	return m;
}

/* Fresh tokens for m: a ws slot's and the auth token (the previous one
 * is retired).  The body to answer in body. */
static int
sim_http_issue(struct sim_http *h, struct sim_machine *m, char *body,
    size_t len)
{
	char ws[SIM_HTTP_TOKEN_LEN + 1], auth[SIM_HTTP_TOKEN_LEN + 1];
	int64_t now = h->p.now_ms(h->p.arg);
	struct sim_tok *slot;
	int r = -1;

	if (sim_http_random_hex(h, ws, SIM_HTTP_TOKEN_BYTES) == -1 ||
	    sim_http_random_hex(h, auth, SIM_HTTP_TOKEN_BYTES) == -1)
		goto done;
	if (sim_transcript_secret(h->p.tr, ws) == -1 ||
	    sim_transcript_secret(h->p.tr, auth) == -1) {
		r = -2;
		goto done;
	}
	slot = sim_fleet_ws_slot(m, now, SIM_HTTP_WS_TOKEN_TTL);
	sim_fleet_token_set(h->p.fleet, slot, ws, now);
	sim_fleet_token_set(h->p.fleet, &m->auth, auth, now);
	m->signins++;
	snprintf(body, len, "{\"ws_token\":\"%s\",\"auth_token\":"
	    "\"%s\"}", ws, auth);
	r = 0;
done:
	explicit_bzero(ws, sizeof(ws));
	explicit_bzero(auth, sizeof(auth));
	return r;
}

static int
sim_http_signin(struct sim_http *h, struct lws *wsi, struct sim_http_sess *s)
{
	struct sim_machine *m;
	char body[256];
	int r, bad;

	if (s->body_over)
		return sim_http_respond_error(h, wsi, s, 413, "body too large");
	if (strncasecmp(s->ctype, "application/json", 16) != 0 ||
	    (s->ctype[16] != '\0' && s->ctype[16] != ';')) {
		sim_http_violation(h, s, "the sign-in is not sent as JSON "
		    "(Content-Type)");
		return sim_http_respond_error(h, wsi, s, 400, "expected JSON");
	}
	if ((m = sim_http_credentials(h, s, &bad)) == NULL)
		return bad == -1 ? sim_http_respond_error(h, wsi, s, 400,
		    "expected JSON") : sim_http_respond_error(h, wsi, s, 401,
		    "invalid credentials");
	if (s->early != 0)
		return sim_http_respond_error(h, wsi, s, s->early,
		    s->early_msg);
	if (h->refuse_signin > 0) {
		/* What wrong credentials get: the machine cannot tell. */
		h->refuse_signin--;
		snprintf(s->early_msg, sizeof(s->early_msg),
		    "refuse_signin knob");
		return sim_http_respond_error(h, wsi, s, 401,
		    "invalid credentials");
	}
	if ((r = sim_http_issue(h, m, body, sizeof(body))) == -2) {
		sim_http_violation(h, s, "too many sign-ins");
		return sim_http_respond_error(h, wsi, s, 503,
		    "too many sign-ins");
	}
	if (r == -1)
		return sim_http_respond_error(h, wsi, s, 500, "no randomness");
	if (sim_fleet_count(h->p.fleet) == 1)
		log_info("sign-in: tokens issued");
	else
		log_debug("sign-in of S%s: tokens issued", m->serial);
	r = sim_http_respond(h, wsi, s, 200, "application/json", body);
	explicit_bzero(body, sizeof(body));
	return r;
}

static int
sim_http_finish_upload(struct sim_http *h, struct lws *wsi,
    struct sim_http_sess *s)
{
	struct sim_http_upl *u;

	if (s->early != 0)
		return sim_http_respond_error(h, wsi, s, s->early,
		    s->early_msg);
	if (s->received < 4 || s->head[0] != 0xff || s->head[1] != 0xd8 ||
	    s->tail[0] != 0xff || s->tail[1] != 0xd9) {
		sim_http_violation(h, s, "the uploaded body is not a JPEG "
		    "(FF D8 ... FF D9)");
		return sim_http_respond_error(h, wsi, s, 400, "not a JPEG");
	}
	if (s->have_fd) {
		if (close(s->fd) == -1 || rename(s->tmp, s->dst) == -1) {
			log_warn("%s", s->dst);
			unlink(s->tmp);
			s->have_fd = 0;
			return sim_http_respond_error(h, wsi, s, 500,
			    "cannot store the upload");
		}
		s->have_fd = 0;
	}
	if ((u = sim_http_upl(h, s->action_id, 1)) != NULL)
		u->n++;
	if (sim_fleet_count(h->p.fleet) == 1)
		log_info("image for action %lld: %llu bytes",
		    (long long)s->action_id, (unsigned long long)s->received);
	else
		log_debug("image for action %lld: %llu bytes",
		    (long long)s->action_id, (unsigned long long)s->received);
	return sim_http_respond(h, wsi, s, 200, "application/json", "{}");
}

/* Where sign-ins answered with this status are counted, or -1. */
static int
sim_http_signin_slot(int status)
{
	return status == 200 ? 0 : status == 401 ? 1 : status == 503 ? 2 : -1;
}

static int
sim_http_finish(struct sim_http *h, struct lws *wsi, struct sim_http_sess *s)
{
	int i, r;

	switch (s->route) {
	case ROUTE_SIGNIN:
		r = sim_http_signin(h, wsi, s);
		if (s->responding && (i = sim_http_signin_slot(s->status)) !=
		    -1)
			h->signins[i]++;
		return r;
	case ROUTE_PUT:
	case ROUTE_POST_IMAGE:
		return sim_http_finish_upload(h, wsi, s);
	default:
		return sim_http_respond_error(h, wsi, s,
		    s->early != 0 ? s->early : 400,
		    s->early != 0 ? s->early_msg : "unexpected body");
	}
}

/*
 * An answer decided in a callback (r its result) goes out at once when
 * the request is read whole: waiting for the writeable callback cost two
 * changes of lws' POLLOUT interest, each an epoll_ctl() DEL and ADD under
 * libuv, and a wake-up, per request.  One decided before a body lws has
 * still to read waits for it: closing on unread bytes resets the
 * connection, and the answer with it.
 */
static int
sim_http_answer(struct sim_http *h, struct lws *wsi, struct sim_http_sess *s,
    int r)
{
	if (r != 0 || !s->active || !s->responding ||
	    s->stream != SIM_STREAM_NONE)
		return r;
	if (!s->body_pending)
		return sim_http_write(h, wsi, s);
	lws_callback_on_writable(wsi);
	return 0;
}

int
sim_http_callback(struct sim_http *h, struct lws *wsi,
    enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct sim_http_sess *s = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		if (s == NULL)
			return -1;
		return sim_http_answer(h, wsi, s,
		    sim_http_begin(h, wsi, s, in));
	case LWS_CALLBACK_HTTP_BODY:
		if (s == NULL || !s->active)
			return -1;
		return sim_http_body(h, wsi, s, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (s == NULL || !s->active)
			return -1;
		s->body_pending = 0;
		return sim_http_answer(h, wsi, s, sim_http_finish(h, wsi, s));
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (s == NULL)
			return 0;
		return sim_http_write(h, wsi, s);
	case LWS_CALLBACK_TIMER:
		if (s != NULL && s->stream != SIM_STREAM_NONE)
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_HTTP_FILE_COMPLETION:
		if (s != NULL)
			sim_http_sess_clear(h, s);
		return lws_raw_transaction_completed(wsi);
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (s != NULL)
			sim_http_sess_clear(h, s);
		break;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

int
sim_http_ws_accept(struct sim_http *h, const char *path,
    struct sim_machine **mp, char *why, size_t whylen)
{
	int64_t now = h->p.now_ms(h->p.arg);
	struct sim_tok *t;

	*mp = NULL;
	if (path[0] != '/' || strlen(path + 1) != SIM_HTTP_TOKEN_LEN) {
		snprintf(why, whylen, "the path is not /<ws_token>");
		return -1;
	}
	if ((t = sim_fleet_by_token(h->p.fleet, path + 1)) == NULL ||
	    t->kind != SIM_TOK_WS) {
		snprintf(why, whylen, "not a ws token the sim issued");
		return -1;
	}
	if (!t->live) {
		snprintf(why, whylen, "the ws token was already used");
		return -1;
	}
	t->live = 0;
	if (now - t->issued > SIM_HTTP_WS_TOKEN_TTL) {
		snprintf(why, whylen, "the ws token expired (%lld ms old)",
		    (long long)(now - t->issued));
		return -1;
	}
	*mp = t->m;
	return 0;
}

void
sim_http_knob(struct sim_http *h, enum sim_knob knob, int n)
{
	size_t i;

	switch (knob) {
	case SIM_KNOB_EXPIRE_TOKEN:
		for (i = 0; i < sim_fleet_count(h->p.fleet); i++)
			sim_fleet_machine(h->p.fleet, i)->auth.live = 0;
		log_info("knob: the auth token is expired");
		break;
	case SIM_KNOB_FAIL_UPLOAD:
		h->fail_upload = n;
		log_info("knob: the next %d uploads fail", n);
		break;
	case SIM_KNOB_FAIL_PULSE:
		h->fail_pulse = n;
		log_info("knob: the next %d pulse downloads fail", n);
		break;
	case SIM_KNOB_PRESS_BUTTON:
		break;		/* not HTTP: sim_server handles it */
	case SIM_KNOB_FAIL_SIGNIN:
		h->fail_signin = n;
		log_info("knob: the next %d sign-ins fail", n);
		break;
	case SIM_KNOB_REFUSE_SIGNIN:
		h->refuse_signin = n;
		log_info("knob: the next %d sign-ins are refused (401)", n);
		break;
	case SIM_KNOB_HOSTILE_FW:
		h->hostile_fw = n;
		log_info("knob: the next %d firmware probes forge a line", n);
		break;
	}
}

char *
sim_http_upload_url(struct sim_http *h, const char *base, int64_t action_id)
{
	struct sim_http_upl *u;
	char *url, *sig;

	if ((u = sim_http_upl(h, action_id, 1)) == NULL)
		return NULL;
	sig = u->sig[u->nsig++ % SIM_HTTP_SIGS];
	if (sim_http_random_hex(h, sig, SIM_HTTP_SIG_BYTES) == -1)
		return NULL;
	if (asprintf(&url, "%s/upload/%lld?sig=%s", base,
	    (long long)action_id, sig) == -1)
		return NULL;
	return url;
}

int
sim_http_active(const struct sim_http *h)
{
	return h->active;
}

int
sim_http_signins(const struct sim_http *h, int status)
{
	int i = sim_http_signin_slot(status);

	return i == -1 ? 0 : h->signins[i];
}

int
sim_http_uploads(const struct sim_http *h, int64_t action_id)
{
	const struct sim_http_upl *u;

	u = sim_http_upl((struct sim_http *)(uintptr_t)h, action_id, 0);
	return u != NULL ? u->n : 0;
}
