/*
 * ff_camera: see ff_camera.h.
 *
 * Each viewer is an lws HTTP connection that never completes: the
 * multipart header goes first, then one part per timer tick.  A part is
 * written whole with one lws_write(); what the socket does not take lws
 * keeps and sends before the next WRITEABLE, so a viewer holds at most one
 * frame, and a tick that finds its pipe still choked skips the frame.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "camera.h"
#include "ff_camera.h"
#include "ff_model.h"
#include "log.h"
#include "loop.h"
#include "mono.h"

#define FF_CAMERA_BOUNDARY	"ffcamframe"
#define FF_CAMERA_PART_HEAD	128	/* bytes of a part's header, at most */

struct ff_camera {
	struct ff_model		*m;
	struct lws_vhost	*vh;
	int			 viewers;
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
};

static struct ff_camera *
ff_camera_of(struct lws *wsi)
{
	struct lws_vhost *vh = lws_get_vhost(wsi);

	return vh != NULL ? lws_get_vhost_user(vh) : NULL;
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
	lws_callback_on_writable(wsi);
	return 0;
}

static int
ff_camera_write(struct ff_camera *c, struct lws *wsi, struct ff_viewer *v)
{
	if (!v->head_sent)
		return ff_camera_head(wsi, v);
	if (ff_camera_frame(c) == -1)
		return -1;
	if (lws_write(wsi, c->part + LWS_PRE, c->part_len, LWS_WRITE_HTTP) <
	    0)
		return -1;
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

static int
ff_camera_on(struct ff_camera *c)
{
	struct ff_status st;

	ff_model_snapshot(c->m, &st);
	return st.camera;
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
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		/* A camera switched off takes no one. */
		return ff_camera_on(c) ? 0 : -1;
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
ff_camera_new(struct loop *loop, struct ff_model *m, const char *bind,
    int port)
{
	struct lws_context_creation_info info;
	struct ff_camera *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->m = m;
	memset(&info, 0, sizeof(info));
	info.vhost_name = "ff-camera";
	info.protocols = ff_camera_protocols;
	info.port = port;
	/* lws binds every interface for a NULL iface. */
	info.iface = strcmp(bind, "0.0.0.0") == 0 ? NULL : bind;
	/* As in ff_server.c: else an IPv4 bind listens everywhere. */
	if (info.iface != NULL && strchr(info.iface, ':') == NULL)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.user = c;
	if ((c->vh = lws_create_vhost(loop_context(loop), &info)) == NULL) {
		log_warnx("flashforge: cannot listen on TCP %s:%d (camera)",
		    bind, port);
		free(c);
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
	lws_vhost_destroy(c->vh);
	ff_camera_free(c);
}
