/*
 * main: options, the configuration and the log; the rest is emulator_run().
 * It never forks: systemd (Type=notify) or a terminal runs it in the
 * foreground, and a daemon that detaches only hides its failures.
 *
 * Exit status: 0 fine, 1 a failure at run time, 2 a usage or configuration
 * error (as --check-config reports it).
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
#include "log.h"

#define DEFAULT_CONFIG	"./gf-machine-emulator.cfg"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: gf-machine-emulator [-fnvVh] [-c file]\n"
	    "  -c, --config FILE   configuration (default %s)\n"
	    "  -f, --foreground    log to the console, at [LOGGING] "
	    "console_level\n"
	    "  -n, --check-config  check the configuration, print it with "
	    "secrets masked\n"
	    "  -v, --verbose       log debug messages\n"
	    "  -V, --version       print the version\n"
	    "  -h, --help          print this help\n", DEFAULT_CONFIG);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config",		required_argument,	NULL, 'c' },
		{ "foreground",		no_argument,		NULL, 'f' },
		{ "check-config",	no_argument,		NULL, 'n' },
		{ "verbose",		no_argument,		NULL, 'v' },
		{ "version",		no_argument,		NULL, 'V' },
		{ "help",		no_argument,		NULL, 'h' },
		{ NULL,			0,			NULL, 0 }
	};
	const char *path = DEFAULT_CONFIG;
	struct config cf;
	enum log_mode mode;
	int ch, foreground = 0, check = 0, verbose = 0, level, rc;

	/* One malloc arena: the threads allocate little and seldom, and an
	 * arena each keeps what they free resident (about 0.2 MiB idle). */
	mallopt(M_ARENA_MAX, 1);

	while ((ch = getopt_long(argc, argv, "c:fnvVh", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'n':
			check = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'V':
			printf("gf-machine-emulator %s\n", GFE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "gf-machine-emulator: unexpected argument "
		    "'%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	/* Until the config names the levels, warnings about the config
	 * itself go where the daemon's lines will go. */
	mode = foreground || check ? LOG_TO_CONSOLE : LOG_TO_JOURNAL;
	log_init(mode, verbose ? LOG_DEBUG : LOG_INFO, NULL);
	if (config_load(&cf, path) == -1) {
		config_free(&cf);
		return 2;
	}
	if (check) {
		config_print(&cf, stdout);
		config_free(&cf);
		if (fflush(stdout) == EOF || ferror(stdout)) {
			fprintf(stderr, "gf-machine-emulator: stdout: %s\n",
			    strerror(errno));
			return 1;
		}
		return 0;
	}

	level = foreground ? cf.console_level : cf.log_level;
	if (verbose)
		level = LOG_DEBUG;
	if (log_init(mode, level, cf.log_file) == -1) {
		fprintf(stderr, "gf-machine-emulator: log file %s: %s\n",
		    cf.log_file, strerror(errno));
		config_free(&cf);
		return 1;
	}
	log_info("gf-machine-emulator %s, configuration %s", GFE_VERSION,
	    cf.path);

	rc = emulator_run(&cf, foreground, verbose);
	config_free(&cf);
	log_close();
	return rc;
}
