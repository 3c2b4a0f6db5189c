/*
 * fuzz_puls: a pulse file as downloaded, through puls_header_parse() and
 * the streaming reader (puls_stream_*), plain or gzip.  Seeds:
 * tests/corpus/puls, real pulse files, so the input is the file itself
 * and nothing else.
 *
 * The reader must give the same answer however the download is cut into
 * chunks, and the same for a file and its gzip; it runs several times per
 * input and the runs are compared:
 *   A  the whole input in one feed;
 *   B  the input in chunks whose sizes come from its last bytes (so most
 *      mutations keep the cut, and the fuzzer can still change it);
 *   C  when the input is not itself gzip, its gzip (made here), in chunks:
 *      this is how mutated plain files reach the inflate path, since a
 *      mutated gzip stream rarely gets past its CRC;
 *   D  as the daemon runs it: machine checks on, a declared length, a
 *      smaller body bound, a sink that may fail: errors only, no oracle.
 * A, B and C must agree on success; when they succeed, on the header
 * length, body size, statistics and the bytes handed to the sink; and a
 * plain file's sink bytes must be the file.  Memory stays bounded by
 * FUZZ_MAX_BODY: a small gzip may inflate to gigabytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <cjson/cJSON.h>

#include "puls.h"
#include "fuzz.h"

#define FUZZ_SERIAL	12345678ULL	/* the MCsn of some seeds */
#define FUZZ_MAX_BODY	(256 * 1024)	/* bytes, inflated */

/* What one run of the reader gave. */
struct fuzz_run {
	int		 ok;		/* puls_stream_finish() == 0 */
	int		 compressed;
	uint32_t	 header_len;
	uint64_t	 body;
	struct puls_stats stats;
	uint64_t	 out_len;	/* bytes the sink took */
	uLong		 out_crc;
	uint64_t	 fail_at;	/* sink fails past this; 0: never */
};

static uint64_t
fuzz_rng(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Mostly small chunks, where header and gzip boundaries fall inside. */
static size_t
fuzz_chunk(uint64_t *x, size_t left)
{
	uint64_t r = fuzz_rng(x);
	size_t c;

	switch (r & 3) {
	case 0:
		c = 1 + (r >> 8) % 8;
		break;
	case 1:
		c = 1 + (r >> 8) % 64;
		break;
	case 2:
		c = 1 + (r >> 8) % 4096;
		break;
	default:
		c = left;
		break;
	}
	return c < left ? c : left;
}

static int
fuzz_sink(const void *buf, size_t len, void *arg)
{
	struct fuzz_run *r = arg;

	if (r->fail_at != 0 && r->out_len + len > r->fail_at)
		return -1;
	r->out_crc = crc32_z(r->out_crc, buf, len);
	r->out_len += len;
	return 0;
}

/* One run; seed 0 feeds everything at once. */
static void
fuzz_stream(const uint8_t *data, size_t size, uint64_t seed, int check,
    uint64_t max_body, uint64_t declared, struct fuzz_run *r)
{
	const struct puls_header *h;
	struct puls_stream *s;
	size_t off, n;
	int rc = 0;

	r->out_crc = crc32_z(0, NULL, 0);
	if ((s = puls_stream_new(FUZZ_SERIAL, max_body, fuzz_sink, r)) ==
	    NULL)
		abort();
	if (!check)
		puls_stream_nocheck(s);
	if (declared != 0)
		rc = puls_stream_expect(s, declared);
	for (off = 0; rc == 0 && off < size; off += n) {
		n = seed != 0 ? fuzz_chunk(&seed, size - off) : size - off;
		rc = puls_stream_feed(s, data + off, n);
	}
	if (rc == 0)
		rc = puls_stream_finish(s);
	if (rc == -1) {
		/* Refused for good, with a reason to log. */
		FUZZ_CHECK(puls_stream_error(s) != NULL);
		FUZZ_CHECK(puls_stream_feed(s, data, size) == -1);
		FUZZ_CHECK(puls_stream_finish(s) == -1);
	} else {
		FUZZ_CHECK(rc == 0 && puls_stream_error(s) == NULL);
		FUZZ_CHECK((h = puls_stream_header(s)) != NULL);
		r->ok = 1;
		r->compressed = puls_stream_compressed(s);
		r->header_len = h->header_len;
		r->body = puls_stream_body_size(s);
		r->stats = *puls_stream_stats(s);
		FUZZ_CHECK(r->body <= max_body);
		FUZZ_CHECK(r->out_len == h->header_len + r->body);
	}
	puls_stream_free(s);
}

static int
fuzz_same_stats(const struct puls_stats *a, const struct puls_stats *b)
{
	return a->xp == b->xp && a->xn == b->xn && a->yp == b->yp &&
	    a->yn == b->yn && a->zp == b->zp && a->zn == b->zn &&
	    a->le == b->le && a->lp == b->lp;
}

static void
fuzz_same(const struct fuzz_run *a, const struct fuzz_run *b)
{
	FUZZ_CHECK(a->ok == b->ok);
	if (!a->ok)
		return;
	FUZZ_CHECK(a->header_len == b->header_len);
	FUZZ_CHECK(a->body == b->body);
	FUZZ_CHECK(fuzz_same_stats(&a->stats, &b->stats));
	FUZZ_CHECK(a->out_len == b->out_len && a->out_crc == b->out_crc);
}

/* The header alone, and what gf-puls info makes of it. */
static void
fuzz_header(const uint8_t *data, size_t size)
{
	static struct puls_header h;	/* 3 KiB: not on the stack */
	struct puls_stats st;
	char err[160], rt[64], *json;
	uint32_t stfr;
	cJSON *info;
	int r;

	r = puls_header_parse(data, size, &h, err, sizeof(err));
	if (r == -1) {
		FUZZ_CHECK(err[0] != '\0');
		return;
	}
	if (r == 1) {
		FUZZ_CHECK(size < PULS_MAGIC_LEN ||
		    size < (uint32_t)(data[4] | data[5] << 8 |
		    data[6] << 16 | (uint32_t)data[7] << 24));
		return;
	}
	FUZZ_CHECK(h.header_len >= PULS_MAGIC_LEN && h.header_len <= size);
	FUZZ_CHECK(h.ntags == (h.header_len - PULS_MAGIC_LEN) / 8);
	(void)puls_header_check(&h, FUZZ_SERIAL, err, sizeof(err));
	memset(&st, 0, sizeof(st));
	puls_stats_add(&st, data + h.header_len, size - h.header_len);
	if (puls_header_get(&h, "STfr", &stfr) == 0 && stfr != 0)
		puls_run_time(size - h.header_len, stfr, rt, sizeof(rt));
	if ((info = puls_info_json(&h, size - h.header_len, &st)) != NULL) {
		json = cJSON_PrintUnformatted(info);
		free(json);
		cJSON_Delete(info);
	}
}

/* The gzip of data, or NULL. */
static uint8_t *
fuzz_gzip(const uint8_t *data, size_t size, int level, size_t *outlen)
{
	z_stream z;
	uint8_t *out;
	uLong cap;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	cap = deflateBound(&z, (uLong)size);
	if ((out = malloc(cap)) == NULL) {
		deflateEnd(&z);
		return NULL;
	}
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)size;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(out);
		return NULL;
	}
	*outlen = z.total_out;
	deflateEnd(&z);
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_run a, b, c, d;
	uint64_t seed, x, max_body, declared;
	uint8_t *gz;
	size_t gzlen, i;
	int isgz;

	/* Gigabytes of inflate are not what this looks for. */
	if (size > FUZZ_MAX_BODY)
		return -1;
	fuzz_header(data, size);

	/* The cut: the last 8 bytes and the size, never 0 (xorshift). */
	seed = size;
	for (i = size > 8 ? size - 8 : 0; i < size; i++)
		seed = seed * 131 + data[i];
	seed = seed * 0x9e3779b97f4a7c15ULL + 1;
	if (seed == 0)
		seed = 1;

	memset(&a, 0, sizeof(a));
	fuzz_stream(data, size, 0, 0, FUZZ_MAX_BODY, 0, &a);
	memset(&b, 0, sizeof(b));
	fuzz_stream(data, size, seed, 0, FUZZ_MAX_BODY, 0, &b);
	fuzz_same(&a, &b);

	isgz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
	if (a.ok && !isgz) {
		/* Plain: the sink sees the file, byte for byte. */
		FUZZ_CHECK(a.compressed == 0);
		FUZZ_CHECK(a.out_len == size);
		FUZZ_CHECK(a.out_crc == crc32_z(crc32_z(0, NULL, 0), data,
		    size));
	}
	if (!isgz) {
		x = seed;
		gz = fuzz_gzip(data, size, 1 + (int)(fuzz_rng(&x) % 9),
		    &gzlen);
		if (gz != NULL) {
			memset(&c, 0, sizeof(c));
			fuzz_stream(gz, gzlen, fuzz_rng(&x) | 1, 0,
			    FUZZ_MAX_BODY, 0, &c);
			fuzz_same(&a, &c);
			FUZZ_CHECK(!c.ok || c.compressed == 1);
			free(gz);
		}
	}

	/* The daemon's way, with the bounds the fuzzer can reach. */
	x = seed;
	switch (fuzz_rng(&x) % 4) {
	case 0:
		max_body = FUZZ_MAX_BODY;
		break;
	case 1:
		max_body = size / 2;
		break;
	default:
		max_body = fuzz_rng(&x) % (size + 1);
		break;
	}
	switch (fuzz_rng(&x) % 4) {
	case 0:
		declared = 0;
		break;
	case 1:
		declared = size;
		break;
	case 2:
		declared = fuzz_rng(&x) % (2 * size + 2);
		break;
	default:
		declared = UINT64_MAX - fuzz_rng(&x) % 4096;
		break;
	}
	memset(&d, 0, sizeof(d));
	d.fail_at = fuzz_rng(&x) % 4 == 0 ? 1 + fuzz_rng(&x) % (size + 1) : 0;
	fuzz_stream(data, size, fuzz_rng(&x) | 1, 1, max_body, declared, &d);
	return 0;
}
