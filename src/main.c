/*
 * main: options, the configuration and the log; the rest is emulator_run().
 * It never forks: systemd (Type=notify) or a terminal runs it in the
 * foreground, and a daemon that detaches only hides its failures.
 *
 * Exit status: 0 fine, 1 a failure at run time, 2 a usage or configuration
 * error (as --check-config reports it).
 *
 * A fleet is split with --shard I/N (0-based I), or --shards N with I from
 * $JOB_COMPLETION_INDEX, which a Kubernetes Indexed Job sets in each pod.
 */
#include <errno.h>
#include <malloc.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "config.h"
#include "emulator.h"
#include "fleet.h"
#include "log.h"

#define DEFAULT_CONFIG	"./gf-machine-emulator.cfg"
#define JOB_INDEX_ENV	"JOB_COMPLETION_INDEX"

enum { OPT_SHARD = 256, OPT_SHARDS, OPT_PRINT_SHARD };

/* The shard as the command line gives it. */
struct shard_opt {
	const char	*shard;		/* --shard I/N, or NULL */
	const char	*shards;	/* --shards N, or NULL */
	unsigned	 index;
	unsigned	 count;
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: gf-machine-emulator [-fnvVh] [-c file] "
	    "[--shard I/N | --shards N]\n"
	    "  -c, --config FILE   configuration (default %s)\n"
	    "  -f, --foreground    log to the console, at [LOGGING] "
	    "console_level\n"
	    "  -n, --check-config  check the configuration, print it with "
	    "secrets masked\n"
	    "      --shard I/N     run shard I (0 to N-1) of the [FLEET]\n"
	    "      --shards N      the same, I from $" JOB_INDEX_ENV "\n"
	    "      --print-shard   check the configuration, print this "
	    "shard's\n"
	    "                      \"first_index count fleet_size\"\n"
	    "  -v, --verbose       log debug messages\n"
	    "  -V, --version       print the version\n"
	    "  -h, --help          print this help\n", DEFAULT_CONFIG);
}

/* A whole number of digits only, 0 .. max: no sign, no spaces. */
static int
parse_uint(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int
shard_error(const char *what, const char *val, const char *why)
{
	char esc[256];

	log_escape(esc, sizeof(esc), val, strlen(val));
	fprintf(stderr, "gf-machine-emulator: %s '%s': %s\n", what, esc, why);
	return -1;
}

/* --shard I/N, or --shards N with $JOB_COMPLETION_INDEX; neither: 0/1. */
static int
shard_parse(struct shard_opt *so)
{
	const char *slash, *env;

	so->index = 0;
	so->count = 1;
	if (so->shard != NULL && so->shards != NULL) {
		fprintf(stderr, "gf-machine-emulator: --shard and --shards "
		    "exclude each other\n");
		return -1;
	}
	if (so->shard != NULL) {
		slash = strchr(so->shard, '/');
		if (slash == NULL || parse_uint(so->shard, (size_t)(slash -
		    so->shard), CONFIG_SHARDS_MAX, &so->index) == -1 ||
		    parse_uint(slash + 1, strlen(slash + 1), CONFIG_SHARDS_MAX,
		    &so->count) == -1 || so->count == 0)
			return shard_error("--shard", so->shard, "expected I/N,"
			    " whole numbers, 0 <= I < N <= 65536");
		if (so->index >= so->count)
			return shard_error("--shard", so->shard, "I must be "
			    "below N (shards count from 0)");
		return 0;
	}
	if (so->shards == NULL)
		return 0;
	if (parse_uint(so->shards, strlen(so->shards), CONFIG_SHARDS_MAX,
	    &so->count) == -1 || so->count == 0)
		return shard_error("--shards", so->shards, "expected a whole "
		    "number from 1 to 65536");
	if ((env = getenv(JOB_INDEX_ENV)) == NULL) {
		fprintf(stderr, "gf-machine-emulator: --shards needs $%s (a "
		    "Kubernetes Indexed Job sets it), or use --shard I/N\n",
		    JOB_INDEX_ENV);
		return -1;
	}
	if (parse_uint(env, strlen(env), CONFIG_SHARDS_MAX, &so->index) == -1)
		return shard_error(JOB_INDEX_ENV, env, "not a whole number");
	if (so->index >= so->count)
		return shard_error(JOB_INDEX_ENV, env, "must be below "
		    "--shards");
	return 0;
}

/*
 * The shard into the config, and its machines checked: an empty shard or
 * shards without a Glowforge are errors.  With --check-config the config
 * and a summary (indices and counts: serials are half a login); with
 * --print-shard only "first_index count fleet_size".
 */
static int
shard_apply(struct config *cf, const struct shard_opt *so, int check,
    int print_shard)
{
	struct fleet fl;
	char why[256];

	cf->shard_index = so->index;
	cf->shard_count = so->count;
	if (check && !print_shard)
		config_print(cf, stdout);
	if (!cf->glowforge) {
		if (so->count == 1)
			return 0;
		fprintf(stderr, "gf-machine-emulator: shards need [MACHINE] "
		    "or [FLEET] in %s\n", cf->path);
		return -1;
	}
	if (fleet_build(&fl, cf, why, sizeof(why)) == -1) {
		fprintf(stderr, "gf-machine-emulator: %s\n", why);
		return -1;
	}
	if (print_shard)
		printf("%zu %zu %zu\n", fl.first, fl.n, fl.total);
	else if (check)
		printf("# shard %u/%u: machines %zu to %zu (%zu) of %zu, "
		    "%g sign-ins/s, %s stepper files\n", fl.shard, fl.nshards,
		    fl.first, fl.first + fl.n - 1, fl.n, fl.total,
		    fl.connect_rate, fl.keep_jobs ? "keeps" : "keeps no");
	fleet_free(&fl);
	return 0;
}

/* --check-config's exit status: what it printed must have been written. */
static int
check_done(void)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "gf-machine-emulator: stdout: %s\n",
		    strerror(errno));
		return 1;
	}
	return 0;
}

/* The command line. */
struct opts {
	const char		*path;		/* -c, the configuration */
	int			 foreground, check, verbose, print_shard;
	struct shard_opt	 so;
};

/* argv into o: 0 to go on, or -1 with the exit status in *status
 * (--version, --help, or a usage error told). */
static int
parse_options(int argc, char *argv[], struct opts *o, int *status)
{
	static const struct option longopts[] = {
		{ "config",		required_argument,	NULL, 'c' },
		{ "foreground",		no_argument,		NULL, 'f' },
		{ "check-config",	no_argument,		NULL, 'n' },
		{ "verbose",		no_argument,		NULL, 'v' },
		{ "version",		no_argument,		NULL, 'V' },
		{ "help",		no_argument,		NULL, 'h' },
		{ "shard",		required_argument,	NULL, OPT_SHARD },
		{ "shards",		required_argument,	NULL, OPT_SHARDS },
		{ "print-shard",	no_argument,	NULL, OPT_PRINT_SHARD },
		{ NULL,			0,			NULL, 0 }
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->path = DEFAULT_CONFIG;
	o->so.count = 1;
	*status = 0;
	while ((ch = getopt_long(argc, argv, "c:fnvVh", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
			o->path = optarg;
			break;
		case 'f':
			o->foreground = 1;
			break;
		case 'n':
			o->check = 1;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case OPT_SHARD:
			o->so.shard = optarg;
			break;
		case OPT_SHARDS:
			o->so.shards = optarg;
			break;
		case OPT_PRINT_SHARD:
			o->print_shard = o->check = 1;
			break;
		case 'V':
			printf("gf-machine-emulator %s\n", GFE_VERSION);
			return -1;
		case 'h':
			usage(stdout);
			return -1;
		default:
			usage(stderr);
			*status = 2;
			return -1;
		}
	}
	*status = 2;
	if (optind < argc) {
		fprintf(stderr, "gf-machine-emulator: unexpected argument "
		    "'%s'\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	if (shard_parse(&o->so) == -1)
		return -1;
	*status = 0;
	return 0;
}

int
main(int argc, char *argv[])
{
	struct opts o;
	struct config cf;
	enum log_mode mode;
	int level, rc;

	/* One malloc arena: the threads allocate little and seldom, and an
	 * arena each keeps what they free resident (about 0.2 MiB idle). */
	mallopt(M_ARENA_MAX, 1);

	if (parse_options(argc, argv, &o, &rc) == -1)
		return rc;

	/* Until the config names the levels, warnings about the config
	 * itself go where the daemon's lines will go. */
	mode = o.foreground || o.check ? LOG_TO_CONSOLE : LOG_TO_JOURNAL;
	log_init(mode, o.verbose ? LOG_DEBUG : LOG_INFO, NULL);
	if (config_load(&cf, o.path) == -1) {
		config_free(&cf);
		return 2;
	}
	if (shard_apply(&cf, &o.so, o.check, o.print_shard) == -1) {
		config_free(&cf);
		return 2;
	}
	if (o.check) {
		config_free(&cf);
		return check_done();
	}

	level = o.foreground ? cf.console_level : cf.log_level;
	if (o.verbose)
		level = LOG_DEBUG;
	if (log_init(mode, level, cf.log_file) == -1) {
		fprintf(stderr, "gf-machine-emulator: log file %s: %s\n",
		    cf.log_file, strerror(errno));
		config_free(&cf);
		return 1;
	}
	log_info("gf-machine-emulator %s, configuration %s", GFE_VERSION,
	    cf.path);

	rc = emulator_run(&cf, o.foreground, o.verbose);
	config_free(&cf);
	log_close();
	return rc;
}
