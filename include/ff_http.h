/*
 * ff_http: the JSON endpoints of the 5M-era HTTP API (port 8898), with no
 * sockets: a path and a POST body in, a status and a JSON body out.
 *
 * Every request carries {"serialNumber": ..., "checkCode": ...}; a wrong,
 * missing or unparsable pair gets {"code":1001,...} (status 200, as the
 * printers answer).  Otherwise {"code":0,"message":"Success",...} or an
 * error code: FF_HTTP_BUSY (2) when the printer's state refuses the
 * request (FLASHFORGE.md's "busy"), FF_HTTP_BAD (1, ours) for a request
 * it cannot carry out (unknown file, command or argument).  Models without
 * the HTTP API (Finder, Adventurer 3 and 4) answer 404 to every path.
 */
#ifndef GFE_FF_HTTP_H
#define GFE_FF_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "ff_model.h"

#define FF_HTTP_OK	0
#define FF_HTTP_BAD	1
#define FF_HTTP_BUSY	2
#define FF_HTTP_AUTH	1001

/*
 * path: "/detail" (a "?query" is ignored); body: the POST body, not
 * necessarily NUL-terminated (NULL when body_len is 0).  Sets *resp to a
 * malloc'd NUL-terminated JSON string (the caller free()s it) and *status
 * to the HTTP status.  Handles /product /detail /control /gcodeList
 * /gcodeThumb /printGcode; an unknown path gets 404 with a JSON error.
 * Returns 0, or -1 only when out of memory (*resp is then NULL).
 * /uploadGcode is streamed by the server, which checks the headers with
 * ff_http_auth() and calls ff_model_file_add() and ff_model_print_file().
 */
int	 ff_http_handle(struct ff_model *m, const char *path, const char *body,
	    size_t body_len, int64_t now_ms, char **resp, int *status);
/* GET /getThum, printFileThumbUrl's target: the current job's image. */
#define FF_HTTP_THUM_PATH	"/getThum"
/* 0 and the job's PNG (static, len bytes) when a job's file is current;
 * -1 when none is (404), or the model has no HTTP API. */
int	 ff_http_get_thum(struct ff_model *m, int64_t now_ms,
	    const uint8_t **png, size_t *len);
/* 1 when serial and check_code are this printer's pair, else 0. */
int	 ff_http_auth(const struct ff_model *m, const char *serial,
	    const char *check_code);

#endif
