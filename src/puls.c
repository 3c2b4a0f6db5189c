/*
 * puls: see puls.h and PROTOCOL.md 8.
 *
 * The step statistics are the hot path: a print job is up to 128 MiB of
 * ticks and the daemon counts them while the download runs.  Each statistic
 * is a masked compare of a byte, so the body is processed a vector at a
 * time: every lane of a compare is 0 or -1, subtracting it adds one to a
 * per-lane 8-bit counter, and the counters are summed into 64-bit totals
 * before they can wrap (every 255 vectors).  Measured on one core (AMD
 * EPYC, gcc -O2, 256 MiB): this 8.5-11.7 GB/s; four interleaved u32 byte
 * histograms folded through the table at the end 4.6 GB/s; a 256-entry
 * table of packed 8-bit counters 4.5 GB/s.  It also needs no histogram to
 * zero and fold per call, so the reader's small chunks cost nothing extra.
 * 16-byte vectors: 32 without AVX2 at build time were 30 times slower.
 * GCC/Clang vector extensions keep it portable (SSE2 on x86-64, NEON on
 * ARM, scalar code elsewhere).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "log.h"
#include "puls.h"

#define PULS_HEADER_MAX	(PULS_MAGIC_LEN + 8 * PULS_MAX_TAGS)	/* bytes */
/* Bytes of inflated output per pass: one write() of the daemon's kept
 * copy.  32 KiB keeps a 1 GiB job within idle + 64 KiB of RSS (README,
 * bench-bigjob); 128 KiB did not, and 64 KiB only just missed.  The cost
 * is 4x the write()s of 128 KiB: 0.15 s more system time per GiB here. */
#define PULS_ZCHUNK	(32 * 1024)
#define PULS_ZIN_MAX	(1U << 30)	/* bytes handed to inflate() at once */
#define PULS_GEN_BUF	(64 * 1024)	/* bytes buffered by the generator */

/* The decode table of PROTOCOL.md 8: mask and value of each statistic.
 * A power byte (bit 7) counts as LP and nothing else, so every mask but
 * LP's includes bit 7 and expects it clear. */
#define PULS_LP_MASK	0x80
#define PULS_LE_MASK	0x90
#define PULS_LE_VAL	0x10
#define PULS_X_MASK	0x83
#define PULS_XP_VAL	0x01
#define PULS_XN_VAL	0x03
#define PULS_Y_MASK	0x8c
#define PULS_YP_VAL	0x0c
#define PULS_YN_VAL	0x04
#define PULS_Z_MASK	0xe0
#define PULS_ZP_VAL	0x60
#define PULS_ZN_VAL	0x20

/* Bits the generator sets; the direction bit alone is no step. */
#define PULS_B_XSTEP	0x01
#define PULS_B_XNEG	0x02
#define PULS_B_YSTEP	0x04
#define PULS_B_YPOS	0x08
#define PULS_B_LE	0x10
#define PULS_B_ZSTEP	0x20
#define PULS_B_ZPOS	0x40
#define PULS_B_LP	0x80

#define PULS_VLEN	16	/* bytes per vector: one SSE2 / NEON register */
typedef uint8_t puls_vec __attribute__((vector_size(PULS_VLEN)));
typedef int8_t puls_svec __attribute__((vector_size(PULS_VLEN)));

struct puls_stream {
	uint64_t		 serial;	/* this machine, for MCsn */
	uint64_t		 max_body;	/* bytes */
	uint64_t		 declared;	/* bytes, 0 = not announced */
	puls_sink_fn		 sink;
	void			*sink_arg;
	int			 check;		/* run puls_header_check() */
	int			 count;		/* run puls_stats_add() */
	int			 failed;
	int			 compressed;	/* -1 unknown, 0 plain, 1 gz */
	uint8_t			 held;		/* a lone first byte 0x1f */
	int			 nheld;
	uint64_t		 in_total;	/* bytes fed, as sent */
	uint64_t		 plain_total;	/* bytes, header and body */
	uint64_t		 body;		/* bytes */
	int			 warned;	/* past PULS_WARN_BODY */
	int			 have_header;
	size_t			 hlen;		/* bytes in hbuf */
	size_t			 hwant;		/* bytes hbuf must reach */
	uint8_t			 hbuf[PULS_HEADER_MAX];
	struct puls_header	 header;
	struct puls_stats	 stats;
	int			 zinit;
	int			 zdone;		/* Z_STREAM_END seen */
	z_stream		 z;
	uint8_t			*zout;		/* PULS_ZCHUNK bytes, gzip only */
	char			 err[256];
};

static int puls_stream_fail(struct puls_stream *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static uint32_t
puls_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static void
puls_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = (v >> 24) & 0xff;
}

int
puls_header_parse(const uint8_t *buf, size_t len, struct puls_header *h,
    char *err, size_t errlen)
{
	static const char magic[] = "GF1";
	uint32_t hl, ntags;
	size_t i, j, off;

	/* Wrong magic is known from the first bytes: refuse early. */
	for (i = 1; i < len && i < 4; i++)
		if (buf[i] != (uint8_t)magic[i - 1]) {
			log_reason(err, errlen, "bad magic at byte %zu: not a "
			    "pulse file (want \"GF1\" at bytes 1-3)", i);
			return -1;
		}
	if (len < PULS_MAGIC_LEN)
		return 1;
	hl = puls_le32(buf + 4);
	if (hl < PULS_MAGIC_LEN) {
		log_reason(err, errlen, "header length %u at byte 4 is less "
		    "than %d", hl, PULS_MAGIC_LEN);
		return -1;
	}
	if ((hl - PULS_MAGIC_LEN) % 8 != 0) {
		log_reason(err, errlen, "header length %u at byte 4 leaves a "
		    "partial tag (%u tag bytes, not a multiple of 8)", hl,
		    hl - PULS_MAGIC_LEN);
		return -1;
	}
	ntags = (hl - PULS_MAGIC_LEN) / 8;
	if (ntags > PULS_MAX_TAGS) {
		log_reason(err, errlen, "header length %u at byte 4 means %u "
		    "tags, more than %d", hl, ntags, PULS_MAX_TAGS);
		return -1;
	}
	if (len < hl)
		return 1;

	memset(h, 0, sizeof(*h));
	h->format = buf[0];
	h->header_len = hl;
	for (i = 0; i < ntags; i++) {
		off = PULS_MAGIC_LEN + 8 * i;
		for (j = 0; j < 4; j++) {
			/* A name lands in a path-free JSON key and a log line:
			 * printable ASCII only. */
			if (buf[off + j] <= 0x20 || buf[off + j] >= 0x7f) {
				log_reason(err, errlen, "tag %zu at byte %zu: "
				    "name byte 0x%02x is not printable ASCII",
				    i, off + j, buf[off + j]);
				return -1;
			}
			h->tags[i].name[j] = (char)buf[off + j];
		}
		h->tags[i].name[4] = '\0';
		h->tags[i].value = puls_le32(buf + off + 4);
	}
	h->ntags = ntags;
	return 0;
}

int
puls_header_get(const struct puls_header *h, const char *name, uint32_t *v)
{
	size_t i;

	for (i = 0; i < h->ntags; i++)
		if (strcmp(h->tags[i].name, name) == 0) {
			if (v != NULL)
				*v = h->tags[i].value;
			return 0;
		}
	return -1;
}

int
puls_header_check(const struct puls_header *h, uint64_t serial, char *err,
    size_t errlen)
{
	uint32_t v;

	if (puls_header_get(h, "STfr", &v) == -1) {
		log_reason(err, errlen, "header has no STfr (step frequency)");
		return -1;
	}
	if (v == 0) {
		log_reason(err, errlen, "header STfr (step frequency) is 0");
		return -1;
	}
	if (puls_header_get(h, "MCsn", &v) == -1) {
		log_reason(err, errlen, "header has no MCsn (machine serial)");
		return -1;
	}
	if (v != 0 && v != serial) {
		log_reason(err, errlen, "job is for machine %u (header MCsn), "
		    "this is %llu", v, (unsigned long long)serial);
		return -1;
	}
	if (puls_header_get(h, "PDfm", &v) == -1) {
		log_reason(err, errlen, "header has no PDfm (pulse data "
		    "format)");
		return -1;
	}
	if (v != 0) {
		log_reason(err, errlen, "header PDfm %u: unknown pulse data "
		    "format (want 0)", v);
		return -1;
	}
	return 0;
}

/* One byte through the table: the tails and the scalar fallback. */
static void
puls_stats_byte(struct puls_stats *st, uint8_t b)
{
	st->lp += (b & PULS_LP_MASK) != 0;
	st->le += (b & PULS_LE_MASK) == PULS_LE_VAL;
	st->xp += (b & PULS_X_MASK) == PULS_XP_VAL;
	st->xn += (b & PULS_X_MASK) == PULS_XN_VAL;
	st->yp += (b & PULS_Y_MASK) == PULS_YP_VAL;
	st->yn += (b & PULS_Y_MASK) == PULS_YN_VAL;
	st->zp += (b & PULS_Z_MASK) == PULS_ZP_VAL;
	st->zn += (b & PULS_Z_MASK) == PULS_ZN_VAL;
}

static uint64_t
puls_vec_sum(puls_vec v)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < PULS_VLEN; i++)
		n += v[i];
	return n;
}

/* nvec vectors, at most 255 so no 8-bit lane counter wraps. */
static void
puls_stats_block(struct puls_stats *st, const uint8_t *p, size_t nvec)
{
	puls_vec lp = { 0 }, le = { 0 }, xp = { 0 }, xn = { 0 };
	puls_vec yp = { 0 }, yn = { 0 }, zp = { 0 }, zn = { 0 };
	puls_vec v, x, y, z;
	size_t i;

	for (i = 0; i < nvec; i++, p += PULS_VLEN) {
		memcpy(&v, p, sizeof(v));	/* unaligned load */
		/* A true compare lane is -1: subtracting counts it. */
		lp -= (puls_vec)((puls_svec)v < 0);
		le -= (puls_vec)((v & PULS_LE_MASK) == PULS_LE_VAL);
		x = v & PULS_X_MASK;
		xp -= (puls_vec)(x == PULS_XP_VAL);
		xn -= (puls_vec)(x == PULS_XN_VAL);
		y = v & PULS_Y_MASK;
		yp -= (puls_vec)(y == PULS_YP_VAL);
		yn -= (puls_vec)(y == PULS_YN_VAL);
		z = v & PULS_Z_MASK;
		zp -= (puls_vec)(z == PULS_ZP_VAL);
		zn -= (puls_vec)(z == PULS_ZN_VAL);
	}
	st->lp += puls_vec_sum(lp);
	st->le += puls_vec_sum(le);
	st->xp += puls_vec_sum(xp);
	st->xn += puls_vec_sum(xn);
	st->yp += puls_vec_sum(yp);
	st->yn += puls_vec_sum(yn);
	st->zp += puls_vec_sum(zp);
	st->zn += puls_vec_sum(zn);
}

void
puls_stats_add(struct puls_stats *st, const uint8_t *body, size_t len)
{
	size_t nvec, n;

	nvec = len / PULS_VLEN;
	while (nvec > 0) {
		n = nvec < 255 ? nvec : 255;
		puls_stats_block(st, body, n);
		body += n * PULS_VLEN;
		nvec -= n;
	}
	for (n = 0; n < len % PULS_VLEN; n++)
		puls_stats_byte(st, body[n]);
}

/* PROTOCOL.md 8: H:MM:SS.ffffff, rounded to the microsecond. */
void
puls_run_time(uint64_t ticks, uint32_t stfr, char *buf, size_t len)
{
	uint64_t sec, us;

	sec = ticks / stfr;
	us = ((ticks % stfr) * 1000000 + stfr / 2) / stfr;
	if (us >= 1000000) {
		sec++;
		us -= 1000000;
	}
	snprintf(buf, len, "%llu:%02u:%02u.%06u",
	    (unsigned long long)(sec / 3600), (unsigned)(sec / 60 % 60),
	    (unsigned)(sec % 60), (unsigned)us);
}

cJSON *
puls_info_json(const struct puls_header *h, uint64_t body_size,
    const struct puls_stats *st)
{
	cJSON *o, *hd, *s;
	char rt[64];
	uint32_t stfr;
	double xend, yend, zend, xmm, ymm, zmm;
	size_t i;

	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	if ((hd = cJSON_AddObjectToObject(o, "header_data")) == NULL)
		goto fail;
	for (i = 0; i < h->ntags; i++)
		if (cJSON_AddNumberToObject(hd, h->tags[i].name,
		    h->tags[i].value) == NULL)
			goto fail;
	if (cJSON_AddNumberToObject(o, "header_len",
	    h->header_len >= PULS_MAGIC_LEN ?
	    h->header_len - PULS_MAGIC_LEN : 0) == NULL ||
	    cJSON_AddNumberToObject(o, "size", (double)body_size) == NULL)
		goto fail;
	if (puls_header_get(h, "STfr", &stfr) == 0 && stfr > 0) {
		puls_run_time(body_size, stfr, rt, sizeof(rt));
		if (cJSON_AddStringToObject(o, "run_time", rt) == NULL)
			goto fail;
	} else if (cJSON_AddNullToObject(o, "run_time") == NULL)
		goto fail;

	if ((s = cJSON_AddObjectToObject(o, "stats")) == NULL)
		goto fail;
	xend = (double)((int64_t)st->xp - (int64_t)st->xn);
	yend = (double)((int64_t)st->yp - (int64_t)st->yn);
	zend = (double)((int64_t)st->zp - (int64_t)st->zn);
	/* Microstep modes 8 (X, Y) and 2 (Z); steps of 0.15 and 0.70612 mm. */
	xmm = xend / 8 * 0.15;
	ymm = yend / 8 * 0.15;
	zmm = zend / 2 * 0.70612;
	if (cJSON_AddNumberToObject(s, "XP", (double)st->xp) == NULL ||
	    cJSON_AddNumberToObject(s, "XN", (double)st->xn) == NULL ||
	    cJSON_AddNumberToObject(s, "XTOT",
	    (double)(st->xp + st->xn)) == NULL ||
	    cJSON_AddNumberToObject(s, "XEND", xend) == NULL ||
	    cJSON_AddNumberToObject(s, "YP", (double)st->yp) == NULL ||
	    cJSON_AddNumberToObject(s, "YN", (double)st->yn) == NULL ||
	    cJSON_AddNumberToObject(s, "YTOT",
	    (double)(st->yp + st->yn)) == NULL ||
	    cJSON_AddNumberToObject(s, "YEND", yend) == NULL ||
	    cJSON_AddNumberToObject(s, "ZP", (double)st->zp) == NULL ||
	    cJSON_AddNumberToObject(s, "ZN", (double)st->zn) == NULL ||
	    cJSON_AddNumberToObject(s, "ZTOT",
	    (double)(st->zp + st->zn)) == NULL ||
	    cJSON_AddNumberToObject(s, "ZEND", zend) == NULL ||
	    cJSON_AddNumberToObject(s, "LE", (double)st->le) == NULL ||
	    cJSON_AddNumberToObject(s, "LP", (double)st->lp) == NULL ||
	    cJSON_AddNumberToObject(s, "XMM", xmm) == NULL ||
	    cJSON_AddNumberToObject(s, "YMM", ymm) == NULL ||
	    cJSON_AddNumberToObject(s, "ZMM", zmm) == NULL ||
	    cJSON_AddNumberToObject(s, "XIN", xmm / 25.4) == NULL ||
	    cJSON_AddNumberToObject(s, "YIN", ymm / 25.4) == NULL ||
	    cJSON_AddNumberToObject(s, "ZIN", zmm / 25.4) == NULL)
		goto fail;
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

/* --- streaming reader --- */

struct puls_stream *
puls_stream_new(uint64_t serial, uint64_t max_body, puls_sink_fn sink,
    void *sink_arg)
{
	struct puls_stream *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->serial = serial;
	s->max_body = max_body;
	s->sink = sink;
	s->sink_arg = sink_arg;
	s->check = 1;
	s->count = 1;
	s->compressed = -1;
	s->hwant = PULS_MAGIC_LEN;
	return s;
}

void
puls_stream_free(struct puls_stream *s)
{
	if (s == NULL)
		return;
	if (s->zinit)
		inflateEnd(&s->z);
	free(s->zout);
	free(s);
}

void
puls_stream_nocheck(struct puls_stream *s)
{
	s->check = 0;
}

void
puls_stream_nostats(struct puls_stream *s)
{
	s->count = 0;
}

static int
puls_stream_fail(struct puls_stream *s, const char *fmt, ...)
{
	va_list ap;

	/* The first reason wins: later ones are consequences. */
	if (!s->failed) {
		va_start(ap, fmt);
		vsnprintf(s->err, sizeof(s->err), fmt, ap);
		va_end(ap);
		s->failed = 1;
	}
	return -1;
}

/* Bytes a plain file may have: the body bound and the largest header. */
static uint64_t
puls_plain_limit(const struct puls_stream *s)
{
	return s->max_body > UINT64_MAX - PULS_HEADER_MAX ? UINT64_MAX :
	    s->max_body + PULS_HEADER_MAX;
}

/* The declared length against the bound, once the encoding is known. */
static int
puls_stream_check_declared(struct puls_stream *s)
{
	uint64_t limit;

	if (s->declared == 0 || s->compressed == -1)
		return 0;
	/* Plain: header and body; gzip: compressed, always below the body. */
	limit = s->compressed ? s->max_body : puls_plain_limit(s);
	if (s->declared > limit)
		return puls_stream_fail(s, "declared length %llu bytes (%s) "
		    "passes the limit of %llu body bytes",
		    (unsigned long long)s->declared,
		    s->compressed ? "gzip" : "plain",
		    (unsigned long long)s->max_body);
	return 0;
}

int
puls_stream_expect(struct puls_stream *s, uint64_t declared_len)
{
	if (s->failed)
		return -1;
	s->declared = declared_len;
	/* Past even the plain allowance: refuse before the first byte. */
	if (declared_len > puls_plain_limit(s))
		return puls_stream_fail(s, "declared length %llu bytes passes "
		    "the limit of %llu body bytes",
		    (unsigned long long)declared_len,
		    (unsigned long long)s->max_body);
	return puls_stream_check_declared(s);
}

static int
puls_stream_body(struct puls_stream *s, const uint8_t *buf, size_t len)
{
	if (len > s->max_body - s->body)
		return puls_stream_fail(s, "body passes the limit of %llu "
		    "bytes at byte %llu%s", (unsigned long long)s->max_body,
		    (unsigned long long)(s->header.header_len + s->max_body),
		    s->compressed ? " (uncompressed)" : "");
	s->body += len;
	if (!s->warned && s->body > PULS_WARN_BODY) {
		log_warnx("pulse body passes %llu MiB: a very large job",
		    PULS_WARN_BODY / (1024 * 1024));
		s->warned = 1;
	}
	if (s->count)
		puls_stats_add(&s->stats, buf, len);
	if (s->sink != NULL && s->sink(buf, len, s->sink_arg) != 0)
		return puls_stream_fail(s, "keeping the job failed at "
		    "byte %llu", (unsigned long long)s->plain_total);
	s->plain_total += len;
	return 0;
}

/* Plain bytes: the header into hbuf until complete, then the body. */
static int
puls_stream_plain(struct puls_stream *s, const uint8_t *buf, size_t len)
{
	char err[160];
	size_t n;
	int r;

	while (!s->have_header && len > 0) {
		n = s->hwant - s->hlen;
		if (n > len)
			n = len;
		memcpy(s->hbuf + s->hlen, buf, n);
		s->hlen += n;
		buf += n;
		len -= n;
		/* The magic is checked as soon as its bytes are in. */
		if (s->hlen < s->hwant && s->hlen > PULS_MAGIC_LEN)
			break;
		r = puls_header_parse(s->hbuf, s->hlen, &s->header, err,
		    sizeof(err));
		if (r == -1)
			return puls_stream_fail(s, "%s%s", err,
			    s->compressed ? " (uncompressed)" : "");
		if (r == 1) {
			/* parse() bounded it by PULS_HEADER_MAX. */
			if (s->hlen == PULS_MAGIC_LEN)
				s->hwant = puls_le32(s->hbuf + 4);
			continue;
		}
		if (s->check && puls_header_check(&s->header, s->serial, err,
		    sizeof(err)) == -1)
			return puls_stream_fail(s, "%s", err);
		s->have_header = 1;
		if (s->sink != NULL &&
		    s->sink(s->hbuf, s->hlen, s->sink_arg) != 0)
			return puls_stream_fail(s, "keeping the job failed at "
			    "byte 0");
		s->plain_total = s->hlen;
	}
	if (len > 0)
		return puls_stream_body(s, buf, len);
	return 0;
}

static int
puls_stream_inflate(struct puls_stream *s, const uint8_t *buf, size_t len)
{
	size_t n, out;
	int zr;

	while (len > 0) {
		if (s->zdone)
			return puls_stream_fail(s, "trailing data after the "
			    "gzip stream at byte %llu",
			    (unsigned long long)s->z.total_in);
		n = len < PULS_ZIN_MAX ? len : PULS_ZIN_MAX;
		s->z.next_in = (Bytef *)(uintptr_t)buf;
		s->z.avail_in = (uInt)n;
		do {
			s->z.next_out = s->zout;
			s->z.avail_out = PULS_ZCHUNK;
			zr = inflate(&s->z, Z_NO_FLUSH);
			if (zr != Z_OK && zr != Z_STREAM_END &&
			    zr != Z_BUF_ERROR)
				return puls_stream_fail(s, "bad gzip data at "
				    "byte %llu: %s",
				    (unsigned long long)s->z.total_in,
				    s->z.msg != NULL ? s->z.msg :
				    zError(zr));
			out = PULS_ZCHUNK - s->z.avail_out;
			if (out > 0 && puls_stream_plain(s, s->zout, out) == -1)
				return -1;
			if (zr == Z_STREAM_END) {
				s->zdone = 1;
				break;
			}
			if (zr == Z_BUF_ERROR)
				break;	/* no progress possible: need input */
		} while (s->z.avail_in > 0 || s->z.avail_out == 0);
		if (s->zdone && s->z.avail_in > 0)
			return puls_stream_fail(s, "trailing data after the "
			    "gzip stream at byte %llu",
			    (unsigned long long)s->z.total_in);
		buf += n;
		len -= n;
	}
	return 0;
}

/* Decides the encoding from the first byte(s) fed. */
static int
puls_stream_sniff(struct puls_stream *s, const uint8_t *buf, size_t len)
{
	if (s->nheld == 0 && buf[0] == 0x1f && len == 1) {
		/* Half a gzip magic: wait for the next byte. */
		s->held = buf[0];
		s->nheld = 1;
		return 0;
	}
	if (s->nheld == 0)
		s->compressed = buf[0] == 0x1f && buf[1] == 0x8b;
	else
		s->compressed = buf[0] == 0x8b;
	if (s->compressed) {
		/* Plain input needs no output buffer: only gzip gets one. */
		if ((s->zout = malloc(PULS_ZCHUNK)) == NULL)
			return puls_stream_fail(s, "out of memory");
		/* 16 + MAX_WBITS: a gzip wrapper, not zlib or raw. */
		if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK)
			return puls_stream_fail(s, "inflateInit2 failed");
		s->zinit = 1;
	}
	if (puls_stream_check_declared(s) == -1)
		return -1;
	if (s->nheld > 0) {
		s->nheld = 0;
		if ((s->compressed ? puls_stream_inflate(s, &s->held, 1) :
		    puls_stream_plain(s, &s->held, 1)) == -1)
			return -1;
	}
	return s->compressed ? puls_stream_inflate(s, buf, len) :
	    puls_stream_plain(s, buf, len);
}

int
puls_stream_feed(struct puls_stream *s, const void *buf, size_t len)
{
	if (s->failed)
		return -1;
	if (len == 0)
		return 0;
	s->in_total += len;
	if (s->compressed == -1)
		return puls_stream_sniff(s, buf, len);
	return s->compressed ? puls_stream_inflate(s, buf, len) :
	    puls_stream_plain(s, buf, len);
}

int
puls_stream_finish(struct puls_stream *s)
{
	if (s->failed)
		return -1;
	if (s->nheld > 0) {
		/* A lone 0x1f: not gzip, and not a pulse file either. */
		s->compressed = 0;
		s->nheld = 0;
		if (puls_stream_plain(s, &s->held, 1) == -1)
			return -1;
	}
	if (s->compressed == -1)
		return puls_stream_fail(s, "empty input: no pulse header");
	if (s->compressed && !s->zdone)
		return puls_stream_fail(s, "gzip stream truncated after %llu "
		    "bytes", (unsigned long long)s->in_total);
	if (!s->have_header) {
		if (s->hwant == PULS_MAGIC_LEN)
			return puls_stream_fail(s, "short header: input ends "
			    "at byte %zu, a header has at least %d", s->hlen,
			    PULS_MAGIC_LEN);
		return puls_stream_fail(s, "input ends at byte %zu inside the "
		    "header (header length %zu at byte 4)%s", s->hlen,
		    s->hwant, s->compressed ? " (uncompressed)" : "");
	}
	return 0;
}

const char *
puls_stream_error(const struct puls_stream *s)
{
	return s->failed ? s->err : NULL;
}

const struct puls_header *
puls_stream_header(const struct puls_stream *s)
{
	return s->have_header ? &s->header : NULL;
}

const struct puls_stats *
puls_stream_stats(const struct puls_stream *s)
{
	return &s->stats;
}

uint64_t
puls_stream_body_size(const struct puls_stream *s)
{
	return s->body;
}

/* 1 gzip, 0 plain, -1 not known yet (no byte, or a lone 0x1f, fed). */
int
puls_stream_compressed(const struct puls_stream *s)
{
	return s->compressed;
}

/* --- generator --- */

struct puls_gen {
	puls_sink_fn	 sink;
	void		*arg;
	size_t		 len;		/* bytes in buf */
	int		 failed;
	uint8_t		 buf[PULS_GEN_BUF];
};

static int
puls_gen_flush(struct puls_gen *g)
{
	if (!g->failed && g->len > 0 && g->sink(g->buf, g->len, g->arg) != 0)
		g->failed = 1;
	g->len = 0;
	return g->failed ? -1 : 0;
}

static int
puls_gen_byte(struct puls_gen *g, uint8_t b)
{
	g->buf[g->len++] = b;
	if (g->len == sizeof(g->buf))
		return puls_gen_flush(g);
	return 0;
}

/*
 * One straight move.  The major axis (most steps) steps at the ramped rate:
 * v = min(cruise, sqrt(2a(done + 1)), sqrt(2a(left))), which accelerates from
 * standstill and stops on the last step.  A phase accumulator turns the
 * rate into at most one step per tick, and every axis (the major one too)
 * spreads its |d| steps over the major steps with the same error term,
 * started at half so the rounding is symmetric: each axis makes exactly
 * |d| steps.
 */
static int
puls_gen_move(struct puls_gen *g, const struct puls_gen_params *p,
    uint32_t stfr, const struct puls_gen_move *m, int first_cut)
{
	uint64_t d[3], e[3], major, done;
	double len, cruise, v, phase, inc;
	uint8_t dir, b;
	int i;

	d[0] = m->dx < 0 ? -(int64_t)m->dx : m->dx;
	d[1] = m->dy < 0 ? -(int64_t)m->dy : m->dy;
	d[2] = m->dz < 0 ? -(int64_t)m->dz : m->dz;
	major = d[0];
	for (i = 1; i < 3; i++)
		if (d[i] > major)
			major = d[i];
	if (major == 0)
		return 0;

	/* Speed is along the path in X/Y steps; Z-only moves in Z steps. */
	len = sqrt((double)d[0] * d[0] + (double)d[1] * d[1]);
	if (len == 0)
		len = (double)d[2];
	cruise = p->speed > 0 ? p->speed : stfr / 2.0;
	cruise *= (double)major / len;
	if (cruise > stfr)
		cruise = stfr;

	dir = 0;
	if (m->dx < 0)
		dir |= PULS_B_XNEG;
	if (m->dy > 0)
		dir |= PULS_B_YPOS;
	if (m->dz > 0)
		dir |= PULS_B_ZPOS;
	if (m->laser)
		dir |= PULS_B_LE;
	if (m->laser && first_cut &&
	    puls_gen_byte(g, PULS_B_LP | (p->power & 0x7f)) == -1)
		return -1;

	for (i = 0; i < 3; i++)
		e[i] = major / 2;
	phase = 0;
	for (done = 0; done < major; ) {
		v = cruise;
		if (p->accel > 0) {
			v = fmin(v, sqrt(2 * p->accel *
			    (double)(done + 1)));
			v = fmin(v, sqrt(2 * p->accel *
			    (double)(major - done)));
		}
		/* Ticks until the next major step, at this rate. */
		inc = v / stfr;
		while (phase + inc < 1.0) {
			phase += inc;
			if (puls_gen_byte(g, dir) == -1)
				return -1;
		}
		phase = phase + inc - 1.0;
		b = dir;
		for (i = 0; i < 3; i++) {
			e[i] += d[i];
			if (e[i] >= major) {
				e[i] -= major;
				b |= i == 0 ? PULS_B_XSTEP : i == 1 ?
				    PULS_B_YSTEP : PULS_B_ZSTEP;
			}
		}
		if (puls_gen_byte(g, b) == -1)
			return -1;
		done++;
	}
	return 0;
}

/*
 * The header carries STfr, MCsn (p->serial) and PDfm 0: what the checks of
 * PROTOCOL.md 8 need and nothing invented.  p->stfr 0 means 10000 ticks
 * per second, p->speed 0 half a step per tick, p->accel 0 no ramp (full
 * speed from the first step); moves without steps are skipped.
 */
int
puls_generate(const struct puls_gen_params *p,
    const struct puls_gen_move *moves, size_t nmoves, puls_sink_fn sink,
    void *arg)
{
	static const char *const names[] = { "STfr", "MCsn", "PDfm" };
	struct puls_gen *g;
	uint32_t stfr, vals[3];
	size_t i;
	int laser = 0, rc = -1;

	stfr = p->stfr > 0 ? p->stfr : 10000;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return -1;
	g->sink = sink;
	g->arg = arg;

	vals[0] = stfr;
	vals[1] = p->serial;
	vals[2] = 0;
	g->buf[0] = 0x80;
	memcpy(g->buf + 1, "GF1", 3);
	puls_put_le32(g->buf + 4, PULS_MAGIC_LEN + 8 * 3);
	for (i = 0; i < 3; i++) {
		memcpy(g->buf + PULS_MAGIC_LEN + 8 * i, names[i], 4);
		puls_put_le32(g->buf + PULS_MAGIC_LEN + 8 * i + 4, vals[i]);
	}
	g->len = PULS_MAGIC_LEN + 8 * 3;

	for (i = 0; i < nmoves; i++) {
		/* A power byte starts every cut (laser off -> on). */
		if (puls_gen_move(g, p, stfr, &moves[i],
		    moves[i].laser && !laser) == -1)
			goto done;
		if (moves[i].dx != 0 || moves[i].dy != 0 || moves[i].dz != 0)
			laser = moves[i].laser;
	}
	if (puls_gen_flush(g) == -1)
		goto done;
	rc = 0;
done:
	free(g);
	return rc;
}
