/*
 * test_cloud: cloud_url_allowed() by table, then the HTTP calls against a
 * tiny loopback server run by the test itself (a thread on 127.0.0.1, port
 * chosen by the kernel, one canned answer per path), so the real libcurl
 * code runs over real sockets without the simulator.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "cloud.h"
#include "config.h"
#include "log.h"
#include "secret.h"

#define SERIAL		"12345678"
#define PASSWORD	"0123456789abcdef0123456789abcdef" \
			"0123456789abcdef0123456789abcdef"
#define SIGNATURE	"sekrit-signature-42"
#define FILE_LEN	100000	/* /file/ok */
#define DRIP_SENT	10	/* /drip sends this much, then stalls */

/* --- cloud_url_allowed --- */

static void
test_url_allowed(void **state)
{
	static const struct { const char *url; int ok; } t[] = {
		{ "http://a", 1 },
		{ "https://app.glowforge.com", 1 },
		{ "https://app.glowforge.com/machines/sign_in", 1 },
		{ "HTTPS://EXAMPLE.COM/X", 1 },
		{ "HtTp://h:8080/p?q=1#f", 1 },
		{ "http://127.0.0.1:1/x", 1 },
		{ "http://[::1]:80/", 1 },
		{ "http://user:pw@host/x", 1 },
		{ "https://h?x=1", 1 },
		{ "https://h#frag", 1 },
		{ "https://bucket.s3.amazonaws.com/k?X-Amz-Signature=ab", 1 },
		{ "", 0 },
		{ "http", 0 },
		{ "http:", 0 },
		{ "http:/x", 0 },
		{ "http:x", 0 },
		{ "http//h/x", 0 },
		{ "http://", 0 },
		{ "https://", 0 },
		{ "http:///etc/passwd", 0 },
		{ "http://:80/", 0 },
		{ "http://@/", 0 },
		{ "http://u@", 0 },
		{ "http://?q", 0 },
		{ "http://#f", 0 },
		{ "http://[]/", 0 },
		{ "http://[::1/", 0 },
		{ "file:///etc/passwd", 0 },
		{ "FILE:///etc/passwd", 0 },
		{ "file://localhost/etc/passwd", 0 },
		{ "ftp://h/x", 0 },
		{ "ftps://h/x", 0 },
		{ "gopher://h/x", 0 },
		{ "data:text/plain,hi", 0 },
		{ "dict://h:2628/d:x", 0 },
		{ "ldap://h/", 0 },
		{ "ws://h/", 0 },
		{ "wss://h/", 0 },
		{ "httpx://h/", 0 },
		{ "https+x://h/", 0 },
		{ "javascript:alert(1)", 0 },
		{ "//h/x", 0 },
		{ "h/x", 0 },
		{ "/x", 0 },
		{ " http://h/", 0 },
		{ "http://h/ x", 0 },
		{ "http://h/\r\nX: y", 0 },
		{ "http://h\t/", 0 },
	};
	size_t i;

	(void)state;
	assert_int_equal(cloud_url_allowed(NULL), 0);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (cloud_url_allowed(t[i].url) != t[i].ok)
			fail_msg("cloud_url_allowed(\"%s\") != %d", t[i].url,
			    t[i].ok);
	}
}

static void
test_strerror(void **state)
{
	static const enum cloud_result r[] = {
		CLOUD_OK, CLOUD_ERR_NET, CLOUD_ERR_AUTH, CLOUD_ERR_REFUSED,
		CLOUD_ERR_CANCELLED, CLOUD_ERR_SINK,
	};
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		assert_non_null(cloud_strerror(r[i]));
		assert_true(strlen(cloud_strerror(r[i])) > 1);
		for (j = 0; j < i; j++)
			assert_string_not_equal(cloud_strerror(r[i]),
			    cloud_strerror(r[j]));
	}
	assert_non_null(cloud_strerror((enum cloud_result)42));
}

/* --- the loopback server --- */

struct srv {
	int		 fd;
	int		 port;
	pthread_t	 thread;
	atomic_int	 stop;

	pthread_mutex_t	 lock;		/* guards the rest */
	int		 token_gen;	/* valid: "tok-secret-<gen>" */
	int		 signins;	/* successful sign-ins */
	int		 requests;
	int		 hits_probe;	/* GET /update/current */
	int		 signin_status;	/* forced sign-in reply, or 0 */
	const char	*signin_body;	/* forced 200 body, or NULL */
	int		 bearer_always_401;
	/* The last request. */
	char		 method[8];
	char		 target[512];
	char		 auth[256];
	char		 ctype[64];
	char		 agent[64];
	int		 expect;	/* had an "Expect:" header */
	uint8_t		*body;
	size_t		 bodylen;
};

static struct srv srv;
static char server_url[64];

static void
srv_send(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void
srv_reply(int fd, int status, const char *extra, const void *body,
    size_t len)
{
	char head[512];
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n%s\r\n", status, len,
	    extra != NULL ? extra : "");
	srv_send(fd, head, (size_t)n);
	if (len > 0)
		srv_send(fd, body, len);
}

static void
srv_text(int fd, int status, const char *body)
{
	srv_reply(fd, status, NULL, body, strlen(body));
}

static uint8_t
file_byte(size_t i)
{
	return (uint8_t)(i * 7 + i / 251);
}

/* Headers, then stalls with the connection open until the client hangs
 * up: only the progress callback can see a cancel then. */
static void
srv_drip(int fd)
{
	static const char head[] = "HTTP/1.1 200 OK\r\n"
	    "Content-Length: 1000000\r\n\r\n0123456789";
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;
	int i;

	srv_send(fd, head, sizeof(head) - 1);
	for (i = 0; i < 200 && !atomic_load(&srv.stop); i++)
		if (poll(&pfd, 1, 50) == 1 && recv(fd, &c, 1, 0) <= 0)
			return;
}

/* "Bearer tok-secret-<gen>" with the current gen. */
static int
srv_bearer_ok(void)
{
	char want[64];

	snprintf(want, sizeof(want), "Bearer tok-secret-%d", srv.token_gen);
	return !srv.bearer_always_401 && strcmp(srv.auth, want) == 0;
}

static void
srv_sign_in(int fd)
{
	cJSON *j = cJSON_ParseWithLength((const char *)srv.body, srv.bodylen);
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "serial");
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "password");
	char reply[128];
	int ok;

	ok = strcmp(srv.ctype, "application/json") == 0 &&
	    cJSON_IsString(s) && strcmp(s->valuestring, "S" SERIAL) == 0 &&
	    cJSON_IsString(p) && strcmp(p->valuestring, PASSWORD) == 0;
	cJSON_Delete(j);
	if (srv.signin_status != 0)
		srv_text(fd, srv.signin_status, "{}");
	else if (!ok)
		srv_text(fd, 401, "{\"error\":\"bad credentials\"}");
	else if (srv.signin_body != NULL)
		srv_text(fd, 200, srv.signin_body);
	else {
		srv.signins++;
		srv.token_gen++;
		snprintf(reply, sizeof(reply), "{\"ws_token\":\"ws-secret-%d\","
		    "\"auth_token\":\"tok-secret-%d\"}", srv.signins,
		    srv.token_gen);
		srv_text(fd, 200, reply);
	}
}

static void
srv_answer(int fd)
{
	const char *t = srv.target, *m = srv.method;
	uint8_t *big;
	size_t i;

	if (strcmp(m, "POST") == 0 && strcmp(t, "/machines/sign_in") == 0)
		srv_sign_in(fd);
	else if (strcmp(m, "GET") == 0 && strcmp(t, "/update/current") == 0) {
		srv.hits_probe++;
		if (srv_bearer_ok())
			srv_text(fd, 200, "{\"version\":\"2.7.1-99\","
			    "\"download_url\":\"https://x/y\"}");
		else
			srv_text(fd, 401, "{}");
	} else if (strcmp(m, "POST") == 0 &&
	    strncmp(t, "/api/machines/", 14) == 0)
		srv_text(fd, srv_bearer_ok() ? 200 : 401, "{}");
	else if (strcmp(m, "PUT") == 0 && strncmp(t, "/presigned/", 11) == 0) {
		/* Storage refuses a request with two authorisations. */
		if (srv.auth[0] != '\0')
			srv_text(fd, 400, "two auths");
		else if (strncmp(t, "/presigned/fail", 15) == 0)
			srv_text(fd, 503, "busy");
		else if (strncmp(t, "/presigned/deny", 15) == 0)
			srv_text(fd, 403, "denied");
		else
			srv_text(fd, 200, "");
	} else if (strcmp(t, "/file/ok") == 0 || strcmp(t, "/file/nolength") ==
	    0) {
		if ((big = malloc(FILE_LEN)) == NULL)
			return;
		for (i = 0; i < FILE_LEN; i++)
			big[i] = file_byte(i);
		if (strcmp(t, "/file/ok") == 0)
			srv_reply(fd, 200, NULL, big, FILE_LEN);
		else {
			srv_send(fd, "HTTP/1.0 200 OK\r\n\r\n", 19);
			srv_send(fd, big, FILE_LEN);
		}
		free(big);
	} else if (strcmp(t, "/redirect/file") == 0)
		srv_reply(fd, 302, "Location: file:///etc/passwd\r\n", "moved",
		    5);
	else if (strcmp(t, "/redirect/ftp") == 0)
		srv_reply(fd, 301, "Location: ftp://127.0.0.1/x\r\n", "", 0);
	else if (strcmp(t, "/redirect/ok") == 0)
		srv_reply(fd, 302, "Location: /file/ok\r\n", "moved", 5);
	else if (strcmp(t, "/redirect/loop") == 0)
		srv_reply(fd, 302, "Location: /redirect/loop\r\n", "", 0);
	else if (strcmp(t, "/error") == 0)
		srv_text(fd, 503, "<html>try later</html>");
	else if (strcmp(t, "/drip") == 0)
		srv_drip(fd);
	else
		srv_text(fd, 404, "<html>no such page</html>");
}

/* Copies a header's value (not NUL-terminated) when line is "name:". */
static void
srv_header(const char *line, size_t n, const char *name, char *dst,
    size_t dstlen)
{
	size_t k = strlen(name);

	if (n <= k || strncasecmp(line, name, k) != 0)
		return;
	line += k;
	n -= k;
	while (n > 0 && *line == ' ') {
		line++;
		n--;
	}
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, line, n);
	dst[n] = '\0';
}

/* Reads one request; 0 when it is complete. */
static int
srv_read(int fd)
{
	char buf[16384], *eoh, *line, *next;
	size_t got = 0, clen = 0, have, n;
	ssize_t r;
	char cl[32] = "", ex[8] = "?";

	while ((eoh = memmem(buf, got, "\r\n\r\n", 4)) == NULL) {
		if (got == sizeof(buf) ||
		    (r = recv(fd, buf + got, sizeof(buf) - got, 0)) <= 0)
			return -1;
		got += (size_t)r;
	}
	srv.method[0] = srv.target[0] = srv.auth[0] = srv.ctype[0] = '\0';
	srv.agent[0] = '\0';
	if (sscanf(buf, "%7s %511s", srv.method, srv.target) != 2)
		return -1;
	for (line = strstr(buf, "\r\n") + 2; line < eoh; line = next + 2) {
		next = strstr(line, "\r\n");
		n = (size_t)(next - line);
		srv_header(line, n, "Authorization:", srv.auth,
		    sizeof(srv.auth));
		srv_header(line, n, "Content-Type:", srv.ctype,
		    sizeof(srv.ctype));
		srv_header(line, n, "User-Agent:", srv.agent,
		    sizeof(srv.agent));
		srv_header(line, n, "Content-Length:", cl, sizeof(cl));
		srv_header(line, n, "Expect:", ex, sizeof(ex));
	}
	srv.expect = strcmp(ex, "?") != 0;
	clen = (size_t)strtoul(cl, NULL, 10);
	free(srv.body);
	if ((srv.body = malloc(clen + 1)) == NULL)
		return -1;
	have = got - (size_t)(eoh + 4 - buf);
	if (have > clen)
		have = clen;
	memcpy(srv.body, eoh + 4, have);
	while (have < clen) {
		if ((r = recv(fd, srv.body + have, clen - have, 0)) <= 0)
			return -1;
		have += (size_t)r;
	}
	srv.bodylen = clen;
	return 0;
}

static void *
srv_main(void *arg)
{
	struct pollfd pfd = { .fd = srv.fd, .events = POLLIN };
	struct timeval tv = { .tv_sec = 5 };
	int fd;

	(void)arg;
	while (!atomic_load(&srv.stop)) {
		if (poll(&pfd, 1, 50) != 1)
			continue;
		if ((fd = accept(srv.fd, NULL, NULL)) == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		pthread_mutex_lock(&srv.lock);
		if (srv_read(fd) == 0) {
			srv.requests++;
			srv_answer(fd);
		}
		pthread_mutex_unlock(&srv.lock);
		close(fd);
	}
	return NULL;
}

static int
srv_start(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);

	(void)state;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((srv.fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(srv.fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(srv.fd, 16) == -1 ||
	    getsockname(srv.fd, (struct sockaddr *)&sin, &slen) == -1)
		return -1;
	srv.port = ntohs(sin.sin_port);
	snprintf(server_url, sizeof(server_url), "http://127.0.0.1:%d",
	    srv.port);
	pthread_mutex_init(&srv.lock, NULL);
	atomic_store(&srv.stop, 0);
	return pthread_create(&srv.thread, NULL, srv_main, NULL) == 0 ? 0 : -1;
}

static int
srv_stop(void **state)
{
	(void)state;
	atomic_store(&srv.stop, 1);
	pthread_join(srv.thread, NULL);
	close(srv.fd);
	free(srv.body);
	pthread_mutex_destroy(&srv.lock);
	return 0;
}

/* Each test: a fresh server state and a cloud of its own. */
struct fixture {
	struct config	 cf;
	struct cloud	*c;
};

static int
fx_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	pthread_mutex_lock(&srv.lock);
	srv.signins = srv.requests = srv.hits_probe = 0;
	srv.signin_status = 0;
	srv.signin_body = NULL;
	srv.bearer_always_401 = 0;
	pthread_mutex_unlock(&srv.lock);
	/* Only the fields cloud.c reads. */
	fx->cf.server_url = server_url;
	fx->cf.serial = (char *)SERIAL;
	fx->cf.password = (char *)PASSWORD;
	if ((fx->c = cloud_new(&fx->cf)) == NULL) {
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fixture *fx = *state;

	cloud_free(fx->c);
	free(fx);
	return 0;
}

/* Reads the server's state safely. */
static int
srv_get(const int *field)
{
	int v;

	pthread_mutex_lock(&srv.lock);
	v = *field;
	pthread_mutex_unlock(&srv.lock);
	return v;
}

static void
srv_set(int *field, int v)
{
	pthread_mutex_lock(&srv.lock);
	*field = v;
	pthread_mutex_unlock(&srv.lock);
}

static void
srv_body(const char *body)
{
	pthread_mutex_lock(&srv.lock);
	srv.signin_body = body;
	pthread_mutex_unlock(&srv.lock);
}

/* --- sign-in --- */

static void
test_sign_in(void **state)
{
	struct fixture *fx = *state;
	char *ws;

	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_OK);
	assert_string_equal(ws, "ws-secret-1");
	secret_free(ws);
	assert_int_equal(srv_get(&srv.signins), 1);
	pthread_mutex_lock(&srv.lock);
	assert_string_equal(srv.method, "POST");
	assert_string_equal(srv.target, "/machines/sign_in");
	assert_string_equal(srv.ctype, "application/json");
	assert_string_equal(srv.agent, "OpenGlow/2.6.0-2228");
	assert_string_equal(srv.auth, "");
	pthread_mutex_unlock(&srv.lock);

	/* Each sign-in gives a new ws_token. */
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_OK);
	assert_string_equal(ws, "ws-secret-2");
	secret_free(ws);
	secret_free(NULL);
}

static void
test_sign_in_user_agent(void **state)
{
	struct fixture *fx = *state;
	struct config cf = fx->cf;
	struct cloud *c;
	char url[80], *ws;

	cf.fw_version = (char *)"2.7.0-1";
	/* A trailing slash on the server is no double slash in the path. */
	snprintf(url, sizeof(url), "%s/", server_url);
	cf.server_url = url;
	assert_non_null(c = cloud_new(&cf));
	assert_int_equal(cloud_sign_in(c, &ws), CLOUD_OK);
	secret_free(ws);
	cloud_free(c);
	pthread_mutex_lock(&srv.lock);
	assert_string_equal(srv.agent, "OpenGlow/2.7.0-1");
	assert_string_equal(srv.target, "/machines/sign_in");
	pthread_mutex_unlock(&srv.lock);
}

static void
test_sign_in_failures(void **state)
{
	struct fixture *fx = *state;
	struct config cf = fx->cf;
	struct cloud *c;
	char *ws = (char *)"x", big[70000];

	/* Wrong password: the server says 401. */
	cf.password = (char *)"00";
	assert_non_null(c = cloud_new(&cf));
	assert_int_equal(cloud_sign_in(c, &ws), CLOUD_ERR_AUTH);
	assert_null(ws);
	cloud_free(c);

	/* No credentials at all: not even asked. */
	cf.password = NULL;
	assert_non_null(c = cloud_new(&cf));
	assert_int_equal(cloud_sign_in(c, &ws), CLOUD_ERR_REFUSED);
	cloud_free(c);
	assert_int_equal(srv_get(&srv.requests), 1);

	srv_set(&srv.signin_status, 403);
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_ERR_AUTH);
	srv_set(&srv.signin_status, 500);
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_ERR_NET);
	srv_set(&srv.signin_status, 503);
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_ERR_NET);
	srv_set(&srv.signin_status, 404);
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_ERR_REFUSED);
	srv_set(&srv.signin_status, 400);
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_ERR_REFUSED);
	srv_set(&srv.signin_status, 0);

	/* 200 but a bad reply. */
	srv_body("{\"ws_token\":\"w\"}");
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_ERR_REFUSED);
	srv_body("{\"ws_token\":\"\",\"auth_token\":\"a\"}");
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_ERR_REFUSED);
	srv_body("{\"ws_token\":\"w\",\"auth_token\":7}");
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_ERR_REFUSED);
	srv_body("[\"ws_token\",\"auth_token\"]");
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_ERR_REFUSED);
	srv_body("not json");
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_ERR_REFUSED);
	srv_body("");
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_ERR_REFUSED);
	/* A good reply, but padded past the 64 KiB cap. */
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "{\"ws_token\":\"w\",\"auth_token\":\"a\"}", 33);
	srv_body(big);
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_ERR_REFUSED);
	assert_null(ws);
	/* At the cap exactly: fine. */
	pthread_mutex_lock(&srv.lock);
	big[65536] = '\0';
	pthread_mutex_unlock(&srv.lock);
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_OK);
	assert_string_equal(ws, "w");
	secret_free(ws);
	srv_body(NULL);
}

static void
test_sign_in_no_server(void **state)
{
	struct fixture *fx = *state;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	struct config cf = fx->cf;
	struct cloud *c;
	char url[64], *ws;
	int fd;

	/* A port that is bound but not listening refuses connections. */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sin.sin_port));
	cf.server_url = url;
	assert_non_null(c = cloud_new(&cf));
	assert_int_equal(cloud_sign_in(c, &ws), CLOUD_ERR_NET);
	assert_null(ws);
	cloud_free(c);
	close(fd);

	/* A server URL of another scheme is refused outright. */
	cf.server_url = (char *)"ftp://127.0.0.1";
	assert_non_null(c = cloud_new(&cf));
	assert_int_equal(cloud_sign_in(c, &ws), CLOUD_ERR_REFUSED);
	cloud_free(c);
}

/* --- Bearer calls --- */

static void
test_fw_probe(void **state)
{
	struct fixture *fx = *state;
	char *v;

	/* No token yet: signs in first. */
	assert_int_equal(cloud_fw_probe(fx->c, &v), CLOUD_OK);
	assert_string_equal(v, "2.7.1-99");
	free(v);
	assert_int_equal(srv_get(&srv.signins), 1);
	assert_int_equal(srv_get(&srv.hits_probe), 1);

	/* The token is still good: no new sign-in. */
	assert_int_equal(cloud_fw_probe(fx->c, &v), CLOUD_OK);
	free(v);
	assert_int_equal(srv_get(&srv.signins), 1);
	assert_int_equal(srv_get(&srv.hits_probe), 2);
}

static void
test_fw_probe_replay(void **state)
{
	struct fixture *fx = *state;
	char *ws, *v;

	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_OK);
	secret_free(ws);
	/* The service forgets the token: 401, sign in, replay once. */
	pthread_mutex_lock(&srv.lock);
	srv.token_gen += 100;
	pthread_mutex_unlock(&srv.lock);
	assert_int_equal(cloud_fw_probe(fx->c, &v), CLOUD_OK);
	assert_string_equal(v, "2.7.1-99");
	free(v);
	assert_int_equal(srv_get(&srv.signins), 2);
	assert_int_equal(srv_get(&srv.hits_probe), 2);

	/* A 401 that persists is replayed once only. */
	srv_set(&srv.bearer_always_401, 1);
	assert_int_equal(cloud_fw_probe(fx->c, &v), CLOUD_ERR_REFUSED);
	assert_null(v);
	assert_int_equal(srv_get(&srv.signins), 3);
	assert_int_equal(srv_get(&srv.hits_probe), 4);

	/* A sign-in failing during the replay is what is reported. */
	srv_set(&srv.signin_status, 500);
	assert_int_equal(cloud_fw_probe(fx->c, &v), CLOUD_ERR_NET);
	assert_int_equal(srv_get(&srv.hits_probe), 5);
}

static void
test_upload_legacy(void **state)
{
	struct fixture *fx = *state;
	static const uint8_t jpeg[] = { 0xff, 0xd8, 1, 2, 3, 0, 4, 0xff, 0xd9 };
	char want[64];

	assert_int_equal(cloud_upload(fx->c, NULL, "lid_image", 3116308, jpeg,
	    sizeof(jpeg)), CLOUD_OK);
	pthread_mutex_lock(&srv.lock);
	assert_string_equal(srv.method, "POST");
	assert_string_equal(srv.target, "/api/machines/lid_image/3116308");
	assert_string_equal(srv.ctype, "image/jpeg");
	snprintf(want, sizeof(want), "Bearer tok-secret-%d", srv.token_gen);
	assert_string_equal(srv.auth, want);
	assert_int_equal(srv.bodylen, sizeof(jpeg));
	assert_memory_equal(srv.body, jpeg, sizeof(jpeg));
	assert_false(srv.expect);
	srv.token_gen += 100;	/* expire it */
	pthread_mutex_unlock(&srv.lock);

	/* Replayed after a 401, body and all. */
	assert_int_equal(cloud_upload(fx->c, NULL, "head_image", 7, jpeg,
	    sizeof(jpeg)), CLOUD_OK);
	assert_int_equal(srv_get(&srv.signins), 2);
	pthread_mutex_lock(&srv.lock);
	assert_string_equal(srv.target, "/api/machines/head_image/7");
	assert_memory_equal(srv.body, jpeg, sizeof(jpeg));
	pthread_mutex_unlock(&srv.lock);

	/* The type goes into the path: nothing but [a-z0-9_]. */
	assert_int_equal(cloud_upload(fx->c, NULL, "../x", 7, jpeg,
	    sizeof(jpeg)), CLOUD_ERR_REFUSED);
	assert_int_equal(cloud_upload(fx->c, NULL, "a/b", 7, jpeg,
	    sizeof(jpeg)), CLOUD_ERR_REFUSED);
	assert_int_equal(cloud_upload(fx->c, NULL, "", 7, jpeg,
	    sizeof(jpeg)), CLOUD_ERR_REFUSED);
	assert_int_equal(cloud_upload(fx->c, NULL, NULL, 7, jpeg,
	    sizeof(jpeg)), CLOUD_ERR_REFUSED);
	assert_int_equal(srv_get(&srv.requests), 5);
}

static void
test_upload_presigned(void **state)
{
	struct fixture *fx = *state;
	uint8_t jpeg[3000];
	char url[256], *ws;
	size_t i;

	for (i = 0; i < sizeof(jpeg); i++)
		jpeg[i] = (uint8_t)i;
	jpeg[0] = 0xff;
	jpeg[1] = 0xd8;
	/* Hold a token, so that leaking it would show. */
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_OK);
	secret_free(ws);

	snprintf(url, sizeof(url), "%s/presigned/lid/3116308.jpg?"
	    "X-Amz-Signature=" SIGNATURE, server_url);
	assert_int_equal(cloud_upload(fx->c, url, "lid_image", 3116308, jpeg,
	    sizeof(jpeg)), CLOUD_OK);
	pthread_mutex_lock(&srv.lock);
	assert_string_equal(srv.method, "PUT");
	assert_string_equal(srv.auth, "");
	assert_string_equal(srv.ctype, "image/jpeg");
	assert_int_equal(srv.bodylen, sizeof(jpeg));
	assert_memory_equal(srv.body, jpeg, sizeof(jpeg));
	assert_false(srv.expect);
	pthread_mutex_unlock(&srv.lock);

	snprintf(url, sizeof(url), "%s/presigned/fail", server_url);
	assert_int_equal(cloud_upload(fx->c, url, "lid_image", 1, jpeg,
	    sizeof(jpeg)), CLOUD_ERR_NET);
	snprintf(url, sizeof(url), "%s/presigned/deny", server_url);
	assert_int_equal(cloud_upload(fx->c, url, "lid_image", 1, jpeg,
	    sizeof(jpeg)), CLOUD_ERR_REFUSED);
	/* Not followed: a redirect is not a success. */
	snprintf(url, sizeof(url), "%s/redirect/ok", server_url);
	assert_int_equal(cloud_upload(fx->c, url, "lid_image", 1, jpeg,
	    sizeof(jpeg)), CLOUD_ERR_REFUSED);
	assert_int_equal(srv_get(&srv.requests), 5);

	/* Other schemes are refused before any connection. */
	assert_int_equal(cloud_upload(fx->c, "file:///tmp/x.jpg", "lid_image",
	    1, jpeg, sizeof(jpeg)), CLOUD_ERR_REFUSED);
	assert_int_equal(cloud_upload(fx->c, "ftp://127.0.0.1/x", "lid_image",
	    1, jpeg, sizeof(jpeg)), CLOUD_ERR_REFUSED);
	assert_int_equal(cloud_upload(fx->c, "", "lid_image", 1, jpeg,
	    sizeof(jpeg)), CLOUD_ERR_REFUSED);
	assert_int_equal(srv_get(&srv.requests), 5);
}

/* --- downloads --- */

struct sink_log {
	int		 declared_calls;
	uint64_t	 declared;
	int		 data_before_declared;
	size_t		 got;
	int		 mismatch;
	int		 refuse_declared;
	int		 refuse_data_after;	/* bytes, or 0 */
	atomic_int	*cancel_after_data;
	size_t		 cancel_at;		/* bytes before raising it */
};

static int
sink_declared(uint64_t len, void *arg)
{
	struct sink_log *s = arg;

	s->declared_calls++;
	s->declared = len;
	return s->refuse_declared ? -1 : 0;
}

static int
sink_data(const void *buf, size_t len, void *arg)
{
	struct sink_log *s = arg;
	const uint8_t *p = buf;
	size_t i;

	if (s->declared_calls == 0)
		s->data_before_declared = 1;
	for (i = 0; i < len; i++)
		if (p[i] != file_byte(s->got + i))
			s->mismatch = 1;
	s->got += len;
	if (s->cancel_after_data != NULL && s->got >= s->cancel_at)
		atomic_store(s->cancel_after_data, 1);
	if (s->refuse_data_after > 0 && s->got >= (size_t)s->refuse_data_after)
		return -1;
	return 0;
}

static enum cloud_result
download(struct cloud *c, const char *path, struct sink_log *s,
    const atomic_int *cancel)
{
	struct cloud_sink sink = { sink_declared, sink_data, s, 0 };
	char url[128];

	snprintf(url, sizeof(url), "%s%s", server_url, path);
	return cloud_download(c, url, &sink, cancel, NULL);
}

static void
test_download(void **state)
{
	struct fixture *fx = *state;
	struct sink_log s = { 0 };
	atomic_int cancel = 0;

	assert_int_equal(download(fx->c, "/file/ok", &s, &cancel), CLOUD_OK);
	assert_int_equal(s.declared_calls, 1);
	assert_int_equal(s.declared, FILE_LEN);
	assert_false(s.data_before_declared);
	assert_int_equal(s.got, FILE_LEN);
	assert_false(s.mismatch);
	/* A job URL on the app host (same origin) carries the Bearer. */
	pthread_mutex_lock(&srv.lock);
	assert_memory_equal(srv.auth, "Bearer ", 7);
	pthread_mutex_unlock(&srv.lock);

	/* No Content-Length: nothing declared, all the data. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(download(fx->c, "/file/nolength", &s, NULL),
	    CLOUD_OK);
	assert_int_equal(s.declared_calls, 0);
	assert_int_equal(s.got, FILE_LEN);
	assert_false(s.mismatch);

	/* A redirect within http: followed; the 302's body is not data. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(download(fx->c, "/redirect/ok", &s, NULL), CLOUD_OK);
	assert_int_equal(s.declared_calls, 1);
	assert_int_equal(s.declared, FILE_LEN);
	assert_int_equal(s.got, FILE_LEN);
	assert_false(s.mismatch);
}

static void
test_download_refused(void **state)
{
	struct fixture *fx = *state;
	static const struct { const char *path; enum cloud_result r; } t[] = {
		{ "/redirect/file", CLOUD_ERR_REFUSED },
		{ "/redirect/ftp", CLOUD_ERR_REFUSED },
		{ "/redirect/loop", CLOUD_ERR_REFUSED },
		{ "/missing", CLOUD_ERR_REFUSED },
		{ "/error", CLOUD_ERR_NET },
	};
	struct cloud_sink sink = { sink_declared, sink_data, NULL, 0 };
	struct sink_log s;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&s, 0, sizeof(s));
		if (download(fx->c, t[i].path, &s, NULL) != t[i].r)
			fail_msg("%s: not %s", t[i].path,
			    cloud_strerror(t[i].r));
		/* The sink never sees an error page or a redirect. */
		assert_int_equal(s.declared_calls, 0);
		assert_int_equal(s.got, 0);
	}
	/* One request each, the loop's 5 redirects besides, and the
	 * sign-in first: these URLs are on the app host, so carry the
	 * Bearer. */
	assert_int_equal(srv_get(&srv.requests), 1 + 5 + 5);

	i = (size_t)srv_get(&srv.requests);
	sink.arg = &s;
	assert_int_equal(cloud_download(fx->c, "file:///etc/passwd", &sink,
	    NULL, NULL), CLOUD_ERR_REFUSED);
	assert_int_equal(cloud_download(fx->c, "gopher://127.0.0.1/", &sink,
	    NULL, NULL), CLOUD_ERR_REFUSED);
	assert_int_equal(cloud_download(fx->c, NULL, &sink, NULL, NULL),
	    CLOUD_ERR_REFUSED);
	assert_int_equal(cloud_download(fx->c, server_url, NULL, NULL, NULL),
	    CLOUD_ERR_REFUSED);
	assert_int_equal((size_t)srv_get(&srv.requests), i);
	assert_int_equal(s.got, 0);
}

/* The Authorization the server saw last, copied. */
static void
srv_last_auth(char *buf, size_t len)
{
	pthread_mutex_lock(&srv.lock);
	snprintf(buf, len, "%s", srv.auth);
	pthread_mutex_unlock(&srv.lock);
}

/* download_auth: the token goes to server_url's origin only, unless the
 * setting says always or never; "localhost" is another host. */
static void
test_download_auth(void **state)
{
	static const struct {
		int		 mode;
		const char	*host;
		int		 bearer;
	} t[] = {
		{ CONFIG_DL_AUTH_SAME_ORIGIN, "127.0.0.1", 1 },
		{ CONFIG_DL_AUTH_SAME_ORIGIN, "localhost", 0 },
		{ CONFIG_DL_AUTH_ALWAYS, "localhost", 1 },
		{ CONFIG_DL_AUTH_NEVER, "127.0.0.1", 0 },
	};
	struct fixture *fx = *state;
	struct cloud_sink sink = { sink_declared, sink_data, NULL, 0 };
	const char *port = strrchr(server_url, ':');
	struct sink_log s;
	char url[128], auth[256];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&s, 0, sizeof(s));
		sink.arg = &s;
		fx->cf.download_auth = t[i].mode;
		snprintf(url, sizeof(url), "http://%s%s/file/ok", t[i].host,
		    port);
		assert_int_equal(cloud_download(fx->c, url, &sink, NULL,
		    NULL), CLOUD_OK);
		assert_int_equal(s.got, FILE_LEN);
		srv_last_auth(auth, sizeof(auth));
		if (t[i].bearer != (strncmp(auth, "Bearer ", 7) == 0))
			fail_msg("case %zu: Authorization '%s'", i, auth);
	}
	/* Another host that wants credentials: refused, no token sent. */
	fx->cf.download_auth = CONFIG_DL_AUTH_SAME_ORIGIN;
	snprintf(url, sizeof(url), "http://localhost%s/update/current", port);
	assert_int_equal(cloud_download(fx->c, url, &sink, NULL, NULL),
	    CLOUD_ERR_REFUSED);
	srv_last_auth(auth, sizeof(auth));
	assert_string_equal(auth, "");
}

/* Every byte received counts against max_bytes. */
static void
test_download_cap(void **state)
{
	struct fixture *fx = *state;
	struct sink_log s = { 0 };
	struct cloud_sink sink = { sink_declared, sink_data, &s, FILE_LEN / 2 };
	char url[128];

	snprintf(url, sizeof(url), "%s/file/nolength", server_url);
	assert_int_equal(cloud_download(fx->c, url, &sink, NULL, NULL),
	    CLOUD_ERR_REFUSED);
	assert_true(s.got <= FILE_LEN / 2);
	memset(&s, 0, sizeof(s));
	sink.max_bytes = FILE_LEN;
	snprintf(url, sizeof(url), "%s/redirect/ok", server_url);
	assert_int_equal(cloud_download(fx->c, url, &sink, NULL, NULL),
	    CLOUD_OK);
	assert_int_equal(s.got, FILE_LEN);
}

static void
test_download_sink_refuses(void **state)
{
	struct fixture *fx = *state;
	struct sink_log s = { .refuse_declared = 1 };

	assert_int_equal(download(fx->c, "/file/ok", &s, NULL), CLOUD_ERR_SINK);
	assert_int_equal(s.declared_calls, 1);
	assert_int_equal(s.got, 0);

	memset(&s, 0, sizeof(s));
	s.refuse_data_after = 1;
	assert_int_equal(download(fx->c, "/file/ok", &s, NULL), CLOUD_ERR_SINK);
	assert_true(s.got > 0 && s.got < FILE_LEN);
}

static void
test_download_cancel(void **state)
{
	struct fixture *fx = *state;
	struct sink_log s = { 0 };
	atomic_int cancel = 1;
	int before;

	/* Raised before: not even a connection. */
	before = srv_get(&srv.requests);
	assert_int_equal(download(fx->c, "/file/ok", &s, &cancel),
	    CLOUD_ERR_CANCELLED);
	assert_int_equal(srv_get(&srv.requests), before);

	/* Raised once all the server will send has arrived: it then stalls,
	 * so only the progress callback can notice (without it the server
	 * hangs up after 10 s and the call ends in a network error). */
	atomic_store(&cancel, 0);
	memset(&s, 0, sizeof(s));
	s.cancel_after_data = &cancel;
	s.cancel_at = DRIP_SENT;
	assert_int_equal(download(fx->c, "/drip", &s, &cancel),
	    CLOUD_ERR_CANCELLED);
	assert_int_equal(s.declared, 1000000);
	assert_int_equal(s.got, DRIP_SENT);

	/* Raised by the sink itself, between two writes. */
	atomic_store(&cancel, 0);
	memset(&s, 0, sizeof(s));
	s.cancel_after_data = &cancel;
	assert_int_equal(download(fx->c, "/file/ok", &s, &cancel),
	    CLOUD_ERR_CANCELLED);
	assert_true(s.got < FILE_LEN);
}

/* --- threads and secrets --- */

struct prober {
	struct cloud	*c;
	int		 bad;	/* results other than OK and REFUSED */
};

static void *
probe_thread(void *arg)
{
	struct prober *p = arg;
	enum cloud_result r;
	char *v;
	int i;

	for (i = 0; i < 5; i++) {
		/* A sign-in by another thread may expire the token of a
		 * replay: REFUSED is a fair answer then. */
		r = cloud_fw_probe(p->c, &v);
		if ((r == CLOUD_OK) != (v != NULL) ||
		    (r != CLOUD_OK && r != CLOUD_ERR_REFUSED))
			p->bad++;
		free(v);
		if (i == 2) {
			pthread_mutex_lock(&srv.lock);
			srv.token_gen += 100;
			pthread_mutex_unlock(&srv.lock);
		}
	}
	return NULL;
}

/* Mostly for the sanitizers: the token is shared by threads. */
static void
test_threads(void **state)
{
	struct fixture *fx = *state;
	struct prober p[4];
	pthread_t t[4];
	char *v;
	int i;

	for (i = 0; i < 4; i++) {
		p[i].c = fx->c;
		p[i].bad = 0;
		assert_int_equal(pthread_create(&t[i], NULL, probe_thread,
		    &p[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(p[i].bad, 0);
	}
	assert_int_equal(cloud_fw_probe(fx->c, &v), CLOUD_OK);
	free(v);
}

struct one_probe {
	struct cloud		*c;
	pthread_barrier_t	*start;
	enum cloud_result	 r;
};

static void *
one_probe_thread(void *arg)
{
	struct one_probe *p = arg;
	char *v;

	pthread_barrier_wait(p->start);
	p->r = cloud_fw_probe(p->c, &v);
	free(v);
	return NULL;
}

/* Threads that all find the token expired sign in once between them. */
static void
test_threads_share_one_sign_in(void **state)
{
	struct fixture *fx = *state;
	struct one_probe p[4];
	pthread_barrier_t start;
	pthread_t t[4];
	char *ws;
	int i;

	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_OK);
	secret_free(ws);
	pthread_mutex_lock(&srv.lock);
	srv.token_gen += 100;
	pthread_mutex_unlock(&srv.lock);

	pthread_barrier_init(&start, NULL, 4);
	for (i = 0; i < 4; i++) {
		p[i].c = fx->c;
		p[i].start = &start;
		assert_int_equal(pthread_create(&t[i], NULL, one_probe_thread,
		    &p[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(p[i].r, CLOUD_OK);
	}
	pthread_barrier_destroy(&start);
	assert_int_equal(srv_get(&srv.signins), 2);
}

static void
test_no_secrets_logged(void **state)
{
	struct fixture *fx = *state;
	static const char *const secrets[] = {
		PASSWORD, SERIAL, "tok-secret", "ws-secret", SIGNATURE,
		"user:pw",
	};
	static const uint8_t jpeg[] = { 0xff, 0xd8, 0xff, 0xd9 };
	struct cloud_sink sink = { NULL, sink_data, NULL, 0 };
	struct sink_log s = { 0 };
	char path[] = "/tmp/test_cloud_log.XXXXXX", url[256], *ws, *v;
	char buf[65536];
	size_t n, i;
	FILE *fp;
	int fd;

	assert_true((fd = mkstemp(path)) != -1);
	close(fd);
	assert_int_equal(log_init(LOG_TO_CONSOLE, LOG_DEBUG, path), 0);

	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_OK);
	secret_free(ws);
	pthread_mutex_lock(&srv.lock);
	srv.token_gen += 100;
	pthread_mutex_unlock(&srv.lock);
	assert_int_equal(cloud_fw_probe(fx->c, &v), CLOUD_OK);
	free(v);
	snprintf(url, sizeof(url), "%s/presigned/fail?X-Amz-Signature="
	    SIGNATURE, server_url);
	assert_int_equal(cloud_upload(fx->c, url, "lid_image", 1, jpeg,
	    sizeof(jpeg)), CLOUD_ERR_NET);
	snprintf(url, sizeof(url), "http://user:pw@127.0.0.1:%d/missing?sig="
	    SIGNATURE, srv.port);
	sink.arg = &s;
	assert_int_equal(cloud_download(fx->c, url, &sink, NULL, NULL),
	    CLOUD_ERR_REFUSED);
	assert_int_equal(cloud_download(fx->c, "file:///x?sig=" SIGNATURE,
	    &sink, NULL, NULL), CLOUD_ERR_REFUSED);
	srv_set(&srv.signin_status, 401);
	assert_int_equal(cloud_sign_in(fx->c, &ws), CLOUD_ERR_AUTH);

	log_close();
	log_init(LOG_TO_CONSOLE, LOG_INFO, NULL);
	assert_non_null(fp = fopen(path, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	unlink(path);
	/* Something was logged, and the URL's path made it. */
	assert_non_null(strstr(buf, "/presigned/fail"));
	assert_non_null(strstr(buf, "/missing"));
	for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (strstr(buf, secrets[i]) != NULL)
			fail_msg("\"%s\" was logged:\n%s", secrets[i], buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_allowed),
		cmocka_unit_test(test_strerror),
#define FX(t)	cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)
		FX(test_sign_in),
		FX(test_sign_in_user_agent),
		FX(test_sign_in_failures),
		FX(test_sign_in_no_server),
		FX(test_fw_probe),
		FX(test_fw_probe_replay),
		FX(test_upload_legacy),
		FX(test_upload_presigned),
		FX(test_download),
		FX(test_download_refused),
		FX(test_download_auth),
		FX(test_download_cap),
		FX(test_download_sink_refuses),
		FX(test_download_cancel),
		FX(test_threads),
		FX(test_threads_share_one_sign_in),
		FX(test_no_secrets_logged),
#undef FX
	};

	return cmocka_run_group_tests(tests, srv_start, srv_stop);
}
