/*
 * test_frame: splitting WebSocket messages into lines, and validating one
 * action line before anybody uses it (PROTOCOL.md 4, 4.1).  Every rejection
 * path has a row; hostile inputs (deep nesting, bad UTF-8, NUL bytes) too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"

#define HEAD	"{\"id\":1,\"action_type\":\"lid_image\",\"status\":\"ready\""

/* --- frame_split --- */

#define MAXLINES	8

struct lines {
	size_t	 n;
	char	 buf[MAXLINES][64];
	size_t	 len[MAXLINES];
};

static void
collect(const char *line, size_t len, void *arg)
{
	struct lines *l = arg;

	assert_true(l->n < MAXLINES);
	assert_true(len < sizeof(l->buf[0]));
	memcpy(l->buf[l->n], line, len);
	l->len[l->n] = len;
	l->n++;
}

static void
test_split(void **state)
{
	static const struct {
		const char	*in;
		size_t		 len;		/* 0: strlen(in) */
		size_t		 n;
		const char	*out[4];	/* joined with '|' for NULs */
		size_t		 outlen[4];	/* 0: strlen(out) */
	} t[] = {
		{ "", 0, 0, { NULL }, { 0 } },
		{ "a", 0, 1, { "a" }, { 0 } },
		{ "a\n", 0, 1, { "a" }, { 0 } },
		{ "a\nb\n", 0, 2, { "a", "b" }, { 0 } },
		{ "a\nb", 0, 2, { "a", "b" }, { 0 } },	/* no final \n */
		{ "a\r\nb\r\n", 0, 2, { "a", "b" }, { 0 } },
		{ "a\r", 0, 1, { "a" }, { 0 } },
		{ "a\rb\n", 0, 1, { "a\rb" }, { 0 } },	/* inner \r kept */
		{ "a\r\r\n", 0, 1, { "a\r" }, { 0 } },	/* one \r only */
		{ "\n\n\n", 0, 0, { NULL }, { 0 } },
		{ "  \n\t\r\n\r\n \v\f\n", 0, 0, { NULL }, { 0 } },
		{ "\n\na\n\n \n b \n", 0, 2, { "a", " b " }, { 0 } },
		{ "{\"a\":1}\n{\"b\":2}", 0, 2, { "{\"a\":1}", "{\"b\":2}" },
		    { 0 } },
		/* NULs are bytes: the line goes on, whole, to the parser. */
		{ "a\0b\nc", 5, 2, { "a\0b", "c" }, { 3, 0 } },
		{ "\0", 1, 1, { "\0" }, { 1 } },
		{ "x\ny", 1, 1, { "x" }, { 0 } },	/* len is the bound */
	};
	struct lines l;
	size_t i, j, len, n;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&l, 0, sizeof(l));
		len = t[i].len != 0 ? t[i].len : strlen(t[i].in);
		n = frame_split(t[i].in, len, collect, &l);
		assert_int_equal(n, t[i].n);
		assert_int_equal(l.n, t[i].n);
		for (j = 0; j < t[i].n; j++) {
			len = t[i].outlen[j] != 0 ? t[i].outlen[j] :
			    strlen(t[i].out[j]);
			assert_int_equal(l.len[j], len);
			assert_memory_equal(l.buf[j], t[i].out[j], len);
		}
	}
	/* Counting only. */
	assert_int_equal(frame_split("a\nb\n", 4, NULL, NULL), 2);
	assert_int_equal(frame_split(NULL, 0, collect, &l), 0);
}

/* --- frame_parse_action: accepted --- */

static void
test_parse_ok(void **state)
{
	static const struct {
		const char		*in;
		int64_t			 id;
		const char		*type;
		enum action_status	 status;
		const char		*motion_url;
		const char		*endpoint;
		const char		*settings;	/* printed, or NULL */
	} t[] = {
		{ "{\"id\":3116308,\"action_type\":\"lid_image\","
		    "\"machine_serial\":\"S12345678\",\"status\":\"ready\"}",
		    3116308, "lid_image", ACTION_READY, NULL, NULL, NULL },
		{ "{\"id\":7,\"action_type\":\"print\",\"status\":\"ready\","
		    "\"motion_url\":\"https://x.example/p.puls\"}",
		    7, "print", ACTION_READY, "https://x.example/p.puls", NULL,
		    NULL },
		{ "{\"id\":8,\"action_type\":\"head_image\",\"status\":"
		    "\"ready\",\"endpoint\":\"https://s3.example/u?sig=1\","
		    "\"settings\":{\"HCil\":1,\"HCex\":3}}",
		    8, "head_image", ACTION_READY, NULL,
		    "https://s3.example/u?sig=1", "{\"HCil\":1,\"HCex\":3}" },
		/* A list of settings: the first one counts. */
		{ HEAD ",\"settings\":[{\"LCfl\":0},{\"LCfl\":1}]}",
		    1, "lid_image", ACTION_READY, NULL, NULL, "{\"LCfl\":0}" },
		{ HEAD ",\"settings\":[]}", 1, "lid_image", ACTION_READY,
		    NULL, NULL, NULL },
		{ HEAD ",\"settings\":[5,{\"LCfl\":0}]}", 1, "lid_image",
		    ACTION_READY, NULL, NULL, NULL },
		{ HEAD ",\"settings\":\"x\"}", 1, "lid_image", ACTION_READY,
		    NULL, NULL, NULL },
		{ HEAD ",\"settings\":null}", 1, "lid_image", ACTION_READY,
		    NULL, NULL, NULL },
		/* null and "" mean "not given". */
		{ HEAD ",\"endpoint\":null,\"motion_url\":\"\"}", 1,
		    "lid_image", ACTION_READY, NULL, NULL, NULL },
		{ "{\"id\":9,\"action_type\":\"print\",\"status\":"
		    "\"cancelled\"}", 9, "print", ACTION_CANCELLED, NULL, NULL,
		    NULL },
		{ "{\"id\":9,\"action_type\":\"print\",\"status\":\"new\"}",
		    9, "print", ACTION_OTHER, NULL, NULL, NULL },
		{ "{\"id\":9,\"action_type\":\"print\",\"status\":\"\"}",
		    9, "print", ACTION_OTHER, NULL, NULL, NULL },
		{ "{\"id\":9,\"action_type\":\"print\",\"status\":\"READY\"}",
		    9, "print", ACTION_OTHER, NULL, NULL, NULL },
		/* Integral numbers in any spelling; 2^53 - 1 is the top. */
		{ "{\"id\":1.0,\"action_type\":\"a\",\"status\":\"ready\"}",
		    1, "a", ACTION_READY, NULL, NULL, NULL },
		{ "{\"id\":1e3,\"action_type\":\"a\",\"status\":\"ready\"}",
		    1000, "a", ACTION_READY, NULL, NULL, NULL },
		{ "{\"id\":9007199254740991,\"action_type\":\"a\",\"status\":"
		    "\"ready\"}", 9007199254740991LL, "a", ACTION_READY, NULL,
		    NULL, NULL },
		{ "{\"id\":1,\"action_type\":\"abcdefghijklmnopqrstuvwxyz_"
		    "abcde\",\"status\":\"ready\"}", 1,
		    "abcdefghijklmnopqrstuvwxyz_abcde", ACTION_READY, NULL,
		    NULL, NULL },
		{ "{\"id\":1,\"action_type\":\"_\",\"status\":\"ready\"}",
		    1, "_", ACTION_READY, NULL, NULL, NULL },
		/* Whitespace around, keys in any order, unknown keys. */
		{ "  {\"status\":\"ready\" , \"x\":[1,{\"y\":[]}],\"id\":2,"
		    "\"action_type\":\"focus\"}\t ", 2, "focus", ACTION_READY,
		    NULL, NULL, NULL },
		/* Valid UTF-8 and brackets inside strings. */
		{ HEAD ",\"n\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e "
		    "\xf4\x8f\xbf\xbf \xef\xbf\xbd\"}", 1, "lid_image",
		    ACTION_READY, NULL, NULL, NULL },
		{ HEAD ",\"n\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
		    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"{{{{\"}", 1,
		    "lid_image", ACTION_READY, NULL, NULL, NULL },
		{ HEAD ",\"n\":\"\\u00e9\\ud83d\\ude00\"}", 1, "lid_image",
		    ACTION_READY, NULL, NULL, NULL },
		/* cJSON skips a byte order mark; so may we. */
		{ "\xef\xbb\xbf" HEAD "}", 1, "lid_image", ACTION_READY,
		    NULL, NULL, NULL },
	};
	struct action a;
	char err[256], *p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (frame_parse_action(t[i].in, strlen(t[i].in), &a, err,
		    sizeof(err)) != 0)
			fail_msg("row %zu: %s", i, err);
		assert_non_null(a.json);
		assert_int_equal(a.id, t[i].id);
		assert_string_equal(a.type, t[i].type);
		assert_int_equal(a.status, t[i].status);
		if (t[i].motion_url == NULL)
			assert_null(a.motion_url);
		else
			assert_string_equal(a.motion_url, t[i].motion_url);
		if (t[i].endpoint == NULL)
			assert_null(a.endpoint);
		else
			assert_string_equal(a.endpoint, t[i].endpoint);
		if (t[i].settings == NULL)
			assert_null(a.settings);
		else {
			p = cJSON_PrintUnformatted(a.settings);
			assert_string_equal(p, t[i].settings);
			free(p);
		}
		frame_action_free(&a);
		assert_null(a.json);
		assert_null(a.type);
		assert_int_equal(a.id, 0);
		frame_action_free(&a);		/* twice is harmless */
	}
}

/* --- frame_parse_action: rejected, with the reason --- */

static void
test_parse_reject(void **state)
{
	static const struct {
		const char	*in;
		size_t		 len;	/* 0: strlen(in) */
		const char	*why;	/* a substring of the reason */
	} t[] = {
		/* not JSON, not an object, trailing garbage */
		{ "", 0, "not JSON" },
		{ "{", 0, "not JSON" },
		{ "{\"id\":1,}", 0, "not JSON" },
		{ "nul", 0, "not JSON" },
		{ "[]", 0, "not a JSON object" },
		{ "[{\"id\":1,\"action_type\":\"a\",\"status\":\"ready\"}]", 0,
		    "not a JSON object" },
		{ "1", 0, "not a JSON object" },
		{ "\"x\"", 0, "not a JSON object" },
		{ "null", 0, "not a JSON object" },
		{ HEAD "} x", 0, "not JSON" },
		{ HEAD "}}", 0, "not JSON" },
		{ HEAD "}" HEAD "}", 0, "not JSON" },
		{ HEAD "}\0garbage", sizeof(HEAD "}\0garbage") - 1, "NUL byte" },
		{ HEAD "}\0", sizeof(HEAD "}\0") - 1, "NUL byte" },
		{ HEAD ",\"n\":\"a\\u0000b\"}", 0, "\\u0000" },
		{ "{\"id\":1,\"action_type\":\"print\\u0000x\",\"status\":"
		    "\"ready\"}", 0, "\\u0000" },
		/* invalid UTF-8, in a string */
		{ HEAD ",\"n\":\"\xc0\xaf\"}", 0, "invalid UTF-8" },
		{ HEAD ",\"n\":\"\xc1\xbf\"}", 0, "invalid UTF-8" },
		{ HEAD ",\"n\":\"\xe0\x80\xaf\"}", 0, "invalid UTF-8" },
		{ HEAD ",\"n\":\"\xe0\x9f\xbf\"}", 0, "invalid UTF-8" },
		{ HEAD ",\"n\":\"\xf0\x80\x80\xaf\"}", 0, "invalid UTF-8" },
		{ HEAD ",\"n\":\"\xf0\x8f\xbf\xbf\"}", 0, "invalid UTF-8" },
		{ HEAD ",\"n\":\"\xed\xa0\x80\"}", 0, "invalid UTF-8" },
		{ HEAD ",\"n\":\"\xed\xbf\xbf\"}", 0, "invalid UTF-8" },
		{ HEAD ",\"n\":\"\xf4\x90\x80\x80\"}", 0, "invalid UTF-8" },
		{ HEAD ",\"n\":\"\xf5\x80\x80\x80\"}", 0, "invalid UTF-8" },
		{ HEAD ",\"n\":\"\xff\"}", 0, "invalid UTF-8" },
		{ HEAD ",\"n\":\"\x80\"}", 0, "invalid UTF-8" },
		{ HEAD ",\"n\":\"\xe2\x82\"}", 0, "invalid UTF-8" },
		{ HEAD ",\"n\":\"\xe2\x28\xa1\"}", 0, "invalid UTF-8" },
		{ HEAD ",\"n\":\"a\"}\xe2\x82", 0, "invalid UTF-8" },
		/* escaped lone surrogates: cJSON refuses them */
		{ HEAD ",\"n\":\"\\ud800\"}", 0, "not JSON" },
		{ HEAD ",\"n\":\"\\udc00\\ud800\"}", 0, "not JSON" },
		/* id */
		{ "{\"action_type\":\"a\",\"status\":\"ready\"}", 0, "no id" },
		{ "{\"id\":\"3\",\"action_type\":\"a\",\"status\":\"ready\"}",
		    0, "id is not a number" },
		{ "{\"id\":null,\"action_type\":\"a\",\"status\":\"ready\"}",
		    0, "id is not a number" },
		{ "{\"id\":true,\"action_type\":\"a\",\"status\":\"ready\"}",
		    0, "id is not a number" },
		{ "{\"id\":[1],\"action_type\":\"a\",\"status\":\"ready\"}",
		    0, "id is not a number" },
		{ "{\"id\":1.5,\"action_type\":\"a\",\"status\":\"ready\"}",
		    0, "id is not an integer" },
		{ "{\"id\":0.999999,\"action_type\":\"a\",\"status\":"
		    "\"ready\"}", 0, "id is not an integer" },
		{ "{\"id\":-1,\"action_type\":\"a\",\"status\":\"ready\"}",
		    0, "id out of range" },
		{ "{\"id\":0,\"action_type\":\"a\",\"status\":\"ready\"}",
		    0, "id out of range" },
		{ "{\"id\":-0,\"action_type\":\"a\",\"status\":\"ready\"}",
		    0, "id out of range" },
		{ "{\"id\":1e300,\"action_type\":\"a\",\"status\":\"ready\"}",
		    0, "id out of range" },
		{ "{\"id\":9007199254740992,\"action_type\":\"a\",\"status\":"
		    "\"ready\"}", 0, "id out of range" },
		{ "{\"id\":9007199254740993,\"action_type\":\"a\",\"status\":"
		    "\"ready\"}", 0, "id out of range" },
		{ "{\"id\":1e400,\"action_type\":\"a\",\"status\":\"ready\"}",
		    0, "id" },
		/* action_type */
		{ "{\"id\":1,\"status\":\"ready\"}", 0, "no action_type" },
		{ "{\"id\":1,\"action_type\":5,\"status\":\"ready\"}", 0,
		    "action_type is not a string" },
		{ "{\"id\":1,\"action_type\":null,\"status\":\"ready\"}", 0,
		    "action_type is not a string" },
		{ "{\"id\":1,\"action_type\":\"\",\"status\":\"ready\"}", 0,
		    "action_type is not [a-z_]" },
		{ "{\"id\":1,\"action_type\":\"../x\",\"status\":\"ready\"}",
		    0, "action_type is not [a-z_]" },
		{ "{\"id\":1,\"action_type\":\"Print\",\"status\":\"ready\"}",
		    0, "action_type is not [a-z_]" },
		{ "{\"id\":1,\"action_type\":\"print2\",\"status\":\"ready\"}",
		    0, "action_type is not [a-z_]" },
		{ "{\"id\":1,\"action_type\":\"lid image\",\"status\":"
		    "\"ready\"}", 0, "action_type is not [a-z_]" },
		{ "{\"id\":1,\"action_type\":\"a:b\",\"status\":\"ready\"}",
		    0, "action_type is not [a-z_]" },
		{ "{\"id\":1,\"action_type\":\"a/b\",\"status\":\"ready\"}",
		    0, "action_type is not [a-z_]" },
		{ "{\"id\":1,\"action_type\":\"caf\xc3\xa9\",\"status\":"
		    "\"ready\"}", 0, "action_type is not [a-z_]" },
		{ "{\"id\":1,\"action_type\":\"abcdefghijklmnopqrstuvwxyz_"
		    "abcdef\",\"status\":\"ready\"}", 0,
		    "action_type is not [a-z_]" },	/* 33 */
		/* status */
		{ "{\"id\":1,\"action_type\":\"a\"}", 0, "no status" },
		{ "{\"id\":1,\"action_type\":\"a\",\"status\":1}", 0,
		    "status is not a string" },
		{ "{\"id\":1,\"action_type\":\"a\",\"status\":null}", 0,
		    "status is not a string" },
		/* URLs */
		{ HEAD ",\"motion_url\":5}", 0, "motion_url is not a string" },
		{ HEAD ",\"motion_url\":[\"x\"]}", 0,
		    "motion_url is not a string" },
		{ HEAD ",\"endpoint\":{}}", 0, "endpoint is not a string" },
		{ HEAD ",\"endpoint\":false}", 0, "endpoint is not a string" },
	};
	struct action a;
	char err[256];
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		len = t[i].len != 0 ? t[i].len : strlen(t[i].in);
		memset(err, 'x', sizeof(err));
		memset(&a, 0xa5, sizeof(a));
		if (frame_parse_action(t[i].in, len, &a, err,
		    sizeof(err)) == 0)
			fail_msg("row %zu accepted", i);
		if (strstr(err, t[i].why) == NULL)
			fail_msg("row %zu: \"%s\" lacks \"%s\"", i, err,
			    t[i].why);
		assert_null(strchr(err, '\n'));		/* one line */
		assert_null(a.json);			/* nothing leaks */
		assert_null(a.type);
		frame_action_free(&a);
	}
}

static char *
repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail), i;
	char *s;

	s = malloc(hl + ul * n + tl + 1);
	assert_non_null(s);
	memcpy(s, head, hl);
	for (i = 0; i < n; i++)
		memcpy(s + hl + i * ul, unit, ul);
	memcpy(s + hl + n * ul, tail, tl + 1);
	return s;
}

/* FRAME_MAX_DEPTH levels pass, one more does not, and a hostile frame
 * many thousand levels deep is refused, without recursion (a recursive
 * parse of 100000 levels would overflow the stack under ASan). */
static void
test_depth(void **state)
{
	struct action a;
	char err[256], *s, *open, *close;
	size_t d;

	(void)state;
	/* The object is level 1: FRAME_MAX_DEPTH - 1 arrays inside. */
	for (d = FRAME_MAX_DEPTH - 1; d <= FRAME_MAX_DEPTH; d++) {
		close = repeat("", "]", d, "}");
		open = repeat(HEAD ",\"x\":", "[", d, close);
		assert_int_equal(frame_parse_action(open, strlen(open), &a,
		    err, sizeof(err)), d < FRAME_MAX_DEPTH ? 0 : -1);
		if (d == FRAME_MAX_DEPTH)
			assert_non_null(strstr(err, "nested deeper"));
		frame_action_free(&a);
		free(open);
		free(close);
	}

	s = repeat("", "[", 100000, "");
	assert_int_equal(frame_parse_action(s, strlen(s), &a, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "nested deeper"));
	free(s);
	s = repeat(HEAD ",\"x\":", "{\"a\":", 100000, "1");
	assert_int_equal(frame_parse_action(s, strlen(s), &a, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "nested deeper"));
	free(s);
	/* Balanced, deep and closed: still refused. */
	close = repeat("", "]", 100000, "}");
	s = repeat(HEAD ",\"x\":", "[", 100000, close);
	assert_int_equal(frame_parse_action(s, strlen(s), &a, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "nested deeper"));
	free(s);
	free(close);

	/* Brackets in strings do not count, escaped quotes do not end them. */
	s = repeat(HEAD ",\"x\":\"\\\"", "[", 100000, "\"}");
	assert_int_equal(frame_parse_action(s, strlen(s), &a, err,
	    sizeof(err)), 0);
	frame_action_free(&a);
	free(s);
}

static void
test_limits(void **state)
{
	struct action a;
	char err[256], *s;
	size_t len = (size_t)FRAME_MAX_LEN + 1;

	(void)state;
	/* A valid object one byte too long. */
	s = malloc(len + 1);
	assert_non_null(s);
	memset(s, ' ', len);
	memcpy(s, HEAD "}", sizeof(HEAD "}") - 1);
	s[len] = '\0';
	assert_int_equal(frame_parse_action(s, len, &a, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "limit"));
	assert_int_equal(frame_parse_action(s, len - 1, &a, err,
	    sizeof(err)), 0);
	frame_action_free(&a);
	free(s);

	assert_int_equal(frame_parse_action(NULL, 0, &a, err, sizeof(err)),
	    -1);
	/* No room for a reason: still refused, nothing written. */
	assert_int_equal(frame_parse_action("[]", 2, &a, NULL, 0), -1);
	err[0] = 'z';
	assert_int_equal(frame_parse_action("[]", 2, &a, err, 0), -1);
	assert_int_equal(err[0], 'z');
	/* A short buffer gets a cut, terminated reason. */
	assert_int_equal(frame_parse_action("[]", 2, &a, err, 5), -1);
	assert_int_equal(strlen(err), 4);
	/* The line need not be terminated: only len bytes are read. */
	assert_int_equal(frame_parse_action(HEAD "}trailing",
	    sizeof(HEAD "}") - 1, &a, err, sizeof(err)), 0);
	frame_action_free(&a);
}

/* --- frame_buf: fragments of one message --- */

static const struct buf_case {
	const char	*name;
	size_t		 lens[4];	/* fragment sizes, bytes */
	int		 nfrag;
	int		 want[4];	/* each append's return */
	size_t		 total;		/* bytes kept */
} buf_cases[] = {
	{ "empty first frame, no buffer", { 0 }, 1, { 0 }, 0 },
	{ "empty then data", { 0, 3 }, 2, { 0, 0 }, 3 },
	{ "data then empty", { 5, 0 }, 2, { 0, 0 }, 5 },
	{ "exactly the limit", { FRAME_MAX_LEN - 1, 1 }, 2, { 0, 0 },
	    FRAME_MAX_LEN },
	{ "one past the limit", { FRAME_MAX_LEN, 1, 0 }, 3, { 0, -1, 0 },
	    FRAME_MAX_LEN },
};

static void
test_buf_append(void **state)
{
	static char src[FRAME_MAX_LEN];
	size_t i;
	int k;

	(void)state;
	memset(src, 'x', sizeof(src));
	for (i = 0; i < sizeof(buf_cases) / sizeof(buf_cases[0]); i++) {
		const struct buf_case *c = &buf_cases[i];
		struct frame_buf fb;

		memset(&fb, 0, sizeof(fb));
		for (k = 0; k < c->nfrag; k++) {
			/* lws hands an empty frame over as (NULL, 0). */
			const void *in = c->lens[k] == 0 ? NULL : src;

			if (frame_buf_append(&fb, in, c->lens[k]) !=
			    c->want[k])
				fail_msg("%s: fragment %d", c->name, k);
		}
		if (fb.len != c->total)
			fail_msg("%s: %zu bytes kept, want %zu", c->name,
			    fb.len, c->total);
		/* Splitting an empty message finds no line. */
		assert_int_equal(frame_split(fb.buf, fb.len, NULL, NULL),
		    fb.len > 0 ? 1 : 0);
		frame_buf_free(&fb);
		assert_null(fb.buf);
	}
}

struct multi {
	int	 ok;
	int	 bad;
	int64_t	 ids[4];
	int	 status[4];
};

static void
multi_line(const char *line, size_t len, void *arg)
{
	struct multi *m = arg;
	struct action a;
	char err[128];

	if (frame_parse_action(line, len, &a, err, sizeof(err)) == -1) {
		m->bad++;
		return;
	}
	m->ids[m->ok] = a.id;
	m->status[m->ok] = (int)a.status;
	m->ok++;
	frame_action_free(&a);
}

/* Several actions packed into one message, as the service does. */
static void
test_multi(void **state)
{
	static const char msg[] =
	    "{\"id\":11,\"action_type\":\"lid_image\",\"status\":\"ready\"}\r\n"
	    "\r\n"
	    "{\"id\":12,\"action_type\":\"print\",\"status\":\"cancelled\"}\n"
	    "   \n"
	    "{\"id\":13,\"action_type\":\"../etc\",\"status\":\"ready\"}\n"
	    "not json\n"
	    "{\"id\":14,\"action_type\":\"hunt\",\"status\":\"started\"}";
	struct multi m;

	(void)state;
	memset(&m, 0, sizeof(m));
	assert_int_equal(frame_split(msg, sizeof(msg) - 1, multi_line, &m),
	    5);
	assert_int_equal(m.ok, 3);
	assert_int_equal(m.bad, 2);
	assert_int_equal(m.ids[0], 11);
	assert_int_equal(m.status[0], ACTION_READY);
	assert_int_equal(m.ids[1], 12);
	assert_int_equal(m.status[1], ACTION_CANCELLED);
	assert_int_equal(m.ids[2], 14);
	assert_int_equal(m.status[2], ACTION_OTHER);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_reject),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_multi),
		cmocka_unit_test(test_buf_append),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
