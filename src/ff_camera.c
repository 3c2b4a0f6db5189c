/*
 * ff_camera: see ff_camera.h.
 *
 * Each viewer is an lws HTTP connection that never completes: the
 * multipart header goes first, then one part per timer tick.  A part is
 * written whole with one lws_write(); what the socket does not take lws
 * keeps and sends before the next WRITEABLE, so a viewer holds at most one
 * frame, and a tick that finds its pipe still choked skips the frame.
 *
 * The listening socket is ours, not the vhost's: lws 4.1.6 keeps a
 * vhost's listening socket open after lws_vhost_destroy() at run time,
 * and a camera switched off must refuse connections (FLASHFORGE.md: the
 * URL is "" when off).  lws only watches it (a raw file); we accept() and
 * hand each connection to a vhost that listens on nothing.  Switched off,
 * it is closed; on, opened again.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "camera.h"
#include "ff_camera.h"
#include "ff_model.h"
#include "log.h"
#include "evloop.h"
#include "mono.h"

#define FF_CAMERA_BOUNDARY	"ffcamframe"
#define FF_CAMERA_PART_HEAD	128	/* bytes of a part's header, at most */
#define FF_CAMERA_BACKLOG	16	/* connections waiting for accept() */
#define FF_CAMERA_ACCEPTS	16	/* accepted per wake-up */
#define FF_CAMERA_CONNS		32	/* connections open at once; past it a
					 * newcomer is closed at once */
#define FF_CAMERA_STALL_S	30	/* s a viewer may take no frame */

struct ff_camera {
	struct ff_model		*m;
	struct lws_vhost	*vh;		/* listens on nothing */
	struct lws		*lsn;		/* our listening socket, or NULL */
	char			 bind[64];
	int			 port;
	int			 viewers;
	int			 conns;		/* accepted, not yet destroyed */
	int			 refused;	/* since the last log line */
	unsigned char		*part;		/* LWS_PRE, then the part */
	size_t			 part_len;
	int64_t			 part_t;	/* ms: when it was drawn */
	int			 part_pct;	/* the progress it shows */
};

/* Per connection; lws allocates and zeroes it. */
struct ff_viewer {
	int			 counted;	/* in viewers */
	int			 head_sent;
	int			 head_only;	/* a HEAD request */
	int			 status;	/* 0: stream; else an error */
	int64_t			 due;		/* ms: when the next part may go */
};

static struct ff_camera *
ff_camera_of(struct lws *wsi)
{
	struct lws_vhost *vh = lws_get_vhost(wsi);

	return vh != NULL ? lws_get_vhost_user(vh) : NULL;
}

static int
ff_camera_on(struct ff_camera *c)
{
	struct ff_status st;

	ff_model_snapshot(c->m, &st);
	return st.camera;
}

/* The part for now: redrawn once per frame period, or when the progress
 * it shows changed; -1 when no frame could be made (logged). */
static int
ff_camera_frame(struct ff_camera *c)
{
	struct ff_status st;
	int64_t now = mono_now_ms();
	uint8_t *jpeg;
	unsigned char *part;
	size_t len;
	int pct, n;

	ff_model_status(c->m, now, &st);
	pct = st.job == FF_JOB_PRINTING || st.job == FF_JOB_PAUSED ||
	    st.job == FF_JOB_DONE ? (int)(st.progress * 100 + 0.5) : 0;
	if (c->part != NULL && now - c->part_t < FF_CAMERA_FRAME_MS &&
	    pct == c->part_pct)
		return 0;
	if (camera_take_progress(pct, &jpeg, &len) == -1)
		return c->part != NULL ? 0 : -1;
	if ((part = malloc(LWS_PRE + FF_CAMERA_PART_HEAD + len + 2)) == NULL) {
		free(jpeg);
		log_warnx("flashforge camera: no memory for a frame");
		return c->part != NULL ? 0 : -1;
	}
	n = snprintf((char *)part + LWS_PRE, FF_CAMERA_PART_HEAD,
	    "--" FF_CAMERA_BOUNDARY "\r\nContent-Type: image/jpeg\r\n"
	    "Content-Length: %zu\r\n\r\n", len);
	memcpy(part + LWS_PRE + n, jpeg, len);
	memcpy(part + LWS_PRE + n + len, "\r\n", 2);
	free(jpeg);
	free(c->part);
	c->part = part;
	c->part_len = (size_t)n + len + 2;
	c->part_t = now;
	c->part_pct = pct;
	return 0;
}

/*
 * A stream never completes, so lws' own timeout for the request (its
 * 5 s keep-alive one, armed when the connection came) would end it after
 * 5 s: replaced here by ours, armed again at each frame sent.  Only a
 * viewer that takes no frame for FF_CAMERA_STALL_S (its socket full all
 * along) is dropped, so a client that stopped reading frees its place.
 */
static void
ff_camera_alive(struct lws *wsi)
{
	lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, FF_CAMERA_STALL_S);
}

static int
ff_camera_head(struct lws *wsi, struct ff_viewer *v)
{
	unsigned char buf[LWS_PRE + 512], *p = buf + LWS_PRE;
	unsigned char *end = buf + sizeof(buf) - 1;
	static const char nc[] = "no-cache";

	if (v->status != 0) {
		if (lws_add_http_common_headers(wsi, (unsigned)v->status,
		    "text/plain", 0, &p, end) ||
		    lws_finalize_write_http_header(wsi, buf + LWS_PRE, &p, end))
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK,
	    "multipart/x-mixed-replace; boundary=" FF_CAMERA_BOUNDARY,
	    LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
	    (const unsigned char *)nc, (int)sizeof(nc) - 1, &p, end) ||
	    lws_finalize_write_http_header(wsi, buf + LWS_PRE, &p, end))
		return -1;
	v->head_sent = 1;
	if (v->head_only)
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	ff_camera_alive(wsi);
	lws_callback_on_writable(wsi);
	return 0;
}

/*
 * A part, when one is due.  lws calls WRITEABLE on its own too, after
 * flushing a part the socket did not take whole: without the due time
 * a viewer that reads fast got parts as fast as it read (hundreds a
 * second, each a copy of the frame).  Early, the timer is set for the
 * due time instead, so a tick that comes a little early is not lost.
 */
static int
ff_camera_write(struct ff_camera *c, struct lws *wsi, struct ff_viewer *v)
{
	int64_t now;

	if (!v->head_sent)
		return ff_camera_head(wsi, v);
	if (!ff_camera_on(c))
		return -1;	/* switched off: the stream ends now */
	now = mono_now_ms();
	if (now < v->due) {
		lws_set_timer_usecs(wsi, (v->due - now) * 1000LL);
		return 0;
	}
	if (ff_camera_frame(c) == -1)
		return -1;
	if (lws_write(wsi, c->part + LWS_PRE, c->part_len, LWS_WRITE_HTTP) <
	    0)
		return -1;
	ff_camera_alive(wsi);
	v->due = now + FF_CAMERA_FRAME_MS;
	lws_set_timer_usecs(wsi, FF_CAMERA_FRAME_MS * 1000LL);
	return 0;
}

/* A new request: a stream, or why not. */
static void
ff_camera_request(struct ff_camera *c, struct lws *wsi, struct ff_viewer *v,
    const char *path)
{
	v->head_only = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
	if (strcmp(path, "/") != 0)
		v->status = HTTP_STATUS_NOT_FOUND;
	else if (c->viewers >= FF_CAMERA_VIEWERS) {
		log_warnx("flashforge camera: %d viewers already; refused one",
		    FF_CAMERA_VIEWERS);
		v->status = HTTP_STATUS_SERVICE_UNAVAILABLE;
	} else if (!v->head_only) {
		c->viewers++;
		v->counted = 1;
	}
	lws_callback_on_writable(wsi);
}

/* Hands what waits on the listening socket to lws, a burst at most. */
static void
ff_camera_accept(struct ff_camera *c, int lfd)
{
	struct lws *wsi;
	int i, fd;

	for (i = 0; i < FF_CAMERA_ACCEPTS; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("flashforge camera: accept");
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		if (c->conns >= FF_CAMERA_CONNS) {
			close(fd);
			/* One line per burst, not one per connection. */
			if (c->refused++ == 0)
				log_warnx("flashforge camera: %d connections "
				    "open; refusing newcomers",
				    FF_CAMERA_CONNS);
			continue;
		}
		if (c->refused > 0 && c->conns < FF_CAMERA_CONNS / 2) {
			log_info("flashforge camera: %d connections were "
			    "refused", c->refused);
			c->refused = 0;
		}
		/* On failure lws closes fd itself. */
		if ((wsi = lws_adopt_socket_vhost(c->vh, fd)) == NULL) {
			log_warnx("flashforge camera: cannot take a viewer");
			continue;
		}
		/* Marks it counted, for WSI_DESTROY. */
		lws_set_opaque_user_data(wsi, c);
		c->conns++;
	}
}

/* Opens and watches the listening socket; -1 after logging. */
static int
ff_camera_listen(struct ff_camera *c)
{
	lws_adopt_desc_t ad;
	struct sockaddr_in sa;
	int fd, one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)c->port);
	if (inet_pton(AF_INET, c->bind, &sa.sin_addr) != 1)
		return -1;	/* config_check() saw to it */
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1) {
		log_warn("flashforge camera: socket");
		return -1;
	}
	/* Reopened at once after off, on: TIME_WAIT must not stop it. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(fd, FF_CAMERA_BACKLOG) == -1) {
		log_warn("flashforge: cannot listen on TCP %s:%d (camera)",
		    c->bind, c->port);
		close(fd);
		return -1;
	}
	memset(&ad, 0, sizeof(ad));
	ad.vh = c->vh;
	ad.type = LWS_ADOPT_RAW_FILE_DESC;
	ad.fd.filefd = fd;
	ad.vh_prot_name = "ff-camera";
	if ((c->lsn = lws_adopt_descriptor_vhost_via_info(&ad)) == NULL) {
		close(fd);
		log_warnx("flashforge camera: cannot watch TCP port %d",
		    c->port);
		return -1;
	}
	return 0;
}

/* Closes the listening socket now (lws closes the descriptor). */
static void
ff_camera_unlisten(struct ff_camera *c)
{
	if (c->lsn != NULL)
		lws_set_timeout(c->lsn, PENDING_TIMEOUT_USER_OK,
		    LWS_TO_KILL_SYNC);
	c->lsn = NULL;
}

void
ff_camera_sync(struct ff_camera *c)
{
	if (c == NULL)
		return;
	if (ff_camera_on(c) && c->lsn == NULL) {
		if (ff_camera_listen(c) == 0)
			log_info("flashforge camera: on, port %d open",
			    c->port);
	} else if (!ff_camera_on(c) && c->lsn != NULL) {
		ff_camera_unlisten(c);
		/* Each stream ends at its next WRITEABLE, not its next tick:
		 * on again at once, the camera must have its places free. */
		lws_callback_on_writable_all_protocol_vhost(c->vh,
		    lws_vhost_name_to_protocol(c->vh, "ff-camera"));
		log_info("flashforge camera: off, port %d closed", c->port);
	}
}

static int
ff_camera_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
	struct ff_camera *c = ff_camera_of(wsi);
	struct ff_viewer *v = user;

	if (c == NULL)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (wsi == c->lsn)
			ff_camera_accept(c, lws_get_socket_fd(wsi));
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (wsi == c->lsn)
			c->lsn = NULL;
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		if (lws_get_opaque_user_data(wsi) == c) {
			lws_set_opaque_user_data(wsi, NULL);
			c->conns--;
		}
		return 0;
	case LWS_CALLBACK_HTTP:
		/* GET and HEAD only: a request with a body is not read, it
		 * closes the connection. */
		if (!ff_camera_on(c) ||
		    (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0 &&
		    lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) <= 0))
			return -1;
		ff_camera_request(c, wsi, v, (const char *)in);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return ff_camera_write(c, wsi, v);
	case LWS_CALLBACK_TIMER:
		if (!ff_camera_on(c))
			return -1;	/* switched off: the stream ends */
		if (lws_send_pipe_choked(wsi))	/* slow: skip this frame */
			lws_set_timer_usecs(wsi, FF_CAMERA_FRAME_MS * 1000LL);
		else
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (v != NULL && v->counted) {
			v->counted = 0;
			c->viewers--;
		}
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols ff_camera_protocols[] = {
	{ "ff-camera", ff_camera_callback, sizeof(struct ff_viewer), 0, 0,
	  NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

struct ff_camera *
ff_camera_new(struct evloop *ev, struct ff_model *m, const char *bind,
    int port)
{
	struct lws_context_creation_info info;
	struct ff_camera *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->m = m;
	c->port = port;
	snprintf(c->bind, sizeof(c->bind), "%s", bind);
	memset(&info, 0, sizeof(info));
	info.vhost_name = "ff-camera";
	info.protocols = ff_camera_protocols;
	/* Listens on nothing: our own socket, bound to bind as an IPv4
	 * address (never every interface), feeds it. */
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.user = c;
	if ((c->vh = lws_create_vhost(evloop_lws(ev), &info)) == NULL) {
		log_warnx("flashforge camera: cannot set up");
		free(c);
		return NULL;
	}
	if (ff_camera_on(c) && ff_camera_listen(c) == -1) {
		ff_camera_abort(c);
		return NULL;
	}
	return c;
}

void
ff_camera_free(struct ff_camera *c)
{
	if (c == NULL)
		return;
	free(c->part);
	free(c);
}

void
ff_camera_abort(struct ff_camera *c)
{
	if (c == NULL)
		return;
	ff_camera_unlisten(c);
	lws_vhost_destroy(c->vh);
	ff_camera_free(c);
}
