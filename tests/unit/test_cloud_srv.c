/*
 * test_cloud_srv: see test_cloud_srv.h.  Answers:
 *   POST /machines/sign_in	S<TSRV_SERIAL>/TSRV_PASSWORD, or any
 *				S<serial> with password "pw-<serial>";
 *				{"ws_token","auth_token":"tok-secret-<gen>"}
 *   GET  /update/current	Bearer: {"version":"2.7.1-99"}, else 401
 *   POST /api/machines/...	Bearer: 200, else 401
 *   PUT  /presigned/ok		200 without Authorization, else 400
 *   PUT  /presigned/stall	held: stops reading the body
 *   GET  /file/ok		TSRV_FILE_LEN bytes
 *   GET  /file/auth		Bearer: the file, else 401 + TSRV_DENY_LEN
 *   GET  /chain/<k>		302 to /chain/<k-1>; /chain/0 to /file/ok
 *   GET  /other/ok		302 to <other>/file/ok (another host)
 *   GET  /other/auth		302 to <other>/file/auth
 *   GET  /loop			302 to itself
 *   GET  /drip			a head for 1 MB, TSRV_DRIP_SENT bytes, held
 *   GET  /silent		held, no answer
 *   else			404
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "test_cloud_srv.h"

struct tsrv_conn {
	uv_tcp_t		 tcp;
	struct tsrv		*s;
	char			*buf;
	size_t			 len, cap;
	int			 answered;
	int			 held;
	int			 closing;
	struct tsrv_conn	*next;
};

struct tsrv_write {
	uv_write_t		 req;
	struct tsrv_conn	*c;
	char			*data;
	int			 close;		/* after this write */
};

uint8_t
tsrv_file_byte(size_t i)
{
	return (uint8_t)(i * 7 + i / 251);
}

static void
tsrv_conn_closed(uv_handle_t *h)
{
	struct tsrv_conn *c = h->data;
	struct tsrv_conn **p;

	for (p = &c->s->list; *p != NULL; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	c->s->conns--;
	free(c->buf);
	free(c);
}

static void
tsrv_conn_close(struct tsrv_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	if (c->held)
		c->s->held--;
	uv_close((uv_handle_t *)&c->tcp, tsrv_conn_closed);
}

static void
tsrv_written(uv_write_t *req, int status)
{
	struct tsrv_write *w = (struct tsrv_write *)req;

	(void)status;
	if (w->close)
		tsrv_conn_close(w->c);
	free(w->data);
	free(w);
}

/* Queues len bytes (taken over); closes after them when close. */
static void
tsrv_send(struct tsrv_conn *c, char *data, size_t len, int close)
{
	struct tsrv_write *w = calloc(1, sizeof(*w));
	uv_buf_t b = uv_buf_init(data, (unsigned int)len);

	if (w == NULL) {
		free(data);
		tsrv_conn_close(c);
		return;
	}
	w->c = c;
	w->data = data;
	w->close = close;
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, tsrv_written)) {
		free(data);
		free(w);
		tsrv_conn_close(c);
	}
}

static void
tsrv_reply(struct tsrv_conn *c, int status, const char *extra,
    const void *body, size_t len)
{
	char *out;
	int n;

	if ((out = malloc(512 + len)) == NULL)
		return;
	n = snprintf(out, 512, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n%s\r\n", status, len,
	    extra != NULL ? extra : "");
	if (len > 0)
		memcpy(out + n, body, len);
	tsrv_send(c, out, (size_t)n + len, 1);
}

static void
tsrv_text(struct tsrv_conn *c, int status, const char *body)
{
	tsrv_reply(c, status, NULL, body, strlen(body));
}

static void
tsrv_file(struct tsrv_conn *c, int status, size_t len)
{
	uint8_t *b = malloc(len);
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < len; i++)
		b[i] = tsrv_file_byte(i);
	tsrv_reply(c, status, NULL, b, len);
	free(b);
}

static void
tsrv_redirect(struct tsrv_conn *c, const char *base, const char *path)
{
	char loc[240];

	snprintf(loc, sizeof(loc), "Location: %s%s\r\n", base, path);
	tsrv_reply(c, 302, loc, "moved", 5);
}

static void
tsrv_hold(struct tsrv_conn *c, const char *target)
{
	c->held = 1;
	c->s->held++;
	if (c->s->event != NULL)
		c->s->event(c->s, target);
}

static int
tsrv_bearer_ok(const struct tsrv *s, const struct tsrv_req *r)
{
	int gen;

	if (s->bearer_401 ||
	    sscanf(r->auth, "Bearer tok-secret-%d", &gen) != 1)
		return 0;
	return gen > s->revoked && gen <= s->token_gen;
}

static void
tsrv_sign_in(struct tsrv_conn *c, struct tsrv_req *r)
{
	struct tsrv *s = c->s;
	cJSON *j = cJSON_ParseWithLength((const char *)s->body, s->bodylen);
	const cJSON *se = cJSON_GetObjectItemCaseSensitive(j, "serial");
	const cJSON *pw = cJSON_GetObjectItemCaseSensitive(j, "password");
	char reply[128], want[80];
	int ok = 0;

	if (cJSON_IsString(se) && cJSON_IsString(pw) &&
	    se->valuestring[0] == 'S') {
		snprintf(r->serial, sizeof(r->serial), "%s", se->valuestring);
		snprintf(want, sizeof(want), "pw-%s", se->valuestring + 1);
		ok = (strcmp(se->valuestring, "S" TSRV_SERIAL) == 0 &&
		    strcmp(pw->valuestring, TSRV_PASSWORD) == 0) ||
		    strcmp(pw->valuestring, want) == 0;
	}
	cJSON_Delete(j);
	if (s->signin_hold)
		tsrv_hold(c, "/machines/sign_in");
	else if (s->signin_status != 0)
		tsrv_text(c, s->signin_status, "{}");
	else if (!ok)
		tsrv_text(c, 401, "{\"error\":\"bad credentials\"}");
	else {
		s->signins++;
		s->token_gen++;
		snprintf(reply, sizeof(reply), "{\"ws_token\":\"ws-secret-%d\","
		    "\"auth_token\":\"tok-secret-%d\"}", s->signins,
		    s->token_gen);
		tsrv_text(c, 200, reply);
	}
}

static void
tsrv_drip(struct tsrv_conn *c)
{
	static const char head[] = "HTTP/1.1 200 OK\r\n"
	    "Content-Length: 1000000\r\n\r\n0123456789";
	char *d = strdup(head);

	if (d != NULL)
		tsrv_send(c, d, sizeof(head) - 1, 0);
	tsrv_hold(c, "/drip");
}

static void
tsrv_answer(struct tsrv_conn *c, struct tsrv_req *r)
{
	const char *t = r->target, *m = r->method;
	struct tsrv *s = c->s;
	char path[32];
	int k;

	if (strcmp(m, "POST") == 0 && strcmp(t, "/machines/sign_in") == 0)
		tsrv_sign_in(c, r);
	else if (strcmp(t, "/update/current") == 0)
		tsrv_text(c, tsrv_bearer_ok(s, r) ? 200 : 401,
		    tsrv_bearer_ok(s, r) ? "{\"version\":\"2.7.1-99\"}" : "{}");
	else if (strcmp(m, "POST") == 0 && strncmp(t, "/api/machines/", 14) ==
	    0)
		tsrv_text(c, tsrv_bearer_ok(s, r) ? 200 : 401, "{}");
	else if (strcmp(m, "PUT") == 0 && strcmp(t, "/presigned/ok") == 0)
		tsrv_text(c, r->auth[0] != '\0' ? 400 : 200, "");
	else if (strcmp(t, "/file/ok") == 0)
		tsrv_file(c, 200, TSRV_FILE_LEN);
	else if (strcmp(t, "/file/auth") == 0) {
		if (tsrv_bearer_ok(s, r))
			tsrv_file(c, 200, TSRV_FILE_LEN);
		else
			tsrv_file(c, 401, TSRV_DENY_LEN);
	} else if (sscanf(t, "/chain/%d", &k) == 1 && k > 0) {
		/* Relative: resolved against the hop it came from. */
		snprintf(path, sizeof(path), "/chain/%d", k - 1);
		tsrv_redirect(c, "", path);
	} else if (strcmp(t, "/chain/0") == 0)
		tsrv_redirect(c, s->url, "/file/ok");
	else if (strcmp(t, "/other/ok") == 0)
		tsrv_redirect(c, s->other, "/file/ok");
	else if (strcmp(t, "/other/auth") == 0)
		tsrv_redirect(c, s->other, "/file/auth");
	else if (strcmp(t, "/loop") == 0)
		tsrv_redirect(c, "", "/loop");
	else if (strcmp(t, "/drip") == 0)
		tsrv_drip(c);
	else if (strcmp(t, "/silent") == 0)
		tsrv_hold(c, t);
	else
		tsrv_text(c, 404, "<html>no such page</html>");
}

/* A header's value into dst when line (n bytes) is "name: value". */
static void
tsrv_header(const char *line, size_t n, const char *name, char *dst,
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

/* 1: a whole request is in, answered; 0: more to come. */
static int
tsrv_parse(struct tsrv_conn *c)
{
	struct tsrv *s = c->s;
	struct tsrv_req *r = &s->log[s->nlog % TSRV_LOG];
	char cl[24] = "0", *eoh, *line, *next;
	size_t clen, hlen;

	if ((eoh = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
		return 0;
	hlen = (size_t)(eoh + 4 - c->buf);
	memset(r, 0, sizeof(*r));
	if (sscanf(c->buf, "%7s %159s", r->method, r->target) != 2)
		return -1;
	for (line = strstr(c->buf, "\r\n") + 2; line < eoh; line = next + 2) {
		next = strstr(line, "\r\n");
		tsrv_header(line, (size_t)(next - line), "Authorization:",
		    r->auth, sizeof(r->auth));
		tsrv_header(line, (size_t)(next - line), "Content-Length:",
		    cl, sizeof(cl));
	}
	clen = strtoul(cl, NULL, 10);
	if (strcmp(r->target, "/presigned/stall") != 0 &&
	    c->len - hlen < clen)
		return 0;
	s->nlog++;
	s->requests++;
	free(s->body);
	s->bodylen = c->len - hlen < clen ? c->len - hlen : clen;
	if ((s->body = malloc(s->bodylen + 1)) != NULL)
		memcpy(s->body, c->buf + hlen, s->bodylen);
	c->answered = 1;
	if (strcmp(r->target, "/presigned/stall") == 0) {
		/* Take no more of the body: the client's send blocks. */
		uv_read_stop((uv_stream_t *)&c->tcp);
		tsrv_hold(c, r->target);
		return 1;
	}
	tsrv_answer(c, r);
	return 1;
}

static void
tsrv_alloc(uv_handle_t *h, size_t want, uv_buf_t *b)
{
	struct tsrv_conn *c = h->data;
	char *p;

	(void)want;
	if (c->cap - c->len < 65536) {
		if ((p = realloc(c->buf, c->cap + 65536 + 1)) == NULL) {
			*b = uv_buf_init(NULL, 0);
			return;
		}
		c->buf = p;
		c->cap += 65536;
	}
	*b = uv_buf_init(c->buf + c->len, (unsigned int)(c->cap - c->len));
}

static void
tsrv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct tsrv_conn *c = st->data;

	(void)b;
	if (n < 0) {
		if (c->held) {
			c->s->hangups++;
			if (c->s->event != NULL)
				c->s->event(c->s, NULL);
		}
		tsrv_conn_close(c);
		return;
	}
	if (c->answered) {
		c->len = 0;	/* the rest of a stalled body */
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	if (tsrv_parse(c) == -1)
		tsrv_conn_close(c);
}

static void
tsrv_accept(uv_stream_t *l, int status)
{
	struct tsrv *s = l->data;
	struct tsrv_conn *c;

	if (status != 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->s = s;
	uv_tcp_init(s->loop, &c->tcp);
	c->tcp.data = c;
	c->next = s->list;
	s->list = c;
	s->conns++;
	if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, tsrv_alloc, tsrv_read) != 0)
		tsrv_conn_close(c);
}

int
tsrv_start(struct tsrv *s, uv_loop_t *loop)
{
	struct sockaddr_in sa;
	int len = sizeof(sa);

	s->loop = loop;
	uv_ip4_addr("127.0.0.1", 0, &sa);
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	if (uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0) != 0 ||
	    uv_listen((uv_stream_t *)&s->listener, 1024, tsrv_accept) != 0 ||
	    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&sa, &len) !=
	    0)
		return -1;
	s->port = ntohs(sa.sin_port);
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
	snprintf(s->other, sizeof(s->other), "http://localhost:%d", s->port);
	return 0;
}

void
tsrv_stop(struct tsrv *s)
{
	struct tsrv_conn *c;

	uv_close((uv_handle_t *)&s->listener, NULL);
	for (c = s->list; c != NULL; c = c->next)
		tsrv_conn_close(c);
	free(s->body);
	s->body = NULL;
}

void
tsrv_resume(struct tsrv *s)
{
	struct tsrv_conn *c;

	for (c = s->list; c != NULL; c = c->next)
		if (c->held && !c->closing)
			uv_read_start((uv_stream_t *)&c->tcp, tsrv_alloc,
			    tsrv_read);
}

const struct tsrv_req *
tsrv_req(const struct tsrv *s, int i)
{
	if (i < 0 || i >= s->nlog || s->nlog - i > TSRV_LOG)
		return NULL;
	return &s->log[i % TSRV_LOG];
}
