/*
 * log: one line per message, to the console (--foreground), to stderr with
 * syslog priority prefixes for journald, and optionally to a file.
 * log_warn() appends strerror(errno); log_warnx() does not.  fatal*() are
 * for start-up only: once the daemon serves, errors are logged and survived.
 * Thread-safe: every line is written with one write(2).
 */
#ifndef GFE_LOG_H
#define GFE_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>

/* Where lines go: LOG_TO_CONSOLE prints "(LEVEL) module:function message";
 * otherwise "<pri>module:function message" for journald. */
enum log_mode { LOG_TO_CONSOLE, LOG_TO_JOURNAL };

/* level: a syslog priority (LOG_ERR .. LOG_DEBUG); lines above it are dropped.
 * file: NULL, or a path appended to (one line per message, timestamped). */
int	 log_init(enum log_mode mode, int level, const char *file);
void	 log_setlevel(int level);
int	 log_getlevel(void);
enum log_mode log_getmode(void);
void	 log_close(void);
/* Parses "DEBUG", "info", "warning", "10" (Python logging numbers) or a
 * syslog number; -1 when unknown. */
int	 log_parse_level(const char *s);

/* Copies len bytes of src into dst (size bytes, NUL-terminated), control
 * bytes (C0, DEL, and C1 as UTF-8) written as "\xNN", so text from outside
 * can neither start a line nor reach a terminal as an escape sequence.
 * Never cuts an escape in half; returns how many bytes of src went in
 * (len, unless dst was too small).
 * log_vemit() runs every message through it. */
size_t	 log_escape(char *dst, size_t size, const char *src, size_t len);

void	 log_emit(int pri, int with_errno, const char *file, const char *func,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void	 log_vemit(int pri, int with_errno, const char *file, const char *func,
	    const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
/* Formats a one-line reason into a caller's err buffer (the "err, errlen"
 * convention of the parsers); logs nothing.  buf may be NULL. */
void	 log_reason(char *buf, size_t len, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	 log_fatal(int with_errno, const char *file, const char *func,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5), noreturn));

#define log_warn(...)	log_emit(LOG_WARNING, 1, __FILE__, __func__, __VA_ARGS__)
#define log_warnx(...)	log_emit(LOG_WARNING, 0, __FILE__, __func__, __VA_ARGS__)
#define log_err(...)	log_emit(LOG_ERR, 1, __FILE__, __func__, __VA_ARGS__)
#define log_errx(...)	log_emit(LOG_ERR, 0, __FILE__, __func__, __VA_ARGS__)
#define log_notice(...)	log_emit(LOG_NOTICE, 0, __FILE__, __func__, __VA_ARGS__)
#define log_info(...)	log_emit(LOG_INFO, 0, __FILE__, __func__, __VA_ARGS__)
#define log_debug(...)	log_emit(LOG_DEBUG, 0, __FILE__, __func__, __VA_ARGS__)
#define fatal(...)	log_fatal(1, __FILE__, __func__, __VA_ARGS__)
#define fatalx(...)	log_fatal(0, __FILE__, __func__, __VA_ARGS__)

#endif
