/*
 * test_cloud_async: the asynchronous cloud calls (cloud_*_start) on a real
 * evloop, against a loopback HTTP server on the same uv loop
 * (test_cloud_srv.c), over real sockets; then against the real
 * gf-cloud-sim when it is built.  Every done() checks it is not called
 * from inside a *_start and counts its calls: each case ends with each
 * op done exactly once and the loop closing with no handle left.
 */
#include <fcntl.h>
#include <malloc.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cloud.h"
#include "config.h"
#include "evloop.h"
#include "log.h"
#include "secret.h"
#include "test_cloud_srv.h"

#define GUARD_MS	60000	/* a case that hangs fails, not ctest */
#define FLEET_OPS	200

extern char **environ;

struct fx {
	struct config	 cf;
	struct evloop	*ev;
	uv_loop_t	*loop;
	struct tsrv	 srv;
	struct cloud	*c;
	uv_timer_t	 guard;
	uv_timer_t	 stopper;
	int		 timed_out;
	int		 pending;	/* ops started, done() not yet run */
	const char	*held;		/* the last held request's target */
};

/* What one op's done() saw. */
struct res {
	struct fx	*fx;
	int		 calls;
	enum cloud_result r;
	char		*text;		/* ws_token or version */
};

static int in_start;	/* raised around every *_start call */
static int reentered;	/* done() calls from inside a *_start */

/* --- fixture --- */

static void
guard_cb(uv_timer_t *t)
{
	struct fx *fx = t->data;

	fx->timed_out = 1;
}

static void
srv_event(struct tsrv *s, const char *target)
{
	struct fx *fx = s->user;

	if (target != NULL)
		fx->held = target;
}

static int
fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (fx == NULL || (fx->ev = evloop_new(NULL, 0)) == NULL)
		return -1;
	fx->loop = evloop_uv(fx->ev);
	if (tsrv_start(&fx->srv, fx->loop) == -1)
		return -1;
	fx->srv.event = srv_event;
	fx->srv.user = fx;
	uv_timer_init(fx->loop, &fx->guard);
	fx->guard.data = fx;
	uv_timer_start(&fx->guard, guard_cb, GUARD_MS, 0);
	fx->cf.server_url = fx->srv.url;
	fx->cf.serial = (char *)TSRV_SERIAL;
	fx->cf.password = (char *)TSRV_PASSWORD;
	if ((fx->c = cloud_new(&fx->cf)) == NULL)
		return -1;
	reentered = 0;
	*state = fx;
	return 0;
}

static void
stopper_cb(uv_timer_t *t)
{
	struct fx *fx = t->data;

	uv_close((uv_handle_t *)t, NULL);
	evloop_stop(fx->ev);
}

static int
fx_teardown(void **state)
{
	struct fx *fx = *state;

	if (fx->c != NULL)
		assert_int_equal(cloud_ops_running(fx->c), 0);
	cloud_free(fx->c);
	tsrv_stop(&fx->srv);
	uv_close((uv_handle_t *)&fx->guard, NULL);
	if (!evloop_stopping(fx->ev)) {
		uv_timer_init(fx->loop, &fx->stopper);
		fx->stopper.data = fx;
		uv_timer_start(&fx->stopper, stopper_cb, 0, 0);
	}
	/* Every op's handle closed: none left behind. */
	assert_int_equal(evloop_run(fx->ev), 0);
	evloop_free(fx->ev);
	assert_int_equal(reentered, 0);
	free(fx);
	return 0;
}

/* Runs the loop until *cond is non-zero (or the guard fires). */
static void
run_until(struct fx *fx, const int *cond)
{
	while (!*cond && !fx->timed_out)
		uv_run(fx->loop, UV_RUN_ONCE);
	if (fx->timed_out)
		fail_msg("timed out waiting");
}

static int
no_pending(const struct fx *fx)
{
	return fx->pending == 0;
}

static void
run_ops(struct fx *fx)
{
	while (!no_pending(fx) && !fx->timed_out)
		uv_run(fx->loop, UV_RUN_ONCE);
	if (fx->timed_out)
		fail_msg("timed out: %d ops not done", fx->pending);
}

/* --- done() callbacks --- */

static void
res_done(void *arg, enum cloud_result r)
{
	struct res *x = arg;

	if (in_start)
		reentered++;
	x->calls++;
	x->r = r;
	x->fx->pending--;
}

static void
res_text(void *arg, enum cloud_result r, char *text)
{
	struct res *x = arg;

	res_done(arg, r);
	if ((r == CLOUD_OK) != (text != NULL))
		fail_msg("result %d with text %p", r, (void *)text);
	secret_free(x->text);
	x->text = text;
}

static void
res_init(struct res *x, struct fx *fx)
{
	memset(x, 0, sizeof(*x));
	x->fx = fx;
	fx->pending++;
}

/* The op must not be done yet when its *_start returns. */
#define START(x, call) do {						\
	in_start = 1;							\
	if ((call) == NULL)						\
		fail_msg("%s returned NULL", #call);			\
	in_start = 0;							\
	assert_int_equal((x)->calls, 0);				\
} while (0)

static struct cloud_op *
sign_in(struct fx *fx, struct cloud *c, struct res *x)
{
	struct cloud_op *op;

	res_init(x, fx);
	in_start = 1;
	op = cloud_sign_in_start(c, fx->ev, res_text, x);
	in_start = 0;
	assert_non_null(op);
	assert_int_equal(x->calls, 0);
	return op;
}

static struct cloud_op *
probe(struct fx *fx, struct cloud *c, struct res *x)
{
	struct cloud_op *op;

	res_init(x, fx);
	in_start = 1;
	op = cloud_fw_probe_start(c, fx->ev, res_text, x);
	in_start = 0;
	assert_non_null(op);
	assert_int_equal(x->calls, 0);
	return op;
}

/* --- sign-in --- */

struct test_case {
	const char	*name;
	int		 status;	/* the server's forced status, or 0 */
	const char	*password;	/* NULL: the right one */
	enum cloud_result r;
	int		 requests;
};

static const struct test_case signin_cases[] = {
	{ "ok", 0, NULL, CLOUD_OK, 1 },
	{ "wrong password", 0, "00", CLOUD_ERR_AUTH, 1 },
	{ "no password", 0, "", CLOUD_ERR_REFUSED, 0 },
	{ "403", 403, NULL, CLOUD_ERR_AUTH, 1 },
	{ "500", 500, NULL, CLOUD_ERR_NET, 1 },
	{ "503", 503, NULL, CLOUD_ERR_NET, 1 },
	{ "404", 404, NULL, CLOUD_ERR_REFUSED, 1 },
};

static void
test_sign_in(void **state)
{
	struct fx *fx = *state;
	struct cloud *c;
	struct res x;
	size_t i;
	int before;

	for (i = 0; i < sizeof(signin_cases) / sizeof(signin_cases[0]); i++) {
		const struct test_case *tc = &signin_cases[i];

		fx->srv.signin_status = tc->status;
		assert_non_null(c = cloud_new_identity(&fx->cf, TSRV_SERIAL,
		    tc->password != NULL ? tc->password : TSRV_PASSWORD,
		    NULL));
		before = fx->srv.requests;
		sign_in(fx, c, &x);
		run_ops(fx);
		if (x.calls != 1 || x.r != tc->r)
			fail_msg("%s: %d calls, %s", tc->name, x.calls,
			    cloud_strerror(x.r));
		assert_int_equal(fx->srv.requests - before, tc->requests);
		if (tc->r == CLOUD_OK)
			assert_string_equal(x.text, "ws-secret-1");
		secret_free(x.text);
		assert_int_equal(cloud_ops_running(c), 0);
		cloud_free(c);
	}
}

/* A fleet machine signs in as itself. */
static void
test_sign_in_identity(void **state)
{
	struct fx *fx = *state;
	struct cloud *c;
	struct res x;

	assert_non_null(c = cloud_new_identity(&fx->cf, "20000007",
	    "pw-20000007", "S20000007"));
	sign_in(fx, c, &x);
	run_ops(fx);
	assert_int_equal(x.r, CLOUD_OK);
	assert_string_equal(tsrv_req(&fx->srv, 0)->serial, "S20000007");
	secret_free(x.text);
	cloud_free(c);
}

/* --- Bearer calls --- */

static void
test_fw_probe(void **state)
{
	struct fx *fx = *state;
	struct res x;

	/* No token yet: a sign-in first. */
	probe(fx, fx->c, &x);
	run_ops(fx);
	assert_int_equal(x.r, CLOUD_OK);
	assert_string_equal(x.text, "2.7.1-99");
	free(x.text);
	assert_int_equal(fx->srv.signins, 1);
	assert_int_equal(fx->srv.requests, 2);
	/* The token is still good. */
	probe(fx, fx->c, &x);
	run_ops(fx);
	assert_int_equal(x.r, CLOUD_OK);
	assert_int_equal(fx->srv.signins, 1);
	assert_int_equal(fx->srv.requests, 3);
	free(x.text);
	/* Expired: 401, sign in again, replay once. */
	fx->srv.revoked = fx->srv.token_gen;
	probe(fx, fx->c, &x);
	run_ops(fx);
	assert_int_equal(x.r, CLOUD_OK);
	assert_int_equal(fx->srv.signins, 2);
	assert_int_equal(fx->srv.requests, 6);
	free(x.text);
	/* A 401 that persists is replayed once only. */
	fx->srv.bearer_401 = 1;
	probe(fx, fx->c, &x);
	run_ops(fx);
	assert_int_equal(x.r, CLOUD_ERR_REFUSED);
	assert_null(x.text);
	assert_int_equal(fx->srv.signins, 3);
	assert_int_equal(fx->srv.requests, 9);
	/* A sign-in failing during the replay is what is reported. */
	fx->srv.signin_status = 500;
	probe(fx, fx->c, &x);
	run_ops(fx);
	assert_int_equal(x.r, CLOUD_ERR_NET);
	assert_int_equal(fx->srv.requests, 11);
	secret_free(x.text);
}

/* Ops that all find the token expired sign in once between them. */
static void
test_one_sign_in_for_all(void **state)
{
	struct fx *fx = *state;
	struct res x[8];
	int i;

	for (i = 0; i < 8; i++)
		probe(fx, fx->c, &x[i]);
	run_ops(fx);
	assert_int_equal(fx->srv.signins, 1);
	for (i = 0; i < 8; i++)
		free(x[i].text);
	fx->srv.revoked = fx->srv.token_gen;
	for (i = 0; i < 8; i++)
		probe(fx, fx->c, &x[i]);
	run_ops(fx);
	for (i = 0; i < 8; i++) {
		assert_int_equal(x[i].calls, 1);
		assert_int_equal(x[i].r, CLOUD_OK);
		secret_free(x[i].text);
	}
	assert_int_equal(fx->srv.signins, 2);
	/* 1 + 8, then 8 refused, 1 sign-in, 8 replays. */
	assert_int_equal(fx->srv.requests, 9 + 17);
}

static void
upload(struct fx *fx, const char *endpoint, const char *type,
    const void *jpeg, size_t len, struct res *x)
{
	res_init(x, fx);
	START(x, cloud_upload_start(fx->c, fx->ev, endpoint, type, 7, jpeg,
	    len, res_done, x));
	run_ops(fx);
	assert_int_equal(x->calls, 1);
}

static void
test_upload(void **state)
{
	struct fx *fx = *state;
	uint8_t jpeg[3000];
	char url[128], want[64];
	const struct tsrv_req *q;
	struct res x;
	size_t i;

	for (i = 0; i < sizeof(jpeg); i++)
		jpeg[i] = (uint8_t)(i * 13);
	upload(fx, NULL, "lid_image", jpeg, sizeof(jpeg), &x);
	assert_int_equal(x.r, CLOUD_OK);
	q = tsrv_req(&fx->srv, fx->srv.nlog - 1);
	assert_string_equal(q->method, "POST");
	assert_string_equal(q->target, "/api/machines/lid_image/7");
	snprintf(want, sizeof(want), "Bearer tok-secret-%d",
	    fx->srv.token_gen);
	assert_string_equal(q->auth, want);
	assert_int_equal(fx->srv.bodylen, sizeof(jpeg));
	assert_memory_equal(fx->srv.body, jpeg, sizeof(jpeg));

	/* Replayed after a 401, body and all. */
	fx->srv.revoked = fx->srv.token_gen;
	upload(fx, NULL, "head_image", jpeg, sizeof(jpeg), &x);
	assert_int_equal(x.r, CLOUD_OK);
	assert_int_equal(fx->srv.signins, 2);
	assert_int_equal(fx->srv.bodylen, sizeof(jpeg));
	assert_memory_equal(fx->srv.body, jpeg, sizeof(jpeg));

	/* Presigned: PUT, no Authorization. */
	snprintf(url, sizeof(url), "%s/presigned/ok", fx->srv.url);
	upload(fx, url, "lid_image", jpeg, sizeof(jpeg), &x);
	assert_int_equal(x.r, CLOUD_OK);
	q = tsrv_req(&fx->srv, fx->srv.nlog - 1);
	assert_string_equal(q->method, "PUT");
	assert_string_equal(q->auth, "");
	assert_memory_equal(fx->srv.body, jpeg, sizeof(jpeg));

	/* Refused before any request, and still never inside *_start. */
	i = (size_t)fx->srv.requests;
	upload(fx, NULL, "../x", jpeg, sizeof(jpeg), &x);
	assert_int_equal(x.r, CLOUD_ERR_REFUSED);
	upload(fx, "file:///tmp/x", "lid_image", jpeg, sizeof(jpeg), &x);
	assert_int_equal(x.r, CLOUD_ERR_REFUSED);
	assert_int_equal((size_t)fx->srv.requests, i);
}

/* --- downloads --- */

struct sink_log {
	struct fx	*fx;
	int		 declared_calls;
	uint64_t	 declared;
	int		 data_before_declared;
	int		 chunks;
	size_t		 got;
	int		 mismatch;
	struct cloud_op	*cancel_op;	/* cancelled from the callback */
	int		 cancel_in_declared;
	int		 calls_after_cancel;
	int		 cancelled;
	int		 reached;	/* got >= reach */
	size_t		 reach;
};

static int
sink_declared(uint64_t len, void *arg)
{
	struct sink_log *s = arg;

	if (s->cancelled)
		s->calls_after_cancel++;
	s->declared_calls++;
	s->declared = len;
	if (s->cancel_in_declared && s->cancel_op != NULL) {
		s->cancelled = 1;
		cloud_op_cancel(s->cancel_op);
	}
	return 0;
}

static int
sink_data(const void *buf, size_t len, void *arg)
{
	struct sink_log *s = arg;
	const uint8_t *p = buf;
	size_t i;

	if (s->cancelled)
		s->calls_after_cancel++;
	if (s->declared_calls == 0)
		s->data_before_declared = 1;
	for (i = 0; i < len; i++)
		if (p[i] != tsrv_file_byte(s->got + i))
			s->mismatch = 1;
	s->got += len;
	s->chunks++;
	if (s->reach > 0 && s->got >= s->reach)
		s->reached = 1;
	if (!s->cancel_in_declared && s->cancel_op != NULL && !s->cancelled) {
		s->cancelled = 1;
		cloud_op_cancel(s->cancel_op);
	}
	return 0;
}

static struct cloud_op *
download(struct fx *fx, struct cloud *c, const char *base, const char *path,
    struct sink_log *s, uint64_t max, struct res *x)
{
	struct cloud_sink sink = { sink_declared, sink_data, s, max };
	struct cloud_op *op;
	char url[160];

	snprintf(url, sizeof(url), "%s%s", base, path);
	res_init(x, fx);
	in_start = 1;
	op = cloud_download_start(c, fx->ev, url, &sink, "job 7", res_done,
	    x);
	in_start = 0;
	assert_non_null(op);
	assert_int_equal(x->calls, 0);
	return op;
}

static void
test_download(void **state)
{
	struct fx *fx = *state;
	struct sink_log s = { 0 };
	struct res x;

	download(fx, fx->c, fx->srv.url, "/file/ok", &s, 0, &x);
	run_ops(fx);
	assert_int_equal(x.r, CLOUD_OK);
	assert_int_equal(s.declared_calls, 1);
	assert_int_equal(s.declared, TSRV_FILE_LEN);
	assert_false(s.data_before_declared);
	assert_int_equal(s.got, TSRV_FILE_LEN);
	assert_false(s.mismatch);
	/* Streamed: chunk by chunk as it came, not at the end. */
	assert_true(s.chunks > 1);
}

/* Redirects, hop by hop: which hops carry the Bearer. */
struct redirect_case {
	const char	*path;
	int		 mode;		/* download_auth */
	enum cloud_result r;
	const char	*auth;		/* per request after the sign-in:
					 * B Bearer, - none */
};

static const struct redirect_case redirect_cases[] = {
	{ "/chain/3", CONFIG_DL_AUTH_SAME_ORIGIN, CLOUD_OK, "BBBBB" },
	{ "/chain/4", CONFIG_DL_AUTH_SAME_ORIGIN, CLOUD_OK, "BBBBBB" },
	{ "/chain/5", CONFIG_DL_AUTH_SAME_ORIGIN, CLOUD_ERR_REFUSED,
	    "BBBBBB" },
	{ "/loop", CONFIG_DL_AUTH_SAME_ORIGIN, CLOUD_ERR_REFUSED, "BBBBBB" },
	{ "/other/ok", CONFIG_DL_AUTH_SAME_ORIGIN, CLOUD_OK, "B-" },
	{ "/other/ok", CONFIG_DL_AUTH_ALWAYS, CLOUD_OK, "BB" },
	{ "/other/ok", CONFIG_DL_AUTH_NEVER, CLOUD_OK, "--" },
	/* Another host wanting credentials: no token, no replay. */
	{ "/other/auth", CONFIG_DL_AUTH_SAME_ORIGIN, CLOUD_ERR_REFUSED, "B-" },
};

static void
test_redirects(void **state)
{
	struct fx *fx = *state;
	const struct redirect_case *tc;
	struct sink_log s;
	struct res x, w;
	char seen[16];
	size_t i;
	int first, k;

	/* A token first, so every request below is the download's. */
	sign_in(fx, fx->c, &w);
	run_ops(fx);
	secret_free(w.text);
	for (i = 0; i < sizeof(redirect_cases) / sizeof(redirect_cases[0]);
	    i++) {
		tc = &redirect_cases[i];
		fx->cf.download_auth = tc->mode;
		memset(&s, 0, sizeof(s));
		first = fx->srv.nlog;
		download(fx, fx->c, fx->srv.url, tc->path, &s, 0, &x);
		run_ops(fx);
		for (k = 0; k < fx->srv.nlog - first && k < 15; k++)
			seen[k] = tsrv_req(&fx->srv, first + k)->auth[0] ==
			    'B' ? 'B' : '-';
		seen[k] = '\0';
		if (x.calls != 1 || x.r != tc->r || strcmp(seen, tc->auth) != 0)
			fail_msg("%s (mode %d): %s, auth %s", tc->path,
			    tc->mode, cloud_strerror(x.r), seen);
		/* The sink sees the file only, never a redirect or error. */
		assert_int_equal(s.got, tc->r == CLOUD_OK ? TSRV_FILE_LEN : 0);
		assert_false(s.mismatch);
	}
	assert_int_equal(fx->srv.signins, 1);
}

/* An expired token on a download: 401, sign in again, replay once. */
static void
test_download_replay(void **state)
{
	struct fx *fx = *state;
	struct sink_log s = { 0 };
	struct res x, w;

	sign_in(fx, fx->c, &w);
	run_ops(fx);
	secret_free(w.text);
	fx->srv.revoked = fx->srv.token_gen;
	download(fx, fx->c, fx->srv.url, "/file/auth", &s, 0, &x);
	run_ops(fx);
	assert_int_equal(x.r, CLOUD_OK);
	assert_int_equal(fx->srv.signins, 2);
	/* The 401's page never reached the sink. */
	assert_int_equal(s.got, TSRV_FILE_LEN);
	assert_false(s.mismatch);
	assert_int_equal(s.declared_calls, 1);
}

/* max_bytes counts every byte over every hop: the 401's page too. */
static void
test_download_cap(void **state)
{
	static const struct {
		const char	*path;
		int		 revoke;
		uint64_t	 max;
		enum cloud_result r;
	} t[] = {
		{ "/file/ok", 0, TSRV_FILE_LEN / 2, CLOUD_ERR_REFUSED },
		{ "/file/ok", 0, TSRV_FILE_LEN, CLOUD_OK },
		{ "/file/auth", 1, TSRV_FILE_LEN + 1, CLOUD_ERR_REFUSED },
		{ "/file/auth", 1, TSRV_FILE_LEN + TSRV_DENY_LEN, CLOUD_OK },
		{ "/chain/2", 0, TSRV_FILE_LEN, CLOUD_OK },
	};
	struct fx *fx = *state;
	struct sink_log s;
	struct res x, w;
	size_t i;

	sign_in(fx, fx->c, &w);
	run_ops(fx);
	secret_free(w.text);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (t[i].revoke)
			fx->srv.revoked = fx->srv.token_gen;
		memset(&s, 0, sizeof(s));
		download(fx, fx->c, fx->srv.url, t[i].path, &s, t[i].max, &x);
		run_ops(fx);
		if (x.r != t[i].r)
			fail_msg("%s max %llu: %s", t[i].path,
			    (unsigned long long)t[i].max,
			    cloud_strerror(x.r));
		assert_true(s.got <= t[i].max);
	}
}

static void
test_download_refused(void **state)
{
	static const struct {
		const char	*url;
		enum cloud_result r;
	} t[] = {
		{ "file:///etc/passwd", CLOUD_ERR_REFUSED },
		{ "gopher://127.0.0.1/", CLOUD_ERR_REFUSED },
		{ "", CLOUD_ERR_REFUSED },
	};
	struct fx *fx = *state;
	struct cloud_sink nosink = { NULL, NULL, NULL, 0 };
	struct sink_log s;
	struct res x;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&s, 0, sizeof(s));
		download(fx, fx->c, t[i].url, "", &s, 0, &x);
		run_ops(fx);
		assert_int_equal(x.calls, 1);
		assert_int_equal(x.r, t[i].r);
	}
	res_init(&x, fx);
	START(&x, cloud_download_start(fx->c, fx->ev, fx->srv.url, &nosink,
	    NULL, res_done, &x));
	run_ops(fx);
	assert_int_equal(x.r, CLOUD_ERR_REFUSED);
	assert_int_equal(fx->srv.requests, 0);
	/* Nothing starts without a cloud, a loop or a done(). */
	assert_null(cloud_fw_probe_start(NULL, fx->ev, res_text, &x));
	assert_null(cloud_fw_probe_start(fx->c, NULL, res_text, &x));
	assert_null(cloud_fw_probe_start(fx->c, fx->ev, NULL, &x));
}

/* The limits of the blocking calls hold on the loop too: a stalled body
 * ends at transfer_timeout, or below min_speed for min_speed_time. */
static void
test_download_limits(void **state)
{
	static const struct {
		double		 timeout;	/* s */
		int		 speed;		/* bytes/s */
		int		 speed_time;	/* s */
	} t[] = {
		{ 1, 0, 0 },
		{ 0, 1000000, 1 },
	};
	struct fx *fx = *state;
	struct sink_log s;
	struct res x;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		fx->cf.transfer_timeout = t[i].timeout;
		fx->cf.min_speed = t[i].speed;
		fx->cf.min_speed_time = t[i].speed_time;
		memset(&s, 0, sizeof(s));
		download(fx, fx->c, fx->srv.url, "/drip", &s, 0, &x);
		run_ops(fx);
		assert_int_equal(x.r, CLOUD_ERR_NET);
		assert_int_equal(s.got, TSRV_DRIP_SENT);
	}
}

/* --- cancel --- */

static void
test_cancel_before_start(void **state)
{
	struct fx *fx = *state;
	struct cloud_op *op;
	struct sink_log s = { 0 };
	struct res x, y;

	op = download(fx, fx->c, fx->srv.url, "/file/ok", &s, 0, &x);
	cloud_op_cancel(op);
	/* done() ran inside cancel. */
	assert_int_equal(x.calls, 1);
	assert_int_equal(x.r, CLOUD_ERR_CANCELLED);
	assert_int_equal(cloud_ops_running(fx->c), 0);
	/* The next op is the only one the server sees. */
	probe(fx, fx->c, &y);
	run_ops(fx);
	assert_int_equal(y.r, CLOUD_OK);
	secret_free(y.text);
	assert_int_equal(fx->srv.requests, 2);
	assert_int_equal(x.calls, 1);
	assert_int_equal(s.got, 0);
}

/* Cancelled while it waits for a sign-in the server never answers. */
static void
test_cancel_waiting_sign_in(void **state)
{
	struct fx *fx = *state;
	struct cloud_op *op;
	struct res x;
	int held = 0;

	fx->srv.signin_hold = 1;
	op = probe(fx, fx->c, &x);
	while (fx->srv.held == 0 && !fx->timed_out)
		uv_run(fx->loop, UV_RUN_ONCE);
	held = fx->srv.held;
	assert_int_equal(held, 1);
	/* The probe and the cloud's sign-in. */
	assert_int_equal(cloud_ops_running(fx->c), 2);
	cloud_op_cancel(op);
	assert_int_equal(x.calls, 1);
	assert_int_equal(x.r, CLOUD_ERR_CANCELLED);
	assert_null(x.text);
	/* cloud_free() ends the sign-in: the server sees it hang up. */
	assert_int_equal(cloud_ops_running(fx->c), 1);
	cloud_free(fx->c);
	fx->c = NULL;
	run_until(fx, &fx->srv.hangups);
	assert_int_equal(x.calls, 1);
}

/* Mid-body, from outside the sink: no byte after, the socket closes. */
static void
test_cancel_in_flight(void **state)
{
	struct fx *fx = *state;
	struct sink_log s = { 0 };
	struct cloud_op *op;
	struct res x;
	uint64_t t0;

	s.reach = TSRV_DRIP_SENT;
	op = download(fx, fx->c, fx->srv.url, "/drip", &s, 0, &x);
	run_until(fx, &s.reached);
	t0 = uv_hrtime();
	cloud_op_cancel(op);
	s.cancelled = 1;
	assert_int_equal(x.calls, 1);
	assert_int_equal(x.r, CLOUD_ERR_CANCELLED);
	assert_int_equal(cloud_ops_running(fx->c), 0);
	run_until(fx, &fx->srv.hangups);
	/* Informative only: how soon curl let go of the socket. */
	print_message("socket closed %.3f ms after the cancel\n",
	    (double)(uv_hrtime() - t0) / 1e6);
	assert_int_equal(s.got, TSRV_DRIP_SENT);
	assert_int_equal(s.calls_after_cancel, 0);
	assert_int_equal(x.calls, 1);
}

/* From inside the sink's own callbacks. */
static void
test_cancel_from_sink(void **state)
{
	struct fx *fx = *state;
	struct sink_log s;
	struct res x;
	int k;

	for (k = 0; k < 2; k++) {
		memset(&s, 0, sizeof(s));
		s.cancel_in_declared = k;
		s.cancel_op = download(fx, fx->c, fx->srv.url, "/file/ok", &s,
		    0, &x);
		run_until(fx, &s.cancelled);
		assert_int_equal(x.calls, 1);
		assert_int_equal(x.r, CLOUD_ERR_CANCELLED);
		assert_int_equal(cloud_ops_running(fx->c), 0);
		/* Until the server has closed its side. */
		while (fx->srv.conns > 0 && !fx->timed_out)
			uv_run(fx->loop, UV_RUN_ONCE);
		assert_int_equal(s.calls_after_cancel, 0);
		assert_int_equal(s.chunks, k ? 0 : 1);
		assert_int_equal(x.calls, 1);
	}
}

/* An upload cancelled while curl is still sending: the body is freed
 * at once (a read of it after done() is ASan's to catch). */
static void
test_cancel_upload_body(void **state)
{
	struct fx *fx = *state;
	size_t len = 32u << 20;
	struct cloud_op *op;
	struct res x;
	char url[128];
	uint8_t *jpeg;

	assert_non_null(jpeg = malloc(len));
	memset(jpeg, 0xab, len);
	snprintf(url, sizeof(url), "%s/presigned/stall", fx->srv.url);
	res_init(&x, fx);
	START(&x, op = cloud_upload_start(fx->c, fx->ev, url, "lid_image", 1,
	    jpeg, len, res_done, &x));
	while (fx->held == NULL && !fx->timed_out)
		uv_run(fx->loop, UV_RUN_ONCE);
	assert_string_equal(fx->held, "/presigned/stall");
	cloud_op_cancel(op);
	assert_int_equal(x.r, CLOUD_ERR_CANCELLED);
	free(jpeg);
	tsrv_resume(&fx->srv);
	run_until(fx, &fx->srv.hangups);
	assert_int_equal(x.calls, 1);
}

/* cloud_free() with ops under way: each done() runs, inside it. */
static void
test_free_in_flight(void **state)
{
	struct fx *fx = *state;
	struct sink_log s[2];
	struct res x[3];
	int i;

	memset(s, 0, sizeof(s));
	download(fx, fx->c, fx->srv.url, "/silent", &s[0], 0, &x[0]);
	download(fx, fx->c, fx->srv.url, "/drip", &s[1], 0, &x[1]);
	probe(fx, fx->c, &x[2]);
	while (fx->srv.held < 2 && !fx->timed_out)
		uv_run(fx->loop, UV_RUN_ONCE);
	assert_int_equal(fx->srv.held, 2);
	cloud_free(fx->c);
	fx->c = NULL;
	for (i = 0; i < 2; i++) {
		assert_int_equal(x[i].calls, 1);
		assert_int_equal(x[i].r, CLOUD_ERR_CANCELLED);
	}
	/* The probe may have been answered before. */
	assert_int_equal(x[2].calls, 1);
	secret_free(x[2].text);
	while (fx->srv.hangups < 2 && !fx->timed_out)
		uv_run(fx->loop, UV_RUN_ONCE);
	assert_int_equal(fx->srv.hangups, 2);
}

/* A done() that frees the cloud while its sign-in wakes the others: the
 * rest end cancelled, once each, and the cloud goes after the last. */
static struct cloud **free_me;

static void
res_text_free(void *arg, enum cloud_result r, char *text)
{
	res_text(arg, r, text);
	if (*free_me != NULL) {
		cloud_free(*free_me);
		*free_me = NULL;
	}
}

static void
test_free_from_done(void **state)
{
	struct fx *fx = *state;
	struct res x[4];
	int i, net = 0, cancelled = 0;

	fx->srv.signin_status = 503;
	free_me = &fx->c;
	for (i = 0; i < 4; i++) {
		res_init(&x[i], fx);
		assert_non_null(cloud_fw_probe_start(fx->c, fx->ev,
		    res_text_free, &x[i]));
	}
	run_ops(fx);
	assert_null(fx->c);
	for (i = 0; i < 4; i++) {
		assert_int_equal(x[i].calls, 1);
		net += x[i].r == CLOUD_ERR_NET;
		cancelled += x[i].r == CLOUD_ERR_CANCELLED;
	}
	assert_int_equal(net, 1);
	assert_int_equal(cancelled, 3);
	assert_int_equal(fx->srv.requests, 1);
}

/* evloop_stop() with ops under way: each ends cancelled. */
static void
test_loop_stop_in_flight(void **state)
{
	struct fx *fx = *state;
	struct sink_log s = { 0 };
	struct res x, y;

	download(fx, fx->c, fx->srv.url, "/silent", &s, 0, &x);
	while (fx->srv.held < 1 && !fx->timed_out)
		uv_run(fx->loop, UV_RUN_ONCE);
	/* A probe whose token expired waits on a sign-in held too. */
	fx->srv.revoked = fx->srv.token_gen;
	fx->srv.signin_hold = 1;
	probe(fx, fx->c, &y);
	while (fx->srv.held < 2 && !fx->timed_out)
		uv_run(fx->loop, UV_RUN_ONCE);
	assert_int_equal(cloud_ops_running(fx->c), 3);
	uv_timer_init(fx->loop, &fx->stopper);
	fx->stopper.data = fx;
	uv_timer_start(&fx->stopper, stopper_cb, 0, 0);
	run_ops(fx);
	assert_int_equal(x.calls, 1);
	assert_int_equal(x.r, CLOUD_ERR_CANCELLED);
	assert_int_equal(y.calls, 1);
	assert_int_equal(y.r, CLOUD_ERR_CANCELLED);
	assert_int_equal(cloud_ops_running(fx->c), 0);
}

/* cloud_abort() (shutdown, from any thread): ops in flight end, new ones
 * send nothing. */
static void
test_abort(void **state)
{
	struct fx *fx = *state;
	struct sink_log s = { 0 };
	struct res x, y;
	int before;

	download(fx, fx->c, fx->srv.url, "/silent", &s, 0, &x);
	while (fx->srv.held < 1 && !fx->timed_out)
		uv_run(fx->loop, UV_RUN_ONCE);
	cloud_abort(fx->c);
	run_ops(fx);
	assert_int_equal(x.calls, 1);
	assert_int_equal(x.r, CLOUD_ERR_CANCELLED);
	before = fx->srv.requests;
	probe(fx, fx->c, &y);
	run_ops(fx);
	assert_int_equal(y.r, CLOUD_ERR_CANCELLED);
	assert_int_equal(fx->srv.requests, before);
	run_until(fx, &fx->srv.hangups);
}

/* --- many at once --- */

static void
test_concurrent_downloads(void **state)
{
	struct fx *fx = *state;
	struct sink_log *s;
	struct res *x;
	int i;

	assert_non_null(s = calloc(FLEET_OPS, sizeof(*s)));
	assert_non_null(x = calloc(FLEET_OPS, sizeof(*x)));
	for (i = 0; i < FLEET_OPS; i++)
		download(fx, fx->c, fx->srv.url, "/file/ok", &s[i], 0, &x[i]);
	assert_int_equal(cloud_ops_running(fx->c), FLEET_OPS);
	run_ops(fx);
	for (i = 0; i < FLEET_OPS; i++) {
		assert_int_equal(x[i].calls, 1);
		assert_int_equal(x[i].r, CLOUD_OK);
		assert_int_equal(s[i].got, TSRV_FILE_LEN);
		assert_false(s[i].mismatch);
	}
	/* They all waited for one sign-in. */
	assert_int_equal(fx->srv.signins, 1);
	assert_int_equal(fx->srv.requests, FLEET_OPS + 1);
	free(s);
	free(x);
}

/* A fleet: one cloud per machine, each its own identity, on one loop. */
static void
test_fleet_identities(void **state)
{
	struct fx *fx = *state;
	char serial[FLEET_OPS][16], pw[FLEET_OPS][24];
	struct cloud *c[FLEET_OPS];
	struct res *x;
	int i;

	assert_non_null(x = calloc(FLEET_OPS, sizeof(*x)));
	for (i = 0; i < FLEET_OPS; i++) {
		snprintf(serial[i], sizeof(serial[i]), "%d", 20000000 + i);
		snprintf(pw[i], sizeof(pw[i]), "pw-%d", 20000000 + i);
		assert_non_null(c[i] = cloud_new_identity(&fx->cf, serial[i],
		    pw[i], serial[i]));
		probe(fx, c[i], &x[i]);
	}
	run_ops(fx);
	for (i = 0; i < FLEET_OPS; i++) {
		assert_int_equal(x[i].r, CLOUD_OK);
		secret_free(x[i].text);
		cloud_free(c[i]);
	}
	assert_int_equal(fx->srv.signins, FLEET_OPS);
	assert_int_equal(fx->srv.requests, 2 * FLEET_OPS);
	free(x);
}

/* --- logs --- */

static char *
slurp(const char *path)
{
	static char buf[1 << 16];
	size_t n;
	FILE *fp;

	assert_non_null(fp = fopen(path, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static int
count(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* One line per failure, starting with the machine and the label; no
 * secret in any line. */
static void
test_log_lines(void **state)
{
	static const char *const secrets[] = {
		TSRV_PASSWORD, "pw-20000009", "tok-secret", "ws-secret",
	};
	struct fx *fx = *state;
	char path[] = "/tmp/test_cloud_async_log.XXXXXX", want[160], *buf;
	struct sink_log s = { 0 };
	struct cloud *c;
	struct res x;
	size_t i;
	int fd;

	assert_true((fd = mkstemp(path)) != -1);
	close(fd);
	assert_int_equal(log_init(LOG_TO_CONSOLE, LOG_DEBUG, path), 0);
	assert_non_null(c = cloud_new_identity(&fx->cf, "20000009",
	    "pw-20000009", "S20000009"));
	download(fx, c, fx->srv.url, "/missing", &s, 0, &x);
	run_ops(fx);
	assert_int_equal(x.r, CLOUD_ERR_REFUSED);
	fx->srv.revoked = fx->srv.token_gen;
	fx->srv.signin_status = 503;
	download(fx, c, fx->srv.url, "/file/auth", &s, 0, &x);
	run_ops(fx);
	assert_int_equal(x.r, CLOUD_ERR_NET);
	cloud_free(c);
	log_close();
	log_init(LOG_TO_CONSOLE, LOG_INFO, NULL);
	buf = slurp(path);
	unlink(path);
	snprintf(want, sizeof(want), "S20000009: job 7: GET %s/missing: "
	    "status 404", fx->srv.url);
	if (count(buf, want) != 1 || count(buf, "WARNING") != 3)
		fail_msg("want one \"%s\" in:\n%s", want, buf);
	/* The second: the failed sign-in's line, and what it cost. */
	snprintf(want, sizeof(want), "S20000009: job 7: GET %s/file/auth: "
	    "not sent, no session", fx->srv.url);
	if (count(buf, want) != 1 ||
	    count(buf, "S20000009: sign-in: unexpected status 503") != 1)
		fail_msg("no sign-in failure lines in:\n%s", buf);
	for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (strstr(buf, secrets[i]) != NULL)
			fail_msg("\"%s\" was logged:\n%s", secrets[i], buf);
}

/* --- footprint --- */

/* Heap per idle cloud: a fleet keeps one per machine.  The budget is what
 * the struct needs: no buffer, no handle, no copy of the trust paths. */
static void
test_footprint(void **state)
{
	enum { N = 1000, BUDGET = 256 };
	struct fx *fx = *state;
	struct mallinfo2 a, b;
	struct cloud **c;
	size_t per;
	int i;

	assert_non_null(c = calloc(N, sizeof(*c)));
	a = mallinfo2();
	for (i = 0; i < N; i++)
		assert_non_null(c[i] = cloud_new_identity(&fx->cf, "1", "2",
		    NULL));
	b = mallinfo2();
	for (i = 0; i < N; i++)
		cloud_free(c[i]);
	free(c);
	per = (b.uordblks - a.uordblks) / N;
	print_message("heap per idle cloud: %zu bytes (budget %d)\n", per,
	    BUDGET);
	if (b.uordblks == a.uordblks)
		skip();	/* a sanitizer's allocator: mallinfo sees nothing */
	assert_true(per <= BUDGET);
}

/* --- the real simulator --- */

struct sim {
	pid_t	 pid;
	int	 port;
	char	 dir[64];
};

static int
sim_start(struct sim *sim)
{
	const char *bin = getenv("GFE_BIN");
	char exe[512], pwf[128], sc[128], port[16];
	posix_spawn_file_actions_t fa;
	int p[2], fd;
	ssize_t n;
	FILE *fp;

	if (bin == NULL)
		return -1;
	snprintf(exe, sizeof(exe), "%s/gf-cloud-sim", bin);
	if (access(exe, X_OK) != 0)
		return -1;
	snprintf(sim->dir, sizeof(sim->dir), "/tmp/test_cloud_sim.XXXXXX");
	assert_non_null(mkdtemp(sim->dir));
	snprintf(pwf, sizeof(pwf), "%s/pw", sim->dir);
	assert_non_null(fp = fopen(pwf, "w"));
	fprintf(fp, "%s\n", TSRV_PASSWORD);
	fclose(fp);
	snprintf(sc, sizeof(sc), "%s/scenario.jsonl", sim->dir);
	assert_non_null(fp = fopen(sc, "w"));
	fprintf(fp, "{\"await\": \"never\", \"timeout\": 60}\n");
	fclose(fp);
	{
		char *argv[] = { exe, (char *)"--port", (char *)"0",
		    (char *)"--print-port", (char *)"--serial",
		    (char *)TSRV_SERIAL, (char *)"--password-file", pwf,
		    (char *)"--scenario", sc, (char *)"--pulse-dir", sim->dir,
		    (char *)"--timeout", (char *)"60", NULL };

		assert_int_equal(pipe(p), 0);
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, p[1], 1);
		posix_spawn_file_actions_addclose(&fa, p[0]);
		fd = posix_spawn(&sim->pid, exe, &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
		close(p[1]);
		assert_int_equal(fd, 0);
	}
	/* The sim prints its port once it listens: no sleep. */
	n = read(p[0], port, sizeof(port) - 1);
	close(p[0]);
	assert_true(n > 0);
	port[n] = '\0';
	sim->port = atoi(port);
	return 0;
}

static void
sim_stop(struct sim *sim)
{
	char cmd[128];
	int st;

	kill(sim->pid, SIGKILL);
	waitpid(sim->pid, &st, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", sim->dir);
	assert_int_equal(system(cmd), 0);
}

static void
test_sim(void **state)
{
	struct fx *fx = *state;
	struct sink_log s = { 0 };
	char url[64], file[128];
	uint8_t jpeg[] = { 0xff, 0xd8, 1, 2, 3, 0xff, 0xd9 };
	struct cloud *c;
	struct sim sim;
	struct res x[4];
	size_t i;
	FILE *fp;

	if (sim_start(&sim) == -1)
		skip();
	snprintf(file, sizeof(file), "%s/job.bin", sim.dir);
	assert_non_null(fp = fopen(file, "w"));
	for (i = 0; i < TSRV_FILE_LEN; i++)
		fputc(tsrv_file_byte(i), fp);
	fclose(fp);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", sim.port);
	fx->cf.server_url = url;
	assert_non_null(c = cloud_new(&fx->cf));
	sign_in(fx, c, &x[0]);
	probe(fx, c, &x[1]);
	run_ops(fx);
	res_init(&x[2], fx);
	START(&x[2], cloud_upload_start(c, fx->ev, NULL, "lid_image", 42,
	    jpeg, sizeof(jpeg), res_done, &x[2]));
	download(fx, c, url, "/pulse/bearer-job.bin", &s, 0, &x[3]);
	run_ops(fx);
	for (i = 0; i < 4; i++)
		if (x[i].calls != 1 || x[i].r != CLOUD_OK)
			fail_msg("op %zu: %s", i, cloud_strerror(x[i].r));
	assert_non_null(x[0].text);
	assert_non_null(x[1].text);
	assert_int_equal(s.got, TSRV_FILE_LEN);
	assert_false(s.mismatch);
	secret_free(x[0].text);
	secret_free(x[1].text);
	cloud_free(c);
	sim_stop(&sim);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define FX(t)	cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)
		FX(test_sign_in),
		FX(test_sign_in_identity),
		FX(test_fw_probe),
		FX(test_one_sign_in_for_all),
		FX(test_upload),
		FX(test_download),
		FX(test_redirects),
		FX(test_download_replay),
		FX(test_download_cap),
		FX(test_download_refused),
		FX(test_download_limits),
		FX(test_cancel_before_start),
		FX(test_cancel_waiting_sign_in),
		FX(test_cancel_in_flight),
		FX(test_cancel_from_sink),
		FX(test_cancel_upload_body),
		FX(test_free_in_flight),
		FX(test_loop_stop_in_flight),
		FX(test_free_from_done),
		FX(test_abort),
		FX(test_concurrent_downloads),
		FX(test_fleet_identities),
		FX(test_log_lines),
		FX(test_footprint),
		FX(test_sim),
#undef FX
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
