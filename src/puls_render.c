/*
 * puls_render: see puls_render.h.
 *
 * The trace and its toolpath: puls_trace.c.
 *
 * Drawing assumptions, stated in the picture: the job starts at the bed's
 * top-left corner, +X is right, +Y is down (towards the front), and the
 * bed is 495 x 279 mm.  The pulse file only knows relative steps.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cairo.h>
#include <cairo-svg.h>

#include "puls_render.h"

#define PULS_RENDER_PAD		24	/* px around the drawing */
#define PULS_RENDER_TOP		30	/* px for the title */
#define PULS_RENDER_BOTTOM	56	/* px for the scale and legend */

/* --- drawing --- */

struct puls_view {
	double		x0, y0;		/* mm at the drawing's top-left */
	double		scale;		/* px per mm */
	double		ox, oy;		/* px of (x0, y0) */
	int		width, height;	/* px */
};

double
puls_render_steps_per_px(int width)
{
	double w = width - 2 * PULS_RENDER_PAD;

	if (w < 1)
		w = 1;
	return (PULS_BED_W + 20) / w / PULS_XY_MM;
}

static void
puls_view_px(const struct puls_view *v, double xmm, double ymm, double *px,
    double *py)
{
	*px = v->ox + (xmm - v->x0) * v->scale;
	*py = v->oy + (ymm - v->y0) * v->scale;
}

static void
puls_view_fit(struct puls_view *v, const struct puls_trace *t, int width)
{
	double x0, x1, y0, y1, sw, sh, avail_w, avail_h;

	/* The bed and the job, with a margin of 10 mm. */
	x0 = fmin(0, (double)t->min[0] * PULS_XY_MM) - 10;
	x1 = fmax(PULS_BED_W, (double)t->max[0] * PULS_XY_MM) + 10;
	y0 = fmin(0, (double)t->min[1] * PULS_XY_MM) - 10;
	y1 = fmax(PULS_BED_H, (double)t->max[1] * PULS_XY_MM) + 10;
	avail_w = width - 2 * PULS_RENDER_PAD;
	/* A job far off the bed must not make a picture miles high. */
	avail_h = 3.0 * width;
	sw = avail_w / (x1 - x0);
	sh = avail_h / (y1 - y0);
	v->scale = fmin(sw, sh);
	v->x0 = x0;
	v->y0 = y0;
	v->width = width;
	v->ox = (width - (x1 - x0) * v->scale) / 2;
	v->oy = PULS_RENDER_TOP;
	v->height = (int)ceil((y1 - y0) * v->scale) + PULS_RENDER_TOP +
	    PULS_RENDER_BOTTOM;
}

static void
puls_draw_text(cairo_t *cr, double x, double y, double size, const char *s)
{
	cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
	    CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
	cairo_move_to(cr, x, y);
	cairo_show_text(cr, s);
}

static void
puls_draw_bed(cairo_t *cr, const struct puls_view *v)
{
	double x, y, x1, y1;

	puls_view_px(v, 0, 0, &x, &y);
	puls_view_px(v, PULS_BED_W, PULS_BED_H, &x1, &y1);
	cairo_rectangle(cr, x, y, x1 - x, y1 - y);
	cairo_set_source_rgb(cr, 0.96, 0.95, 0.92);
	cairo_fill_preserve(cr);
	cairo_set_source_rgb(cr, 0.45, 0.45, 0.45);
	cairo_set_line_width(cr, 1);
	cairo_stroke(cr);
	cairo_set_source_rgb(cr, 0.45, 0.45, 0.45);
	puls_draw_text(cr, x + 4, y1 - 5, 10,
	    "bed 495 x 279 mm (assumed); job starts at the top-left corner");
	/* The start: a small cross. */
	cairo_set_source_rgb(cr, 0, 0, 0);
	cairo_move_to(cr, x - 6, y);
	cairo_line_to(cr, x + 6, y);
	cairo_move_to(cr, x, y - 6);
	cairo_line_to(cr, x, y + 6);
	cairo_stroke(cr);
}

static void
puls_draw_style(cairo_t *cr, int cut)
{
	static const double dash[] = { 4, 3 };

	if (cut) {
		cairo_set_source_rgb(cr, 0.85, 0.1, 0.1);
		cairo_set_line_width(cr, 1.6);
		cairo_set_dash(cr, NULL, 0, 0);
	} else {
		cairo_set_source_rgba(cr, 0.15, 0.35, 0.85, 0.8);
		cairo_set_line_width(cr, 0.8);
		cairo_set_dash(cr, dash, 2, 0);
	}
}

/*
 * A pen that strokes what it has every PULS_RENDER_FLUSH vertices, so
 * cairo never holds (or builds stroke polygons for) a path longer than
 * that: its memory was about 600 bytes a vertex, linear in the job.  A
 * sub-path cut at a flush goes on with the dash offset it had reached
 * (cairo restarts the dashes at every sub-path), and the round caps at
 * the cut are the round join it would have had.
 */
#define PULS_RENDER_FLUSH	1024	/* vertices per stroke */

struct puls_pen {
	cairo_t		*cr;
	size_t		 n;		/* line_to since the last stroke */
	double		 x, y;		/* px, the pen */
	double		 len;		/* px along the open sub-path */
	double		 off;		/* px, dash offset of the first one */
	int		 open;		/* a sub-path is open */
	int		 dashed;
	int		 used;		/* something was drawn */
	int		 whole;		/* one stroke at the end (SVG) */
};

static void
puls_pen_stroke(struct puls_pen *p, double off)
{
	static const double dash[] = { 4, 3 };

	if (p->dashed)
		cairo_set_dash(p->cr, dash, 2, off);
	cairo_stroke(p->cr);
	p->n = 0;
}

static void
puls_pen_move(struct puls_pen *p, double x, double y)
{
	/* A continued sub-path, dashed from its offset, is stroked alone. */
	if (!p->whole && (p->n >= PULS_RENDER_FLUSH ||
	    (p->off != 0 && p->n > 0)))
		puls_pen_stroke(p, p->off);
	p->off = 0;
	cairo_move_to(p->cr, x, y);
	p->x = x;
	p->y = y;
	p->len = 0;
	p->open = 1;
}

static void
puls_pen_line(struct puls_pen *p, double x, double y)
{
	cairo_line_to(p->cr, x, y);
	p->used = 1;
	p->len += hypot(x - p->x, y - p->y);
	p->x = x;
	p->y = y;
	if (++p->n < PULS_RENDER_FLUSH || p->whole)
		return;
	puls_pen_stroke(p, p->off);
	p->off = p->len;
	cairo_move_to(p->cr, x, y);
}

static void
puls_pen_end(struct puls_pen *p)
{
	if (p->n > 0)
		puls_pen_stroke(p, p->off);
	cairo_new_path(p->cr);
	p->open = 0;
}

/* A triangle pointing down (lens down) or up at (x, y). */
static void
puls_draw_ztriangle(cairo_t *cr, double x, double y, int down)
{
	double s = down ? 1 : -1;

	cairo_move_to(cr, x - 5, y - 4 * s);
	cairo_line_to(cr, x + 5, y - 4 * s);
	cairo_line_to(cr, x, y + 5 * s);
	cairo_close_path(cr);
}

static void
puls_draw_zmarks(cairo_t *cr, const struct puls_view *v,
    const struct puls_trace *t)
{
	double x, y;
	size_t i;

	cairo_set_line_width(cr, 1);
	for (i = 0; i < t->nzm; i++) {
		puls_view_px(v, t->zm[i].x * PULS_XY_MM,
		    t->zm[i].y * PULS_XY_MM, &x, &y);
		if (t->zm[i].down > 0)
			puls_draw_ztriangle(cr, x - (t->zm[i].up ? 5 : 0), y,
			    1);
		if (t->zm[i].up > 0)
			puls_draw_ztriangle(cr, x + (t->zm[i].down ? 5 : 0),
			    y, 0);
		cairo_set_source_rgba(cr, 0.1, 0.6, 0.2, 0.5);
		cairo_fill_preserve(cr);
		cairo_set_source_rgb(cr, 0.05, 0.4, 0.1);
		cairo_stroke(cr);
	}
}

/* A bar of a round length, about a fifth of the width, in 5 parts. */
static void
puls_draw_scale(cairo_t *cr, const struct puls_view *v)
{
	static const double nice[] = { 1, 2, 5, 10, 20, 50, 100, 200, 500,
	    1000, 2000, 5000, 10000 };
	double len = nice[0], x, y, w;
	char label[32];
	size_t i;
	int k;

	for (i = 0; i < sizeof(nice) / sizeof(nice[0]); i++)
		if (nice[i] * v->scale <= v->width / 5.0)
			len = nice[i];
	w = len * v->scale;
	x = PULS_RENDER_PAD;
	y = v->height - PULS_RENDER_BOTTOM + 20;
	cairo_set_line_width(cr, 1);
	for (k = 0; k < 5; k++) {
		cairo_rectangle(cr, x + k * w / 5, y, w / 5, 6);
		if (k % 2 == 0) {
			cairo_set_source_rgb(cr, 0, 0, 0);
			cairo_fill_preserve(cr);
		}
		cairo_set_source_rgb(cr, 0, 0, 0);
		cairo_stroke(cr);
	}
	puls_draw_text(cr, x, y + 20, 11, "0");
	snprintf(label, sizeof(label), "%g mm", len);
	puls_draw_text(cr, x + w - 10, y + 20, 11, label);
}

static void
puls_draw_legend(cairo_t *cr, const struct puls_view *v)
{
	double x = v->width - PULS_RENDER_PAD - 250;
	double y = v->height - PULS_RENDER_BOTTOM + 23;

	puls_draw_style(cr, 1);
	cairo_move_to(cr, x, y);
	cairo_line_to(cr, x + 24, y);
	cairo_stroke(cr);
	cairo_set_source_rgb(cr, 0, 0, 0);
	puls_draw_text(cr, x + 30, y + 4, 11, "cut");
	x += 70;
	puls_draw_style(cr, 0);
	cairo_move_to(cr, x, y);
	cairo_line_to(cr, x + 24, y);
	cairo_stroke(cr);
	cairo_set_dash(cr, NULL, 0, 0);
	cairo_set_source_rgb(cr, 0, 0, 0);
	puls_draw_text(cr, x + 30, y + 4, 11, "travel");
	x += 90;
	puls_draw_ztriangle(cr, x + 6, y, 1);
	cairo_set_source_rgba(cr, 0.1, 0.6, 0.2, 0.5);
	cairo_fill_preserve(cr);
	cairo_set_source_rgb(cr, 0.05, 0.4, 0.1);
	cairo_stroke(cr);
	cairo_set_source_rgb(cr, 0, 0, 0);
	puls_draw_text(cr, x + 16, y + 4, 11, "Z move");
}

static cairo_status_t
puls_render_stdout(void *closure, const unsigned char *data,
    unsigned int len)
{
	(void)closure;
	return fwrite(data, 1, len, stdout) == len ? CAIRO_STATUS_SUCCESS :
	    CAIRO_STATUS_WRITE_ERROR;
}

/*
 * The picture being drawn: the bed on the surface, then each style on a
 * layer of its own, opaque (travel composited translucent once at the
 * end, cuts over it).  A segment is drawn in its end's style unless the
 * end starts a sub-path: the style changed or the pen lifted over a
 * segment drawn before (puls_trace.c).
 */
struct puls_canvas {
	struct puls_view	 v;
	cairo_surface_t		*sf;
	cairo_t			*cr;
	cairo_surface_t		*lsf[2];	/* layers: travel, cut */
	struct puls_pen		 pen[2];
	struct puls_vertex	 prev;
	int			 have_prev;
	size_t			 nv;		/* vertices fed, up to 2 */
	int			 svg, tostdout;
	cairo_status_t		 st;
	const char		*out;		/* a path, "-", or a name */
	puls_sink_fn		 sink;		/* PNG to it, not to out */
	void			*sink_arg;
};

static cairo_status_t
puls_render_sink(void *closure, const unsigned char *data, unsigned int len)
{
	struct puls_canvas *c = closure;

	return c->sink(data, len, c->sink_arg) == 0 ? CAIRO_STATUS_SUCCESS :
	    CAIRO_STATUS_WRITE_ERROR;
}

static void
puls_canvas_free(struct puls_canvas *c)
{
	int i;

	/* The SVG surface first: it holds the layers it painted. */
	if (c->cr != NULL)
		cairo_destroy(c->cr);
	if (c->sf != NULL)
		cairo_surface_destroy(c->sf);
	for (i = 0; i < 2; i++) {
		if (c->pen[i].cr != NULL)
			cairo_destroy(c->pen[i].cr);
		if (c->lsf[i] != NULL)
			cairo_surface_destroy(c->lsf[i]);
	}
	free(c);
}

/* A layer the size of the picture: pixels for PNG, vectors for SVG. */
static int
puls_canvas_layer(struct puls_canvas *c, int cut)
{
	cairo_t *cr;

	/* Coverage only, a byte a pixel; the colour comes with it. */
	c->lsf[cut] = cairo_image_surface_create(CAIRO_FORMAT_A8,
	    c->v.width, c->v.height);
	if ((c->st = cairo_surface_status(c->lsf[cut])) != CAIRO_STATUS_SUCCESS)
		return -1;
	cr = c->pen[cut].cr = cairo_create(c->lsf[cut]);
	c->pen[cut].dashed = !cut;
	cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
	cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
	puls_draw_style(cr, cut);
	cairo_set_source_rgb(cr, cut ? 0.85 : 0.15, cut ? 0.1 : 0.35,
	    cut ? 0.1 : 0.85);
	return (c->st = cairo_status(cr)) == CAIRO_STATUS_SUCCESS ? 0 : -1;
}

static void
puls_canvas_err(struct puls_canvas *c, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s", c->out,
	    c->st == CAIRO_STATUS_WRITE_ERROR && errno != 0 ?
	    strerror(errno) : cairo_status_to_string(c->st));
}

struct puls_canvas *
puls_canvas_open(const struct puls_trace *ext, const char *out, int svg,
    int width, char *err, size_t errlen)
{
	struct puls_canvas *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory for the picture");
		return NULL;
	}
	c->out = out;
	c->svg = svg;
	c->tostdout = strcmp(out, "-") == 0;
	puls_view_fit(&c->v, ext, width);
	if (svg) {
		c->sf = c->tostdout ? cairo_svg_surface_create_for_stream(
		    puls_render_stdout, NULL, c->v.width, c->v.height) :
		    cairo_svg_surface_create(out, c->v.width, c->v.height);
		cairo_svg_surface_set_document_unit(c->sf, CAIRO_SVG_UNIT_PX);
	} else
		c->sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24,
		    c->v.width, c->v.height);
	if ((c->st = cairo_surface_status(c->sf)) != CAIRO_STATUS_SUCCESS)
		goto fail;
	c->cr = cairo_create(c->sf);
	if (!svg && (puls_canvas_layer(c, 0) == -1 ||
	    puls_canvas_layer(c, 1) == -1))
		goto fail;
	cairo_set_source_rgb(c->cr, 1, 1, 1);
	cairo_paint(c->cr);
	puls_draw_bed(c->cr, &c->v);
	return c;
fail:
	puls_canvas_err(c, err, errlen);
	puls_canvas_free(c);
	return NULL;
}

struct puls_canvas *
puls_canvas_open_sink(const struct puls_trace *ext, puls_sink_fn sink,
    void *arg, const char *name, int width, char *err, size_t errlen)
{
	struct puls_canvas *c;

	if ((c = puls_canvas_open(ext, name, 0, width, err, errlen)) == NULL)
		return NULL;
	c->tostdout = 0;	/* name only names it, even "-" */
	c->sink = sink;
	c->sink_arg = arg;
	return c;
}

void
puls_canvas_sink(void *arg, const struct puls_vertex *v, size_t n)
{
	struct puls_canvas *c = arg;
	struct puls_pen *p;
	double x, y;
	size_t i;
	int cut;

	for (i = 0; i < n; i++) {
		cut = v[i].cut != 0;
		/* A sub-path of either style ends unless it goes on here. */
		c->pen[!cut].open = 0;
		if (!c->have_prev || v[i].move)
			c->pen[cut].open = 0;
		else {
			p = &c->pen[cut];
			if (!p->open) {
				puls_view_px(&c->v, c->prev.x * PULS_XY_MM,
				    c->prev.y * PULS_XY_MM, &x, &y);
				puls_pen_move(p, x, y);
			}
			puls_view_px(&c->v, v[i].x * PULS_XY_MM,
			    v[i].y * PULS_XY_MM, &x, &y);
			puls_pen_line(p, x, y);
		}
		c->prev = v[i];
		c->have_prev = 1;
	}
	c->nv = c->nv + n > 2 ? 2 : c->nv + n;
}

/* The layers on the picture, the marks and legend over them. */
static void
puls_canvas_draw(struct puls_canvas *c, const struct puls_trace *t,
    const char *title)
{
	cairo_t *cr = c->cr;
	int i;

	/* A toolpath rounds the marks and legend too (as it always did). */
	if (c->nv >= 2) {
		cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
		cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
	}
	for (i = 0; i < 2 && !c->svg; i++) {
		puls_pen_end(&c->pen[i]);
		if (!c->pen[i].used)
			continue;	/* an empty layer: nothing to paint */
		cairo_surface_flush(c->lsf[i]);
		cairo_set_source_rgba(cr, i ? 0.85 : 0.15, i ? 0.1 : 0.35,
		    i ? 0.1 : 0.85, i ? 1 : 0.8);
		cairo_mask_surface(cr, c->lsf[i], 0, 0);
	}
	puls_draw_zmarks(cr, &c->v, t);
	puls_draw_scale(cr, &c->v);
	puls_draw_legend(cr, &c->v);
	if (title != NULL) {
		cairo_set_source_rgb(cr, 0, 0, 0);
		puls_draw_text(cr, PULS_RENDER_PAD, 19, 12, title);
	}
}

void
puls_canvas_abort(struct puls_canvas *c)
{
	int file = c->svg && !c->tostdout;
	const char *out = c->out;

	puls_canvas_free(c);
	if (file)
		(void)unlink(out);	/* cairo opened it: no half picture */
}

int
puls_canvas_close(struct puls_canvas *c, const struct puls_trace *t,
    const char *title, char *err, size_t errlen)
{
	int rc = -1;

	if (t->oom) {
		snprintf(err, errlen, "out of memory for the toolpath");
		puls_canvas_free(c);
		return -1;
	}
	puls_canvas_draw(c, t, title);
	if ((c->st = cairo_status(c->cr)) != CAIRO_STATUS_SUCCESS)
		goto done;
	if (!c->svg) {
		if (c->sink != NULL)
			c->st = cairo_surface_write_to_png_stream(c->sf,
			    puls_render_sink, c);
		else
			c->st = c->tostdout ?
			    cairo_surface_write_to_png_stream(c->sf,
			    puls_render_stdout, NULL) :
			    cairo_surface_write_to_png(c->sf, c->out);
		if (c->st != CAIRO_STATUS_SUCCESS)
			goto done;
	}
	cairo_surface_finish(c->sf);	/* the SVG is written here */
	if ((c->st = cairo_surface_status(c->sf)) != CAIRO_STATUS_SUCCESS)
		goto done;
	if (c->tostdout && fflush(stdout) == EOF) {
		c->st = CAIRO_STATUS_WRITE_ERROR;
		goto done;
	}
	rc = 0;
done:
	if (rc == -1)
		puls_canvas_err(c, err, errlen);
	puls_canvas_free(c);
	return rc;
}

/*
 * SVG: the kept toolpath, one stroke per style as it always was (travel
 * first): cairo writes the path out as text, no stroke is rasterised,
 * and a group to composite parts leaks in cairo's SVG surface.  A
 * sub-path starts where the style changes or the pen lifted.
 */
static void
puls_draw_kept(cairo_t *cr, const struct puls_view *v,
    const struct puls_trace *t, int cut)
{
	struct puls_pen p;
	double x, y;
	size_t i;

	if (t->nv < 2)
		return;
	memset(&p, 0, sizeof(p));
	p.cr = cr;
	p.dashed = !cut;
	p.whole = 1;
	cairo_save(cr);
	cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
	cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
	puls_draw_style(cr, cut);
	for (i = 1; i < t->nv; i++) {
		if (t->v[i].move || (t->v[i].cut != 0) != cut) {
			p.open = 0;
			continue;
		}
		if (!p.open) {
			puls_view_px(v, t->v[i - 1].x * PULS_XY_MM,
			    t->v[i - 1].y * PULS_XY_MM, &x, &y);
			puls_pen_move(&p, x, y);
		}
		puls_view_px(v, t->v[i].x * PULS_XY_MM,
		    t->v[i].y * PULS_XY_MM, &x, &y);
		puls_pen_line(&p, x, y);
	}
	puls_pen_end(&p);
	cairo_restore(cr);
}

int
puls_render(const struct puls_trace *t, const char *out, int svg, int width,
    const char *title, char *err, size_t errlen)
{
	struct puls_canvas *c;

	if (t->oom) {
		snprintf(err, errlen, "out of memory for the toolpath");
		return -1;
	}
	if ((c = puls_canvas_open(t, out, svg, width, err, errlen)) == NULL)
		return -1;
	if (svg) {
		puls_draw_kept(c->cr, &c->v, t, 0);
		puls_draw_kept(c->cr, &c->v, t, 1);
		c->nv = t->nv < 2 ? t->nv : 2;
	} else
		puls_canvas_sink(c, t->v, t->nv);
	return puls_canvas_close(c, t, title, err, errlen);
}
