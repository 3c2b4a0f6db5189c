/*
 * cloud: the HTTPS side of the service (libcurl): sign-in, firmware probe,
 * image upload, pulse file download.  Each call comes in two forms with one
 * policy under both:
 * - blocking (cloud_sign_in, ...), made from the link, dispatcher and job
 *   threads, never from the WebSocket loop;
 * - asynchronous (cloud_*_start), on an evloop (issue 10): the transfer
 *   runs in the loop's curl multi and done() is called back on the loop.
 * Every handle is limited to http/https (redirects too), verifies TLS, has
 * connect and low-speed timeouts.  Tokens live here and nowhere else.
 */
#ifndef GFE_CLOUD_H
#define GFE_CLOUD_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

struct config;
struct cloud;
struct evloop;
struct mlog;

enum cloud_result {
	CLOUD_OK = 0,
	CLOUD_ERR_NET = -1,	/* network or 5xx: retry with back-off */
	CLOUD_ERR_AUTH = -2,	/* 401/403 on sign-in: wrong credentials */
	CLOUD_ERR_REFUSED = -3,	/* other 4xx, bad URL or scheme, bad reply */
	CLOUD_ERR_CANCELLED = -4,	/* the cancel flag was raised */
	CLOUD_ERR_SINK = -5,	/* the sink refused the bytes; its owner logs why */
};

/* Keeps pointers into cf: it must outlive the cloud.  The identity is
 * cf->serial and cf->password. */
struct cloud	*cloud_new(const struct config *cf);
/* One machine of a fleet: its own identity, cf for the rest ([SERVICE]).
 * The strings are kept, not copied: they must outlive the cloud.  name,
 * when not NULL, starts every log line of this cloud ("<name>: ..."), so
 * a fleet's lines say which machine; NULL for none (a single machine). */
struct cloud	*cloud_new_identity(const struct config *cf,
		    const char *serial, const char *password, const char *name);
/* Asynchronous operations still running are cancelled first (their done()
 * runs, with CLOUD_ERR_CANCELLED, before this returns): with any running,
 * call it on the loop thread, while the loop runs (a done() may call it). */
void		 cloud_free(struct cloud *c);
/* From any thread: every call under way or to come ends at once with
 * CLOUD_ERR_CANCELLED (shutdown). */
void		 cloud_abort(struct cloud *c);

/* POST /machines/sign_in as JSON; keeps auth_token for later calls and
 * returns the single-use ws_token (malloc'ed; caller wipes and frees). */
enum cloud_result cloud_sign_in(struct cloud *c, char **ws_token);
/* Calls made with the Bearer token: a 401 signs in again (the new ws_token
 * is wiped unused) and replays the request once. */

/* GET /update/current: the advertised version (malloc'ed). */
enum cloud_result cloud_fw_probe(struct cloud *c, char **version);
/* A probe's outcome (r, and the version offered) against the machine's
 * own (mine, proto_fw_version()), in one line on lg: a failure, another
 * version offered, or (say_current) the same.  0 when the service
 * answered, -1 when the probe failed. */
int		 cloud_fw_probe_check(const struct mlog *lg, enum cloud_result r,
		    const char *offered, const char *mine, int say_current);
/* With endpoint: PUT there, image/jpeg, no Authorization.  Without: POST
 * <server>/api/machines/<type>/<id> with Bearer. */
/*
 * Upload and download log each failure themselves, in one line that starts
 * with what the call was for ("<type> <id> upload", or the download's
 * what, e.g. "job 7"), except CLOUD_ERR_SINK (the sink's owner knows why)
 * and CLOUD_ERR_CANCELLED (an info line).  Callers add no line of their own
 * for the rest.
 */
enum cloud_result cloud_upload(struct cloud *c, const char *endpoint,
		    const char *type, int64_t id, const void *jpeg, size_t len);

/* Download: sink gets the bytes as they arrive; declared gets the
 * Content-Length before any byte when the server sends one.  cancel, when not
 * NULL, is polled during the transfer.
 * Redirects (at most 5) are followed here, hop by hop: a hop whose URL has
 * server_url's scheme, host and port carries the Bearer token (and a 401
 * there signs in again and replays once), others not, as [SERVICE]
 * download_auth says.  Every byte received on every hop (redirect and
 * error bodies too) counts against max_bytes; the whole download ends at
 * transfer_timeout, or when slower than min_speed for min_speed_time. */
struct cloud_sink {
	int	(*declared)(uint64_t len, void *arg);	/* non-zero: abort */
	int	(*data)(const void *buf, size_t len, void *arg); /* likewise */
	void	*arg;
	uint64_t max_bytes;	/* received over all hops; 0: no bound */
};
enum cloud_result cloud_download(struct cloud *c, const char *url,
		    const struct cloud_sink *sink, const atomic_int *cancel,
		    const char *what);

/*
 * The asynchronous forms, on the loop thread of ev (see evloop.h), with the
 * same policy, limits and log lines as the blocking ones above:
 * - done() runs exactly once per operation started, always on the loop,
 *   never from inside the *_start call (an immediate failure is deferred
 *   to the next loop pass), so it may start the next operation at once;
 * - a *_start returns NULL only when nothing was started (out of memory,
 *   or a NULL cloud, loop or done): done() is then never called;
 * - the strings and the sink struct passed in are copied; jpeg and
 *   sink->arg must stay valid until done() (not after);
 * - a call with the Bearer token signs in first when there is none, and a
 *   401 signs in again (one sign-in for all the operations of this cloud
 *   that hit it at once) and replays once, as the blocking calls do;
 * - cloud_abort() ends them too, at curl's next look at each transfer
 *   (within a second), with CLOUD_ERR_CANCELLED;
 *   evloop_stop() ends them with CLOUD_ERR_CANCELLED at once.
 * Strings handed to done() are the callee's: ws_token to wipe and free
 * with secret_free() (secret.h), text (the firmware version) to free(); both
 * NULL unless r is CLOUD_OK.
 */
struct cloud_op;
typedef void	(*cloud_done)(void *arg, enum cloud_result r);
typedef void	(*cloud_token_done)(void *arg, enum cloud_result r,
		    char *ws_token);
typedef void	(*cloud_text_done)(void *arg, enum cloud_result r,
		    char *text);

struct cloud_op	*cloud_sign_in_start(struct cloud *c, struct evloop *ev,
		    cloud_token_done done, void *arg);
struct cloud_op	*cloud_fw_probe_start(struct cloud *c, struct evloop *ev,
		    cloud_text_done done, void *arg);
struct cloud_op	*cloud_upload_start(struct cloud *c, struct evloop *ev,
		    const char *endpoint, const char *type, int64_t id,
		    const void *jpeg, size_t len, cloud_done done, void *arg);
/* The sink's callbacks run on the loop, once per chunk as it arrives. */
struct cloud_op	*cloud_download_start(struct cloud *c, struct evloop *ev,
		    const char *url, const struct cloud_sink *sink,
		    const char *what, cloud_done done, void *arg);
/* On the loop, any time before done() ran (from a sink callback too):
 * done() runs with CLOUD_ERR_CANCELLED before this returns, no sink
 * callback follows, and op is gone. */
void		 cloud_op_cancel(struct cloud_op *op);
/* Asynchronous operations of c not yet done, counting a re-sign-in of its
 * own under way (for tests and metrics). */
unsigned	 cloud_ops_running(const struct cloud *c);

/* The URL's scheme is http or https (case-insensitive). */
int		 cloud_url_allowed(const char *url);
const char	*cloud_strerror(enum cloud_result r);

#endif
