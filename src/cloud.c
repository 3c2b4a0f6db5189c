/*
 * cloud: see cloud.h.  One curl easy handle per request: the calls come from
 * several threads and a handle is cheap next to a TLS handshake, so the only
 * shared state is the auth token, kept under a mutex.
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

#include "cloud.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "trust.h"

#define CLOUD_DEFAULT_SERVER	"https://app.glowforge.com"
#define CLOUD_DEFAULT_FW	"2.6.0-2228"	/* what the reference sends */
#define CLOUD_REPLY_MAX		(64 * 1024)	/* JSON replies are tiny */
#define CLOUD_CONNECT_TIMEOUT	10L		/* seconds */
#define CLOUD_TRANSFER_TIMEOUT	900.0		/* seconds, default */
#define CLOUD_MIN_SPEED		1024L		/* bytes/s, default */
#define CLOUD_MIN_SPEED_TIME	30L		/* seconds, default */
#define CLOUD_LOCATION_MAX	4096		/* bytes of a Location */
#define CLOUD_MAX_REDIRS	5L
#define CLOUD_URL_LOG		256		/* bytes of a URL in a log line */
#define CLOUD_HEAD_LOG		(CLOUD_URL_LOG + 64)	/* "what: METHOD url" */
#define CLOUD_TYPE_MAX		32		/* action type in a legacy path */

struct cloud {
	const struct config	*cf;
	/* One sign-in at a time: threads that all get a 401 on the same
	 * expired token then sign in once between them, not once each. */
	pthread_mutex_t		 signin;
	pthread_mutex_t		 lock;		/* guards token, gen */
	char			*token;		/* auth_token, or NULL */
	unsigned		 gen;		/* bumped with each token */
	char			 agent[96];	/* User-Agent */
	char			*trust_dir;	/* hashed roots, or NULL */
	char			*bundle;	/* $SSL_CERT_FILE, or NULL */
	atomic_int		 aborting;	/* cloud_abort(): end every call */
};

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
	unsigned		 gen;		/* of the token sent */
	uint64_t		 max_bytes;	/* over all hops; 0: none */
	uint64_t		 received;	/* bytes, over all hops */
	int64_t			 deadline;	/* ms, monotonic; 0: per hop */

	/* Where the reply body goes: a sink, or else the reply buffer. */
	const struct cloud_sink	*sink;
	const atomic_int	*cancel;
	const atomic_int	*abort;		/* the cloud's: shutdown */
	char			*reply;		/* CLOUD_REPLY_MAX + 1 bytes */
	size_t			 replylen;

	/* The current response head, as the header callback sees it. */
	long			 status;
	long long		 length;	/* Content-Length, or -1 */
	int			 headdone;
	char			*location;	/* of a 3xx head, or NULL */
	enum cloud_stop		 stop;
};

static enum cloud_result	cloud_sign_in_locked(struct cloud *, char **);

static pthread_once_t	cloud_once = PTHREAD_ONCE_INIT;
static CURLcode		cloud_init_rc = CURLE_FAILED_INIT;

static void
cloud_global_init(void)
{
	cloud_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
cloud_secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
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
	struct cloud *c;
	const char *fw;

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
	c->trust_dir = trust_dir();
	c->bundle = trust_bundle();
	fw = cf->fw_version != NULL && *cf->fw_version != '\0' ?
	    cf->fw_version : CLOUD_DEFAULT_FW;
	snprintf(c->agent, sizeof(c->agent), "OpenGlow/%s", fw);
	return c;
}

void
cloud_free(struct cloud *c)
{
	if (c == NULL)
		return;
	cloud_secret_free(c->token);
	free(c->trust_dir);
	free(c->bundle);
	pthread_mutex_destroy(&c->signin);
	pthread_mutex_destroy(&c->lock);
	free(c);
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
	cloud_secret_free(old);
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
	if (x->sink != NULL && x->sink->declared != NULL &&
	    cloud_is_2xx(x->status) && x->length >= 0 &&
	    x->sink->declared((uint64_t)x->length, x->sink->arg) != 0) {
		x->stop = CLOUD_STOP_SINK;
		return 0;
	}
	return n;
}

/* The caller's cancel flag, or the whole cloud shutting down. */
static int
cloud_xfer_cancelled(const struct cloud_xfer *x)
{
	return (x->cancel != NULL && atomic_load(x->cancel) != 0) ||
	    (x->abort != NULL && atomic_load(x->abort) != 0);
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
	if (x->sink != NULL) {
		metrics_add(METRICS_BYTES_DOWN, n);
		if (x->sink->data(buf, n, x->sink->arg) != 0) {
			x->stop = CLOUD_STOP_SINK;
			return 0;
		}
		return n;
	}

	if (n > CLOUD_REPLY_MAX - x->replylen) {
		x->stop = CLOUD_STOP_TOO_BIG;
		return 0;
	}
	/* Allocated once at the cap: growing with realloc would leave copies
	 * of a token in freed memory. */
	if (x->reply == NULL && (x->reply = malloc(CLOUD_REPLY_MAX + 1)) ==
	    NULL) {
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

/* Forgets a reply, wiping it: it may hold tokens. */
static void
cloud_xfer_reset(struct cloud_xfer *x)
{
	if (x->reply != NULL) {
		explicit_bzero(x->reply, x->replylen);
		free(x->reply);
	}
	x->reply = NULL;
	x->replylen = 0;
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
			cloud_secret_free(auth);
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
		ca = c->bundle;
	if ((ca != NULL || c->trust_dir != NULL) &&
	    curl_easy_setopt(h, CURLOPT_CAINFO, ca) != CURLE_OK)
		return -1;
	if (c->trust_dir != NULL &&
	    curl_easy_setopt(h, CURLOPT_CAPATH, c->trust_dir) != CURLE_OK)
		return -1;
	if (curl_easy_setopt(h, CURLOPT_URL, x->url) != CURLE_OK)
		return -1;

	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, c->agent);
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
		/* POSTFIELDS is not copied: the caller wipes its buffer. */
		curl_easy_setopt(h, CURLOPT_POSTFIELDS,
		    x->body != NULL ? x->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)x->bodylen);
		if (strcmp(x->method, "POST") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, x->method);
	}
	return 0;
}

/* What a log line about x starts with: "[what: ]METHOD url", the URL
 * redacted.  One line then says which job, which call and what went wrong. */
static void
cloud_head(const struct cloud_xfer *x, char *buf, size_t size)
{
	char where[CLOUD_URL_LOG];

	cloud_url_redact(x->url, where, sizeof(where));
	snprintf(buf, size, "%s%s%s %s", x->what != NULL ? x->what : "",
	    x->what != NULL ? ": " : "", x->method, where);
}

/*
 * One exchange.  CLOUD_OK means a reply came and x->status holds its code
 * (whatever it is); anything else is the transfer's failure, logged here.
 */
static enum cloud_result
cloud_perform(struct cloud *c, struct cloud_xfer *x)
{
	char errbuf[CURL_ERROR_SIZE], head[CLOUD_HEAD_LOG];
	struct curl_slist *hdrs = NULL;
	enum cloud_result r = CLOUD_ERR_NET;
	CURL *h = NULL;
	CURLcode cc;

	cloud_xfer_reset(x);
	x->abort = &c->aborting;
	cloud_head(x, head, sizeof(head));
	if (!cloud_url_allowed(x->url)) {
		log_warnx("%s: not an http(s) URL, refused", head);
		return CLOUD_ERR_REFUSED;
	}
	if (cloud_xfer_cancelled(x))
		return CLOUD_ERR_CANCELLED;
	errbuf[0] = '\0';
	if ((h = curl_easy_init()) == NULL ||
	    (hdrs = cloud_headers(c, x)) == NULL) {
		log_warnx("%s: out of memory", head);
		goto done;
	}
	if (cloud_setup(c, h, x, errbuf) == -1 ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK) {
		log_warnx("%s: libcurl refused a required option", head);
		r = CLOUD_ERR_REFUSED;
		goto done;
	}

	cc = curl_easy_perform(h);
	switch (x->stop) {
	case CLOUD_STOP_CANCEL:
		log_info("%s: cancelled", head);
		r = CLOUD_ERR_CANCELLED;
		goto done;
	case CLOUD_STOP_SINK:
		/* The sink's owner knows why, and says so in its own line. */
		log_debug("%s: the receiver refused the data", head);
		r = CLOUD_ERR_SINK;
		goto done;
	case CLOUD_STOP_TOO_BIG:
		log_warnx("%s: reply over %d bytes, refused", head,
		    CLOUD_REPLY_MAX);
		r = CLOUD_ERR_REFUSED;
		goto done;
	case CLOUD_STOP_NOMEM:
		log_warnx("%s: out of memory", head);
		goto done;
	case CLOUD_STOP_CAP:
		log_warnx("%s: more than %llu bytes received, refused "
		    "(max_job_size)", head, (unsigned long long)x->max_bytes);
		r = CLOUD_ERR_REFUSED;
		goto done;
	case CLOUD_STOP_REDIRECT:
		/* x->status and x->location say where to. */
		log_debug("%s: %ld", head, x->status);
		r = CLOUD_OK;
		goto done;
	case CLOUD_STOP_STATUS:
	case CLOUD_STOP_NONE:
		break;
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
			r = CLOUD_ERR_REFUSED;
		goto done;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
	log_debug("%s: %ld", head, x->status);
	r = CLOUD_OK;
done:
	cloud_slist_free(hdrs);
	if (h != NULL)
		curl_easy_cleanup(h);
	return r;
}

/*
 * A fresh auth token, replacing the one of generation gen: a sign-in,
 * unless another thread got a newer token while we waited for our turn.
 */
static enum cloud_result
cloud_refresh(struct cloud *c, unsigned gen)
{
	enum cloud_result r = CLOUD_OK;
	unsigned now;
	char *ws = NULL;

	pthread_mutex_lock(&c->signin);
	pthread_mutex_lock(&c->lock);
	now = c->gen;
	pthread_mutex_unlock(&c->lock);
	if (now == gen) {
		r = cloud_sign_in_locked(c, &ws);
		cloud_secret_free(ws);	/* single-use, and not ours to use */
	}
	pthread_mutex_unlock(&c->signin);
	return r;
}

/* A request with the Bearer token: signs in first when there is no token
 * yet; a 401 on an older token gets a fresh one and replays it, while
 * *replays allows (then used up). */
static enum cloud_result
cloud_bearer_try(struct cloud *c, struct cloud_xfer *x, int *replays)
{
	char head[CLOUD_HEAD_LOG];
	enum cloud_result r;
	unsigned gen;
	int fresh = 0;

	x->bearer = 1;
	if (!cloud_have_token(c, &gen)) {
		if ((r = cloud_refresh(c, gen)) != CLOUD_OK)
			goto nosession;
		fresh = 1;	/* a 401 on it is no expiry: no replay */
	}
	if ((r = cloud_perform(c, x)) != CLOUD_OK || x->status != 401 ||
	    fresh || *replays <= 0)
		return r;

	(*replays)--;
	cloud_head(x, head, sizeof(head));
	log_info("%s: token expired, signing in again", head);
	if ((r = cloud_refresh(c, x->gen)) != CLOUD_OK)
		goto nosession;
	return cloud_perform(c, x);
nosession:
	/* The sign-in said why; this line says what it cost. */
	cloud_head(x, head, sizeof(head));
	log_warnx("%s: not sent, no session", head);
	return r;
}

static enum cloud_result
cloud_bearer(struct cloud *c, struct cloud_xfer *x)
{
	int replays = 1;

	return cloud_bearer_try(c, x, &replays);
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

enum cloud_result
cloud_sign_in(struct cloud *c, char **ws_token)
{
	enum cloud_result r;

	pthread_mutex_lock(&c->signin);
	r = cloud_sign_in_locked(c, ws_token);
	pthread_mutex_unlock(&c->signin);
	return r;
}

/* The sign-in itself; the caller holds c->signin. */
static enum cloud_result
cloud_sign_in_locked(struct cloud *c, char **ws_token)
{
	const struct config *cf = c->cf;
	struct cloud_xfer x = { .method = "POST", .ctype = "application/json" };
	enum cloud_result r = CLOUD_ERR_REFUSED;
	cJSON *req = NULL, *rep = NULL;
	char serial[64], *body = NULL, *url = NULL, *ws = NULL, *auth = NULL;
	const char *s;

	*ws_token = NULL;
	serial[0] = '\0';
	if (cf->serial == NULL || *cf->serial == '\0' ||
	    cf->password == NULL || *cf->password == '\0') {
		log_warnx("sign-in: no serial or password configured");
		goto done;
	}
	if ((size_t)snprintf(serial, sizeof(serial), "S%s", cf->serial) >=
	    sizeof(serial)) {
		log_warnx("sign-in: the serial is too long");
		goto done;
	}
	r = CLOUD_ERR_NET;	/* out of memory: worth another try later */
	if ((req = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(req, "serial", serial) == NULL ||
	    cJSON_AddStringToObject(req, "password", cf->password) == NULL ||
	    (body = cJSON_PrintUnformatted(req)) == NULL ||
	    (url = cloud_server_url(c, "/machines/sign_in")) == NULL) {
		log_warnx("sign-in: out of memory");
		goto done;
	}
	x.url = url;
	x.body = body;
	x.bodylen = strlen(body);
	if ((r = cloud_perform(c, &x)) != CLOUD_OK)
		goto done;

	if (x.status == 401 || x.status == 403) {
		/* The caller says it once per streak, not once a try. */
		log_debug("sign-in refused (HTTP %ld)", x.status);
		r = CLOUD_ERR_AUTH;
		goto done;
	}
	if (x.status != 200) {
		log_warnx("sign-in: unexpected status %ld", x.status);
		r = cloud_status_result(x.status);
		if (r == CLOUD_OK)
			r = CLOUD_ERR_REFUSED;
		goto done;
	}
	r = CLOUD_ERR_REFUSED;
	if (x.reply == NULL ||
	    (rep = cJSON_ParseWithLength(x.reply, x.replylen)) == NULL ||
	    !cJSON_IsObject(rep)) {
		log_warnx("sign-in: the reply is not a JSON object");
		goto done;
	}
	if ((s = cloud_json_string(rep, "ws_token")) == NULL ||
	    (ws = strdup(s)) == NULL ||
	    (s = cloud_json_string(rep, "auth_token")) == NULL ||
	    (auth = strdup(s)) == NULL) {
		log_warnx("sign-in: the reply lacks ws_token or auth_token");
		goto done;
	}
	cloud_set_token(c, auth);
	auth = NULL;
	*ws_token = ws;
	ws = NULL;
	log_info("signed in");
	r = CLOUD_OK;
done:
	explicit_bzero(serial, sizeof(serial));
	if (body != NULL) {
		explicit_bzero(body, strlen(body));
		cJSON_free(body);
	}
	cloud_json_free(req);
	cloud_json_free(rep);
	cloud_xfer_reset(&x);
	cloud_secret_free(ws);
	cloud_secret_free(auth);
	free(url);
	return r;
}

enum cloud_result
cloud_fw_probe(struct cloud *c, char **version)
{
	struct cloud_xfer x = { .method = "GET" };
	enum cloud_result r;
	cJSON *rep = NULL;
	const char *v;
	char *url;

	*version = NULL;
	if ((url = cloud_server_url(c, "/update/current")) == NULL)
		return CLOUD_ERR_NET;
	x.url = url;
	if ((r = cloud_bearer(c, &x)) != CLOUD_OK)
		goto done;
	if ((r = cloud_status_result(x.status)) != CLOUD_OK) {
		log_warnx("firmware probe: status %ld", x.status);
		goto done;
	}
	r = CLOUD_ERR_REFUSED;
	if (x.reply == NULL ||
	    (rep = cJSON_ParseWithLength(x.reply, x.replylen)) == NULL ||
	    (v = cloud_json_string(rep, "version")) == NULL) {
		log_warnx("firmware probe: no version in the reply");
		goto done;
	}
	if ((*version = strdup(v)) == NULL) {
		log_warn("strdup");
		r = CLOUD_ERR_NET;
		goto done;
	}
	r = CLOUD_OK;
done:
	cJSON_Delete(rep);
	cloud_xfer_reset(&x);
	free(url);
	return r;
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

enum cloud_result
cloud_upload(struct cloud *c, const char *endpoint, const char *type,
    int64_t id, const void *jpeg, size_t len)
{
	struct cloud_xfer x = { .ctype = "image/jpeg", .body = jpeg,
	    .bodylen = len };
	char path[96], what[CLOUD_TYPE_MAX + 32], head[CLOUD_HEAD_LOG];
	char where[CLOUD_URL_LOG], *url = NULL;
	enum cloud_result r;

	if (jpeg == NULL && len > 0)
		return CLOUD_ERR_REFUSED;
	snprintf(what, sizeof(what), "%.*s %lld upload", CLOUD_TYPE_MAX,
	    type != NULL ? type : "?", (long long)id);
	x.what = what;
	if (endpoint != NULL) {
		/* Presigned: the URL carries its own authorisation, and a
		 * Bearer header would make the storage refuse it. */
		if (!cloud_url_allowed(endpoint)) {
			cloud_url_redact(endpoint, where, sizeof(where));
			log_warnx("%s: endpoint %s: not an http(s) URL", what,
			    where);
			return CLOUD_ERR_REFUSED;
		}
		x.method = "PUT";
		x.url = endpoint;
		r = cloud_perform(c, &x);
	} else {
		if (!cloud_type_ok(type)) {
			log_warnx("%s: bad action type", what);
			return CLOUD_ERR_REFUSED;
		}
		snprintf(path, sizeof(path), "/api/machines/%s/%lld", type,
		    (long long)id);
		if ((url = cloud_server_url(c, path)) == NULL)
			return CLOUD_ERR_NET;
		x.method = "POST";
		x.url = url;
		r = cloud_bearer(c, &x);
	}
	if (r == CLOUD_OK && (r = cloud_status_result(x.status)) != CLOUD_OK) {
		cloud_head(&x, head, sizeof(head));
		log_warnx("%s: status %ld", head, x.status);
	}
	if (r == CLOUD_OK)
		metrics_add(METRICS_BYTES_UP, len);
	cloud_xfer_reset(&x);
	free(url);
	return r;
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

enum cloud_result
cloud_download(struct cloud *c, const char *url,
    const struct cloud_sink *sink, const atomic_int *cancel, const char *what)
{
	struct cloud_xfer x = { .method = "GET", .url = url, .sink = sink,
	    .cancel = cancel, .what = what };
	char head[CLOUD_HEAD_LOG], *cur = NULL, *next;
	enum cloud_result r;
	int hop, replays = 1;

	if (sink == NULL || sink->data == NULL)
		return CLOUD_ERR_REFUSED;
	x.max_bytes = sink->max_bytes;
	x.deadline = cloud_now_ms() + cloud_timeout_ms(c);
	x.abort = &c->aborting;
	if (cloud_xfer_cancelled(&x))
		return CLOUD_ERR_CANCELLED;	/* not even a sign-in */
	for (hop = 0;; hop++) {
		x.bearer = cloud_url_allowed(x.url) &&
		    cloud_dl_bearer(c, x.url);
		r = x.bearer ? cloud_bearer_try(c, &x, &replays) :
		    cloud_perform(c, &x);
		if (r != CLOUD_OK)
			break;
		if (x.status < 300 || x.status > 399 || x.location == NULL) {
			r = cloud_dl_status(c, &x);
			break;
		}
		cloud_head(&x, head, sizeof(head));
		if (hop == (int)CLOUD_MAX_REDIRS) {
			log_warnx("%s: more than %ld redirects, refused", head,
			    CLOUD_MAX_REDIRS);
			r = CLOUD_ERR_REFUSED;
			break;
		}
		if ((next = cloud_resolve(x.url, x.location)) == NULL ||
		    !cloud_url_allowed(next)) {
			log_warnx("%s: redirect to a URL that is not http(s), "
			    "refused", head);
			free(next);
			r = CLOUD_ERR_REFUSED;
			break;
		}
		free(cur);
		x.url = cur = next;
	}
	cloud_xfer_reset(&x);
	free(cur);
	return r;
}
