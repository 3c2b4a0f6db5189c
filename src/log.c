/*
 * log: see log.h.  Each line is formatted into one buffer and written with a
 * single write(2), so lines from different threads never interleave.  The
 * message is escaped after formatting: whatever a peer put into a "%s"
 * (firmware versions, action types, serials, file names), it cannot forge a
 * line or drive the console.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX	2048	/* bytes; longer messages are cut with "..." */

static atomic_int	log_mode = LOG_TO_CONSOLE;
static atomic_int	log_level = LOG_INFO;
/* The [LOGGING] file, or -1.  A reload reopens it while the stop signals'
 * thread may be logging: the lock keeps a line off a closed (or reused)
 * descriptor.  stderr takes no lock, so that thread's line reaches it even
 * while the loop is held in a write to the file. */
static pthread_mutex_t	log_fd_mtx = PTHREAD_MUTEX_INITIALIZER;
static int		log_fd = -1;

static const char *const log_names[] = {
	"EMERG", "ALERT", "CRIT", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"
};

int
log_init(enum log_mode mode, int level, const char *file)
{
	int rc = 0;

	atomic_store(&log_mode, mode);
	atomic_store(&log_level, level);
	pthread_mutex_lock(&log_fd_mtx);
	if (log_fd != -1)
		close(log_fd);
	log_fd = -1;
	if (file != NULL && *file != '\0') {
		log_fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
		    0640);
		if (log_fd == -1)
			rc = -1;
	}
	pthread_mutex_unlock(&log_fd_mtx);
	return rc;
}

void
log_setlevel(int level)
{
	atomic_store(&log_level, level);
}

int
log_getlevel(void)
{
	return atomic_load(&log_level);
}

enum log_mode
log_getmode(void)
{
	return (enum log_mode)atomic_load(&log_mode);
}

void
log_close(void)
{
	pthread_mutex_lock(&log_fd_mtx);
	if (log_fd != -1)
		close(log_fd);
	log_fd = -1;
	pthread_mutex_unlock(&log_fd_mtx);
}

int
log_parse_level(const char *s)
{
	/* Python logging names and numbers, as the reference config uses. */
	static const struct { const char *name; int pri; int pynum; } lv[] = {
		{ "CRITICAL", LOG_CRIT, 50 }, { "ERROR", LOG_ERR, 40 },
		{ "WARNING", LOG_WARNING, 30 }, { "WARN", LOG_WARNING, -1 },
		{ "NOTICE", LOG_NOTICE, -1 }, { "INFO", LOG_INFO, 20 },
		{ "DEBUG", LOG_DEBUG, 10 },
	};
	char *end;
	long n;
	size_t i;

	if (s == NULL || *s == '\0')
		return -1;
	for (i = 0; i < sizeof(lv) / sizeof(lv[0]); i++)
		if (strcasecmp(s, lv[i].name) == 0)
			return lv[i].pri;
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	for (i = 0; i < sizeof(lv) / sizeof(lv[0]); i++)
		if (n == lv[i].pynum)
			return lv[i].pri;
	if (n >= LOG_EMERG && n <= LOG_DEBUG)
		return (int)n;
	return -1;
}

/* "src/cloud.c" -> "cloud" */
static void
log_module(const char *file, char *buf, size_t len)
{
	const char *base = strrchr(file, '/');
	size_t n;

	base = base != NULL ? base + 1 : file;
	n = strcspn(base, ".");
	if (n >= len)
		n = len - 1;
	memcpy(buf, base, n);
	buf[n] = '\0';
}

static void
log_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;	/* nowhere left to report it */
		buf += w;
		len -= (size_t)w;
	}
}

size_t
log_escape(char *dst, size_t size, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)src;
	size_t i, o = 0;
	int esc;

	if (size == 0)
		return 0;
	for (i = 0; i < len; i++) {
		/* C1 controls (U+0080..U+009F, 0xC2 0x80..0x9F in UTF-8) are
		 * escape sequences for some terminals too: both bytes go. */
		esc = s[i] < 0x20 || s[i] == 0x7f || (s[i] == 0xc2 &&
		    i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f) ||
		    (i > 0 && s[i - 1] == 0xc2 && s[i] >= 0x80 &&
		    s[i] <= 0x9f);
		if (o + (esc ? 4 : 1) >= size)
			break;
		if (esc) {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[s[i] >> 4];
			dst[o++] = hex[s[i] & 0xf];
		} else
			dst[o++] = (char)s[i];
	}
	dst[o] = '\0';
	return i;
}

void
log_vemit(int pri, int with_errno, const char *file, const char *func,
    const char *fmt, va_list ap)
{
	char raw[LOG_LINE_MAX], msg[LOG_LINE_MAX], line[LOG_LINE_MAX + 128];
	char mod[32], ts[32];
	int saved = errno, n;
	size_t used;
	struct tm tm;
	time_t now;

	if (pri > atomic_load(&log_level))
		return;
	n = vsnprintf(raw, sizeof(raw), fmt, ap);
	if (n >= (int)sizeof(raw))
		memcpy(raw + sizeof(raw) - 4, "...", 4);
	if (with_errno) {
		used = strlen(raw);
		snprintf(raw + used, sizeof(raw) - used, ": %s",
		    strerror(saved));
	}
	/* A cut escaped message ends in "..." like a cut raw one. */
	used = strlen(raw);
	if (log_escape(msg, sizeof(msg), raw, used) < used)
		memcpy(msg + strlen(msg) - 3, "...", 4);
	log_module(file, mod, sizeof(mod));
	if (pri < LOG_EMERG || pri > LOG_DEBUG)
		pri = LOG_ERR;

	if (atomic_load(&log_mode) == LOG_TO_CONSOLE)
		n = snprintf(line, sizeof(line), "(%s) %s:%s %s\n",
		    log_names[pri], mod, func, msg);
	else
		n = snprintf(line, sizeof(line), "<%d>%s:%s %s\n", pri, mod,
		    func, msg);
	if (n > 0)
		log_write_all(STDERR_FILENO, line,
		    (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);

	pthread_mutex_lock(&log_fd_mtx);
	if (log_fd != -1) {
		now = time(NULL);
		localtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
		n = snprintf(line, sizeof(line), "%s %s %s:%s %s\n", ts,
		    log_names[pri], mod, func, msg);
		if (n > 0)
			log_write_all(log_fd, line, (size_t)n < sizeof(line) ?
			    (size_t)n : sizeof(line) - 1);
	}
	pthread_mutex_unlock(&log_fd_mtx);
	errno = saved;
}

void
log_emit(int pri, int with_errno, const char *file, const char *func,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(pri, with_errno, file, func, fmt, ap);
	va_end(ap);
}

void
log_reason(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (buf == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

void
log_fatal(int with_errno, const char *file, const char *func,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_CRIT, with_errno, file, func, fmt, ap);
	va_end(ap);
	exit(1);
}
