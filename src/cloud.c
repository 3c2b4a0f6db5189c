/*
 * cloud: see cloud.h.  One curl easy handle per request: the calls come from
 * several threads and a handle is cheap next to a TLS handshake, so the only
 * shared state is the auth token, kept under a mutex.  An idle cloud holds
 * no handle and no buffer: a fleet keeps one per machine.
 *
 * One policy, two drivers.  Each call is an operation (struct cloud_op)
 * whose policy (sign in first, replay after a 401, follow a redirect, read
 * the reply) lives in the cloud_op_* step functions: each says what comes
 * next, a request to send, a sign-in to wait for, or the end.  The blocking
 * calls drive them with curl_easy_perform() in a loop (cloud_run); the
 * asynchronous ones with the evloop's curl multi (cloud_async_*), from its
 * callbacks.  The request itself (options, headers, reading the reply,
 * one log line per failure) is the same code under both.
 *
 * Secrets (password, serial, tokens, presigned signatures) travel through
 * here: they are wiped from every buffer we own once used, and URLs are
 * logged as scheme://host/path only.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <uv.h>

#include "cloud.h"
#include "config.h"
#include "evloop.h"
#include "log.h"
#include "metrics.h"
#include "mlog.h"
#include "proto.h"
#include "secret.h"
#include "trust.h"

#define CLOUD_DEFAULT_SERVER	"https://app.glowforge.com"
#define CLOUD_REPLY_MAX		(64 * 1024)	/* JSON replies are tiny */
#define CLOUD_REPLY_MIN		1024		/* first reply buffer, bytes */
#define CLOUD_CONNECT_TIMEOUT	10L		/* seconds */
#define CLOUD_TRANSFER_TIMEOUT	900.0		/* seconds, default */
#define CLOUD_MIN_SPEED		1024L		/* bytes/s, default */
#define CLOUD_MIN_SPEED_TIME	30L		/* seconds, default */
#define CLOUD_LOCATION_MAX	4096		/* bytes of a Location */
#define CLOUD_MAX_REDIRS	5L
#define CLOUD_URL_LOG		256		/* bytes of a URL in a log line */
#define CLOUD_HEAD_LOG		(CLOUD_URL_LOG + 128)	/* "what: METHOD url" */
#define CLOUD_TYPE_MAX		32		/* action type in a legacy path */

struct cloud_op;

struct cloud {
	const struct config	*cf;
	const char		*serial;	/* without the "S" */
	const char		*password;	/* secret */
	const char		*name;		/* log line prefix, or NULL */
	/* One sign-in at a time: threads that all get a 401 on the same
	 * expired token then sign in once between them, not once each. */
	pthread_mutex_t		 signin;
	pthread_mutex_t		 lock;		/* guards token, gen */
	char			*token;		/* auth_token, or NULL */
	unsigned		 gen;		/* bumped with each token */
	atomic_int		 aborting;	/* cloud_abort(): end every call */

	/* The asynchronous side, touched on the loop thread only. */
	struct cloud_op		*ops;		/* started, not yet done */
	struct cloud_op		*refresh;	/* the re-sign-in under way */
	struct cloud_op		*waiters;	/* ops waiting for it */
	unsigned		 nops;		/* in ops */
	unsigned		 busy;		/* waking waiters: free later */
	int			 dying;		/* cloud_free() came meanwhile */
};

/* A machine's INFO line: DEBUG in a fleet (a named cloud), whose summary
 * line every 10 s says it for all (issue 10). */
#define CLOUD_INFO(name, ...)	log_emit((name) != NULL ? LOG_DEBUG : \
				    LOG_INFO, 0, __FILE__, __func__, __VA_ARGS__)

/* "<name>: " before a line, or nothing: two arguments for "%s%s". */
#define CLOUD_NAME(c)	((c)->name != NULL ? (c)->name : ""), \
			((c)->name != NULL ? ": " : "")

/* Why a callback stopped the transfer: curl only says "write error". */
enum cloud_stop {
	CLOUD_STOP_NONE = 0,
	CLOUD_STOP_STATUS,	/* error reply: the status tells */
	CLOUD_STOP_TOO_BIG,	/* reply past CLOUD_REPLY_MAX */
	CLOUD_STOP_SINK,	/* the sink refused */
	CLOUD_STOP_CANCEL,	/* the cancel flag was raised */
	CLOUD_STOP_NOMEM,
	CLOUD_STOP_REDIRECT,	/* a 3xx head: its body is never read */
	CLOUD_STOP_CAP,		/* more than max_bytes received */
	CLOUD_STOP_BODY,	/* the request body could not be re-read */
};

struct cloud_xfer {
	/* The request. */
	const char		*method;	/* "GET", "POST" or "PUT" */
	const char		*url;
	const char		*ctype;		/* Content-Type, or NULL */
	const void		*body;		/* POST/PUT only */
	size_t			 bodylen;
	int			 bearer;	/* send the auth token */
	const char		*what;		/* log prefix ("job 7"), or NULL */
	const char		*name;		/* the cloud's, or NULL */
	size_t			 sent;		/* bytes of body read by curl */
	unsigned		 gen;		/* of the token sent */
	uint64_t		 max_bytes;	/* over all hops; 0: none */
	uint64_t		 received;	/* bytes, over all hops */
	int64_t			 deadline;	/* ms, monotonic; 0: per hop */

	/* Where the reply body goes: a sink, or else the reply buffer. */
	const struct cloud_sink	*sink;
	const atomic_int	*cancel;
	const atomic_int	*abort;		/* the cloud's: shutdown */
	int			 cancelled;	/* cloud_op_cancel() */
	int			 in_cb;		/* inside the sink's callback */
	char			*reply;		/* up to CLOUD_REPLY_MAX + 1 */
	size_t			 replylen, replycap;

	/* The current response head, as the header callback sees it. */
	long			 status;
	long long		 length;	/* Content-Length, or -1 */
	int			 headdone;
	char			*location;	/* of a 3xx head, or NULL */
	enum cloud_stop		 stop;
};

enum cloud_kind {
	CLOUD_OP_SIGN_IN,	/* hands the ws_token out */
	CLOUD_OP_REFRESH,	/* a sign-in for the auth token alone */
	CLOUD_OP_PROBE,
	CLOUD_OP_UPLOAD,
	CLOUD_OP_DOWNLOAD,
};

/* What an operation does next, as its step functions say. */
enum cloud_step {
	CLOUD_STEP_SEND,	/* the request in op->x */
	CLOUD_STEP_SIGN_IN,	/* a new token, replacing op->wait_gen's */
	CLOUD_STEP_DONE,	/* op->result (and op->out) are final */
};

/*
 * One call, blocking or not.  A blocking call keeps it on its stack; an
 * asynchronous one is allocated by its *_start and freed once done() ran
 * and its transfer, if any, left the multi (a cancelled op waits there
 * for curl to let go of it, its callbacks refusing everything).
 */
struct cloud_op {
	struct cloud		*c;		/* NULL once done: detached */
	struct evloop		*ev;		/* NULL: a blocking call */
	enum cloud_kind		 kind;
	union {
		cloud_done	 plain;
		cloud_token_done token;
		cloud_text_done	 text;
	}			 done;
	void			*arg;
	struct cloud_xfer	 x;
	struct cloud_sink	 sink;		/* a copy (downloads) */
	char			*url;		/* the current hop's */
	char			*label;		/* x.what */
	char			*body;		/* the sign-in's JSON: wiped */
	char			*out;		/* ws_token or version */
	enum cloud_result	 result;
	enum cloud_step		 first;		/* what the kick runs */
	unsigned		 wait_gen;	/* token to replace */
	int			 hop;		/* redirects followed */
	int			 replays;	/* 401 replays left */
	int			 fresh;		/* token got for this request */

	/* Asynchronous only. */
	CURL			*easy;		/* in the multi, or NULL */
	struct curl_slist	*hdrs;
	uv_timer_t		 kick;		/* runs the first step */
	int			 kick_open;
	int			 waiting;	/* in c->waiters */
	struct cloud_op		*prev, *next;	/* c->ops */
	struct cloud_op		*wnext;		/* c->waiters */
	char			 errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t	cloud_once = PTHREAD_ONCE_INIT;
static CURLcode		cloud_init_rc = CURLE_FAILED_INIT;
/* Where the roots are: the same for every cloud of the process, so
 * looked up once (trust.h), not kept per machine. */
static char		*cloud_trust_dir;	/* hashed roots, or NULL */
static char		*cloud_bundle;		/* $SSL_CERT_FILE, or NULL */

static void
cloud_global_init(void)
{
	cloud_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	cloud_trust_dir = trust_dir();
	cloud_bundle = trust_bundle();
}

/* Wipes every string of a cJSON tree before it is deleted: sign-in bodies
 * and replies hold the password and the tokens. */
static void
cloud_json_wipe(cJSON *j)
{
	for (; j != NULL; j = j->next) {
		if (j->valuestring != NULL)
			explicit_bzero(j->valuestring, strlen(j->valuestring));
		if (j->child != NULL)
			cloud_json_wipe(j->child);
	}
}

static void
cloud_json_free(cJSON *j)
{
	cloud_json_wipe(j);
	cJSON_Delete(j);
}

/* The authority of a URL, from just past "://": returns where its host
 * part starts (past any userinfo), *n how long the rest of it is. */
static const char *
cloud_url_authority(const char *auth, size_t *n)
{
	size_t len = strcspn(auth, "/?#");
	const char *p;

	for (p = auth + len; p > auth; p--)
		if (p[-1] == '@')
			break;
	*n = len - (size_t)(p - auth);
	return p;
}

int
cloud_url_allowed(const char *url)
{
	const char *host, *p;
	size_t n;

	if (url == NULL)
		return 0;
	if (strncasecmp(url, "https://", 8) == 0)
		host = url + 8;
	else if (strncasecmp(url, "http://", 7) == 0)
		host = url + 7;
	else
		return 0;
	/* Blanks and control bytes have no business in a URL we are handed;
	 * refusing them keeps header and log injection out of the question. */
	for (p = url; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return 0;

	/* A port is no host: "http://:80/" has none. */
	host = cloud_url_authority(host, &n);
	if (n > 0 && host[0] == '[')
		return n > 2 && host[1] != ']' && memchr(host, ']', n) != NULL;
	return strcspn(host, ":/?#") > 0;
}

/* "https://user:pw@host/path?sig=..#f" -> "https://host/path": what may
 * be logged of a URL.  Control bytes become '?' so a URL cannot forge log
 * lines. */
static void
cloud_url_redact(const char *url, char *buf, size_t len)
{
	const char *auth;
	size_t slen, alen, plen, i;

	slen = url == NULL ? 0 : strspn(url, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
	if (slen == 0 || slen > 16 || url[slen] != ':')
		snprintf(buf, len, "(not a URL)");
	else if (strncmp(url + slen, "://", 3) != 0) {
		/* Not hierarchical ("data:..."): the rest may be anything. */
		snprintf(buf, len, "%.*s:...", (int)slen, url);
	} else {
		auth = cloud_url_authority(url + slen + 3, &alen);
		plen = strcspn(auth + alen, "?#");
		snprintf(buf, len, "%.*s://%.*s%.*s", (int)slen, url,
		    (int)alen, auth, (int)plen, auth + alen);
	}
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
}

const char *
cloud_strerror(enum cloud_result r)
{
	switch (r) {
	case CLOUD_OK:
		return "ok";
	case CLOUD_ERR_NET:
		return "network or server error";
	case CLOUD_ERR_AUTH:
		return "sign-in refused";
	case CLOUD_ERR_REFUSED:
		return "refused";
	case CLOUD_ERR_CANCELLED:
		return "cancelled";
	case CLOUD_ERR_SINK:
		return "data refused by the receiver";
	}
	return "unknown error";
}

struct cloud *
cloud_new(const struct config *cf)
{
	if (cf == NULL)
		return NULL;
	return cloud_new_identity(cf, cf->serial, cf->password, NULL);
}

struct cloud *
cloud_new_identity(const struct config *cf, const char *serial,
    const char *password, const char *name)
{
	struct cloud *c;

	if (cf == NULL)
		return NULL;
	if (pthread_once(&cloud_once, cloud_global_init) != 0 ||
	    cloud_init_rc != CURLE_OK) {
		log_warnx("curl_global_init: %s",
		    curl_easy_strerror(cloud_init_rc));
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("calloc");
		return NULL;
	}
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		log_warnx("pthread_mutex_init failed");
		free(c);
		return NULL;
	}
	if (pthread_mutex_init(&c->signin, NULL) != 0) {
		log_warnx("pthread_mutex_init failed");
		pthread_mutex_destroy(&c->lock);
		free(c);
		return NULL;
	}
	c->cf = cf;
	c->serial = serial;
	c->password = password;
	c->name = name;
	return c;
}

static void
cloud_destroy(struct cloud *c)
{
	secret_free(c->token);
	pthread_mutex_destroy(&c->signin);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void
cloud_free(struct cloud *c)
{
	if (c == NULL || c->dying)
		return;
	/* Their done() may call in here again, or cancel each other. */
	c->dying = 1;
	c->busy++;
	while (c->ops != NULL)
		cloud_op_cancel(c->ops);
	if (--c->busy == 0)
		cloud_destroy(c);
}

/* Ends a stretch in which done() callbacks ran and c was still used
 * after them: frees c if one of them freed it meanwhile. */
static void
cloud_unbusy(struct cloud *c)
{
	if (--c->busy == 0 && c->dying)
		cloud_destroy(c);
}

unsigned
cloud_ops_running(const struct cloud *c)
{
	return c->nops;
}

void
cloud_abort(struct cloud *c)
{
	atomic_store(&c->aborting, 1);
}

/* Takes ownership of token (NULL forgets it); the old one is wiped. */
static void
cloud_set_token(struct cloud *c, char *token)
{
	char *old;

	pthread_mutex_lock(&c->lock);
	old = c->token;
	c->token = token;
	c->gen++;
	pthread_mutex_unlock(&c->lock);
	secret_free(old);
}

/* Whether there is a token; *gen gets its generation. */
static int
cloud_have_token(struct cloud *c, unsigned *gen)
{
	int have;

	pthread_mutex_lock(&c->lock);
	have = c->token != NULL;
	*gen = c->gen;
	pthread_mutex_unlock(&c->lock);
	return have;
}

/* <server_url><path>, malloc'ed; a trailing '/' on the server is dropped
 * so "https://host/" works too. */
static char *
cloud_server_url(const struct cloud *c, const char *path)
{
	const char *base = c->cf->server_url;
	size_t n;
	char *url;

	if (base == NULL || *base == '\0')
		base = CLOUD_DEFAULT_SERVER;
	n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	if (asprintf(&url, "%.*s%s", (int)n, base, path) == -1) {
		log_warnx("out of memory");
		return NULL;
	}
	return url;
}

static int
cloud_is_2xx(long status)
{
	return status >= 200 && status <= 299;
}

/* The result of a completed exchange, by its final status. */
static enum cloud_result
cloud_status_result(long status)
{
	if (cloud_is_2xx(status))
		return CLOUD_OK;
	if (status >= 500 && status <= 599)
		return CLOUD_ERR_NET;
	return CLOUD_ERR_REFUSED;
}

/* "HTTP/1.1 200 OK" or "HTTP/2 404": the status, or 0. */
static long
cloud_parse_status(const char *buf, size_t n)
{
	size_t i = 5;
	long st = 0;
	int digits = 0;

	while (i < n && buf[i] != ' ')
		i++;
	while (i < n && buf[i] == ' ')
		i++;
	for (; i < n && digits < 3 && buf[i] >= '0' && buf[i] <= '9'; i++) {
		st = st * 10 + (buf[i] - '0');
		digits++;
	}
	return digits == 3 ? st : 0;
}

/* The value of a "Content-Length:" line (not NUL-terminated), or -1. */
static long long
cloud_parse_length(const char *buf, size_t n)
{
	size_t i = sizeof("Content-Length:") - 1;
	long long v = 0;
	int digits = 0;

	while (i < n && (buf[i] == ' ' || buf[i] == '\t'))
		i++;
	for (; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) {
		if (v > (LLONG_MAX - 9) / 10)
			return -1;
		v = v * 10 + (buf[i] - '0');
		digits++;
	}
	while (i < n && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' ||
	    buf[i] == '\n'))
		i++;
	return digits > 0 && i == n ? v : -1;
}

/* A Location header's value, trimmed; the first one of a head wins. */
static void
cloud_header_location(struct cloud_xfer *x, const char *v, size_t n)
{
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' ||
	    v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (x->location != NULL || n == 0 || n > CLOUD_LOCATION_MAX)
		return;
	x->location = strndup(v, n);
}

/* The caller's cancel flag or cloud_op_cancel(), or the whole cloud
 * shutting down. */
static int
cloud_xfer_cancelled(const struct cloud_xfer *x)
{
	return x->cancelled ||
	    (x->cancel != NULL && atomic_load(x->cancel) != 0) ||
	    (x->abort != NULL && atomic_load(x->abort) != 0);
}

/* After a sink callback returned rc: n to go on, or 0 (curl then ends the
 * transfer) when the sink cancelled the operation or refused the bytes. */
static size_t
cloud_sink_outcome(struct cloud_xfer *x, int rc, size_t n)
{
	x->in_cb = 0;
	if (x->cancelled) {
		/* The sink cancelled the operation: it is gone. */
		x->stop = CLOUD_STOP_CANCEL;
		return 0;
	}
	if (rc != 0) {
		x->stop = CLOUD_STOP_SINK;
		return 0;
	}
	return n;
}

/*
 * Called for each line of every response head, redirects included: tracks
 * the status of the current response, and tells the sink the declared
 * length once a 2xx head is complete, before any body byte.
 */
static size_t
cloud_header_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct cloud_xfer *x = arg;
	size_t n = size * nitems;
	int rc;

	if (cloud_xfer_cancelled(x)) {
		x->stop = CLOUD_STOP_CANCEL;
		return 0;
	}
	if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		x->status = cloud_parse_status(buf, n);
		x->length = -1;
		x->headdone = 0;
		return n;
	}
	if (x->headdone)
		return n;	/* trailers */
	if (n > 15 && strncasecmp(buf, "Content-Length:", 15) == 0) {
		x->length = cloud_parse_length(buf, n);
		return n;
	}
	if (n > 9 && strncasecmp(buf, "Location:", 9) == 0) {
		cloud_header_location(x, buf + 9, n - 9);
		return n;
	}
	if (buf[0] != '\r' && buf[0] != '\n')
		return n;

	/* The blank line: the head is complete. */
	x->headdone = 1;
	if (x->status >= 300 && x->status <= 399) {
		/* Redirects are ours to follow (cloud_download): a body that
		 * never ends must not be read first. */
		x->stop = CLOUD_STOP_REDIRECT;
		return 0;
	}
	if (x->sink == NULL || x->sink->declared == NULL ||
	    !cloud_is_2xx(x->status) || x->length < 0)
		return n;
	x->in_cb = 1;
	rc = x->sink->declared((uint64_t)x->length, x->sink->arg);
	return cloud_sink_outcome(x, rc, n);
}


static size_t
cloud_write_sink(struct cloud_xfer *x, char *buf, size_t n)
{
	int rc;

	metrics_add(METRICS_BYTES_DOWN, n);
	x->in_cb = 1;
	rc = x->sink->data(buf, n, x->sink->arg);
	return cloud_sink_outcome(x, rc, n);
}

/* Room for need bytes of reply.  Grown by copying, the old buffer wiped
 * (realloc would leave copies of a token in freed memory), up to the cap:
 * an operation in flight holds what its reply needs, not 64 KiB. */
static int
cloud_reply_grow(struct cloud_xfer *x, size_t need)
{
	size_t cap = x->replycap > 0 ? x->replycap : CLOUD_REPLY_MIN;
	char *p;

	if (need <= x->replycap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap > CLOUD_REPLY_MAX + 1)
		cap = CLOUD_REPLY_MAX + 1;
	if ((p = malloc(cap)) == NULL)
		return -1;
	if (x->reply != NULL) {
		memcpy(p, x->reply, x->replylen);
		explicit_bzero(x->reply, x->replycap);
		free(x->reply);
	}
	x->reply = p;
	x->replycap = cap;
	return 0;
}

static size_t
cloud_write_cb(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct cloud_xfer *x = arg;
	size_t n = size * nmemb;

	if (cloud_xfer_cancelled(x)) {
		x->stop = CLOUD_STOP_CANCEL;
		return 0;
	}
	/* Every byte counts, whatever the status (issue 9). */
	x->received += n;
	if (x->max_bytes > 0 && x->received > x->max_bytes) {
		x->stop = CLOUD_STOP_CAP;
		return 0;
	}
	if (!cloud_is_2xx(x->status)) {
		/* An error page is never the payload: stop reading it.  (A
		 * redirect stopped at its head.) */
		x->stop = CLOUD_STOP_STATUS;
		return 0;
	}
	if (x->sink != NULL)
		return cloud_write_sink(x, buf, n);

	if (n > CLOUD_REPLY_MAX - x->replylen) {
		x->stop = CLOUD_STOP_TOO_BIG;
		return 0;
	}
	if (cloud_reply_grow(x, x->replylen + n + 1) == -1) {
		x->stop = CLOUD_STOP_NOMEM;
		return 0;
	}
	memcpy(x->reply + x->replylen, buf, n);
	x->replylen += n;
	x->reply[x->replylen] = '\0';
	return n;
}

static int
cloud_progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct cloud_xfer *x = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (cloud_xfer_cancelled(x)) {
		x->stop = CLOUD_STOP_CANCEL;
		return 1;
	}
	return 0;
}

/* The request body, read by curl (POSTFIELDS would leave the caller's
 * buffer in curl's hands after a cancel: this stops reading it). */
static size_t
cloud_read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct cloud_xfer *x = arg;
	size_t n = size * nitems;

	if (cloud_xfer_cancelled(x)) {
		x->stop = CLOUD_STOP_CANCEL;
		return CURL_READFUNC_ABORT;
	}
	if (n > x->bodylen - x->sent)
		n = x->bodylen - x->sent;
	memcpy(buf, (const char *)x->body + x->sent, n);
	x->sent += n;
	return n;
}

/* curl rewinds the body to resend it on a fresh connection. */
static int
cloud_seek_cb(void *arg, curl_off_t off, int origin)
{
	struct cloud_xfer *x = arg;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->bodylen) {
		x->stop = CLOUD_STOP_BODY;
		return CURL_SEEKFUNC_CANTSEEK;
	}
	x->sent = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

/* Forgets a reply, wiping it: it may hold tokens. */
static void
cloud_xfer_reset(struct cloud_xfer *x)
{
	if (x->reply != NULL) {
		explicit_bzero(x->reply, x->replycap);
		free(x->reply);
	}
	x->reply = NULL;
	x->replylen = x->replycap = 0;
	x->sent = 0;
	free(x->location);
	x->location = NULL;
	x->status = 0;
	x->length = -1;
	x->headdone = 0;
	x->stop = CLOUD_STOP_NONE;
}

static void
cloud_slist_free(struct curl_slist *l)
{
	struct curl_slist *p;

	/* curl copied the Authorization line: wipe its copy too. */
	for (p = l; p != NULL; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

/* The request headers, noting the token generation sent; NULL when out
 * of memory. */
static struct curl_slist *
cloud_headers(struct cloud *c, struct cloud_xfer *x)
{
	struct curl_slist *l = NULL, *t;
	char line[64], *auth = NULL;
	size_t n;
	int have;

	/* No "Expect: 100-continue" wait before an upload body. */
	if ((t = curl_slist_append(l, "Expect:")) == NULL)
		goto fail;
	l = t;
	if (x->ctype != NULL) {
		snprintf(line, sizeof(line), "Content-Type: %s", x->ctype);
		if ((t = curl_slist_append(l, line)) == NULL)
			goto fail;
		l = t;
	}
	if (x->bearer) {
		pthread_mutex_lock(&c->lock);
		x->gen = c->gen;
		have = c->token != NULL;
		if (have) {
			n = strlen(c->token) + sizeof("Authorization: Bearer ");
			if ((auth = malloc(n)) != NULL)
				snprintf(auth, n, "Authorization: Bearer %s",
				    c->token);
		}
		pthread_mutex_unlock(&c->lock);
		if (have) {
			t = auth != NULL ? curl_slist_append(l, auth) : NULL;
			secret_free(auth);
			if (t == NULL)
				goto fail;
			l = t;
		}
	}
	return l;
fail:
	cloud_slist_free(l);
	return NULL;
}

static int64_t
cloud_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* transfer_timeout in ms: the config's, or the default. */
static int64_t
cloud_timeout_ms(const struct cloud *c)
{
	double t = c->cf->transfer_timeout;

	return (int64_t)((t >= 1 ? t : CLOUD_TRANSFER_TIMEOUT) * 1000);
}

/* The deadline and the speed floor (issue 9): no transfer runs for ever,
 * nor trickles along. */
static void
cloud_setup_limits(struct cloud *c, CURL *h, const struct cloud_xfer *x)
{
	const struct config *cf = c->cf;
	int64_t ms = cloud_timeout_ms(c);

	if (x->deadline > 0) {
		ms = x->deadline - cloud_now_ms();
		if (ms < 1)
			ms = 1;
	}
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, cf->min_speed > 0 ?
	    (long)cf->min_speed : CLOUD_MIN_SPEED);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, cf->min_speed_time > 0 ?
	    (long)cf->min_speed_time : CLOUD_MIN_SPEED_TIME);
}

/* Options every handle gets; -1 when one that matters was refused. */
static int
cloud_setup(struct cloud *c, CURL *h, struct cloud_xfer *x, char *errbuf)
{
	const char *ca = c->cf->ca_file;
	char agent[96];

#if LIBCURL_VERSION_NUM >= 0x075500	/* 7.85.0: the _STR forms */
	if (curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") !=
	    CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") !=
	    CURLE_OK)
		return -1;
#else
	if (curl_easy_setopt(h, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK)
		return -1;
#endif
	if (curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK)
		return -1;
	/* CAINFO replaces the default bundle: with a hashed folder (see
	 * trust.h) nothing is parsed up front.  ca_file adds a private root
	 * to the folder; $SSL_CERT_FILE is used as lws uses it.  (With both,
	 * ca_file wins here: CAINFO takes one file.) */
	if (ca == NULL || *ca == '\0')
		ca = cloud_bundle;
	if ((ca != NULL || cloud_trust_dir != NULL) &&
	    curl_easy_setopt(h, CURLOPT_CAINFO, ca) != CURLE_OK)
		return -1;
	if (cloud_trust_dir != NULL &&
	    curl_easy_setopt(h, CURLOPT_CAPATH, cloud_trust_dir) != CURLE_OK)
		return -1;
	if (curl_easy_setopt(h, CURLOPT_URL, x->url) != CURLE_OK)
		return -1;

	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* Built per request, not kept per cloud: curl copies it. */
	snprintf(agent, sizeof(agent), "OpenGlow/%s",
	    proto_fw_version(c->cf->fw_version));
	curl_easy_setopt(h, CURLOPT_USERAGENT, agent);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CLOUD_CONNECT_TIMEOUT);
	cloud_setup_limits(c, h, x);
	/* A proxy's "200 Connection established" is not the reply. */
	curl_easy_setopt(h, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, cloud_header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cloud_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	/* Every transfer: a job's cancel or shutdown (cloud_abort) ends it
	 * within curl's progress period, even a stalled connect. */
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, cloud_progress_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	if (strcmp(x->method, "GET") == 0)
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	else {
		/* Read through cloud_read_cb, never copied. */
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)x->bodylen);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, cloud_read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, cloud_seek_cb);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
		if (strcmp(x->method, "POST") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, x->method);
	}
	return 0;
}


/* What a log line about x starts with: "[name: ][what: ]METHOD url", the
 * URL redacted.  One line then says which machine, which job, which call
 * and what went wrong. */
static void
cloud_head(const struct cloud_xfer *x, char *buf, size_t size)
{
	char where[CLOUD_URL_LOG];

	cloud_url_redact(x->url, where, sizeof(where));
	snprintf(buf, size, "%s%s%s%s%s %s", x->name != NULL ? x->name : "",
	    x->name != NULL ? ": " : "", x->what != NULL ? x->what : "",
	    x->what != NULL ? ": " : "", x->method != NULL ? x->method : "-",
	    where);
}

/* A handle set up for x: 0, or -1 with *r the failure (logged, but for a
 * cancel; nothing is left to clean up). */
static int
cloud_xfer_open(struct cloud *c, struct cloud_xfer *x, CURL **hp,
    struct curl_slist **hdrsp, char *errbuf, enum cloud_result *r)
{
	char head[CLOUD_HEAD_LOG];
	struct curl_slist *hdrs = NULL;
	CURL *h = NULL;

	cloud_xfer_reset(x);
	cloud_head(x, head, sizeof(head));
	if (!cloud_url_allowed(x->url)) {
		log_warnx("%s: not an http(s) URL, refused", head);
		*r = CLOUD_ERR_REFUSED;
		return -1;
	}
	*r = CLOUD_ERR_CANCELLED;
	if (cloud_xfer_cancelled(x))
		return -1;
	errbuf[0] = '\0';
	*r = CLOUD_ERR_NET;
	if ((h = curl_easy_init()) == NULL ||
	    (hdrs = cloud_headers(c, x)) == NULL) {
		log_warnx("%s: out of memory", head);
		goto fail;
	}
	if (cloud_setup(c, h, x, errbuf) == -1 ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK) {
		log_warnx("%s: libcurl refused a required option", head);
		*r = CLOUD_ERR_REFUSED;
		goto fail;
	}
	*hp = h;
	*hdrsp = hdrs;
	return 0;
fail:
	cloud_slist_free(hdrs);
	if (h != NULL)
		curl_easy_cleanup(h);
	return -1;
}

/*
 * How one exchange ended, h still open.  CLOUD_OK means a reply came and
 * x->status holds its code (whatever it is); anything else is the
 * transfer's failure, logged here.
 */
static enum cloud_result
cloud_xfer_outcome(struct cloud_xfer *x, CURL *h, CURLcode cc,
    const char *errbuf)
{
	char head[CLOUD_HEAD_LOG];

	cloud_head(x, head, sizeof(head));
	switch (x->stop) {
	case CLOUD_STOP_CANCEL:
		CLOUD_INFO(x->name, "%s: cancelled", head);
		return CLOUD_ERR_CANCELLED;
	case CLOUD_STOP_SINK:
		/* The sink's owner knows why, and says so in its own line. */
		log_debug("%s: the receiver refused the data", head);
		return CLOUD_ERR_SINK;
	case CLOUD_STOP_TOO_BIG:
		log_warnx("%s: reply over %d bytes, refused", head,
		    CLOUD_REPLY_MAX);
		return CLOUD_ERR_REFUSED;
	case CLOUD_STOP_NOMEM:
		log_warnx("%s: out of memory", head);
		return CLOUD_ERR_NET;
	case CLOUD_STOP_CAP:
		log_warnx("%s: more than %llu bytes received, refused "
		    "(max_job_size)", head, (unsigned long long)x->max_bytes);
		return CLOUD_ERR_REFUSED;
	case CLOUD_STOP_BODY:
		log_warnx("%s: the request body could not be sent again", head);
		return CLOUD_ERR_NET;
	case CLOUD_STOP_REDIRECT:
		/* x->status and x->location say where to. */
		log_debug("%s: %ld", head, x->status);
		return CLOUD_OK;
	case CLOUD_STOP_STATUS:
	case CLOUD_STOP_NONE:
		break;
	}
	if (cc == CURLE_ABORTED_BY_CALLBACK && x->stop == CLOUD_STOP_NONE) {
		/* Not our callbacks: evloop_stop() ended it (shutdown). */
		CLOUD_INFO(x->name, "%s: cancelled", head);
		return CLOUD_ERR_CANCELLED;
	}
	if (cc != CURLE_OK && x->stop != CLOUD_STOP_STATUS) {
		log_warnx("%s: %s%s", head, errbuf[0] != '\0' ?
		    errbuf : curl_easy_strerror(cc),
		    cc == CURLE_OPERATION_TIMEDOUT ? " ([SERVICE] "
		    "transfer_timeout, min_speed, min_speed_time)" : "");
		/* A forbidden scheme or a redirect loop will not get better
		 * by trying again. */
		if (cc == CURLE_UNSUPPORTED_PROTOCOL ||
		    cc == CURLE_TOO_MANY_REDIRECTS ||
		    cc == CURLE_URL_MALFORMAT)
			return CLOUD_ERR_REFUSED;
		return CLOUD_ERR_NET;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
	log_debug("%s: %ld", head, x->status);
	return CLOUD_OK;
}

/* One exchange, blocking: see cloud_xfer_outcome(). */
static enum cloud_result
cloud_perform(struct cloud *c, struct cloud_xfer *x)
{
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *hdrs;
	enum cloud_result r;
	CURL *h;

	if (cloud_xfer_open(c, x, &h, &hdrs, errbuf, &r) == -1)
		return r;
	r = cloud_xfer_outcome(x, h, curl_easy_perform(h), errbuf);
	cloud_slist_free(hdrs);
	curl_easy_cleanup(h);
	return r;
}

/* A JSON reply's non-empty string member, or NULL. */
static const char *
cloud_json_string(const cJSON *obj, const char *name)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsString(j) || j->valuestring == NULL ||
	    j->valuestring[0] == '\0')
		return NULL;
	return j->valuestring;
}

/* An action type fit for a path segment: it comes from the service. */
static int
cloud_type_ok(const char *type)
{
	size_t n;

	if (type == NULL || (n = strlen(type)) == 0 || n > CLOUD_TYPE_MAX)
		return 0;
	return strspn(type, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* scheme://host:port of a URL into buf, lower case, the default port
 * made explicit; -1 when it does not parse. */
static int
cloud_origin(const char *url, char *buf, size_t len)
{
	char *scheme = NULL, *host = NULL, *port = NULL;
	CURLU *u;
	size_t i;
	int rc = -1;

	if ((u = curl_url()) == NULL)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ==
	    CURLUE_OK &&
	    (size_t)snprintf(buf, len, "%s://%s:%s", scheme, host, port) <
	    len) {
		for (i = 0; buf[i] != '\0'; i++)
			if (buf[i] >= 'A' && buf[i] <= 'Z')
				buf[i] = (char)(buf[i] - 'A' + 'a');
		rc = 0;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

/* Whether a download hop to url carries the Bearer token (download_auth):
 * never to a third host unless the config says always. */
static int
cloud_dl_bearer(struct cloud *c, const char *url)
{
	char a[CLOUD_URL_LOG], b[CLOUD_URL_LOG], *server;
	int same;

	if (!cloud_url_allowed(url))
		return 0;
	switch (c->cf->download_auth) {
	case CONFIG_DL_AUTH_ALWAYS:
		return 1;
	case CONFIG_DL_AUTH_NEVER:
		return 0;
	default:
		break;
	}
	if ((server = cloud_server_url(c, "/")) == NULL)
		return 0;
	same = cloud_origin(server, a, sizeof(a)) == 0 &&
	    cloud_origin(url, b, sizeof(b)) == 0 && strcmp(a, b) == 0;
	free(server);
	return same;
}

/* Location resolved against the URL it came from, malloc'ed, or NULL. */
static char *
cloud_resolve(const char *base, const char *location)
{
	char *out = NULL, *dup = NULL;
	CURLU *u;

	if ((u = curl_url()) == NULL)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_URL, location, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &out, 0) == CURLUE_OK)
		dup = strdup(out);
	curl_free(out);
	curl_url_cleanup(u);
	return dup;
}

/* The final status of a download, logged when it is no success. */
static enum cloud_result
cloud_dl_status(const struct cloud *c, const struct cloud_xfer *x)
{
	char head[CLOUD_HEAD_LOG];
	enum cloud_result r;

	if ((r = cloud_status_result(x->status)) == CLOUD_OK)
		return r;
	cloud_head(x, head, sizeof(head));
	if ((x->status == 401 || x->status == 403) && !x->bearer)
		log_warnx("%s: status %ld: the host wanted credentials, and "
		    "the machine's token went only where [SERVICE] "
		    "download_auth = %s allows (same-origin, always, never)",
		    head, x->status, c->cf->download_auth ==
		    CONFIG_DL_AUTH_NEVER ? "never" : "same-origin");
	else
		log_warnx("%s: status %ld", head, x->status);
	return r;
}

/* --- operations: the policy, whoever drives it --- */

static void
cloud_op_init(struct cloud_op *op, struct cloud *c, struct evloop *ev,
    enum cloud_kind kind)
{
	memset(op, 0, sizeof(*op));
	op->c = c;
	op->ev = ev;
	op->kind = kind;
	op->x.name = c->name;
	op->x.abort = &c->aborting;
	op->x.length = -1;
}

/* Frees what op holds, wiping the secrets; not op itself. */
static void
cloud_op_clear(struct cloud_op *op)
{
	if (op->body != NULL) {
		explicit_bzero(op->body, strlen(op->body));
		cJSON_free(op->body);
	}
	secret_free(op->out);
	cloud_xfer_reset(&op->x);
	cloud_slist_free(op->hdrs);
	if (op->easy != NULL)
		curl_easy_cleanup(op->easy);
	free(op->url);
	free(op->label);
}

static enum cloud_step
cloud_op_end(struct cloud_op *op, enum cloud_result r)
{
	op->result = r;
	return CLOUD_STEP_DONE;
}

/* The step of a request about to go: one with the Bearer token and no
 * token yet signs in first. */
static enum cloud_step
cloud_op_begin(struct cloud_op *op)
{
	unsigned gen;

	op->fresh = 0;
	if (op->x.bearer && !cloud_have_token(op->c, &gen)) {
		op->wait_gen = gen;
		op->fresh = 1;	/* a 401 on it is no expiry: no replay */
		return CLOUD_STEP_SIGN_IN;
	}
	return CLOUD_STEP_SEND;
}

/* The first step, once the call is set up (op->result says how that
 * went): a cancel raised before means not even a sign-in. */
static enum cloud_step
cloud_op_first(struct cloud_op *op)
{
	if (op->result != CLOUD_OK)
		return CLOUD_STEP_DONE;
	if (cloud_xfer_cancelled(&op->x))
		return cloud_op_end(op, CLOUD_ERR_CANCELLED);
	return cloud_op_begin(op);
}

/* After the sign-in a request waited for. */
static enum cloud_step
cloud_op_signed_in(struct cloud_op *op, enum cloud_result r)
{
	char head[CLOUD_HEAD_LOG];

	if (r == CLOUD_OK)
		return CLOUD_STEP_SEND;
	if (r != CLOUD_ERR_CANCELLED) {
		/* The sign-in said why; this line says what it cost. */
		cloud_head(&op->x, head, sizeof(head));
		log_warnx("%s: not sent, no session", head);
	}
	return cloud_op_end(op, r);
}

/* The sign-in request: POST {"serial":"S<serial>","password":"..."}. */
static enum cloud_result
cloud_sign_in_prepare(struct cloud_op *op)
{
	struct cloud *c = op->c;
	enum cloud_result r = CLOUD_ERR_REFUSED;
	cJSON *req = NULL;
	char serial[64];

	op->x.method = "POST";
	op->x.ctype = "application/json";
	serial[0] = '\0';
	if (c->serial == NULL || *c->serial == '\0' ||
	    c->password == NULL || *c->password == '\0') {
		log_warnx("%s%ssign-in: no serial or password configured",
		    CLOUD_NAME(c));
		goto done;
	}
	if ((size_t)snprintf(serial, sizeof(serial), "S%s", c->serial) >=
	    sizeof(serial)) {
		log_warnx("%s%ssign-in: the serial is too long", CLOUD_NAME(c));
		goto done;
	}
	r = CLOUD_ERR_NET;	/* out of memory: worth another try later */
	if ((req = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(req, "serial", serial) == NULL ||
	    cJSON_AddStringToObject(req, "password", c->password) == NULL ||
	    (op->body = cJSON_PrintUnformatted(req)) == NULL ||
	    (op->url = cloud_server_url(c, "/machines/sign_in")) == NULL) {
		log_warnx("%s%ssign-in: out of memory", CLOUD_NAME(c));
		goto done;
	}
	op->x.url = op->url;
	op->x.body = op->body;
	op->x.bodylen = strlen(op->body);
	r = CLOUD_OK;
done:
	explicit_bzero(serial, sizeof(serial));
	cloud_json_free(req);
	return r;
}

/* The sign-in's reply: keeps auth_token, hands ws_token out (or wipes it
 * when the sign-in was only for a fresh auth_token). */
static enum cloud_result
cloud_sign_in_reply(struct cloud_op *op)
{
	struct cloud *c = op->c;
	const struct cloud_xfer *x = &op->x;
	enum cloud_result r = CLOUD_ERR_REFUSED;
	char *ws = NULL, *auth = NULL;
	cJSON *rep = NULL;
	const char *s;

	if (x->status == 401 || x->status == 403) {
		/* The caller says it once per streak, not once a try. */
		log_debug("%s%ssign-in refused (HTTP %ld)", CLOUD_NAME(c),
		    x->status);
		return CLOUD_ERR_AUTH;
	}
	if (x->status != 200) {
		log_warnx("%s%ssign-in: unexpected status %ld", CLOUD_NAME(c),
		    x->status);
		r = cloud_status_result(x->status);
		return r == CLOUD_OK ? CLOUD_ERR_REFUSED : r;
	}
	if (x->reply == NULL ||
	    (rep = cJSON_ParseWithLength(x->reply, x->replylen)) == NULL ||
	    !cJSON_IsObject(rep)) {
		log_warnx("%s%ssign-in: the reply is not a JSON object",
		    CLOUD_NAME(c));
		goto done;
	}
	if ((s = cloud_json_string(rep, "ws_token")) == NULL ||
	    (ws = strdup(s)) == NULL ||
	    (s = cloud_json_string(rep, "auth_token")) == NULL ||
	    (auth = strdup(s)) == NULL) {
		log_warnx("%s%ssign-in: the reply lacks ws_token or "
		    "auth_token", CLOUD_NAME(c));
		goto done;
	}
	cloud_set_token(c, auth);
	auth = NULL;
	if (op->kind == CLOUD_OP_SIGN_IN) {
		op->out = ws;
		ws = NULL;
	}
	CLOUD_INFO(c->name, "%s%ssigned in", CLOUD_NAME(c));
	r = CLOUD_OK;
done:
	cloud_json_free(rep);
	secret_free(ws);	/* single-use, and not ours to use */
	secret_free(auth);
	return r;
}

static enum cloud_result
cloud_probe_prepare(struct cloud_op *op)
{
	op->x.method = "GET";
	op->x.bearer = 1;
	op->replays = 1;
	if ((op->url = cloud_server_url(op->c, "/update/current")) == NULL)
		return CLOUD_ERR_NET;
	op->x.url = op->url;
	return CLOUD_OK;
}

static enum cloud_result
cloud_probe_reply(struct cloud_op *op)
{
	struct cloud *c = op->c;
	enum cloud_result r;
	cJSON *rep = NULL;
	const char *v;

	if ((r = cloud_status_result(op->x.status)) != CLOUD_OK) {
		log_warnx("%s%sfirmware probe: status %ld", CLOUD_NAME(c),
		    op->x.status);
		return r;
	}
	r = CLOUD_ERR_REFUSED;
	if (op->x.reply == NULL || (rep = cJSON_ParseWithLength(op->x.reply,
	    op->x.replylen)) == NULL ||
	    (v = cloud_json_string(rep, "version")) == NULL)
		log_warnx("%s%sfirmware probe: no version in the reply",
		    CLOUD_NAME(c));
	else if ((op->out = strdup(v)) == NULL) {
		log_warn("strdup");
		r = CLOUD_ERR_NET;
	} else
		r = CLOUD_OK;
	cJSON_Delete(rep);
	return r;
}

int
cloud_fw_probe_check(const struct mlog *lg, enum cloud_result r,
    const char *offered, const char *mine, int say_current)
{
	if (r != CLOUD_OK || offered == NULL) {
		MLOG(lg, LOG_WARNING, 0, "firmware probe failed: %s",
		    cloud_strerror(r));
		return -1;
	}
	/* Nothing is ever installed: the emulator only says what it saw. */
	if (strcmp(offered, mine) != 0)
		MLOG(lg, LOG_NOTICE, 0, "service offers firmware %s, machine "
		    "runs %s (nothing is installed)", offered, mine);
	else if (say_current)
		MLOG(lg, LOG_INFO, 0, "firmware %s is current", mine);
	return 0;
}

/* With endpoint: PUT there, no Authorization (presigned: the URL carries
 * its own, and a Bearer header would make the storage refuse it).
 * Without: POST <server>/api/machines/<type>/<id> with Bearer. */
static enum cloud_result
cloud_upload_prepare(struct cloud_op *op, const char *endpoint,
    const char *type, int64_t id, const void *jpeg, size_t len)
{
	char path[96], where[CLOUD_URL_LOG];

	if (jpeg == NULL && len > 0)
		return CLOUD_ERR_REFUSED;
	if (asprintf(&op->label, "%.*s %lld upload", CLOUD_TYPE_MAX,
	    type != NULL ? type : "?", (long long)id) == -1) {
		op->label = NULL;
		return CLOUD_ERR_NET;
	}
	op->x.what = op->label;
	op->x.ctype = "image/jpeg";
	op->x.body = jpeg;
	op->x.bodylen = len;
	if (endpoint != NULL) {
		if (!cloud_url_allowed(endpoint)) {
			cloud_url_redact(endpoint, where, sizeof(where));
			log_warnx("%s%s%s: endpoint %s: not an http(s) URL",
			    CLOUD_NAME(op->c), op->label, where);
			return CLOUD_ERR_REFUSED;
		}
		op->x.method = "PUT";
		op->url = strdup(endpoint);
	} else {
		if (!cloud_type_ok(type)) {
			log_warnx("%s%s%s: bad action type",
			    CLOUD_NAME(op->c), op->label);
			return CLOUD_ERR_REFUSED;
		}
		snprintf(path, sizeof(path), "/api/machines/%s/%lld", type,
		    (long long)id);
		op->x.method = "POST";
		op->x.bearer = 1;
		op->replays = 1;
		op->url = cloud_server_url(op->c, path);
	}
	if ((op->x.url = op->url) == NULL)
		return CLOUD_ERR_NET;
	return CLOUD_OK;
}

static enum cloud_result
cloud_upload_reply(struct cloud_op *op)
{
	char head[CLOUD_HEAD_LOG];
	enum cloud_result r;

	if ((r = cloud_status_result(op->x.status)) != CLOUD_OK) {
		cloud_head(&op->x, head, sizeof(head));
		log_warnx("%s: status %ld", head, op->x.status);
	}
	if (r == CLOUD_OK)
		metrics_add(METRICS_BYTES_UP, op->x.bodylen);
	return r;
}

static enum cloud_result
cloud_download_prepare(struct cloud_op *op, const char *url,
    const struct cloud_sink *sink, const char *what)
{
	if (sink == NULL || sink->data == NULL)
		return CLOUD_ERR_REFUSED;
	op->sink = *sink;
	op->x.sink = &op->sink;
	op->x.method = "GET";
	op->x.max_bytes = sink->max_bytes;
	op->x.deadline = cloud_now_ms() + cloud_timeout_ms(op->c);
	op->replays = 1;
	if ((url != NULL && (op->url = strdup(url)) == NULL) ||
	    (what != NULL && (op->label = strdup(what)) == NULL))
		return CLOUD_ERR_NET;
	op->x.url = op->url;
	op->x.what = op->label;
	op->x.bearer = cloud_dl_bearer(op->c, op->url);
	return CLOUD_OK;
}

/* After a download hop: the next one, or the end. */
static enum cloud_step
cloud_dl_next(struct cloud_op *op)
{
	struct cloud_xfer *x = &op->x;
	char head[CLOUD_HEAD_LOG], *next;

	if (x->status < 300 || x->status > 399 || x->location == NULL)
		return cloud_op_end(op, cloud_dl_status(op->c, x));
	cloud_head(x, head, sizeof(head));
	if (op->hop == (int)CLOUD_MAX_REDIRS) {
		log_warnx("%s: more than %ld redirects, refused", head,
		    CLOUD_MAX_REDIRS);
		return cloud_op_end(op, CLOUD_ERR_REFUSED);
	}
	if ((next = cloud_resolve(x->url, x->location)) == NULL ||
	    !cloud_url_allowed(next)) {
		log_warnx("%s: redirect to a URL that is not http(s), "
		    "refused", head);
		free(next);
		return cloud_op_end(op, CLOUD_ERR_REFUSED);
	}
	free(op->url);
	x->url = op->url = next;
	op->hop++;
	x->bearer = cloud_dl_bearer(op->c, next);
	return cloud_op_begin(op);
}

/* After an exchange: a 401 on an older token is replayed once with a
 * fresh one; otherwise the kind of call reads the reply. */
static enum cloud_step
cloud_op_sent(struct cloud_op *op, enum cloud_result r)
{
	char head[CLOUD_HEAD_LOG];

	if (r != CLOUD_OK)
		return cloud_op_end(op, r);
	if (op->x.bearer && op->x.status == 401 && !op->fresh &&
	    op->replays > 0) {
		op->replays--;
		cloud_head(&op->x, head, sizeof(head));
		CLOUD_INFO(op->x.name, "%s: token expired, signing in again",
		    head);
		op->wait_gen = op->x.gen;
		return CLOUD_STEP_SIGN_IN;
	}
	switch (op->kind) {
	case CLOUD_OP_SIGN_IN:
	case CLOUD_OP_REFRESH:
		return cloud_op_end(op, cloud_sign_in_reply(op));
	case CLOUD_OP_PROBE:
		return cloud_op_end(op, cloud_probe_reply(op));
	case CLOUD_OP_UPLOAD:
		return cloud_op_end(op, cloud_upload_reply(op));
	case CLOUD_OP_DOWNLOAD:
		break;
	}
	return cloud_dl_next(op);
}

/* --- the blocking driver --- */

static enum cloud_result	cloud_sign_in_locked(struct cloud *, char **);

/*
 * A fresh auth token, replacing the one of generation gen: a sign-in,
 * unless another thread got a newer token while we waited for our turn.
 */
static enum cloud_result
cloud_refresh(struct cloud *c, unsigned gen)
{
	enum cloud_result r = CLOUD_OK;
	unsigned now;

	pthread_mutex_lock(&c->signin);
	pthread_mutex_lock(&c->lock);
	now = c->gen;
	pthread_mutex_unlock(&c->lock);
	if (now == gen)
		r = cloud_sign_in_locked(c, NULL);
	pthread_mutex_unlock(&c->signin);
	return r;
}

/* Runs op's steps to the end, each request with curl_easy_perform(). */
static enum cloud_result
cloud_run(struct cloud_op *op)
{
	enum cloud_step s = cloud_op_first(op);

	for (;;) {
		switch (s) {
		case CLOUD_STEP_SEND:
			s = cloud_op_sent(op, cloud_perform(op->c, &op->x));
			break;
		case CLOUD_STEP_SIGN_IN:
			s = cloud_op_signed_in(op, cloud_refresh(op->c,
			    op->wait_gen));
			break;
		case CLOUD_STEP_DONE:
			return op->result;
		}
	}
}

/* The sign-in itself; the caller holds c->signin.  ws_token NULL: for
 * the auth token alone. */
static enum cloud_result
cloud_sign_in_locked(struct cloud *c, char **ws_token)
{
	struct cloud_op op;
	enum cloud_result r;

	cloud_op_init(&op, c, NULL, ws_token != NULL ? CLOUD_OP_SIGN_IN :
	    CLOUD_OP_REFRESH);
	op.result = cloud_sign_in_prepare(&op);
	r = cloud_run(&op);
	if (ws_token != NULL) {
		*ws_token = op.out;
		op.out = NULL;
	}
	cloud_op_clear(&op);
	return r;
}

enum cloud_result
cloud_sign_in(struct cloud *c, char **ws_token)
{
	enum cloud_result r;

	pthread_mutex_lock(&c->signin);
	r = cloud_sign_in_locked(c, ws_token);
	pthread_mutex_unlock(&c->signin);
	return r;
}

enum cloud_result
cloud_fw_probe(struct cloud *c, char **version)
{
	struct cloud_op op;
	enum cloud_result r;

	cloud_op_init(&op, c, NULL, CLOUD_OP_PROBE);
	op.result = cloud_probe_prepare(&op);
	r = cloud_run(&op);
	*version = op.out;
	op.out = NULL;
	cloud_op_clear(&op);
	return r;
}

enum cloud_result
cloud_upload(struct cloud *c, const char *endpoint, const char *type,
    int64_t id, const void *jpeg, size_t len)
{
	struct cloud_op op;
	enum cloud_result r;

	cloud_op_init(&op, c, NULL, CLOUD_OP_UPLOAD);
	op.result = cloud_upload_prepare(&op, endpoint, type, id, jpeg, len);
	r = cloud_run(&op);
	cloud_op_clear(&op);
	return r;
}

enum cloud_result
cloud_download(struct cloud *c, const char *url,
    const struct cloud_sink *sink, const atomic_int *cancel, const char *what)
{
	struct cloud_op op;
	enum cloud_result r;

	cloud_op_init(&op, c, NULL, CLOUD_OP_DOWNLOAD);
	op.x.cancel = cancel;
	op.result = cloud_download_prepare(&op, url, sink, what);
	r = cloud_run(&op);
	cloud_op_clear(&op);
	return r;
}

/*
 * --- the asynchronous driver: the same steps on an evloop ---
 *
 * A started op runs its first step from a 0 ms timer (its kick), so done()
 * never runs inside *_start.  A request goes to the loop's multi; its end
 * (cloud_async_sent) runs the next step.  A sign-in step waits in
 * c->waiters for the cloud's one re-sign-in (c->refresh, an op of its
 * own), started by the first op that needs it.
 */

static void	cloud_async_run(struct cloud_op *, enum cloud_step);

static void
cloud_op_free(struct cloud_op *op)
{
	cloud_op_clear(op);
	free(op);
}

static void
cloud_op_closed(uv_handle_t *h)
{
	cloud_op_free(h->data);
}

/* Frees a finished op once nothing refers to it: a transfer still in the
 * multi frees it when it ends, a kick handle once closed. */
static void
cloud_op_release(struct cloud_op *op)
{
	if (op->easy != NULL)
		return;
	if (op->kick_open) {
		op->kick_open = 0;
		uv_close((uv_handle_t *)&op->kick, cloud_op_closed);
		return;
	}
	cloud_op_free(op);
}

static struct cloud_op *
cloud_op_new(struct cloud *c, struct evloop *ev, enum cloud_kind kind)
{
	struct cloud_op *op;

	if ((op = malloc(sizeof(*op))) == NULL) {
		log_warn("%s%scloud operation", CLOUD_NAME(c));
		return NULL;
	}
	cloud_op_init(op, c, ev, kind);
	op->next = c->ops;
	if (c->ops != NULL)
		c->ops->prev = op;
	c->ops = op;
	c->nops++;
	return op;
}

static void
cloud_op_unlink(struct cloud *c, struct cloud_op *op)
{
	if (op->prev != NULL)
		op->prev->next = op->next;
	else
		c->ops = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	op->prev = op->next = NULL;
	c->nops--;
}

static void
cloud_waiters_remove(struct cloud *c, struct cloud_op *op)
{
	struct cloud_op **p;

	for (p = &c->waiters; *p != NULL; p = &(*p)->wnext)
		if (*p == op) {
			*p = op->wnext;
			break;
		}
	op->wnext = NULL;
	op->waiting = 0;
}

static void	cloud_refreshed(struct cloud *, enum cloud_result);

/*
 * The end of an op: detached from its cloud, its done() called with the
 * result, then freed (now or when its transfer lets go of it).  Nothing
 * of the caller's is touched after done(): it may free the cloud.
 */
static void
cloud_op_finish(struct cloud_op *op)
{
	struct cloud *c = op->c;
	char *out = op->out;

	op->out = NULL;
	cloud_op_unlink(c, op);
	op->c = NULL;
	/* From now on its callbacks refuse everything. */
	op->x.cancelled = 1;
	op->x.abort = NULL;
	switch (op->kind) {
	case CLOUD_OP_SIGN_IN:
		op->done.token(op->arg, op->result, out);
		break;
	case CLOUD_OP_PROBE:
		op->done.text(op->arg, op->result, out);
		break;
	case CLOUD_OP_UPLOAD:
	case CLOUD_OP_DOWNLOAD:
		op->done.plain(op->arg, op->result);
		break;
	case CLOUD_OP_REFRESH:
		secret_free(out);
		cloud_refreshed(c, op->result);
		break;
	}
	cloud_op_release(op);
}

/* The cloud's re-sign-in ended: every op waiting for it goes on. */
static void
cloud_refreshed(struct cloud *c, enum cloud_result r)
{
	struct cloud_op *w;

	c->refresh = NULL;
	c->busy++;
	while ((w = c->waiters) != NULL) {
		c->waiters = w->wnext;
		w->wnext = NULL;
		w->waiting = 0;
		cloud_async_run(w, cloud_op_signed_in(w, r));
	}
	cloud_unbusy(c);
}

/* A sign-in step: waits for the re-sign-in under way, or starts it;
 * a token newer than the one to replace is used at once. */
static void
cloud_async_wait(struct cloud_op *op)
{
	struct cloud *c = op->c;
	struct cloud_op *r;
	unsigned gen;

	(void)cloud_have_token(c, &gen);
	if (gen != op->wait_gen) {
		cloud_async_run(op, cloud_op_signed_in(op, CLOUD_OK));
		return;
	}
	op->wnext = c->waiters;
	c->waiters = op;
	op->waiting = 1;
	if (c->refresh != NULL)
		return;
	if ((r = cloud_op_new(c, op->ev, CLOUD_OP_REFRESH)) == NULL) {
		cloud_refreshed(c, CLOUD_ERR_NET);
		return;
	}
	c->refresh = r;
	r->result = cloud_sign_in_prepare(r);
	cloud_async_run(r, cloud_op_first(r));
}

/* A transfer left the multi (evloop_stop() ends it too). */
static void
cloud_async_sent(void *arg, CURL *easy, CURLcode cc)
{
	struct cloud_op *op = arg;
	enum cloud_result r = CLOUD_ERR_CANCELLED;

	if (op->c != NULL)
		r = cloud_xfer_outcome(&op->x, easy, cc, op->errbuf);
	curl_easy_cleanup(easy);
	op->easy = NULL;
	cloud_slist_free(op->hdrs);
	op->hdrs = NULL;
	if (op->c == NULL) {
		/* Cancelled while in flight: done() ran, memory is left. */
		cloud_op_release(op);
		return;
	}
	cloud_async_run(op, cloud_op_sent(op, r));
}

/* The request in op->x into the loop's multi: 0, or -1 with op->result
 * the failure (logged). */
static int
cloud_async_send(struct cloud_op *op)
{
	char head[CLOUD_HEAD_LOG];
	enum cloud_result r;

	if (cloud_xfer_open(op->c, &op->x, &op->easy, &op->hdrs, op->errbuf,
	    &r) == -1) {
		op->result = r;
		return -1;
	}
	if (evloop_http_start(op->ev, op->easy, cloud_async_sent, op) == 0)
		return 0;
	curl_easy_cleanup(op->easy);
	op->easy = NULL;
	cloud_slist_free(op->hdrs);
	op->hdrs = NULL;
	cloud_head(&op->x, head, sizeof(head));
	if (evloop_stopping(op->ev)) {
		CLOUD_INFO(op->x.name, "%s: cancelled, the loop is stopping",
		    head);
		op->result = CLOUD_ERR_CANCELLED;
	} else {
		log_warnx("%s: the transfer could not start", head);
		op->result = CLOUD_ERR_NET;
	}
	return -1;
}

static void
cloud_async_run(struct cloud_op *op, enum cloud_step s)
{
	switch (s) {
	case CLOUD_STEP_SEND:
		if (cloud_async_send(op) == 0)
			return;
		break;
	case CLOUD_STEP_SIGN_IN:
		cloud_async_wait(op);
		return;
	case CLOUD_STEP_DONE:
		break;
	}
	cloud_op_finish(op);
}

static void
cloud_async_kick(uv_timer_t *t)
{
	struct cloud_op *op = t->data;

	cloud_async_run(op, cloud_op_first(op));
}

/* A new op of c, or NULL when nothing may start (has_done: the caller
 * gave a done()). */
static struct cloud_op *
cloud_async_new(struct cloud *c, struct evloop *ev, enum cloud_kind kind,
    int has_done, void *arg)
{
	struct cloud_op *op;

	if (c == NULL || ev == NULL || !has_done || c->dying ||
	    (op = cloud_op_new(c, ev, kind)) == NULL)
		return NULL;
	op->arg = arg;
	if (uv_timer_init(evloop_uv(ev), &op->kick) != 0) {
		log_warnx("%s%scannot start a cloud operation", CLOUD_NAME(c));
		cloud_op_unlink(c, op);
		free(op);
		return NULL;
	}
	op->kick.data = op;
	op->kick_open = 1;
	return op;
}

/* Its first step on the next loop pass, prepared says how the set-up
 * went (a failure then ends it there). */
static struct cloud_op *
cloud_async_go(struct cloud_op *op, enum cloud_result prepared)
{
	op->result = prepared;
	uv_timer_start(&op->kick, cloud_async_kick, 0, 0);
	return op;
}

struct cloud_op *
cloud_sign_in_start(struct cloud *c, struct evloop *ev,
    cloud_token_done done, void *arg)
{
	struct cloud_op *op;

	if ((op = cloud_async_new(c, ev, CLOUD_OP_SIGN_IN, done != NULL,
	    arg)) == NULL)
		return NULL;
	op->done.token = done;
	return cloud_async_go(op, cloud_sign_in_prepare(op));
}

struct cloud_op *
cloud_fw_probe_start(struct cloud *c, struct evloop *ev,
    cloud_text_done done, void *arg)
{
	struct cloud_op *op;

	if ((op = cloud_async_new(c, ev, CLOUD_OP_PROBE, done != NULL,
	    arg)) == NULL)
		return NULL;
	op->done.text = done;
	return cloud_async_go(op, cloud_probe_prepare(op));
}

struct cloud_op *
cloud_upload_start(struct cloud *c, struct evloop *ev, const char *endpoint,
    const char *type, int64_t id, const void *jpeg, size_t len,
    cloud_done done, void *arg)
{
	struct cloud_op *op;

	if ((op = cloud_async_new(c, ev, CLOUD_OP_UPLOAD, done != NULL,
	    arg)) == NULL)
		return NULL;
	op->done.plain = done;
	return cloud_async_go(op, cloud_upload_prepare(op, endpoint, type,
	    id, jpeg, len));
}

struct cloud_op *
cloud_download_start(struct cloud *c, struct evloop *ev, const char *url,
    const struct cloud_sink *sink, const char *what, cloud_done done,
    void *arg)
{
	struct cloud_op *op;

	if ((op = cloud_async_new(c, ev, CLOUD_OP_DOWNLOAD, done != NULL,
	    arg)) == NULL)
		return NULL;
	op->done.plain = done;
	return cloud_async_go(op, cloud_download_prepare(op, url, sink,
	    what));
}

/*
 * Makes curl look at a transfer now, not at its next event: pausing and
 * resuming schedules it to run at once, its callbacks then see the cancel
 * and end it.  (evloop has no call to take one transfer out.)
 */
static void
cloud_async_poke(CURL *easy)
{
	curl_easy_pause(easy, CURLPAUSE_ALL);
	curl_easy_pause(easy, CURLPAUSE_CONT);
}

void
cloud_op_cancel(struct cloud_op *op)
{
	char head[CLOUD_HEAD_LOG];
	struct cloud *c;

	if (op == NULL || (c = op->c) == NULL)
		return;
	if (op->waiting)
		cloud_waiters_remove(c, op);
	if (op->kick_open)
		uv_timer_stop(&op->kick);
	op->x.cancelled = 1;
	op->x.abort = NULL;
	cloud_head(&op->x, head, sizeof(head));
	CLOUD_INFO(op->x.name, "%s: cancelled", head);
	secret_free(op->out);
	op->out = NULL;
	op->result = CLOUD_ERR_CANCELLED;
	/* Inside its own sink callback, curl hears of it on return. */
	if (op->easy != NULL && !op->x.in_cb)
		cloud_async_poke(op->easy);
	cloud_op_finish(op);
}
