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
#include "sim_fleet.h"
#include "sim_load.h"
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
	    "           [--machine-memory FILE [--reset-peak]] [--print-port]\n"
	    "           [--verbose]\n"
	    "       gf-cloud-sim --scenario FILE --print-config\n"
	    "       gf-cloud-sim (--machines N --serial-first S (--password P |"
	    " --password-file F)\n"
	    "           | --machines-file CSV) --load PROFILE --rate R "
	    "--duration S\n"
	    "           [--grace S] [--ramp S] [--start-after-signins K]\n"
	    "           [--max-p99-ms MS] [--summary-json FILE] "
	    "[--drop-all-at S]\n           [--lockstep] [server options]\n");
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
sim_main_real(const char *opt, const char *s, double min, double max,
    double *v)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(d >= min) ||
	    !(d <= max)) {
		fprintf(stderr, "gf-cloud-sim: %s %s: a number from %g to %g\n",
		    opt, s, min, max);
		return -1;
	}
	*v = d;
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

/* Everything the command line says. */
struct sim_main_opts {
	struct sim_server_params	 p;
	struct sim_load_params		 lp;
	char				 password[SIM_PASSWORD_MAX + 1];
	const char	*scenario, *password_file, *load, *machines_file;
	const char	*serial_first;
	long		 machines;	/* 0: not given */
	int		 print_config;
	int		 have_rate, have_duration;
};

static const struct option sim_main_longopts[] = {
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
	{ "reset-peak",		no_argument,	NULL, 'H' },
	{ "print-port",		no_argument,	NULL, 'n' },
	{ "print-config",	no_argument,	NULL, 'C' },
	{ "verbose",		no_argument,	NULL, 'v' },
	{ "help",		no_argument,	NULL, 'h' },
	{ "machines",		required_argument, NULL, 'N' },
	{ "serial-first",	required_argument, NULL, 'f' },
	{ "machines-file",	required_argument, NULL, 'W' },
	{ "load",		required_argument, NULL, 'D' },
	{ "rate",		required_argument, NULL, 'r' },
	{ "duration",		required_argument, NULL, 'U' },
	{ "grace",		required_argument, NULL, 'g' },
	{ "ramp",		required_argument, NULL, 'R' },
	{ "start-after-signins", required_argument, NULL, 'K' },
	{ "max-p99-ms",		required_argument, NULL, '9' },
	{ "summary-json",	required_argument, NULL, 'J' },
	{ "drop-all-at",	required_argument, NULL, 'X' },
	{ "lockstep",		no_argument,	NULL, 'Z' },
	{ NULL, 0, NULL, 0 }
};

/* The load mode's options; 0, 1 not one of them, -1 a bad value. */
static int
sim_main_load_opt(struct sim_main_opts *o, int ch)
{
	struct sim_load_params *lp = &o->lp;
	double v;

	switch (ch) {
	case 'N':
		if (sim_main_real("--machines", optarg, 1,
		    SIM_FLEET_MACHINES_MAX, &v) == -1 || v != (long)v)
			return -1;
		o->machines = (long)v;
		return 0;
	case 'f':
		o->serial_first = optarg;
		return 0;
	case 'W':
		o->machines_file = optarg;
		return 0;
	case 'D':
		o->load = optarg;
		return 0;
	case 'r':
		o->have_rate = 1;
		return sim_main_real("--rate", optarg, 0, 1e6, &lp->rate);
	case 'U':
		o->have_duration = 1;
		return sim_main_real("--duration", optarg, 0, 86400,
		    &lp->duration_s);
	case 'g':
		return sim_main_real("--grace", optarg, 0, 3600, &lp->grace_s);
	case 'R':
		return sim_main_real("--ramp", optarg, 0, 3600, &lp->ramp_s);
	case 'K':
		if (sim_main_real("--start-after-signins", optarg, 0, 1e7,
		    &v) == -1)
			return -1;
		lp->start_signins = (unsigned)v;
		return 0;
	case '9':
		return sim_main_real("--max-p99-ms", optarg, 0, 1e7,
		    &lp->max_p99_ms);
	case 'J':
		lp->summary_json = optarg;
		return 0;
	case 'X':
		return sim_main_real("--drop-all-at", optarg, 0.001, 86400,
		    &lp->drop_at_s);
	case 'Z':
		lp->lockstep = 1;
		return 0;
	default:
		return 1;
	}
}

/* The scenario and server options; 0, 1 not one of them, -1 a bad
 * value. */
static int
sim_main_server_opt(struct sim_main_opts *o, int ch)
{
	struct sim_server_params *p = &o->p;
	long n;

	switch (ch) {
	case 'l':
		p->listen = optarg;
		break;
	case 'p':
		if (sim_main_number(optarg, 0, 65535, &n) == -1) {
			fprintf(stderr, "gf-cloud-sim: --port %s: not a port\n",
			    optarg);
			return -1;
		}
		p->port = (int)n;
		break;
	case 's':
		o->serial_first = optarg;
		break;
	case 'P':
		if (strlen(optarg) > SIM_PASSWORD_MAX) {
			fprintf(stderr, "gf-cloud-sim: --password: too long\n");
			return -1;
		}
		snprintf(o->password, sizeof(o->password), "%s", optarg);
		break;
	case 'F':
		o->password_file = optarg;
		break;
	case 'S':
		o->scenario = optarg;
		break;
	case 'T':
		if (sim_main_number(optarg, 1, 86400, &n) == -1) {
			fprintf(stderr, "gf-cloud-sim: --timeout %s: 1 to 86400 "
			    "seconds\n", optarg);
			return -1;
		}
		p->timeout_secs = (int)n;
		break;
	default:
		return 1;
	}
	return 0;
}

/* Options that name a file or set a flag; 0, or 1 not one of them. */
static int
sim_main_path_opt(struct sim_main_opts *o, int ch)
{
	struct sim_server_params *p = &o->p;

	switch (ch) {
	case 't': p->transcript = optarg; break;
	case 'd': p->pulse_dir = optarg; break;
	case 'u': p->upload_dir = optarg; break;
	case 'c': p->tls_cert = optarg; break;
	case 'k': p->tls_key = optarg; break;
	case 'x': p->secrets = optarg; break;
	case 'y': p->summary = optarg; break;
	case 'L': p->latency = optarg; break;
	case 'M': p->machine_pid_file = optarg; break;
	case 'm': p->machine_memory = optarg; break;
	case 'H': p->reset_peak = 1; break;
	case 'n': p->print_port = 1; break;
	case 'C': o->print_config = 1; break;
	case 'v': p->verbose = 1; break;
	default: return 1;
	}
	return 0;
}

/* 0 go on, 1 exit 0 (help), 2 a usage error. */
static int
sim_main_opts(struct sim_main_opts *o, int argc, char *argv[])
{
	int ch, r;

	while ((ch = getopt_long(argc, argv, "h", sim_main_longopts, NULL)) !=
	    -1) {
		if ((r = sim_main_load_opt(o, ch)) == 1 &&
		    (r = sim_main_server_opt(o, ch)) == 1)
			r = sim_main_path_opt(o, ch);
		if (r == -1)
			return 2;
		if (r == 0)
			continue;
		if (ch == 'h') {
			sim_main_usage(stdout);
			return 1;
		}
		sim_main_usage(stderr);
		return 2;
	}
	if (optind != argc) {
		sim_main_usage(stderr);
		return 2;
	}
	return 0;
}

/* The machines: one (--serial), a range (--machines), or a CSV.  NULL
 * after a message. */
static struct sim_fleet *
sim_main_fleet(struct sim_main_opts *o)
{
	struct sim_fleet *f;
	char err[512];

	if (o->machines_file != NULL) {
		if (o->serial_first != NULL || o->machines > 0 ||
		    o->password[0] != '\0' || o->password_file != NULL) {
			fprintf(stderr, "gf-cloud-sim: --machines-file names "
			    "the machines and their passwords alone\n");
			return NULL;
		}
		if ((f = sim_fleet_load_csv(o->machines_file, err,
		    sizeof(err))) == NULL)
			fprintf(stderr, "gf-cloud-sim: %s\n", err);
		return f;
	}
	if (o->serial_first == NULL || *o->serial_first == '\0' ||
	    strlen(o->serial_first) > 20) {
		fprintf(stderr, "gf-cloud-sim: --serial: 1 to 20 digits\n");
		return NULL;
	}
	if (strspn(o->serial_first, "0123456789") !=
	    strlen(o->serial_first)) {
		fprintf(stderr, "gf-cloud-sim: --serial: digits only, "
		    "without the S\n");
		return NULL;
	}
	if (o->password_file != NULL && sim_main_read_password(
	    o->password_file, o->password, sizeof(o->password)) == -1)
		return NULL;
	if (o->password[0] == '\0') {
		fprintf(stderr, "gf-cloud-sim: --password or --password-file "
		    "is required\n");
		return NULL;
	}
	if ((f = sim_fleet_range(o->serial_first, o->machines > 0 ?
	    (size_t)o->machines : 1, o->password, err, sizeof(err))) == NULL)
		fprintf(stderr, "gf-cloud-sim: %s\n", err);
	return f;
}

/* What the options say together; 0, or -1 after a message. */
static int
sim_main_check(struct sim_main_opts *o, struct sim_fleet *f)
{
	const struct sim_server_params *p = &o->p;

	if (p->machine_memory != NULL && p->machine_pid_file == NULL) {
		fprintf(stderr, "gf-cloud-sim: --machine-memory needs "
		    "--machine-pid-file\n");
		return -1;
	}
	if (p->reset_peak && p->machine_memory == NULL) {
		fprintf(stderr, "gf-cloud-sim: --reset-peak needs "
		    "--machine-memory\n");
		return -1;
	}
	if ((p->tls_cert == NULL) != (p->tls_key == NULL)) {
		fprintf(stderr, "gf-cloud-sim: --tls-cert and --tls-key go "
		    "together\n");
		return -1;
	}
	if (o->load != NULL && (!o->have_rate || !o->have_duration)) {
		fprintf(stderr, "gf-cloud-sim: --load needs --rate and "
		    "--duration\n");
		return -1;
	}
	if (o->scenario != NULL && sim_fleet_count(f) != 1) {
		fprintf(stderr, "gf-cloud-sim: a scenario plays to one "
		    "machine: use --load for a fleet\n");
		return -1;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct sim_main_opts o;
	struct sim_scenario *sc = NULL;
	struct sim_fleet *fleet = NULL;
	char err[512];
	int rc;

	memset(&o, 0, sizeof(o));
	o.p.listen = "127.0.0.1";
	o.p.timeout_secs = 60;
	o.lp.grace_s = 10;
	o.lp.ramp_s = 60;
	o.lp.progress = 1;
	if ((rc = sim_main_opts(&o, argc, argv)) != 0)
		return rc == 1 ? 0 : 2;
	log_init(LOG_TO_CONSOLE, o.p.verbose ? LOG_DEBUG : LOG_INFO, NULL);
	rc = 2;
	if ((o.scenario == NULL) == (o.load == NULL)) {
		fprintf(stderr, "gf-cloud-sim: --scenario or --load is "
		    "required (one of them)\n");
		sim_main_usage(stderr);
		return 2;
	}
	if ((sc = sim_scenario_load(o.scenario != NULL ? o.scenario : o.load,
	    err, sizeof(err))) == NULL) {
		fprintf(stderr, "gf-cloud-sim: %s\n", err);
		return 2;
	}
	if (o.print_config) {
		rc = sim_scenario_print_config(sc, stdout) == 0 ? 0 : 2;
		goto done;
	}
	if ((fleet = sim_main_fleet(&o)) == NULL ||
	    sim_main_check(&o, fleet) == -1)
		goto usage;
	if ((o.p.pulse_dir != NULL && sim_main_dir("--pulse-dir",
	    o.p.pulse_dir) == -1) || (o.p.upload_dir != NULL &&
	    sim_main_dir("--upload-dir", o.p.upload_dir) == -1))
		goto done;
	o.p.fleet = fleet;
	if (o.load != NULL) {
		o.lp.profile = sc;
		o.p.load = &o.lp;
	} else
		o.p.scenario = sc;
	rc = sim_server_run(&o.p);
	goto done;
usage:
	sim_main_usage(stderr);
	rc = 2;
done:
	explicit_bzero(o.password, sizeof(o.password));
	sim_fleet_free(fleet);
	sim_scenario_free(sc);
	return rc;
}
