/*
 * test_config: config_load() on files the Python reference emulator reads,
 * and on broken ones: every problem must come out as "file:line: message"
 * and the password never at all.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#define PW	"0123456789abcdef0123456789abcdef" \
		"0123456789abcdef0123456789abcdef"
/* Lines 1-3 of most cases. */
#define MACH	"[MACHINE]\nserial: S12345678\npassword: " PW "\n"

static char	topdir[] = "/tmp/test_config.XXXXXX";
static int	ncase;

struct file {
	const char	*name;
	const char	*content;
	mode_t		 mode;
};

/* A fresh folder per case, so relative paths and files do not mix. */
static void
new_dir(char *dir, size_t len)
{
	snprintf(dir, len, "%s/%d", topdir, ++ncase);
	assert_int_equal(mkdir(dir, 0700), 0);
}

static void
write_file(const char *dir, const char *name, const char *content,
    size_t len, mode_t mode)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode != 0 ? mode : 0600), 0);
	close(fd);
}

/* config_load() with stderr captured: every message it printed. */
static char *
load(struct config *cf, const char *path, int *rc)
{
	char tmp[PATH_MAX], *buf;
	int fd, saved;
	off_t len;

	snprintf(tmp, sizeof(tmp), "%s/stderr", topdir);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	*rc = config_load(cf, path);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	len = lseek(fd, 0, SEEK_END);
	assert_non_null(buf = calloc(1, (size_t)len + 1));
	assert_int_equal(pread(fd, buf, (size_t)len, 0), len);
	close(fd);
	unlink(tmp);
	return buf;
}

static void
assert_path(const char *got, const char *dir, const char *rel)
{
	char want[PATH_MAX];

	snprintf(want, sizeof(want), "%s/%s", dir, rel);
	assert_non_null(got);
	assert_string_equal(got, want);
}

/* --- value checks, one per case that needs more than the exit code --- */

static void
check_defaults(const struct config *cf, const char *dir)
{
	assert_string_equal(cf->serial, "12345678");
	assert_string_equal(cf->password, PW);
	assert_string_equal(cf->server_url, "https://app.glowforge.com");
	assert_string_equal(cf->status_service_url,
	    "wss://status.glowforge.com");
	assert_null(cf->ca_file);
	assert_null(cf->hostname);
	assert_null(cf->password_file);
	assert_null(cf->head_id);
	assert_int_equal(cf->fw_check, 0);
	assert_string_equal(cf->base_dir, dir);
	assert_path(cf->motion_dl_dir, dir, "motion");
	assert_path(cf->path, dir, "gf.cfg");
	assert_string_equal(cf->dir, dir);
	assert_int_equal(cf->bypass_homing, 0);
	assert_true(cf->button_press_delay == 1.0);
	assert_string_equal(cf->protocol_profile, "2.6");
	assert_null(cf->sequences_file);
	assert_null(cf->log_dir);
	assert_null(cf->log_file);
	assert_int_equal(cf->log_level, LOG_INFO);
	assert_int_equal(cf->console_level, LOG_INFO);
	assert_int_equal(cf->save_sent_images, 0);
	assert_true(cf->warm_up_delay == 0.0);
	assert_true(cf->cool_down_delay == 0.0);
	assert_true(cf->transfer_timeout == 900.0);
	assert_int_equal(cf->min_speed, 1024);
	assert_int_equal(cf->min_speed_time, 30);
	assert_int_equal(cf->download_auth, CONFIG_DL_AUTH_SAME_ORIGIN);
	/* [MACHINE] alone: a fleet of one that keeps its jobs. */
	assert_int_equal(cf->fleet, 0);
	assert_int_equal(cf->keep_jobs, 1);
	assert_true(cf->fleet_connect_rate == CONFIG_CONNECT_RATE);
	assert_int_equal(cf->fleet_loops, 1);
	assert_int_equal(cf->shard_index, 0);
	assert_int_equal(cf->shard_count, 1);
	assert_int_equal(config_fleet_size(cf), 1);
}

static void
check_transfer(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_true(cf->transfer_timeout == 60.0);
	assert_int_equal(cf->min_speed, 2048);
	assert_int_equal(cf->min_speed_time, 5);
	assert_int_equal(cf->download_auth, CONFIG_DL_AUTH_ALWAYS);
}

static void
check_dl_auth_never(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_int_equal(cf->download_auth, CONFIG_DL_AUTH_NEVER);
}

static void
check_serial_only(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_string_equal(cf->serial, "12345678");
	assert_string_equal(cf->password, PW);
}

static void
check_bools_on(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_int_equal(cf->fw_check, 1);
	assert_int_equal(cf->bypass_homing, 1);
	assert_int_equal(cf->save_sent_images, 1);
}

static void
check_bools_off(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_int_equal(cf->fw_check, 0);
	assert_int_equal(cf->bypass_homing, 0);
	assert_int_equal(cf->save_sent_images, 0);
}

static void
check_interp_default(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_string_equal(cf->base_dir, "/srv/gf/res");
	assert_string_equal(cf->motion_dl_dir, "/srv/gf/res/motion");
	assert_string_equal(cf->image_src_dir, "/srv/gf/img");
}

static void
check_interp_percent(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_string_equal(cf->material_thickness, "x 50% .230");
}

static void
check_interp_nested(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_string_equal(cf->base_dir, "/a/b/c");
}

static void
check_deep_ok(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_string_equal(cf->base_dir, "/deep");
}

static void
check_open_sections(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_true(cf->warm_up_delay == 2.5);
	assert_true(cf->cool_down_delay == 1.5);
}

static void
check_save_puls(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_int_equal(cf->save_sent_images, 1);
}

static void
check_password_file(const struct config *cf, const char *dir)
{
	assert_string_equal(cf->password, PW);
	assert_path(cf->password_file, dir, "pw");
}

static void
check_urls(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_string_equal(cf->server_url, "http://example.com/api");
	assert_string_equal(cf->status_service_url, "WS://status.example:81");
}

static void
check_profile_1x(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_string_equal(cf->protocol_profile, "1.x");
}

static void
check_delays(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_true(cf->button_press_delay == 0.25);
	assert_true(cf->warm_up_delay == 3600);
	assert_true(cf->cool_down_delay == 0);
}

static void
check_relative(const struct config *cf, const char *dir)
{
	assert_path(cf->ca_file, dir, "ca.pem");
	assert_path(cf->base_dir, dir, "res");
	assert_path(cf->motion_dl_dir, dir, "dl");
	assert_path(cf->image_src_dir, dir, "img");
	assert_path(cf->sequences_file, dir, "seq.json");
	assert_path(cf->download_dir, dir, "fw");
	assert_path(cf->log_dir, dir, "logs");
	assert_path(cf->log_file, dir, "emu.log");	/* not under dir */
}

static void
check_absolute(const struct config *cf, const char *dir)
{
	assert_string_equal(cf->base_dir, "/opt/gf");
	assert_string_equal(cf->motion_dl_dir, "/opt/gf/motion");
	assert_string_equal(cf->log_file, "/var/log/gf.log");
	assert_path(cf->download_dir, dir, "fw");
}

static void
check_levels(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_int_equal(cf->log_level, LOG_DEBUG);
	assert_int_equal(cf->console_level, LOG_WARNING);
}

static void
check_continuation(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_string_equal(cf->hostname, "first\nsecond");
	assert_string_equal(cf->material_thickness, "gf ; lab");
}

static void
check_hostname_h(const struct config *cf, const char *dir)
{
	(void)dir;
	/* After a nameless key, an indented line is a key of its own. */
	assert_string_equal(cf->hostname, "h");
}

static void
check_duplicate(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_string_equal(cf->protocol_profile, "2.6");
	assert_int_equal(cf->bypass_homing, 1);
}

static void
check_default_fallback(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_string_equal(cf->serial, "42");
	assert_int_equal(cf->log_level, LOG_DEBUG);
}

static void
check_empty_optional(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_null(cf->hostname);
	assert_null(cf->head_id);
}

static void
check_heads(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_string_equal(cf->head_id, "abc");
	assert_string_equal(cf->head_serial, "42");
}

static void
check_ff_only(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_int_equal(cf->glowforge, 0);
	assert_int_equal(cf->ff_enabled, 1);
	assert_string_equal(cf->ff_model, "adventurer5m-pro");
	assert_string_equal(cf->ff_name, "Shop printer");
	assert_string_equal(cf->ff_bind, "127.0.0.1");
	assert_int_equal(cf->ff_tcp_port, 8899);
	assert_int_equal(cf->ff_http_port, 0);
	assert_int_equal(cf->ff_discovery_port, 48899);
	assert_int_equal(cf->ff_multicast_port, 19000);
}

static void
check_both_machines(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_int_equal(cf->glowforge, 1);
	assert_int_equal(cf->ff_enabled, 1);
	assert_string_equal(cf->ff_model, "finder");
	assert_string_equal(cf->ff_serial, "SNEMU0000001");
}

static void
check_ff_disabled(const struct config *cf, const char *dir)
{
	(void)dir;
	assert_int_equal(cf->glowforge, 1);
	assert_int_equal(cf->ff_enabled, 0);
}

static void
check_fleet_count(const struct config *cf, const char *dir)
{
	assert_int_equal(cf->fleet, 1);
	assert_int_equal(cf->glowforge, 1);
	assert_int_equal(cf->fleet_count, 10000);
	assert_string_equal(cf->fleet_serial_first, "20000000");
	assert_path(cf->fleet_password_file, dir, "fleet.pw");
	assert_string_equal(cf->password, PW);
	assert_null(cf->serial);
	assert_null(cf->fleet_machines_file);
	assert_true(cf->fleet_connect_rate == CONFIG_CONNECT_RATE);
	assert_int_equal(cf->fleet_loops, 1);
	assert_int_equal(cf->keep_jobs, 0);	/* a fleet's default */
	assert_int_equal(config_fleet_size(cf), 10000);
	assert_string_equal(cf->head_id, "1100");
}

static void
check_fleet_csv(const struct config *cf, const char *dir)
{
	assert_int_equal(cf->fleet, 1);
	assert_int_equal(cf->fleet_count, 0);
	assert_path(cf->fleet_machines_file, dir, "m.csv");
	assert_int_equal(cf->fleet_nmachines, 3);
	assert_int_equal(config_fleet_size(cf), 3);
	assert_string_equal(cf->fleet_machines[0].serial, "11");
	assert_string_equal(cf->fleet_machines[0].password, PW);
	assert_string_equal(cf->fleet_machines[0].hostname, "host-a");
	assert_int_equal(cf->fleet_machines[0].line, 2);
	assert_string_equal(cf->fleet_machines[1].serial, "12");
	assert_string_equal(cf->fleet_machines[1].hostname, "");
	assert_int_equal(cf->fleet_machines[2].line, 5);
	assert_true(cf->fleet_connect_rate == 2.5);
	assert_int_equal(cf->fleet_loops, 0);
	assert_int_equal(cf->keep_jobs, 1);
}

#define CSV3	"serial,password,hostname\n" \
		"S11," PW ",host-a\n12, " PW "\n\n13," PW "\n"
#define CSV3OK	"# serial,password,hostname\n" \
		"S11," PW ",host-a\n12, " PW "\n\n13," PW "\n"

static const struct ccase {
	const char	*name;
	const char	*cfg;
	int		 rc;
	const char	*err[4];	/* expected on stderr */
	const char	*noerr[2];	/* never on stderr */
	void		(*check)(const struct config *, const char *);
	struct file	 files[2];
	mode_t		 mode;		/* of gf.cfg; 0: 0600 */
} cases[] = {
	{ "colon syntax, all defaults", MACH, 0, { NULL }, { "WARNING" },
	    check_defaults, { { NULL, NULL, 0 } }, 0 },
	{ "equals syntax, any case", "[machine]\nSERIAL = 12345678\n"
	    "PassWord = " PW "\n", 0, { NULL }, { "WARNING" },
	    check_serial_only, { { NULL, NULL, 0 } }, 0 },
	{ "booleans on", MACH "[FACTORY_FIRMWARE]\ncheck = True\n"
	    "[EMULATOR]\nbypass_homing: YES\n[LOGGING]\n"
	    "save_sent_images = on\n",
	    0, { NULL }, { "WARNING" }, check_bools_on,
	    { { NULL, NULL, 0 } }, 0 },
	{ "booleans off", MACH "[FACTORY_FIRMWARE]\ncheck = false\n"
	    "[EMULATOR]\nbypass_homing: 0\n[LOGGING]\nsave_sent_images = OFF\n",
	    0, { NULL }, { NULL }, check_bools_off,
	    { { NULL, NULL, 0 } }, 0 },
	{ "bad boolean", MACH "[EMULATOR]\nbypass_homing = maybe\n", -1,
	    { "gf.cfg:5: bypass_homing: 'maybe' is not a boolean" }, { NULL },
	    NULL, { { NULL, NULL, 0 } }, 0 },
	{ "interpolation from [DEFAULT]", "[DEFAULT]\nroot = /srv/gf\n" MACH
	    "[EMULATOR]\nbase_dir = %(root)s/res\n"
	    "image_src_dir = %(ROOT)s/img\n",
	    0, { "image_src_dir '/srv/gf/img' is not a folder" },
	    { "unknown" }, check_interp_default, { { NULL, NULL, 0 } }, 0 },
	{ "interpolation in the section, %% is %", MACH
	    "[EMULATOR]\nsub = x\nmaterial_thickness = %(sub)s 50%% .230\n", 0,
	    { "gf.cfg:5: unknown key 'sub' in [EMULATOR]" }, { NULL },
	    check_interp_percent, { { NULL, NULL, 0 } }, 0 },
	{ "nested interpolation", "[DEFAULT]\na = /a\nb = %(a)s/b\n" MACH
	    "[EMULATOR]\nbase_dir = %(b)s/c\n", 0, { NULL }, { NULL },
	    check_interp_nested, { { NULL, NULL, 0 } }, 0 },
	{ "missing reference", MACH "[EMULATOR]\nbase_dir = %(nope)s/x\n",
	    -1, { "gf.cfg:5: '%(nope)s' in the value of 'base_dir': no key "
	    "'nope' in [EMULATOR] or [DEFAULT]" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "interpolation loop", "[DEFAULT]\na = %(b)s\nb = %(a)s\n" MACH
	    "[EMULATOR]\nbase_dir = %(a)s\n", -1,
	    { "nests deeper than 10 levels" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	/* configparser allows 10 levels: base_dir is 1, k1..k9 are 2..10. */
	{ "10 levels of interpolation", "[DEFAULT]\nk1 = %(k2)s\n"
	    "k2 = %(k3)s\nk3 = %(k4)s\nk4 = %(k5)s\nk5 = %(k6)s\nk6 = %(k7)s\n"
	    "k7 = %(k8)s\nk8 = %(k9)s\nk9 = %(k10)s\nk10 = /deep\n" MACH
	    "[EMULATOR]\nbase_dir = %(k1)s\n", 0, { NULL }, { NULL },
	    check_deep_ok, { { NULL, NULL, 0 } }, 0 },
	{ "11 levels of interpolation", "[DEFAULT]\nk0 = %(k1)s\n"
	    "k1 = %(k2)s\n"
	    "k2 = %(k3)s\nk3 = %(k4)s\nk4 = %(k5)s\nk5 = %(k6)s\nk6 = %(k7)s\n"
	    "k7 = %(k8)s\nk8 = %(k9)s\nk9 = %(k10)s\nk10 = /deep\n" MACH
	    "[EMULATOR]\nbase_dir = %(k0)s\n", -1,
	    { "gf.cfg:17: interpolation of 'base_dir' in [EMULATOR] nests "
	    "deeper than 10 levels" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "a lone %", MACH "[EMULATOR]\nmaterial_thickness = 50%\n", -1,
	    { "gf.cfg:5: '%' in the value of 'material_thickness' must be "
	    "followed by '%' or '('" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "%(name) without s", MACH "[EMULATOR]\nbase_dir = %(x)d\n", -1,
	    { "gf.cfg:5: bad interpolation in the value of 'base_dir'" },
	    { NULL }, NULL, { { NULL, NULL, 0 } }, 0 },
	{ "unknown key and section", MACH "[EMULATOR]\nfoo = 1\n"
	    "[WHATEVER]\nbar = 2\n", 0,
	    { "gf.cfg:5: unknown key 'foo' in [EMULATOR]",
	    "gf.cfg:6: unknown section [WHATEVER]" }, { "'bar'" }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "[THERMAL] and [MOTION] take any key", MACH
	    "[THERMAL]\nwarm_up_delay = 2.5\nlaser_temp_max = 40\n"
	    "[MOTION]\ncool_down_delay: 1.5\nx_accel = 3\n", 0, { NULL },
	    { "unknown" }, check_open_sections, { { NULL, NULL, 0 } }, 0 },
	{ "legacy keys", MACH "[EMULATOR]\nfirmware_check = True\n"
	    "firmware_dl_dir = fw\n[LOGGING]\nsave_puls = yes\n", 0, { NULL },
	    { "unknown" }, check_save_puls, { { NULL, NULL, 0 } }, 0 },
	{ "save_sent_images beats save_puls", MACH "[LOGGING]\n"
	    "save_sent_images = no\nsave_puls = yes\n", 0, { NULL }, { NULL },
	    check_bools_off, { { NULL, NULL, 0 } }, 0 },
	{ "serial not digits", "[MACHINE]\nserial: 12a4\npassword: " PW "\n",
	    -1, { "gf.cfg:2: serial must be decimal digits" }, { "12a4" },
	    NULL, { { NULL, NULL, 0 } }, 0 },
	{ "serial too long", "[MACHINE]\nserial: 1234567890123456\n"
	    "password: " PW "\n", -1, { "gf.cfg:2: serial is out of range" },
	    { "1234567890123456" }, NULL, { { NULL, NULL, 0 } }, 0 },
	{ "serial just S", "[MACHINE]\nserial: S\npassword: " PW "\n", -1,
	    { "gf.cfg:2: missing required key 'serial'" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "serial missing", "[SERVICE]\n\n[MACHINE]\npassword: " PW "\n", -1,
	    { "gf.cfg:3: missing required key 'serial' in [MACHINE]" },
	    { NULL }, NULL, { { NULL, NULL, 0 } }, 0 },
	{ "empty file", "", -1, { "gf.cfg: missing required key 'serial'",
	    "gf.cfg: no password" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "password too short", "[MACHINE]\nserial: 1\n"
	    "password: zz-secret-zz\n", -1,
	    { "gf.cfg:3: password must be 64 hexadecimal characters" },
	    { "zz-secret-zz" }, NULL, { { NULL, NULL, 0 } }, 0 },
	{ "password not hex", "[MACHINE]\nserial: 1\npassword: "
	    "g123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef\n",
	    -1, { "gf.cfg:3: password must be 64 hexadecimal" },
	    { "g123456789" }, NULL, { { NULL, NULL, 0 } }, 0 },
	{ "password_file", "[MACHINE]\nserial: 12345678\npassword_file: pw\n",
	    0, { NULL }, { "WARNING" }, check_password_file,
	    { { "pw", PW "\n", 0600 }, { NULL, NULL, 0 } }, 0 },
	{ "password_file beats password", MACH "password_file = ./pw\n", 0,
	    { "gf.cfg:3: both password and password_file are set" },
	    { NULL }, check_password_file,
	    { { "pw", PW "\r\n", 0600 }, { NULL, NULL, 0 } }, 0 },
	{ "password_file missing", "[MACHINE]\nserial: 1\n"
	    "password_file: nope\n", -1, { "gf.cfg:3: password_file '",
	    "nope': No such file or directory" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "password_file not a password", "[MACHINE]\nserial: 1\n"
	    "password_file: pw\n", -1, { "gf.cfg:3: the first line of "
	    "password_file must be 64 hexadecimal" }, { "zz-secret-zz" }, NULL,
	    { { "pw", "zz-secret-zz\n" PW "\n", 0600 }, { NULL, NULL, 0 } },
	    0 },
	{ "password_file readable by others", "[MACHINE]\nserial: 1\n"
	    "password_file: pw\n", 0, { "gf.cfg:3: password_file is readable "
	    "by group or others" }, { "holds the password" }, NULL,
	    { { "pw", PW, 0644 }, { NULL, NULL, 0 } }, 0644 },
	{ "config with password readable by others", MACH, 0,
	    { "gf.cfg:3: this file holds the password but is readable by "
	    "group or others" }, { PW }, NULL, { { NULL, NULL, 0 } }, 0640 },
	{ "URLs: any case, trailing slashes go", MACH "[SERVICE]\n"
	    "server_url = http://example.com/api//\n"
	    "status_service_url: WS://status.example:81/\n", 0, { NULL },
	    { NULL }, check_urls, { { NULL, NULL, 0 } }, 0 },
	{ "bad URLs", MACH "[SERVICE]\nserver_url = ftp://example.com\n"
	    "status_service_url = https://status.example\n", -1,
	    { "gf.cfg:5: server_url 'ftp://example.com' must be a http:// or "
	    "https:// URL", "gf.cfg:6: status_service_url "
	    "'https://status.example' must be a ws:// or wss:// URL" },
	    { NULL }, NULL, { { NULL, NULL, 0 } }, 0 },
	{ "URL without a host", MACH "[SERVICE]\nserver_url = https://\n",
	    -1, { "gf.cfg:5: server_url 'https://' must be" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "profile 1.x", MACH "[EMULATOR]\nprotocol_profile = 1.x\n", 0,
	    { NULL }, { NULL }, check_profile_1x, { { NULL, NULL, 0 } }, 0 },
	{ "bad profile", MACH "[EMULATOR]\nprotocol_profile = 3.0\n", -1,
	    { "gf.cfg:5: protocol_profile '3.0' is not one of 2.6, 1.x" },
	    { NULL }, NULL, { { NULL, NULL, 0 } }, 0 },
	{ "delays in range", MACH "[EMULATOR]\nbutton_press_delay = 0.25\n"
	    "[THERMAL]\nwarm_up_delay = 3600\n[MOTION]\ncool_down_delay = 0\n",
	    0, { NULL }, { NULL }, check_delays, { { NULL, NULL, 0 } }, 0 },
	{ "delays out of range", MACH "[EMULATOR]\nbutton_press_delay = -1\n"
	    "[THERMAL]\nwarm_up_delay = 3600.5\ncool_down_delay = nan\n", -1,
	    { "gf.cfg:5: button_press_delay must be between 0 and 3600",
	    "gf.cfg:7: warm_up_delay must be between",
	    "gf.cfg:8: cool_down_delay must be between" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "delays not numbers", MACH "[EMULATOR]\nbutton_press_delay = 1s\n"
	    "[THERMAL]\nwarm_up_delay = inf\ncool_down_delay =\n", -1,
	    { "gf.cfg:5: button_press_delay: '1s' is not a number of seconds",
	    "gf.cfg:7: warm_up_delay must be between",
	    "gf.cfg:8: cool_down_delay: '' is not a number" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "every error is reported", MACH "[EMULATOR]\nbypass_homing = maybe\n"
	    "protocol_profile = 9\n[SERVICE]\nserver_url = gopher://x\n", -1,
	    { "gf.cfg:5: bypass_homing", "gf.cfg:6: protocol_profile",
	    "gf.cfg:8: server_url" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "relative paths", MACH "[SERVICE]\nca_file = ca.pem\n"
	    "[EMULATOR]\nbase_dir = res\nmotion_dl_dir = ./dl\n"
	    "image_src_dir = img\nsequences_file = seq.json\n"
	    "[FACTORY_FIRMWARE]\ndownload_dir = fw\n"
	    "[LOGGING]\ndir = logs\nfile = emu.log\n", 0, { NULL }, { NULL },
	    check_relative,
	    { { "ca.pem", "x", 0600 }, { "seq.json", "{}", 0600 } },
	    0 },
	{ "absolute paths", MACH "[EMULATOR]\nbase_dir = /opt/gf\n"
	    "[FACTORY_FIRMWARE]\ndownload_dir = fw\n"
	    "[LOGGING]\ndir = logs\nfile = /var/log/gf.log\n", 0, { NULL },
	    { NULL }, check_absolute, { { NULL, NULL, 0 } }, 0 },
	{ "missing ca_file and sequences_file", MACH "[SERVICE]\n"
	    "ca_file = ca.pem\n[EMULATOR]\n"
	    "sequences_file = /nonexistent/s.json\n",
	    -1, { "gf.cfg:5: ca_file '", "ca.pem': No such file",
	    "gf.cfg:7: sequences_file '/nonexistent/s.json'" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "log levels", MACH "[LOGGING]\nlevel = debug\nconsole_level = 30\n",
	    0, { NULL }, { NULL }, check_levels, { { NULL, NULL, 0 } }, 0 },
	{ "bad log level", MACH "[LOGGING]\nlevel = LOUD\n", -1,
	    { "gf.cfg:5: level: 'LOUD' is not a log level" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "section without ]", "[MACHINE\n" MACH, -1,
	    { "gf.cfg:1: section header without a closing ']'" }, { NULL },
	    NULL, { { NULL, NULL, 0 } }, 0 },
	{ "empty section name", MACH "[]\nx = 1\n", -1,
	    { "gf.cfg:4: empty section name" }, { "before any" }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "line without a delimiter", MACH "garbage here\n", -1,
	    { "gf.cfg:4: expected 'key = value'" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "key before any section", "serial = 1\n" MACH, -1,
	    { "gf.cfg:1: key 'serial' comes before any [section]" }, { NULL },
	    NULL, { { NULL, NULL, 0 } }, 0 },
	{ "key without a name", MACH "= 1\n  hostname = h\n", -1,
	    { "gf.cfg:4: a key without a name" }, { NULL }, check_hostname_h,
	    { { NULL, NULL, 0 } }, 0 },
	{ "continuation lines, comments, no inline comments", MACH
	    "# a comment\n; another\nhostname = first\n  second\n"
	    "    # an indented comment\n[EMULATOR]\n"
	    "material_thickness = gf ; lab\n", 0, { NULL }, { NULL },
	    check_continuation, { { NULL, NULL, 0 } }, 0 },
	{ "duplicate keys and sections", MACH "[EMULATOR]\n"
	    "protocol_profile = 1.x\n[emulator]\nbypass_homing = 1\n"
	    "protocol_profile = 2.6\n", 0, { "gf.cfg:8: duplicate key "
	    "'protocol_profile' in [EMULATOR] (also on line 5)" }, { NULL },
	    check_duplicate, { { NULL, NULL, 0 } }, 0 },
	{ "CRLF line ends", "[MACHINE]\r\nserial: S12345678\r\n"
	    "password: " PW "\r\n", 0, { NULL }, { NULL }, check_serial_only,
	    { { NULL, NULL, 0 } }, 0 },
	{ "UTF-8 BOM", "\xEF\xBB\xBF" MACH, 0, { NULL }, { NULL },
	    check_serial_only, { { NULL, NULL, 0 } }, 0 },
	{ "known keys fall back to [DEFAULT]", "[DEFAULT]\nserial = 42\n"
	    "level = DEBUG\n[MACHINE]\npassword: " PW "\n[LOGGING]\n", 0,
	    { NULL }, { "unknown" }, check_default_fallback,
	    { { NULL, NULL, 0 } }, 0 },
	{ "empty optional values", MACH "hostname =\nhead_id:\n", 0, { NULL },
	    { NULL }, check_empty_optional, { { NULL, NULL, 0 } }, 0 },
	{ "head values that are not numbers", MACH "head_id = abc\n"
	    "head_serial = 42\n", 0, { "gf.cfg:4: head_id 'abc' is not a "
	    "number" }, { "head_serial" }, check_heads, { { NULL, NULL, 0 } },
	    0 },
	{ "[FLASHFORGE] alone runs the printer only", "[FLASHFORGE]\n"
	    "model = adventurer5m-pro\nname = Shop printer\nhttp_port = 0\n",
	    0, { NULL }, { "serial" }, check_ff_only, { { NULL, NULL, 0 } }, 0 },
	{ "both machines", MACH "[FLASHFORGE]\n", 0, { NULL }, { "WARNING" },
	    check_both_machines, { { NULL, NULL, 0 } }, 0 },
	{ "[FLASHFORGE] disabled: the Glowforge needs its keys",
	    "[FLASHFORGE]\nenabled = no\n", -1,
	    { "missing required key 'serial' in [MACHINE]" }, { NULL },
	    check_ff_disabled, { { NULL, NULL, 0 } }, 0 },
	{ "[FLASHFORGE] bad values", "[FLASHFORGE]\nmodel = creator9\n"
	    "bind = localhost\ntcp_port = 70000\nserial = SN-1\n"
	    "name = \x01\n", -1,
	    { "gf.cfg:2: model 'creator9' is not one of",
	    "gf.cfg:3: bind 'localhost' is not an IPv4 address",
	    "gf.cfg:4: tcp_port: '70000' is not a port number",
	    "gf.cfg:5: serial must be letters and digits" }, { "[MACHINE]" },
	    NULL, { { NULL, NULL, 0 } }, 0 },
	{ "ports that are not integers (1e100, nan: no UB)",
	    "[FLASHFORGE]\ntcp_port = 1e100\nhttp_port = nan\n", -1,
	    { "gf.cfg:2: tcp_port: '1e100' is not a port number",
	    "gf.cfg:3: http_port: 'nan' is not a port number" }, { NULL },
	    NULL, { { NULL, NULL, 0 } }, 0 },
	{ "an interpolation bomb is stopped", "[DEFAULT]\na0 = x\n" "a1 = %(a0)s%(a0)s%(a0)s%(a0)s%(a0)s%(a0)s%(a0)s%(a0)s%(a0)s%(a0)s\n" "a2 = %(a1)s%(a1)s%(a1)s%(a1)s%(a1)s%(a1)s%(a1)s%(a1)s%(a1)s%(a1)s\n" "a3 = %(a2)s%(a2)s%(a2)s%(a2)s%(a2)s%(a2)s%(a2)s%(a2)s%(a2)s%(a2)s\n" "a4 = %(a3)s%(a3)s%(a3)s%(a3)s%(a3)s%(a3)s%(a3)s%(a3)s%(a3)s%(a3)s\n" MACH "[EMULATOR]\nmaterial_thickness = %(a4)s\n", -1,
	    { "interpolation of 'material_thickness' in [EMULATOR] expands "
	    "more than 1000 references" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "[SERVICE] transfer bounds and download_auth", MACH "[SERVICE]\n"
	    "transfer_timeout = 60\nmin_speed = 2048\nmin_speed_time = 5\n"
	    "download_auth = always\n", 0, { NULL }, { "gf.cfg" },
	    check_transfer, { { NULL, NULL, 0 } }, 0 },
	{ "download_auth never, any case", MACH "[SERVICE]\n"
	    "download_auth = Never\n", 0, { NULL }, { "gf.cfg" },
	    check_dl_auth_never, { { NULL, NULL, 0 } }, 0 },
	{ "[SERVICE] bad transfer bounds", MACH "[SERVICE]\n"
	    "transfer_timeout = 0.5\nmin_speed = 0\nmin_speed_time = 1e100\n"
	    "download_auth = sometimes\n", -1,
	    { "gf.cfg:5: transfer_timeout must be between 1 and",
	    "gf.cfg:6: min_speed: '0' is not a whole number",
	    "gf.cfg:7: min_speed_time: '1e100' is not a whole number",
	    "gf.cfg:8: download_auth: 'sometimes' is not one of "
	    "same-origin, always, never" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "transfer_timeout nan", MACH "[SERVICE]\ntransfer_timeout = nan\n",
	    -1, { "gf.cfg:5: transfer_timeout must be between 1 and" },
	    { NULL }, NULL, { { NULL, NULL, 0 } }, 0 },
	{ "[FLEET] count, password_file, [MACHINE] head_id shared",
	    "[MACHINE]\nhead_id = 1100\n[FLEET]\ncount = 10000\n"
	    "serial_first = S20000000\npassword_file = fleet.pw\n", 0,
	    { NULL }, { "gf.cfg" }, check_fleet_count,
	    { { "fleet.pw", PW "\n", 0600 }, { NULL, NULL, 0 } }, 0 },
	{ "[FLEET] machines_file", "[FLEET]\nmachines_file = m.csv\n"
	    "connect_rate = 2.5\nkeep_jobs = True\nloops = 0\n", 0, { NULL },
	    { "WARNING" }, check_fleet_csv,
	    { { "m.csv", CSV3OK, 0600 }, { NULL, NULL, 0 } }, 0 },
	{ "[FLEET] machines_file readable by others", "[FLEET]\n"
	    "machines_file = m.csv\n", 0,
	    { "m.csv: this file holds passwords but is readable" }, { NULL },
	    NULL, { { "m.csv", CSV3OK, 0644 }, { NULL, NULL, 0 } }, 0 },
	{ "[FLEET] machines_file: a header is a bad line",
	    "[FLEET]\nmachines_file = m.csv\n", -1,
	    { "m.csv:1: serial must be 1 to 15 decimal digits",
	    "m.csv:1: password must be 64 hexadecimal" }, { NULL }, NULL,
	    { { "m.csv", CSV3, 0600 }, { NULL, NULL, 0 } }, 0 },
	{ "[FLEET] machines_file: every bad line by number",
	    "[FLEET]\nmachines_file = m.csv\n", -1,
	    { "m.csv:2: password must be 64 hexadecimal characters",
	    "m.csv:3: duplicate serial (first on line 1)",
	    "m.csv:4: too many fields" }, { "S20000001" }, NULL,
	    { { "m.csv", "S20000001," PW "\n2,nothex\n20000001," PW "\n"
	    "3," PW ",h,x\n", 0600 }, { NULL, NULL, 0 } }, 0 },
	{ "[FLEET] machines_file missing", "[FLEET]\n"
	    "machines_file = none.csv\n", -1,
	    { "none.csv: No such file or directory" }, { NULL }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "[FLEET] count and machines_file exclude each other",
	    "[FLEET]\ncount = 3\nmachines_file = m.csv\n", -1,
	    { "gf.cfg:3: count and machines_file exclude each other" },
	    { NULL }, NULL, { { "m.csv", CSV3OK, 0600 },
	    { NULL, NULL, 0 } }, 0 },
	{ "[FLEET] machines_file with count's keys",
	    "[FLEET]\nmachines_file = m.csv\nserial_first = 5\n"
	    "password_file = fleet.pw\n", -1,
	    { "gf.cfg:3: serial_first goes with count",
	    "gf.cfg:4: password_file goes with count" }, { NULL }, NULL,
	    { { "m.csv", CSV3OK, 0600 }, { "fleet.pw", PW "\n", 0600 } },
	    0 },
	{ "[FLEET] empty", "[FLEET]\n", -1,
	    { "gf.cfg:1: [FLEET] needs count (with serial_first) or "
	    "machines_file" }, { NULL }, NULL, { { NULL, NULL, 0 } }, 0 },
	{ "[FLEET] beside [MACHINE]'s login", MACH "hostname = h\n"
	    "[FLEET]\ncount = 2\nserial_first = 7\n", -1,
	    { "gf.cfg:2: serial in [MACHINE]: a [FLEET] names its machines",
	    "gf.cfg:3: password in [MACHINE]",
	    "gf.cfg:4: hostname in [MACHINE]" }, { "12345678" }, NULL,
	    { { NULL, NULL, 0 } }, 0 },
	{ "[FLEET] bad values", "[FLEET]\ncount = 0\nserial_first = 1\n"
	    "connect_rate = 0\nkeep_jobs = sometimes\n", -1,
	    { "gf.cfg:2: count: '0' is not a whole number",
	    "gf.cfg:4: connect_rate: '0' is not a rate",
	    "gf.cfg:5: keep_jobs: 'sometimes' is not a boolean" }, { NULL },
	    NULL, { { NULL, NULL, 0 } }, 0 },
	{ "[FLEET] loops out of range", "[FLEET]\ncount = 2\n"
	    "serial_first = 1\nloops = 257\n", -1,
	    { "gf.cfg:4: loops: '257' is not a whole number from 0 to 256" },
	    { NULL }, NULL, { { NULL, NULL, 0 } }, 0 },
	{ "[FLEET] serial_first checks, never echoed",
	    "[FLEET]\ncount = 1000001\nserial_first = 0123\n", -1,
	    { "gf.cfg:2: count must be at most 1000000",
	    "gf.cfg:3: serial_first must be 1 to 15 decimal digits, not "
	    "starting with 0", "gf.cfg:1: no password: set password_file "
	    "in [FLEET]" }, { "0123" }, NULL, { { NULL, NULL, 0 } }, 0 },
	{ "[FLEET] serials past 15 digits",
	    "[FLEET]\ncount = 2\nserial_first = 999999999999999\n"
	    "password_file = fleet.pw\nconnect_rate = nan\n", -1,
	    { "gf.cfg:3: serial_first + count - 1 has more than 15 digits",
	    "gf.cfg:5: connect_rate: 'nan' is not a rate" },
	    { "999999999999999" }, NULL,
	    { { "fleet.pw", PW "\n", 0600 }, { NULL, NULL, 0 } }, 0 },
	{ "[FLEET] count needs serial_first; a bad shared password",
	    "[FLEET]\ncount = 2\npassword_file = fleet.pw\n", -1,
	    { "gf.cfg:1: count needs serial_first in [FLEET]",
	    "gf.cfg:3: the first line of password_file must be 64 "
	    "hexadecimal" }, { "deadbeef" }, NULL,
	    { { "fleet.pw", "deadbeef\n", 0600 }, { NULL, NULL, 0 } }, 0 },
	{ "[FLASHFORGE] ports that clash", "[FLASHFORGE]\ntcp_port = 9000\n"
	    "http_port = 9000\ndiscovery_port = 19000\ncheck_code = a-b\n", -1,
	    { "gf.cfg:3: tcp_port and http_port are both 9000",
	    "discovery_port and multicast_port are both 19000",
	    "gf.cfg:5: check_code must be letters and digits" }, { "a-b" },
	    NULL, { { NULL, NULL, 0 } }, 0 },
};

static void
run_case(const struct ccase *c)
{
	struct config cf;
	char dir[256], path[PATH_MAX], *err;
	size_t i;
	int rc;

	new_dir(dir, sizeof(dir));
	for (i = 0; i < 2 && c->files[i].name != NULL; i++)
		write_file(dir, c->files[i].name, c->files[i].content,
		    strlen(c->files[i].content), c->files[i].mode);
	write_file(dir, "gf.cfg", c->cfg, strlen(c->cfg), c->mode);
	snprintf(path, sizeof(path), "%s/gf.cfg", dir);

	err = load(&cf, path, &rc);
	if (rc != c->rc)
		fail_msg("%s: config_load returned %d, stderr:\n%s", c->name,
		    rc, err);
	for (i = 0; i < 4 && c->err[i] != NULL; i++)
		if (strstr(err, c->err[i]) == NULL)
			fail_msg("%s: '%s' not on stderr:\n%s", c->name,
			    c->err[i], err);
	for (i = 0; i < 2 && c->noerr[i] != NULL; i++)
		if (strstr(err, c->noerr[i]) != NULL)
			fail_msg("%s: '%s' on stderr:\n%s", c->name,
			    c->noerr[i], err);
	/* Whatever happens, the password is never printed. */
	if (strstr(err, PW) != NULL)
		fail_msg("%s: the password is on stderr", c->name);
	if (c->check != NULL)
		c->check(&cf, dir);
	config_free(&cf);
	free(err);
}

static void
test_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
}

/* inih cuts lines at 200 bytes by default; ours must come through whole,
 * and the line numbers after them must still be right. */
static void
test_long_line(void **state)
{
	struct config cf;
	char dir[256], path[PATH_MAX], *cfg, *err;
	size_t len, n;
	int rc;

	(void)state;
	new_dir(dir, sizeof(dir));
	n = 10 * 1024;
	assert_non_null(cfg = malloc(n + 256));
	len = (size_t)sprintf(cfg, MACH "[EMULATOR]\nmaterial_thickness = ");
	memset(cfg + len, 'x', n);
	len += n;
	len += (size_t)sprintf(cfg + len, "\nbypass_homing = maybe\n");
	write_file(dir, "gf.cfg", cfg, len, 0600);
	snprintf(path, sizeof(path), "%s/gf.cfg", dir);

	err = load(&cf, path, &rc);
	assert_int_equal(rc, -1);
	if (strstr(err, "gf.cfg:6: bypass_homing: 'maybe'") == NULL)
		fail_msg("wrong line after a long one:\n%s", err);
	assert_non_null(cf.material_thickness);
	assert_int_equal(strlen(cf.material_thickness), n);
	assert_int_equal(strspn(cf.material_thickness, "x"), n);
	config_free(&cf);
	free(err);
	free(cfg);
}

static void
test_nul_byte(void **state)
{
	static const char cfg[] = MACH "[EMULATOR]\nbase_dir = a\0b\n";
	struct config cf;
	char dir[256], path[PATH_MAX], *err;
	int rc;

	(void)state;
	new_dir(dir, sizeof(dir));
	write_file(dir, "gf.cfg", cfg, sizeof(cfg) - 1, 0600);
	snprintf(path, sizeof(path), "%s/gf.cfg", dir);
	err = load(&cf, path, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, "gf.cfg:5: NUL byte"));
	config_free(&cf);
	free(err);
}

static void
test_missing_file(void **state)
{
	struct config cf;
	char path[PATH_MAX], *err;
	int rc;

	(void)state;
	snprintf(path, sizeof(path), "%s/nope.cfg", topdir);
	err = load(&cf, path, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, "nope.cfg: No such file or directory"));
	config_free(&cf);
	config_free(&cf);	/* twice is harmless */
	free(err);
}

/* systemd's LoadCredential=password:...: used when the file has none. */
static void
test_credential(void **state)
{
	static const struct {
		const char	*name;
		const char	*cfg;
		const char	*cred;		/* NULL: no file */
		int		 rc;
		const char	*password;
		const char	*err;
	} ccases[] = {
		{ "credential used", "[MACHINE]\nserial: 1\n", PW "\n", 0, PW,
		    NULL },
		{ "the config wins", MACH, "ffffffffffffffffffffffffffffffff"
		    "ffffffffffffffffffffffffffffffff", 0, PW, NULL },
		{ "other credentials only", "[MACHINE]\nserial: 1\n", NULL, -1,
		    NULL, "no password" },
		{ "bad credential", "[MACHINE]\nserial: 1\n", "zz-secret-zz",
		    -1, NULL, "/password: must be 64 hexadecimal" },
	};
	struct config cf;
	char dir[256], cred[PATH_MAX], path[PATH_MAX], *err;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(ccases) / sizeof(ccases[0]); i++) {
		new_dir(dir, sizeof(dir));
		snprintf(cred, sizeof(cred), "%s/creds", dir);
		assert_int_equal(mkdir(cred, 0700), 0);
		if (ccases[i].cred != NULL)
			write_file(cred, "password", ccases[i].cred,
			    strlen(ccases[i].cred), 0400);
		write_file(cred, "other", "x", 1, 0400);
		write_file(dir, "gf.cfg", ccases[i].cfg,
		    strlen(ccases[i].cfg), 0600);
		snprintf(path, sizeof(path), "%s/gf.cfg", dir);
		setenv("CREDENTIALS_DIRECTORY", cred, 1);
		err = load(&cf, path, &rc);
		unsetenv("CREDENTIALS_DIRECTORY");
		if (rc != ccases[i].rc)
			fail_msg("%s: rc %d:\n%s", ccases[i].name, rc, err);
		if (ccases[i].password != NULL)
			assert_string_equal(cf.password, ccases[i].password);
		if (ccases[i].err != NULL &&
		    strstr(err, ccases[i].err) == NULL)
			fail_msg("%s: '%s' not in:\n%s", ccases[i].name,
			    ccases[i].err, err);
		assert_null(strstr(err, "zz-secret-zz"));
		config_free(&cf);
		free(err);
	}
}

static void
assert_same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

/* config_print() writes a file that reads back as the same configuration,
 * once the masked password is put back. */
static void
test_print_round_trip(void **state)
{
	static const char cfg[] = MACH "hostname = gf-%%-lab\n"
	    "head_firmware = 199234111\n"
	    "[SERVICE]\nserver_url = http://localhost:8080/\nca_file = ca.pem\n"
	    "transfer_timeout = 12.5\nmin_speed = 10\nmin_speed_time = 3\n"
	    "download_auth = never\n"
	    "[FACTORY_FIRMWARE]\ncheck = yes\ndownload_dir = fw\n"
	    "fw_version = 2.6.1\n[EMULATOR]\nbypass_homing = on\n"
	    "material_thickness = .230\nbutton_press_delay = 0.1\n"
	    "protocol_profile = 1.x\n[LOGGING]\ndir = logs\nfile = e.log\n"
	    "level = WARNING\nconsole_level = DEBUG\nsave_puls = 1\n"
	    "[MOTION]\nwarm_up_delay = 1e-3\ncool_down_delay = 12\n";
	struct config a, b;
	char dir[256], path[PATH_MAX], *text, *err, *p;
	size_t len;
	FILE *fp;
	int rc;

	(void)state;
	new_dir(dir, sizeof(dir));
	write_file(dir, "ca.pem", "x", 1, 0600);
	write_file(dir, "gf.cfg", cfg, sizeof(cfg) - 1, 0600);
	snprintf(path, sizeof(path), "%s/gf.cfg", dir);
	err = load(&a, path, &rc);
	assert_int_equal(rc, 0);
	free(err);

	assert_non_null(fp = open_memstream(&text, &len));
	config_print(&a, fp);
	fclose(fp);
	assert_null(strstr(text, PW));
	assert_non_null(p = strstr(text, "password = ********\n"));
	assert_non_null(strstr(text, "hostname = gf-%%-lab\n"));
	assert_non_null(strstr(text, "# image_src_dir: (not set)\n"));

	/* Put the secret back by hand, as a user copying the output would. */
	assert_non_null(fp = fopen(path, "w"));
	fwrite(text, 1, (size_t)(p - text), fp);
	fprintf(fp, "password = %s\n", PW);
	fputs(p + strlen("password = ********\n"), fp);
	fclose(fp);
	err = load(&b, path, &rc);
	if (rc != 0)
		fail_msg("printed config does not load:\n%s\n%s", err, text);
	free(err);

	assert_same_str(a.server_url, b.server_url);
	assert_same_str(a.status_service_url, b.status_service_url);
	assert_same_str(a.ca_file, b.ca_file);
	assert_same_str(a.serial, b.serial);
	assert_same_str(a.hostname, b.hostname);
	assert_same_str(a.password, b.password);
	assert_same_str(a.password_file, b.password_file);
	assert_same_str(a.head_id, b.head_id);
	assert_same_str(a.head_serial, b.head_serial);
	assert_same_str(a.head_firmware, b.head_firmware);
	assert_int_equal(a.fw_check, b.fw_check);
	assert_same_str(a.download_dir, b.download_dir);
	assert_same_str(a.fw_version, b.fw_version);
	assert_same_str(a.app_version, b.app_version);
	assert_same_str(a.base_dir, b.base_dir);
	assert_same_str(a.motion_dl_dir, b.motion_dl_dir);
	assert_same_str(a.image_src_dir, b.image_src_dir);
	assert_int_equal(a.bypass_homing, b.bypass_homing);
	assert_same_str(a.material_thickness, b.material_thickness);
	assert_true(a.button_press_delay == b.button_press_delay);
	assert_same_str(a.protocol_profile, b.protocol_profile);
	assert_same_str(a.sequences_file, b.sequences_file);
	assert_same_str(a.log_dir, b.log_dir);
	assert_same_str(a.log_file, b.log_file);
	assert_int_equal(a.log_level, b.log_level);
	assert_int_equal(a.console_level, b.console_level);
	assert_int_equal(a.save_sent_images, b.save_sent_images);
	assert_true(a.warm_up_delay == b.warm_up_delay);
	assert_true(a.cool_down_delay == b.cool_down_delay);
	assert_true(a.transfer_timeout == b.transfer_timeout);
	assert_int_equal(a.min_speed, b.min_speed);
	assert_int_equal(a.min_speed_time, b.min_speed_time);
	assert_int_equal(a.download_auth, b.download_auth);
	assert_int_equal(a.download_auth, CONFIG_DL_AUTH_NEVER);

	assert_string_equal(a.hostname, "gf-%-lab");
	assert_string_equal(a.server_url, "http://localhost:8080");
	assert_int_equal(a.log_level, LOG_WARNING);
	assert_true(a.warm_up_delay == 1e-3);
	free(text);
	config_free(&a);
	config_free(&b);
}

/* config_check() on a struct made by hand: no file, no line numbers. */
static void
test_check_by_hand(void **state)
{
	static const struct {
		const char	*name;
		const char	*serial;
		const char	*password;
		double		 delay;
		int		 rc;
	} hcases[] = {
		{ "good", "12345678", PW, 1, 0 },
		{ "no serial", NULL, PW, 1, -1 },
		{ "no password", "1", NULL, 1, -1 },
		{ "NaN delay", "1", PW, NAN, -1 },
		{ "huge delay", "1", PW, 1e9, -1 },
	};
	struct config cf;
	char serial[32], password[80], url[] = "https://x", ws[] = "wss://x";
	char prof[] = "2.6";
	size_t i;
	int rc, saved, fd;

	(void)state;
	for (i = 0; i < sizeof(hcases) / sizeof(hcases[0]); i++) {
		memset(&cf, 0, sizeof(cf));
		if (hcases[i].serial != NULL) {
			snprintf(serial, sizeof(serial), "%s",
			    hcases[i].serial);
			cf.serial = serial;
		}
		if (hcases[i].password != NULL) {
			snprintf(password, sizeof(password), "%s",
			    hcases[i].password);
			cf.password = password;
		}
		cf.server_url = url;
		cf.status_service_url = ws;
		cf.protocol_profile = prof;
		cf.button_press_delay = hcases[i].delay;
		cf.log_level = cf.console_level = LOG_INFO;
		fflush(stderr);
		saved = dup(STDERR_FILENO);
		fd = open("/dev/null", O_WRONLY);
		dup2(fd, STDERR_FILENO);
		rc = config_check(&cf);
		dup2(saved, STDERR_FILENO);
		close(fd);
		close(saved);
		if (rc != hcases[i].rc)
			fail_msg("%s: config_check returned %d", hcases[i].name,
			    rc);
	}
}

/* The shipped sample must load as it is, and mention every key. */
static void
test_sample(void **state)
{
	static const char *const keys[] = {
		"[SERVICE]", "server_url", "status_service_url", "ca_file",
		"[MACHINE]", "serial", "hostname", "password",
		"password_file", "head_id", "head_serial", "head_firmware",
		"[FACTORY_FIRMWARE]", "check", "download_dir", "fw_version",
		"app_version", "[EMULATOR]", "base_dir", "motion_dl_dir",
		"image_src_dir", "bypass_homing", "material_thickness",
		"button_press_delay", "protocol_profile", "sequences_file",
		"firmware_check", "firmware_dl_dir", "[LOGGING]", "dir",
		"file", "level", "console_level", "save_sent_images",
		"save_puls", "[THERMAL]", "[MOTION]", "warm_up_delay",
		"cool_down_delay", "CREDENTIALS_DIRECTORY", "transfer_timeout",
		"min_speed", "min_speed_time", "download_auth",
		"[FLEET]", "count", "serial_first", "machines_file",
		"connect_rate", "keep_jobs", "JOB_COMPLETION_INDEX",
	};
	const char *src = getenv("GFE_SRC");
	struct config cf;
	char path[PATH_MAX], *err, *text;
	size_t i, len;
	FILE *fp;
	int rc;

	(void)state;
	if (src == NULL)
		skip();
	snprintf(path, sizeof(path), "%s/gf-machine-emulator.cfg.sample", src);
	err = load(&cf, path, &rc);
	if (rc != 0 || strstr(err, "unknown") != NULL)
		fail_msg("the sample does not load cleanly:\n%s", err);
	free(err);
	config_free(&cf);

	assert_non_null(fp = fopen(path, "r"));
	assert_non_null(text = malloc(1 << 16));
	len = fread(text, 1, (1 << 16) - 1, fp);
	text[len] = '\0';
	fclose(fp);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strstr(text, keys[i]) == NULL)
			fail_msg("the sample does not document %s", keys[i]);
	free(text);
}

/* [FLEET] printed: masked serials, and it reads back as the same fleet. */
static void
test_print_fleet(void **state)
{
	static const char cfg[] = "[FLEET]\nmachines_file = m.csv\n"
	    "connect_rate = 12.5\nkeep_jobs = on\n";
	struct config a, b;
	char dir[256], path[PATH_MAX], *text, *err;
	size_t len;
	FILE *fp;
	int rc;

	(void)state;
	new_dir(dir, sizeof(dir));
	write_file(dir, "m.csv", CSV3OK, sizeof(CSV3OK) - 1, 0600);
	write_file(dir, "gf.cfg", cfg, sizeof(cfg) - 1, 0600);
	snprintf(path, sizeof(path), "%s/gf.cfg", dir);
	err = load(&a, path, &rc);
	assert_int_equal(rc, 0);
	free(err);
	assert_non_null(fp = open_memstream(&text, &len));
	config_print(&a, fp);
	fclose(fp);
	assert_null(strstr(text, PW));
	assert_null(strstr(text, "host-a"));
	assert_non_null(strstr(text, "\n[FLEET]\n# count: (not set)\n"
	    "# serial_first: (not set)\n"));
	assert_non_null(strstr(text, "connect_rate = 12.5\nkeep_jobs = True\n"
	    "# machines in the fleet: 3\n"));
	/* Nothing masked in the [MACHINE] of a fleet. */
	assert_non_null(strstr(text, "# password: (not set)\n"));

	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
	err = load(&b, path, &rc);
	if (rc != 0)
		fail_msg("printed config does not load:\n%s\n%s", err, text);
	free(err);
	assert_same_str(a.fleet_machines_file, b.fleet_machines_file);
	assert_int_equal(b.fleet_nmachines, 3);
	assert_true(a.fleet_connect_rate == b.fleet_connect_rate);
	assert_int_equal(b.keep_jobs, 1);
	free(text);
	config_free(&a);
	config_free(&b);

	/* count mode: serial_first said to be set, never shown. */
	new_dir(dir, sizeof(dir));
	write_file(dir, "pw", PW "\n", strlen(PW) + 1, 0600);
	write_file(dir, "gf.cfg", "[FLEET]\ncount = 4\nserial_first = "
	    "S24681357\npassword_file = pw\n", 62, 0600);
	snprintf(path, sizeof(path), "%s/gf.cfg", dir);
	err = load(&a, path, &rc);
	if (rc != 0)
		fail_msg("count fleet:\n%s", err);
	free(err);
	assert_non_null(fp = open_memstream(&text, &len));
	config_print(&a, fp);
	fclose(fp);
	assert_null(strstr(text, "24681357"));
	assert_null(strstr(text, PW));
	assert_non_null(strstr(text, "count = 4\n# serial_first: (set, not "
	    "shown)\n"));
	free(text);
	config_free(&a);
}

/* A reload keeps the shard the command line gave. */
static void
test_keep_runtime(void **state)
{
	struct config old, new;

	(void)state;
	memset(&old, 0, sizeof(old));
	memset(&new, 0, sizeof(new));
	old.shard_index = 3;
	old.shard_count = 8;
	new.shard_count = 1;
	config_keep_runtime(&new, &old);
	assert_int_equal(new.shard_index, 3);
	assert_int_equal(new.shard_count, 8);
}

static int
setup(void **state)
{
	(void)state;
	unsetenv("CREDENTIALS_DIRECTORY");
	return mkdtemp(topdir) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", topdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_credential),
		cmocka_unit_test(test_print_round_trip),
		cmocka_unit_test(test_check_by_hand),
		cmocka_unit_test(test_sample),
		cmocka_unit_test(test_print_fleet),
		cmocka_unit_test(test_keep_runtime),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
