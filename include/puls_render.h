/*
 * puls_render: the gf-puls tool's sequential decode of a pulse body (head
 * position tick by tick: extents, laser-on time, distances, and a
 * simplified toolpath; puls_trace.c) and its drawing with cairo
 * (puls_render.c).  The daemon does not need positions: it counts with
 * puls_stats_add(), which stays vectorised.
 */
#ifndef GFE_PULS_RENDER_H
#define GFE_PULS_RENDER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cjson/cJSON.h>

#include "puls.h"

#define PULS_XY_MM	(0.15 / 8)	/* mm per X/Y step: microstep 8 */
#define PULS_Z_MM	(0.70612 / 2)	/* mm per Z step: microstep 2 */
#define PULS_BED_W	495.0		/* mm, assumed Glowforge bed */
#define PULS_BED_H	279.0		/* mm */

/* The toolpath: sub-paths of vertices.  The head never jumps, but a
 * segment already drawn (the same pixels, the same style) is left out,
 * and the pen lifts over it: retraced moves cost nothing. */
struct puls_vertex {
	int32_t		x, y;		/* steps */
	int32_t		cut;		/* laser on from the previous vertex */
	int32_t		move;		/* starts a sub-path: nothing before */
};

/* A segment seen, in pixel cells, laser state in the low bit of x0. */
struct puls_seg {
	int32_t		x0, y0, x1, y1;
};

struct puls_zmark {
	int32_t		x, y;		/* steps, where Z moved */
	int32_t		down, up;	/* Z steps each way there */
};

/* Takes n vertices in order (the trace then forgets them). */
typedef void	puls_vertex_sink(void *arg, const struct puls_vertex *v,
		    size_t n);
struct puls_trace;
/* The kept vertices reached the budget (puls_trace_keep()): set a sink
 * now, or not; -1 stops the toolpath (oom). */
typedef int	puls_trace_full(void *arg, struct puls_trace *t);

struct puls_trace {
	int64_t		 x, y, z;	/* steps, from the start */
	int64_t		 min[3], max[3];	/* steps, X Y Z */
	uint64_t	 ticks;
	uint64_t	 le_ticks;	/* laser enabled */
	uint64_t	 ortho[2];	/* single-axis XY steps: travel, cut */
	uint64_t	 diag[2];	/* X+Y steps in one tick: travel, cut */
	uint64_t	 moves[3];	/* ticks stepping X, Y, Z */
	uint64_t	 lp;		/* laser power setting bytes */
	/* Toolpath (only when path != 0 at init). */
	int		 path;
	double		 tol;		/* steps the drawing may stray */
	struct puls_vertex *v;
	size_t		 nv, capv;
	struct puls_zmark *zm;
	size_t		 nzm, capzm;
	int		 oom;		/* the toolpath is incomplete */
	int		 raw;		/* every vertex kept: a merged half */
	FILE		*spill;		/* raw: older vertices, unlinked file */
	size_t		 nspill;
	puls_vertex_sink *sink;		/* NULL: keep every vertex in v */
	void		*sink_arg;
	size_t		 keep;		/* vertices kept before full() */
	puls_trace_full	*full;		/* called once, without a sink */
	void		*full_arg;
	/* De-duplication of segments at pixel scale (bounded table). */
	double		 cell;		/* steps per cell: one pixel */
	struct puls_seg	*seen;		/* open addressing, PULS_SEEN_CAP */
	size_t		 nseen;
	int		 have_last;
	int		 lifted;	/* last segment skipped: pen up */
	int64_t		 lastx, lasty;	/* steps, the last vertex, kept or not */
	/* The open run of the simplification (see puls_render.c). */
	int		 run;
	int		 cut;		/* laser state of the open run */
	int		 have_dir;
	int64_t		 ax, ay;	/* anchor: the last vertex */
	int64_t		 lx, ly;	/* last sample inside the sleeve */
	int64_t		 sx, sy;	/* the last sample */
	double		 theta0, lo, hi;	/* radians, lo/hi from theta0 */
	int		 axis;		/* the aim runs along an axis: 1-4 */
	double		 pend;		/* steps: farthest sample on that ray
					 * not yet in lo/hi (0: none) */
	int		 eager;		/* every sample's angles at once */
};

/* path: record the toolpath, simplified to within tol steps; segments
 * equal at 2 * tol steps per pixel are kept once. */
void	 puls_trace_init(struct puls_trace *t, int path, double tol);
/* Any chunking gives the same result.  Without a path this is the
 * vectorised scan (SSE2); with one, tick by tick. */
void	 puls_trace_add(struct puls_trace *t, const uint8_t *body, size_t len);
/* The same, one tick at a time: the reference the scan must equal. */
void	 puls_trace_add_scalar(struct puls_trace *t, const uint8_t *body,
	    size_t len);
/* The second half of a body walked apart (another thread), from the
 * origin: vertices kept as they come (bounded), to be merged. */
void	 puls_trace_raw(struct puls_trace *t);
/* a: the first half, b: a raw trace of the bytes right after it,
 * finished.  b's numbers are added to a's and its toolpath drawn on from
 * a's end through a's de-duplication; the drawing differs from one walk
 * only by a vertex on the path at the join.  -1: b is incomplete (too
 * many vertices, off the bed): walk its bytes into a instead. */
int	 puls_trace_merge(struct puls_trace *a, const struct puls_trace *b);
/* Vertices go to sink in batches from now on, v holding a bounded
 * few; puls_trace_flush() hands over the rest. */
void	 puls_trace_sink(struct puls_trace *t, puls_vertex_sink *sink,
	    void *arg);
void	 puls_trace_flush(struct puls_trace *t);
/* Without a sink, full() is called once when keep vertices are kept,
 * so a caller can draw them while walking only past a budget (and in
 * one pass below it).  The vertices go to the sink it may set, and v
 * shrinks back to a batch. */
void	 puls_trace_keep(struct puls_trace *t, size_t keep,
	    puls_trace_full *full, void *arg);
/* Closes the open run of the toolpath. */
void	 puls_trace_finish(struct puls_trace *t);
void	 puls_trace_free(struct puls_trace *t);
/* The counts of puls_stats_add(), from the same pass. */
void	 puls_trace_stats(const struct puls_trace *t, struct puls_stats *st);
/* {"X": {"min", "max", "min_mm", "max_mm"}, "Y", "Z", "laser_on_s",
 * "travel_mm", "cut_mm"}; stfr in ticks per second. */
cJSON	*puls_trace_json(const struct puls_trace *t, uint32_t stfr);
double	 puls_trace_travel_mm(const struct puls_trace *t);
double	 puls_trace_cut_mm(const struct puls_trace *t);

/* The steps per pixel a picture width gives, for puls_trace_init()'s tol
 * (extents unknown before the pass: the bed sets the scale). */
double	 puls_render_steps_per_px(int width);
/* Draws the toolpath, width pixels wide, as PNG or SVG to out ("-":
 * stdout); 0, or -1 and the reason in err. */
int	 puls_render(const struct puls_trace *t, const char *out, int svg,
	    int width, const char *title, char *err, size_t errlen);
/* The same, the vertices streamed: open with a trace holding the
 * extents (a first pass), feed puls_canvas_sink() (a puls_vertex_sink),
 * close with the finished trace (Z marks, oom).  Memory is the picture's,
 * whatever the number of vertices.  close frees c; NULL/-1: err. */
struct puls_canvas;
struct puls_canvas *puls_canvas_open(const struct puls_trace *ext,
	    const char *out, int svg, int width, char *err, size_t errlen);
void	 puls_canvas_sink(void *c, const struct puls_vertex *v, size_t n);
int	 puls_canvas_close(struct puls_canvas *c, const struct puls_trace *t,
	    const char *title, char *err, size_t errlen);
/* A PNG canvas whose close writes the picture through sink (-1: a write
 * error, errno kept), never opening a path: for a caller that made its
 * file itself, safely (web_jobs.c).  name only names it in err.
 * puls_canvas_open() opens out as the user named it, links followed:
 * for gf-puls, the user's own path. */
struct puls_canvas *puls_canvas_open_sink(const struct puls_trace *ext,
	    puls_sink_fn sink, void *arg, const char *name, int width,
	    char *err, size_t errlen);
/* Frees c, writing nothing (an SVG file cairo opened is removed). */
void	 puls_canvas_abort(struct puls_canvas *c);

#endif
