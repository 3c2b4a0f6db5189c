/*
 * fuzz_config: a configuration file through config_load(), config_print()
 * and config_free().  Seeds: tests/corpus/config.
 *
 * config_load() takes a path.  The input goes into a memfd, so nothing is
 * written to disk per input, but it is not opened as /proc/self/fd/N:
 * relative paths resolve against the config's folder, and in /proc/self/fd
 * "password_file: 1" would read this process's stdout, a pipe that never
 * ends (a hang the fuzzer would report, not a bug).  The path is instead a
 * symlink to the memfd in an empty folder of our own, made once;
 * config_load() keeps symlinks, so relative paths land in that folder.
 * stdin is /dev/null and $CREDENTIALS_DIRECTORY unset for the same reason:
 * every input must mean the same thing on every run.  The folder also
 * holds the few files a config names (fuzz_files[]), made once too, so
 * that a file naming them loads and password_file is read.
 *
 * Besides "no crash, no leak, no UB": a file that loads must hold what
 * config_check() promises (URLs with the right schemes, a known protocol
 * profile, delays and log levels in range, absolute paths).
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "fuzz.h"

/* Beside the config: what the seeds name (full.cfg, password-file.cfg). */
static const struct {
	const char	*name;
	const char	*content;	/* NULL: a folder */
} fuzz_files[] = {
	{ "ca.pem", "" },
	{ "seq.json", "{}\n" },
	{ "pw.txt", "0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef\n" },
	{ "images", NULL },
};

static int	 fuzz_fd = -1;		/* the memfd */
static char	 fuzz_dir[PATH_MAX];
static char	 fuzz_path[PATH_MAX];	/* fuzz_dir/gf.cfg -> the memfd */
static FILE	*fuzz_null;

/* A file or folder of fuzz_files[] in fuzz_dir, into path. */
static void
fuzz_file_path(char *path, size_t len, size_t i)
{
	int n;

	n = snprintf(path, len, "%s/%s", fuzz_dir, fuzz_files[i].name);
	if (n < 0 || (size_t)n >= len)
		abort();
}

static void
fuzz_cleanup(void)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(fuzz_files) / sizeof(fuzz_files[0]); i++) {
		fuzz_file_path(path, sizeof(path), i);
		if (fuzz_files[i].content == NULL)
			rmdir(path);
		else
			unlink(path);
	}
	unlink(fuzz_path);
	rmdir(fuzz_dir);
}

static void
fuzz_make_files(void)
{
	char path[PATH_MAX];
	size_t i, len;
	int fd;

	for (i = 0; i < sizeof(fuzz_files) / sizeof(fuzz_files[0]); i++) {
		fuzz_file_path(path, sizeof(path), i);
		if (fuzz_files[i].content == NULL) {
			if (mkdir(path, 0700) == -1)
				abort();
			continue;
		}
		len = strlen(fuzz_files[i].content);
		if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600)) == -1 || write(fd, fuzz_files[i].content, len) !=
		    (ssize_t)len)
			abort();
		close(fd);
	}
}

static void
fuzz_init(void)
{
	const char *tmp;
	char target[64];
	int fd, n;

	/*
	 * stdin from /dev/null; stdout and stderr too if they were closed,
	 * or the memfd could become fd 2 and collect config_load()'s
	 * messages.
	 */
	if ((fd = open("/dev/null", O_RDWR)) == -1 ||
	    dup2(fd, STDIN_FILENO) == -1)
		abort();
	for (n = STDOUT_FILENO; n <= STDERR_FILENO; n++)
		if (fcntl(n, F_GETFD) == -1 && dup2(fd, n) == -1)
			abort();
	if (fd > STDERR_FILENO)
		close(fd);
	if ((fuzz_null = fopen("/dev/null", "w")) == NULL)
		abort();
	unsetenv("CREDENTIALS_DIRECTORY");
	/* Warnings are formatted either way; only their output is noise. */
	log_setlevel(LOG_ERR);

	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	n = snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/gfe-fuzz-config.XXXXXX",
	    tmp);
	if (n < 0 || (size_t)n >= sizeof(fuzz_dir) || mkdtemp(fuzz_dir) ==
	    NULL)
		abort();
	n = snprintf(fuzz_path, sizeof(fuzz_path), "%s/gf.cfg", fuzz_dir);
	if (n < 0 || (size_t)n >= sizeof(fuzz_path))
		abort();
	if ((fuzz_fd = memfd_create("fuzz.cfg", MFD_CLOEXEC)) == -1)
		abort();
	snprintf(target, sizeof(target), "/proc/self/fd/%d", fuzz_fd);
	if (symlink(target, fuzz_path) == -1)
		abort();
	atexit(fuzz_cleanup);
	fuzz_make_files();
}

static int
fuzz_scheme(const char *url, const char *s1, const char *s2)
{
	size_t n1 = strlen(s1), n2 = strlen(s2);

	return url != NULL &&
	    ((strncasecmp(url, s1, n1) == 0 && strncmp(url + n1, "://", 3) ==
	    0) || (strncasecmp(url, s2, n2) == 0 &&
	    strncmp(url + n2, "://", 3) == 0));
}

static void
fuzz_loaded(const struct config *cf)
{
	FUZZ_CHECK(cf->path != NULL && cf->path[0] == '/');
	FUZZ_CHECK(cf->dir != NULL && cf->dir[0] == '/');
	FUZZ_CHECK(fuzz_scheme(cf->server_url, "http", "https"));
	FUZZ_CHECK(fuzz_scheme(cf->status_service_url, "ws", "wss"));
	FUZZ_CHECK(cf->protocol_profile != NULL &&
	    (strcmp(cf->protocol_profile, "2.6") == 0 ||
	    strcmp(cf->protocol_profile, "1.x") == 0));
	FUZZ_CHECK(isfinite(cf->button_press_delay) &&
	    cf->button_press_delay >= 0 && cf->button_press_delay <= 3600);
	FUZZ_CHECK(isfinite(cf->warm_up_delay) && cf->warm_up_delay >= 0 &&
	    cf->warm_up_delay <= 3600);
	FUZZ_CHECK(isfinite(cf->cool_down_delay) &&
	    cf->cool_down_delay >= 0 && cf->cool_down_delay <= 3600);
	FUZZ_CHECK(cf->log_level >= LOG_EMERG && cf->log_level <= LOG_DEBUG);
	FUZZ_CHECK(cf->console_level >= LOG_EMERG &&
	    cf->console_level <= LOG_DEBUG);
	/* The motion folder is always set, and absolute like every path. */
	FUZZ_CHECK(cf->motion_dl_dir != NULL && cf->motion_dl_dir[0] == '/');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cf;
	size_t off;
	ssize_t n;

	if (fuzz_fd == -1)
		fuzz_init();
	if (ftruncate(fuzz_fd, 0) == -1)
		abort();
	for (off = 0; off < size; off += (size_t)n)
		if ((n = pwrite(fuzz_fd, data + off, size - off,
		    (off_t)off)) <= 0)
			abort();

	if (config_load(&cf, fuzz_path) == 0) {
		fuzz_loaded(&cf);
		config_print(&cf, fuzz_null);
	}
	config_free(&cf);
	return 0;
}
