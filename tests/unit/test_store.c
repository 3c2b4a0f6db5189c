/*
 * test_store: the atomic keep of jobs in motion_dl_dir.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "store.h"

struct fixture {
	char	dir[64];
};

static int
setup(void **state)
{
	struct fixture *f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

/* rm -r of the fixture's folder (two levels are all the tests make). */
static void
rm_tree(const char *path)
{
	struct dirent *de;
	struct stat sb;
	char sub[512];
	DIR *d;

	if (lstat(path, &sb) == -1)
		return;
	if (S_ISDIR(sb.st_mode) && (d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			rm_tree(sub);
		}
		closedir(d);
		rmdir(path);
	} else
		unlink(path);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	rm_tree(f->dir);
	free(f);
	return 0;
}

/* Names in dir, sorted, joined by '\n'. */
static char *
listing(const char *dir)
{
	struct dirent **names;
	size_t len = 0;
	char *out;
	int n, i;

	n = scandir(dir, &names, NULL, alphasort);
	assert_true(n >= 0);
	assert_non_null(out = calloc(1, 4096));
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.' || (strcmp(names[i]->d_name,
		    ".") != 0 && strcmp(names[i]->d_name, "..") != 0))
			len += (size_t)snprintf(out + len, 4096 - len, "%s\n",
			    names[i]->d_name);
		free(names[i]);
	}
	free(names);
	return out;
}

static char *
slurp(const char *path, size_t *len)
{
	char *buf;
	FILE *fp;
	long n;

	assert_non_null(fp = fopen(path, "rb"));
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	assert_non_null(buf = malloc((size_t)n + 1));
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static void
test_commit(void **state)
{
	struct fixture *f = *state;
	struct store_job *job;
	char sub[128], *final, *list, *data, info_path[512];
	cJSON *info, *back;
	size_t len, i;
	uint8_t chunk[1000];
	regex_t re;
	struct stat sb;

	/* A nested folder that does not exist yet: mkdir -p. */
	snprintf(sub, sizeof(sub), "%s/a/b/", f->dir);
	assert_non_null(job = store_begin(sub, "motion", 3116308, NULL));
	for (i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)i;
	for (i = 0; i < 70; i++)
		assert_int_equal(store_write(chunk, sizeof(chunk), job), 0);
	assert_int_equal(store_write(chunk, 0, job), 0);

	/* Before the commit, no visible file. */
	list = listing(sub);
	assert_non_null(strstr(list, ".puls."));
	assert_null(strstr(list, "\n2"));
	assert_true(list[0] == '.');
	free(list);

	assert_non_null(info = cJSON_Parse("{\"header_data\":{\"STfr\":10000},"
	    "\"size\":70000}"));
	assert_int_equal(store_commit(job, info, &final), 0);
	assert_non_null(final);

	list = listing(sub);
	assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}_[0-9]{6}"
	    "_motion_3116308\\.info\n"
	    "[0-9]{4}-[0-9]{2}-[0-9]{2}_[0-9]{6}_motion_3116308\\.puls\n$",
	    REG_EXTENDED), 0);
	if (regexec(&re, list, 0, NULL, 0) != 0)
		fail_msg("listing: %s", list);
	regfree(&re);
	free(list);

	assert_int_equal(strncmp(final, sub, strlen(sub)), 0);
	assert_int_equal(stat(final, &sb), 0);
	assert_int_equal(sb.st_size, 70000);
	data = slurp(final, &len);
	for (i = 0; i < len; i++)
		if ((uint8_t)data[i] != (uint8_t)(i % 1000))
			fail_msg("byte %zu differs", i);
	free(data);

	snprintf(info_path, sizeof(info_path), "%.*s.info",
	    (int)(strlen(final) - 5), final);
	data = slurp(info_path, &len);
	assert_true(len > 1 && data[len - 1] == '\n');
	assert_non_null(back = cJSON_Parse(data));
	assert_true(cJSON_Compare(back, info, 1));
	cJSON_Delete(back);
	free(data);
	cJSON_Delete(info);
	free(final);
}

static void
test_commit_no_info(void **state)
{
	struct fixture *f = *state;
	struct store_job *job;
	char *list;

	assert_non_null(job = store_begin(f->dir, "hunt", -1, NULL));
	assert_int_equal(store_write("x", 1, job), 0);
	assert_int_equal(store_commit(job, NULL, NULL), 0);
	list = listing(f->dir);
	assert_non_null(strstr(list, "_hunt_-1.puls\n"));
	assert_null(strstr(list, ".info"));
	free(list);
}

static void
test_abort(void **state)
{
	struct fixture *f = *state;
	struct store_job *job;
	char *list;

	assert_non_null(job = store_begin(f->dir, "print", 7, NULL));
	assert_int_equal(store_write("abc", 3, job), 0);
	store_abort(job);
	store_abort(NULL);
	list = listing(f->dir);
	assert_string_equal(list, "");
	free(list);
}

static void
test_bad_args(void **state)
{
	static const char *const types[] = { "", "Motion", "../x", "a/b",
	    "motion.puls", "abcdefghijklmnopqrstuvwxyzabcdefg", "m n" };
	struct fixture *f = *state;
	char path[128], *list, *final = (char *)1;
	size_t i;
	int fd;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		assert_null(store_begin(f->dir, types[i], 1, NULL));
	assert_null(store_begin(NULL, "motion", 1, NULL));
	assert_null(store_begin("", "motion", 1, NULL));

	/* A regular file where the folder should be: unusable. */
	snprintf(path, sizeof(path), "%s/file", f->dir);
	assert_true((fd = open(path, O_CREAT | O_WRONLY, 0644)) >= 0);
	close(fd);
	assert_null(store_begin(path, "motion", 1, NULL));
	snprintf(path, sizeof(path), "%s/file/sub", f->dir);
	assert_null(store_begin(path, "motion", 1, NULL));

	assert_int_equal(store_write("x", 1, NULL), -1);
	assert_int_equal(store_commit(NULL, NULL, &final), -1);
	assert_null(final);
	list = listing(f->dir);
	assert_string_equal(list, "file\n");
	free(list);
}

/* A write error (here EFBIG from RLIMIT_FSIZE, as a full disk would give
 * ENOSPC): -1 from then on, and the commit leaves nothing behind. */
static void
test_write_error(void **state)
{
	struct fixture *f = *state;
	struct store_job *job;
	struct rlimit old, rl;
	char big[8192], *list, *final = NULL;
	cJSON *info;
	int r1, r2;

	memset(big, 'x', sizeof(big));
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	assert_non_null(job = store_begin(f->dir, "print", 99, NULL));
	rl = old;
	rl.rlim_cur = 4096;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
	r1 = store_write(big, sizeof(big), job);
	r2 = store_write(big, 10, job);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(r1, -1);
	assert_int_equal(r2, -1);
	assert_non_null(info = cJSON_CreateObject());
	assert_int_equal(store_commit(job, info, &final), -1);
	assert_null(final);
	cJSON_Delete(info);
	list = listing(f->dir);
	assert_string_equal(list, "");
	free(list);
}

/* 32 chars is the longest valid type. */
static void
test_long_type(void **state)
{
	struct fixture *f = *state;
	struct store_job *job;

	assert_non_null(job = store_begin(f->dir,
	    "abcdefghijklmnopqrstuvwxyz_abcde", 1, NULL));
	store_abort(job);
}

/* save_sent_images: whatever is at the image's name decides.  A FIFO or
 * a link is skipped (never waited on, never followed); a regular file
 * is overwritten whole. */
static void
test_save_image(void **state)
{
	enum what { NONE, LONGER, LINK, FIFO, DIR_, BAD_TYPE };
	static const struct test_case {
		const char	*name;
		enum what	 there;		/* at <dir>/lid_image_7.jpg */
		int		 rc;
	} tcs[] = {
		{ "nothing there", NONE, 0 },
		{ "a longer file", LONGER, 0 },
		{ "a symbolic link", LINK, -1 },
		{ "a FIFO nobody reads", FIFO, -1 },
		{ "a folder", DIR_, -1 },
		{ "a type that is not [a-z_]", BAD_TYPE, -1 },
	};
	static const char jpeg[] = "\xff\xd8 not much of a frame \xff\xd9";
	struct fixture *f = *state;
	char path[128], target[128];
	const char *type;
	size_t i, len;
	char *got;
	int fd;

	snprintf(path, sizeof(path), "%s/lid_image_7.jpg", f->dir);
	snprintf(target, sizeof(target), "%s/elsewhere", f->dir);
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++) {
		print_message("%s\n", tcs[i].name);
		rm_tree(path);
		rm_tree(target);
		type = tcs[i].there == BAD_TYPE ? "../lid_image" : "lid_image";
		switch (tcs[i].there) {
		case LONGER:
			assert_true((fd = open(path, O_WRONLY | O_CREAT, 0600))
			    != -1);
			assert_int_equal(write(fd, jpeg, sizeof(jpeg)),
			    (ssize_t)sizeof(jpeg));
			assert_int_equal(write(fd, jpeg, sizeof(jpeg)),
			    (ssize_t)sizeof(jpeg));
			close(fd);
			break;
		case LINK:
			assert_int_equal(symlink(target, path), 0);
			break;
		case FIFO:
			assert_int_equal(mkfifo(path, 0600), 0);
			break;
		case DIR_:
			assert_int_equal(mkdir(path, 0700), 0);
			break;
		case NONE:
		case BAD_TYPE:
			break;
		}
		assert_int_equal(store_save_image(f->dir, type, 7, jpeg,
		    sizeof(jpeg) - 1, NULL), tcs[i].rc);
		/* Nothing follows the link, nothing escapes the folder. */
		assert_int_equal(access(target, F_OK), -1);
		if (tcs[i].rc == 0) {
			got = slurp(path, &len);
			assert_int_equal(len, sizeof(jpeg) - 1);
			assert_memory_equal(got, jpeg, len);
			free(got);
		}
	}
	rm_tree(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_no_info, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_write_error, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_long_type, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_save_image, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
