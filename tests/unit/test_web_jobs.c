/*
 * test_web_jobs: which names the web server may serve.  A client's path
 * never reaches the filesystem: it must equal one of the listing's own
 * names plus .puls, .info or (when drawn) .png.  And the worker: a job
 * that lands without moving the folder's mtime is still listed.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <pthread.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "web_jobs.h"

#define A	"2026-12-03_061035_motion_3116300"
#define B	"2026-12-03_061035_lid_image_42"

struct test_case {
	const char		*file;
	long			 want;		/* index, or -1 */
	enum web_jobs_kind	 kind;
};

static void
test_lookup(void **state)
{
	static const struct web_jobs_name names[] = {
		{ A, 1, 0, NULL },
		{ B, 0, 0, NULL },	/* not drawn yet: no .png */
	};
	static const struct test_case tcs[] = {
		{ A ".puls", 0, WEB_JOBS_PULS },
		{ A ".info", 0, WEB_JOBS_INFO },
		{ A ".png", 0, WEB_JOBS_PNG },
		{ B ".puls", 1, WEB_JOBS_PULS },
		{ B ".info", 1, WEB_JOBS_INFO },
		{ B ".png", -1, 0 },
		{ A, -1, 0 },
		{ A ".", -1, 0 },
		{ A ".PULS", -1, 0 },
		{ A ".puls/..", -1, 0 },
		{ A ".puls.gz", -1, 0 },
		{ A ".view.json", -1, 0 },
		{ "." A ".png.tmp", -1, 0 },
		{ "../" A ".puls", -1, 0 },
		{ "..", -1, 0 },
		{ "../../etc/passwd", -1, 0 },
		{ "%2e%2e/password", -1, 0 },
		{ "..%2f..%2fetc%2fpasswd", -1, 0 },
		{ "/etc/passwd", -1, 0 },
		{ "", -1, 0 },
		{ ".puls", -1, 0 },
		{ "2026-12-03_061035_motion_3116300.puls ", -1, 0 },
		{ "2026-12-03_061035_motion_311630.puls", -1, 0 },
	};
	enum web_jobs_kind kind;
	size_t i;
	long got;

	(void)state;
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++) {
		kind = (enum web_jobs_kind)-1;
		got = web_jobs_lookup(names, 2, tcs[i].file, &kind);
		if (got != tcs[i].want)
			fail_msg("case %zu \"%s\": %ld, not %ld", i,
			    tcs[i].file, got, tcs[i].want);
		if (got != -1 && kind != tcs[i].kind)
			fail_msg("case %zu \"%s\": kind %d, not %d", i,
			    tcs[i].file, kind, tcs[i].kind);
	}
	/* An empty listing serves nothing. */
	assert_int_equal(web_jobs_lookup(names, 0, A ".puls", &kind), -1);
}

/* A fleet's names: "<key>/<file>", the key a whole path segment. */
static void
test_lookup_keyed(void **state)
{
	static const struct web_jobs_name names[] = {
		{ A, 1, 0, "m0" },
		{ A, 0, 1, "m12" },	/* the same job name, another machine */
	};
	static const struct test_case tcs[] = {
		{ "m0/" A ".puls", 0, WEB_JOBS_PULS },
		{ "m0/" A ".png", 0, WEB_JOBS_PNG },
		{ "m12/" A ".info", 1, WEB_JOBS_INFO },
		{ "m12/" A ".png", -1, 0 },	/* not drawn */
		{ A ".puls", -1, 0 },		/* no key */
		{ "m1/" A ".puls", -1, 0 },
		{ "m1/2/" A ".puls", -1, 0 },
		{ "m0" A ".puls", -1, 0 },
		{ "m0//" A ".puls", -1, 0 },
		{ "m0/../m12/" A ".puls", -1, 0 },
		{ "m0%2f" A ".puls", -1, 0 },
		{ "m0/" A ".puls/..", -1, 0 },
		{ "/m0/" A ".puls", -1, 0 },
		{ "m0/", -1, 0 },
		{ "m0", -1, 0 },
	};
	enum web_jobs_kind kind;
	size_t i;
	long got;

	(void)state;
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++) {
		kind = (enum web_jobs_kind)-1;
		got = web_jobs_lookup(names, 2, tcs[i].file, &kind);
		if (got != tcs[i].want)
			fail_msg("case %zu \"%s\": %ld, not %ld", i,
			    tcs[i].file, got, tcs[i].want);
		if (got != -1 && kind != tcs[i].kind)
			fail_msg("case %zu \"%s\": kind %d, not %d", i,
			    tcs[i].file, kind, tcs[i].kind);
	}
}

struct base_case {
	const char	*base;
	int		 ok;
};

static void
test_base_ok(void **state)
{
	static const struct base_case tcs[] = {
		{ A, 1 },
		{ B, 1 },
		{ "2026-12-03_061035_motion_-5", 1 },
		{ "2026-12-03_061035_motion_", 0 },
		{ "2026-12-03_061035__5", 0 },
		{ "2026-12-03_061035_Motion_5", 0 },
		{ "2026-12-03_061035_mo.tion_5", 0 },
		{ "2026-12-03_061035_motion_5x", 0 },
		{ "2026-12-03-061035_motion_5", 0 },
		{ "2026-12-3_061035_motion_5", 0 },
		{ "../12-03_061035_motion_5", 0 },
		{ "2026-12-03_061035_motion/../x_5", 0 },
		{ ".2026-12-03_061035_motion_5", 0 },
		{ "", 0 },
		{ "2026-12-03_061035_"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaa_1", 0 },	/* past WEB_JOBS_BASE_MAX */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++)
		if (web_jobs_base_ok(tcs[i].base) != tcs[i].ok)
			fail_msg("case %zu \"%s\": want %d", i, tcs[i].base,
			    tcs[i].ok);
}

/* The worker's snapshots, awaited. */
struct watch {
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	unsigned	 n;		/* snapshots published */
};

static void
watch_notify(void *arg)
{
	struct watch *w = arg;

	pthread_mutex_lock(&w->mtx);
	w->n++;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mtx);
}

/* A watch, and a new folder made from the template dir. */
static void
watch_init(struct watch *w, char *dir)
{
	pthread_mutex_init(&w->mtx, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->n = 0;
	assert_non_null(mkdtemp(dir));
}

static void
watch_fini(struct watch *w, const char *dir)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mtx);
}

/* Awaits snapshots until one lists base; 0, or -1 past a generous
 * deadline (a hang guard, not a timing assertion). */
static int
watch_until_listed(struct watch *w, struct web_jobs *wj, const char *base)
{
	struct timespec dl;
	unsigned seen;
	size_t len;
	char *json;
	int found;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 60;
	for (;;) {
		pthread_mutex_lock(&w->mtx);
		seen = w->n;
		pthread_mutex_unlock(&w->mtx);
		if ((json = web_jobs_json(wj, &len)) == NULL)
			return -1;
		found = base == NULL ? seen > 0 : strstr(json, base) != NULL;
		free(json);
		if (found)
			return 0;
		pthread_mutex_lock(&w->mtx);
		while (w->n == seen)
			if (pthread_cond_timedwait(&w->cond, &w->mtx,
			    &dl) != 0)
				break;
		found = w->n != seen;
		pthread_mutex_unlock(&w->mtx);
		if (!found)
			return -1;
	}
}

static void
put_file(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/*
 * A job kept in the same clock tick as the worker's last listing leaves
 * the folder's mtime as that listing saw it.  Made certain here: the
 * mtime is set back by hand after the files land.  A worker that trusts
 * an unchanged mtime never lists the job (this failed CI once, on a
 * loaded box, as a picture never drawn).
 */
static void
test_same_tick(void **state)
{
	char dir[] = "/tmp/test_web_jobs.XXXXXX";
	struct web_jobs_dir d;
	struct timespec ts[2];
	struct web_jobs *wj;
	struct watch w;

	(void)state;
	watch_init(&w, dir);
	/* A fixed mtime, ahead of the clock: "the tick of the listing",
	 * however slowly this test runs. */
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec += 30;
	ts[0].tv_nsec = 0;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, dir, ts, 0), 0);
	d.path = dir;
	d.key = d.label = NULL;
	assert_non_null(wj = web_jobs_new(&d, 1, watch_notify, &w));
	assert_int_equal(watch_until_listed(&w, wj, NULL), 0);
	put_file(dir, A ".info", "{}\n");
	put_file(dir, A ".puls", "not a pulse file\n");
	assert_int_equal(utimensat(AT_FDCWD, dir, ts, 0), 0);
	if (watch_until_listed(&w, wj, A) != 0)
		fail_msg("a job kept in the listing's tick is never listed");
	web_jobs_free(wj);
	watch_fini(&w, dir);
}

/* This process's threads (entries of /proc/self/task). */
static int
thread_count(void)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	assert_non_null(d = opendir("/proc/self/task"));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * web_jobs_stop() (web_detach(), before the loop's teardown) ends the
 * worker thread there and then, and the last listing is still served:
 * lws 4.1.6 closes its wake-up eventfd twice, and a folder the worker
 * opened in between could take the number.  A second stop does nothing.
 */
static void
test_stop(void **state)
{
	char dir[] = "/tmp/test_web_jobs.XXXXXX";
	struct web_jobs_dir d;
	struct web_jobs *wj;
	struct watch w;
	size_t len;
	char *json;
	int before;

	(void)state;
	watch_init(&w, dir);
	put_file(dir, A ".info", "{}\n");
	put_file(dir, A ".puls", "not a pulse file\n");
	d.path = dir;
	d.key = d.label = NULL;
	before = thread_count();
	assert_non_null(wj = web_jobs_new(&d, 1, watch_notify, &w));
	assert_int_equal(watch_until_listed(&w, wj, A), 0);
	assert_int_equal(thread_count(), before + 1);
	web_jobs_stop(wj);
	assert_int_equal(thread_count(), before);
	assert_non_null(json = web_jobs_json(wj, &len));
	assert_non_null(strstr(json, A));
	free(json);
	web_jobs_stop(wj);
	web_jobs_free(wj);
	watch_fini(&w, dir);
}

struct sweep_case {
	const char	*name;
	int		 old;		/* mtime an hour ago */
	int		 gone;		/* want it removed */
};

/* A drawing cut short leaves its temporary: the first look removes ours
 * when old, and nothing else. */
static void
test_sweep(void **state)
{
	static const struct sweep_case tcs[] = {
		{ "." A ".png.Ab12Cd", 1, 1 },
		{ "." A ".view.json.xYz789", 1, 1 },
		{ "." A ".png.Ab12Ce", 0, 0 },		/* in progress */
		{ "." A ".puls.Ab12Cd", 1, 0 },		/* not ours */
		{ ".notajob.png.Ab12Cd", 1, 0 },
		{ A ".png.Ab12Cd", 1, 0 },		/* not hidden */
		{ "." A ".png.Ab12C", 1, 0 },		/* not our form */
		{ "." A ".png", 1, 0 },
	};
	char dir[] = "/tmp/test_web_jobs.XXXXXX", path[4096];
	struct timespec ts[2];
	struct web_jobs_dir d;
	struct web_jobs *wj;
	struct watch w;
	size_t i;

	(void)state;
	watch_init(&w, dir);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= 3600;
	ts[1] = ts[0];
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++) {
		put_file(dir, tcs[i].name, "x");
		snprintf(path, sizeof(path), "%s/%s", dir, tcs[i].name);
		if (tcs[i].old)
			assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	}
	d.path = dir;
	d.key = d.label = NULL;
	assert_non_null(wj = web_jobs_new(&d, 1, watch_notify, &w));
	assert_int_equal(watch_until_listed(&w, wj, NULL), 0);
	web_jobs_free(wj);
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, tcs[i].name);
		if ((access(path, F_OK) == -1) != tcs[i].gone)
			fail_msg("case %zu \"%s\": %s", i, tcs[i].name,
			    tcs[i].gone ? "left" : "removed");
	}
	watch_fini(&w, dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_lookup_keyed),
		cmocka_unit_test(test_base_ok),
		cmocka_unit_test(test_same_tick),
		cmocka_unit_test(test_sweep),
		cmocka_unit_test(test_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
