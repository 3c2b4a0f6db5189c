/*
 * camera: see camera.h.  A shot is the reference emulator's frame file when
 * image_src_dir has one (PROTOCOL.md 7), else a frame drawn here and
 * encoded with libjpeg.  Drawing is deterministic (no randomness), so a
 * given shot always gives the same bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>

#include "camera.h"
#include "log.h"

#define CAMERA_FILE_MAX		(16 * 1024 * 1024)	/* bytes */
#define CAMERA_THICK_MAX	8	/* chars of a thickness, ".230" */
#define CAMERA_QUALITY		80
#define CAMERA_LID_W		1280
#define CAMERA_LID_H		960
#define CAMERA_HEAD_W		640
#define CAMERA_HEAD_H		480

/* An RGB frame being drawn, 3 bytes a pixel, rows top down. */
struct camera_image {
	uint8_t	*px;
	int	 w, h;
};

static void
camera_setname(char *name, size_t namelen, const char *s)
{
	if (name != NULL && namelen > 0)
		snprintf(name, namelen, "%s", s);
}

/* A thickness goes into a file name: digits and dots only, so it cannot
 * leave src_dir. */
static int
camera_thickness_ok(const char *t)
{
	size_t n;

	if (t == NULL || (n = strlen(t)) == 0 || n > CAMERA_THICK_MAX)
		return 0;
	return strspn(t, "0123456789.") == n;
}

/*
 * Reads dir/file into *out when it is a regular file of at most
 * CAMERA_FILE_MAX bytes that starts like a JPEG.  -1 otherwise: silently
 * when it does not exist (the common case), with a warning when it exists
 * but cannot serve.
 */
static int
camera_read(const char *dir, const char *file, uint8_t **out, size_t *outlen)
{
	char path[PATH_MAX];
	uint8_t *buf = NULL;
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd = -1, rv = -1;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >=
	    sizeof(path)) {
		log_warnx("%s/%s: path too long", dir, file);
		return -1;
	}
	/* O_NONBLOCK: a FIFO in the folder must not hang the shot. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		if (errno != ENOENT)
			log_warn("%s", path);
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		log_warn("%s", path);
		goto done;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < 4 ||
	    st.st_size > CAMERA_FILE_MAX) {
		log_warnx("%s: not a regular file of 4 bytes to %d MiB, ignored",
		    path, CAMERA_FILE_MAX / (1024 * 1024));
		goto done;
	}
	if ((buf = malloc((size_t)st.st_size)) == NULL) {
		log_warn("%s", path);
		goto done;
	}
	/* The file may shrink under us: what was read is what counts. */
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			log_warn("%s", path);
			goto done;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got < 4 || buf[0] != 0xff || buf[1] != 0xd8) {
		log_warnx("%s: not a JPEG file, ignored", path);
		goto done;
	}
	*out = buf;
	*outlen = got;
	buf = NULL;
	rv = 0;
done:
	free(buf);
	close(fd);
	return rv;
}

/* Tries the reference emulator's files for the shot, in order. */
static int
camera_from_dir(const char *dir, const struct camera_shot *shot,
    uint8_t **out, size_t *outlen, char *name, size_t namelen)
{
	char files[2][64];
	int i, nfiles = 0;

	if (shot->which == CAMERA_LID) {
		if (shot->homing_stage >= 1 && shot->homing_stage <= 4)
			snprintf(files[nfiles++], sizeof(files[0]),
			    "HOME_%d.jpg", shot->homing_stage);
		else {
			snprintf(files[nfiles++], sizeof(files[0]),
			    "LID_IMAGE.jpg");
			snprintf(files[nfiles++], sizeof(files[0]),
			    "HOME_4.jpg");
		}
	} else {
		if (shot->thickness == NULL)
			return -1;
		if (!camera_thickness_ok(shot->thickness)) {
			log_warnx("material thickness is not [0-9.]{1,%d}: "
			    "built-in head frame", CAMERA_THICK_MAX);
			return -1;
		}
		snprintf(files[nfiles++], sizeof(files[0]), "%s%s.jpg",
		    shot->laser_on ? "HEAD_LASER_" : "HEAD_NO_LASER_",
		    shot->thickness);
	}

	for (i = 0; i < nfiles; i++)
		if (camera_read(dir, files[i], out, outlen) == 0) {
			camera_setname(name, namelen, files[i]);
			return 0;
		}
	log_debug("no usable %s in %s", files[0], dir);
	return -1;
}

static void
camera_fill(struct camera_image *im, int x0, int y0, int x1, int y1,
    uint8_t r, uint8_t g, uint8_t b)
{
	uint8_t *p;
	int x, y;

	x0 = x0 < 0 ? 0 : x0;
	y0 = y0 < 0 ? 0 : y0;
	x1 = x1 > im->w ? im->w : x1;
	y1 = y1 > im->h ? im->h : y1;
	for (y = y0; y < y1; y++) {
		p = im->px + ((size_t)y * (size_t)im->w + (size_t)x0) * 3;
		for (x = x0; x < x1; x++) {
			*p++ = r;
			*p++ = g;
			*p++ = b;
		}
	}
}

/* 256 at mid, falling off to about 256 - drop at the ends: the lamp's and
 * the lens' vignetting, separable so a frame costs one multiply a pixel. */
static void
camera_falloff(int *f, int n, int drop)
{
	long long d, half = n / 2;
	int i;

	for (i = 0; i < n; i++) {
		d = i - half;
		f[i] = 256 - (int)(d * d * drop / (half * half));
	}
}

/*
 * The honeycomb bed: a tile of cell walls, then the tile repeated over the
 * bed.  Hexagon centres sit on two rectangular lattices, the second shifted
 * by half a tile; a pixel is on a wall where its two nearest centres are
 * about equally far.  TW x TH with TH ~ sqrt(3)*TW makes the cells regular,
 * neighbouring centres TW apart.
 */
#define CAMERA_TW	24
#define CAMERA_TH	42

static void
camera_honeycomb(uint8_t tile[CAMERA_TH][CAMERA_TW])
{
	int x, y, i, j, half, cx, cy, d, d1, d2;

	for (y = 0; y < CAMERA_TH; y++)
		for (x = 0; x < CAMERA_TW; x++) {
			d1 = d2 = INT_MAX;
			/* The centres around the tile, of both lattices. */
			for (half = 0; half <= 1; half++)
				for (j = -1; j <= 2; j++)
					for (i = -1; i <= 2; i++) {
						cx = i * CAMERA_TW +
						    half * CAMERA_TW / 2;
						cy = j * CAMERA_TH +
						    half * CAMERA_TH / 2;
						d = (x - cx) * (x - cx) +
						    (y - cy) * (y - cy);
						if (d < d1) {
							d2 = d1;
							d1 = d;
						} else if (d < d2)
							d2 = d;
					}
			/* Squared, d2 - d1 is 2·TW·(distance to the wall
			 * between the two cells): a wall about 2 px wide. */
			tile[y][x] = d2 - d1 < 2 * CAMERA_TW ? 150 : 46;
		}
}

/* Where the head is, per homing stage: homing drives it to the back-left
 * corner, so the four stages show it on its way there. */
static const struct { int hx, gy; } camera_stage_pos[5] = {
	{ 50, 45 },	/* not homing: resting mid-bed */
	{ 70, 72 },	/* 1: wherever it was left */
	{ 70, 30 },	/* 2: gantry going back */
	{ 35, 8 },	/* 3: at the back, head going left */
	{ 4, 3 },	/* 4: home */
};

static void
camera_draw_lid(struct camera_image *im, int stage)
{
	uint8_t tile[CAMERA_TH][CAMERA_TW], *p;
	int fx[CAMERA_LID_W], fy[CAMERA_LID_H];
	const int bx0 = 120, by0 = 90, bx1 = 1160, by1 = 900;
	int x, y, v, hx, gy, hw = 120, hh = 96;

	if (stage < 0 || stage > 4)
		stage = 0;
	/* The machine's dark inside, then the rails either side. */
	camera_fill(im, 0, 0, im->w, im->h, 24, 24, 27);
	camera_fill(im, bx0 - 60, by0 - 40, bx0 - 24, by1 + 40, 92, 94, 98);
	camera_fill(im, bx1 + 24, by0 - 40, bx1 + 60, by1 + 40, 92, 94, 98);

	/* The bed, lit brighter in the middle. */
	camera_honeycomb(tile);
	camera_falloff(fx, im->w, 120);
	camera_falloff(fy, im->h, 120);
	for (y = by0; y < by1; y++) {
		p = im->px + ((size_t)y * (size_t)im->w + bx0) * 3;
		for (x = bx0; x < bx1; x++) {
			v = tile[y % CAMERA_TH][x % CAMERA_TW] * fx[x] * fy[y]
			    >> 16;
			*p++ = (uint8_t)v;
			*p++ = (uint8_t)v;
			*p++ = (uint8_t)(v + 4);
		}
	}

	/* The gantry across the rails, the head riding on it. */
	gy = by0 + (by1 - by0 - hh) * camera_stage_pos[stage].gy / 100;
	hx = bx0 + (bx1 - bx0 - hw) * camera_stage_pos[stage].hx / 100;
	camera_fill(im, bx0 - 60, gy + 28, bx1 + 60, gy + 68, 168, 170, 176);
	camera_fill(im, bx0 - 60, gy + 64, bx1 + 60, gy + 68, 70, 72, 76);
	camera_fill(im, hx, gy, hx + hw, gy + hh, 30, 30, 34);
	camera_fill(im, hx + 6, gy + 6, hx + hw - 6, gy + hh - 6, 52, 52, 58);
	camera_fill(im, hx + hw / 2 - 20, gy + 14, hx + hw / 2 + 20, gy + 20,
	    210, 210, 214);
}

/* A triangle wave of period p and amplitude a around 0. */
static int
camera_tri(int t, int p, int a)
{
	t %= p;
	if (t < 0)
		t += p;
	return (t < p / 2 ? t : p - t) * 4 * a / p - a;
}

/* The same with rounded peaks, close to a sine: u(3a^2 - u^2) / 2a^2. */
static int
camera_wave(int t, int p, int a)
{
	long long u = camera_tri(t, p, a), aa = (long long)a * a;

	return a == 0 ? 0 : (int)(u * (3 * aa - u * u) / (2 * aa));
}

static void
camera_draw_head(struct camera_image *im, int laser_on)
{
	int grain[CAMERA_HEAD_W], shift[CAMERA_HEAD_H];
	int fx[CAMERA_HEAD_W], fy[CAMERA_HEAD_H];
	int x, y, g, f, dx, dy, d2, cx = im->w / 2, cy = im->h / 2;
	uint8_t *p;

	/* Birch plywood up close: grain running down the frame, wavering
	 * gently from side to side. */
	for (x = 0; x < im->w; x++)
		grain[x] = camera_wave(x, 37, 10) + camera_wave(x * 3, 101, 8) +
		    camera_tri(x, 13, 4);
	for (y = 0; y < im->h; y++)
		shift[y] = camera_wave(y, 300, 12) + camera_wave(y, 83, 2);
	camera_falloff(fx, im->w, 70);
	camera_falloff(fy, im->h, 70);
	for (y = 0; y < im->h; y++) {
		p = im->px + (size_t)y * (size_t)im->w * 3;
		for (x = 0; x < im->w; x++) {
			g = grain[(x + shift[y] + im->w) % im->w];
			f = fx[x] * fy[y] >> 8;
			*p++ = (uint8_t)((206 + g) * f >> 8);
			*p++ = (uint8_t)((170 + g) * f >> 8);
			*p++ = (uint8_t)((122 + g) * f >> 8);
		}
	}
	if (!laser_on)
		return;

	/* The measuring laser: a saturated red spot with a soft glow. */
	for (y = cy - 40; y <= cy + 40; y++) {
		p = im->px + ((size_t)y * (size_t)im->w + (size_t)(cx - 40)) * 3;
		for (x = cx - 40; x <= cx + 40; x++, p += 3) {
			dx = x - cx;
			dy = y - cy;
			d2 = dx * dx + dy * dy;
			if (d2 <= 12 * 12) {
				p[0] = 255;
				p[1] = d2 <= 2 * 2 ? 150 : 36;
				p[2] = d2 <= 2 * 2 ? 140 : 30;
			} else if (d2 < 40 * 40) {
				/* glow: 256 at the spot's edge, 0 at 40 px */
				f = (1600 - d2) * 256 / (1600 - 144);
				p[0] = (uint8_t)(p[0] + ((255 - p[0]) * f >> 8));
				p[1] = (uint8_t)(p[1] - (p[1] * f * 3 >> 10));
				p[2] = (uint8_t)(p[2] - (p[2] * f * 3 >> 10));
			}
		}
	}
}

/* libjpeg reports errors by calling exit() unless told otherwise. */
struct camera_jerr {
	struct jpeg_error_mgr	 pub;
	jmp_buf			 jb;
};

static void
camera_jpeg_error(j_common_ptr cinfo)
{
	struct camera_jerr *e = (struct camera_jerr *)(void *)cinfo->err;
	char msg[JMSG_LENGTH_MAX];

	cinfo->err->format_message(cinfo, msg);
	log_warnx("libjpeg: %s", msg);
	longjmp(e->jb, 1);
}

static void
camera_jpeg_message(j_common_ptr cinfo)
{
	char msg[JMSG_LENGTH_MAX];

	cinfo->err->format_message(cinfo, msg);
	log_debug("libjpeg: %s", msg);
}

/*
 * Encodes im into a malloc'ed JPEG.  jpeg_mem_dest's own buffer would grow
 * by reallocation, and after an error it leaves no pointer we could free;
 * so it gets one buffer, ours, at an upper bound of the output size, and
 * never grows it.  Untouched pages of it cost nothing.
 */
static int
camera_encode(const struct camera_image *im, uint8_t **out, size_t *outlen)
{
	struct jpeg_compress_struct cinfo;
	struct camera_jerr jerr;
	unsigned char *own, *buf, *shrunk;
	unsigned long size;
	JSAMPROW row;

	size = (unsigned long)im->w * (unsigned long)im->h * 3 + 65536;
	if ((own = malloc(size)) == NULL) {
		log_warn("malloc");
		return -1;
	}
	buf = own;
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = camera_jpeg_error;
	jerr.pub.output_message = camera_jpeg_message;
	if (setjmp(jerr.jb)) {
		jpeg_destroy_compress(&cinfo);
		free(own);
		return -1;
	}
	jpeg_create_compress(&cinfo);
	jpeg_mem_dest(&cinfo, &buf, &size);
	cinfo.image_width = (JDIMENSION)im->w;
	cinfo.image_height = (JDIMENSION)im->h;
	cinfo.input_components = 3;
	cinfo.in_color_space = JCS_RGB;
	jpeg_set_defaults(&cinfo);
	jpeg_set_quality(&cinfo, CAMERA_QUALITY, TRUE);
	jpeg_start_compress(&cinfo, TRUE);
	while (cinfo.next_scanline < cinfo.image_height) {
		row = im->px + (size_t)cinfo.next_scanline * (size_t)im->w * 3;
		jpeg_write_scanlines(&cinfo, &row, 1);
	}
	jpeg_finish_compress(&cinfo);
	jpeg_destroy_compress(&cinfo);

	if (buf != own)
		free(own);	/* it grew after all: buf is libjpeg's */
	else if ((shrunk = realloc(own, size)) != NULL)
		buf = shrunk;	/* else the big one serves as well */
	*out = buf;
	*outlen = size;
	return 0;
}

static int
camera_builtin(const struct camera_shot *shot, uint8_t **out, size_t *outlen,
    char *name, size_t namelen)
{
	struct camera_image im;
	char desc[64];
	int rv;

	if (shot->which == CAMERA_LID) {
		im.w = CAMERA_LID_W;
		im.h = CAMERA_LID_H;
	} else {
		im.w = CAMERA_HEAD_W;
		im.h = CAMERA_HEAD_H;
	}
	if ((im.px = malloc((size_t)im.w * (size_t)im.h * 3)) == NULL) {
		log_warn("malloc");
		return -1;
	}
	if (shot->which == CAMERA_LID) {
		camera_draw_lid(&im, shot->homing_stage);
		if (shot->homing_stage >= 1 && shot->homing_stage <= 4)
			snprintf(desc, sizeof(desc), "built-in lid (homing %d)",
			    shot->homing_stage);
		else
			snprintf(desc, sizeof(desc), "built-in lid");
	} else {
		camera_draw_head(&im, shot->laser_on);
		snprintf(desc, sizeof(desc), "built-in head (laser %s)",
		    shot->laser_on ? "on" : "off");
	}
	if ((rv = camera_encode(&im, out, outlen)) == 0)
		camera_setname(name, namelen, desc);
	free(im.px);
	return rv;
}

/*
 * The built-in frames depend on the camera, the homing stage (lid) and the
 * laser (head) only: seven distinct frames, each encoded once (7 ms and
 * 3.6 MiB while encoding, 211 KiB of JPEG) and copied from then on, a
 * fleet's thousands of shots included.  Kept for the process's life.
 */
#define CAMERA_CACHE_LID	5	/* homing stages 0 (none) .. 4 */
#define CAMERA_CACHE_HEAD	2	/* laser off, on */

struct camera_cached {
	uint8_t		*jpeg;
	size_t		 len;		/* bytes */
	char		 desc[64];
};

static struct camera_cached	 camera_cache[CAMERA_CACHE_LID +
				    CAMERA_CACHE_HEAD];
static pthread_mutex_t		 camera_cache_mtx = PTHREAD_MUTEX_INITIALIZER;

static int
camera_cached(const struct camera_shot *shot, struct camera_frame *f,
    char *name, size_t namelen)
{
	struct camera_cached *c;
	int stage = shot->homing_stage;

	if (shot->which == CAMERA_LID)
		c = &camera_cache[stage >= 1 && stage <= 4 ? stage : 0];
	else
		c = &camera_cache[CAMERA_CACHE_LID + (shot->laser_on ? 1 : 0)];
	/* Threads may share it (the tests); the loop alone never waits. */
	pthread_mutex_lock(&camera_cache_mtx);
	if (c->jpeg == NULL && camera_builtin(shot, &c->jpeg, &c->len,
	    c->desc, sizeof(c->desc)) == -1) {
		pthread_mutex_unlock(&camera_cache_mtx);
		return -1;
	}
	pthread_mutex_unlock(&camera_cache_mtx);
	/* Never written again once set: readers need no lock. */
	f->data = c->jpeg;
	f->len = c->len;
	camera_setname(name, namelen, c->desc);
	return 0;
}

void
camera_frame_free(struct camera_frame *f)
{
	free(f->own);
	memset(f, 0, sizeof(*f));
}

int
camera_take(const char *src_dir, const struct camera_shot *shot,
    struct camera_frame *f, char *name, size_t namelen)
{
	memset(f, 0, sizeof(*f));
	if (shot == NULL || (shot->which != CAMERA_LID &&
	    shot->which != CAMERA_HEAD)) {
		log_warnx("no such camera");
		return -1;
	}
	if (src_dir != NULL && *src_dir != '\0' &&
	    camera_from_dir(src_dir, shot, &f->own, &f->len, name,
	    namelen) == 0) {
		f->data = f->own;
		return 0;
	}
	return camera_cached(shot, f, name, namelen);
}

int
camera_take_progress(int pct, uint8_t **jpeg, size_t *len)
{
	struct camera_image im;
	const int x0 = 120, x1 = 1160, y0 = 918, y1 = 942;
	int rv;

	*jpeg = NULL;
	*len = 0;
	im.w = CAMERA_LID_W;
	im.h = CAMERA_LID_H;
	if ((im.px = malloc((size_t)im.w * (size_t)im.h * 3)) == NULL) {
		log_warn("malloc");
		return -1;
	}
	camera_draw_lid(&im, 0);
	pct = pct < 0 ? 0 : pct > 100 ? 100 : pct;
	if (pct > 0) {
		camera_fill(&im, x0, y0, x1, y1, 60, 62, 66);
		camera_fill(&im, x0, y0, x0 + (x1 - x0) * pct / 100, y1, 90,
		    200, 120);
	}
	rv = camera_encode(&im, jpeg, len);
	free(im.px);
	return rv;
}
