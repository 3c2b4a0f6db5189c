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
	if (p->n >= PULS_RENDER_FLUSH || (p->off != 0 && p->n > 0))
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
	p->len += hypot(x - p->x, y - p->y);
	p->x = x;
	p->y = y;
	if (++p->n < PULS_RENDER_FLUSH)
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

/*
 * Each style on a layer of its own, opaque: travel first, composited
 * translucent once, cuts over it.  A sub-path starts where the style
 * changes or the pen lifted over a segment drawn before (puls_trace.c).
 */
static void
puls_draw_style_path(cairo_t *cr, const struct puls_view *v,
    const struct puls_trace *t, int cut)
{
	struct puls_pen p;
	double x, y;
	size_t i;
	int open = 0;

	memset(&p, 0, sizeof(p));
	p.cr = cr;
	p.dashed = !cut;
	cairo_push_group(cr);
	puls_draw_style(cr, cut);
	cairo_set_source_rgb(cr, cut ? 0.85 : 0.15, cut ? 0.1 : 0.35,
	    cut ? 0.1 : 0.85);
	for (i = 1; i < t->nv; i++) {
		if (t->v[i].move || (t->v[i].cut != 0) != cut) {
			open = 0;
			continue;
		}
		if (!open) {
			puls_view_px(v, t->v[i - 1].x * PULS_XY_MM,
			    t->v[i - 1].y * PULS_XY_MM, &x, &y);
			puls_pen_move(&p, x, y);
			open = 1;
		}
		puls_view_px(v, t->v[i].x * PULS_XY_MM,
		    t->v[i].y * PULS_XY_MM, &x, &y);
		puls_pen_line(&p, x, y);
	}
	puls_pen_end(&p);
	cairo_pop_group_to_source(cr);
	cairo_paint_with_alpha(cr, cut ? 1 : 0.8);
}

static void
puls_draw_path(cairo_t *cr, const struct puls_view *v,
    const struct puls_trace *t)
{
	if (t->nv < 2)
		return;
	cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
	cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
	puls_draw_style_path(cr, v, t, 0);
	puls_draw_style_path(cr, v, t, 1);
	cairo_set_dash(cr, NULL, 0, 0);
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

static void
puls_draw(cairo_t *cr, const struct puls_view *v, const struct puls_trace *t,
    const char *title)
{
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	puls_draw_bed(cr, v);
	puls_draw_path(cr, v, t);
	puls_draw_zmarks(cr, v, t);
	puls_draw_scale(cr, v);
	puls_draw_legend(cr, v);
	if (title != NULL) {
		cairo_set_source_rgb(cr, 0, 0, 0);
		puls_draw_text(cr, PULS_RENDER_PAD, 19, 12, title);
	}
}

static cairo_status_t
puls_render_stdout(void *closure, const unsigned char *data,
    unsigned int len)
{
	(void)closure;
	return fwrite(data, 1, len, stdout) == len ? CAIRO_STATUS_SUCCESS :
	    CAIRO_STATUS_WRITE_ERROR;
}

int
puls_render(const struct puls_trace *t, const char *out, int svg, int width,
    const char *title, char *err, size_t errlen)
{
	cairo_surface_t *sf = NULL;
	cairo_status_t st;
	struct puls_view v;
	cairo_t *cr = NULL;
	int tostdout = strcmp(out, "-") == 0, rc = -1;

	if (t->oom) {
		snprintf(err, errlen, "out of memory for the toolpath");
		return -1;
	}
	puls_view_fit(&v, t, width);
	if (svg) {
		sf = tostdout ? cairo_svg_surface_create_for_stream(
		    puls_render_stdout, NULL, v.width, v.height) :
		    cairo_svg_surface_create(out, v.width, v.height);
		cairo_svg_surface_set_document_unit(sf, CAIRO_SVG_UNIT_PX);
	} else
		sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, v.width,
		    v.height);
	if ((st = cairo_surface_status(sf)) != CAIRO_STATUS_SUCCESS)
		goto done;
	cr = cairo_create(sf);
	puls_draw(cr, &v, t, title);
	if ((st = cairo_status(cr)) != CAIRO_STATUS_SUCCESS)
		goto done;
	if (!svg) {
		st = tostdout ? cairo_surface_write_to_png_stream(sf,
		    puls_render_stdout, NULL) :
		    cairo_surface_write_to_png(sf, out);
		if (st != CAIRO_STATUS_SUCCESS)
			goto done;
	}
	cairo_surface_finish(sf);	/* the SVG is written here */
	if ((st = cairo_surface_status(sf)) != CAIRO_STATUS_SUCCESS)
		goto done;
	if (tostdout && fflush(stdout) == EOF) {
		st = CAIRO_STATUS_WRITE_ERROR;
		goto done;
	}
	rc = 0;
done:
	if (rc == -1)
		snprintf(err, errlen, "%s: %s", out,
		    st == CAIRO_STATUS_WRITE_ERROR && errno != 0 ?
		    strerror(errno) : cairo_status_to_string(st));
	if (cr != NULL)
		cairo_destroy(cr);
	if (sf != NULL)
		cairo_surface_destroy(sf);
	return rc;
}
