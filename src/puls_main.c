/*
 * gf-puls: offline analysis and generation of Glowforge pulse files
 * (PROTOCOL.md 8).  Inputs are read through the daemon's own streaming
 * reader, so the tool sees a file exactly as the daemon would, gzip or
 * plain, but without the machine checks (a captured job is usually for
 * another machine): `info` reports what those checks would say.
 *
 * Exit status: 0 fine, 1 bad input (any file), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <dirent.h>
#include <pthread.h>
#include <time.h>
#include <sys/stat.h>
#include <zlib.h>
#include <cairo.h>

#include "log.h"
#include "puls.h"
#include "puls_render.h"
#include "settings.h"

#define GFP_OK		0
#define GFP_BAD		1	/* bad input */
#define GFP_USAGE	2
#define GFP_READ_BUF	(256 * 1024)	/* bytes per read(2) */
#define GFP_MAX_INPUT	(UINT64_MAX / 4)	/* bytes: no size bound */

/* XY speed and acceleration in mm/s, mm/s^2; Z for --hunt. */
#define GFP_SPEED	100.0
#define GFP_ACCEL	1000.0
#define GFP_ZSPEED	5.0
#define GFP_ZACCEL	50.0
#define GFP_DEPTH	5.0	/* mm, --hunt */
#define GFP_POWER	100
#define GFP_WIDTH	1200	/* px, render */
#define GFP_SPLIT_MIN	(16ULL << 20)	/* bytes: render on 2 cores */
#define GFP_MAX_LAPS	100000	/* generate --laps */

static const char gfp_usage[] =
"usage: gf-puls info [--serial N] FILE...\n"
"       gf-puls stats [--json] FILE|DIR...\n"
"       gf-puls render FILE -o OUT.png|OUT.svg [--width PX] "
"[--format png|svg]\n"
"       gf-puls generate (--line DX,DY | --rect W,H | --hunt) [--speed MM/S]\n"
"               [--accel MM/S2] [--laser] [--power 0-127] [--depth MM]\n"
"               [--stfr HZ] [--serial N] [--travel] [--laps N] [--gzip]\n"
"               -o FILE\n"
"       gf-puls --help\n";

static const char gfp_help[] =
"\n"
"Pulse files (PROTOCOL.md 8) are read plain or gzip (by magic); FILE may be\n"
"- for stdin.  Errors name the file and the byte offset.\n"
"\n"
"info      the format byte, header length, every header tag with its value\n"
"          and meaning, body size, encoding and run time, and whether the\n"
"          daemon would accept the job (--serial: as this machine).\n"
"stats     the statistics of the .info file, plus the head's extents, the\n"
"          laser-on time and the travel and cut distances.  --json prints\n"
"          one object per file (one line each, in argument order) shaped as\n"
"          the .info, with the extras in one more member \"extents\":\n"
"          {\"X\": {\"min\", \"max\" (steps), \"min_mm\", \"max_mm\"},\n"
"          \"Y\", \"Z\", \"laser_on_s\", \"travel_mm\", \"cut_mm\"}, all\n"
"          from one vectorised pass over the body.  A DIR means\n"
"          its .puls and .puls.gz files, by name.  Files are read on every\n"
"          core; the output keeps the argument order.  On a terminal, a\n"
"          progress bar shows on stderr after a second.\n"
"render    draws the toolpath: cuts red, travel dashed blue, Z moves as\n"
"          green triangles (down / up), on an assumed 495 x 279 mm bed with\n"
"          the job starting at its top-left corner (+X right, +Y down), and\n"
"          a mm scale.  PNG or SVG by OUT's suffix or --format; OUT - is\n"
"          stdout.  --width: picture width in px (default 1200).\n"
"generate  writes a job: --line DX,DY mm (a cut with --laser), --rect W,H\n"
"          mm (a rectangle cut), --hunt (Z down --depth mm, default 5, and\n"
"          back up).  Moves ramp with --accel (mm/s^2, default 1000; Z 50)\n"
"          to --speed (mm/s, default 100; Z 5).  --stfr: ticks per second\n"
"          (default 10000); --serial: MCsn (default 0, any machine);\n"
"          --gzip: compress; -o - is stdout.  --travel: the --rect with\n"
"          the laser off; --laps N: the shape N times over (default 1).\n"
"\n"
"Exit status: 0 fine, 1 bad input, 2 usage.\n";

/* One input read through the stream. */
struct gfp_input {
	const char		*name;
	FILE			*err;	/* where its error line goes */
	struct puls_stream	*s;
	struct puls_trace	*t;	/* NULL: no positions wanted */
	uint64_t		 plain;	/* bytes through the sink */
	uint64_t		 raw;	/* bytes read */
};

static int
gfp_usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "gf-puls: %s%s\n", msg, arg != NULL ? arg : "");
	fputs(gfp_usage, stderr);
	return GFP_USAGE;
}

/* Body bytes to the trace: the header comes through the sink first. */
static int
gfp_sink(const void *buf, size_t len, void *arg)
{
	struct gfp_input *in = arg;
	const struct puls_header *h = puls_stream_header(in->s);
	const uint8_t *p = buf;
	uint64_t skip = 0;

	if (h != NULL && in->plain < h->header_len) {
		skip = h->header_len - in->plain;
		if (skip > len)
			skip = len;
	}
	in->plain += len;
	if (in->t != NULL && len > skip)
		puls_trace_add(in->t, p + skip, len - skip);
	return 0;
}

/*
 * The progress bar: on a terminal only, after GFP_PROGRESS_AFTER of work,
 * at most every GFP_PROGRESS_EVERY.  Readers add the bytes they read from
 * any thread; whoever gets the lock draws.  Results printed to stdout
 * clear it first (gfp_progress_clear()).
 */
#define GFP_PROGRESS_AFTER	1.0	/* s */
#define GFP_PROGRESS_EVERY	0.1	/* s */
#define GFP_PROGRESS_WIDTH	30	/* characters of bar */

static struct {
	int		 on;		/* stderr is a terminal */
	double		 after;		/* s before the bar shows */
	uint64_t	 total;		/* bytes to read, 0 = unknown */
	uint64_t	 done;		/* bytes read (atomic) */
	double		 start, last;	/* s, monotonic */
	int		 shown;		/* a bar is on the line */
	pthread_mutex_t	 mu;
} gfp_progress = { .mu = PTHREAD_MUTEX_INITIALIZER };

static double
gfp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* total: bytes of every input (0 when unknown, e.g. stdin). */
static void
gfp_progress_start(uint64_t total)
{
	const char *e = getenv("GFE_PULS_PROGRESS_AFTER");	/* tests */

	gfp_progress.on = isatty(STDERR_FILENO);
	gfp_progress.after = e != NULL ? atof(e) : GFP_PROGRESS_AFTER;
	gfp_progress.total = total;
	gfp_progress.start = gfp_now();
	gfp_progress.last = gfp_progress.start - GFP_PROGRESS_EVERY;
}

static void
gfp_progress_add(uint64_t n)
{
	uint64_t done, total;
	double now;
	int k;

	done = __atomic_add_fetch(&gfp_progress.done, n, __ATOMIC_RELAXED);
	/* atomic: render adds a pass from its walk (gfp_render_full()) */
	total = __atomic_load_n(&gfp_progress.total, __ATOMIC_RELAXED);
	if (!gfp_progress.on || total == 0)
		return;
	now = gfp_now();
	if (now - gfp_progress.start < gfp_progress.after ||
	    now - gfp_progress.last < GFP_PROGRESS_EVERY ||
	    pthread_mutex_trylock(&gfp_progress.mu) != 0)
		return;
	gfp_progress.last = now;
	if (done > total)
		done = total;
	k = (int)(GFP_PROGRESS_WIDTH * done / total);
	fprintf(stderr, "\r[%.*s%*s] %3d%% %.0f MB", k,
	    "##############################", GFP_PROGRESS_WIDTH - k, "",
	    (int)(100 * done / total), done / 1e6);
	fflush(stderr);
	gfp_progress.shown = 1;
	pthread_mutex_unlock(&gfp_progress.mu);
}

/* Erases the bar; with lock held on return when hold (then unlock). */
static void
gfp_progress_clear(void)
{
	if (!gfp_progress.on)
		return;
	pthread_mutex_lock(&gfp_progress.mu);
	if (gfp_progress.shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		gfp_progress.shown = 0;
	}
	pthread_mutex_unlock(&gfp_progress.mu);
}

/* Reads name ("-": stdin) through a new stream into in, the first
 * limit bytes at most; -1 printed. */
static int
gfp_read_upto(struct gfp_input *in, const char *name, struct puls_trace *t,
    FILE *err, uint64_t limit)
{
	uint8_t *buf = NULL;
	ssize_t n;
	int fd = -1, rc = -1;

	memset(in, 0, sizeof(*in));
	in->name = name;
	in->err = err;
	in->t = t;
	if ((in->s = puls_stream_new(0, GFP_MAX_INPUT, gfp_sink, in)) ==
	    NULL || (buf = malloc(GFP_READ_BUF)) == NULL) {
		fprintf(err, "gf-puls: %s: out of memory\n", name);
		goto done;
	}
	puls_stream_nocheck(in->s);
	if (t != NULL)
		puls_stream_nostats(in->s);	/* the trace counts */
	if (strcmp(name, "-") == 0)
		fd = STDIN_FILENO;
	else if ((fd = open(name, O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(err, "gf-puls: %s: %s\n", name, strerror(errno));
		goto done;
	}
	for (;;) {
		n = read(fd, buf, limit - in->raw < GFP_READ_BUF ?
		    (size_t)(limit - in->raw) : GFP_READ_BUF);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			fprintf(err, "gf-puls: %s: read at byte %llu: %s\n",
			    name, (unsigned long long)in->raw,
			    strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		in->raw += (uint64_t)n;
		gfp_progress_add((uint64_t)n);
		if (puls_stream_feed(in->s, buf, (size_t)n) == -1)
			break;
	}
	if (puls_stream_finish(in->s) == -1) {
		fprintf(err, "gf-puls: %s: %s\n", name,
		    puls_stream_error(in->s));
		goto done;
	}
	if (t != NULL)
		puls_trace_finish(t);
	rc = 0;
done:
	if (fd != -1 && fd != STDIN_FILENO)
		close(fd);
	free(buf);
	return rc;
}

static int
gfp_read(struct gfp_input *in, const char *name, struct puls_trace *t,
    FILE *err)
{
	return gfp_read_upto(in, name, t, err, UINT64_MAX);
}

/* The second half of a plain body, walked on another thread. */
struct gfp_half {
	const char		*name;
	uint64_t		 off, end;	/* bytes of the file */
	struct puls_trace	*t;		/* &raw, or the first half's */
	struct puls_trace	 raw;		/* from the origin */
	int			 err;		/* errno, or -1: no memory */
};

static void *
gfp_half_run(void *arg)
{
	struct gfp_half *h = arg;
	uint64_t off = h->off;
	uint8_t *buf;
	ssize_t n;
	int fd;

	if ((buf = malloc(GFP_READ_BUF)) == NULL) {
		h->err = -1;
		return NULL;
	}
	if ((fd = open(h->name, O_RDONLY | O_CLOEXEC)) == -1) {
		h->err = errno;
		free(buf);
		return NULL;
	}
	while (off < h->end) {
		n = pread(fd, buf, h->end - off < GFP_READ_BUF ?
		    (size_t)(h->end - off) : GFP_READ_BUF, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			h->err = n == 0 ? EIO : errno;	/* shrank under us */
			break;
		}
		off += (uint64_t)n;
		gfp_progress_add((uint64_t)n);
		puls_trace_add(h->t, buf, (size_t)n);
		if (h->t->raw && h->t->oom)
			break;	/* given up: the first half's walk goes on */
	}
	h->off = off;
	puls_trace_finish(h->t);
	close(fd);
	free(buf);
	return NULL;
}

/*
 * gfp_read() for render, on two cores when name is a big plain file: the
 * second half of the body is walked on a thread from the origin and
 * merged (puls_trace_merge(): positions are running sums, so it starts
 * where the first half ends).  *more: body bytes the stream did not see.
 */
static int
gfp_read_split(struct gfp_input *in, const char *name, struct puls_trace *t,
    uint64_t *more)
{
	struct gfp_half h;
	struct stat sb;
	pthread_t tid;
	uint8_t magic[PULS_MAGIC_LEN];
	uint64_t hl, mid;
	int fd, rc;

	*more = 0;
	/* stat() first: opening a FIFO to look would lose its writer. */
	if (strcmp(name, "-") == 0 || sysconf(_SC_NPROCESSORS_ONLN) < 2 ||
	    stat(name, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    (fd = open(name, O_RDONLY | O_CLOEXEC)) == -1)
		return gfp_read(in, name, t, stderr);
	rc = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    (uint64_t)sb.st_size >= GFP_SPLIT_MIN &&
	    pread(fd, magic, sizeof(magic), 0) == (ssize_t)sizeof(magic);
	close(fd);
	hl = rc ? (uint64_t)magic[4] | (uint64_t)magic[5] << 8 |
	    (uint64_t)magic[6] << 16 | (uint64_t)magic[7] << 24 : 0;
	/* gzip, or a header the stream will refuse: one reader says why. */
	if (!rc || memcmp(magic + 1, "GF1", 3) != 0 || hl < PULS_MAGIC_LEN ||
	    hl >= (uint64_t)sb.st_size / 2)
		return gfp_read(in, name, t, stderr);
	memset(&h, 0, sizeof(h));
	h.name = name;
	h.off = hl + ((uint64_t)sb.st_size - hl) / 2;
	h.end = (uint64_t)sb.st_size;
	mid = h.off;
	puls_trace_init(&h.raw, 1, t->tol);
	puls_trace_raw(&h.raw);
	h.t = &h.raw;
	if (pthread_create(&tid, NULL, gfp_half_run, &h) != 0) {
		puls_trace_free(&h.raw);
		return gfp_read(in, name, t, stderr);
	}
	rc = gfp_read_upto(in, name, t, stderr, mid);
	pthread_join(tid, NULL);
	if (rc == 0 && in->raw == mid && h.err == 0 &&
	    puls_trace_merge(t, &h.raw) == 0)
		*more = h.end - mid;
	else if (rc == 0 && in->raw == mid) {
		/* The half gave up (too many vertices) or failed: the first
		 * half's walk goes on over it, from the join. */
		h.t = t;
		h.off = mid;
		h.err = 0;
		gfp_half_run(&h);
		*more = h.off - mid;
		if (h.err != 0) {
			fprintf(stderr, "gf-puls: %s: read at byte %llu: "
			    "%s\n", name, (unsigned long long)h.off,
			    h.err == -1 ? "out of memory" : strerror(h.err));
			rc = -1;
		}
	}
	puls_trace_free(&h.raw);
	return rc;
}

static void
gfp_input_free(struct gfp_input *in)
{
	puls_stream_free(in->s);
	in->s = NULL;
}

/*
 * What a tag means.  The settings table (settings_find()) has types and
 * ranges but no prose, so the meanings are kept here for the tags the
 * protocol explains and the generator writes; gfp_tag_setting() adds
 * what the table knows.
 */
static const char *
gfp_tag_meaning(const char *name)
{
	static const struct {
		const char	*name;
		const char	*meaning;
	} tags[] = {
		{ "STfr", "step frequency: body ticks per second" },
		{ "MCsn", "machine serial the job was cut for (0 = any)" },
		{ "PDfm", "pulse data format (0: the only one known)" },
		{ "SAid", "action id" },
	};
	size_t i;

	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		if (strcmp(tags[i].name, name) == 0)
			return tags[i].meaning;
	return "";
}

/* " [setting: int, default 10000, 1000..200000]", or "". */
static void
gfp_tag_setting(const char *name, char *buf, size_t len)
{
	static const char *const types[] = { "int", "float", "str" };
	const struct settings_row *r;
	size_t n;

	buf[0] = '\0';
	if ((r = settings_find(name)) == NULL)
		return;
	n = (size_t)snprintf(buf, len, " [setting: %s", types[r->type]);
	if (n < len && r->defval[0] != '\0')
		n += (size_t)snprintf(buf + n, len - n, ", default %s",
		    r->defval);
	if (n < len && (r->min[0] != '\0' || r->max[0] != '\0'))
		n += (size_t)snprintf(buf + n, len - n, ", %s..%s", r->min,
		    r->max);
	if (n < len)
		snprintf(buf + n, len - n, "]");
}

static void
gfp_run_time(uint64_t ticks, uint32_t stfr, char *buf, size_t len)
{
	if (stfr == 0) {
		snprintf(buf, len, "unknown (no STfr)");
		return;
	}
	puls_run_time(ticks, stfr, buf, len);
}

static int
gfp_parse_u64(const char *s, uint64_t max, uint64_t *v)
{
	unsigned long long n;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || n > max)
		return -1;
	*v = n;
	return 0;
}

static int
gfp_info_one(const char *name, int have_serial, uint64_t serial)
{
	const struct puls_header *h;
	struct gfp_input in;
	uint32_t stfr = 0, mcsn = 0;
	char rt[64], err[256], setting[160];
	size_t i;
	int c;

	if (gfp_read(&in, name, NULL, stderr) == -1) {
		gfp_input_free(&in);
		return GFP_BAD;
	}
	h = puls_stream_header(in.s);
	c = puls_stream_compressed(in.s);
	printf("%s\n", name);
	if (c == 1)
		printf("  encoding      gzip, %llu bytes compressed, %llu "
		    "plain\n", (unsigned long long)in.raw,
		    (unsigned long long)in.plain);
	else
		printf("  encoding      plain, %llu bytes\n",
		    (unsigned long long)in.raw);
	printf("  format byte   0x%02x\n", h->format);
	printf("  header        %u bytes (8 magic and length, %zu tag%s)\n",
	    h->header_len, h->ntags, h->ntags == 1 ? "" : "s");
	for (i = 0; i < h->ntags; i++) {
		gfp_tag_setting(h->tags[i].name, setting, sizeof(setting));
		printf("    %-4s %12u  %s%s\n", h->tags[i].name,
		    h->tags[i].value, gfp_tag_meaning(h->tags[i].name),
		    setting);
	}
	printf("  body          %llu bytes\n",
	    (unsigned long long)puls_stream_body_size(in.s));
	puls_header_get(h, "STfr", &stfr);
	gfp_run_time(puls_stream_body_size(in.s), stfr, rt, sizeof(rt));
	printf("  run time      %s\n", rt);
	/* The daemon's checks: as machine --serial, else as MCsn's own. */
	if (!have_serial)
		serial = puls_header_get(h, "MCsn", &mcsn) == 0 ? mcsn : 0;
	if (puls_header_check(h, serial, err, sizeof(err)) == -1)
		printf("  checks        refused: %s\n", err);
	else if (puls_header_get(h, "MCsn", &mcsn) == 0 && mcsn == 0)
		printf("  checks        ok, for any machine\n");
	else
		printf("  checks        ok, for machine %u only\n", mcsn);
	gfp_input_free(&in);
	return GFP_OK;
}

static int
gfp_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "serial", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	uint64_t serial = 0;
	int ch, i, have_serial = 0, rc = GFP_OK;

	while ((ch = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (gfp_parse_u64(optarg, UINT64_MAX, &serial) == -1)
				return gfp_usage_error("bad --serial: ",
				    optarg);
			have_serial = 1;
			break;
		case 'h':
			fputs(gfp_usage, stdout);
			return GFP_OK;
		default:
			return gfp_usage_error("info: bad option", NULL);
		}
	}
	if (optind == argc)
		return gfp_usage_error("info: no FILE", NULL);
	for (i = optind; i < argc; i++)
		if (gfp_info_one(argv[i], have_serial, serial) != GFP_OK)
			rc = GFP_BAD;
	return rc;
}

static void
gfp_stats_text(FILE *out, const char *name, cJSON *info, cJSON *ext)
{
	const cJSON *it, *ax;

	fprintf(out, "%s\n", name);
	for (it = cJSON_GetObjectItem(info, "stats")->child; it != NULL;
	    it = it->next)
		fprintf(out, "  %-4s %18.*f\n", it->string,
		    it->valuedouble == floor(it->valuedouble) ? 0 : 6,
		    it->valuedouble);
	it = cJSON_GetObjectItem(info, "run_time");
	fprintf(out, "  run time       %s\n", cJSON_IsString(it) ?
	    it->valuestring : "unknown (no STfr)");
	for (ax = ext->child; ax != NULL; ax = ax->next) {
		if (!cJSON_IsObject(ax))
			continue;
		fprintf(out, "  %s extent       %.0f .. %.0f steps (%.3f .. %.3f "
		    "mm)\n", ax->string,
		    cJSON_GetObjectItem(ax, "min")->valuedouble,
		    cJSON_GetObjectItem(ax, "max")->valuedouble,
		    cJSON_GetObjectItem(ax, "min_mm")->valuedouble,
		    cJSON_GetObjectItem(ax, "max_mm")->valuedouble);
	}
	it = cJSON_GetObjectItem(ext, "laser_on_s");
	if (cJSON_IsNumber(it))
		fprintf(out, "  laser on       %.6f s\n", it->valuedouble);
	fprintf(out, "  travel         %.3f mm\n",
	    cJSON_GetObjectItem(ext, "travel_mm")->valuedouble);
	fprintf(out, "  cut            %.3f mm\n",
	    cJSON_GetObjectItem(ext, "cut_mm")->valuedouble);
}

static int
gfp_stats_one(const char *name, int json, FILE *out, FILE *err)
{
	struct puls_trace t;
	struct puls_stats st;
	struct gfp_input in;
	const struct puls_header *h;
	cJSON *info = NULL, *ext = NULL;
	uint32_t stfr = 0;
	char *txt;
	int rc = GFP_BAD;

	puls_trace_init(&t, 0, 1);
	if (gfp_read(&in, name, &t, err) == -1)
		goto done;
	h = puls_stream_header(in.s);
	puls_header_get(h, "STfr", &stfr);
	puls_trace_stats(&t, &st);
	if ((info = puls_info_json(h, puls_stream_body_size(in.s), &st)) ==
	    NULL ||
	    (ext = puls_trace_json(&t, stfr)) == NULL) {
		fprintf(err, "gf-puls: %s: out of memory\n", name);
		goto done;
	}
	if (json) {
		cJSON_AddItemToObject(info, "extents", ext);
		ext = NULL;
		if ((txt = cJSON_PrintUnformatted(info)) == NULL) {
			fprintf(err, "gf-puls: %s: out of memory\n", name);
			goto done;
		}
		fprintf(out, "%s\n", txt);
		cJSON_free(txt);
	} else
		gfp_stats_text(out, name, info, ext);
	rc = GFP_OK;
done:
	cJSON_Delete(info);
	cJSON_Delete(ext);
	puls_trace_free(&t);
	gfp_input_free(&in);
	return rc;
}

static int	gfp_suffix(const char *, const char *);

/* One input of `stats`: its printed text, filled by a worker. */
struct gfp_job {
	char		*name;
	char		*out, *err;	/* stdout and stderr text */
	size_t		 outlen, errlen;
	int		 rc;
	int		 done;
};

struct gfp_pool {
	struct gfp_job	*jobs;
	size_t		 njobs, cap;
	size_t		 next;		/* the next job to take */
	int		 json;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;		/* a job is done */
};

static int
gfp_pool_add(struct gfp_pool *p, const char *name)
{
	struct gfp_job *j;
	size_t cap;

	if (p->njobs == p->cap) {
		cap = p->cap ? p->cap * 2 : 16;
		if ((j = realloc(p->jobs, cap * sizeof(*j))) == NULL)
			return -1;
		p->jobs = j;
		p->cap = cap;
	}
	j = &p->jobs[p->njobs];
	memset(j, 0, sizeof(*j));
	if ((j->name = strdup(name)) == NULL)
		return -1;
	p->njobs++;
	return 0;
}

static int
gfp_is_puls(const struct dirent *d)
{
	return d->d_name[0] != '.' && (gfp_suffix(d->d_name, ".puls") ||
	    gfp_suffix(d->d_name, ".puls.gz"));
}

/* An argument: a file, or a folder's .puls/.puls.gz files by name. */
static int
gfp_pool_arg(struct gfp_pool *p, const char *arg, uint64_t *total)
{
	struct dirent **ents;
	struct stat sb;
	char path[PATH_MAX];
	int i, n, rc = 0;

	if (strcmp(arg, "-") == 0 || stat(arg, &sb) == -1 ||
	    !S_ISDIR(sb.st_mode)) {
		/* Errors (a missing file) are the reader's to report. */
		if (strcmp(arg, "-") != 0 && stat(arg, &sb) == 0 &&
		    S_ISREG(sb.st_mode))
			*total += (uint64_t)sb.st_size;
		return gfp_pool_add(p, arg);
	}
	if ((n = scandir(arg, &ents, gfp_is_puls, alphasort)) == -1) {
		fprintf(stderr, "gf-puls: %s: %s\n", arg, strerror(errno));
		return 1;
	}
	if (n == 0) {
		fprintf(stderr, "gf-puls: %s: no .puls or .puls.gz file\n", arg);
		rc = 1;
	}
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", arg, ents[i]->d_name);
		if (rc != -1 && gfp_pool_add(p, path) == -1)
			rc = -1;
		if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
			*total += (uint64_t)sb.st_size;
		free(ents[i]);
	}
	free(ents);
	return rc;
}

static void *
gfp_worker(void *arg)
{
	struct gfp_pool *p = arg;
	struct gfp_job *j;
	FILE *out, *err;
	size_t i;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		i = p->next++;
		pthread_mutex_unlock(&p->mu);
		if (i >= p->njobs)
			return NULL;
		j = &p->jobs[i];
		out = open_memstream(&j->out, &j->outlen);
		err = open_memstream(&j->err, &j->errlen);
		if (out == NULL || err == NULL) {
			j->rc = GFP_BAD;
			if (out != NULL)
				fclose(out);
			if (err != NULL)
				fclose(err);
		} else {
			j->rc = gfp_stats_one(j->name, p->json, out, err);
			if (fclose(out) == EOF || fclose(err) == EOF)
				j->rc = GFP_BAD;
		}
		pthread_mutex_lock(&p->mu);
		j->done = 1;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
}

/* Prints the jobs in argument order as they finish; the exit status. */
static int
gfp_pool_print(struct gfp_pool *p)
{
	struct gfp_job *j;
	size_t i;
	int rc = GFP_OK;

	for (i = 0; i < p->njobs; i++) {
		j = &p->jobs[i];
		pthread_mutex_lock(&p->mu);
		while (!j->done)
			pthread_cond_wait(&p->cv, &p->mu);
		pthread_mutex_unlock(&p->mu);
		gfp_progress_clear();
		if (j->outlen > 0)
			fwrite(j->out, 1, j->outlen, stdout);
		fflush(stdout);
		if (j->errlen > 0)
			fwrite(j->err, 1, j->errlen, stderr);
		if (j->rc != GFP_OK)
			rc = GFP_BAD;
		if (j->out == NULL && j->err == NULL)
			fprintf(stderr, "gf-puls: %s: out of memory\n",
			    j->name);
		free(j->out);
		free(j->err);
		free(j->name);
	}
	return rc;
}

/*
 * Every input on its own core: workers take the next file, print into
 * memory, and the main thread writes the texts in argument order as
 * they are done.  A bad file is its error line and exit status 1; the
 * others are still reported.
 */
static int
gfp_stats_many(char **args, int nargs, int json)
{
	struct gfp_pool p;
	pthread_t *tid = NULL;
	uint64_t total = 0;
	long ncpu;
	size_t i, nthr = 0;
	int rc = GFP_OK, r;

	memset(&p, 0, sizeof(p));
	p.json = json;
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	for (r = 0; r < nargs; r++)
		switch (gfp_pool_arg(&p, args[r], &total)) {
		case -1:
			fprintf(stderr, "gf-puls: out of memory\n");
			rc = GFP_BAD;
			goto done;
		case 1:
			rc = GFP_BAD;
			break;
		}
	gfp_progress_start(total);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	nthr = ncpu < 1 ? 1 : (size_t)ncpu;
	if (nthr > p.njobs)
		nthr = p.njobs;
	if (nthr > 0 && (tid = calloc(nthr, sizeof(*tid))) == NULL) {
		fprintf(stderr, "gf-puls: out of memory\n");
		rc = GFP_BAD;
		goto done;
	}
	for (i = 0; i < nthr; i++)
		if (pthread_create(&tid[i], NULL, gfp_worker, &p) != 0)
			break;
	nthr = i;
	if (nthr == 0 && p.njobs > 0)
		gfp_worker(&p);	/* no thread: do it here */
	if (gfp_pool_print(&p) != GFP_OK)
		rc = GFP_BAD;
	for (i = 0; i < nthr; i++)
		pthread_join(tid[i], NULL);
done:
	gfp_progress_clear();
	free(tid);
	free(p.jobs);
	pthread_mutex_destroy(&p.mu);
	pthread_cond_destroy(&p.cv);
	return rc;
}

static int
gfp_stats(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch, json = 0;

	while ((ch = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 'h':
			fputs(gfp_usage, stdout);
			return GFP_OK;
		default:
			return gfp_usage_error("stats: bad option", NULL);
		}
	}
	if (optind == argc)
		return gfp_usage_error("stats: no FILE", NULL);
	return gfp_stats_many(argv + optind, argc - optind, json);
}

static int
gfp_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/*
 * Render walks once and keeps the vertices while they fit
 * GFP_RENDER_KEEP (4 MiB); past that (a dithered engraving), the
 * picture is opened from a first pass, the vectorised scan, for the
 * extents that set the view, and the toolpath is drawn as it comes, so
 * memory stays the picture's whatever the job (issue 12).  stdin, a
 * pipe or a FIFO cannot be read twice, and an SVG grows with the
 * vertices anyway: they keep every vertex.
 */
#define GFP_RENDER_KEEP	(1U << 18)	/* vertices */

struct gfp_render_ctx {
	const char		*name, *out;
	int			 width;
	struct puls_canvas	*c;
	int			 failed;	/* printed */
};

/* The picture for name's extents, in *c; -1 printed. */
static int
gfp_render_canvas(const char *name, struct puls_canvas **c, const char *out,
    int width)
{
	struct puls_trace ext;
	struct gfp_input in;
	struct stat sb;
	char err[512];
	int rc;

	*c = NULL;
	if (stat(name, &sb) == 0 && S_ISREG(sb.st_mode))
		__atomic_add_fetch(&gfp_progress.total, (uint64_t)sb.st_size,
		    __ATOMIC_RELAXED);	/* a second pass to show */
	puls_trace_init(&ext, 0, 1);
	rc = gfp_read(&in, name, &ext, stderr);
	gfp_input_free(&in);
	if (rc == 0 && (*c = puls_canvas_open(&ext, out, 0, width, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "gf-puls: %s\n", err);
		rc = -1;
	}
	puls_trace_free(&ext);
	return rc;
}

/* puls_trace_full: too many vertices to keep, draw them as they come. */
static int
gfp_render_full(void *arg, struct puls_trace *t)
{
	struct gfp_render_ctx *x = arg;

	if (gfp_render_canvas(x->name, &x->c, x->out, x->width) == -1) {
		x->failed = 1;
		return -1;
	}
	puls_trace_sink(t, puls_canvas_sink, x->c);
	return 0;
}

/* The budget, GFE_PULS_KEEP for the tests (0: every vertex kept). */
static size_t
gfp_render_keep(void)
{
	const char *e = getenv("GFE_PULS_KEEP");

	return e != NULL ? (size_t)strtoull(e, NULL, 10) : GFP_RENDER_KEEP;
}

/* render's command line: 0 to go on, or -1 with the exit status in *rc
 * (--help, or a usage error told).  *svg: the output's format. */
static int
gfp_render_options(int argc, char **argv, const char **out, uint64_t *width,
    int *svg, int *rc)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "width", required_argument, NULL, 'w' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *format = NULL;
	int ch;

	*out = NULL;
	*width = GFP_WIDTH;
	*rc = GFP_OK;
	while ((ch = getopt_long(argc, argv, "o:w:f:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			*out = optarg;
			break;
		case 'w':
			if (gfp_parse_u64(optarg, 20000, width) == -1 ||
			    *width < 300) {
				*rc = gfp_usage_error("bad --width (300 to "
				    "20000): ", optarg);
				return -1;
			}
			break;
		case 'f':
			format = optarg;
			break;
		case 'h':
			fputs(gfp_usage, stdout);
			return -1;
		default:
			*rc = gfp_usage_error("render: bad option", NULL);
			return -1;
		}
	}
	if (optind + 1 != argc)
		*rc = gfp_usage_error("render: one FILE", NULL);
	else if (*out == NULL)
		*rc = gfp_usage_error("render: no -o OUT", NULL);
	else if (format != NULL && strcmp(format, "svg") != 0 &&
	    strcmp(format, "png") != 0)
		*rc = gfp_usage_error("render: --format png or svg, not ",
		    format);
	else if (format != NULL)
		*svg = strcmp(format, "svg") == 0;
	else if (gfp_suffix(*out, ".svg"))
		*svg = 1;
	else if (gfp_suffix(*out, ".png") || strcmp(*out, "-") == 0)
		*svg = 0;
	else
		*rc = gfp_usage_error("render: OUT must end in .png or .svg "
		    "(or use --format): ", *out);
	return *rc == GFP_OK ? 0 : -1;
}

static int
gfp_render(int argc, char **argv)
{
	struct puls_trace t;
	struct gfp_input in;
	struct stat sb;
	const char *out;
	char title[512], rt[64], err[512];
	uint64_t width;
	struct gfp_render_ctx ctx;
	uint64_t more = 0;
	uint32_t stfr = 0;
	int svg = 0, reg, rc;

	if (gfp_render_options(argc, argv, &out, &width, &svg, &rc) == -1)
		return rc;
	rc = GFP_BAD;
	puls_trace_init(&t, 1, puls_render_steps_per_px((int)width) / 2);
	memset(&in, 0, sizeof(in));
	memset(&ctx, 0, sizeof(ctx));
	ctx.name = argv[optind];
	ctx.out = out;
	ctx.width = (int)width;
	reg = strcmp(argv[optind], "-") != 0 && stat(argv[optind], &sb) == 0 &&
	    S_ISREG(sb.st_mode);
	/* Only a regular file can be read again (not a pipe, a FIFO). */
	if (!svg && reg && gfp_render_keep() > 0)
		puls_trace_keep(&t, gfp_render_keep(), gfp_render_full, &ctx);
	gfp_progress_start(reg ? (uint64_t)sb.st_size : 0);
	if (gfp_read_split(&in, argv[optind], &t, &more) == -1 || ctx.failed)
		goto done;
	puls_trace_flush(&t);
	puls_header_get(puls_stream_header(in.s), "STfr", &stfr);
	gfp_run_time(puls_stream_body_size(in.s) + more, stfr, rt,
	    sizeof(rt));
	snprintf(title, sizeof(title), "%s: cut %.1f mm, travel %.1f mm, "
	    "run time %s", argv[optind], puls_trace_cut_mm(&t),
	    puls_trace_travel_mm(&t), rt);
	gfp_progress_clear();
	if (ctx.c != NULL) {
		rc = puls_canvas_close(ctx.c, &t, title, err, sizeof(err));
		ctx.c = NULL;
	} else
		rc = puls_render(&t, out, svg, (int)width, title, err,
		    sizeof(err));
	/* No cairo object is left: drop its font caches, so a leak checker
	 * sees only fontconfig's own (freed at exit by nobody). */
	cairo_debug_reset_static_data();
	if (rc == -1) {
		fprintf(stderr, "gf-puls: %s\n", err);
		rc = GFP_BAD;
		goto done;
	}
	rc = GFP_OK;
done:
	if (ctx.c != NULL)
		puls_canvas_abort(ctx.c);
	puls_trace_free(&t);
	gfp_input_free(&in);
	return rc;
}

/* Output of generate: a file or stdout, through gzip when asked. */
struct gfp_out {
	FILE		*fp;
	const char	*name;
	int		 gzip;
	z_stream	 z;
	int		 failed;
};

static int
gfp_out_deflate(struct gfp_out *o, const void *buf, size_t len, int flush)
{
	uint8_t chunk[64 * 1024];
	size_t n;
	int zr;

	o->z.next_in = (Bytef *)(uintptr_t)buf;
	o->z.avail_in = (uInt)len;
	do {
		o->z.next_out = chunk;
		o->z.avail_out = sizeof(chunk);
		zr = deflate(&o->z, flush);
		if (zr == Z_STREAM_ERROR)
			return -1;
		n = sizeof(chunk) - o->z.avail_out;
		if (n > 0 && fwrite(chunk, 1, n, o->fp) != n)
			return -1;
	} while (o->z.avail_out == 0 ||
	    (flush == Z_FINISH && zr != Z_STREAM_END));
	return 0;
}

static int
gfp_out_sink(const void *buf, size_t len, void *arg)
{
	struct gfp_out *o = arg;

	if (o->gzip) {
		if (gfp_out_deflate(o, buf, len, Z_NO_FLUSH) == -1)
			o->failed = 1;
	} else if (fwrite(buf, 1, len, o->fp) != len)
		o->failed = 1;
	return o->failed ? -1 : 0;
}

/* "A,B" in mm. */
static int
gfp_parse_pair(const char *s, double *a, double *b)
{
	char *end;

	errno = 0;
	*a = strtod(s, &end);
	if (errno != 0 || end == s || *end != ',')
		return -1;
	s = end + 1;
	*b = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(*a) ||
	    !isfinite(*b))
		return -1;
	return 0;
}

static int
gfp_parse_double(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return errno != 0 || end == s || *end != '\0' || !isfinite(*v) ||
	    *v <= 0 ? -1 : 0;
}

/* mm to steps; -1 when it does not fit a move. */
static int
gfp_steps(double mm, double mm_per_step, int32_t *steps)
{
	double s = round(mm / mm_per_step);

	if (!(fabs(s) <= INT32_MAX))
		return -1;
	*steps = (int32_t)s;
	return 0;
}

enum gfp_shape { GFP_NONE, GFP_LINE, GFP_RECT, GFP_HUNT };

/* What generate's options ask for. */
struct gfp_gen {
	enum gfp_shape		 shape;
	const char		*shape_arg;	/* as given, for errors */
	double			 a, b;		/* mm: --line, --rect */
	double			 speed, accel;	/* mm/s, mm/s^2; -1: default */
	double			 depth;		/* mm: --hunt */
	int			 laser, travel, gzip;
	uint64_t		 laps;
	const char		*out;
	struct puls_gen_params	 p;
};

/* One of generate's options into g: GFP_OK, or the exit status of a
 * usage error (already told). */
static int
gfp_gen_option(struct gfp_gen *g, int ch, const char *arg)
{
	uint64_t v;

	switch (ch) {
	case 'l':
	case 'r':
	case 'H':
		if (g->shape != GFP_NONE)
			return gfp_usage_error("generate: one of --line, "
			    "--rect, --hunt", NULL);
		g->shape = ch == 'l' ? GFP_LINE : ch == 'r' ? GFP_RECT :
		    GFP_HUNT;
		g->shape_arg = arg;
		if (ch != 'H' && gfp_parse_pair(arg, &g->a, &g->b) == -1)
			return gfp_usage_error("generate: want A,B in mm, "
			    "not ", arg);
		break;
	case 's':
		if (gfp_parse_double(arg, &g->speed) == -1)
			return gfp_usage_error("bad --speed: ", arg);
		break;
	case 'a':
		if (gfp_parse_double(arg, &g->accel) == -1)
			return gfp_usage_error("bad --accel: ", arg);
		break;
	case 'd':
		if (gfp_parse_double(arg, &g->depth) == -1)
			return gfp_usage_error("bad --depth: ", arg);
		break;
	case 'L':
		g->laser = 1;
		break;
	case 'T':
		g->travel = 1;
		break;
	case 'n':
		if (gfp_parse_u64(arg, GFP_MAX_LAPS, &g->laps) == -1 ||
		    g->laps == 0)
			return gfp_usage_error("bad --laps (1 to 100000): ",
			    arg);
		break;
	case 'p':
		if (gfp_parse_u64(arg, 127, &v) == -1)
			return gfp_usage_error("bad --power (0-127): ", arg);
		g->p.power = (uint8_t)v;
		break;
	case 'f':
		if (gfp_parse_u64(arg, UINT32_MAX, &v) == -1 || v == 0)
			return gfp_usage_error("bad --stfr: ", arg);
		g->p.stfr = (uint32_t)v;
		break;
	case 'S':
		if (gfp_parse_u64(arg, UINT32_MAX, &v) == -1)
			return gfp_usage_error("bad --serial (a u32): ", arg);
		g->p.serial = (uint32_t)v;
		break;
	case 'z':
		g->gzip = 1;
		break;
	case 'o':
		g->out = arg;
		break;
	default:
		return gfp_usage_error("generate: bad option", NULL);
	}
	return GFP_OK;
}

/* generate's command line into g: 0 to go on, or -1 with the exit status
 * in *rc (--help, or a usage error told). */
static int
gfp_gen_options(int argc, char **argv, struct gfp_gen *g, int *rc)
{
	static const struct option opts[] = {
		{ "line", required_argument, NULL, 'l' },
		{ "rect", required_argument, NULL, 'r' },
		{ "hunt", no_argument, NULL, 'H' },
		{ "travel", no_argument, NULL, 'T' },
		{ "laps", required_argument, NULL, 'n' },
		{ "speed", required_argument, NULL, 's' },
		{ "accel", required_argument, NULL, 'a' },
		{ "laser", no_argument, NULL, 'L' },
		{ "power", required_argument, NULL, 'p' },
		{ "depth", required_argument, NULL, 'd' },
		{ "stfr", required_argument, NULL, 'f' },
		{ "serial", required_argument, NULL, 'S' },
		{ "gzip", no_argument, NULL, 'z' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(g, 0, sizeof(*g));
	g->speed = g->accel = -1;
	g->depth = GFP_DEPTH;
	g->laps = 1;
	g->p.power = GFP_POWER;
	while ((ch = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		if (ch == 'h') {
			fputs(gfp_usage, stdout);
			*rc = GFP_OK;
			return -1;
		}
		if ((*rc = gfp_gen_option(g, ch, optarg)) != GFP_OK)
			return -1;
	}
	if (optind != argc)
		*rc = gfp_usage_error("generate: unexpected ", argv[optind]);
	else if (g->shape == GFP_NONE)
		*rc = gfp_usage_error("generate: --line, --rect or --hunt",
		    NULL);
	else if (g->out == NULL)
		*rc = gfp_usage_error("generate: no -o FILE", NULL);
	else
		return 0;
	return -1;
}

/* One lap of g's shape into moves[4], its length in *n, and the speeds
 * into g->p: GFP_OK, or the exit status of a usage error. */
static int
gfp_gen_shape(struct gfp_gen *g, struct puls_gen_move *moves, size_t *n)
{
	double mmps;
	int32_t sa, sb;
	size_t i;

	/* Speeds in steps of the axis that sets them (puls.h). */
	mmps = g->shape == GFP_HUNT ? PULS_Z_MM : PULS_XY_MM;
	if (g->speed < 0)
		g->speed = g->shape == GFP_HUNT ? GFP_ZSPEED : GFP_SPEED;
	if (g->accel < 0)
		g->accel = g->shape == GFP_HUNT ? GFP_ZACCEL : GFP_ACCEL;
	g->p.speed = g->speed / mmps;
	g->p.accel = g->accel / mmps;
	memset(moves, 0, 4 * sizeof(*moves));
	switch (g->shape) {
	case GFP_LINE:
		if (gfp_steps(g->a, PULS_XY_MM, &sa) == -1 ||
		    gfp_steps(g->b, PULS_XY_MM, &sb) == -1)
			return gfp_usage_error("generate: too long: ",
			    g->shape_arg);
		moves[0].dx = sa;
		moves[0].dy = sb;
		moves[0].laser = g->laser;
		*n = 1;
		break;
	case GFP_RECT:
		if (gfp_steps(g->a, PULS_XY_MM, &sa) == -1 ||
		    gfp_steps(g->b, PULS_XY_MM, &sb) == -1)
			return gfp_usage_error("generate: too large: ",
			    g->shape_arg);
		moves[0].dx = sa;
		moves[1].dy = sb;
		moves[2].dx = -sa;
		moves[3].dy = -sb;
		for (i = 0; i < 4; i++)
			moves[i].laser = !g->travel;
		*n = 4;
		break;
	default:
		if (gfp_steps(g->depth, PULS_Z_MM, &sa) == -1)
			return gfp_usage_error("generate: too deep", NULL);
		moves[0].dz = -sa;
		moves[1].dz = sa;
		*n = 2;
		break;
	}
	return GFP_OK;
}

/* Opens generate's output into o: GFP_OK or an exit status (told). */
static int
gfp_gen_open(const struct gfp_gen *g, struct gfp_out *o)
{
	memset(o, 0, sizeof(*o));
	o->name = g->out;
	o->gzip = g->gzip;
	if (strcmp(g->out, "-") == 0) {
		if (isatty(STDOUT_FILENO))
			return gfp_usage_error("generate: not writing a pulse "
			    "file to a terminal", NULL);
		o->fp = stdout;
	} else if ((o->fp = fopen(g->out, "wbe")) == NULL) {
		fprintf(stderr, "gf-puls: %s: %s\n", g->out, strerror(errno));
		return GFP_BAD;
	}
	return GFP_OK;
}

/* The pulse file: g->laps times the lap of n moves, to g->out. */
static int
gfp_gen_write(const struct gfp_gen *g, const struct puls_gen_move *moves,
    size_t n)
{
	struct puls_gen_move *all;
	struct gfp_out o;
	uint64_t lap;
	int rc;

	/* The shape again and again: a job that retraces itself. */
	if ((all = calloc(n * g->laps, sizeof(*all))) == NULL) {
		fprintf(stderr, "gf-puls: out of memory\n");
		return GFP_BAD;
	}
	for (lap = 0; lap < g->laps; lap++)
		memcpy(all + lap * n, moves, n * sizeof(*all));
	if ((rc = gfp_gen_open(g, &o)) != GFP_OK) {
		free(all);
		return rc;
	}
	rc = GFP_BAD;
	if (o.gzip && deflateInit2(&o.z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		fprintf(stderr, "gf-puls: deflateInit2 failed\n");
		o.gzip = 0;
		goto done;
	}
	if (puls_generate(&g->p, all, n * g->laps, gfp_out_sink, &o) == -1 ||
	    (o.gzip && gfp_out_deflate(&o, NULL, 0, Z_FINISH) == -1) ||
	    fflush(o.fp) == EOF || ferror(o.fp)) {
		fprintf(stderr, "gf-puls: %s: %s\n", g->out, o.failed ||
		    errno != 0 ? strerror(errno) : "write failed");
		goto done;
	}
	rc = GFP_OK;
done:
	free(all);
	if (o.gzip)
		deflateEnd(&o.z);
	if (o.fp != stdout && fclose(o.fp) == EOF && rc == GFP_OK) {
		fprintf(stderr, "gf-puls: %s: %s\n", g->out, strerror(errno));
		rc = GFP_BAD;
	}
	return rc;
}

static int
gfp_generate(int argc, char **argv)
{
	struct puls_gen_move moves[4];
	struct gfp_gen g;
	size_t n = 0;
	int rc;

	if (gfp_gen_options(argc, argv, &g, &rc) == -1)
		return rc;
	if ((rc = gfp_gen_shape(&g, moves, &n)) != GFP_OK)
		return rc;
	return gfp_gen_write(&g, moves, n);
}

int
main(int argc, char **argv)
{
	const char *cmd;

	/* The library's warnings (a large body) are for the daemon. */
	log_init(LOG_TO_CONSOLE, LOG_ERR, NULL);
	if (argc < 2)
		return gfp_usage_error("no command", NULL);
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		fputs(gfp_usage, stdout);
		fputs(gfp_help, stdout);
		return GFP_OK;
	}
	/* Each command parses its own options from argv[1]. */
	argc--;
	argv++;
	optind = 1;
	if (strcmp(cmd, "info") == 0)
		return gfp_info(argc, argv);
	if (strcmp(cmd, "stats") == 0)
		return gfp_stats(argc, argv);
	if (strcmp(cmd, "render") == 0)
		return gfp_render(argc, argv);
	if (strcmp(cmd, "generate") == 0)
		return gfp_generate(argc, argv);
	return gfp_usage_error("unknown command: ", cmd);
}
