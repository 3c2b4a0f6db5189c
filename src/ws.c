/*
 * ws: the status WebSocket.  Everything here runs on the loop thread
 * (evloop.h): no lock, no cross-thread wake.  The owner hears of the
 * socket through its hooks, called from lws' callbacks.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <systemd/sd-daemon.h>

#include "frame.h"
#include "log.h"
#include "mlog.h"
#include "evloop.h"
#include "mono.h"
#include "queue.h"
#include "trust.h"
#include "ws.h"

#define WS_SUBPROTOCOL	"glowforge"
#define WS_URL_MAX	1024	/* bytes, base URL plus token */
#define WS_DRAIN_MAX	(64 << 20)	/* bytes of a too-large message read */

enum ws_state {
	WS_IDLE,		/* no connection, none asked for */
	WS_PENDING,		/* asked for, or connecting */
	WS_UP,			/* established */
};

struct ws {
	struct ws_params	 p;		/* strings owned here */
	const struct mlog	*lg;		/* p.lg, or a single's */
	struct ws_hooks		 h;
	char			*scheme_host;	/* parsed from p.url */
	char			*host;
	char			*host_header;	/* host[:port], RFC 7230 5.4 */
	int			 port;
	int			 tls;
	char			*base_path;	/* "" or "/prefix" */
	char			*trust_dir;	/* hashed roots, or NULL */
	int			 roots_loaded;	/* trust_dir went in */

	struct queue		*tx;		/* the caller's */
	struct lws_context	*ctx;		/* the caller's evloop's */
	struct lws_vhost	*vh;		/* this machine's client vhost */
	struct lws		*wsi;
	lws_sorted_usec_list_t	 sul_stop;
	int			 stop_armed;
	lws_retry_bo_t		 retry;		/* ping policy */

	/* Partial message being received. */
	struct frame_buf	 rxmsg;
	int			 rx_oversize;	/* dropping the rest */
	int			 close_1009;	/* close when writeable */
	int			 closing;	/* the peer's close came, or a
						 * write failed: lws closes */
	uint64_t		 rx_dropped;	/* bytes of it dropped */

	/* Send buffer with LWS_PRE headroom. */
	unsigned char		*txbuf;
	size_t			 txcap;		/* bytes */

	enum ws_state		 state;
	int64_t			 up_since;	/* ms, monotonic */
	int			 stopping;	/* ws_stop() called */
	int			 quiet;		/* ws_quiet(): no sd_notify */
	int64_t			 stop_deadline;	/* ms, monotonic */
};

/* Connection ended (or never started): the owner hears how long it was
 * up (0: never). */
static void
ws_set_idle(struct ws *w)
{
	int64_t up = w->state == WS_UP ? mono_now_ms() - w->up_since : 0;

	w->state = WS_IDLE;
	w->wsi = NULL;
	if (w->stop_armed) {
		lws_sul_cancel(&w->sul_stop);
		w->stop_armed = 0;
	}
	if (w->h.closed != NULL)
		w->h.closed(w->h.arg, up);
}

/* Each line of a complete message goes straight to the owner. */
static void
ws_rx_line(const char *line, size_t len, void *arg)
{
	struct ws *w = arg;

	if (w->h.line != NULL)
		w->h.line(w->h.arg, line, len);
}

/* Writes one queued frame; -1 closes the connection. */
static int
ws_write_one(struct ws *w, struct lws *wsi)
{
	enum queue_prio prio;
	size_t len;
	char *frame;
	int n;

	if ((frame = queue_pop(w->tx, &len, &prio)) == NULL)
		return 0;
	if (LWS_PRE + len > w->txcap) {
		unsigned char *nb = realloc(w->txbuf, LWS_PRE + len);

		if (nb == NULL) {
			queue_unpop(w->tx, frame, len, prio);
			return -1;
		}
		w->txbuf = nb;
		w->txcap = LWS_PRE + len;
	}
	memcpy(w->txbuf + LWS_PRE, frame, len);
	n = lws_write(wsi, w->txbuf + LWS_PRE, len, LWS_WRITE_TEXT);
	if (n < (int)len) {
		/* Not sent: it goes out first on the next connection. */
		MLOG(w->lg, LOG_WARNING, 0,
		    "write failed; frame kept for the next connection");
		queue_unpop(w->tx, frame, len, prio);
		return -1;
	}
	free(frame);
	return 0;
}

/*
 * Writes queued frames while lws holds none of ours unsent; asks for a
 * writeable callback if frames are left.  Writing at once, rather than
 * always from the writeable callback, saves the round trip through the
 * loop: under libuv each change of lws' interest in POLLOUT is a
 * uv_poll_start(), an epoll_ctl() DEL then ADD, so a burst of events cost
 * four epoll_ctl() and a wake-up per frame (perf stat: 15.7 epoll_ctl per
 * action under the mixed load).  lws 4.1 keeps what the kernel did not
 * take and asks for POLLOUT itself; the rest then waits here, in the
 * queue, whose bound and priorities still apply.  -1: close.
 */
static int
ws_flush(struct ws *w, struct lws *wsi)
{
	while (queue_len(w->tx) > 0 && !lws_partial_buffered(wsi))
		if (ws_write_one(w, wsi) == -1)
			return -1;
	if (queue_len(w->tx) > 0)
		lws_callback_on_writable(wsi);
	return 0;
}


/*
 * The close frame by hand: on the libuv loop, lws 4.1.6 closes the socket
 * without the frame lws_close_reason() asks for (seen with strace: no
 * send, then close()), after a too-large message (1009) and at shutdown
 * (1001) alike.  Called in a writeable callback that has written nothing
 * else, so the frame leaves whole, before the FIN.
 */
static void
ws_close_frame(struct lws *wsi, int code, const char *why)
{
	unsigned char buf[LWS_PRE + 2 + 32];
	size_t n = strlen(why);

	if (n > 32)
		n = 32;
	buf[LWS_PRE] = (unsigned char)(code >> 8);
	buf[LWS_PRE + 1] = (unsigned char)(code & 0xff);
	memcpy(buf + LWS_PRE + 2, why, n);
	/* 4: lws' LWS_WRITE_CLOSE, which its public header leaves to
	 * lws_close_reason(); lws_write() still frames and masks it. */
	if (lws_write(wsi, buf + LWS_PRE, n + 2,
	    (enum lws_write_protocol)4) < (int)(n + 2))
		log_warnx("the %d close frame was not sent", code);
}

static void
ws_stop_timeout(lws_sorted_usec_list_t *sul)
{
	struct ws *w = lws_container_of(sul, struct ws, sul_stop);

	/* A peer that does not read keeps the socket from ever becoming
	 * writable: past the deadline it is dropped, not flushed. */
	if (w->wsi != NULL)
		lws_set_timeout(w->wsi, PENDING_TIMEOUT_CLOSE_SEND,
		    LWS_TO_KILL_ASYNC);
}

/* The handshake's User-Agent, by name: the token form writes
 * "user-agent:", which is legal but not what a real machine sends. */
static int
ws_add_user_agent(struct ws *w, struct lws *wsi, void *in, size_t len)
{
	unsigned char **p = in, *end = *p + len;

	if (w->p.user_agent != NULL &&
	    lws_add_http_header_by_name(wsi,
	    (const unsigned char *)"User-Agent:",
	    (const unsigned char *)w->p.user_agent,
	    (int)strlen(w->p.user_agent), p, end))
		return -1;
	return 0;
}

static void
ws_established(struct ws *w, struct lws *wsi)
{
	MLOG(w->lg, LOG_INFO, 0, "status socket up");
	w->state = WS_UP;
	w->up_since = mono_now_ms();
	/* systemd: the daemon is ready once the service can reach it. */
	if (!w->quiet)
		sd_notify(0, "READY=1\nSTATUS=status socket up");
	w->rxmsg.len = 0;
	w->rx_oversize = 0;
	w->close_1009 = 0;
	w->closing = 0;
	if (queue_len(w->tx) > 0 || w->stopping)
		lws_callback_on_writable(wsi);
	if (w->h.up != NULL)
		w->h.up(w->h.arg);
}

/* A piece of a message: whole text messages go to the dispatcher line by
 * line; an oversized one is drained, then closed with 1009.  -1: drop the
 * connection. */
static int
ws_receive(struct ws *w, struct lws *wsi, const void *in, size_t len)
{
	if (lws_frame_is_binary(wsi)) {
		/* Spec: text frames only.  Skip the whole message. */
		if (lws_is_first_fragment(wsi))
			MLOG(w->lg, LOG_WARNING, 0, "binary message ignored");
		return 0;
	}
	if (!w->rx_oversize && frame_buf_append(&w->rxmsg, in, len) == -1) {
		MLOG(w->lg, LOG_WARNING, 0,
		    "message over %d bytes: closing with 1009", FRAME_MAX_LEN);
		w->rx_oversize = 1;
		w->rxmsg.len = 0;
		w->rx_dropped = 0;
	}
	/* A message that never ends is not drained for ever. */
	if (w->rx_oversize && (w->rx_dropped += len) > WS_DRAIN_MAX) {
		MLOG(w->lg, LOG_WARNING, 0,
		    "message still going past %d MiB: dropping the "
		    "connection", WS_DRAIN_MAX >> 20);
		return -1;
	}
	if (!lws_is_final_fragment(wsi) ||
	    lws_remaining_packet_payload(wsi) != 0)
		return 0;
	if (w->rx_oversize) {
		/* Read to its end and dropped; closed from WRITEABLE:
		 * closing from a receive callback with payload left crashed
		 * lws 4.1 (the huge-frame test), and unread bytes reset the
		 * connection, losing the close frame. */
		w->close_1009 = 1;
		lws_callback_on_writable(wsi);
		return 0;
	}
	frame_split(w->rxmsg.buf, w->rxmsg.len, ws_rx_line, w);
	w->rxmsg.len = 0;
	return 0;
}

/* The socket can take a frame: the pending 1009 close, the going-away
 * close at shutdown, or one queued frame.  -1: close it. */
static int
ws_writeable(struct ws *w, struct lws *wsi)
{
	if (w->close_1009) {
		ws_close_frame(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
		    "too large");
		return -1;
	}
	/* Stopping: the queue flushed (or out of time), then 1001
	 * ("going away", RFC 6455) in a callback of its own. */
	if (w->stopping && (queue_len(w->tx) == 0 ||
	    mono_now_ms() >= w->stop_deadline)) {
		ws_close_frame(wsi, LWS_CLOSE_STATUS_GOINGAWAY, "shutdown");
		return -1;
	}
	if (w->closing)
		return 0;	/* nothing after the close frame */
	if (w->stopping) {
		/* One frame per callback, so the deadline is checked. */
		if (ws_write_one(w, wsi) == -1)
			return -1;
		lws_callback_on_writable(wsi);
		return 0;
	}
	return ws_flush(w, wsi);
}

static int
ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct lws_vhost *vh = lws_get_vhost(wsi);
	/* Some callbacks (GET_THREAD_ID) come without a vhost. */
	struct ws *w = vh != NULL ? lws_get_vhost_user(vh) : NULL;

	if (w == NULL)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS:
		/* user is the vhost's client SSL_CTX, made in ws_new(). */
		if (w->trust_dir != NULL &&
		    SSL_CTX_load_verify_locations(user, NULL, w->trust_dir) == 1)
			w->roots_loaded = 1;
		break;
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		return ws_add_user_agent(w, wsi, in, len);
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		ws_established(w, wsi);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		/* in may hold the server's reply line: no secrets in it. */
		MLOG(w->lg, LOG_WARNING, 0,
		    "status socket: connection failed: %s",
		    in != NULL ? (const char *)in : "unknown error");
		ws_set_idle(w);
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		MLOG(w->lg, LOG_INFO, 0, "status socket closed");
		/* At shutdown, STOPPING=1 has said it all. */
		if (!w->stopping && !w->quiet)
			sd_notify(0, "STATUS=status socket down, reconnecting");
		ws_set_idle(w);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return ws_receive(w, wsi, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return ws_writeable(w, wsi);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* lws answers it and closes: a frame written now would
		 * follow the close frame and be lost (ws_wake()). */
		w->closing = 1;
		break;
	default:
		break;
	}
	return 0;
}

/* tx_packet_size: what lws hands the kernel in one send.  Its default,
 * the 4 KiB service buffer, sent a 7 KB settings report in two pieces,
 * the second from a writeable callback of its own. */
#define WS_TX_PACKET	65536	/* bytes */

static const struct lws_protocols ws_protocols[] = {
	{ WS_SUBPROTOCOL, ws_callback, 0, 0, 0, NULL, WS_TX_PACKET },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* Opens the socket with this token; -1 when lws refused at once (no
 * hook is called then). */
static int
ws_connect(struct ws *w, const char *token)
{
	struct lws_client_connect_info ci;
	char path[WS_URL_MAX];
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", w->base_path, token);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		explicit_bzero(path, sizeof(path));
		MLOG(w->lg, LOG_WARNING, 0, "status URL too long");
		return -1;
	}
	memset(&ci, 0, sizeof(ci));
	ci.context = w->ctx;
	ci.vhost = w->vh;
	ci.address = w->host;
	ci.port = w->port;
	ci.path = path;
	ci.host = w->host_header;
	ci.origin = w->p.origin;
	ci.protocol = WS_SUBPROTOCOL;
	ci.ssl_connection = w->tls ? LCCSCF_USE_SSL : 0;
	ci.retry_and_idle_policy = &w->retry;
	ci.pwsi = &w->wsi;
	MLOG(w->lg, LOG_INFO, 0, "connecting to %s", w->scheme_host);
	w->state = WS_PENDING;
	if (lws_client_connect_via_info(&ci) == NULL) {
		explicit_bzero(path, sizeof(path));
		/* CONNECTION_ERROR may already have run and said so. */
		if (w->state == WS_PENDING) {
			w->state = WS_IDLE;
			w->wsi = NULL;
			return -1;
		}
		return 0;
	}
	explicit_bzero(path, sizeof(path));
	return 0;
}

struct ws *
ws_new(struct evloop *ev, const struct ws_params *p,
    const struct ws_hooks *h)
{
	struct lws_context_creation_info info;
	const char *prot, *ads, *path;
	char *tmp = NULL;
	struct ws *w;
	int port;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->ctx = evloop_lws(ev);
	w->lg = p->lg != NULL ? p->lg : &mlog_single;
	if (h != NULL)
		w->h = *h;
	/* Copies of every string: the caller's may not outlive this call. */
	w->p = *p;
	w->p.url = w->p.ca_file = w->p.user_agent = w->p.origin = NULL;
	if ((w->p.url = strdup(p->url)) == NULL ||
	    (p->ca_file != NULL && (w->p.ca_file = strdup(p->ca_file)) == NULL) ||
	    (p->user_agent != NULL &&
	    (w->p.user_agent = strdup(p->user_agent)) == NULL) ||
	    (p->origin != NULL && (w->p.origin = strdup(p->origin)) == NULL))
		goto fail;
	if (w->p.ping_secs <= 0)
		w->p.ping_secs = 30;
	if (w->p.ping_timeout_secs <= 0)
		w->p.ping_timeout_secs = 10;
	w->retry.secs_since_valid_ping = (uint16_t)w->p.ping_secs;
	w->retry.secs_since_valid_hangup =
	    (uint16_t)(w->p.ping_secs + w->p.ping_timeout_secs);

	if ((tmp = strdup(p->url)) == NULL)
		goto fail;
	if (lws_parse_uri(tmp, &prot, &ads, &port, &path) != 0 ||
	    *ads == '\0') {
		MLOG(w->lg, LOG_WARNING, 0, "bad status URL");
		goto fail;
	}
	if (strcmp(prot, "wss") == 0 || strcmp(prot, "https") == 0)
		w->tls = 1;
	else if (strcmp(prot, "ws") != 0 && strcmp(prot, "http") != 0) {
		MLOG(w->lg, LOG_WARNING, 0,
		    "status URL must be ws:// or wss://");
		goto fail;
	}
	if (port == 80 && w->tls && strstr(p->url, ":80") == NULL)
		port = 443;	/* lws_parse_uri defaults to 80 for any scheme */
	w->port = port;
	w->host = strdup(ads);
	/* lws_parse_uri drops the leading '/' of the path. */
	while (*path == '/')
		path++;
	if (asprintf(&w->base_path, "%s%s", *path ? "/" : "", path) < 0)
		w->base_path = NULL;
	while (w->base_path != NULL && *w->base_path &&
	    w->base_path[strlen(w->base_path) - 1] == '/')
		w->base_path[strlen(w->base_path) - 1] = '\0';
	if (asprintf(&w->scheme_host, "%s://%s:%d%s", w->tls ? "wss" : "ws",
	    w->host ? w->host : "", w->port,
	    w->base_path ? w->base_path : "") < 0)
		w->scheme_host = NULL;
	/* The Host header names the port unless it is the scheme's default. */
	if (w->port == (w->tls ? 443 : 80))
		w->host_header = w->host ? strdup(w->host) : NULL;
	else if (asprintf(&w->host_header, "%s:%d", w->host ? w->host : "",
	    w->port) < 0)
		w->host_header = NULL;
	if (w->host == NULL || w->base_path == NULL ||
	    w->scheme_host == NULL || w->host_header == NULL)
		goto fail;

	memset(&info, 0, sizeof(info));
	info.vhost_name = "glowforge";
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = ws_protocols;
	/* lws makes a vhost's client TLS context only when asked so: for
	 * wss only (an SSL_CTX is heap a ws:// link never uses). */
	if (w->tls)
		info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	/* The OS roots come from the hashed folder, read on demand, in
	 * LOAD_EXTRA_CLIENT_VERIFY_CERTS; see trust.h. */
	if (w->tls && (w->trust_dir = trust_dir()) != NULL)
		info.options |= LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
	info.client_ssl_ca_filepath = w->p.ca_file;
	info.user = w;
	if ((w->vh = lws_create_vhost(w->ctx, &info)) == NULL) {
		MLOG(w->lg, LOG_WARNING, 0,
		    "cannot create the status socket's vhost");
		goto fail;
	}
	/* Fails closed (no root, no wss), but should say why. */
	if (w->trust_dir != NULL && !w->roots_loaded)
		MLOG(w->lg, LOG_WARNING, 0,
		    "status socket: the roots in %s were not loaded; "
		    "wss will fail to verify", w->trust_dir);
	free(tmp);
	return w;
fail:
	free(tmp);
	ws_free(w);
	return NULL;
}

void
ws_free(struct ws *w)
{
	if (w == NULL)
		return;
	free((char *)w->p.url);
	free((char *)w->p.ca_file);
	free((char *)w->p.user_agent);
	free((char *)w->p.origin);
	free(w->scheme_host);
	free(w->host);
	free(w->host_header);
	free(w->base_path);
	free(w->trust_dir);
	frame_buf_free(&w->rxmsg);
	free(w->txbuf);
	free(w);
}

void
ws_start(struct ws *w, struct queue *tx)
{
	w->tx = tx;
}

int
ws_open(struct ws *w, const char *token)
{
	if (w->state != WS_IDLE || w->stopping)
		return -1;
	return ws_connect(w, token);
}

int
ws_is_up(struct ws *w)
{
	return w->state == WS_UP;
}

void
ws_wake(void *arg)
{
	struct ws *w = arg;

	if (w->wsi == NULL || w->state != WS_UP)
		return;
	/* Closing, ours or the peer's: from the writeable callback only,
	 * which lws no longer calls once the socket is going (the frames
	 * stay queued for the next connection). */
	if (w->stopping || w->close_1009 || w->closing) {
		lws_callback_on_writable(w->wsi);
		return;
	}
	if (ws_flush(w, w->wsi) == -1) {
		w->closing = 1;
		lws_set_timeout(w->wsi, PENDING_TIMEOUT_CLOSE_SEND,
		    LWS_TO_KILL_ASYNC);
	}
}

void
ws_quiet(struct ws *w)
{
	w->quiet = 1;
}

int
ws_stop(struct ws *w, int timeout_ms)
{
	w->stopping = 1;
	w->stop_deadline = mono_now_ms() + timeout_ms;
	/* Not up: nothing to flush, no close frame to send.  A pending
	 * connect ends with the context; the owner ignores its hook. */
	if (w->state != WS_UP || w->wsi == NULL)
		return 1;
	/* A silent link must not hold the shutdown past the deadline. */
	if (!w->stop_armed) {
		w->stop_armed = 1;
		lws_sul_schedule(w->ctx, 0, &w->sul_stop, ws_stop_timeout,
		    (lws_usec_t)timeout_ms * LWS_US_PER_MS + 1);
	}
	lws_callback_on_writable(w->wsi);
	return 0;
}
