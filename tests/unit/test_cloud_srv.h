/*
 * A loopback HTTP/1.1 server for test_cloud_async, run on a libuv loop
 * (the evloop's own, so one thread drives both ends and the order of
 * events is the loop's).  One request per connection, "Connection:
 * close"; canned answers per path, listed in test_cloud_srv.c.
 */
#ifndef TEST_CLOUD_SRV_H
#define TEST_CLOUD_SRV_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define TSRV_SERIAL	"12345678"
#define TSRV_PASSWORD	"0123456789abcdef0123456789abcdef" \
			"0123456789abcdef0123456789abcdef"
#define TSRV_FILE_LEN	100000	/* /file/ok, /file/auth */
#define TSRV_DENY_LEN	4000	/* the body of a 401 on /file/auth */
#define TSRV_DRIP_SENT	10	/* /drip sends this much, then stalls */
#define TSRV_LOG	64	/* requests remembered */

struct tsrv_conn;

struct tsrv_req {
	char		 method[8];
	char		 target[160];
	char		 auth[80];	/* Authorization, or "" */
	char		 serial[32];	/* of a sign-in, or "" */
};

struct tsrv {
	uv_loop_t	*loop;
	uv_tcp_t	 listener;
	int		 port;
	char		 url[64];	/* http://127.0.0.1:<port> */
	char		 other[64];	/* http://localhost:<port>: another host */

	/* Counters. */
	int		 requests;
	int		 signins;	/* successful */
	int		 hangups;	/* held connections the client closed */
	int		 held;		/* connections held open now */
	int		 conns;		/* open now */
	/* Knobs. */
	int		 signin_status;	/* forced sign-in status, or 0 */
	int		 signin_hold;	/* never answer sign-ins */
	int		 bearer_401;	/* refuse every token */
	int		 token_gen;	/* last issued: "tok-secret-<gen>" */
	int		 revoked;	/* tokens up to this gen are expired */
	/* What came in. */
	struct tsrv_req	 log[TSRV_LOG];	/* ring */
	int		 nlog;		/* requests logged (not wrapped) */
	uint8_t		*body;		/* the last body received */
	size_t		 bodylen;
	/* Called when a held request arrived (its target) and when the
	 * client hung up on one (NULL). */
	void		(*event)(struct tsrv *, const char *target);
	void		*user;
	struct tsrv_conn *list;
};

uint8_t	 tsrv_file_byte(size_t i);
int	 tsrv_start(struct tsrv *s, uv_loop_t *loop);
/* Closes the listener and every connection (handles close on the loop). */
void	 tsrv_stop(struct tsrv *s);
/* The i-th request logged from the start (0 = first). */
const struct tsrv_req *tsrv_req(const struct tsrv *s, int i);
/* Resumes reading held connections (after /presigned/stall). */
void	 tsrv_resume(struct tsrv *s);

#endif
