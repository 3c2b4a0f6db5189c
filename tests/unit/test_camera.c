/*
 * test_camera: the frames camera_take() hands out.  Built-in frames must be
 * real JPEGs of the advertised sizes, different where the shot differs and
 * identical where it does not; frame files are picked by the reference
 * emulator's names and only when they look like JPEGs.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jpeglib.h>

#include "camera.h"

struct decoded {
	int		 w, h;
	uint8_t		*rgb;
};

struct test_jerr {
	struct jpeg_error_mgr	pub;
	jmp_buf			jb;
};

static void
test_jerr_exit(j_common_ptr cinfo)
{
	longjmp(((struct test_jerr *)(void *)cinfo->err)->jb, 1);
}

/* Decodes with libjpeg, as a client would: 0, or -1 when it is no JPEG. */
static int
decode(const uint8_t *jpeg, size_t len, struct decoded *d)
{
	struct jpeg_decompress_struct cinfo;
	struct test_jerr jerr;
	JSAMPROW row;

	d->rgb = NULL;
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = test_jerr_exit;
	if (setjmp(jerr.jb)) {
		jpeg_destroy_decompress(&cinfo);
		free(d->rgb);
		d->rgb = NULL;
		return -1;
	}
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, jpeg, (unsigned long)len);
	jpeg_read_header(&cinfo, TRUE);
	cinfo.out_color_space = JCS_RGB;
	jpeg_start_decompress(&cinfo);
	d->w = (int)cinfo.output_width;
	d->h = (int)cinfo.output_height;
	d->rgb = malloc((size_t)d->w * (size_t)d->h * 3);
	if (d->rgb == NULL)
		longjmp(jerr.jb, 1);
	while (cinfo.output_scanline < cinfo.output_height) {
		row = d->rgb + (size_t)cinfo.output_scanline * (size_t)d->w * 3;
		jpeg_read_scanlines(&cinfo, &row, 1);
	}
	jpeg_finish_decompress(&cinfo);
	jpeg_destroy_decompress(&cinfo);
	return 0;
}

/* Strongly red pixels within r of the centre. */
static int
red_near_centre(const struct decoded *d, int r)
{
	const uint8_t *p;
	int x, y, n = 0;

	for (y = d->h / 2 - r; y <= d->h / 2 + r; y++)
		for (x = d->w / 2 - r; x <= d->w / 2 + r; x++) {
			p = d->rgb + ((size_t)y * (size_t)d->w + (size_t)x) * 3;
			if (p[0] > 180 && p[1] < 100 && p[2] < 100)
				n++;
		}
	return n;
}

static void
take(const char *dir, enum camera_which which, int stage, int laser,
    const char *thick, struct camera_frame *f, char *name, size_t nlen)
{
	struct camera_shot shot = { which, stage, laser, thick };

	assert_int_equal(camera_take(dir, &shot, f, name, nlen), 0);
	assert_non_null(f->data);
	assert_true(f->len > 4);
	assert_int_equal(f->data[0], 0xff);
	assert_int_equal(f->data[1], 0xd8);
}

static void
test_builtin_sizes(void **state)
{
	struct decoded d;
	struct camera_frame f;
	char name[64];

	(void)state;
	take(NULL, CAMERA_LID, 0, 0, NULL, &f, name, sizeof(name));
	assert_string_equal(name, "built-in lid");
	assert_int_equal(decode(f.data, f.len, &d), 0);
	assert_int_equal(d.w, 1280);
	assert_int_equal(d.h, 960);
	free(d.rgb);
	camera_frame_free(&f);

	take(NULL, CAMERA_LID, 3, 0, NULL, &f, name, sizeof(name));
	assert_string_equal(name, "built-in lid (homing 3)");
	assert_int_equal(decode(f.data, f.len, &d), 0);
	assert_int_equal(d.w, 1280);
	assert_int_equal(d.h, 960);
	free(d.rgb);
	camera_frame_free(&f);

	take(NULL, CAMERA_HEAD, 0, 0, ".230", &f, name, sizeof(name));
	assert_string_equal(name, "built-in head (laser off)");
	assert_int_equal(decode(f.data, f.len, &d), 0);
	assert_int_equal(d.w, 640);
	assert_int_equal(d.h, 480);
	free(d.rgb);
	camera_frame_free(&f);

	/* No name buffer is fine too. */
	take(NULL, CAMERA_HEAD, 0, 1, NULL, &f, NULL, 0);
	camera_frame_free(&f);
}

static void
test_laser_dot(void **state)
{
	struct decoded on, off;
	struct camera_frame fon, foff;
	char name[64];

	(void)state;
	take(NULL, CAMERA_HEAD, 0, 1, ".230", &fon, name, sizeof(name));
	assert_string_equal(name, "built-in head (laser on)");
	take(NULL, CAMERA_HEAD, 0, 0, ".230", &foff, NULL, 0);
	assert_false(fon.len == foff.len &&
	    memcmp(fon.data, foff.data, fon.len) == 0);

	assert_int_equal(decode(fon.data, fon.len, &on), 0);
	assert_int_equal(decode(foff.data, foff.len, &off), 0);
	assert_true(red_near_centre(&on, 30) > 300);
	assert_int_equal(red_near_centre(&off, 30), 0);
	free(on.rgb);
	free(off.rgb);
	camera_frame_free(&fon);
	camera_frame_free(&foff);
}

static void
test_homing_stages_differ(void **state)
{
	struct camera_frame f[5], again;
	int a, b;

	(void)state;
	for (a = 0; a <= 4; a++)
		take(NULL, CAMERA_LID, a, 0, NULL, &f[a], NULL, 0);
	for (a = 0; a <= 4; a++)
		for (b = a + 1; b <= 4; b++)
			assert_false(f[a].len == f[b].len &&
			    memcmp(f[a].data, f[b].data, f[a].len) == 0);

	/* Deterministic, and shared: the same shot gives the same bytes,
	 * the cache's own (a fleet's uploads hold no copy each). */
	take(NULL, CAMERA_LID, 2, 0, NULL, &again, NULL, 0);
	assert_int_equal(again.len, f[2].len);
	assert_ptr_equal(again.data, f[2].data);
	assert_null(again.own);
	camera_frame_free(&again);
	assert_null(again.data);
	for (a = 0; a <= 4; a++)
		camera_frame_free(&f[a]);
}

static void
test_bad_shot(void **state)
{
	struct camera_shot shot = { (enum camera_which)7, 0, 0, NULL };
	struct camera_frame f = { (const uint8_t *)"x", 1, NULL };

	(void)state;
	assert_int_equal(camera_take(NULL, NULL, &f, NULL, 0), -1);
	assert_null(f.data);
	f.data = (const uint8_t *)"x";
	assert_int_equal(camera_take(NULL, &shot, &f, NULL, 0), -1);
	assert_null(f.data);
	assert_int_equal(f.len, 0);
	camera_frame_free(&f);	/* an empty frame frees fine */
}

/* --- frame files in a temporary src_dir --- */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
dir_setup(void **state)
{
	char *dir = strdup("/tmp/test_camera.XXXXXX");

	if (dir == NULL || mkdtemp(dir) == NULL) {
		free(dir);
		return -1;
	}
	*state = dir;
	return 0;
}

static int
dir_teardown(void **state)
{
	char *dir = *state;

	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(dir);
	return 0;
}

static void
put_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[PATH_MAX];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(fp = fopen(path, "wb"));
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

/* A fake JPEG that names itself: FF D8 <tag> FF D9. */
static void
put_fake(const char *dir, const char *name)
{
	uint8_t buf[128];
	size_t n = strlen(name);

	buf[0] = 0xff;
	buf[1] = 0xd8;
	memcpy(buf + 2, name, n);
	buf[n + 2] = 0xff;
	buf[n + 3] = 0xd9;
	put_file(dir, name, buf, n + 4);
}

/* The shot came from the fake file called file. */
static void
expect_file(const char *dir, enum camera_which which, int stage, int laser,
    const char *thick, const char *file)
{
	struct camera_frame f;
	size_t n = strlen(file);
	char name[64];

	take(dir, which, stage, laser, thick, &f, name, sizeof(name));
	assert_string_equal(name, file);
	assert_int_equal(f.len, n + 4);
	assert_memory_equal(f.data + 2, file, n);
	/* A file's frame is the taker's own. */
	assert_ptr_equal(f.data, f.own);
	camera_frame_free(&f);
}

/* The shot was drawn, not read. */
static void
expect_builtin(const char *dir, enum camera_which which, int stage,
    int laser, const char *thick)
{
	struct decoded d;
	struct camera_frame f;
	char name[64];

	take(dir, which, stage, laser, thick, &f, name, sizeof(name));
	assert_memory_equal(name, "built-in", 8);
	assert_int_equal(decode(f.data, f.len, &d), 0);
	free(d.rgb);
	camera_frame_free(&f);
}

static void
test_files_by_name(void **state)
{
	const char *dir = *state;
	static const char *const names[] = {
		"HOME_1.jpg", "HOME_2.jpg", "HOME_3.jpg", "HOME_4.jpg",
		"LID_IMAGE.jpg", "HEAD_LASER_.230.jpg",
		"HEAD_NO_LASER_.230.jpg", "HEAD_LASER_.125.jpg",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		put_fake(dir, names[i]);
	expect_file(dir, CAMERA_LID, 1, 0, NULL, "HOME_1.jpg");
	expect_file(dir, CAMERA_LID, 2, 0, NULL, "HOME_2.jpg");
	expect_file(dir, CAMERA_LID, 3, 1, ".230", "HOME_3.jpg");
	expect_file(dir, CAMERA_LID, 4, 0, NULL, "HOME_4.jpg");
	expect_file(dir, CAMERA_LID, 0, 0, NULL, "LID_IMAGE.jpg");
	expect_file(dir, CAMERA_HEAD, 0, 1, ".230", "HEAD_LASER_.230.jpg");
	expect_file(dir, CAMERA_HEAD, 0, 0, ".230", "HEAD_NO_LASER_.230.jpg");
	expect_file(dir, CAMERA_HEAD, 2, 1, ".125", "HEAD_LASER_.125.jpg");
	/* No file for that material, or no material: drawn. */
	expect_builtin(dir, CAMERA_HEAD, 0, 0, ".125");
	expect_builtin(dir, CAMERA_HEAD, 0, 1, NULL);
	/* An empty src_dir is no src_dir. */
	expect_builtin("", CAMERA_LID, 1, 0, NULL);
}

static void
test_lid_falls_back_to_home4(void **state)
{
	const char *dir = *state;

	expect_builtin(dir, CAMERA_LID, 0, 0, NULL);
	put_fake(dir, "HOME_4.jpg");
	expect_file(dir, CAMERA_LID, 0, 0, NULL, "HOME_4.jpg");
	expect_builtin(dir, CAMERA_LID, 1, 0, NULL);
}

static void
test_not_jpeg_rejected(void **state)
{
	const char *dir = *state;
	static const char text[] = "this is not a JPEG file\n";

	put_file(dir, "LID_IMAGE.jpg", text, sizeof(text) - 1);
	put_file(dir, "HOME_2.jpg", "\xff\xd8", 2);	/* too short */
	put_file(dir, "HEAD_LASER_.230.jpg", "\xd8\xff\xd8\xff", 4);
	expect_builtin(dir, CAMERA_LID, 0, 0, NULL);
	expect_builtin(dir, CAMERA_LID, 2, 0, NULL);
	expect_builtin(dir, CAMERA_HEAD, 0, 1, ".230");
	/* The lid shot then tries its fallback. */
	put_fake(dir, "HOME_4.jpg");
	expect_file(dir, CAMERA_LID, 0, 0, NULL, "HOME_4.jpg");
}

static void
test_bad_thickness(void **state)
{
	const char *dir = *state;
	char path[PATH_MAX];
	struct stat st;

	/* Make "../x" reach a real JPEG, so a thickness put into the path
	 * unchecked would be caught reading it. */
	snprintf(path, sizeof(path), "%s/HEAD_LASER_..", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	put_fake(dir, "HEAD_LASER_../x.jpg");
	snprintf(path, sizeof(path), "%s/HEAD_LASER_../x.jpg", dir);
	assert_int_equal(stat(path, &st), 0);
	expect_builtin(dir, CAMERA_HEAD, 0, 1, "../x");

	put_fake(dir, "HEAD_LASER_1234567890.jpg");	/* over 8 chars */
	expect_builtin(dir, CAMERA_HEAD, 0, 1, "1234567890");
	put_fake(dir, "HEAD_LASER_.2a.jpg");
	expect_builtin(dir, CAMERA_HEAD, 0, 1, ".2a");
	expect_builtin(dir, CAMERA_HEAD, 0, 1, "");
	put_fake(dir, "HEAD_LASER_12345678.jpg");	/* exactly 8 */
	expect_file(dir, CAMERA_HEAD, 0, 1, "12345678",
	    "HEAD_LASER_12345678.jpg");
}

static void
test_unreadable_kinds(void **state)
{
	const char *dir = *state;
	struct camera_shot shot = { CAMERA_LID, 0, 0, NULL };
	char path[PATH_MAX];
	struct camera_frame f;
	int fd;

	/* Over 16 MiB (sparse, so cheap): refused though it starts well. */
	snprintf(path, sizeof(path), "%s/LID_IMAGE.jpg", dir);
	assert_true((fd = open(path, O_WRONLY | O_CREAT, 0600)) != -1);
	assert_int_equal(write(fd, "\xff\xd8\xff\xe0", 4), 4);
	assert_int_equal(ftruncate(fd, 16 * 1024 * 1024 + 1), 0);
	close(fd);
	expect_builtin(dir, CAMERA_LID, 0, 0, NULL);
	/* At the cap: accepted. */
	assert_int_equal(truncate(path, 16 * 1024 * 1024), 0);
	assert_int_equal(camera_take(dir, &shot, &f, NULL, 0), 0);
	assert_int_equal(f.len, 16 * 1024 * 1024);
	camera_frame_free(&f);

	/* A FIFO must not hang the shot; a folder is no frame either. */
	snprintf(path, sizeof(path), "%s/HOME_1.jpg", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	expect_builtin(dir, CAMERA_LID, 1, 0, NULL);
	snprintf(path, sizeof(path), "%s/HOME_2.jpg", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	expect_builtin(dir, CAMERA_LID, 2, 0, NULL);
	/* A missing folder is no error. */
	expect_builtin("/nonexistent/test_camera", CAMERA_LID, 2, 0, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_sizes),
		cmocka_unit_test(test_laser_dot),
		cmocka_unit_test(test_homing_stages_differ),
		cmocka_unit_test(test_bad_shot),
		cmocka_unit_test_setup_teardown(test_files_by_name,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_lid_falls_back_to_home4,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_not_jpeg_rejected,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_bad_thickness,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_kinds,
		    dir_setup, dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
