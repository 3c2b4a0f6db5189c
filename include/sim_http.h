/*
 * sim_http: the HTTP side of gf-cloud-sim (PROTOCOL.md 2, 3, 7, 8): sign-in
 * and its tokens, the firmware probe, presigned and legacy image uploads,
 * pulse files.  Runs inside the server's lws callbacks, on its one thread.
 *
 * Requests a correct machine would never make (a form-encoded sign-in, a
 * Bearer header on a presigned PUT, a non-JPEG image, a reused ws token, an
 * unknown path) are answered as the real service would and also reported
 * through the violation hook: the scenario fails on them.  Expected
 * failures (a stale token after expire_token, a missing pulse file, the
 * fail_* knobs) are only answered.
 */
#ifndef GFE_SIM_HTTP_H
#define GFE_SIM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "sim_scenario.h"

#define SIM_HTTP_JSON_MAX	(64 * 1024)		/* bytes */
#define SIM_HTTP_UPLOAD_MAX	(64 * 1024 * 1024)	/* bytes */
#define SIM_HTTP_WS_TOKEN_TTL	30000			/* ms */
/* The second listener, another origin: "far-NAME" pulse files go there,
 * and a Bearer token reaching it fails the run. */
#define SIM_HTTP_FAR_VHOST	"storage"
#define SIM_HTTP_FAR_PREFIX	"far-"

struct sim_http;
struct sim_fleet;
struct sim_machine;

struct sim_http_params {
	struct sim_fleet	*fleet;		/* who may sign in */
	const char		*pulse_dir;	/* or NULL: all 404 */
	const char		*upload_dir;	/* or NULL: not kept */
	int			 tls;		/* URLs are https */
	struct sim_transcript	*tr;		/* records; secrets */
	int64_t			(*now_ms)(void *arg);
	/* GET /metrics: Prometheus text (malloc'ed), or NULL: no such
	 * path (the hook itself may be NULL). */
	char			*(*metrics)(void *arg);
	void			(*violation)(void *arg, const char *why);
	void			*arg;
};

struct sim_http	*sim_http_new(const struct sim_http_params *p);
void		 sim_http_free(struct sim_http *h);

/* The per-connection space protocols[0] needs. */
size_t		 sim_http_session_size(void);
/* protocols[0]'s callback body: every reason of an HTTP connection. */
int		 sim_http_callback(struct sim_http *h, struct lws *wsi,
		    enum lws_callback_reasons reason, void *user, void *in,
		    size_t len);

/* A WebSocket upgrade to path "/<ws_token>": 0 when the token is live and
 * unused (it is used up now), its machine in *mp; else -1 with the reason
 * in why. */
int		 sim_http_ws_accept(struct sim_http *h, const char *path,
		    struct sim_machine **mp, char *why, size_t whylen);

void		 sim_http_knob(struct sim_http *h, enum sim_knob knob,
		    int n);
/* A fresh presigned PUT URL for this action under base ("http://h:p"). */
char		*sim_http_upload_url(struct sim_http *h, const char *base,
		    int64_t action_id);
/* Requests read but not yet answered: the server lets them finish
 * before it exits. */
int		 sim_http_active(const struct sim_http *h);
/* Valid images stored for this action so far. */
int		 sim_http_uploads(const struct sim_http *h,
		    int64_t action_id);
/* Sign-ins answered with this status so far (200, 401 or 503; 0 for
 * any other). */
int		 sim_http_signins(const struct sim_http *h, int status);

#endif
