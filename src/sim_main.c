/*
 * gf-cloud-sim: an offline stand-in for the Glowforge service, so the
 * emulator can be driven and tested with no account.  It serves sign-in,
 * the firmware probe, uploads and pulse files over HTTP(S), and plays a
 * scenario of actions over the status WebSocket, checking every answer.
 *
 * Exit status: 0 the scenario passed, 1 it failed (the reason on stderr),
 * 2 usage or set-up error.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sim_scenario.h"
#include "sim_server.h"

#define SIM_PASSWORD_MAX	256

static void
sim_main_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: gf-cloud-sim --serial S (--password P | --password-file F)"
	    "\n"
	    "           --scenario FILE [--listen ADDR] [--port N]\n"
	    "           [--transcript FILE] [--pulse-dir DIR]\n"
	    "           [--upload-dir DIR] [--tls-cert PEM --tls-key PEM]\n"
	    "           [--timeout SECS] [--secrets FILE] [--summary FILE]\n"
	    "           [--latency FILE] [--machine-pid-file FILE]\n"
	    "           [--machine-memory FILE] [--print-port] [--verbose]\n"
	    "       gf-cloud-sim --scenario FILE --print-config\n");
}

static int
sim_main_number(const char *s, long min, long max, long *v)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || n < min || n > max)
		return -1;
	*v = n;
	return 0;
}

static int
sim_main_dir(const char *opt, const char *path)
{
	struct stat sb;

	if (stat(path, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "gf-cloud-sim: %s %s: not a directory\n", opt,
		    path);
		return -1;
	}
	return 0;
}

/* The first line of the file, without its newline. */
static int
sim_main_read_password(const char *path, char *buf, size_t len)
{
	ssize_t n;
	size_t got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "gf-cloud-sim: %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	while (got < len - 1) {
		n = read(fd, buf + got, len - 1 - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "listen",		required_argument, NULL, 'l' },
		{ "port",		required_argument, NULL, 'p' },
		{ "serial",		required_argument, NULL, 's' },
		{ "password",		required_argument, NULL, 'P' },
		{ "password-file",	required_argument, NULL, 'F' },
		{ "scenario",		required_argument, NULL, 'S' },
		{ "transcript",		required_argument, NULL, 't' },
		{ "pulse-dir",		required_argument, NULL, 'd' },
		{ "upload-dir",		required_argument, NULL, 'u' },
		{ "tls-cert",		required_argument, NULL, 'c' },
		{ "tls-key",		required_argument, NULL, 'k' },
		{ "timeout",		required_argument, NULL, 'T' },
		{ "secrets",		required_argument, NULL, 'x' },
		{ "summary",		required_argument, NULL, 'y' },
		{ "latency",		required_argument, NULL, 'L' },
		{ "machine-pid-file",	required_argument, NULL, 'M' },
		{ "machine-memory",	required_argument, NULL, 'm' },
		{ "print-port",		no_argument,	NULL, 'n' },
		{ "print-config",	no_argument,	NULL, 'C' },
		{ "verbose",		no_argument,	NULL, 'v' },
		{ "help",		no_argument,	NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct sim_server_params p;
	struct sim_scenario *sc = NULL;
	char password[SIM_PASSWORD_MAX + 1], err[512];
	const char *scenario = NULL, *password_file = NULL;
	int ch, print_config = 0, rc = 2;
	long n;
	size_t i;

	memset(&p, 0, sizeof(p));
	memset(password, 0, sizeof(password));
	p.listen = "127.0.0.1";
	p.timeout_secs = 60;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			p.listen = optarg;
			break;
		case 'p':
			if (sim_main_number(optarg, 0, 65535, &n) == -1) {
				fprintf(stderr, "gf-cloud-sim: --port %s: not "
				    "a port\n", optarg);
				return 2;
			}
			p.port = (int)n;
			break;
		case 's':
			p.serial = optarg;
			break;
		case 'P':
			if (strlen(optarg) > SIM_PASSWORD_MAX) {
				fprintf(stderr, "gf-cloud-sim: --password: "
				    "too long\n");
				return 2;
			}
			snprintf(password, sizeof(password), "%s", optarg);
			break;
		case 'F':
			password_file = optarg;
			break;
		case 'S':
			scenario = optarg;
			break;
		case 't':
			p.transcript = optarg;
			break;
		case 'd':
			p.pulse_dir = optarg;
			break;
		case 'u':
			p.upload_dir = optarg;
			break;
		case 'c':
			p.tls_cert = optarg;
			break;
		case 'k':
			p.tls_key = optarg;
			break;
		case 'T':
			if (sim_main_number(optarg, 1, 86400, &n) == -1) {
				fprintf(stderr, "gf-cloud-sim: --timeout %s: "
				    "1 to 86400 seconds\n", optarg);
				return 2;
			}
			p.timeout_secs = (int)n;
			break;
		case 'x':
			p.secrets = optarg;
			break;
		case 'y':
			p.summary = optarg;
			break;
		case 'L':
			p.latency = optarg;
			break;
		case 'M':
			p.machine_pid_file = optarg;
			break;
		case 'm':
			p.machine_memory = optarg;
			break;
		case 'n':
			p.print_port = 1;
			break;
		case 'C':
			print_config = 1;
			break;
		case 'v':
			p.verbose = 1;
			break;
		case 'h':
			sim_main_usage(stdout);
			return 0;
		default:
			sim_main_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		sim_main_usage(stderr);
		return 2;
	}
	log_init(LOG_TO_CONSOLE, p.verbose ? LOG_DEBUG : LOG_INFO, NULL);

	if (scenario == NULL) {
		fprintf(stderr, "gf-cloud-sim: --scenario is required\n");
		sim_main_usage(stderr);
		return 2;
	}
	if ((sc = sim_scenario_load(scenario, err, sizeof(err))) == NULL) {
		fprintf(stderr, "gf-cloud-sim: %s\n", err);
		return 2;
	}
	if (print_config) {
		rc = sim_scenario_print_config(sc, stdout) == 0 ? 0 : 2;
		goto done;
	}

	if (p.serial == NULL || *p.serial == '\0' || strlen(p.serial) > 20) {
		fprintf(stderr, "gf-cloud-sim: --serial: 1 to 20 digits\n");
		goto usage;
	}
	for (i = 0; p.serial[i] != '\0'; i++)
		if (!isdigit((unsigned char)p.serial[i])) {
			fprintf(stderr, "gf-cloud-sim: --serial: digits only, "
			    "without the S\n");
			goto usage;
		}
	if (password_file != NULL && sim_main_read_password(password_file,
	    password, sizeof(password)) == -1)
		goto done;
	if (password[0] == '\0') {
		fprintf(stderr, "gf-cloud-sim: --password or --password-file "
		    "is required\n");
		goto usage;
	}
	p.password = password;
	if (p.machine_memory != NULL && p.machine_pid_file == NULL) {
		fprintf(stderr, "gf-cloud-sim: --machine-memory needs "
		    "--machine-pid-file\n");
		goto usage;
	}
	if ((p.tls_cert == NULL) != (p.tls_key == NULL)) {
		fprintf(stderr, "gf-cloud-sim: --tls-cert and --tls-key go "
		    "together\n");
		goto usage;
	}
	if ((p.pulse_dir != NULL && sim_main_dir("--pulse-dir",
	    p.pulse_dir) == -1) || (p.upload_dir != NULL &&
	    sim_main_dir("--upload-dir", p.upload_dir) == -1))
		goto done;
	p.scenario = sc;

	rc = sim_server_run(&p);
	goto done;
usage:
	sim_main_usage(stderr);
	rc = 2;
done:
	explicit_bzero(password, sizeof(password));
	sim_scenario_free(sc);
	return rc;
}
