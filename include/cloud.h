/*
 * cloud: the HTTPS side of the service (libcurl): sign-in, firmware probe,
 * image upload, pulse file download.  Blocking calls, made from the link,
 * dispatcher and job threads, never from the WebSocket loop.  Every handle is
 * limited to http/https (redirects too), verifies TLS, has connect and
 * low-speed timeouts.  Tokens live here and nowhere else.
 */
#ifndef GFE_CLOUD_H
#define GFE_CLOUD_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

struct config;
struct cloud;

enum cloud_result {
	CLOUD_OK = 0,
	CLOUD_ERR_NET = -1,	/* network or 5xx: retry with back-off */
	CLOUD_ERR_AUTH = -2,	/* 401/403 on sign-in: wrong credentials */
	CLOUD_ERR_REFUSED = -3,	/* other 4xx, bad URL or scheme, bad reply */
	CLOUD_ERR_CANCELLED = -4,	/* the cancel flag was raised */
	CLOUD_ERR_SINK = -5,	/* the sink refused the bytes; its owner logs why */
};

/* Keeps pointers into cf: it must outlive the cloud. */
struct cloud	*cloud_new(const struct config *cf);
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

/* The URL's scheme is http or https (case-insensitive). */
int		 cloud_url_allowed(const char *url);
const char	*cloud_strerror(enum cloud_result r);
/* Wipes a secret string (explicit_bzero) and frees it; NULL is fine.  For
 * the ws_token that cloud_sign_in hands out. */
void		 cloud_secret_free(char *s);

#endif
