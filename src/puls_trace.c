/*
 * puls_trace: see puls_render.h.
 *
 * Two passes through a body.  The numbers (gf-puls stats): everything
 * is a count of masked bytes or a running min/max of positions, so the
 * body is scanned 16 lanes at a time: a chunk of 16 x PULS_SEG bytes is
 * split into 16 contiguous segments, one per lane, and transposed 16 x 16
 * bytes at a time so that each vector holds the next tick of every
 * segment.  A lane then keeps its segment's position relative to its
 * start in 8 bits (biased by 128: |position| <= PULS_SEG < 128, so the
 * unsigned min/max of SSE2 apply), and the 16 segments are chained at the
 * end of the chunk.  Bit for bit the same as the scalar loop (tested).
 *
 * The toolpath (gf-puls render) is a second, sequential walk over the
 * same bytes that only moves the head and feeds the simplification.  It
 * is simplified on the fly so memory follows the drawing,
 * not the job: the position is sampled every tol steps and a vertex is
 * emitted only when the samples no longer fit a sleeve of half-width tol
 * around a straight line from the last vertex (the angular interval every
 * sample allows, seen from the anchor, is intersected; when it empties
 * the line bends).  A raster engraving of thousands of lines costs a few
 * vertices per line.  A segment whose ends fall in the same pixel cells
 * as one already kept, with the same laser state, is dropped (a bounded
 * hash table): retracing a square a million times keeps one square, and
 * cairo never strokes a path that overlaps itself a million times (that
 * was quadratic in time and memory, issue 9 item 10).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "puls_render.h"

#define PULS_MAX_ZMARK	100000	/* Z marks kept */
#define PULS_SEEN_CAP	(1U << 18)	/* segments in the table (4 MiB) */
#define PULS_SEEN_EMPTY	INT32_MIN	/* x0 of a free slot */
#define PULS_RAW_CAP	(1U << 20)	/* vertices of a raw half: 16 MiB */
#define PULS_RAW_MEM	(1U << 16)	/* of them in memory, the rest spilt */
#define PULS_SINK_BATCH	4096	/* vertices kept before the sink */
#define PULS_LANES	16
#define PULS_SEG	112	/* ticks per lane per chunk: < 128 */
#define PULS_CHUNK	(PULS_LANES * PULS_SEG)	/* bytes */

/* Per byte: dx, dy, dz (-1, 0, 1), laser enabled, power byte. */
struct puls_tick {
	int8_t		dx, dy, dz;
	uint8_t		le, lp;
};

static struct puls_tick	puls_ticks[256];
/* gf-puls stats runs one trace per worker thread: build the table once. */
static pthread_once_t	puls_ticks_once = PTHREAD_ONCE_INIT;

/* PROTOCOL.md 8, once: the sequential twin of puls_stats_add(). */
static void
puls_trace_table(void)
{
	int b;

	for (b = 0; b < 256; b++) {
		struct puls_tick *k = &puls_ticks[b];

		memset(k, 0, sizeof(*k));
		if (b & 0x80) {
			k->lp = 1;
			continue;
		}
		k->le = (b & 0x10) != 0;
		k->dx = (b & 0x03) == 0x01 ? 1 : (b & 0x03) == 0x03 ? -1 : 0;
		k->dy = (b & 0x0c) == 0x0c ? 1 : (b & 0x0c) == 0x04 ? -1 : 0;
		k->dz = (b & 0x60) == 0x60 ? 1 : (b & 0x60) == 0x20 ? -1 : 0;
	}
}

void
puls_trace_init(struct puls_trace *t, int path, double tol)
{
	memset(t, 0, sizeof(*t));
	t->path = path;
	t->tol = tol >= 1 ? tol : 1;
	t->cell = 2 * t->tol;
	pthread_once(&puls_ticks_once, puls_trace_table);
}

void
puls_trace_free(struct puls_trace *t)
{
	free(t->v);
	free(t->zm);
	free(t->seen);
	if (t->spill != NULL)
		fclose(t->spill);
	t->spill = NULL;
	t->nspill = 0;
	t->v = NULL;
	t->zm = NULL;
	t->seen = NULL;
	t->nv = t->capv = t->nzm = t->capzm = t->nseen = 0;
}

void
puls_trace_keep(struct puls_trace *t, size_t keep, puls_trace_full *full,
    void *arg)
{
	t->keep = keep;
	t->full = full;
	t->full_arg = arg;
}

/* The budget is reached: once, the caller's say, then a batch again. */
static int
puls_trace_full_now(struct puls_trace *t)
{
	puls_trace_full *full = t->full;
	struct puls_vertex *nv;

	t->full = NULL;
	if (full(t->full_arg, t) == -1) {
		t->oom = 1;
		return -1;
	}
	if (t->sink == NULL)
		return 0;	/* kept: memory is the caller's choice */
	puls_trace_flush(t);
	if (t->capv > PULS_SINK_BATCH &&
	    (nv = realloc(t->v, PULS_SINK_BATCH * sizeof(*nv))) != NULL) {
		t->v = nv;
		t->capv = PULS_SINK_BATCH;
	}
	return 0;
}

static int
puls_trace_push(struct puls_trace *t, int64_t x, int64_t y, int cut,
    int move)
{
	struct puls_vertex *nv;
	size_t cap;

	if (t->nv == t->capv) {
		cap = t->capv ? t->capv * 2 : 1024;
		if ((nv = realloc(t->v, cap * sizeof(*nv))) == NULL) {
			t->oom = 1;
			return -1;
		}
		t->v = nv;
		t->capv = cap;
	}
	t->v[t->nv].x = (int32_t)x;
	t->v[t->nv].y = (int32_t)y;
	t->v[t->nv].cut = cut;
	t->v[t->nv].move = move;
	t->nv++;
	if (t->sink == NULL && t->full != NULL && t->nv >= t->keep)
		return puls_trace_full_now(t);
	if (t->sink != NULL && t->nv >= PULS_SINK_BATCH)
		puls_trace_flush(t);
	return 0;
}

void
puls_trace_sink(struct puls_trace *t, puls_vertex_sink *sink, void *arg)
{
	t->sink = sink;
	t->sink_arg = arg;
}

void
puls_trace_flush(struct puls_trace *t)
{
	if (t->sink == NULL)
		return;		/* the vertices stay: no one took them */
	if (t->nv > 0)
		t->sink(t->sink_arg, t->v, t->nv);
	t->nv = 0;
}

/* 1: the segment's cells were drawn in this style before; else noted. */
static int
puls_trace_seen(struct puls_trace *t, int64_t x0, int64_t y0, int64_t x1,
    int64_t y1, int cut)
{
	struct puls_seg k, *e;
	uint64_t h;
	size_t i;
	int32_t tmp;

	k.x0 = (int32_t)lround((double)x0 / t->cell);
	k.y0 = (int32_t)lround((double)y0 / t->cell);
	k.x1 = (int32_t)lround((double)x1 / t->cell);
	k.y1 = (int32_t)lround((double)y1 / t->cell);
	/* Undirected: the lower end first. */
	if (k.x1 < k.x0 || (k.x1 == k.x0 && k.y1 < k.y0)) {
		tmp = k.x0; k.x0 = k.x1; k.x1 = tmp;
		tmp = k.y0; k.y0 = k.y1; k.y1 = tmp;
	}
	k.x0 = k.x0 * 2 + (cut != 0);	/* cells are < 2^30: no overflow */
	if (t->seen == NULL) {
		if ((t->seen = malloc(PULS_SEEN_CAP * sizeof(*e))) == NULL)
			return 0;	/* no table: draw everything */
		for (i = 0; i < PULS_SEEN_CAP; i++)
			t->seen[i].x0 = PULS_SEEN_EMPTY;
	}
	h = (uint64_t)(uint32_t)k.x0 * 0x9e3779b97f4a7c15ULL ^
	    (uint64_t)(uint32_t)k.y0 * 0xc2b2ae3d27d4eb4fULL ^
	    (uint64_t)(uint32_t)k.x1 * 0x165667b19e3779f9ULL ^
	    (uint64_t)(uint32_t)k.y1 * 0x27d4eb2f165667c5ULL;
	h ^= h >> 29;
	for (i = h & (PULS_SEEN_CAP - 1); ; i = (i + 1) & (PULS_SEEN_CAP - 1)) {
		e = &t->seen[i];
		if (e->x0 == PULS_SEEN_EMPTY)
			break;
		if (memcmp(e, &k, sizeof(k)) == 0)
			return 1;
	}
	/* Half full: forget everything, so the table stays bounded and
	 * probes short; a picture that large repeats little anyway. */
	if (t->nseen >= PULS_SEEN_CAP / 2) {
		for (i = 0; i < PULS_SEEN_CAP; i++)
			t->seen[i].x0 = PULS_SEEN_EMPTY;
		t->nseen = 0;
		return puls_trace_seen(t, x0, y0, x1, y1, cut);
	}
	*e = k;
	t->nseen++;
	return 0;
}

/* A half for puls_trace_merge(): every vertex, at most PULS_RAW_CAP,
 * the older ones in a temporary file so memory stays bounded. */
static void
puls_trace_raw_push(struct puls_trace *t, int64_t x, int64_t y, int cut)
{
	if (t->nspill + t->nv >= PULS_RAW_CAP ||
	    puls_trace_push(t, x, y, cut, 0) == -1) {
		t->oom = 1;
		return;
	}
	if (t->nv < PULS_RAW_MEM)
		return;
	if ((t->spill == NULL && (t->spill = tmpfile()) == NULL) ||
	    fwrite(t->v, sizeof(*t->v), t->nv, t->spill) != t->nv) {
		t->oom = 1;	/* given up: the first half walks it */
		return;
	}
	t->nspill += t->nv;
	t->nv = 0;
}

/* The toolpath reaches (x, y), laser cut since the last vertex. */
/* Out of line: the tick loop stays small. */
static __attribute__((noinline)) void
puls_trace_vertex(struct puls_trace *t, int64_t x, int64_t y, int cut)
{
	int64_t px = t->lastx, py = t->lasty;
	int had = t->have_last;

	if (t->oom)
		return;
	if (x < INT32_MIN || x > INT32_MAX || y < INT32_MIN || y > INT32_MAX) {
		t->oom = 1;	/* off any bed: stop drawing */
		return;
	}
	if (t->raw) {
		puls_trace_raw_push(t, x, y, cut);
		return;
	}
	t->lastx = x;
	t->lasty = y;
	t->have_last = 1;
	if (!had) {
		t->lifted = 1;	/* the first vertex: nothing drawn yet */
		return;
	}
	if (puls_trace_seen(t, px, py, x, y, cut)) {
		t->lifted = 1;
		return;
	}
	if (t->lifted) {
		if (puls_trace_push(t, px, py, cut, 1) == -1)
			return;
		t->lifted = 0;
	}
	puls_trace_push(t, x, y, cut, 0);
}

/* down/up Z steps at (x, y): one mark per place in a row. */
static void
puls_trace_zmark_add(struct puls_trace *t, int64_t x, int64_t y,
    uint32_t down, uint32_t up)
{
	struct puls_zmark *m;
	size_t cap;

	if (t->nzm > 0) {
		m = &t->zm[t->nzm - 1];
		if (m->x == (int32_t)x && m->y == (int32_t)y)
			goto count;
	}
	if (t->nzm >= PULS_MAX_ZMARK)
		return;
	if (t->nzm == t->capzm) {
		cap = t->capzm ? t->capzm * 2 : 64;
		if ((m = realloc(t->zm, cap * sizeof(*m))) == NULL)
			return;
		t->zm = m;
		t->capzm = cap;
	}
	m = &t->zm[t->nzm++];
	memset(m, 0, sizeof(*m));
	m->x = (int32_t)x;
	m->y = (int32_t)y;
count:
	m->down += (int32_t)down;
	m->up += (int32_t)up;
}

/* Out of line: the tick loop stays small. */
static __attribute__((noinline)) void
puls_trace_zmark(struct puls_trace *t, int dz)
{
	puls_trace_zmark_add(t, t->x, t->y, dz < 0, dz > 0);
}

/* Which way (x, y) lies from the anchor along an axis: 1 +X, 2 -X,
 * 3 +Y, 4 -Y; 0 off the axes (or at the anchor). */
static int
puls_trace_axis(const struct puls_trace *t, int64_t x, int64_t y)
{
	int64_t dx = x - t->ax, dy = y - t->ay;

	if (dy == 0)
		return dx > 0 ? 1 : dx < 0 ? 2 : 0;
	if (dx == 0)
		return dy > 0 ? 3 : 4;
	return 0;
}

/* Opens the sleeve at the anchor towards (x, y). */
static void
puls_trace_aim(struct puls_trace *t, int64_t x, int64_t y)
{
	double dx = (double)(x - t->ax), dy = (double)(y - t->ay);
	double d = hypot(dx, dy), h;

	t->lx = x;
	t->ly = y;
	t->pend = 0;
	t->axis = puls_trace_axis(t, x, y);
	if (d <= t->tol) {
		t->have_dir = 0;	/* still within reach of the anchor */
		return;
	}
	h = asin(t->tol / d);
	t->theta0 = atan2(dy, dx);
	t->lo = -h;
	t->hi = h;
	t->have_dir = 1;
}

/*
 * The samples on the aim's own ray, when it runs along an axis (a
 * raster line, most of a job): their angle from theta0 is exactly 0
 * (atan2 of an axis is a constant), so each narrows the sleeve to
 * [-h, h] with h = asin(tol / d), largest d narrowest, and fits while
 * the sleeve holds 0.  Only the farthest is kept (pend) and put in
 * lo/hi when another sample needs them: max and min are exact, so lo and
 * hi are bit for bit what one sample at a time gives (the reference,
 * eager; tested), without three libm calls a sample.
 */
static void
puls_trace_settle(struct puls_trace *t)
{
	double h;

	if (t->pend == 0)
		return;
	h = asin(t->tol / t->pend);
	t->lo = 0.0 - h > t->lo ? 0.0 - h : t->lo;
	t->hi = 0.0 + h < t->hi ? 0.0 + h : t->hi;
	t->pend = 0;
}

/* One sample of the position into the open run. */
/* Out of line: the tick loop stays small. */
static __attribute__((noinline)) void
puls_trace_sample(struct puls_trace *t, int64_t x, int64_t y)
{
	double dx, dy, d, h, delta, lo, hi;

	t->sx = x;
	t->sy = y;
	if (!t->have_dir) {
		puls_trace_aim(t, x, y);
		return;
	}
	if (t->axis != 0 && !t->eager && t->lo <= 0 && t->hi >= 0 &&
	    puls_trace_axis(t, x, y) == t->axis) {
		/* hypot() of an axis is exact: |dx| or |dy|. */
		d = (double)llabs(x - t->ax) + (double)llabs(y - t->ay);
		if (d > t->tol && d > t->pend)
			t->pend = d;
		t->lx = x;
		t->ly = y;
		return;
	}
	puls_trace_settle(t);
	dx = (double)(x - t->ax);
	dy = (double)(y - t->ay);
	d = hypot(dx, dy);
	if (d <= t->tol) {
		t->lx = x;
		t->ly = y;
		return;
	}
	h = asin(t->tol / d);
	/* remainder(delta, 2 pi), exactly: |delta| <= 2 pi, and past pi
	 * the subtraction is exact (Sterbenz); libm's is slow. */
	delta = atan2(dy, dx) - t->theta0;
	if (delta > M_PI)
		delta -= 2 * M_PI;
	else if (delta < -M_PI)
		delta += 2 * M_PI;
	/* fmax/fmin without the libm calls: nothing here is NaN. */
	lo = delta - h > t->lo ? delta - h : t->lo;
	hi = delta + h < t->hi ? delta + h : t->hi;
	if (lo <= hi) {
		t->lo = lo;
		t->hi = hi;
		t->lx = x;
		t->ly = y;
		return;
	}
	/* The line bends at the last sample that fitted. */
	puls_trace_vertex(t, t->lx, t->ly, t->cut);
	t->ax = t->lx;
	t->ay = t->ly;
	puls_trace_aim(t, x, y);
}

/* An X/Y move of one tick from (px, py) to the current position. */
static void
puls_trace_path(struct puls_trace *t, int64_t px, int64_t py, int le)
{
	if (!t->run) {
		puls_trace_vertex(t, px, py, le);
		t->run = 1;
		t->cut = le;
		t->ax = t->lx = t->sx = px;
		t->ay = t->ly = t->sy = py;
		t->have_dir = 0;
	} else if (le != t->cut) {
		/* Laser switched: the old run ends exactly here. */
		puls_trace_vertex(t, px, py, t->cut);
		t->cut = le;
		t->ax = t->lx = t->sx = px;
		t->ay = t->ly = t->sy = py;
		t->have_dir = 0;
	}
	if (llabs(t->x - t->sx) >= t->tol || llabs(t->y - t->sy) >= t->tol)
		puls_trace_sample(t, t->x, t->y);
}

/* The step and power byte counts, vectorised (puls_stats_add()). */
static void
puls_trace_count(struct puls_trace *t, const uint8_t *body, size_t len)
{
	struct puls_stats st;

	memset(&st, 0, sizeof(st));
	puls_stats_add(&st, body, len);
	t->moves[0] += st.xp + st.xn;
	t->moves[1] += st.yp + st.yn;
	t->moves[2] += st.zp + st.zn;
	t->lp += st.lp;
}

void
puls_trace_add_scalar(struct puls_trace *t, const uint8_t *body, size_t len)
{
	const struct puls_tick *k;
	int64_t px, py;
	size_t i;
	int a;

	puls_trace_count(t, body, len);
	if (t->path)
		t->eager = 1;	/* the reference: no sample put off */
	for (i = 0; i < len; i++) {
		k = &puls_ticks[body[i]];
		t->ticks++;
		t->le_ticks += k->le;
		if ((k->dx | k->dy | k->dz) == 0)
			continue;
		px = t->x;
		py = t->y;
		t->x += k->dx;
		t->y += k->dy;
		t->z += k->dz;
		for (a = 0; a < 3; a++) {
			int64_t p = a == 0 ? t->x : a == 1 ? t->y : t->z;

			if (p < t->min[a])
				t->min[a] = p;
			if (p > t->max[a])
				t->max[a] = p;
		}
		if (k->dz != 0 && t->path)
			puls_trace_zmark(t, k->dz);
		if ((k->dx | k->dy) == 0)
			continue;
		if (k->dx != 0 && k->dy != 0)
			t->diag[k->le]++;
		else
			t->ortho[k->le]++;
		if (t->path)
			puls_trace_path(t, px, py, k->le);
	}
}

#ifdef __SSE2__
/* 16 x 16 bytes transposed in place: four rounds of the same byte
 * interleave (each rotates the 8-bit index row:col left by one). */
static void
puls_transpose16(__m128i r[16])
{
	__m128i o[16];
	int round, i;

	for (round = 0; round < 4; round++) {
		for (i = 0; i < 8; i++) {
			o[2 * i] = _mm_unpacklo_epi8(r[i], r[i + 8]);
			o[2 * i + 1] = _mm_unpackhi_epi8(r[i], r[i + 8]);
		}
		memcpy(r, o, sizeof(o));
	}
}

static uint64_t
puls_hsum8(__m128i v)
{
	__m128i s = _mm_sad_epu8(v, _mm_setzero_si128());

	return (uint64_t)_mm_cvtsi128_si32(s) +
	    (uint64_t)_mm_cvtsi128_si32(_mm_srli_si128(s, 8));
}

/* Per-lane state of a chunk: positions and extents biased by 128. */
struct puls_lanes {
	__m128i		pos[3], mn[3], mx[3];
	__m128i		le, ortho, ortho_le, diag, diag_le;	/* counts */
	__m128i		moves[3], lp;				/* counts */
};

/* One tick of every lane. */
static inline void
puls_lanes_tick(struct puls_lanes *L, __m128i c)
{
	static const uint8_t mask[3] = { 0x83, 0x8c, 0xe0 };
	static const uint8_t vp[3] = { 0x01, 0x0c, 0x60 };
	static const uint8_t vn[3] = { 0x03, 0x04, 0x20 };
	__m128i m, p, n, mv[2], le, o, d;
	int a;

	for (a = 0; a < 3; a++) {
		m = _mm_and_si128(c, _mm_set1_epi8((char)mask[a]));
		p = _mm_cmpeq_epi8(m, _mm_set1_epi8((char)vp[a]));
		n = _mm_cmpeq_epi8(m, _mm_set1_epi8((char)vn[a]));
		/* True lanes are -1: subtracting p steps +1, adding n -1. */
		L->pos[a] = _mm_add_epi8(_mm_sub_epi8(L->pos[a], p), n);
		L->mn[a] = _mm_min_epu8(L->mn[a], L->pos[a]);
		L->mx[a] = _mm_max_epu8(L->mx[a], L->pos[a]);
		m = _mm_or_si128(p, n);
		L->moves[a] = _mm_sub_epi8(L->moves[a], m);
		if (a < 2)
			mv[a] = m;
	}
	L->lp = _mm_sub_epi8(L->lp, _mm_cmplt_epi8(c, _mm_setzero_si128()));
	le = _mm_cmpeq_epi8(_mm_and_si128(c, _mm_set1_epi8((char)0x90)),
	    _mm_set1_epi8(0x10));
	o = _mm_xor_si128(mv[0], mv[1]);
	d = _mm_and_si128(mv[0], mv[1]);
	L->le = _mm_sub_epi8(L->le, le);
	L->ortho = _mm_sub_epi8(L->ortho, o);
	L->ortho_le = _mm_sub_epi8(L->ortho_le, _mm_and_si128(o, le));
	L->diag = _mm_sub_epi8(L->diag, d);
	L->diag_le = _mm_sub_epi8(L->diag_le, _mm_and_si128(d, le));
}

/*
 * Chains n lane segments per axis into the trace, in lane order: each
 * lane's biased end (pos) moves the head, its biased min/max widen the
 * extents.  Arrays are [3][n], flattened.  Shared by the SSE2 and AVX2
 * folds; called once per chunk, so the call costs nothing measurable.
 */
static void
puls_lanes_chain(struct puls_trace *t, const uint8_t *pos, const uint8_t *mn,
    const uint8_t *mx, int n)
{
	int64_t p[3] = { t->x, t->y, t->z }, lo, hi;
	int a, i;

	for (a = 0; a < 3; a++) {
		for (i = 0; i < n; i++) {
			lo = p[a] + mn[a * n + i] - 128;
			hi = p[a] + mx[a * n + i] - 128;
			if (lo < t->min[a])
				t->min[a] = lo;
			if (hi > t->max[a])
				t->max[a] = hi;
			p[a] += pos[a * n + i] - 128;
		}
	}
	t->x = p[0];
	t->y = p[1];
	t->z = p[2];
}

/* Every X and Y step is one ortho tick or half a diagonal one. */
static void
puls_lanes_kinds(struct puls_trace *t, uint64_t ortho, uint64_t ortho_le,
    uint64_t diag, uint64_t diag_le)
{
	t->ortho[1] += ortho_le;
	t->ortho[0] += ortho - ortho_le;
	t->diag[1] += diag_le;
	t->diag[0] += diag - diag_le;
}

/* The 16 segments of a chunk, chained in order into the trace. */
static void
puls_lanes_fold(struct puls_trace *t, const struct puls_lanes *L)
{
	uint8_t pos[3][PULS_LANES], mn[3][PULS_LANES], mx[3][PULS_LANES];
	int a;

	for (a = 0; a < 3; a++) {
		_mm_storeu_si128((__m128i *)(void *)pos[a], L->pos[a]);
		_mm_storeu_si128((__m128i *)(void *)mn[a], L->mn[a]);
		_mm_storeu_si128((__m128i *)(void *)mx[a], L->mx[a]);
	}
	puls_lanes_chain(t, pos[0], mn[0], mx[0], PULS_LANES);
	t->ticks += PULS_CHUNK;
	t->le_ticks += puls_hsum8(L->le);
	for (a = 0; a < 3; a++)
		t->moves[a] += puls_hsum8(L->moves[a]);
	t->lp += puls_hsum8(L->lp);
	puls_lanes_kinds(t, puls_hsum8(L->ortho), puls_hsum8(L->ortho_le),
	    puls_hsum8(L->diag), puls_hsum8(L->diag_le));
}

/* One chunk of PULS_CHUNK bytes: lane i takes bytes [i * PULS_SEG, ...). */
static void
puls_trace_chunk(struct puls_trace *t, const uint8_t *p)
{
	struct puls_lanes L;
	__m128i r[16];
	int a, i, j;

	for (a = 0; a < 3; a++)
		L.pos[a] = L.mn[a] = L.mx[a] = _mm_set1_epi8((char)128);
	L.le = L.ortho = L.ortho_le = L.diag = L.diag_le = L.lp =
	    _mm_setzero_si128();
	for (a = 0; a < 3; a++)
		L.moves[a] = _mm_setzero_si128();
	for (j = 0; j < PULS_SEG; j += 16) {
		for (i = 0; i < 16; i++)
			r[i] = _mm_loadu_si128((const __m128i *)(const void *)
			    (p + i * PULS_SEG + j));
		puls_transpose16(r);
		for (i = 0; i < 16; i++)
			puls_lanes_tick(&L, r[i]);
	}
	puls_lanes_fold(t, &L);
}
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PULS_HAVE_AVX2	1

/*
 * The same scan with AVX2, where the CPU has it (checked at run time; the
 * build stays baseline x86-64): two chunks at once, one per 128-bit half
 * (the AVX2 byte interleave works within halves, so the transpose is the
 * same), and the decode as pshufb lookups on the low nibble (an index
 * with bit 7 set, a power byte, looks up 0: no motion).
 */
#define PULS_AVX2 __attribute__((target("avx2")))

#define PULS_NIB(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p) \
	_mm256_setr_epi8(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, \
	    a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p)

struct puls_lanes2 {
	__m256i		pos[3], mn[3], mx[3];
	__m256i		le, ortho, ortho_le, diag, diag_le;	/* counts */
	__m256i		xmoves, zmoves, lp;			/* counts */
};

static PULS_AVX2 uint64_t
puls_hsum8_avx2(__m256i v)
{
	__m256i s = _mm256_sad_epu8(v, _mm256_setzero_si256());
	__m128i h = _mm_add_epi64(_mm256_castsi256_si128(s),
	    _mm256_extracti128_si256(s, 1));

	return (uint64_t)_mm_cvtsi128_si64(h) +
	    (uint64_t)_mm_cvtsi128_si64(_mm_srli_si128(h, 8));
}

static PULS_AVX2 void
puls_lanes2_fold(struct puls_trace *t, const struct puls_lanes2 *L)
{
	uint8_t pos[3][32], mn[3][32], mx[3][32];
	uint64_t ortho = puls_hsum8_avx2(L->ortho);
	uint64_t diag = puls_hsum8_avx2(L->diag);
	int a;

	for (a = 0; a < 3; a++) {
		_mm256_storeu_si256((__m256i *)(void *)pos[a], L->pos[a]);
		_mm256_storeu_si256((__m256i *)(void *)mn[a], L->mn[a]);
		_mm256_storeu_si256((__m256i *)(void *)mx[a], L->mx[a]);
	}
	/* Lanes 0-15: the first chunk's segments, then the second's. */
	puls_lanes_chain(t, pos[0], mn[0], mx[0], 32);
	t->ticks += 2 * PULS_CHUNK;
	t->le_ticks += puls_hsum8_avx2(L->le);
	t->moves[0] += puls_hsum8_avx2(L->xmoves);
	/* Every X and Y step is one ortho tick or half a diagonal one. */
	t->moves[1] += ortho + 2 * diag - puls_hsum8_avx2(L->xmoves);
	t->moves[2] += puls_hsum8_avx2(L->zmoves);
	t->lp += puls_hsum8_avx2(L->lp);
	puls_lanes_kinds(t, ortho, puls_hsum8_avx2(L->ortho_le), diag,
	    puls_hsum8_avx2(L->diag_le));
}

/* Two chunks, p and p + PULS_CHUNK. */
static PULS_AVX2 void
puls_trace_chunk2_avx2(struct puls_trace *t, const uint8_t *p)
{
	const __m256i tdx = PULS_NIB(0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0, -1,
	    0, 1, 0, -1);
	const __m256i tdy = PULS_NIB(0, 0, 0, 0, -1, -1, -1, -1, 0, 0, 0, 0,
	    1, 1, 1, 1);
	/* Z: bits 5-7 moved to 1-3; 8 and up is a power byte. */
	const __m256i tdz = PULS_NIB(0, 0, -1, 0, 0, 0, 1, 0, 0, 0, 0, 0,
	    0, 0, 0, 0);
	/* Exactly one of X and Y steps; both do. */
	const __m256i tor = PULS_NIB(0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1,
	    1, 0, 1, 0);
	const __m256i tdi = PULS_NIB(0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0,
	    0, 1, 0, 1);
	const __m256i tmx = PULS_NIB(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
	    0, 1, 0, 1);
	const __m256i tmz = PULS_NIB(0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0,
	    0, 0, 0, 0);
	const __m256i m8f = _mm256_set1_epi8((char)0x8f);
	const __m256i me0 = _mm256_set1_epi8((char)0xe0);
	const __m256i m90 = _mm256_set1_epi8((char)0x90);
	const __m256i v10 = _mm256_set1_epi8(0x10);
	struct puls_lanes2 L;
	__m256i r[16], o[16], c, xy, zi, d, le, cl;
	int a, i, j, round;

	for (a = 0; a < 3; a++)
		L.pos[a] = L.mn[a] = L.mx[a] = _mm256_set1_epi8((char)128);
	L.le = L.ortho = L.ortho_le = L.diag = L.diag_le = L.xmoves =
	    L.zmoves = L.lp = _mm256_setzero_si256();
	for (j = 0; j < PULS_SEG; j += 16) {
		for (i = 0; i < 16; i++)
			r[i] = _mm256_inserti128_si256(_mm256_castsi128_si256(
			    _mm_loadu_si128((const __m128i *)(const void *)
			    (p + i * PULS_SEG + j))),
			    _mm_loadu_si128((const __m128i *)(const void *)
			    (p + PULS_CHUNK + i * PULS_SEG + j)), 1);
		for (round = 0; round < 4; round++) {
			for (i = 0; i < 8; i++) {
				o[2 * i] = _mm256_unpacklo_epi8(r[i], r[i + 8]);
				o[2 * i + 1] = _mm256_unpackhi_epi8(r[i],
				    r[i + 8]);
			}
			memcpy(r, o, sizeof(o));
		}
		for (i = 0; i < 16; i++) {
			c = r[i];
			xy = _mm256_and_si256(c, m8f);
			d = _mm256_shuffle_epi8(tdx, xy);
			L.pos[0] = _mm256_add_epi8(L.pos[0], d);
			d = _mm256_shuffle_epi8(tdy, xy);
			L.pos[1] = _mm256_add_epi8(L.pos[1], d);
			zi = _mm256_srli_epi16(_mm256_and_si256(c, me0), 4);
			d = _mm256_shuffle_epi8(tdz, zi);
			L.pos[2] = _mm256_add_epi8(L.pos[2], d);
			L.xmoves = _mm256_add_epi8(L.xmoves,
			    _mm256_shuffle_epi8(tmx, xy));
			L.zmoves = _mm256_add_epi8(L.zmoves,
			    _mm256_shuffle_epi8(tmz, zi));
			L.lp = _mm256_sub_epi8(L.lp, _mm256_cmpgt_epi8(
			    _mm256_setzero_si256(), c));
			for (a = 0; a < 3; a++) {
				L.mn[a] = _mm256_min_epu8(L.mn[a], L.pos[a]);
				L.mx[a] = _mm256_max_epu8(L.mx[a], L.pos[a]);
			}
			le = _mm256_cmpeq_epi8(_mm256_and_si256(c, m90), v10);
			L.le = _mm256_sub_epi8(L.le, le);
			cl = _mm256_shuffle_epi8(tor, xy);
			L.ortho = _mm256_add_epi8(L.ortho, cl);
			L.ortho_le = _mm256_add_epi8(L.ortho_le,
			    _mm256_and_si256(cl, le));
			cl = _mm256_shuffle_epi8(tdi, xy);
			L.diag = _mm256_add_epi8(L.diag, cl);
			L.diag_le = _mm256_add_epi8(L.diag_le,
			    _mm256_and_si256(cl, le));
		}
	}
	puls_lanes2_fold(t, &L);
}
#endif

#ifdef PULS_HAVE_AVX2
/* 1 when the CPU has AVX2 and GFE_PULS_NOAVX2 is unset (tests, bench). */
static int
puls_trace_avx2(void)
{
	static int have = -1;	/* atomic: render scans on two threads */
	int h = __atomic_load_n(&have, __ATOMIC_RELAXED);

	if (h == -1) {
		h = __builtin_cpu_supports("avx2") &&
		    getenv("GFE_PULS_NOAVX2") == NULL;
		__atomic_store_n(&have, h, __ATOMIC_RELAXED);
	}
	return h;
}
#endif

/* Every count, extent and distance, without the toolpath. */
static void
puls_trace_scan(struct puls_trace *t, const uint8_t *body, size_t len)
{
#ifdef PULS_HAVE_AVX2
	if (puls_trace_avx2())
		for (; len >= 2 * PULS_CHUNK; body += 2 * PULS_CHUNK,
		    len -= 2 * PULS_CHUNK)
			puls_trace_chunk2_avx2(t, body);
#endif
#ifdef __SSE2__
	for (; len >= PULS_CHUNK; body += PULS_CHUNK, len -= PULS_CHUNK)
		puls_trace_chunk(t, body);
#endif
	puls_trace_add_scalar(t, body, len);
}

/* One tick of the toolpath walk. */
static inline void
puls_trace_walk1(struct puls_trace *t, uint8_t b)
{
	const struct puls_tick *k = &puls_ticks[b];
	int64_t px, py;

	if ((k->dx | k->dy | k->dz) == 0)
		return;
	px = t->x;
	py = t->y;
	t->x += k->dx;
	t->y += k->dy;
	t->z += k->dz;
	if (k->dz != 0)
		puls_trace_zmark(t, k->dz);
	if ((k->dx | k->dy) != 0)
		puls_trace_path(t, px, py, k->le);
}

#ifdef __SSE2__
/* Running sums of 16 signed bytes (|sum| <= 16). */
static inline __m128i
puls_prefix16(__m128i s)
{
	s = _mm_add_epi8(s, _mm_slli_si128(s, 1));
	s = _mm_add_epi8(s, _mm_slli_si128(s, 2));
	s = _mm_add_epi8(s, _mm_slli_si128(s, 4));
	return _mm_add_epi8(s, _mm_slli_si128(s, 8));
}

/* The step of an axis per byte (-1, 0, 1) and whether it moved. */
static inline __m128i
puls_axis16(__m128i c, uint8_t mask, uint8_t vp, uint8_t vn, __m128i *mv)
{
	__m128i m = _mm_and_si128(c, _mm_set1_epi8((char)mask));
	__m128i p = _mm_cmpeq_epi8(m, _mm_set1_epi8((char)vp));
	__m128i n = _mm_cmpeq_epi8(m, _mm_set1_epi8((char)vn));

	*mv = _mm_or_si128(p, n);
	return _mm_sub_epi8(n, p);	/* true lanes are -1 */
}

/* Lanes of c whose position leaves [lo, hi] (offsets from the start of
 * the 16 bytes; already clamped to +-17, past any sum). */
static inline __m128i
puls_leaves16(__m128i pos, int64_t lo, int64_t hi)
{
	return _mm_or_si128(_mm_cmpgt_epi8(pos, _mm_set1_epi8((char)hi)),
	    _mm_cmplt_epi8(pos, _mm_set1_epi8((char)lo)));
}

/*
 * The bytes of 16 where puls_trace_walk1() would do more than move the
 * head (a mask, bit i for byte i): a Z step, an X/Y step with the laser
 * not in the open run's state, or the head T steps or more from the last
 * sample on an axis.  Between those the walk only adds steps: their
 * running sums give the position (*ox, *oy: after each byte).
 */
static inline unsigned
puls_walk_events16(const struct puls_trace *t, __m128i c, int64_t tt,
    __m128i *ox, __m128i *oy)
{
	__m128i mx, my, mz, dx, dy, ev, le;
	int64_t bx = t->x - t->sx, by = t->y - t->sy;

	dx = puls_axis16(c, 0x83, 0x01, 0x03, &mx);
	dy = puls_axis16(c, 0x8c, 0x0c, 0x04, &my);
	(void)puls_axis16(c, 0xe0, 0x60, 0x20, &mz);
	*ox = puls_prefix16(dx);
	*oy = puls_prefix16(dy);
	le = _mm_cmpeq_epi8(_mm_and_si128(c, _mm_set1_epi8((char)0x90)),
	    _mm_set1_epi8(0x10));
	ev = _mm_and_si128(_mm_or_si128(mx, my),
	    _mm_xor_si128(le, _mm_set1_epi8((char)-(t->cut != 0))));
	ev = _mm_or_si128(ev, mz);
	/* |bx + o| >= tt: o >= tt - bx or o <= -tt - bx; |bx| < tt. */
	ev = _mm_or_si128(ev, puls_leaves16(*ox,
	    tt + bx > 17 ? -17 : -tt - bx + 1, tt - bx > 17 ? 17 : tt - bx - 1));
	ev = _mm_or_si128(ev, puls_leaves16(*oy,
	    tt + by > 17 ? -17 : -tt - by + 1, tt - by > 17 ? 17 : tt - by - 1));
	return (unsigned)_mm_movemask_epi8(ev);
}
#endif

#ifdef __SSE2__
/*
 * A raster line in one go: when the sleeve is aimed along an axis, the
 * head is on that ray past its last sample, and every byte of c only
 * steps forward along it with the run's laser (or idles), its samples
 * fall every tt steps and all take puls_trace_sample()'s axis path, so
 * the last one is all that remains of them (pend is a max, and d grows;
 * a tol past 1e9, tt short of it, is never reached in 16 steps).
 * 1: done, the head moved by its forward steps; 0: not such a block,
 * nothing changed.  Tried first: cheaper than puls_walk_events16().
 */
static inline int
puls_walk_ray16(struct puls_trace *t, __m128i c, int64_t tt)
{
#define PULS_REP16(b)	{ b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b }
	/* Per axis: the bits that must be the step, and the step.  Tables,
	 * not _mm_set1_epi8(): a byte stored to build a vector stalls. */
	static const uint8_t tmask[5][16] __attribute__((aligned(16))) = {
	    PULS_REP16(0), PULS_REP16(0xa7), PULS_REP16(0xa7),
	    PULS_REP16(0xad), PULS_REP16(0xad) };
	static const uint8_t tstep[5][16] __attribute__((aligned(16))) = {
	    PULS_REP16(0), PULS_REP16(0x01), PULS_REP16(0x03),
	    PULS_REP16(0x0c), PULS_REP16(0x04) };
#undef PULS_REP16
	__m128i m, fwd, idle, same, le;
	int64_t *pos, s, a, sg, end, d;
	int xa;

	if (t->axis == 0 || !t->have_dir || t->eager || t->lo > 0 ||
	    t->hi < 0)
		return 0;
	xa = t->axis <= 2;
	sg = t->axis == 1 || t->axis == 3 ? 1 : -1;
	/* On the ray (the other coordinate the anchor's) and past its
	 * last sample, itself on the ray or the anchor. */
	if (xa ? t->y != t->ay || t->sy != t->ay :
	    t->x != t->ax || t->sx != t->ax)
		return 0;
	pos = xa ? &t->x : &t->y;
	s = xa ? t->sx : t->sy;
	a = xa ? t->ax : t->ay;
	if (sg * (s - a) < 0)
		return 0;
	/* Every byte the forward step (PROTOCOL.md 8: the axis's two bits
	 * that, no step bit of another axis, whatever their direction
	 * bits) with the run's laser; or idle: no step bit, or a power
	 * byte. */
	m = _mm_and_si128(c, _mm_load_si128((const __m128i *)(const void *)
	    tmask[t->axis]));
	fwd = _mm_cmpeq_epi8(m, _mm_load_si128((const __m128i *)
	    (const void *)tstep[t->axis]));
	idle = _mm_or_si128(_mm_cmpeq_epi8(_mm_and_si128(c,
	    _mm_set1_epi8((char)0xa5)), _mm_setzero_si128()),
	    _mm_cmplt_epi8(c, _mm_setzero_si128()));
	le = _mm_cmpeq_epi8(_mm_and_si128(c, _mm_set1_epi8(0x10)),
	    _mm_set1_epi8(0x10));
	same = _mm_xor_si128(le, t->cut ? _mm_setzero_si128() :
	    _mm_cmpeq_epi8(c, c));
	if (_mm_movemask_epi8(_mm_or_si128(_mm_and_si128(fwd, same),
	    idle)) != 0xffff)
		return 0;
	/* The steps: a sum of bytes (popcnt is not baseline x86-64). */
	fwd = _mm_sad_epu8(_mm_and_si128(fwd, _mm_set1_epi8(1)),
	    _mm_setzero_si128());
	end = *pos + sg * (_mm_extract_epi16(fwd, 0) +
	    _mm_extract_epi16(fwd, 4));
	*pos = end;
	if (sg * (end - s) < tt)
		return 1;	/* no sample: within reach still */
	/* At most 16 steps: a sample or two at the tolerance of a render,
	 * no division. */
	do
		s += sg * tt;
	while (sg * (end - s) >= tt);
	d = sg * (s - a);	/* > 0: past the anchor */
	if ((double)d > t->tol && (double)d > t->pend)
		t->pend = (double)d;
	if (xa)
		t->sx = t->lx = s;
	else
		t->sy = t->ly = s;
	if (xa)
		t->ly = t->sy;
	else
		t->lx = t->sx;
	return 1;
}
#endif

/*
 * The toolpath alone, from the position before body.  The same as
 * puls_trace_walk1() on every byte (tested), but 16 bytes where nothing
 * happens but steps, the head staying within a sample's reach (under a
 * pixel) with the laser as it was, cost a few vector operations.
 */
static void
puls_trace_walk(struct puls_trace *t, const uint8_t *body, size_t len)
{
	size_t i = 0;
#ifdef __SSE2__
	int8_t sx[16], sy[16];
	int64_t tt = (int64_t)ceil(fmin(t->tol, 1e9));	/* llabs(d) >= tol */
	__m128i c, ox, oy;
	unsigned ev;
	int e;

	while (len - i >= 16) {
		if (!t->run || llabs(t->x - t->sx) >= tt ||
		    llabs(t->y - t->sy) >= tt) {
			puls_trace_walk1(t, body[i++]);	/* no open run yet */
			continue;
		}
		c = _mm_loadu_si128((const __m128i *)(const void *)(body + i));
		if (puls_walk_ray16(t, c, tt)) {
			i += 16;
			continue;
		}
		ev = puls_walk_events16(t, c, tt, &ox, &oy);
		_mm_storeu_si128((__m128i *)(void *)sx, ox);
		_mm_storeu_si128((__m128i *)(void *)sy, oy);
		if (ev == 0) {
			t->x += sx[15];
			t->y += sy[15];
			i += 16;
			continue;
		}
		e = __builtin_ctz(ev);
		if (e > 0) {
			t->x += sx[e - 1];
			t->y += sy[e - 1];
		}
		puls_trace_walk1(t, body[i + (size_t)e]);
		i += (size_t)e + 1;
	}
#endif
	for (; i < len; i++)
		puls_trace_walk1(t, body[i]);
}

void
puls_trace_add(struct puls_trace *t, const uint8_t *body, size_t len)
{
	int64_t x = t->x, y = t->y, z = t->z;

	if (!t->path) {
		puls_trace_scan(t, body, len);
		return;
	}
	/* The numbers from the scan, then the walk for the drawing only:
	 * it ends where the scan did. */
	t->path = 0;
	puls_trace_scan(t, body, len);
	t->path = 1;
	t->x = x;
	t->y = y;
	t->z = z;
	puls_trace_walk(t, body, len);
}

void
puls_trace_finish(struct puls_trace *t)
{
	if (t->path && t->run) {
		puls_trace_vertex(t, t->x, t->y, t->cut);
		t->run = 0;
	}
}

void
puls_trace_raw(struct puls_trace *t)
{
	t->raw = 1;
}

/* The numbers of b, which started at a's end, added to a. */
static void
puls_trace_merge_counts(struct puls_trace *a, const struct puls_trace *b)
{
	int64_t o[3] = { a->x, a->y, a->z };
	int k;

	for (k = 0; k < 3; k++) {
		if (b->min[k] + o[k] < a->min[k])
			a->min[k] = b->min[k] + o[k];
		if (b->max[k] + o[k] > a->max[k])
			a->max[k] = b->max[k] + o[k];
		a->moves[k] += b->moves[k];
	}
	a->x += b->x;
	a->y += b->y;
	a->z += b->z;
	a->ticks += b->ticks;
	a->le_ticks += b->le_ticks;
	a->lp += b->lp;
	for (k = 0; k < 2; k++) {
		a->ortho[k] += b->ortho[k];
		a->diag[k] += b->diag[k];
	}
}

/* b's vertices v, offset to a's end (ox, oy), drawn on from a through
 * its de-duplication as if walked here.  first: b's first vertex opens
 * its run where a's closed, already there. */
static void
puls_trace_merge_vertices(struct puls_trace *a, const struct puls_vertex *v,
    size_t n, int first, int64_t ox, int64_t oy)
{
	int64_t x, y;
	size_t i;

	for (i = 0; i < n; i++) {
		x = v[i].x + ox;
		y = v[i].y + oy;
		if (i == 0 && first && a->have_last && x == a->lastx &&
		    y == a->lasty)
			continue;
		puls_trace_vertex(a, x, y, v[i].cut);
	}
}

int
puls_trace_merge(struct puls_trace *a, const struct puls_trace *b)
{
	struct puls_vertex buf[4096];	/* 64 KiB of spilt vertices at a time */
	int64_t ox = a->x, oy = a->y;
	size_t i, n;

	if (b->oom || !b->raw || b->run || a->raw)
		return -1;
	if (b->spill != NULL && (fflush(b->spill) == EOF ||
	    fseek(b->spill, 0, SEEK_SET) == -1))
		return -1;
	puls_trace_finish(a);	/* a's run ends at the join */
	puls_trace_merge_counts(a, b);
	if (!a->path)
		return 0;
	for (i = 0; i < b->nzm; i++)
		puls_trace_zmark_add(a, b->zm[i].x + ox, b->zm[i].y + oy,
		    (uint32_t)b->zm[i].down, (uint32_t)b->zm[i].up);
	for (i = 0; i < b->nspill; i += n) {
		n = b->nspill - i < 4096 ? b->nspill - i : 4096;
		if (fread(buf, sizeof(*buf), n, b->spill) != n) {
			a->oom = 1;	/* the toolpath is incomplete */
			return 0;
		}
		puls_trace_merge_vertices(a, buf, n, i == 0, ox, oy);
	}
	puls_trace_merge_vertices(a, b->v, b->nv, b->nspill == 0, ox, oy);
	return 0;
}

void
puls_trace_stats(const struct puls_trace *t, struct puls_stats *st)
{
	/* moves = P + N and x = P - N, per axis. */
	st->xp = (uint64_t)((int64_t)t->moves[0] + t->x) / 2;
	st->xn = (uint64_t)((int64_t)t->moves[0] - t->x) / 2;
	st->yp = (uint64_t)((int64_t)t->moves[1] + t->y) / 2;
	st->yn = (uint64_t)((int64_t)t->moves[1] - t->y) / 2;
	st->zp = (uint64_t)((int64_t)t->moves[2] + t->z) / 2;
	st->zn = (uint64_t)((int64_t)t->moves[2] - t->z) / 2;
	st->le = t->le_ticks;
	st->lp = t->lp;
}

double
puls_trace_travel_mm(const struct puls_trace *t)
{
	return ((double)t->ortho[0] + (double)t->diag[0] * M_SQRT2) *
	    PULS_XY_MM;
}

double
puls_trace_cut_mm(const struct puls_trace *t)
{
	return ((double)t->ortho[1] + (double)t->diag[1] * M_SQRT2) *
	    PULS_XY_MM;
}

cJSON *
puls_trace_json(const struct puls_trace *t, uint32_t stfr)
{
	static const char *const axes[] = { "X", "Y", "Z" };
	cJSON *o, *a;
	double mm;
	int i;

	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	for (i = 0; i < 3; i++) {
		mm = i < 2 ? PULS_XY_MM : PULS_Z_MM;
		if ((a = cJSON_AddObjectToObject(o, axes[i])) == NULL ||
		    cJSON_AddNumberToObject(a, "min", (double)t->min[i]) ==
		    NULL ||
		    cJSON_AddNumberToObject(a, "max", (double)t->max[i]) ==
		    NULL ||
		    cJSON_AddNumberToObject(a, "min_mm",
		    (double)t->min[i] * mm) == NULL ||
		    cJSON_AddNumberToObject(a, "max_mm",
		    (double)t->max[i] * mm) == NULL)
			goto fail;
	}
	if ((stfr > 0 ? cJSON_AddNumberToObject(o, "laser_on_s",
	    (double)t->le_ticks / stfr) :
	    cJSON_AddNullToObject(o, "laser_on_s")) == NULL ||
	    cJSON_AddNumberToObject(o, "travel_mm",
	    puls_trace_travel_mm(t)) == NULL ||
	    cJSON_AddNumberToObject(o, "cut_mm", puls_trace_cut_mm(t)) == NULL)
		goto fail;
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

