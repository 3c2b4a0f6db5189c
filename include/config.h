/*
 * config: the daemon's settings, read with inih from a file compatible with
 * the Python reference emulator's gf-machine-emulator.cfg: "key: value" and
 * "key = value", True/False, %(name)s interpolation within a section and from
 * [DEFAULT].  Relative paths resolve against the config file's folder.
 * Errors are reported as "file:line: message".
 */
#ifndef GFE_CONFIG_H
#define GFE_CONFIG_H

#include <stdio.h>

struct config_src;

#define CONFIG_SERIAL_DIGITS	15	/* a serial's digits at most */
#define CONFIG_PASSWORD_HEX	64	/* a password's hex characters */
#define CONFIG_HOSTNAME_MAX	63	/* a CSV hostname's bytes at most */
#define CONFIG_FLEET_MAX	1000000	/* machines in a fleet at most */
#define CONFIG_SHARDS_MAX	65536	/* shards of a fleet at most */
#define CONFIG_CONNECT_RATE	100.0	/* sign-ins/s by default: what a
					 * cloud takes after an outage */
#define CONFIG_LOOPS_MAX	256	/* [FLEET] loops (threads) at most */

/* One line of [FLEET] machines_file.  Secret: wiped by config_free(). */
struct config_machine {
	char	 serial[CONFIG_SERIAL_DIGITS + 1];	/* digits, no "S" */
	char	 password[CONFIG_PASSWORD_HEX + 1];
	char	 hostname[CONFIG_HOSTNAME_MAX + 1];	/* "": none */
	int	 line;					/* in the CSV */
};

/* [SERVICE] download_auth: which job URLs get the Bearer token. */
enum config_dl_auth {
	CONFIG_DL_AUTH_SAME_ORIGIN = 0,	/* server_url's scheme/host/port */
	CONFIG_DL_AUTH_ALWAYS,
	CONFIG_DL_AUTH_NEVER,
};

struct config {
	char	*path;			/* the file read, absolute */
	char	*dir;			/* its folder: base of relative paths */

	/* [SERVICE] */
	char	*server_url;		/* default https://app.glowforge.com */
	char	*status_service_url;	/* default wss://status.glowforge.com */
	char	*ca_file;		/* extra CA bundle (PEM), or NULL */
	/* Every transfer (job downloads above all): an overall deadline and
	 * a speed floor.  0 (a config made by hand): the defaults. */
	double	 transfer_timeout;	/* seconds, default 900 */
	int	 min_speed;		/* bytes/s, default 1024 */
	int	 min_speed_time;	/* seconds below min_speed, default 30 */
	int	 download_auth;		/* enum config_dl_auth */

	/* [MACHINE] */
	char	*serial;		/* decimal digits, without the "S" */
	char	*hostname;		/* or NULL */
	char	*password;		/* 64 hex chars; secret */
	char	*password_file;		/* or NULL; read into password */
	char	*head_id;		/* reported HEid, or NULL: table default */
	char	*head_serial;		/* HEsn, or NULL */
	char	*head_firmware;		/* HEfv, or NULL */

	/* [FACTORY_FIRMWARE] */
	int	 fw_check;		/* probe /update/current at start-up */
	char	*download_dir;		/* or NULL */
	char	*fw_version;		/* MCov, or NULL: table default */
	char	*app_version;		/* MCdv, or NULL: table default */

	/* [EMULATOR] */
	char	*base_dir;		/* default: the config's folder */
	char	*motion_dl_dir;		/* default base_dir/motion */
	char	*image_src_dir;		/* or NULL: built-in frames */
	int	 bypass_homing;
	char	*material_thickness;	/* e.g. ".230", picks head frames */
	double	 button_press_delay;	/* seconds, default 1 */
	char	*protocol_profile;	/* "2.6" (default) or "1.x" */
	char	*sequences_file;	/* JSON override, or NULL */
	int	 max_job_mib;		/* MiB of pulse body; past it a job
					 * fails.  0 (by hand): PULS_MAX_BODY */

	/* [LOGGING] */
	char	*log_dir;		/* or NULL; base of save_sent_images */
	char	*log_file;		/* or NULL */
	int	 log_level;		/* syslog priority, default LOG_INFO */
	int	 console_level;		/* syslog priority, default LOG_INFO */
	int	 save_sent_images;

	/*
	 * Which machines run.  The Glowforge runs when [MACHINE] is there or
	 * nothing else is enabled (so an old file works as it did); the
	 * FlashForge when [FLASHFORGE] is there and enabled.
	 */
	int	 glowforge;

	/* [FLASHFORGE] */
	int	 ff_enabled;		/* default True if the section exists */
	char	*ff_model;		/* default "finder" */
	char	*ff_name;		/* default "gf-machine-emulator" */
	char	*ff_serial;		/* default "SNEMU0000001" */
	char	*ff_check_code;		/* HTTP API pair; default "00000000" */
	char	*ff_bind;		/* IPv4 address, default 127.0.0.1 */
	int	 ff_tcp_port;		/* default 8899 */
	int	 ff_http_port;		/* default 8898, 0: off */
	int	 ff_discovery_port;	/* legacy probe, default 48899, 0: off */
	int	 ff_multicast_port;	/* 225.0.0.9 probe, default 19000, 0: off */
	int	 ff_camera_port;	/* MJPEG stream, default 8080, 0: off */
	char	*ff_state_file;		/* M610's name; default
					 * base_dir/flashforge.state */

	/*
	 * [FLEET]: many Glowforges (fleet.h turns this into one shard's
	 * machines).  Without the section, [MACHINE] is a fleet of one.
	 * count (with serial_first, and password_file or the credential for
	 * a password shared by all) and machines_file exclude each other;
	 * [MACHINE] may then keep only its head_* keys, shared by all.
	 */
	int	 fleet;			/* the [FLEET] section is there */
	int	 fleet_count;		/* machines; 0: machines_file */
	char	*fleet_serial_first;	/* digits, no "S"; then +1 each */
	char	*fleet_password_file;	/* read into password, for all */
	char	*fleet_machines_file;	/* CSV: serial,password[,hostname] */
	double	 fleet_connect_rate;	/* sign-ins/s, fleet-wide; dflt 100 */
	int	 fleet_loops;		/* event loops (threads) for this
					 * shard's machines; 0: one per
					 * online CPU; default 1 */
	int	 keep_jobs;		/* keep stepper files: default True
					 * alone, False in a [FLEET] */
	struct config_machine *fleet_machines;	/* machines_file, in order */
	size_t	 fleet_nmachines;

	/*
	 * Not from the file: main sets them from --shard I/N or --shards N
	 * with $JOB_COMPLETION_INDEX.  A reload must carry them over
	 * (config_keep_runtime()), or a SIGHUP would make shard 0/1 of
	 * every process.
	 */
	unsigned shard_index;		/* 0-based, < shard_count */
	unsigned shard_count;		/* 1 (config_load's default) .. */

	/* [WEB] */
	int	 web_enabled;		/* default True if the section exists */
	char	*web_listen;		/* IPv4:port, default 127.0.0.1:9180 */
	int	 web_allow_remote;	/* a non-loopback listen; default False */

	/* [THERMAL] / [MOTION] */
	double	 warm_up_delay;		/* seconds, default 0 */
	double	 cool_down_delay;	/* seconds, default 0 */

	/* Private to config.c: which line set what, for config_check(). */
	struct config_src *src;
};

/* 0 on success; -1 after printing every problem as "file:line: message"
 * on stderr.  Unknown keys only warn.  *cf is zeroed first and always safe
 * to config_free(). */
int	 config_load(struct config *cf, const char *path);
/* Checks after loading: required keys, values in range.  Same reporting.
 * config_load() already calls it; 0 when all is well, else -1. */
int	 config_check(const struct config *cf);
void	 config_free(struct config *cf);
/* What a reload keeps from the running config (dst the new one, src the
 * old): today the shard, set from the command line. */
void	 config_keep_runtime(struct config *dst, const struct config *src);
/* Machines in the whole fleet: [FLEET] count or machines_file lines, 1
 * for [MACHINE] alone, 0 with no Glowforge. */
size_t	 config_fleet_size(const struct config *cf);
/* The effective configuration, secrets masked, in the file's own syntax. */
void	 config_print(const struct config *cf, FILE *fp);

/* Opens path read-only without blocking and without taking a terminal
 * (O_NONBLOCK|O_NOCTTY, O_NOFOLLOW too when nofollow), then insists on a
 * regular file: a FIFO or a device as a config, password or sequences file
 * would otherwise hang open() or read() in the thread that takes signals.
 * The fd (close-on-exec) and *st, or -1 with a one-line reason in err. */
/* [WEB] listen "IPv4:port" into ip and *port: 0 loopback, 1 another
 * address, -1 not IPv4:port. */
int	 config_web_listen(const char *listen, char *ip, size_t iplen,
	    int *port);
struct stat;
int	 config_open_regular(const char *path, int nofollow, struct stat *st,
	    char *err, size_t errlen);

#endif
