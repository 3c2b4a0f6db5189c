/*
 * config: see config.h.  A file is read in three passes so that every
 * problem is reported, not just the first one:
 *
 *  1. inih collects the raw keys of every section, [DEFAULT] included, each
 *     with the line it came from.  We feed inih through our own reader,
 *     which counts lines (the packaged inih does not pass them to the
 *     handler) and spots the lines inih would reject, so each gets its own
 *     message instead of inih's single "first error" line number.
 *  2. Each known key is looked up (its section, then [DEFAULT]) and
 *     %(name)s-interpolated with configparser's BasicInterpolation rules.
 *  3. Values are converted, defaulted and checked (config_check()).
 *
 * Errors go to stderr as "file:line: message" and make config_load() fail;
 * warnings go through the log as "file:line: message".
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "ff_model.h"
#include "log.h"
#include "secret.h"
#include "settings.h"

#define CONFIG_MAX_SIZE		(1024 * 1024)	/* a config, not a data file */
#define CONFIG_MAX_ENTRIES	4096	/* keys + sections: lookups are linear */
#define CONFIG_MAX_DEPTH	10	/* configparser's limit */
/* Ten references ten deep is 10^10 expansions: depth alone does not
 * bound the work or the size of a value, these do. */
#define CONFIG_MAX_REFS		1000	/* per value */
#define CONFIG_MAX_VALUE	65536	/* bytes of an expanded value */
#define CONFIG_MAX_MIB		1048576	/* MiB: a job of 1 TiB */
#define CONFIG_MAX_DELAY	3600.0	/* seconds */
#define CONFIG_MAX_TRANSFER	86400.0	/* seconds */
#define CONFIG_SECRET_MAX	4096	/* bytes read from a password file */
#define CONFIG_SERIAL_MAX	999999999999999ULL /* cJSON prints it exactly */
#define CONFIG_PASSWORD_LEN	CONFIG_PASSWORD_HEX
#define CONFIG_CSV_MAX_SIZE	(256 * 1024 * 1024) /* 1e6 lines of 256 */
#define CONFIG_RATE_MAX		1e6	/* sign-ins/s */
#define CONFIG_DEFAULT		"DEFAULT"
#define CONFIG_NONE		SIZE_MAX

#define DEFAULT_SERVER_URL	"https://app.glowforge.com"
#define DEFAULT_STATUS_URL	"wss://status.glowforge.com"
#define DEFAULT_PROFILE		"2.6"
#define DEFAULT_FF_MODEL	"finder"
#define DEFAULT_FF_NAME		"gf-machine-emulator"
#define DEFAULT_FF_SERIAL	"SNEMU0000001"
#define DEFAULT_FF_CHECK_CODE	"00000000"
#define DEFAULT_FF_BIND		"127.0.0.1"
#define DEFAULT_WEB_LISTEN	"127.0.0.1:9180"
#define CONFIG_FF_NAME_MAX	127	/* discovery's name field, less NUL */
#define CONFIG_FF_SERIAL_MAX	63	/* bytes; fits the modern reply */

enum config_kind {
	CK_STR,		/* a string; empty means unset */
	CK_SECRET,	/* a string never shown */
	CK_PATH,	/* relative to the config's folder */
	CK_BOOL,
	CK_SECONDS,
	CK_LEVEL,	/* a log level name or number */
	CK_PORT,	/* 0 .. 65535 */
	CK_MIB,		/* 1 .. CONFIG_MAX_MIB, MiB */
	CK_LEGACY,	/* read by old reference versions; ignored */
	CK_COUNT,	/* a whole number, 1 .. INT_MAX */
	CK_DL_AUTH,	/* same-origin, always, never */
	CK_RATE,	/* a number > 0 and <= CONFIG_RATE_MAX, per second */
	CK_LOOPS,	/* 0 (one per online CPU) .. CONFIG_LOOPS_MAX */
};

/*
 * Every key we read.  Order matters: a later entry for the same field
 * wins (save_sent_images over its legacy name save_puls, [THERMAL] over
 * [MOTION]).
 */
static const struct config_key {
	const char		*sect;
	const char		*key;
	enum config_kind	 kind;
	size_t			 off;
} config_keys[] = {
#define F(f)	offsetof(struct config, f)
	{ "SERVICE", "server_url", CK_STR, F(server_url) },
	{ "SERVICE", "status_service_url", CK_STR, F(status_service_url) },
	{ "SERVICE", "ca_file", CK_PATH, F(ca_file) },
	{ "SERVICE", "transfer_timeout", CK_SECONDS, F(transfer_timeout) },
	{ "SERVICE", "min_speed", CK_COUNT, F(min_speed) },
	{ "SERVICE", "min_speed_time", CK_COUNT, F(min_speed_time) },
	{ "SERVICE", "download_auth", CK_DL_AUTH, F(download_auth) },
	{ "MACHINE", "serial", CK_STR, F(serial) },
	{ "MACHINE", "hostname", CK_STR, F(hostname) },
	{ "MACHINE", "password", CK_SECRET, F(password) },
	{ "MACHINE", "password_file", CK_PATH, F(password_file) },
	{ "MACHINE", "head_id", CK_STR, F(head_id) },
	{ "MACHINE", "head_serial", CK_STR, F(head_serial) },
	{ "MACHINE", "head_firmware", CK_STR, F(head_firmware) },
	{ "FACTORY_FIRMWARE", "check", CK_BOOL, F(fw_check) },
	{ "FACTORY_FIRMWARE", "download_dir", CK_PATH, F(download_dir) },
	{ "FACTORY_FIRMWARE", "fw_version", CK_STR, F(fw_version) },
	{ "FACTORY_FIRMWARE", "app_version", CK_STR, F(app_version) },
	{ "EMULATOR", "base_dir", CK_PATH, F(base_dir) },
	{ "EMULATOR", "motion_dl_dir", CK_PATH, F(motion_dl_dir) },
	{ "EMULATOR", "image_src_dir", CK_PATH, F(image_src_dir) },
	{ "EMULATOR", "bypass_homing", CK_BOOL, F(bypass_homing) },
	{ "EMULATOR", "material_thickness", CK_STR, F(material_thickness) },
	{ "EMULATOR", "button_press_delay", CK_SECONDS,
	    F(button_press_delay) },
	{ "EMULATOR", "protocol_profile", CK_STR, F(protocol_profile) },
	{ "EMULATOR", "sequences_file", CK_PATH, F(sequences_file) },
	{ "EMULATOR", "max_job_size", CK_MIB, F(max_job_mib) },
	{ "EMULATOR", "firmware_check", CK_LEGACY, 0 },
	{ "EMULATOR", "firmware_dl_dir", CK_LEGACY, 0 },
	{ "LOGGING", "dir", CK_PATH, F(log_dir) },
	{ "LOGGING", "file", CK_PATH, F(log_file) },
	{ "LOGGING", "level", CK_LEVEL, F(log_level) },
	{ "LOGGING", "console_level", CK_LEVEL, F(console_level) },
	{ "LOGGING", "save_puls", CK_BOOL, F(save_sent_images) },
	{ "LOGGING", "save_sent_images", CK_BOOL, F(save_sent_images) },
	{ "MOTION", "warm_up_delay", CK_SECONDS, F(warm_up_delay) },
	{ "MOTION", "cool_down_delay", CK_SECONDS, F(cool_down_delay) },
	{ "THERMAL", "warm_up_delay", CK_SECONDS, F(warm_up_delay) },
	{ "THERMAL", "cool_down_delay", CK_SECONDS, F(cool_down_delay) },
	{ "FLASHFORGE", "enabled", CK_BOOL, F(ff_enabled) },
	{ "FLASHFORGE", "model", CK_STR, F(ff_model) },
	{ "FLASHFORGE", "name", CK_STR, F(ff_name) },
	{ "FLASHFORGE", "serial", CK_STR, F(ff_serial) },
	{ "FLASHFORGE", "check_code", CK_SECRET, F(ff_check_code) },
	{ "FLASHFORGE", "bind", CK_STR, F(ff_bind) },
	{ "FLASHFORGE", "tcp_port", CK_PORT, F(ff_tcp_port) },
	{ "FLASHFORGE", "http_port", CK_PORT, F(ff_http_port) },
	{ "FLASHFORGE", "discovery_port", CK_PORT, F(ff_discovery_port) },
	{ "FLASHFORGE", "multicast_port", CK_PORT, F(ff_multicast_port) },
	{ "FLASHFORGE", "camera_port", CK_PORT, F(ff_camera_port) },
	{ "FLASHFORGE", "state_file", CK_PATH, F(ff_state_file) },
	{ "FLEET", "count", CK_COUNT, F(fleet_count) },
	{ "FLEET", "serial_first", CK_STR, F(fleet_serial_first) },
	{ "FLEET", "password_file", CK_PATH, F(fleet_password_file) },
	{ "FLEET", "machines_file", CK_PATH, F(fleet_machines_file) },
	{ "FLEET", "connect_rate", CK_RATE, F(fleet_connect_rate) },
	{ "FLEET", "loops", CK_LOOPS, F(fleet_loops) },
	{ "FLEET", "keep_jobs", CK_BOOL, F(keep_jobs) },
	{ "WEB", "enabled", CK_BOOL, F(web_enabled) },
	{ "WEB", "listen", CK_STR, F(web_listen) },
	{ "WEB", "allow_remote", CK_BOOL, F(web_allow_remote) },
#undef F
};
#define CONFIG_NKEYS	(sizeof(config_keys) / sizeof(config_keys[0]))

/* Sections we know; in those marked open, any key is fine: they hold
 * tunables the reference reads that mean nothing to this emulator. */
static const struct {
	const char	*name;
	int		 open;
} config_sects[] = {
	{ CONFIG_DEFAULT, 1 }, { "SERVICE", 0 }, { "MACHINE", 0 },
	{ "FACTORY_FIRMWARE", 0 }, { "EMULATOR", 0 }, { "LOGGING", 0 },
	{ "THERMAL", 1 }, { "MOTION", 1 }, { "FLASHFORGE", 0 }, { "FLEET", 0 },
	{ "WEB", 0 },
};

enum config_pw_from { PW_NONE, PW_CONFIG, PW_FILE, PW_CREDENTIAL };

struct config_sect {
	char	*name;		/* as first written */
	int	 line;		/* of its first header */
};

struct config_kv {
	size_t	 sect;		/* index in config_src.sect */
	char	*key;		/* lowercased, as configparser does */
	char	*value;		/* raw; wiped and freed once loaded */
	int	 line;
};

/* What the file said, kept for the line numbers of config_check(). */
struct config_src {
	char			*name;		/* the path as given */
	struct config_sect	*sect;
	size_t			 nsect;
	struct config_kv	*kv;
	size_t			 nkv;
	int			 applied[CONFIG_NKEYS];	/* line, or 0 */
	enum config_pw_from	 pw_from;
	char			*pw_path;	/* the credential file read */
	int			 nomem;
};

/* Our inih reader: serves the file from memory, one line at a time. */
struct config_reader {
	struct config_src	*src;
	const char		*buf;
	size_t			 len;
	size_t			 off;
	int			 line;		/* of the text served last */
	int			 bol;		/* next byte starts a line */
	int			 cont;		/* line continues a value */
	int			 have_key;	/* inih's prev_name is set */
	size_t			 sect;		/* current section, or NONE */
	int			 bad_sect;	/* after a broken header */
	size_t			 last_kv;	/* what continuations extend */
	int			 errors;
	int			 full;		/* CONFIG_MAX_ENTRIES reached */
};

/* A growing string that leaves no copy behind when it moves. */
struct config_buf {
	char	*s;
	size_t	 len;
	size_t	 cap;
	size_t	 refs;		/* %(name)s expanded into it */
};

static void	 config_error(const char *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	 config_warn(const char *, const char *, int, const char *, ...)
		    __attribute__((format(printf, 4, 5)));
static int	 config_expand(struct config_src *, const char *,
		    const struct config_kv *, const struct config_kv *, int,
		    struct config_buf *);

#define CONFIG_WARN(file, line, ...)	\
	config_warn(__func__, (file), (line), __VA_ARGS__)

/* "file:line: message" on stderr, as compilers do, so editors can jump.
 * Escaped like a log line: a value may hold any byte. */
static void
config_error(const char *file, int line, const char *fmt, ...)
{
	char raw[1024], msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	log_escape(msg, sizeof(msg), raw, strlen(raw));
	if (line > 0)
		fprintf(stderr, "%s:%d: %s\n", file, line, msg);
	else
		fprintf(stderr, "%s: %s\n", file, msg);
}

static void
config_warn(const char *func, const char *file, int line, const char *fmt,
    ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		log_emit(LOG_WARNING, 0, __FILE__, func, "%s:%d: %s", file,
		    line, msg);
	else
		log_emit(LOG_WARNING, 0, __FILE__, func, "%s: %s", file, msg);
}

static int
config_buf_add(struct config_buf *b, const char *s, size_t n)
{
	size_t cap;
	char *ns;

	if (b->len + n + 1 > b->cap) {
		cap = b->cap != 0 ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((ns = malloc(cap)) == NULL)
			return -1;
		/* Not realloc(): it could leave a copy of a secret behind. */
		if (b->s != NULL) {
			memcpy(ns, b->s, b->len);
			explicit_bzero(b->s, b->cap);
			free(b->s);
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
	return 0;
}

static void
config_buf_wipe(struct config_buf *b)
{
	if (b->s != NULL) {
		explicit_bzero(b->s, b->cap);
		free(b->s);
	}
	memset(b, 0, sizeof(*b));
}

static const char *
config_name(const struct config *cf)
{
	if (cf->src != NULL && cf->src->name != NULL)
		return cf->src->name;
	return cf->path != NULL ? cf->path : "config";
}

static int
config_sect_known(const char *name, int *isopen)
{
	size_t i;

	for (i = 0; i < sizeof(config_sects) / sizeof(config_sects[0]); i++)
		if (strcasecmp(name, config_sects[i].name) == 0) {
			if (isopen != NULL)
				*isopen = config_sects[i].open;
			return 1;
		}
	return 0;
}

/*
 * Section names are matched without regard to case.  configparser itself
 * is strict there, so a file it accepts reads the same here; one it would
 * reject over "[Machine]" simply works.
 */
static size_t
config_sect_find(const struct config_src *src, const char *name)
{
	size_t i;

	for (i = 0; i < src->nsect; i++)
		if (strcasecmp(src->sect[i].name, name) == 0)
			return i;
	return CONFIG_NONE;
}

static size_t
config_sect_add(struct config_src *src, const char *name, size_t len,
    int line)
{
	struct config_sect *ns;
	char *s;
	size_t i;

	if ((s = strndup(name, len)) == NULL)
		return CONFIG_NONE;
	if ((i = config_sect_find(src, s)) != CONFIG_NONE) {
		/* configparser (strict=False) merges repeated sections. */
		free(s);
		return i;
	}
	ns = reallocarray(src->sect, src->nsect + 1, sizeof(*ns));
	if (ns == NULL) {
		free(s);
		return CONFIG_NONE;
	}
	src->sect = ns;
	src->sect[src->nsect].name = s;
	src->sect[src->nsect].line = line;
	return src->nsect++;
}

static int
config_reader_full(struct config_reader *r)
{
	if (r->src->nkv + r->src->nsect < CONFIG_MAX_ENTRIES)
		return 0;
	if (!r->full) {
		config_error(r->src->name, r->line, "more than %d keys and "
		    "sections: not a config file?", CONFIG_MAX_ENTRIES);
		r->errors++;
		r->full = 1;
	}
	return 1;
}

/*
 * Pass 1: the reader.  It classifies each line as it starts, the same way
 * inih will (blank or comment, continuation, [section], key and value),
 * so it knows the current section in full (inih cuts names at 50 bytes),
 * whether the handler's next call continues a value, and which lines inih
 * will drop as errors.
 */
static void
config_reader_classify(struct config_reader *r)
{
	const char *s = r->buf + r->off, *end, *rb, *delim;
	size_t sect;

	r->cont = 0;
	end = memchr(s, '\n', r->len - r->off);
	if (end == NULL)
		end = r->buf + r->len;
	if (r->line == 1 && end - s >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	if (s < end && isspace((unsigned char)*s) && r->have_key) {
		while (s < end && isspace((unsigned char)*s))
			s++;
		if (s < end && *s != ';' && *s != '#')
			r->cont = 1;
		return;
	}
	while (s < end && isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	if (s == end || *s == ';' || *s == '#')
		return;
	if (*s == '[') {
		rb = memchr(s + 1, ']', (size_t)(end - s - 1));
		if (rb == NULL) {
			config_error(r->src->name, r->line,
			    "section header without a closing ']'");
			r->errors++;
			return;
		}
		r->have_key = 0;
		r->last_kv = CONFIG_NONE;
		if (config_reader_full(r))
			return;
		if (rb == s + 1) {
			config_error(r->src->name, r->line,
			    "empty section name");
			r->errors++;
			r->sect = CONFIG_NONE;
			r->bad_sect = 1;
			return;
		}
		sect = config_sect_add(r->src, s + 1, (size_t)(rb - s - 1),
		    r->line);
		if (sect == CONFIG_NONE)
			r->src->nomem = 1;
		r->sect = sect;
		r->bad_sect = sect == CONFIG_NONE;
		return;
	}
	for (delim = s; delim < end && *delim != '=' && *delim != ':'; delim++)
		;
	if (delim == end) {
		config_error(r->src->name, r->line,
		    "expected 'key = value', 'key: value' or '[section]'");
		r->errors++;
		return;
	}
	/* inih remembers the name for continuations, if there is one. */
	r->have_key = delim > s;
}

/* An fgets() for inih: at most num - 1 bytes, up to and with the '\n'. */
static char *
config_reader_gets(char *str, int num, void *stream)
{
	struct config_reader *r = stream;
	const char *nl;
	size_t n;

	if (num < 2)
		return NULL;
	if (r->bol) {
		/*
		 * inih is done with the previous line: wipe its buffer, which
		 * may have held the password, before it is reused or freed.
		 * At a line's start inih passes the whole buffer.
		 */
		explicit_bzero(str, (size_t)num);
	}
	if (r->off >= r->len)
		return NULL;
	if (r->bol) {
		r->line++;
		r->bol = 0;
		config_reader_classify(r);
	}
	nl = memchr(r->buf + r->off, '\n', r->len - r->off);
	n = nl != NULL ? (size_t)(nl - (r->buf + r->off)) + 1 : r->len - r->off;
	if (n > (size_t)num - 1)
		n = (size_t)num - 1;	/* inih grows its buffer, asks again */
	else
		r->bol = 1;
	memcpy(str, r->buf + r->off, n);
	str[n] = '\0';
	r->off += n;
	return str;
}

static int
config_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct config_reader *r = user;
	struct config_src *src = r->src;
	struct config_kv *kv, *nkv;
	struct config_buf b = { NULL, 0, 0, 0 };
	size_t i;
	char *key;

	(void)section;	/* r->sect has it, uncut */
	if (r->cont) {
		/* configparser joins continuation lines with newlines. */
		if (r->last_kv == CONFIG_NONE)
			return 1;
		kv = &src->kv[r->last_kv];
		if (config_buf_add(&b, kv->value, strlen(kv->value)) == -1 ||
		    config_buf_add(&b, "\n", 1) == -1 ||
		    config_buf_add(&b, value, strlen(value)) == -1) {
			config_buf_wipe(&b);
			src->nomem = 1;
			return 0;
		}
		secret_free(kv->value);
		kv->value = b.s;
		return 1;
	}
	r->last_kv = CONFIG_NONE;
	if (r->sect == CONFIG_NONE) {
		if (!r->bad_sect) {
			config_error(src->name, r->line,
			    "key '%s' comes before any [section]", name);
			r->errors++;
		}
		return 1;
	}
	if (*name == '\0') {
		config_error(src->name, r->line, "a key without a name");
		r->errors++;
		return 1;
	}
	if (config_reader_full(r))
		return 1;
	if ((key = strdup(name)) == NULL) {
		src->nomem = 1;
		return 0;
	}
	for (i = 0; key[i] != '\0'; i++)
		key[i] = (char)tolower((unsigned char)key[i]);
	for (i = 0; i < src->nkv; i++) {
		kv = &src->kv[i];
		if (kv->sect == r->sect && strcmp(kv->key, key) == 0) {
			/* configparser's strict mode refuses these; a file
			 * that passes it has none, so be lenient. */
			CONFIG_WARN(src->name, r->line, "duplicate key '%s' in "
			    "[%s] (also on line %d): the last one counts", key,
			    src->sect[r->sect].name, kv->line);
			break;
		}
	}
	nkv = reallocarray(src->kv, src->nkv + 1, sizeof(*nkv));
	if (nkv == NULL) {
		free(key);
		src->nomem = 1;
		return 0;
	}
	src->kv = nkv;
	kv = &src->kv[src->nkv];
	kv->sect = r->sect;
	kv->key = key;
	kv->line = r->line;
	if ((kv->value = strdup(value)) == NULL) {
		free(key);
		src->nomem = 1;
		return 0;
	}
	r->last_kv = src->nkv++;
	return 1;
}

int
config_open_regular(const char *path, int nofollow, struct stat *st,
    char *err, size_t errlen)
{
	int fd, saved, flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;

	if (nofollow)
		flags |= O_NOFOLLOW;
	if ((fd = open(path, flags)) == -1) {
		saved = errno;	/* callers tell ENOENT apart */
		log_reason(err, errlen, "%s", errno == ELOOP && nofollow ?
		    "a symbolic link, not a file" : strerror(errno));
		errno = saved;
		return -1;
	}
	if (fstat(fd, st) == -1) {
		log_reason(err, errlen, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		log_reason(err, errlen, "not a regular file");
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads the whole file: it is small, and its buffer can then be wiped. */
static int
config_read_file(const char *path, size_t max, char **bufp, size_t *lenp,
    struct stat *st)
{
	char *buf = NULL, why[256];
	size_t len = 0;
	ssize_t n;
	int fd;

	if ((fd = config_open_regular(path, 0, st, why, sizeof(why))) == -1) {
		config_error(path, 0, "%s", why);
		return -1;
	}
	if ((uintmax_t)st->st_size > max) {
		config_error(path, 0, "larger than %zu bytes: not the file "
		    "meant?", max);
		goto fail;
	}
	if ((buf = malloc((size_t)st->st_size + 1)) == NULL) {
		config_error(path, 0, "%s", strerror(errno));
		goto fail;
	}
	while (len < (size_t)st->st_size) {
		n = read(fd, buf + len, (size_t)st->st_size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			config_error(path, 0, "%s", strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;	/* shrunk under us: take what is there */
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	*bufp = buf;
	*lenp = len;
	return 0;

fail:
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
	close(fd);
	return -1;
}

static int
config_parse(struct config_src *src, const char *buf, size_t len)
{
	struct config_reader r;
	const char *p, *nul, *nl;
	size_t longest = 0;
	int line, rc;
	int saved_max, saved_initial;
	bool saved_stack, saved_realloc, saved_inline, saved_multi;

	/* inih works on C strings: a NUL byte would end a line early. */
	if ((nul = memchr(buf, '\0', len)) != NULL) {
		line = 1;
		for (p = buf; p < nul; p++)
			line += *p == '\n';
		config_error(src->name, line, "NUL byte: not a text file?");
		return -1;
	}
	for (p = buf; p < buf + len; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(buf + len - p))) == NULL)
			nl = buf + len;
		if ((size_t)(nl - p) > longest)
			longest = (size_t)(nl - p);
	}

	/*
	 * By default inih cuts lines at 200 bytes and parses the rest as a
	 * line of its own.  Give it a heap buffer that may grow past the
	 * longest line (+3: '\r', '\n', NUL), so nothing is ever cut; and no
	 * inline comments, as in Python 3's configparser, where "a ; b" is a
	 * value.  These are process globals: put them back afterwards.
	 */
	saved_max = ini_max_line;
	saved_initial = ini_initial_alloc;
	saved_stack = ini_use_stack;
	saved_realloc = ini_allow_realloc;
	saved_inline = ini_allow_inline_comments;
	saved_multi = ini_allow_multiline;
	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_max_line = longest + 3 > 200 ? (int)(longest + 3) : 200;
	if (ini_initial_alloc > ini_max_line)
		ini_initial_alloc = ini_max_line;
	ini_allow_inline_comments = false;
	ini_allow_multiline = true;

	memset(&r, 0, sizeof(r));
	r.src = src;
	r.buf = buf;
	r.len = len;
	r.bol = 1;
	r.sect = CONFIG_NONE;
	r.last_kv = CONFIG_NONE;
	rc = ini_parse_stream(config_reader_gets, &r, config_handler, &r);

	ini_max_line = saved_max;
	ini_initial_alloc = saved_initial;
	ini_use_stack = saved_stack;
	ini_allow_realloc = saved_realloc;
	ini_allow_inline_comments = saved_inline;
	ini_allow_multiline = saved_multi;

	if (rc == -2 || src->nomem) {
		config_error(src->name, 0, "out of memory");
		return -1;
	}
	if (rc > 0 && r.errors == 0) {
		/* inih saw a problem the reader did not: still report it. */
		config_error(src->name, rc, "syntax error");
		return -1;
	}
	return r.errors > 0 ? -1 : 0;
}

/* The effective key: the section's own, else [DEFAULT]'s; the last wins. */
static const struct config_kv *
config_lookup(const struct config_src *src, const char *sect,
    const char *key)
{
	const char *names[2] = { sect, CONFIG_DEFAULT };
	size_t i, j, si;

	for (j = 0; j < 2; j++) {
		if ((si = config_sect_find(src, names[j])) == CONFIG_NONE)
			continue;
		for (i = src->nkv; i-- > 0;)
			if (src->kv[i].sect == si &&
			    strcmp(src->kv[i].key, key) == 0)
				return &src->kv[i];
	}
	return NULL;
}

/*
 * Pass 2: configparser's BasicInterpolation.  "%%" is a '%'; "%(name)s"
 * is the value of name (lowercased) in the section being read, else in
 * [DEFAULT], itself interpolated in that same section; more than 10 levels
 * of nesting is an error, which is also how a loop ends.  `top` is the key
 * being read, `kv` the one being expanded now.
 */
static int
config_expand(struct config_src *src, const char *sect,
    const struct config_kv *top, const struct config_kv *kv, int depth,
    struct config_buf *out)
{
	const struct config_kv *ref;
	const char *s = kv->value, *pct, *rp;
	char name[128];
	size_t n, i;

	if (depth > CONFIG_MAX_DEPTH) {
		config_error(src->name, top->line, "interpolation of '%s' in "
		    "[%s] nests deeper than %d levels (a loop?)", top->key,
		    sect, CONFIG_MAX_DEPTH);
		return -1;
	}
	while (*s != '\0') {
		if ((pct = strchr(s, '%')) == NULL)
			pct = s + strlen(s);
		if (config_buf_add(out, s, (size_t)(pct - s)) == -1)
			goto nomem;
		s = pct;
		if (*s == '\0')
			break;
		if (s[1] == '%') {
			if (config_buf_add(out, "%", 1) == -1)
				goto nomem;
			s += 2;
			continue;
		}
		if (s[1] != '(') {
			config_error(src->name, kv->line, "'%%' in the value "
			    "of '%s' must be followed by '%%' or '(' (write "
			    "%%%% for a literal %%)", kv->key);
			return -1;
		}
		rp = strchr(s + 2, ')');
		if (rp == NULL || rp == s + 2 || rp[1] != 's') {
			config_error(src->name, kv->line, "bad interpolation "
			    "in the value of '%s': expected %%(name)s",
			    kv->key);
			return -1;
		}
		n = (size_t)(rp - (s + 2));
		if (n >= sizeof(name)) {
			config_error(src->name, kv->line, "interpolated name "
			    "too long in the value of '%s'", kv->key);
			return -1;
		}
		for (i = 0; i < n; i++)
			name[i] = (char)tolower((unsigned char)s[2 + i]);
		name[n] = '\0';
		if ((ref = config_lookup(src, sect, name)) == NULL) {
			config_error(src->name, kv->line, "'%%(%s)s' in the "
			    "value of '%s': no key '%s' in [%s] or [%s]", name,
			    kv->key, name, sect, CONFIG_DEFAULT);
			return -1;
		}
		if (++out->refs > CONFIG_MAX_REFS) {
			config_error(src->name, top->line, "interpolation of "
			    "'%s' in [%s] expands more than %d references",
			    top->key, sect, CONFIG_MAX_REFS);
			return -1;
		}
		/* Like configparser, only a value holding '%' goes deeper. */
		if (strchr(ref->value, '%') != NULL) {
			if (config_expand(src, sect, top, ref, depth + 1,
			    out) == -1)
				return -1;
		} else if (config_buf_add(out, ref->value,
		    strlen(ref->value)) == -1)
			goto nomem;
		if (out->len > CONFIG_MAX_VALUE) {
			config_error(src->name, top->line, "interpolation of "
			    "'%s' in [%s] grows past %d bytes", top->key, sect,
			    CONFIG_MAX_VALUE);
			return -1;
		}
		s = rp + 2;
	}
	if (out->s == NULL && config_buf_add(out, "", 0) == -1)
		goto nomem;
	return 0;

nomem:
	src->nomem = 1;
	config_error(src->name, kv->line, "out of memory");
	return -1;
}

/* 1 with the interpolated value (to be wiped) and its line, 0 when the key
 * is not there, -1 after reporting an error. */
static int
config_get(struct config_src *src, const char *sect, const char *key,
    struct config_buf *out, int *line)
{
	const struct config_kv *kv;

	if ((kv = config_lookup(src, sect, key)) == NULL)
		return 0;
	*line = kv->line;
	if (config_expand(src, sect, kv, kv, 1, out) == -1) {
		config_buf_wipe(out);
		return -1;
	}
	return 1;
}

static int
config_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static int
config_parse_double(const char *s, double *out)
{
	char *end;
	double d;

	if (*s == '\0')
		return -1;
	errno = 0;
	d = strtod(s, &end);
	if (end == s || *end != '\0' || errno == ERANGE)
		return -1;
	*out = d;
	return 0;
}

static char *
config_join(const char *base, const char *rel)
{
	size_t n = strlen(base);
	char *s;

	while (rel[0] == '.' && rel[1] == '/')
		rel += 2;
	if (asprintf(&s, "%s%s%s", base, n > 0 && base[n - 1] == '/' ? "" :
	    "/", rel) == -1)
		return NULL;
	return s;
}

/* A path as written, made absolute against `base`; NULL when empty. */
static int
config_path(const char *base, const char *s, char **out)
{
	*out = NULL;
	if (*s == '\0')
		return 0;
	if (*s == '/')
		*out = strdup(s);
	else
		*out = config_join(base, s);
	return *out == NULL ? -1 : 0;
}

static char **
config_str_field(struct config *cf, size_t off)
{
	return (char **)(void *)((char *)cf + off);
}

static int *
config_int_field(struct config *cf, size_t off)
{
	return (int *)(void *)((char *)cf + off);
}

static double *
config_double_field(struct config *cf, size_t off)
{
	return (double *)(void *)((char *)cf + off);
}

static const char *const config_dl_auth_names[] = {
	[CONFIG_DL_AUTH_SAME_ORIGIN] = "same-origin",
	[CONFIG_DL_AUTH_ALWAYS] = "always",
	[CONFIG_DL_AUTH_NEVER] = "never",
};

/* A download_auth value, or -1. */
static int
config_parse_dl_auth(const char *val)
{
	size_t i;

	for (i = 0; i < sizeof(config_dl_auth_names) /
	    sizeof(config_dl_auth_names[0]); i++)
		if (strcasecmp(val, config_dl_auth_names[i]) == 0)
			return (int)i;
	return -1;
}

/* A rate per second: above 0, at most CONFIG_RATE_MAX (NaN is neither). */
static int
config_set_rate(struct config *cf, const struct config_key *k,
    const char *val, int line)
{
	double d;

	if (config_parse_double(val, &d) == -1 ||
	    !(d > 0 && d <= CONFIG_RATE_MAX)) {
		config_error(cf->src->name, line, "%s: '%s' is not a rate "
		    "above 0 and at most %g per second", k->key, val,
		    CONFIG_RATE_MAX);
		return -1;
	}
	*config_double_field(cf, k->off) = d;
	return 0;
}

/* The whole-number kinds: their range, and how an error names them
 * ("<pre><lo> to <hi><post>"). */
static const struct config_whole {
	enum config_kind kind;
	int		 lo, hi;
	const char	*pre, *post;
} config_wholes[] = {
	{ CK_PORT, 0, 65535, "a port number (", ")" },
	{ CK_MIB, 1, CONFIG_MAX_MIB, "a whole number of MiB from ", "" },
	{ CK_COUNT, 1, INT_MAX, "a whole number from ", "" },
	{ CK_LOOPS, 0, CONFIG_LOOPS_MAX, "a whole number from ", "" },
};

/* A whole number in its kind's range (config_wholes) into its int
 * field.  -1 after reporting. */
static int
config_set_whole(struct config *cf, const struct config_key *k,
    const char *val, int line)
{
	const struct config_whole *w = &config_wholes[0];
	double d;

	while (w->kind != k->kind && w + 1 < config_wholes +
	    sizeof(config_wholes) / sizeof(config_wholes[0]))
		w++;
	/* The range first: casting 1e100 or NaN to int is UB. */
	if (w->kind != k->kind || config_parse_double(val, &d) == -1 ||
	    !(d >= w->lo && d <= w->hi) || d != (int)d) {
		config_error(cf->src->name, line, "%s: '%s' is not %s%d to "
		    "%d%s", k->key, val, w->pre, w->lo, w->hi, w->post);
		return -1;
	}
	*config_int_field(cf, k->off) = (int)d;
	return 0;
}

/* Pass 3: one key's value into its field.  -1 after reporting. */
static int
config_set(struct config *cf, const struct config_key *k, const char *val,
    int line)
{
	struct config_src *src = cf->src;
	char **sp, *s = NULL;
	double d;
	int v;

	switch (k->kind) {
	case CK_LEGACY:
		log_debug("%s:%d: [%s] %s: a legacy key of the reference "
		    "emulator, ignored", src->name, line, k->sect, k->key);
		return 0;
	case CK_STR:
	case CK_SECRET:
		if (*val != '\0' && (s = strdup(val)) == NULL)
			goto nomem;
		break;
	case CK_PATH:
		if (config_path(cf->dir, val, &s) == -1)
			goto nomem;
		break;
	case CK_BOOL:
		if (config_parse_bool(val, &v) == -1) {
			config_error(src->name, line, "%s: '%s' is not a "
			    "boolean (true/false, yes/no, on/off, 1/0)",
			    k->key, val);
			return -1;
		}
		*config_int_field(cf, k->off) = v;
		return 0;
	case CK_SECONDS:
		if (config_parse_double(val, &d) == -1) {
			config_error(src->name, line, "%s: '%s' is not a "
			    "number of seconds", k->key, val);
			return -1;
		}
		*config_double_field(cf, k->off) = d;
		return 0;
	case CK_LEVEL:
		if ((v = log_parse_level(val)) == -1) {
			config_error(src->name, line, "%s: '%s' is not a log "
			    "level (DEBUG, INFO, WARNING, ERROR, CRITICAL)",
			    k->key, val);
			return -1;
		}
		*config_int_field(cf, k->off) = v;
		return 0;
	case CK_PORT:
	case CK_MIB:
	case CK_COUNT:
	case CK_LOOPS:
		return config_set_whole(cf, k, val, line);
	case CK_RATE:
		return config_set_rate(cf, k, val, line);
	case CK_DL_AUTH:
		if ((v = config_parse_dl_auth(val)) == -1) {
			config_error(src->name, line, "%s: '%s' is not one of "
			    "same-origin, always, never", k->key, val);
			return -1;
		}
		*config_int_field(cf, k->off) = v;
		return 0;
	}
	sp = config_str_field(cf, k->off);
	if (k->kind == CK_SECRET)
		secret_free(*sp);
	else
		free(*sp);
	*sp = s;
	return 0;

nomem:
	config_error(src->name, line, "out of memory");
	return -1;
}

/* The first line of a file, without its line end: a password file or a
 * systemd credential.  The buffer read is wiped.  -1 with the reason in
 * why (errno ENOENT when there is no such file). */
static int
config_read_secret(const char *path, int nofollow, char **out,
    struct stat *st, char *why, size_t whylen)
{
	char buf[CONFIG_SECRET_MAX];
	size_t len = 0, n;
	ssize_t r;
	int fd, rc = -1, saved;

	*out = NULL;
	if ((fd = config_open_regular(path, nofollow, st, why, whylen)) == -1)
		return -1;
	while (len < sizeof(buf) - 1) {
		r = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			log_reason(why, whylen, "%s", strerror(errno));
			goto done;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	/* Only the first line counts: a trailing newline is not secret. */
	n = strcspn(buf, "\n");
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		n--;
	if ((*out = strndup(buf, n)) != NULL)
		rc = 0;
	else
		log_reason(why, whylen, "out of memory");
done:
	saved = errno;
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	errno = saved;
	return rc;
}

/* Group/other-readable files that hold a secret deserve a word. */
static void
config_check_mode(const char *name, int line, const struct stat *st,
    const char *what)
{
	if ((st->st_mode & (S_IRGRP | S_IROTH)) != 0)
		CONFIG_WARN(name, line, "%s is readable by group or others "
		    "(mode %03o): chmod 600 it", what,
		    (unsigned)(st->st_mode & 0777));
}

/* Where the password comes from: password_file, else password, else a
 * systemd credential ($CREDENTIALS_DIRECTORY/password). */
static int
config_password(struct config *cf, int pw_line, const char *file,
    int file_line)
{
	struct config_src *src = cf->src;
	struct stat st;
	const char *credir;
	char *pw, *path = NULL, why[256];

	if (file != NULL) {
		if (cf->password != NULL) {
			CONFIG_WARN(src->name, pw_line, "both password and "
			    "password_file are set: password_file counts");
			secret_free(cf->password);
			cf->password = NULL;
		}
		/* Links allowed: secret stores (agenix, sops-nix) link
		 * password files into place. */
		if (config_read_secret(file, 0, &pw, &st, why,
		    sizeof(why)) == -1) {
			config_error(src->name, file_line, "password_file "
			    "'%s': %s", file, why);
			return -1;
		}
		config_check_mode(src->name, file_line, &st, "password_file");
		cf->password = pw;
		src->pw_from = PW_FILE;
		return 0;
	}
	if (cf->password != NULL) {
		src->pw_from = PW_CONFIG;
		return 0;
	}
	credir = getenv("CREDENTIALS_DIRECTORY");
	if (credir == NULL || *credir == '\0')
		return 0;
	if (asprintf(&path, "%s/password", credir) == -1) {
		config_error(src->name, 0, "out of memory");
		return -1;
	}
	/* systemd writes credentials as plain files: no link expected. */
	if (config_read_secret(path, 1, &pw, &st, why, sizeof(why)) == -1) {
		if (errno == ENOENT) {
			free(path);
			return 0;	/* other credentials, not ours */
		}
		config_error(path, 0, "%s", why);
		free(path);
		return -1;
	}
	log_debug("password from the systemd credential %s", path);
	cf->password = pw;
	src->pw_from = PW_CREDENTIAL;
	src->pw_path = path;
	return 0;
}

/* Callers append "/path": keep "https://host", not "https://host/". */
static void
config_strip_slashes(char *url)
{
	char *host;
	size_t n;

	if (url == NULL || (host = strstr(url, "://")) == NULL)
		return;
	host += 3;
	n = strlen(url);
	while (url + n > host + 1 && url[n - 1] == '/')
		url[--n] = '\0';
}

/* Absolute, but with symlinks kept: a config linked into /etc still
 * finds its files beside the link, as with Python's os.path.abspath. */
static char *
config_absolute(const char *path)
{
	char cwd[PATH_MAX];

	if (*path == '/')
		return strdup(path);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	return config_join(cwd, path);
}

static int	config_sect_line(const struct config *, const char *);

/* Which machines run, and the FlashForge's defaults. */
static int
config_machines(struct config *cf)
{
	static const struct {
		const char	*def;
		size_t		 off;
	} strs[] = {
		{ DEFAULT_FF_MODEL, offsetof(struct config, ff_model) },
		{ DEFAULT_FF_NAME, offsetof(struct config, ff_name) },
		{ DEFAULT_FF_SERIAL, offsetof(struct config, ff_serial) },
		{ DEFAULT_FF_CHECK_CODE, offsetof(struct config, ff_check_code) },
		{ DEFAULT_FF_BIND, offsetof(struct config, ff_bind) },
	};
	char **sp;
	size_t i;

	if (cf->ff_enabled == -1)
		cf->ff_enabled = config_sect_line(cf, "FLASHFORGE") != 0;
	if (cf->web_enabled == -1)
		cf->web_enabled = config_sect_line(cf, "WEB") != 0;
	if (cf->web_listen == NULL &&
	    (cf->web_listen = strdup(DEFAULT_WEB_LISTEN)) == NULL)
		return -1;
	cf->fleet = config_sect_line(cf, "FLEET") != 0;
	cf->glowforge = config_sect_line(cf, "MACHINE") != 0 || cf->fleet ||
	    !cf->ff_enabled;
	/* 10,000 machines' stepper files would fill a disk in a load test. */
	if (cf->keep_jobs == -1)
		cf->keep_jobs = !cf->fleet;
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		sp = config_str_field(cf, strs[i].off);
		if (*sp == NULL && (*sp = strdup(strs[i].def)) == NULL)
			return -1;
	}
	return 0;
}

/* Defaults that depend on other keys, and a few cross-key warnings. */
static int
config_defaults(struct config *cf)
{
	static const struct {
		const char	*key;
		const char	*code;
		size_t		 off;
	} heads[] = {
		{ "head_id", "HEid", offsetof(struct config, head_id) },
		{ "head_serial", "HEsn", offsetof(struct config, head_serial) },
		{ "head_firmware", "HEfv",
		    offsetof(struct config, head_firmware) },
	};
	const struct settings_row *row;
	struct config_src *src = cf->src;
	struct stat st;
	const char *s;
	size_t i, j, n;

	if (config_machines(cf) == -1)
		return -1;
	if (cf->server_url == NULL &&
	    (cf->server_url = strdup(DEFAULT_SERVER_URL)) == NULL)
		return -1;
	if (cf->status_service_url == NULL &&
	    (cf->status_service_url = strdup(DEFAULT_STATUS_URL)) == NULL)
		return -1;
	config_strip_slashes(cf->server_url);
	config_strip_slashes(cf->status_service_url);
	if (cf->protocol_profile == NULL &&
	    (cf->protocol_profile = strdup(DEFAULT_PROFILE)) == NULL)
		return -1;
	if (cf->base_dir == NULL && (cf->base_dir = strdup(cf->dir)) == NULL)
		return -1;
	if (cf->motion_dl_dir == NULL &&
	    (cf->motion_dl_dir = config_join(cf->base_dir, "motion")) == NULL)
		return -1;
	if (cf->ff_state_file == NULL && (cf->ff_state_file =
	    config_join(cf->base_dir, "flashforge.state")) == NULL)
		return -1;
	/* The cloud serial is written "S12345678" on the wire; people copy
	 * it with the S. */
	if (cf->serial != NULL &&
	    (cf->serial[0] == 'S' || cf->serial[0] == 's'))
		memmove(cf->serial, cf->serial + 1, strlen(cf->serial));
	if (cf->fleet_serial_first != NULL &&
	    (cf->fleet_serial_first[0] == 'S' ||
	    cf->fleet_serial_first[0] == 's'))
		memmove(cf->fleet_serial_first, cf->fleet_serial_first + 1,
		    strlen(cf->fleet_serial_first));

	/* The report would fall back to the default; say so now. */
	for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		s = *config_str_field(cf, heads[i].off);
		if (s == NULL || (row = settings_find(heads[i].code)) == NULL ||
		    row->type == SETTINGS_STR)
			continue;
		/* As settings.c takes them: '-', 1 to 15 digits, no more. */
		n = strspn(s + (*s == '-'), "0123456789");
		if (n > 0 && n <= 15 && s[(*s == '-') + n] == '\0')
			continue;
		for (j = 0; j < CONFIG_NKEYS; j++)
			if (strcmp(config_keys[j].key, heads[i].key) == 0)
				break;
		CONFIG_WARN(src->name, j < CONFIG_NKEYS ? src->applied[j] : 0,
		    "%s '%s' is not a number: the settings report keeps %s=%s",
		    heads[i].key, s, heads[i].code, row->defval);
	}
	if (cf->image_src_dir != NULL &&
	    (stat(cf->image_src_dir, &st) == -1 || !S_ISDIR(st.st_mode)))
		CONFIG_WARN(src->name, 0, "image_src_dir '%s' is not a "
		    "folder: the built-in frames are used", cf->image_src_dir);
	return 0;
}

/* Warnings for what we do not read: unknown sections and keys. */
static void
config_unknown(const struct config_src *src)
{
	const struct config_kv *kv;
	const char *sect;
	size_t i, j;
	int isopen;

	for (i = 0; i < src->nsect; i++)
		if (!config_sect_known(src->sect[i].name, NULL))
			CONFIG_WARN(src->name, src->sect[i].line,
			    "unknown section [%s]", src->sect[i].name);
	for (i = 0; i < src->nkv; i++) {
		kv = &src->kv[i];
		sect = src->sect[kv->sect].name;
		if (!config_sect_known(sect, &isopen) || isopen)
			continue;
		for (j = 0; j < CONFIG_NKEYS; j++)
			if (strcasecmp(config_keys[j].sect, sect) == 0 &&
			    strcmp(config_keys[j].key, kv->key) == 0)
				break;
		if (j == CONFIG_NKEYS)
			CONFIG_WARN(src->name, kv->line,
			    "unknown key '%s' in [%s]", kv->key, sect);
	}
}

static int
config_key_index(const char *sect, const char *key)
{
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++)
		if (strcmp(config_keys[i].sect, sect) == 0 &&
		    strcmp(config_keys[i].key, key) == 0)
			return (int)i;
	return -1;
}

/*
 * [FLEET] machines_file: "serial,password[,hostname]" a line; blank lines
 * and lines starting with '#' or ';' are skipped, spaces around a field
 * are not part of it.  Serials and passwords are never echoed.
 */

/* An optional S, then 1 to CONFIG_SERIAL_DIGITS digits: the digits in out
 * and their value, or -1. */
static int
config_serial_parse(const char *s, size_t len, char *out,
    unsigned long long *val)
{
	size_t i;

	if (len > 0 && (s[0] == 'S' || s[0] == 's')) {
		s++;
		len--;
	}
	if (len == 0 || len > CONFIG_SERIAL_DIGITS)
		return -1;
	*val = 0;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		*val = *val * 10 + (unsigned)(s[i] - '0');
	}
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

static int
config_is_password(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!isxdigit((unsigned char)p[i]))
			return 0;
	return len == CONFIG_PASSWORD_LEN;
}

/* Cuts s at its first comma (or its end): the field, trimmed. */
static char *
config_csv_field(char **s, size_t *len)
{
	char *f = *s, *end;

	if ((end = strchr(f, ',')) != NULL) {
		*end = '\0';
		*s = end + 1;
	} else
		*s = NULL;
	while (isspace((unsigned char)*f))
		f++;
	*len = strlen(f);
	while (*len > 0 && isspace((unsigned char)f[*len - 1]))
		f[--*len] = '\0';
	return f;
}

/* One machine's line into m; -1 after reporting each problem. */
static int
config_csv_line(const char *name, int line, char *s,
    struct config_machine *m, unsigned long long *val)
{
	char *f[3];
	size_t len[3], n, i;
	int bad = 0;

	for (n = 0; n < 3 && s != NULL; n++)
		f[n] = config_csv_field(&s, &len[n]);
	if (s != NULL || n < 2) {
		config_error(name, line, "%s: expected serial,password"
		    "[,hostname]", s != NULL ? "too many fields" :
		    "too few fields");
		return -1;
	}
	m->line = line;
	if (config_serial_parse(f[0], len[0], m->serial, val) == -1) {
		config_error(name, line, "serial must be 1 to %d decimal "
		    "digits (with or without a leading S)",
		    CONFIG_SERIAL_DIGITS);
		bad = 1;
	}
	if (!config_is_password(f[1], len[1])) {
		config_error(name, line, "password must be %d hexadecimal "
		    "characters", CONFIG_PASSWORD_LEN);
		bad = 1;
	} else
		memcpy(m->password, f[1], len[1] + 1);
	if (n == 3) {
		for (i = 0; i < len[2] && (isalnum((unsigned char)f[2][i]) ||
		    strchr("-._", f[2][i]) != NULL); i++)
			;
		if (i < len[2] || len[2] > CONFIG_HOSTNAME_MAX) {
			config_error(name, line, "hostname must be letters, "
			    "digits, '-', '.' or '_', at most %d",
			    CONFIG_HOSTNAME_MAX);
			bad = 1;
		} else
			memcpy(m->hostname, f[2], len[2] + 1);
	}
	return bad ? -1 : 0;
}

struct config_serial_key {
	unsigned long long	 val;
	int			 line;
};

static int
config_serial_cmp(const void *a, const void *b)
{
	const struct config_serial_key *x = a, *y = b;

	if (x->val != y->val)
		return x->val < y->val ? -1 : 1;
	return (x->line > y->line) - (x->line < y->line);
}

/* Duplicates by value ("S007" is "7"), each named at its later line. */
static int
config_csv_dups(const char *name, struct config_serial_key *keys, size_t n)
{
	size_t i, first = 0;
	int bad = 0;

	qsort(keys, n, sizeof(*keys), config_serial_cmp);
	for (i = 1; i < n; i++) {
		if (keys[i].val != keys[first].val) {
			first = i;
			continue;
		}
		config_error(name, keys[i].line, "duplicate serial (first on "
		    "line %d)", keys[first].line);
		bad = 1;
	}
	return bad ? -1 : 0;
}

/* Lines that may hold a machine: an upper bound for the one allocation
 * (no realloc: it could leave passwords behind). */
static size_t
config_csv_count(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;
	size_t n = 0;

	while (p < end) {
		while (p < end && *p != '\n' && isspace((unsigned char)*p))
			p++;
		if (p < end && *p != '\n' && *p != '#' && *p != ';')
			n++;
		while (p < end && *p++ != '\n')
			;
	}
	return n;
}

/* The lines of buf into cf->fleet_machines.  -1 after reporting. */
static int
config_csv_parse(struct config *cf, const char *name, char *buf, size_t len)
{
	struct config_serial_key *keys = NULL;
	struct config_machine *m;
	char *p, *nl, *s;
	size_t max, n = 0, nk = 0;
	int line = 0, bad = 0;

	if ((p = memchr(buf, '\0', len)) != NULL) {
		for (s = buf, line = 1; s < p; s++)
			line += *s == '\n';
		config_error(name, line, "NUL byte: not a text file?");
		return -1;
	}
	if ((max = config_csv_count(buf, len)) > CONFIG_FLEET_MAX) {
		config_error(name, 0, "more than %d machines", CONFIG_FLEET_MAX);
		return -1;
	}
	if (max == 0) {
		config_error(name, 0, "no machines in it");
		return -1;
	}
	if ((m = calloc(max, sizeof(*m))) == NULL ||
	    (keys = calloc(max, sizeof(*keys))) == NULL) {
		free(m);
		config_error(name, 0, "out of memory");
		return -1;
	}
	cf->fleet_machines = m;
	for (p = buf; p != NULL; p = nl) {
		line++;
		if ((nl = strchr(p, '\n')) != NULL)
			*nl++ = '\0';
		for (s = p; isspace((unsigned char)*s); s++)
			;
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (config_csv_line(name, line, s, &m[n], &keys[nk].val) == -1)
			bad = 1;
		if (m[n].serial[0] != '\0')	/* a bad one is no duplicate */
			keys[nk++].line = line;
		n++;
	}
	cf->fleet_nmachines = n;
	if (config_csv_dups(name, keys, nk) == -1)
		bad = 1;
	free(keys);
	return bad ? -1 : 0;
}

static int
config_fleet_csv(struct config *cf)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (config_read_file(cf->fleet_machines_file, CONFIG_CSV_MAX_SIZE,
	    &buf, &len, &st) == -1)
		return -1;
	config_check_mode(cf->fleet_machines_file, 0, &st,
	    "this file holds passwords but");
	rc = config_csv_parse(cf, cf->fleet_machines_file, buf, len);
	explicit_bzero(buf, len);
	free(buf);
	return rc;
}

/* The password (and a fleet's machines_file): what holds secrets.  st is
 * the config file's.  -1 after reporting. */
static int
config_load_secrets(struct config *cf, const struct stat *st)
{
	struct config_src *src = cf->src;
	int ki, pw_line, file_line, rc;

	ki = config_key_index("MACHINE", "password_file");
	file_line = ki != -1 ? src->applied[ki] : 0;
	ki = config_key_index("MACHINE", "password");
	pw_line = ki != -1 ? src->applied[ki] : 0;
	if (pw_line != 0)
		config_check_mode(src->name, pw_line, st,
		    "this file holds the password but");
	/* [FLEET]'s one password for all is read as [MACHINE]'s would be;
	 * config_check_fleet() refuses [MACHINE]'s login beside it. */
	ki = config_key_index("FLEET", "password_file");
	if (cf->fleet_password_file != NULL && cf->password_file == NULL &&
	    ki != -1)
		rc = config_password(cf, pw_line, cf->fleet_password_file,
		    src->applied[ki]);
	else
		rc = config_password(cf, pw_line, cf->password_file,
		    file_line);
	if (cf->fleet_machines_file != NULL &&
	    config_sect_find(src, "FLEET") != CONFIG_NONE &&
	    config_fleet_csv(cf) == -1)
		rc = -1;
	return rc;
}

int
config_load(struct config *cf, const char *path)
{
	struct config_src *src;
	struct config_buf val;
	const struct config_key *k;
	struct stat st;
	char *buf = NULL, *slash;
	size_t len = 0, i;
	int errors = 0, line, rc;

	memset(cf, 0, sizeof(*cf));
	cf->button_press_delay = 1;
	cf->max_job_mib = 128;
	cf->transfer_timeout = 900;
	cf->min_speed = 1024;
	cf->min_speed_time = 30;
	cf->log_level = LOG_INFO;
	cf->console_level = LOG_INFO;
	cf->ff_enabled = -1;		/* unset: the section decides */
	cf->web_enabled = -1;
	cf->ff_tcp_port = 8899;
	cf->ff_http_port = 8898;
	cf->ff_discovery_port = 48899;
	cf->ff_multicast_port = 19000;
	cf->ff_camera_port = 8080;
	cf->fleet_connect_rate = CONFIG_CONNECT_RATE;
	cf->fleet_loops = 1;
	cf->keep_jobs = -1;		/* unset: [FLEET] decides */
	cf->shard_count = 1;
	if ((src = calloc(1, sizeof(*src))) == NULL ||
	    (src->name = strdup(path)) == NULL) {
		free(src);
		config_error(path, 0, "out of memory");
		return -1;
	}
	cf->src = src;
	if ((cf->path = config_absolute(path)) == NULL ||
	    (cf->dir = strdup(cf->path)) == NULL) {
		config_error(path, 0, "%s", strerror(errno));
		return -1;
	}
	slash = strrchr(cf->dir, '/');
	if (slash == cf->dir)
		slash[1] = '\0';	/* "/x.cfg": the root */
	else
		*slash = '\0';

	if (config_read_file(path, CONFIG_MAX_SIZE, &buf, &len, &st) == -1)
		return -1;
	if (config_parse(src, buf, len) == -1)
		errors++;
	explicit_bzero(buf, len);
	free(buf);
	if (src->nomem)
		goto done;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		k = &config_keys[i];
		memset(&val, 0, sizeof(val));
		rc = config_get(src, k->sect, k->key, &val, &line);
		if (rc == 0)
			continue;
		if (rc == -1 || config_set(cf, k, val.s, line) == -1)
			errors++;
		else
			src->applied[i] = line;
		config_buf_wipe(&val);
	}
	config_unknown(src);
	if (config_load_secrets(cf, &st) == -1)
		errors++;
	if (config_defaults(cf) == -1) {
		config_error(src->name, 0, "out of memory");
		errors++;
		goto done;
	}
	if (config_check(cf) == -1)
		errors++;

done:
	/* The raw values held the password: keep only keys and lines. */
	for (i = 0; i < src->nkv; i++) {
		secret_free(src->kv[i].value);
		src->kv[i].value = NULL;
	}
	return errors > 0 ? -1 : 0;
}

/* The line that set a field (the last applied key for it), or 0. */
static int
config_field_line(const struct config *cf, size_t off)
{
	int line = 0;
	size_t i;

	if (cf->src == NULL)
		return 0;
	for (i = 0; i < CONFIG_NKEYS; i++)
		if (config_keys[i].off == off &&
		    config_keys[i].kind != CK_LEGACY && cf->src->applied[i])
			line = cf->src->applied[i];
	return line;
}

static int
config_sect_line(const struct config *cf, const char *sect)
{
	size_t i;

	if (cf->src == NULL ||
	    (i = config_sect_find(cf->src, sect)) == CONFIG_NONE)
		return 0;
	return cf->src->sect[i].line;
}

static int
config_check_url(const struct config *cf, const char *key, const char *url,
    size_t off, const char *s1, const char *s2)
{
	const char *host;
	size_t n;

	if (url == NULL)
		return 0;	/* only a hand-made struct; load defaults it */
	host = strstr(url, "://");
	if (host != NULL) {
		n = (size_t)(host - url);
		if ((n == strlen(s1) && strncasecmp(url, s1, n) == 0) ||
		    (n == strlen(s2) && strncasecmp(url, s2, n) == 0)) {
			host += 3;
			if (*host != '\0' && *host != '/' &&
			    strpbrk(url, " \t\r\n") == NULL)
				return 0;
		}
	}
	config_error(config_name(cf), config_field_line(cf, off),
	    "%s '%s' must be a %s:// or %s:// URL with a host", key, url, s1,
	    s2);
	return -1;
}

static int
config_check_delay(const struct config *cf, const char *key, double d,
    size_t off)
{
	if (isfinite(d) && d >= 0 && d <= CONFIG_MAX_DELAY)
		return 0;
	config_error(config_name(cf), config_field_line(cf, off),
	    "%s must be between 0 and %g seconds, not %g", key,
	    CONFIG_MAX_DELAY, d);
	return -1;
}

static int
config_check_readable(const struct config *cf, const char *key,
    const char *path, size_t off)
{
	struct stat st;
	char why[256];
	int fd;

	if (path == NULL)
		return 0;
	if ((fd = config_open_regular(path, 0, &st, why, sizeof(why))) != -1) {
		close(fd);
		return 0;
	}
	config_error(config_name(cf), config_field_line(cf, off),
	    "%s '%s': %s", key, path, why);
	return -1;
}

/* [MACHINE]: the Glowforge's login. */
static int
config_check_glowforge(const struct config *cf)
{
	const char *name = config_name(cf), *p, *pwname;
	unsigned long long serial;
	size_t n;
	int bad = 0, line;

	if (cf->serial == NULL || *cf->serial == '\0') {
		/* Unset or empty: point at the empty key, else the section. */
		line = config_field_line(cf, offsetof(struct config, serial));
		config_error(name, line != 0 ? line :
		    config_sect_line(cf, "MACHINE"),
		    "missing required key 'serial' in [MACHINE]");
		bad = 1;
	} else {
		line = config_field_line(cf, offsetof(struct config, serial));
		/* Not echoed: the serial is half of the machine's login. */
		n = strspn(cf->serial, "0123456789");
		errno = 0;
		serial = strtoull(cf->serial, NULL, 10);
		if (n == 0 || cf->serial[n] != '\0') {
			config_error(name, line, "serial must be decimal digits"
			    " (with or without a leading S)");
			bad = 1;
		} else if (errno != 0 || serial > CONFIG_SERIAL_MAX) {
			config_error(name, line, "serial is out of range");
			bad = 1;
		}
	}

	if (cf->password == NULL) {
		config_error(name, config_sect_line(cf, "MACHINE"),
		    "no password: set password or password_file in [MACHINE]"
		    " (or give a systemd credential named 'password')");
		bad = 1;
	} else {
		for (p = cf->password; isxdigit((unsigned char)*p); p++)
			;
		if (*p != '\0' || p - cf->password != CONFIG_PASSWORD_LEN) {
			pwname = "password";
			line = config_field_line(cf,
			    offsetof(struct config, password));
			if (cf->src != NULL && cf->src->pw_from == PW_FILE) {
				pwname = "the first line of password_file";
				line = config_field_line(cf,
				    offsetof(struct config, password_file));
			}
			/* Never the value, not even its length. */
			if (cf->src != NULL &&
			    cf->src->pw_from == PW_CREDENTIAL)
				config_error(cf->src->pw_path, 0, "must be %d "
				    "hexadecimal characters",
				    CONFIG_PASSWORD_LEN);
			else
				config_error(name, line, "%s must be %d "
				    "hexadecimal characters", pwname,
				    CONFIG_PASSWORD_LEN);
			bad = 1;
		}
	}

	return bad ? -1 : 0;
}

/* [FLASHFORGE]: what the printer answers with and where. */
static int
config_check_ff(const struct config *cf)
{
	const char *name = config_name(cf), *p;
	struct in_addr a;
	int bad = 0, line;
	enum ff_kind kind;

#define FF_LINE(f)	config_field_line(cf, offsetof(struct config, f))
	if (ff_model_kind_parse(cf->ff_model, &kind) == -1) {
		config_error(name, FF_LINE(ff_model), "model '%s' is not one "
		    "of finder, adventurer3, adventurer4, adventurer5m, "
		    "adventurer5m-pro", cf->ff_model);
		bad = 1;
	}
	if (inet_pton(AF_INET, cf->ff_bind, &a) != 1) {
		config_error(name, FF_LINE(ff_bind), "bind '%s' is not an "
		    "IPv4 address", cf->ff_bind);
		bad = 1;
	}
	/* They go into fixed-size discovery fields and reply lines. */
	for (p = cf->ff_name; *p != '\0' && (unsigned char)*p >= ' ' &&
	    *p != 0x7f; p++)
		;
	if (*p != '\0' || p - cf->ff_name > CONFIG_FF_NAME_MAX) {
		config_error(name, FF_LINE(ff_name), "name must be printable "
		    "and at most %d bytes", CONFIG_FF_NAME_MAX);
		bad = 1;
	}
	for (p = cf->ff_serial; isalnum((unsigned char)*p); p++)
		;
	if (*p != '\0' || p - cf->ff_serial > CONFIG_FF_SERIAL_MAX) {
		config_error(name, FF_LINE(ff_serial), "serial must be letters "
		    "and digits, at most %d", CONFIG_FF_SERIAL_MAX);
		bad = 1;
	}
	for (p = cf->ff_check_code; isalnum((unsigned char)*p); p++)
		;
	if (*p != '\0' || p - cf->ff_check_code > CONFIG_FF_SERIAL_MAX) {
		/* Not echoed: it is the HTTP API's password. */
		config_error(name, FF_LINE(ff_check_code), "check_code must "
		    "be letters and digits, at most %d", CONFIG_FF_SERIAL_MAX);
		bad = 1;
	}
	if (cf->ff_tcp_port == 0) {
		config_error(name, FF_LINE(ff_tcp_port), "tcp_port must not be "
		    "0: it is the printer's command port");
		bad = 1;
	} else if (cf->ff_tcp_port == cf->ff_http_port) {
		line = FF_LINE(ff_http_port);
		config_error(name, line ? line : FF_LINE(ff_tcp_port),
		    "tcp_port and http_port are both %d", cf->ff_tcp_port);
		bad = 1;
	}
	if (cf->ff_discovery_port != 0 &&
	    cf->ff_discovery_port == cf->ff_multicast_port) {
		line = FF_LINE(ff_multicast_port);
		config_error(name, line ? line : FF_LINE(ff_discovery_port),
		    "discovery_port and multicast_port are both %d",
		    cf->ff_discovery_port);
		bad = 1;
	}
	if (cf->ff_camera_port != 0 && (cf->ff_camera_port ==
	    cf->ff_tcp_port || cf->ff_camera_port == cf->ff_http_port)) {
		config_error(name, FF_LINE(ff_camera_port), "camera_port %d is "
		    "already the tcp_port or http_port", cf->ff_camera_port);
		bad = 1;
	}
#undef FF_LINE
	return bad ? -1 : 0;
}

/* The line of key in sect, as applied, or 0. */
static int
config_key_line(const struct config *cf, const char *sect, const char *key)
{
	int ki = config_key_index(sect, key);

	return cf->src != NULL && ki != -1 ? cf->src->applied[ki] : 0;
}

/* count mode: serials from serial_first, one password for all. */
static int
config_check_fleet_count(const struct config *cf)
{
	const char *name = config_name(cf);
	unsigned long long first;
	char digits[CONFIG_SERIAL_DIGITS + 1];
	int bad = 0, line = config_key_line(cf, "FLEET", "serial_first");

	if (cf->fleet_count > CONFIG_FLEET_MAX) {
		config_error(name, config_key_line(cf, "FLEET", "count"),
		    "count must be at most %d", CONFIG_FLEET_MAX);
		bad = 1;
	}
	/* Not echoed: a serial is half of a machine's login. */
	if (cf->fleet_serial_first == NULL) {
		config_error(name, config_sect_line(cf, "FLEET"), "count "
		    "needs serial_first in [FLEET]");
		bad = 1;
	} else if (config_serial_parse(cf->fleet_serial_first,
	    strlen(cf->fleet_serial_first), digits, &first) == -1 ||
	    digits[0] == '0') {
		config_error(name, line, "serial_first must be 1 to %d decimal "
		    "digits, not starting with 0", CONFIG_SERIAL_DIGITS);
		bad = 1;
	} else if (first + (unsigned long long)cf->fleet_count - 1 >
	    CONFIG_SERIAL_MAX) {
		config_error(name, line, "serial_first + count - 1 has more "
		    "than %d digits", CONFIG_SERIAL_DIGITS);
		bad = 1;
	}
	if (cf->password == NULL) {
		config_error(name, config_sect_line(cf, "FLEET"), "no "
		    "password: set password_file in [FLEET] (or give a "
		    "systemd credential named 'password')");
		bad = 1;
	} else if (!config_is_password(cf->password, strlen(cf->password))) {
		if (cf->src != NULL && cf->src->pw_from == PW_CREDENTIAL)
			config_error(cf->src->pw_path, 0, "must be %d "
			    "hexadecimal characters", CONFIG_PASSWORD_LEN);
		else
			config_error(name, config_key_line(cf, "FLEET",
			    "password_file"), "the first line of password_file"
			    " must be %d hexadecimal characters",
			    CONFIG_PASSWORD_LEN);
		bad = 1;
	}
	return bad ? -1 : 0;
}

/* [FLEET]: count or machines_file, and no [MACHINE] login beside it. */
static int
config_check_fleet(const struct config *cf)
{
	static const char *const login[] = {
		"serial", "password", "password_file", "hostname",
	};
	static const char *const count_only[] = {
		"serial_first", "password_file",
	};
	const char *name = config_name(cf);
	size_t i;
	int bad = 0, line;

	for (i = 0; i < sizeof(login) / sizeof(login[0]); i++)
		if ((line = config_key_line(cf, "MACHINE", login[i])) != 0) {
			config_error(name, line, "%s in [MACHINE]: a [FLEET] "
			    "names its machines itself", login[i]);
			bad = 1;
		}
	if (cf->fleet_count != 0 && cf->fleet_machines_file != NULL) {
		config_error(name, config_key_line(cf, "FLEET",
		    "machines_file"), "count and machines_file exclude each "
		    "other: one counts serials up, the other lists them");
		return -1;
	}
	if (cf->fleet_machines_file != NULL) {
		for (i = 0; i < sizeof(count_only) / sizeof(count_only[0]);
		    i++)
			if ((line = config_key_line(cf, "FLEET",
			    count_only[i])) != 0) {
				config_error(name, line, "%s goes with count: "
				    "machines_file lists a serial and a "
				    "password a line", count_only[i]);
				bad = 1;
			}
		return bad ? -1 : 0;
	}
	if (cf->fleet_count == 0) {
		config_error(name, config_sect_line(cf, "FLEET"), "[FLEET] "
		    "needs count (with serial_first) or machines_file");
		return -1;
	}
	if (config_check_fleet_count(cf) == -1)
		bad = 1;
	return bad ? -1 : 0;
}

int
config_web_listen(const char *listen, char *ip, size_t iplen, int *port)
{
	const char *colon;
	struct in_addr a;
	char *end;
	long p;

	if (listen == NULL || (colon = strrchr(listen, ':')) == NULL ||
	    (size_t)(colon - listen) >= iplen)
		return -1;
	memcpy(ip, listen, (size_t)(colon - listen));
	ip[colon - listen] = '\0';
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 0 ||
	    p > 65535 || inet_pton(AF_INET, ip, &a) != 1)
		return -1;
	*port = (int)p;
	/* 127.0.0.0/8 only: anything else may be reached from elsewhere. */
	return (ntohl(a.s_addr) >> 24) == 127 ? 0 : 1;
}

/* [WEB]: where the page listens, loopback unless asked otherwise. */
static int
config_check_web(const struct config *cf)
{
	int line = config_field_line(cf, offsetof(struct config, web_listen));
	char ip[64];
	int port, r;

	if ((r = config_web_listen(cf->web_listen, ip, sizeof(ip), &port)) ==
	    -1) {
		config_error(config_name(cf), line, "[WEB] listen '%s' is not "
		    "IPv4:port", cf->web_listen);
		return -1;
	}
	if (r == 1 && !cf->web_allow_remote) {
		config_error(config_name(cf), line, "[WEB] listen %s is not a "
		    "loopback address: other hosts could read it; set "
		    "allow_remote = True to mean it", cf->web_listen);
		return -1;
	}
	return 0;
}

int
config_check(const struct config *cf)
{
	const char *name = config_name(cf);
	int bad = 0;

	/* By hand (tests), neither flag is set: the Glowforge is checked. */
	if (cf->fleet) {
		if (config_check_fleet(cf) == -1)
			bad = 1;
	} else if ((cf->glowforge || !cf->ff_enabled) &&
	    config_check_glowforge(cf) == -1)
		bad = 1;
	if (cf->ff_enabled && config_check_ff(cf) == -1)
		bad = 1;
	if (cf->web_enabled == 1 && config_check_web(cf) == -1)
		bad = 1;
	if (config_check_url(cf, "server_url", cf->server_url,
	    offsetof(struct config, server_url), "http", "https") == -1)
		bad = 1;
	if (config_check_url(cf, "status_service_url", cf->status_service_url,
	    offsetof(struct config, status_service_url), "ws", "wss") == -1)
		bad = 1;
	if (cf->protocol_profile != NULL &&
	    strcmp(cf->protocol_profile, "2.6") != 0 &&
	    strcmp(cf->protocol_profile, "1.x") != 0) {
		config_error(name, config_field_line(cf,
		    offsetof(struct config, protocol_profile)),
		    "protocol_profile '%s' is not one of 2.6, 1.x",
		    cf->protocol_profile);
		bad = 1;
	}
	if (config_check_delay(cf, "button_press_delay",
	    cf->button_press_delay,
	    offsetof(struct config, button_press_delay)) == -1)
		bad = 1;
	/* 0 only by hand (tests): the default. */
	if (cf->transfer_timeout != 0 && !(cf->transfer_timeout >= 1 &&
	    cf->transfer_timeout <= CONFIG_MAX_TRANSFER)) {
		config_error(name, config_field_line(cf,
		    offsetof(struct config, transfer_timeout)),
		    "transfer_timeout must be between 1 and %g seconds, not %g",
		    CONFIG_MAX_TRANSFER, cf->transfer_timeout);
		bad = 1;
	}
	if (config_check_delay(cf, "warm_up_delay", cf->warm_up_delay,
	    offsetof(struct config, warm_up_delay)) == -1)
		bad = 1;
	if (config_check_delay(cf, "cool_down_delay", cf->cool_down_delay,
	    offsetof(struct config, cool_down_delay)) == -1)
		bad = 1;
	if (cf->log_level < LOG_EMERG || cf->log_level > LOG_DEBUG ||
	    cf->console_level < LOG_EMERG || cf->console_level > LOG_DEBUG) {
		config_error(name, 0, "log levels must be syslog priorities "
		    "(0..7)");
		bad = 1;
	}
	if (config_check_readable(cf, "ca_file", cf->ca_file,
	    offsetof(struct config, ca_file)) == -1)
		bad = 1;
	if (config_check_readable(cf, "sequences_file", cf->sequences_file,
	    offsetof(struct config, sequences_file)) == -1)
		bad = 1;
	return bad ? -1 : 0;
}

void
config_free(struct config *cf)
{
	struct config_src *src = cf->src;
	size_t i;

	if (src != NULL) {
		for (i = 0; i < src->nkv; i++) {
			free(src->kv[i].key);
			secret_free(src->kv[i].value);
		}
		free(src->kv);
		for (i = 0; i < src->nsect; i++)
			free(src->sect[i].name);
		free(src->sect);
		free(src->pw_path);
		free(src->name);
		free(src);
	}
	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (config_keys[i].kind == CK_STR ||
		    config_keys[i].kind == CK_PATH ||
		    config_keys[i].kind == CK_SECRET) {
			secret_free(*config_str_field(cf,
			    config_keys[i].off));
			*config_str_field(cf, config_keys[i].off) = NULL;
		}
	}
	if (cf->fleet_machines != NULL) {
		explicit_bzero(cf->fleet_machines, cf->fleet_nmachines *
		    sizeof(*cf->fleet_machines));
		free(cf->fleet_machines);
	}
	free(cf->path);
	free(cf->dir);
	explicit_bzero(cf, sizeof(*cf));
}

void
config_keep_runtime(struct config *dst, const struct config *src)
{
	dst->shard_index = src->shard_index;
	dst->shard_count = src->shard_count;
}

size_t
config_fleet_size(const struct config *cf)
{
	if (cf->fleet)
		return cf->fleet_machines_file != NULL ?
		    cf->fleet_nmachines : (size_t)cf->fleet_count;
	return cf->glowforge ? 1 : 0;
}

/*
 * Printing, in the file's own syntax.  '%' is doubled so the output reads
 * back as the same value, and continuation lines are indented.
 */
static void
config_print_str(FILE *fp, const char *key, const char *val)
{
	const char *s;

	if (val == NULL) {
		fprintf(fp, "# %s: (not set)\n", key);
		return;
	}
	fprintf(fp, "%s = ", key);
	for (s = val; *s != '\0'; s++) {
		if (*s == '%')
			fputs("%%", fp);
		else if (*s == '\n')
			fputs("\n\t", fp);
		else
			fputc(*s, fp);
	}
	fputc('\n', fp);
}

static void
config_print_bool(FILE *fp, const char *key, int v)
{
	fprintf(fp, "%s = %s\n", key, v ? "True" : "False");
}

static void
config_print_double(FILE *fp, const char *key, double d)
{
	char buf[64];

	/* The shortest form that reads back as the same number. */
	snprintf(buf, sizeof(buf), "%.15g", d);
	if (strtod(buf, NULL) != d)
		snprintf(buf, sizeof(buf), "%.17g", d);
	fprintf(fp, "%s = %s\n", key, buf);
}

static void
config_print_level(FILE *fp, const char *key, int pri)
{
	static const char *const names[] = {
		NULL, NULL, "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO",
		"DEBUG"
	};

	if (pri >= 0 && pri <= LOG_DEBUG && names[pri] != NULL)
		fprintf(fp, "%s = %s\n", key, names[pri]);
	else
		fprintf(fp, "%s = %d\n", key, pri);
}

/* [FLEET]: serial_first is half of every machine's login, so only
 * said to be set. */
static void
config_print_fleet(const struct config *cf, FILE *fp)
{
	fputs("\n[FLEET]\n", fp);
	if (cf->fleet_count != 0)
		fprintf(fp, "count = %d\n", cf->fleet_count);
	else
		fputs("# count: (not set)\n", fp);
	/* Half of every machine's login: said to be set, not shown. */
	fprintf(fp, "# serial_first: %s\n", cf->fleet_serial_first !=
	    NULL ? "(set, not shown)" : "(not set)");
	config_print_str(fp, "password_file", cf->fleet_password_file);
	config_print_str(fp, "machines_file", cf->fleet_machines_file);
	config_print_double(fp, "connect_rate",
	    cf->fleet_connect_rate);
	config_print_bool(fp, "keep_jobs", cf->keep_jobs);
	fprintf(fp, "# machines in the fleet: %zu\n",
	    config_fleet_size(cf));
	fprintf(fp, "loops = %d\n", cf->fleet_loops);
}

void
config_print(const struct config *cf, FILE *fp)
{
	fprintf(fp, "# effective configuration of %s\n",
	    cf->path != NULL ? cf->path : "(none)");

	fputs("\n[SERVICE]\n", fp);
	config_print_str(fp, "server_url", cf->server_url);
	config_print_str(fp, "status_service_url", cf->status_service_url);
	config_print_str(fp, "ca_file", cf->ca_file);
	config_print_double(fp, "transfer_timeout", cf->transfer_timeout);
	fprintf(fp, "min_speed = %d\n", cf->min_speed);
	fprintf(fp, "min_speed_time = %d\n", cf->min_speed_time);
	if (cf->download_auth >= 0 && cf->download_auth <=
	    CONFIG_DL_AUTH_NEVER)
		fprintf(fp, "download_auth = %s\n",
		    config_dl_auth_names[cf->download_auth]);

	fputs("\n[MACHINE]\n", fp);
	config_print_str(fp, "serial", cf->serial);
	config_print_str(fp, "hostname", cf->hostname);
	/* The secret itself never leaves the process. */
	config_print_str(fp, "password", cf->password != NULL && !cf->fleet ?
	    "********" : NULL);
	config_print_str(fp, "password_file", cf->password_file);
	config_print_str(fp, "head_id", cf->head_id);
	config_print_str(fp, "head_serial", cf->head_serial);
	config_print_str(fp, "head_firmware", cf->head_firmware);

	fputs("\n[FACTORY_FIRMWARE]\n", fp);
	config_print_bool(fp, "check", cf->fw_check);
	config_print_str(fp, "download_dir", cf->download_dir);
	config_print_str(fp, "fw_version", cf->fw_version);
	config_print_str(fp, "app_version", cf->app_version);

	fputs("\n[EMULATOR]\n", fp);
	config_print_str(fp, "base_dir", cf->base_dir);
	config_print_str(fp, "motion_dl_dir", cf->motion_dl_dir);
	config_print_str(fp, "image_src_dir", cf->image_src_dir);
	config_print_bool(fp, "bypass_homing", cf->bypass_homing);
	config_print_str(fp, "material_thickness", cf->material_thickness);
	config_print_double(fp, "button_press_delay", cf->button_press_delay);
	config_print_str(fp, "protocol_profile", cf->protocol_profile);
	config_print_str(fp, "sequences_file", cf->sequences_file);
	fprintf(fp, "max_job_size = %d\n", cf->max_job_mib);

	fputs("\n[LOGGING]\n", fp);
	config_print_str(fp, "dir", cf->log_dir);
	config_print_str(fp, "file", cf->log_file);
	config_print_level(fp, "level", cf->log_level);
	config_print_level(fp, "console_level", cf->console_level);
	config_print_bool(fp, "save_sent_images", cf->save_sent_images);

	fputs("\n[THERMAL]\n", fp);
	config_print_double(fp, "warm_up_delay", cf->warm_up_delay);
	config_print_double(fp, "cool_down_delay", cf->cool_down_delay);

	fputs("\n[FLASHFORGE]\n", fp);
	config_print_bool(fp, "enabled", cf->ff_enabled);
	config_print_str(fp, "model", cf->ff_model);
	config_print_str(fp, "name", cf->ff_name);
	config_print_str(fp, "serial", cf->ff_serial);
	config_print_str(fp, "check_code", cf->ff_check_code != NULL ?
	    "********" : NULL);
	config_print_str(fp, "bind", cf->ff_bind);
	fprintf(fp, "tcp_port = %d\n", cf->ff_tcp_port);
	fprintf(fp, "http_port = %d\n", cf->ff_http_port);
	fprintf(fp, "discovery_port = %d\n", cf->ff_discovery_port);
	fprintf(fp, "multicast_port = %d\n", cf->ff_multicast_port);
	fprintf(fp, "camera_port = %d\n", cf->ff_camera_port);
	config_print_str(fp, "state_file", cf->ff_state_file);

	if (cf->fleet)
		config_print_fleet(cf, fp);
	fputs("\n[WEB]\n", fp);
	config_print_bool(fp, "enabled", cf->web_enabled);
	config_print_str(fp, "listen", cf->web_listen);
	config_print_bool(fp, "allow_remote", cf->web_allow_remote);

	fprintf(fp, "\n# machines: %s%s%s\n", cf->glowforge ? "glowforge" : "",
	    cf->glowforge && cf->ff_enabled ? ", " : "",
	    cf->ff_enabled ? "flashforge" : "");
}
