/*
 * test_puls: the pulse file decoder, streaming reader and generator
 * (PROTOCOL.md 8).  The expected decode of each byte is written here from
 * the protocol text, independently of src/puls.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <cmocka.h>

#include "puls.h"
#include "puls_render.h"

#define SERIAL		12345678ULL

/* A growing byte buffer, the sink of most tests. */
struct buf {
	uint8_t		*p;
	size_t		 len, cap;
	size_t		 calls;
	size_t		 fail_after;	/* bytes; 0 = never fail */
};

static int
buf_sink(const void *data, size_t len, void *arg)
{
	struct buf *b = arg;

	b->calls++;
	if (b->fail_after != 0 && b->len + len > b->fail_after)
		return -1;
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

static void
buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* The decode of PROTOCOL.md 8, straight from its table. */
static void
expect_byte(uint8_t b, struct puls_stats *e)
{
	memset(e, 0, sizeof(*e));
	if (b & 0x80) {		/* LP: power byte, nothing else counts */
		e->lp = 1;
		return;
	}
	if (b & 0x10)
		e->le = 1;
	switch (b & 0x03) {
	case 0x01: e->xp = 1; break;
	case 0x03: e->xn = 1; break;
	}
	switch (b & 0x0c) {
	case 0x0c: e->yp = 1; break;
	case 0x04: e->yn = 1; break;
	}
	switch (b & 0x60) {
	case 0x60: e->zp = 1; break;
	case 0x20: e->zn = 1; break;
	}
}

static void
assert_stats_equal(const struct puls_stats *a, const struct puls_stats *b)
{
	assert_int_equal(a->xp, b->xp);
	assert_int_equal(a->xn, b->xn);
	assert_int_equal(a->yp, b->yp);
	assert_int_equal(a->yn, b->yn);
	assert_int_equal(a->zp, b->zp);
	assert_int_equal(a->zn, b->zn);
	assert_int_equal(a->le, b->le);
	assert_int_equal(a->lp, b->lp);
}

static void
stats_scale(struct puls_stats *s, uint64_t k)
{
	s->xp *= k; s->xn *= k; s->yp *= k; s->yn *= k;
	s->zp *= k; s->zn *= k; s->le *= k; s->lp *= k;
}

static void
stats_sum(struct puls_stats *s, const struct puls_stats *a)
{
	s->xp += a->xp; s->xn += a->xn; s->yp += a->yp; s->yn += a->yn;
	s->zp += a->zp; s->zn += a->zn; s->le += a->le; s->lp += a->lp;
}

/* Every byte value, alone (scalar path) and repeated (vector path). */
static void
test_decode_every_byte(void **state)
{
	static const size_t reps[] = { 1, 15, 16, 17, 37, 4080, 4097 };
	struct puls_stats want, got;
	uint8_t block[4097];
	size_t r;
	int b;

	(void)state;
	for (b = 0; b < 256; b++) {
		for (r = 0; r < sizeof(reps) / sizeof(reps[0]); r++) {
			expect_byte((uint8_t)b, &want);
			stats_scale(&want, reps[r]);
			memset(block, b, reps[r]);
			memset(&got, 0, sizeof(got));
			puls_stats_add(&got, block, reps[r]);
			assert_stats_equal(&got, &want);
		}
	}
}

/* All 256 values mixed in one buffer, at every alignment. */
static void
test_decode_mixed(void **state)
{
	struct puls_stats want, one, got;
	uint8_t buf[256 * 9 + 64];
	size_t i, off;

	(void)state;
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 167 + 13);
	for (off = 0; off < 32; off++) {
		memset(&want, 0, sizeof(want));
		for (i = off; i < sizeof(buf); i++) {
			expect_byte(buf[i], &one);
			stats_sum(&want, &one);
		}
		memset(&got, 0, sizeof(got));
		puls_stats_add(&got, buf + off, sizeof(buf) - off);
		assert_stats_equal(&got, &want);
	}
}

static uint64_t
rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void
test_stats_chunked(void **state)
{
	static const size_t chunks[] = { 1, 2, 3, 7, 15, 16, 17, 31, 32, 33,
	    255, 256, 4079, 4080, 4081, 65535, 65536, 100000 };
	struct puls_stats whole, got;
	size_t n = 300007, i, off, c;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	uint8_t *body;

	(void)state;
	assert_non_null(body = malloc(n));
	for (i = 0; i < n; i++)
		body[i] = (uint8_t)rng_next(&x);
	memset(&whole, 0, sizeof(whole));
	puls_stats_add(&whole, body, n);
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		memset(&got, 0, sizeof(got));
		for (off = 0; off < n; off += c) {
			c = n - off < chunks[i] ? n - off : chunks[i];
			puls_stats_add(&got, body + off, c);
		}
		assert_stats_equal(&got, &whole);
	}
	/* Random boundaries. */
	memset(&got, 0, sizeof(got));
	for (off = 0; off < n; off += c) {
		c = rng_next(&x) % 5000;
		if (c > n - off)
			c = n - off;
		puls_stats_add(&got, body + off, c);
	}
	assert_stats_equal(&got, &whole);
	free(body);
}

/* A header from (name, value) pairs. */
static size_t
mkheader(uint8_t *out, uint32_t declared_len, const char *const *names,
    const uint32_t *vals, size_t n)
{
	size_t i, off;

	out[0] = 0x80;
	memcpy(out + 1, "GF1", 3);
	out[4] = declared_len & 0xff;
	out[5] = (declared_len >> 8) & 0xff;
	out[6] = (declared_len >> 16) & 0xff;
	out[7] = (declared_len >> 24) & 0xff;
	for (i = 0, off = 8; i < n; i++, off += 8) {
		memcpy(out + off, names[i], 4);
		out[off + 4] = vals[i] & 0xff;
		out[off + 5] = (vals[i] >> 8) & 0xff;
		out[off + 6] = (vals[i] >> 16) & 0xff;
		out[off + 7] = (vals[i] >> 24) & 0xff;
	}
	return off;
}

struct parse_case {
	const char	*what;
	uint8_t		 bytes[64];
	size_t		 len;
	int		 want;		/* puls_header_parse() */
	const char	*errpart;	/* in the error, when want == -1 */
};

static void
test_header_parse_cases(void **state)
{
	static const struct parse_case cases[] = {
		{ "empty", { 0 }, 0, 1, NULL },
		{ "short", { 0x80, 'G', 'F', '1', 24, 0 }, 6, 1, NULL },
		{ "bad magic early", { 0x80, 'G', 'X' }, 3, -1, "byte 2" },
		{ "bad magic", { 0x80, 'G', 'F', '2', 8, 0, 0, 0 }, 8, -1,
		    "magic" },
		{ "length < 8", { 0x80, 'G', 'F', '1', 4, 0, 0, 0 }, 8, -1,
		    "less than 8" },
		{ "partial tag", { 0x80, 'G', 'F', '1', 12, 0, 0, 0,
		    'S', 'T', 'f', 'r' }, 12, -1, "partial tag" },
		{ "too many tags", { 0x80, 'G', 'F', '1', 0x10, 0x08, 0, 0 },
		    8, -1, "more than 256" },
		{ "lying length", { 0x80, 'G', 'F', '1', 64, 0, 0, 0,
		    'S', 'T', 'f', 'r', 0x10, 0x27, 0, 0 }, 16, 1, NULL },
		{ "no tags", { 0x80, 'G', 'F', '1', 8, 0, 0, 0 }, 8, 0,
		    NULL },
		{ "bad tag name", { 0x80, 'G', 'F', '1', 16, 0, 0, 0,
		    'S', 'T', 0x01, 'r', 1, 0, 0, 0 }, 16, -1, "byte 10" },
		{ "one tag", { 0x80, 'G', 'F', '1', 16, 0, 0, 0,
		    'S', 'T', 'f', 'r', 0x10, 0x27, 0, 0, 0xff }, 17, 0,
		    NULL },
	};
	struct puls_header *h;
	char err[256];
	size_t i;
	int r;

	(void)state;
	assert_non_null(h = calloc(1, sizeof(*h)));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		r = puls_header_parse(cases[i].bytes, cases[i].len, h, err,
		    sizeof(err));
		if (r != cases[i].want)
			fail_msg("%s: got %d (%s), want %d", cases[i].what, r,
			    err, cases[i].want);
		if (r == -1 && strstr(err, cases[i].errpart) == NULL)
			fail_msg("%s: error \"%s\" lacks \"%s\"", cases[i].what,
			    err, cases[i].errpart);
	}
	/* The one-tag case parsed to the value. */
	uint32_t v = 0;
	assert_int_equal(puls_header_parse(cases[10].bytes, 17, h, err,
	    sizeof(err)), 0);
	assert_int_equal(h->header_len, 16);
	assert_int_equal(h->format, 0x80);
	assert_int_equal(h->ntags, 1);
	assert_string_equal(h->tags[0].name, "STfr");
	assert_int_equal(puls_header_get(h, "STfr", &v), 0);
	assert_int_equal(v, 10000);
	assert_int_equal(puls_header_get(h, "MCsn", &v), -1);
	free(h);
}

static void
test_header_max_tags(void **state)
{
	struct puls_header *h;
	uint8_t buf[8 + 8 * 256];
	char err[256];
	size_t i;

	(void)state;
	assert_non_null(h = calloc(1, sizeof(*h)));
	memset(buf, 0, sizeof(buf));
	buf[0] = 0x80;
	memcpy(buf + 1, "GF1", 3);
	buf[4] = (8 + 8 * 256) & 0xff;
	buf[5] = (8 + 8 * 256) >> 8;
	for (i = 0; i < 256; i++) {
		snprintf((char *)buf + 8 + 8 * i, 5, "T%03zu", i);
		buf[8 + 8 * i + 4] = (uint8_t)i;
	}
	assert_int_equal(puls_header_parse(buf, sizeof(buf), h, err,
	    sizeof(err)), 0);
	assert_int_equal(h->ntags, 256);
	assert_string_equal(h->tags[255].name, "T255");
	assert_int_equal(h->tags[255].value, 255);
	free(h);
}

struct check_case {
	const char	*what;
	const char	*names[4];
	uint32_t	 vals[4];
	size_t		 n;
	int		 want;
	const char	*errpart;
};

static void
test_header_check_cases(void **state)
{
	static const struct check_case cases[] = {
		{ "ok", { "STfr", "MCsn", "PDfm" }, { 10000, 12345678, 0 },
		    3, 0, NULL },
		{ "any machine", { "STfr", "MCsn", "PDfm" }, { 10000, 0, 0 },
		    3, 0, NULL },
		{ "no tags", { NULL }, { 0 }, 0, -1, "STfr" },
		{ "STfr 0", { "STfr", "MCsn", "PDfm" }, { 0, 0, 0 }, 3, -1,
		    "STfr" },
		{ "no MCsn", { "STfr", "PDfm" }, { 10000, 0 }, 2, -1,
		    "MCsn" },
		{ "other machine", { "STfr", "MCsn", "PDfm" },
		    { 10000, 87654321, 0 }, 3, -1, "87654321" },
		{ "no PDfm", { "STfr", "MCsn" }, { 10000, 0 }, 2, -1, "PDfm" },
		{ "PDfm 1", { "STfr", "MCsn", "PDfm" }, { 10000, 0, 1 }, 3, -1,
		    "PDfm 1" },
	};
	struct puls_header *h;
	uint8_t buf[64];
	char err[256];
	size_t i, len;
	int r;

	(void)state;
	assert_non_null(h = calloc(1, sizeof(*h)));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = mkheader(buf, (uint32_t)(8 + 8 * cases[i].n),
		    cases[i].names, cases[i].vals, cases[i].n);
		assert_int_equal(puls_header_parse(buf, len, h, err,
		    sizeof(err)), 0);
		err[0] = '\0';
		r = puls_header_check(h, SERIAL, err, sizeof(err));
		if (r != cases[i].want)
			fail_msg("%s: got %d (%s)", cases[i].what, r, err);
		if (r == -1 && strstr(err, cases[i].errpart) == NULL)
			fail_msg("%s: error \"%s\" lacks \"%s\"", cases[i].what,
			    err, cases[i].errpart);
	}
	free(h);
}

/* gzip of buf, by zlib. */
static uint8_t *
gzip_buf(const uint8_t *in, size_t len, size_t *outlen)
{
	z_stream z;
	uint8_t *out;
	size_t cap = len + len / 100 + 1024;

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
	    Z_DEFAULT_STRATEGY), Z_OK);
	assert_non_null(out = malloc(cap));
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	*outlen = z.total_out;
	deflateEnd(&z);
	return out;
}

/* A sample job: travel, a cut rectangle, a Z hunt. */
static const struct puls_gen_move sample_moves[] = {
	{ 2000, 1500, 0, 0 },
	{ 533, 0, 0, 1 },
	{ 0, 267, 0, 1 },
	{ -533, 0, 0, 1 },
	{ 0, -267, 0, 1 },
	{ -100, 37, 0, 0 },
	{ 0, 0, -14, 0 },
	{ 0, 0, 14, 0 },
	{ 17, -3, 2, 1 },
};

static void
make_sample(struct buf *out, uint32_t serial)
{
	struct puls_gen_params p;

	memset(&p, 0, sizeof(p));
	p.stfr = 10000;
	p.speed = 5000;
	p.accel = 50000;
	p.power = 100;
	p.serial = serial;
	assert_int_equal(puls_generate(&p, sample_moves,
	    sizeof(sample_moves) / sizeof(sample_moves[0]), buf_sink, out), 0);
}

static int
feed_chunks(struct puls_stream *s, const uint8_t *p, size_t len, size_t c)
{
	size_t off, n;

	for (off = 0; off < len; off += n) {
		n = len - off < c ? len - off : c;
		if (puls_stream_feed(s, p + off, n) == -1)
			return -1;
	}
	return 0;
}

/* Plain and gzip, fed in many chunk sizes, give the same result. */
static void
test_stream_chunked(void **state)
{
	static const size_t chunks[] = { 1, 2, 3, 7, 8, 9, 31, 32, 33, 4096,
	    70000, 1 << 20 };
	struct buf file = { 0 }, out = { 0 };
	struct puls_stats whole;
	struct puls_header *h;
	struct puls_stream *s;
	uint8_t *gz;
	size_t gzlen, i, hl;
	char err[128];
	int z;

	(void)state;
	make_sample(&file, (uint32_t)SERIAL);
	assert_non_null(h = calloc(1, sizeof(*h)));
	assert_int_equal(puls_header_parse(file.p, file.len, h, err,
	    sizeof(err)), 0);
	hl = h->header_len;
	memset(&whole, 0, sizeof(whole));
	puls_stats_add(&whole, file.p + hl, file.len - hl);
	gz = gzip_buf(file.p, file.len, &gzlen);

	for (z = 0; z < 2; z++) {
		for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
			assert_non_null(s = puls_stream_new(SERIAL,
			    PULS_MAX_BODY, buf_sink, &out));
			assert_int_equal(puls_stream_expect(s,
			    z ? gzlen : file.len), 0);
			assert_int_equal(feed_chunks(s, z ? gz : file.p,
			    z ? gzlen : file.len, chunks[i]), 0);
			if (puls_stream_finish(s) != 0)
				fail_msg("z=%d chunk %zu: %s", z, chunks[i],
				    puls_stream_error(s));
			assert_null(puls_stream_error(s));
			assert_int_equal(puls_stream_compressed(s), z);
			assert_non_null(puls_stream_header(s));
			assert_int_equal(puls_stream_header(s)->header_len, hl);
			assert_int_equal(puls_stream_body_size(s),
			    file.len - hl);
			assert_stats_equal(puls_stream_stats(s), &whole);
			assert_int_equal(out.len, file.len);
			assert_memory_equal(out.p, file.p, file.len);
			puls_stream_free(s);
			out.len = 0;
		}
	}
	free(gz);
	free(h);
	buf_free(&file);
	buf_free(&out);
}

/* A one-byte 0x1f first feed must not be mistaken either way. */
static void
test_stream_first_byte(void **state)
{
	struct buf file = { 0 }, out = { 0 };
	struct puls_stream *s;
	uint8_t *gz, junk[16] = { 0x1f, 0x00, 'x' };
	size_t gzlen;

	(void)state;
	make_sample(&file, 0);
	gz = gzip_buf(file.p, file.len, &gzlen);
	assert_non_null(s = puls_stream_new(SERIAL, PULS_MAX_BODY, buf_sink,
	    &out));
	assert_int_equal(puls_stream_feed(s, gz, 1), 0);
	assert_int_equal(puls_stream_compressed(s), -1);
	assert_int_equal(puls_stream_feed(s, gz + 1, gzlen - 1), 0);
	assert_int_equal(puls_stream_finish(s), 0);
	assert_int_equal(puls_stream_compressed(s), 1);
	assert_int_equal(out.len, file.len);
	puls_stream_free(s);

	/* 0x1f then not 0x8b: plain, and a bad magic. */
	assert_non_null(s = puls_stream_new(SERIAL, PULS_MAX_BODY, NULL,
	    NULL));
	assert_int_equal(puls_stream_feed(s, junk, 1), 0);
	assert_int_equal(puls_stream_feed(s, junk + 1, 2), -1);
	assert_int_equal(puls_stream_compressed(s), 0);
	assert_non_null(strstr(puls_stream_error(s), "magic"));
	puls_stream_free(s);

	/* A lone 0x1f, then the end. */
	assert_non_null(s = puls_stream_new(SERIAL, PULS_MAX_BODY, NULL,
	    NULL));
	assert_int_equal(puls_stream_feed(s, junk, 1), 0);
	assert_int_equal(puls_stream_finish(s), -1);
	assert_non_null(strstr(puls_stream_error(s), "short header"));
	puls_stream_free(s);

	/* Nothing at all. */
	assert_non_null(s = puls_stream_new(SERIAL, PULS_MAX_BODY, NULL,
	    NULL));
	assert_int_equal(puls_stream_finish(s), -1);
	assert_non_null(puls_stream_error(s));
	puls_stream_free(s);
	free(gz);
	buf_free(&file);
	buf_free(&out);
}

struct stream_case {
	const char	*what;
	int		 gzip;
	size_t		 cut;		/* bytes kept from the end; 0 = all */
	int		 junk;		/* append trailing bytes */
	int		 corrupt;	/* flip a byte of the gzip CRC */
	uint32_t	 serial;	/* MCsn written */
	uint64_t	 max_body;
	uint64_t	 declared;	/* 0: none */
	int		 want_feed, want_finish;
	const char	*errpart;
};

static void
test_stream_errors(void **state)
{
	static const struct stream_case cases[] = {
		{ "gzip truncated", 1, 10, 0, 0, 0, PULS_MAX_BODY, 0, 0, -1,
		    "truncated" },
		{ "gzip cut to its first bytes", 1, 100000, 0, 0, 0,
		    PULS_MAX_BODY, 0, 0, -1, "truncated" },
		{ "gzip trailing junk", 1, 0, 1, 0, 0, PULS_MAX_BODY, 0, -1,
		    -1, "trailing" },
		{ "gzip corrupt", 1, 0, 0, 1, 0, PULS_MAX_BODY, 0, -1, -1,
		    "gzip" },
		/* A plain body has no length of its own: a cut one passes. */
		{ "plain body cut", 0, 10, 0, 0, 0, PULS_MAX_BODY, 0, 0, 0,
		    NULL },
		{ "other machine", 0, 0, 0, 0, 87654321, PULS_MAX_BODY, 0, -1,
		    -1, "87654321" },
		{ "other machine gzip", 1, 0, 0, 0, 87654321, PULS_MAX_BODY, 0,
		    -1, -1, "87654321" },
		{ "body past max", 0, 0, 0, 0, 0, 1000, 0, -1, -1,
		    "limit of 1000" },
		{ "gzip body past max", 1, 0, 0, 0, 0, 1000, 0, -1, -1,
		    "limit of 1000" },
		{ "declared past max", 0, 0, 0, 0, 0, 1000, 1000000, -1, -1,
		    "declared" },
		{ "declared plain within allowance", 0, 0, 0, 0, 0, 1u << 20,
		    (1u << 20) + 32, 0, 0, NULL },
		{ "declared gzip past max", 1, 0, 0, 0, 0, 1000, 1100, -1, -1,
		    "declared" },
	};
	struct buf file = { 0 }, out = { 0 };
	struct puls_stream *s;
	uint8_t *data, *gz;
	size_t len, gzlen, i;
	uint32_t hl;
	int r;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct stream_case *c = &cases[i];

		make_sample(&file, c->serial != 0 ? c->serial :
		    (uint32_t)SERIAL);
		hl = file.p[4] | file.p[5] << 8;
		gz = NULL;
		if (c->gzip) {
			gz = gzip_buf(file.p, file.len, &gzlen);
			data = gz;
			len = gzlen;
		} else {
			data = file.p;
			len = file.len;
		}
		if (c->cut > 0)
			len = c->cut < len ? len - c->cut : 12;
		if (c->corrupt)
			data[len - 6] ^= 0x55;
		assert_non_null(s = puls_stream_new(SERIAL, c->max_body,
		    buf_sink, &out));
		r = 0;
		if (c->declared > 0)
			r = puls_stream_expect(s, c->declared);
		/* Declared-length refusals need no data; the gzip one is
		 * only known from the magic. */
		if (r == 0)
			r = feed_chunks(s, data, len, 1000);
		if (r == 0 && c->junk)
			r = puls_stream_feed(s, "junk", 4);
		if (r != c->want_feed)
			fail_msg("%s: feed %d (%s)", c->what, r,
			    puls_stream_error(s) ? puls_stream_error(s) : "");
		r = puls_stream_finish(s);
		if (r != c->want_finish)
			fail_msg("%s: finish %d (%s)", c->what, r,
			    puls_stream_error(s) ? puls_stream_error(s) : "");
		if (r == -1 && strstr(puls_stream_error(s), c->errpart) ==
		    NULL)
			fail_msg("%s: error \"%s\" lacks \"%s\"", c->what,
			    puls_stream_error(s), c->errpart);
		/* The sink never sees more than the bound. */
		if (out.len > hl)
			assert_true(out.len - hl <= c->max_body);
		puls_stream_free(s);
		free(gz);
		buf_free(&file);
		out.len = 0;
	}
	buf_free(&out);
}

/* Short plain inputs ending in the header. */
static void
test_stream_short_header(void **state)
{
	static const char *const names[] = { "STfr", "MCsn", "PDfm" };
	static const uint32_t vals[] = { 10000, 0, 0 };
	struct puls_stream *s;
	uint8_t buf[64];
	size_t len;

	(void)state;
	len = mkheader(buf, 64, names, vals, 3);	/* says 64, has 32 */
	assert_non_null(s = puls_stream_new(SERIAL, PULS_MAX_BODY, NULL,
	    NULL));
	assert_int_equal(puls_stream_feed(s, buf, len), 0);
	assert_int_equal(puls_stream_finish(s), -1);
	assert_non_null(strstr(puls_stream_error(s), "inside the header"));
	assert_null(puls_stream_header(s));
	puls_stream_free(s);

	assert_non_null(s = puls_stream_new(SERIAL, PULS_MAX_BODY, NULL,
	    NULL));
	assert_int_equal(puls_stream_feed(s, buf, 5), 0);
	assert_int_equal(puls_stream_finish(s), -1);
	assert_non_null(strstr(puls_stream_error(s), "short header"));
	puls_stream_free(s);

	/* Header only, no body: a valid empty job. */
	len = mkheader(buf, 32, names, vals, 3);
	assert_non_null(s = puls_stream_new(SERIAL, PULS_MAX_BODY, NULL,
	    NULL));
	assert_int_equal(puls_stream_feed(s, buf, len), 0);
	assert_int_equal(puls_stream_finish(s), 0);
	assert_int_equal(puls_stream_body_size(s), 0);
	puls_stream_free(s);

	/* nocheck: a job for another machine still parses. */
	{
		static const uint32_t other[] = { 10000, 999, 0 };

		len = mkheader(buf, 32, names, other, 3);
		assert_non_null(s = puls_stream_new(SERIAL, PULS_MAX_BODY,
		    NULL, NULL));
		puls_stream_nocheck(s);
		assert_int_equal(puls_stream_feed(s, buf, len), 0);
		assert_int_equal(puls_stream_finish(s), 0);
		puls_stream_free(s);
	}
}

/* A sink refusing stops the stream. */
static void
test_stream_sink_fails(void **state)
{
	struct buf file = { 0 }, out = { 0 };
	struct puls_stream *s;

	(void)state;
	make_sample(&file, 0);
	out.fail_after = 100;
	assert_non_null(s = puls_stream_new(SERIAL, PULS_MAX_BODY, buf_sink,
	    &out));
	assert_int_equal(feed_chunks(s, file.p, file.len, 64), -1);
	assert_int_equal(puls_stream_finish(s), -1);
	assert_non_null(puls_stream_error(s));
	/* No further calls into the sink once failed. */
	out.calls = 0;
	assert_int_equal(puls_stream_feed(s, file.p, 10), -1);
	assert_int_equal(out.calls, 0);
	puls_stream_free(s);
	buf_free(&file);
	buf_free(&out);
}

struct gen_case {
	const char		*what;
	struct puls_gen_move	 moves[6];
	size_t			 n;
	double			 speed, accel;
	uint32_t		 stfr;
};

static void
test_generate_roundtrip(void **state)
{
	static const struct gen_case cases[] = {
		{ "line", { { 5333, 0, 0, 0 } }, 1, 5333, 26667, 10000 },
		{ "diagonal cut", { { 1234, -777, 0, 1 } }, 1, 3000, 20000,
		    10000 },
		{ "rect", { { 533, 0, 0, 1 }, { 0, 267, 0, 1 },
		    { -533, 0, 0, 1 }, { 0, -267, 0, 1 } }, 4, 5000, 50000,
		    10000 },
		{ "hunt", { { 0, 0, -14, 0 }, { 0, 0, 14, 0 } }, 2, 50, 500,
		    10000 },
		{ "3 axes", { { 10, 20, 30, 0 }, { -7, 3, -1, 1 } }, 2, 8000, 0,
		    20000 },
		{ "no ramp, fast", { { 1, 1, 1, 1 }, { -999, 0, 0, 0 } }, 2,
		    1e9, 0, 1000 },
		{ "defaults", { { 100, 200, 0, 1 }, { 0, 0, 0, 1 },
		    { 0, 0, 0, 0 } }, 3, 0, 0, 0 },
	};
	struct buf file = { 0 };
	struct puls_gen_params p;
	struct puls_header *h;
	struct puls_stats st;
	char err[256];
	int64_t ex, ey, ez, tx, ty, tz;
	uint64_t cuts;
	uint32_t v;
	size_t i, j;
	int prev;

	(void)state;
	assert_non_null(h = calloc(1, sizeof(*h)));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.stfr = cases[i].stfr;
		p.speed = cases[i].speed;
		p.accel = cases[i].accel;
		p.power = 42;
		p.serial = (uint32_t)SERIAL;
		assert_int_equal(puls_generate(&p, cases[i].moves, cases[i].n,
		    buf_sink, &file), 0);
		assert_int_equal(puls_header_parse(file.p, file.len, h, err,
		    sizeof(err)), 0);
		if (puls_header_check(h, SERIAL, err, sizeof(err)) != 0)
			fail_msg("%s: %s", cases[i].what, err);
		assert_int_equal(puls_header_get(h, "STfr", &v), 0);
		assert_int_equal(v, cases[i].stfr ? cases[i].stfr : 10000);
		memset(&st, 0, sizeof(st));
		puls_stats_add(&st, file.p + h->header_len,
		    file.len - h->header_len);
		ex = ey = ez = tx = ty = tz = 0;
		cuts = 0;
		prev = 0;
		for (j = 0; j < cases[i].n; j++) {
			const struct puls_gen_move *m = &cases[i].moves[j];

			ex += m->dx;
			ey += m->dy;
			ez += m->dz;
			tx += m->dx < 0 ? -m->dx : m->dx;
			ty += m->dy < 0 ? -m->dy : m->dy;
			tz += m->dz < 0 ? -m->dz : m->dz;
			if (m->dx == 0 && m->dy == 0 && m->dz == 0)
				continue;
			if (m->laser && !prev)
				cuts++;
			prev = m->laser;
		}
		if ((int64_t)(st.xp - st.xn) != ex ||
		    (int64_t)(st.yp - st.yn) != ey ||
		    (int64_t)(st.zp - st.zn) != ez ||
		    (int64_t)(st.xp + st.xn) != tx ||
		    (int64_t)(st.yp + st.yn) != ty ||
		    (int64_t)(st.zp + st.zn) != tz)
			fail_msg("%s: travel mismatch", cases[i].what);
		assert_int_equal(st.lp, cuts);
		if (cuts > 0)
			assert_true(st.le > 0);
		/* Every body byte is one tick: the file is never empty of
		 * ticks when anything moves. */
		assert_true(file.len - h->header_len >= (size_t)(tx > ty ?
		    (tx > tz ? tx : tz) : (ty > tz ? ty : tz)));
		file.len = 0;
	}
	free(h);
	buf_free(&file);
}

/* The ramp: a long move is slow at both ends and cruises in the middle. */
static void
test_generate_ramp(void **state)
{
	struct puls_gen_move m = { 20000, 0, 0, 0 };
	struct puls_gen_params p;
	struct buf file = { 0 };
	size_t body, i, first = 0, mid = 0, steps = 0;
	uint8_t *b;

	(void)state;
	memset(&p, 0, sizeof(p));
	p.stfr = 10000;
	p.speed = 5000;		/* a step every 2 ticks at cruise */
	p.accel = 20000;	/* 0.25 s to cruise: 625 steps */
	assert_int_equal(puls_generate(&p, &m, 1, buf_sink, &file), 0);
	b = file.p + 32;
	body = file.len - 32;
	for (i = 0; i < body; i++) {
		if ((b[i] & 0x03) != 0x01)
			continue;
		steps++;
		if (steps == 10)
			first = i;
		if (steps == 10010)
			mid = i;
		if (steps == 10020)
			mid = i - mid;
	}
	assert_int_equal(steps, 20000);
	assert_true(first > 60);		/* slow start */
	assert_in_range(mid, 19, 21);		/* 10 steps at cruise */
	/* Trapezoid: 20000 steps at 5000/s plus ramps of 0.25 s each way. */
	assert_in_range(body, 4.2 * 10000, 4.3 * 10000);
	buf_free(&file);
}

static void
test_info_json(void **state)
{
	static const char *const names[] = { "STfr", "MCsn", "PDfm" };
	static const uint32_t vals[] = { 10000, 0, 0 };
	static const char *const keys[] = { "XP", "XN", "XTOT", "XEND", "YP",
	    "YN", "YTOT", "YEND", "ZP", "ZN", "ZTOT", "ZEND", "LE", "LP",
	    "XMM", "YMM", "ZMM", "XIN", "YIN", "ZIN" };
	struct puls_header *h;
	struct puls_stats st;
	cJSON *o, *s, *it;
	uint8_t buf[64];
	char err[64], *txt;
	size_t len, i;

	(void)state;
	assert_non_null(h = calloc(1, sizeof(*h)));
	len = mkheader(buf, 32, names, vals, 3);
	assert_int_equal(puls_header_parse(buf, len, h, err, sizeof(err)), 0);
	memset(&st, 0, sizeof(st));
	st.xp = 11104;
	st.yp = 100;
	st.yn = 300;
	st.zn = 4;
	st.le = 7;
	st.lp = 2;
	assert_non_null(o = puls_info_json(h, 19894, &st));
	assert_int_equal(cJSON_GetObjectItem(o, "header_len")->valuedouble,
	    24);
	assert_int_equal(cJSON_GetObjectItem(o, "size")->valuedouble, 19894);
	assert_string_equal(cJSON_GetObjectItem(o, "run_time")->valuestring,
	    "0:00:01.989400");
	it = cJSON_GetObjectItem(o, "header_data");
	assert_int_equal(cJSON_GetArraySize(it), 3);
	assert_int_equal(cJSON_GetObjectItem(it, "STfr")->valuedouble, 10000);
	s = cJSON_GetObjectItem(o, "stats");
	assert_int_equal(cJSON_GetArraySize(s), 20);
	for (i = 0, it = s->child; it != NULL; i++, it = it->next)
		assert_string_equal(it->string, keys[i]);
	assert_int_equal(cJSON_GetObjectItem(s, "XTOT")->valuedouble, 11104);
	assert_true(cJSON_GetObjectItem(s, "YEND")->valuedouble == -200);
	assert_true(cJSON_GetObjectItem(s, "ZEND")->valuedouble == -4);
	assert_true(cJSON_GetObjectItem(s, "XMM")->valuedouble == 208.2);
	assert_true(cJSON_GetObjectItem(s, "YMM")->valuedouble == -3.75);
	assert_true(cJSON_GetObjectItem(s, "ZMM")->valuedouble ==
	    -4.0 / 2 * 0.70612);
	assert_true(cJSON_GetObjectItem(s, "XIN")->valuedouble ==
	    208.2 / 25.4);
	txt = cJSON_PrintUnformatted(o);
	assert_non_null(strstr(txt, "\"XMM\":208.2,"));
	free(txt);
	cJSON_Delete(o);

	/* Run time formats. */
	{
		static const struct {
			uint64_t	 ticks;
			const char	*want;
		} rt[] = {
			{ 0, "0:00:00.000000" },
			{ 10000, "0:00:01.000000" },
			{ 3 * 10000, "0:00:03.000000" },
			{ 36000000 + 6000000 + 5, "1:10:00.000500" },
			{ 9999999999ULL, "277:46:39.999900" },
		};
		for (i = 0; i < sizeof(rt) / sizeof(rt[0]); i++) {
			assert_non_null(o = puls_info_json(h, rt[i].ticks,
			    &st));
			assert_string_equal(cJSON_GetObjectItem(o,
			    "run_time")->valuestring, rt[i].want);
			cJSON_Delete(o);
		}
	}
	free(h);
}

/* --- the trace (gf-puls stats and render) --- */

/* The reference: PROTOCOL.md 8 read one byte at a time, written here. */
struct ref_trace {
	int64_t		pos[3], min[3], max[3];
	uint64_t	ticks, le, ortho[2], diag[2];
	uint64_t	pos_steps[3], neg_steps[3], lp;
};

static void
ref_trace_add(struct ref_trace *r, const uint8_t *p, size_t len)
{
	size_t i;
	int a, d[3], le;

	for (i = 0; i < len; i++) {
		uint8_t b = p[i];

		r->ticks++;
		if (b & 0x80) {
			r->lp++;
			continue;	/* power byte: nothing else */
		}
		le = (b & 0x10) != 0;
		r->le += le;
		d[0] = (b & 3) == 1 ? 1 : (b & 3) == 3 ? -1 : 0;
		d[1] = (b & 0xc) == 0xc ? 1 : (b & 0xc) == 4 ? -1 : 0;
		d[2] = (b & 0x60) == 0x60 ? 1 : (b & 0x60) == 0x20 ? -1 : 0;
		for (a = 0; a < 3; a++) {
			r->pos_steps[a] += d[a] > 0;
			r->neg_steps[a] += d[a] < 0;
			r->pos[a] += d[a];
			if (r->pos[a] < r->min[a])
				r->min[a] = r->pos[a];
			if (r->pos[a] > r->max[a])
				r->max[a] = r->pos[a];
		}
		if (d[0] != 0 && d[1] != 0)
			r->diag[le]++;
		else if (d[0] != 0 || d[1] != 0)
			r->ortho[le]++;
	}
}

static void
assert_trace_equal(const struct puls_trace *t, const struct ref_trace *r)
{
	struct puls_stats st;
	int a;

	assert_int_equal(t->x, r->pos[0]);
	assert_int_equal(t->y, r->pos[1]);
	assert_int_equal(t->z, r->pos[2]);
	for (a = 0; a < 3; a++) {
		assert_int_equal(t->min[a], r->min[a]);
		assert_int_equal(t->max[a], r->max[a]);
	}
	assert_int_equal(t->ticks, r->ticks);
	assert_int_equal(t->le_ticks, r->le);
	assert_int_equal(t->ortho[0], r->ortho[0]);
	assert_int_equal(t->ortho[1], r->ortho[1]);
	assert_int_equal(t->diag[0], r->diag[0]);
	assert_int_equal(t->diag[1], r->diag[1]);
	puls_trace_stats(t, &st);
	assert_int_equal(st.xp, r->pos_steps[0]);
	assert_int_equal(st.xn, r->neg_steps[0]);
	assert_int_equal(st.yp, r->pos_steps[1]);
	assert_int_equal(st.yn, r->neg_steps[1]);
	assert_int_equal(st.zp, r->pos_steps[2]);
	assert_int_equal(st.zn, r->neg_steps[2]);
	assert_int_equal(st.le, r->le);
	assert_int_equal(st.lp, r->lp);
}

/* xorshift64: reproducible without the libc's rand(). */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Random bodies of every kind the scan must get right: uniform bytes,
 * long one-way runs (an extent moves every tick, across chunk and lane
 * borders), and a wandering head; any size, any alignment, any chunking,
 * path or not: the trace equals the reference loop, bit for bit.
 */
static void
test_trace_property(void **state)
{
	static const uint8_t runs[] = { 0x01, 0x03, 0x0c, 0x04, 0x60, 0x20,
	    0x0d, 0x1f, 0x17, 0x00, 0x80, 0x6d };
	struct puls_trace t;
	struct ref_trace r;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	uint8_t *buf;
	size_t len, off, i, n, run;
	int iter, kind;

	(void)state;
	buf = malloc(70000 + 64);
	assert_non_null(buf);
	for (iter = 0; iter < 400; iter++) {
		kind = iter % 4;
		len = iter < 40 ? (size_t)iter * 97 : rnd(&seed) % 70000;
		off = rnd(&seed) % 64;
		for (i = 0; i < len; ) {
			run = kind == 0 ? 1 : 1 + rnd(&seed) %
			    (kind == 1 ? 5000 : 300);
			uint8_t b = kind == 0 ? (uint8_t)rnd(&seed) :
			    runs[rnd(&seed) % sizeof(runs)];
			for (n = 0; n < run && i < len; n++, i++)
				buf[off + i] = kind == 3 && rnd(&seed) % 4 ?
				    (uint8_t)rnd(&seed) : b;
		}
		memset(&r, 0, sizeof(r));
		ref_trace_add(&r, buf + off, len);
		puls_trace_init(&t, iter % 5 == 4, 12);
		for (i = 0; i < len; i += n) {
			n = iter % 3 == 0 ? len - i :
			    1 + rnd(&seed) % (iter % 3 == 1 ? 50 : 5000);
			if (n > len - i)
				n = len - i;
			puls_trace_add(&t, buf + off + i, n);
		}
		puls_trace_finish(&t);
		assert_trace_equal(&t, &r);
		puls_trace_free(&t);
	}
	free(buf);
}

/* Every byte value at every lane position of a chunk, one at a time. */
static void
test_trace_every_byte(void **state)
{
	struct puls_trace t;
	struct ref_trace r;
	uint8_t body[4096];
	size_t at;
	int b;

	(void)state;
	for (b = 0; b < 256; b++)
		for (at = 0; at < sizeof(body); at += 109) {
			memset(body, 0x00, sizeof(body));
			memset(body, (uint8_t)b, at);	/* a run up to at */
			memset(&r, 0, sizeof(r));
			ref_trace_add(&r, body, sizeof(body));
			puls_trace_init(&t, 0, 1);
			puls_trace_add(&t, body, sizeof(body));
			assert_trace_equal(&t, &r);
			puls_trace_free(&t);
		}
}

/* The toolpaths of two traces: the same vertices and Z marks, bit for bit. */
static void
assert_path_equal(const struct puls_trace *a, const struct puls_trace *b)
{
	assert_int_equal(a->oom, b->oom);
	assert_int_equal(a->nv, b->nv);
	assert_int_equal(a->nzm, b->nzm);
	if (a->nv > 0)
		assert_memory_equal(a->v, b->v, a->nv * sizeof(*a->v));
	if (a->nzm > 0)
		assert_memory_equal(a->zm, b->zm, a->nzm * sizeof(*a->zm));
	assert_int_equal(a->x, b->x);
	assert_int_equal(a->y, b->y);
	assert_int_equal(a->z, b->z);
}

/*
 * Issue 12: render skips 16 bytes at a time where the head only steps
 * within a sample's reach.  Against the tick-by-tick walk, kept as
 * puls_trace_add_scalar(): random heads (runs of one byte, drifting
 * lines, idle, laser switches, Z, power bytes), every tolerance from one
 * step to more than a vector's reach, any chunking: the same toolpath.
 */
static void
test_trace_walk_property(void **state)
{
	/* Direction bits without a step too (0x12, 0x08, 0x4a): idle. */
	static const uint8_t runs[] = { 0x01, 0x03, 0x0c, 0x04, 0x11, 0x13,
	    0x1c, 0x14, 0x0d, 0x1f, 0x17, 0x00, 0x10, 0x80, 0x60, 0x20,
	    0x6d, 0x05, 0x15, 0x12, 0x08, 0x4a, 0x1b, 0x49, 0x46 };
	static const double tols[] = { 1, 1.5, 2, 3.2, 7, 12, 16, 17, 40,
	    1e12 };
	struct puls_trace t, ref;
	uint64_t seed = 0x2545f4914f6cdd1dULL;
	uint8_t *buf, b, b2;
	size_t len, i, n, run;
	int iter, kind, mix;

	(void)state;
	buf = malloc(20000);
	assert_non_null(buf);
	for (iter = 0; iter < 240; iter++) {
		kind = iter % 3;
		len = rnd(&seed) % 20000;
		for (i = 0; i < len; ) {
			run = 1 + rnd(&seed) % (kind == 0 ? 8 : 400);
			b = runs[rnd(&seed) % sizeof(runs)];
			b2 = runs[rnd(&seed) % sizeof(runs)];
			mix = (int)(rnd(&seed) % 8);	/* 1 in mix: b2 */
			for (n = 0; n < run && i < len; n++, i++)
				buf[i] = kind == 2 && mix > 0 &&
				    rnd(&seed) % (uint64_t)mix == 0 ? b2 : b;
		}
		puls_trace_init(&t, 1, tols[iter % 10]);
		puls_trace_init(&ref, 1, tols[iter % 10]);
		for (i = 0; i < len; i += n) {
			n = iter % 4 == 0 ? len - i : 1 + rnd(&seed) % 3000;
			if (n > len - i)
				n = len - i;
			puls_trace_add(&t, buf + i, n);
		}
		puls_trace_add_scalar(&ref, buf, len);
		puls_trace_finish(&t);
		puls_trace_finish(&ref);
		assert_path_equal(&t, &ref);
		puls_trace_free(&t);
		puls_trace_free(&ref);
	}
	free(buf);
}

/* 1 when the vertices of t are, in order, places the head was at in
 * body (started at the origin): a drawing that follows the path. */
static int
path_follows(const struct puls_trace *t, const uint8_t *body, size_t len)
{
	int64_t x = 0, y = 0;
	size_t i = 0, k;
	uint8_t b;

	for (k = 0; k < t->nv; k++) {
		while (x != t->v[k].x || y != t->v[k].y) {
			if (i == len)
				return 0;
			b = body[i++];
			if (b & 0x80)
				continue;
			x += (b & 3) == 1 ? 1 : (b & 3) == 3 ? -1 : 0;
			y += (b & 0xc) == 0xc ? 1 : (b & 0xc) == 4 ? -1 : 0;
		}
	}
	return 1;
}

/*
 * Issue 12: render walks the second half of a big file on another core
 * and merges.  Split anywhere: the numbers and Z marks are those of one
 * walk, and the drawing still follows the path; a half that gave up
 * (too many vertices) is refused.
 */
static void
test_trace_merge_property(void **state)
{
	static const uint8_t runs[] = { 0x01, 0x03, 0x0c, 0x04, 0x11, 0x13,
	    0x1c, 0x14, 0x0d, 0x1f, 0x00, 0x80, 0x60, 0x20, 0x05 };
	struct puls_trace t, a, b;
	struct ref_trace r;
	uint64_t seed = 0x853c49e6748fea9bULL;
	uint8_t *buf, c;
	size_t len, cut, i, n, run;
	int iter, path;

	(void)state;
	buf = malloc(20000);
	assert_non_null(buf);
	for (iter = 0; iter < 120; iter++) {
		len = rnd(&seed) % 20000;
		for (i = 0; i < len; ) {
			run = 1 + rnd(&seed) % 300;
			c = runs[rnd(&seed) % sizeof(runs)];
			for (n = 0; n < run && i < len; n++, i++)
				buf[i] = c;
		}
		cut = iter % 5 == 0 ? 0 : iter % 5 == 1 ? len :
		    rnd(&seed) % (len + 1);
		path = iter % 7 != 6;
		puls_trace_init(&t, path, 12);
		puls_trace_init(&a, path, 12);
		puls_trace_init(&b, path, 12);
		puls_trace_raw(&b);
		puls_trace_add(&t, buf, len);
		puls_trace_finish(&t);
		puls_trace_add(&a, buf, cut);
		puls_trace_finish(&a);
		puls_trace_add(&b, buf + cut, len - cut);
		puls_trace_finish(&b);
		assert_int_equal(puls_trace_merge(&a, &b), 0);
		memset(&r, 0, sizeof(r));
		ref_trace_add(&r, buf, len);
		assert_trace_equal(&a, &r);
		assert_int_equal(a.nzm, t.nzm);
		if (t.nzm > 0)
			assert_memory_equal(a.zm, t.zm, t.nzm * sizeof(*t.zm));
		assert_true(path_follows(&a, buf, len));
		assert_true(path_follows(&t, buf, len));
		if (cut == len && path)	/* nothing after: one walk */
			assert_path_equal(&a, &t);
		b.oom = 1;
		assert_int_equal(puls_trace_merge(&a, &b), -1);
		puls_trace_free(&t);
		puls_trace_free(&a);
		puls_trace_free(&b);
	}
	free(buf);
}

/*
 * Issue 9 item 10: laser-off travel retracing one small square.  The
 * toolpath keeps one square (a few vertices), however many times it is
 * traced: cairo then strokes a path the size of the picture, not of the
 * job (it was quadratic: minutes and gigabytes for 120 MiB).
 */
static void
test_trace_retrace_bounded(void **state)
{
	static const size_t laps[] = { 1, 10, 300 };
	struct puls_gen_params p;
	struct puls_gen_move *m;
	struct puls_trace t;
	struct buf file;
	size_t i, k, nv[3];
	uint32_t hl;

	(void)state;
	for (k = 0; k < 3; k++) {
		memset(&p, 0, sizeof(p));
		memset(&file, 0, sizeof(file));
		m = calloc(laps[k] * 4, sizeof(*m));
		assert_non_null(m);
		for (i = 0; i < laps[k]; i++) {
			m[4 * i].dx = 107;	/* 2 mm */
			m[4 * i + 1].dy = 107;
			m[4 * i + 2].dx = -107;
			m[4 * i + 3].dy = -107;
		}
		assert_int_equal(puls_generate(&p, m, laps[k] * 4, buf_sink,
		    &file), 0);
		hl = (uint32_t)file.p[4] | (uint32_t)file.p[5] << 8;
		puls_trace_init(&t, 1, 12);
		puls_trace_add(&t, file.p + hl, file.len - hl);
		puls_trace_finish(&t);
		assert_int_equal(t.oom, 0);
		nv[k] = t.nv;
		assert_true(nv[k] >= 5);	/* the square is drawn */
		assert_int_equal(t.x, 0);
		assert_int_equal(t.max[0], 107);
		puls_trace_free(&t);
		free(m);
		free(file.p);
	}
	/* 300 laps keep what 10 keep, a few more at most (corner cells). */
	assert_true(nv[2] <= nv[1] + 8);
	assert_true(nv[2] < 64);
}

/* A sink that keeps what it is given, for comparison. */
struct vsink {
	struct puls_vertex	*v;
	size_t			 n, cap, calls;
};

static void
vsink_add(void *arg, const struct puls_vertex *v, size_t n)
{
	struct vsink *k = arg;

	while (k->n + n > k->cap) {
		k->cap = k->cap ? k->cap * 2 : 4096;
		k->v = realloc(k->v, k->cap * sizeof(*k->v));
		assert_non_null(k->v);
	}
	memcpy(k->v + k->n, v, n * sizeof(*v));
	k->n += n;
	k->calls++;
}

/* Serpentine rows of 500 ticks, the laser toggled at random. */
static void
dither_body(uint8_t *buf, size_t len)
{
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	size_t i;
	int fwd = 1;

	for (i = 0; i < len; i++) {
		if (i % 501 == 500) {
			buf[i] = 0x0c;	/* one Y step */
			fwd = !fwd;
			continue;
		}
		buf[i] = (uint8_t)((fwd ? 0x01 : 0x03) |
		    (rnd(&seed) & 1 ? 0x10 : 0));
	}
}

/*
 * Issue 12: render memory bounded by the picture.  With a sink the trace
 * hands over exactly the vertices it would have kept, holding a bounded
 * few; a raw half spills most of its vertices to a file and the merge
 * reads them back as if they had stayed in memory.
 */
static void
test_trace_sink_spill(void **state)
{
	const size_t len = 600000, cut = 300000;
	struct puls_trace t, s, a, a2, b, b2;
	struct vsink k, all;
	uint8_t *buf;
	size_t n;

	(void)state;
	buf = malloc(len);
	assert_non_null(buf);
	dither_body(buf, len);
	memset(&k, 0, sizeof(k));
	puls_trace_init(&t, 1, 1);
	puls_trace_add(&t, buf, len);
	puls_trace_finish(&t);
	n = t.nv;
	puls_trace_flush(&t);	/* no sink: the vertices stay */
	assert_int_equal(t.nv, n);
	puls_trace_init(&s, 1, 1);
	puls_trace_sink(&s, vsink_add, &k);
	puls_trace_add(&s, buf, len);
	puls_trace_finish(&s);
	assert_true(s.nv < 4096);
	puls_trace_flush(&s);
	assert_int_equal(s.nv, 0);
	assert_true(k.calls > 2);
	assert_int_equal(k.n, t.nv);
	assert_memory_equal(k.v, t.v, t.nv * sizeof(*t.v));

	/* The second half spills; merged, it draws as if it had not. */
	puls_trace_init(&a, 1, 1);
	puls_trace_init(&a2, 1, 1);
	puls_trace_init(&b, 1, 1);
	puls_trace_raw(&b);
	puls_trace_add(&a, buf, cut);
	puls_trace_add(&a2, buf, cut);
	puls_trace_add(&b, buf + cut, len - cut);
	puls_trace_finish(&b);
	assert_int_equal(b.oom, 0);
	assert_true(b.nspill >= 65536);
	assert_true(b.nv < 65536);
	memset(&all, 0, sizeof(all));
	all.cap = b.nspill;
	all.v = malloc(all.cap * sizeof(*all.v));
	assert_non_null(all.v);
	assert_int_equal(fseek(b.spill, 0, SEEK_SET), 0);
	assert_int_equal(fread(all.v, sizeof(*all.v), b.nspill, b.spill),
	    b.nspill);
	all.n = b.nspill;
	vsink_add(&all, b.v, b.nv);
	b2 = b;			/* the same half, every vertex in memory */
	b2.spill = NULL;
	b2.nspill = 0;
	b2.v = all.v;
	b2.nv = all.n;
	assert_int_equal(puls_trace_merge(&a, &b), 0);
	assert_int_equal(puls_trace_merge(&a2, &b2), 0);
	assert_int_equal(a.nv, a2.nv);
	assert_memory_equal(a.v, a2.v, a.nv * sizeof(*a.v));
	assert_true(path_follows(&a, buf, len));
	puls_trace_free(&t);
	puls_trace_free(&s);
	puls_trace_free(&a);
	puls_trace_free(&a2);
	puls_trace_free(&b);
	free(all.v);
	free(k.v);
	free(buf);
}

/* puls_trace_full for the test: counts calls, sets k's sink when k. */
struct vfull {
	struct vsink	*k;
	size_t		 calls, nv;	/* nv: kept at the call */
	int		 rc;
};

static int
vfull_cb(void *arg, struct puls_trace *t)
{
	struct vfull *f = arg;

	f->calls++;
	f->nv = t->nv;
	if (f->k != NULL)
		puls_trace_sink(t, vsink_add, f->k);
	return f->rc;
}

/*
 * Issue 12: render walks once while the vertices fit a budget.  Below
 * it nothing is called and every vertex stays; at it the caller is
 * asked once, and the sink it sets gets the same vertices as a trace
 * that kept them all, v shrinking back to a batch; -1 stops the path.
 */
static void
test_trace_keep_budget(void **state)
{
	static const struct test_case {
		size_t	keep;
		int	sink, rc;
		size_t	calls;		/* want */
	} tcs[] = {
		{ 1U << 30, 1, 0, 0 },	/* fits: one pass, kept */
		{ 1000, 1, 0, 1 },	/* past it: drawn as walked */
		{ 1000, 0, 0, 1 },	/* no sink set: kept anyway */
		{ 1000, 1, -1, 1 },	/* the caller failed */
	};
	const size_t len = 200000;
	struct puls_trace all, t;
	struct vsink k;
	struct vfull f;
	uint8_t *buf;
	size_t i;

	(void)state;
	assert_non_null(buf = malloc(len));
	dither_body(buf, len);
	puls_trace_init(&all, 1, 1);
	puls_trace_add(&all, buf, len);
	puls_trace_finish(&all);
	assert_true(all.nv > 10000);
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++) {
		memset(&k, 0, sizeof(k));
		memset(&f, 0, sizeof(f));
		f.k = tcs[i].sink ? &k : NULL;
		f.rc = tcs[i].rc;
		puls_trace_init(&t, 1, 1);
		puls_trace_keep(&t, tcs[i].keep, vfull_cb, &f);
		puls_trace_add(&t, buf, len);
		puls_trace_finish(&t);
		puls_trace_flush(&t);
		assert_int_equal(f.calls, tcs[i].calls);
		if (tcs[i].calls > 0)
			assert_int_equal(f.nv, tcs[i].keep);
		if (tcs[i].rc == -1) {
			assert_int_equal(t.oom, 1);
		} else if (tcs[i].calls > 0 && tcs[i].sink) {
			assert_true(t.capv <= 4096);
			assert_int_equal(k.n, all.nv);
			assert_memory_equal(k.v, all.v, all.nv * sizeof(*k.v));
		} else {
			assert_int_equal(k.n, 0);
			assert_int_equal(t.nv, all.nv);
			assert_memory_equal(t.v, all.v, all.nv * sizeof(*t.v));
		}
		puls_trace_free(&t);
		free(k.v);
	}
	puls_trace_free(&all);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_every_byte),
		cmocka_unit_test(test_decode_mixed),
		cmocka_unit_test(test_stats_chunked),
		cmocka_unit_test(test_header_parse_cases),
		cmocka_unit_test(test_header_max_tags),
		cmocka_unit_test(test_header_check_cases),
		cmocka_unit_test(test_stream_chunked),
		cmocka_unit_test(test_stream_first_byte),
		cmocka_unit_test(test_stream_errors),
		cmocka_unit_test(test_stream_short_header),
		cmocka_unit_test(test_stream_sink_fails),
		cmocka_unit_test(test_generate_roundtrip),
		cmocka_unit_test(test_generate_ramp),
		cmocka_unit_test(test_info_json),
		cmocka_unit_test(test_trace_property),
		cmocka_unit_test(test_trace_every_byte),
		cmocka_unit_test(test_trace_walk_property),
		cmocka_unit_test(test_trace_merge_property),
		cmocka_unit_test(test_trace_retrace_bounded),
		cmocka_unit_test(test_trace_sink_spill),
		cmocka_unit_test(test_trace_keep_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
