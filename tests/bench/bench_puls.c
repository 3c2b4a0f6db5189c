/*
 * bench_puls: throughput of the pulse decoder on one core.
 *
 *	bench-puls [MiB] [--gf-puls PATH]	(default 512)
 *
 * Builds a job in memory (a generated mix of travel, raster engraving,
 * cuts and Z moves, tiled to the size asked), then prints MB/s (10^6
 * bytes of plain pulse data per second, best of a few runs) for
 * puls_stats_add() over the body, for the whole streaming reader on the
 * plain file and on its gzip, for zlib's inflate alone on that gzip (the
 * floor for gzip input), and for memchr() and memcpy() passes over the
 * same buffer as the yardstick of memory bandwidth; and puls_trace_add()
 * (every field of gf-puls stats, one pass).  With --gf-puls, also the
 * commands as users run them, each a whole process (best of BENCH_RUNS,
 * after a first run that warms the page cache): gf-puls stats --json and
 * gf-puls render of the job as one plain file, and gf-puls stats --json
 * over a folder of BENCH_FILES files holding the same bytes, each beside
 * issue 12's target; and the stats pass over that file read with read(2)
 * as gf-puls does against mmap(2), the reason gf-puls reads.  Build it
 * optimised (CMAKE_BUILD_TYPE=Release): a Debug build measures -O0.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <zlib.h>
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>
#include <sys/wait.h>

#include "log.h"
#include "puls.h"
#include "puls_render.h"

extern char **environ;

#define BENCH_RUNS	3
#define BENCH_CMD_RUNS	5	/* whole commands: the median */
#define BENCH_READ_BUF	(256 * 1024)	/* gf-puls's read(2) size */
#define BENCH_FILES	200	/* files in the folder of --gf-puls */

struct bench_buf {
	uint8_t		*p;
	size_t		 len, cap;
};

static int
bench_sink(const void *data, size_t len, void *arg)
{
	struct bench_buf *b = arg;

	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		if ((b->p = realloc(b->p, b->cap)) == NULL)
			return -1;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

/* Counts what the daemon's sink would get, without keeping it. */
static int
bench_null_sink(const void *data, size_t len, void *arg)
{
	volatile const uint8_t *p = data;

	(void)p;
	*(uint64_t *)arg += len;
	return 0;
}

static double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
bench_report(const char *what, size_t bytes, double secs)
{
	printf("%-34s %9.0f MB/s  (%zu bytes in %.3f s)\n", what,
	    bytes / secs / 1e6, bytes, secs);
}

/* A job of travel, back-and-forth raster lines, a circle cut and a Z
 * hunt: the byte mix of a real print. */
static int
bench_job(struct bench_buf *out)
{
	struct puls_gen_move m[400];
	struct puls_gen_params p;
	size_t n = 0;
	int i;

	memset(&p, 0, sizeof(p));
	p.stfr = 10000;
	p.speed = 5333;		/* 100 mm/s */
	p.accel = 53333;	/* 1000 mm/s^2 */
	p.power = 100;
	m[n++] = (struct puls_gen_move){ 2000, 1500, 0, 0 };
	for (i = 0; i < 150; i++) {
		m[n++] = (struct puls_gen_move){ (i % 2 ? -1 : 1) * 3000, 0, 0,
		    1 };
		m[n++] = (struct puls_gen_move){ 0, 5, 0, 0 };
	}
	m[n++] = (struct puls_gen_move){ 0, 0, -10, 0 };
	m[n++] = (struct puls_gen_move){ 0, 0, 10, 0 };
	for (i = 0; i < 72; i++) {
		double a = i * M_PI / 36, b = (i + 1) * M_PI / 36;

		m[n++] = (struct puls_gen_move){
		    (int32_t)lround(2000 * (cos(b) - cos(a))),
		    (int32_t)lround(2000 * (sin(b) - sin(a))), 0, 1 };
	}
	m[n++] = (struct puls_gen_move){ -2000, -2250, 0, 0 };
	return puls_generate(&p, m, n, bench_sink, out);
}

/* zlib alone, output discarded: the floor for the reader on gzip input.
 * Seconds, or -1. */
static double
bench_inflate(const uint8_t *in, size_t len)
{
	static uint8_t out[64 * 1024];
	z_stream z;
	double t;
	int zr;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -1;
	t = bench_now();
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	do {
		z.next_out = out;
		z.avail_out = sizeof(out);
		zr = inflate(&z, Z_NO_FLUSH);
	} while (zr == Z_OK);
	t = bench_now() - t;
	inflateEnd(&z);
	return zr == Z_STREAM_END ? t : -1;
}

static uint8_t *
bench_gzip(const uint8_t *in, size_t len, size_t *outlen)
{
	z_stream z;
	uint8_t *out;
	size_t cap = len / 4 + 1024 * 1024, off = 0, n;
	int zr;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK || (out = malloc(cap)) == NULL)
		return NULL;
	do {
		n = len - off < (1U << 30) ? len - off : (1U << 30);
		z.next_in = (Bytef *)(uintptr_t)(in + off);
		z.avail_in = (uInt)n;
		off += n;
		do {
			if (z.total_out + 65536 > cap) {
				cap *= 2;
				if ((out = realloc(out, cap)) == NULL)
					return NULL;
			}
			z.next_out = out + z.total_out;
			z.avail_out = (uInt)(cap - z.total_out);
			zr = deflate(&z, off == len ? Z_FINISH : Z_NO_FLUSH);
		} while (z.avail_out == 0 ||
		    (off == len && zr != Z_STREAM_END));
	} while (off < len);
	*outlen = z.total_out;
	deflateEnd(&z);
	return out;
}

/* The whole reader, as the daemon runs it, in 64 KiB network reads. */
static double
bench_stream(const uint8_t *in, size_t len, uint64_t want)
{
	struct puls_stream *s;
	uint64_t got = 0;
	double t;
	size_t off, n;

	if ((s = puls_stream_new(0, UINT64_MAX / 4, bench_null_sink,
	    &got)) == NULL)
		return -1;
	t = bench_now();
	for (off = 0; off < len; off += n) {
		n = len - off < 65536 ? len - off : 65536;
		if (puls_stream_feed(s, in + off, n) == -1)
			break;
	}
	if (puls_stream_finish(s) == -1 || got != want) {
		fprintf(stderr, "bench-puls: stream: %s\n",
		    puls_stream_error(s) ? puls_stream_error(s) : "short");
		puls_stream_free(s);
		return -1;
	}
	t = bench_now() - t;
	puls_stream_free(s);
	return t;
}

static int
bench_write(const char *path, const uint8_t *a, size_t alen,
    const uint8_t *b, size_t blen)
{
	FILE *fp;
	int rc = 0;

	if ((fp = fopen(path, "wb")) == NULL)
		return -1;
	if (fwrite(a, 1, alen, fp) != alen ||
	    (blen > 0 && fwrite(b, 1, blen, fp) != blen))
		rc = -1;
	if (fclose(fp) == EOF)
		rc = -1;
	return rc;
}

/* Seconds of one whole run of argv, stdout to /dev/null; -1 failed. */
static double
bench_cmd(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	double t;
	pid_t pid;
	int st;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null",
	    O_WRONLY, 0);
	t = bench_now();
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	if (waitpid(pid, &st, 0) == -1 || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		return -1;
	return bench_now() - t;
}

static int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of BENCH_CMD_RUNS after a warm-up run (the machine may be
 * shared: the median, not the best), beside the target. */
static void
bench_cmd_report(const char *what, char *const argv[], size_t bytes,
    const char *target)
{
	double t[BENCH_CMD_RUNS], med;
	int run, n = 0;

	if (bench_cmd(argv) < 0) {
		fprintf(stderr, "bench-puls: %s failed\n", argv[0]);
		return;
	}
	for (run = 0; run < BENCH_CMD_RUNS; run++)
		if ((t[n] = bench_cmd(argv)) >= 0)
			n++;
	if (n == 0)
		return;
	qsort(t, (size_t)n, sizeof(t[0]), bench_cmp_double);
	med = t[n / 2];
	printf("  %-38s %7.3f s  %7.0f MB/s  (min %.3f, max %.3f; target "
	    "%s)\n", what, med, bytes / med / 1e6, t[0], t[n - 1], target);
}

/* The stats pass over path (a plain job, header hl bytes) as gf-puls
 * reads it, 256 KiB read(2)s into one buffer, or through one mmap(2)
 * (populated); seconds, -1 failed. */
static double
bench_file_scan(const char *path, size_t hl, int map, uint64_t *xend)
{
	struct puls_trace tr;
	struct stat sb;
	uint8_t *buf = NULL, *m;
	size_t len, off, k;
	ssize_t n;
	double t;
	int fd;

	if ((fd = open(path, O_RDONLY)) == -1 || fstat(fd, &sb) == -1)
		return -1;
	len = (size_t)sb.st_size;
	puls_trace_init(&tr, 0, 1);
	t = bench_now();
	if (map) {
		m = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE,
		    fd, 0);
		if (m == MAP_FAILED) {
			close(fd);
			return -1;
		}
		for (off = hl; off < len; off += k) {
			k = len - off < BENCH_READ_BUF ? len - off :
			    BENCH_READ_BUF;
			puls_trace_add(&tr, m + off, k);
		}
		munmap(m, len);
	} else {
		if ((buf = malloc(BENCH_READ_BUF)) == NULL)
			return -1;
		off = hl;	/* header bytes still to skip */
		while ((n = read(fd, buf, BENCH_READ_BUF)) > 0) {
			k = (size_t)n < off ? (size_t)n : off;
			off -= k;
			puls_trace_add(&tr, buf + k, (size_t)n - k);
		}
	}
	t = bench_now() - t;
	*xend = (uint64_t)tr.x;
	free(buf);
	close(fd);
	return t;
}

/* Seconds to touch one byte of every 4 KiB page of a populated mapping
 * of path: what a mapping costs before any work; -1 failed. */
static double
bench_file_touch(const char *path)
{
	volatile const uint8_t *m;
	struct stat sb;
	unsigned sum = 0;
	size_t i, len;
	double t;
	int fd;

	if ((fd = open(path, O_RDONLY)) == -1 || fstat(fd, &sb) == -1)
		return -1;
	len = (size_t)sb.st_size;
	m = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -1;
	t = bench_now();
	for (i = 0; i < len; i += 4096)
		sum += m[i];
	t = bench_now() - t;
	munmap((void *)(uintptr_t)m, len);
	return sum == 0xffffffffU ? -1 : t;
}

/* path holding buf, written 4 KiB at a time (as small writers, cp
 * among them, leave a file): its page cache is in 4 KiB folios. */
static int
bench_write_pages(const char *path, const uint8_t *buf, size_t len)
{
	size_t off, n;
	int fd, rc = 0;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		return -1;
	for (off = 0; off < len && rc == 0; off += n) {
		n = len - off < 4096 ? len - off : 4096;
		if (write(fd, buf + off, n) != (ssize_t)n)
			rc = -1;
	}
	if (close(fd) == -1)
		rc = -1;
	return rc;
}

/* read(2) against mmap(2), medians of BENCH_CMD_RUNS, in turn. */
static void
bench_read_vs_map(const char *path, size_t hl, size_t bytes,
    const char *how)
{
	double r[BENCH_CMD_RUNS], m[BENCH_CMD_RUNS], k[BENCH_CMD_RUNS];
	uint64_t xr = 0, xm = 1;
	int run;

	for (run = 0; run < BENCH_CMD_RUNS; run++) {
		r[run] = bench_file_scan(path, hl, 0, &xr);
		m[run] = bench_file_scan(path, hl, 1, &xm);
		k[run] = bench_file_touch(path);
	}
	if (xr != xm) {
		fprintf(stderr, "bench-puls: read and mmap disagree\n");
		return;
	}
	qsort(r, BENCH_CMD_RUNS, sizeof(r[0]), bench_cmp_double);
	qsort(m, BENCH_CMD_RUNS, sizeof(m[0]), bench_cmp_double);
	qsort(k, BENCH_CMD_RUNS, sizeof(k[0]), bench_cmp_double);
	printf("stats pass over the job (one core, median of %d), %s:\n",
	    BENCH_CMD_RUNS, how);
	printf("  %-38s %7.3f s  %7.0f MB/s\n", "read(2), 256 KiB at a time",
	    r[BENCH_CMD_RUNS / 2], bytes / r[BENCH_CMD_RUNS / 2] / 1e6);
	printf("  %-38s %7.3f s  %7.0f MB/s\n", "mmap(2), MAP_POPULATE",
	    m[BENCH_CMD_RUNS / 2], bytes / m[BENCH_CMD_RUNS / 2] / 1e6);
	printf("  %-38s %7.3f s  (%.2f us a 4 KiB page)\n",
	    "  of which touching each page once", k[BENCH_CMD_RUNS / 2],
	    k[BENCH_CMD_RUNS / 2] / ((double)bytes / 4096) * 1e6);
}

/* The commands as users run them, on the job as files in a temp dir. */
static int
bench_commands(const char *gfp, const uint8_t *buf, size_t len, size_t hl)
{
	char dir[] = "/tmp/bench-puls.XXXXXX", big[64], png[64], sub[64];
	char path[96];
	size_t body = len - hl, per = body / BENCH_FILES, i;
	int rc = -1;

	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(big, sizeof(big), "%s/big.puls", dir);
	snprintf(png, sizeof(png), "%s/big.png", dir);
	snprintf(sub, sizeof(sub), "%s/jobs", dir);
	if (bench_write(big, buf, len, NULL, 0) == -1 || mkdir(sub, 0700) == -1)
		goto done;
	for (i = 0; i < BENCH_FILES; i++) {
		snprintf(path, sizeof(path), "%s/%03zu.puls", sub, i);
		if (bench_write(path, buf, hl, buf + hl + i * per, per) == -1)
			goto done;
	}
	printf("whole commands (%s), median of %d, warm cache:\n", gfp,
	    BENCH_CMD_RUNS);
	{
		char a_stats[] = "stats", a_json[] = "--json";
		char a_render[] = "render", a_o[] = "-o";
		char *stats[] = { (char *)(uintptr_t)gfp, a_stats, a_json, big,
		    NULL };
		char *render[] = { (char *)(uintptr_t)gfp, a_render, big, a_o,
		    png, NULL };
		char *many[] = { (char *)(uintptr_t)gfp, a_stats, a_json, sub,
		    NULL };

		bench_cmd_report("gf-puls stats --json big.puls", stats, body,
		    ">= 3000 MB/s");
		bench_cmd_report("gf-puls render big.puls -o big.png", render,
		    body, "<= 0.300 s at 212 MiB");
		bench_cmd_report("gf-puls stats --json DIR (200 files)", many,
		    per * BENCH_FILES, "every core");
	}
	/* How the file was written sets its page cache's folios, and a
	 * mapping's cost per page with them (a virtual machine pays for
	 * every 4 KiB page it maps). */
	bench_read_vs_map(big, hl, body, "written in large writes");
	if (bench_write_pages(big, buf, len) == 0)
		bench_read_vs_map(big, hl, body, "written 4 KiB at a time");
	rc = 0;
done:
	for (i = 0; i < BENCH_FILES; i++) {
		snprintf(path, sizeof(path), "%s/%03zu.puls", sub, i);
		unlink(path);
	}
	rmdir(sub);
	unlink(big);
	unlink(png);
	rmdir(dir);
	return rc;
}

int
main(int argc, char **argv)
{
	struct bench_buf job = { 0 };
	struct puls_stats st, ref;
	uint8_t *buf, *copy, *gz, absent = 0;
	size_t mib = 512, len, hl, bodylen, off, n, gzlen;
	double t, best;
	struct puls_trace tr;
	const char *gfp = NULL;
	int run, seen[256] = { 0 };
	size_t i;
	void *volatile hit;

	log_init(LOG_TO_CONSOLE, LOG_ERR, NULL);
	for (i = 1; i < (size_t)argc; i++) {
		if (strcmp(argv[i], "--gf-puls") == 0 && i + 1 < (size_t)argc)
			gfp = argv[++i];
		else if ((mib = strtoul(argv[i], NULL, 10)) == 0) {
			fprintf(stderr, "usage: bench-puls [MiB] "
			    "[--gf-puls PATH]\n");
			return 2;
		}
	}
	if (bench_job(&job) == -1)
		return 1;
	hl = job.p[4] | job.p[5] << 8;
	len = mib * 1024 * 1024;
	if ((buf = malloc(len)) == NULL || (copy = malloc(len)) == NULL) {
		fprintf(stderr, "bench-puls: out of memory\n");
		return 1;
	}
	/* The header once, then the body again and again. */
	memcpy(buf, job.p, hl);
	for (off = hl; off < len; off += n) {
		n = job.len - hl < len - off ? job.len - hl : len - off;
		memcpy(buf + off, job.p + hl, n);
	}
	bodylen = len - hl;
	memset(copy, 0, len);	/* fault the pages in before timing */
	printf("job: %zu MiB (a %zu-byte generated job tiled), header %zu "
	    "bytes\n", mib, job.len, hl);

	memset(&ref, 0, sizeof(ref));
	puls_stats_add(&ref, buf + hl, bodylen);
	best = INFINITY;
	for (run = 0; run < BENCH_RUNS; run++) {
		memset(&st, 0, sizeof(st));
		t = bench_now();
		puls_stats_add(&st, buf + hl, bodylen);
		t = bench_now() - t;
		best = fmin(best, t);
	}
	if (memcmp(&st, &ref, sizeof(st)) != 0)
		return 1;
	bench_report("puls_stats_add, plain body", bodylen, best);
	printf("  XP %llu XN %llu YP %llu YN %llu ZP %llu ZN %llu LE %llu "
	    "LP %llu\n", (unsigned long long)st.xp,
	    (unsigned long long)st.xn, (unsigned long long)st.yp,
	    (unsigned long long)st.yn, (unsigned long long)st.zp,
	    (unsigned long long)st.zn, (unsigned long long)st.le,
	    (unsigned long long)st.lp);

	best = INFINITY;
	for (run = 0; run < BENCH_RUNS; run++) {
		puls_trace_init(&tr, 0, 1);
		t = bench_now();
		puls_trace_add(&tr, buf + hl, bodylen);
		t = bench_now() - t;
		best = fmin(best, t);
		puls_trace_free(&tr);
	}
	bench_report("puls_trace_add (stats: every field)", bodylen, best);

	/* The render pass on one core: numbers and the toolpath at about
	 * the tolerance of gf-puls render's 1200 px (half a pixel). */
	best = INFINITY;
	for (run = 0; run < BENCH_RUNS; run++) {
		puls_trace_init(&tr, 1, 11.5);
		t = bench_now();
		puls_trace_add(&tr, buf + hl, bodylen);
		puls_trace_finish(&tr);
		t = bench_now() - t;
		best = fmin(best, t);
		puls_trace_free(&tr);
	}
	bench_report("puls_trace_add (render: + toolpath)", bodylen, best);

	best = INFINITY;
	for (run = 0; run < BENCH_RUNS; run++)
		if ((t = bench_stream(buf, len, len)) >= 0)
			best = fmin(best, t);
	bench_report("stream reader, plain input", len, best);

	t = bench_now();
	if ((gz = bench_gzip(buf, len, &gzlen)) == NULL) {
		fprintf(stderr, "bench-puls: gzip failed\n");
		return 1;
	}
	t = bench_now() - t;
	printf("gzip -6 of the job: %zu bytes (%.0f:1) in %.1f s\n", gzlen,
	    (double)len / gzlen, t);
	best = INFINITY;
	for (run = 0; run < BENCH_RUNS; run++)
		if ((t = bench_stream(gz, gzlen, len)) >= 0)
			best = fmin(best, t);
	bench_report("stream reader, gzip input (plain)", len, best);
	printf("  = %.0f MB/s of compressed input\n", gzlen / best / 1e6);
	best = INFINITY;
	for (run = 0; run < BENCH_RUNS; run++)
		if ((t = bench_inflate(gz, gzlen)) >= 0)
			best = fmin(best, t);
	bench_report("zlib inflate alone, same input", len, best);
	free(gz);

	/* A byte that never occurs: memchr reads everything. */
	for (i = 0; i < len; i += 4093)
		seen[buf[i]] = 1;
	for (i = 0; i < 256; i++)
		if (!seen[i] && memchr(buf, (int)i, len) == NULL) {
			absent = (uint8_t)i;
			break;
		}
	best = INFINITY;
	for (run = 0; run < BENCH_RUNS; run++) {
		t = bench_now();
		hit = memchr(buf, absent, len);
		t = bench_now() - t;
		best = fmin(best, t);
	}
	(void)hit;
	bench_report("memchr (absent byte)", len, best);
	best = INFINITY;
	for (run = 0; run < BENCH_RUNS; run++) {
		t = bench_now();
		memcpy(copy, buf, len);
		t = bench_now() - t;
		best = fmin(best, t);
	}
	bench_report("memcpy", len, best);
	if (gfp != NULL && bench_commands(gfp, buf, len, hl) == -1)
		fprintf(stderr, "bench-puls: cannot write the job files\n");

	free(copy);
	free(buf);
	free(job.p);
	return 0;
}
