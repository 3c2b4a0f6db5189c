/*
 * ff_model: a FlashForge printer as its LAN clients see it, with no sockets.
 *
 * One struct ff_model per emulated printer holds a live machine: heaters
 * that approach their targets, a head that moves, a print that advances.
 * Nothing runs on a timer: every entry point takes the time (now_ms, a
 * monotonic clock in ms) and the model folds the elapsed time in lazily, so
 * the same calls with the same times always give the same answers.  The
 * model is used from one thread (the lws loop) and takes no locks.
 *
 * Everything that differs between models (strings, quirks, sizes, ids) is in
 * one table, ff_model_infos[] in ff_model.c; the protocol modules
 * (ff_proto, ff_disco, ff_http) format from it and from ff_model_status(),
 * so every protocol reports the same state.
 */
#ifndef GFE_FF_MODEL_H
#define GFE_FF_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define FF_FILES_MAX		256	/* files on the printer; more are refused */
#define FF_NAME_MAX		255	/* bytes of a file name */
#define FF_PRINT_BYTES_PER_S	2000	/* bytes of G-code printed per second */
#define FF_PRINT_MIN_MS		60000	/* ms: the shortest print */
#define FF_PRINT_BYTES_PER_LAYER 10000	/* bytes of G-code per layer */
#define FF_LAYER_MM		0.2	/* mm: layer height while printing */
#define FF_FILAMENT_MM_PER_BYTE	0.003	/* mm of filament per byte printed */
#define FF_HOME_MS		6000	/* ms G28 keeps the machine BUSY */
#define FF_FEED_DEFAULT		3000.0	/* mm/min: G1 without F */
#define FF_NOZZLE_TAU_MS	15000	/* ms: time constant of the nozzle */
#define FF_BED_TAU_MS		60000	/* ms: time constant of the bed */
#define FF_TEMP_SNAP		0.05	/* °C: this close is the target */
#define FF_JOB_MAX_MS		(30LL * 24 * 3600 * 1000) /* ms: longest print */
#define FF_PRINTER_NAME_MAX	64	/* bytes of a name set by M610/reName_cmd */

enum ff_kind {
	FF_FINDER,
	FF_ADVENTURER3,
	FF_ADVENTURER4,
	FF_ADVENTURER5M,
	FF_ADVENTURER5M_PRO,
};
#define FF_KIND_COUNT	5

/* What M119 reports as MachineStatus and MoveMode. */
enum ff_machine {
	FF_MACHINE_READY,
	FF_MACHINE_BUILDING,	/* BUILDING_FROM_SD */
	FF_MACHINE_PAUSED,
	FF_MACHINE_BUSY,	/* homing */
};
enum ff_move {
	FF_MOVE_READY,
	FF_MOVE_MOVING,
	FF_MOVE_PAUSED,
};

enum ff_job {
	FF_JOB_NONE,		/* no print, or the last one was cancelled */
	FF_JOB_PRINTING,
	FF_JOB_PAUSED,
	FF_JOB_DONE,		/* finished; cleared by the next print */
};

enum ff_heater {
	FF_HEATER_NOZZLE,
	FF_HEATER_BED,
};

enum ff_fan {
	FF_FAN_COOLING,		/* % */
	FF_FAN_CHAMBER,		/* % */
	FF_FAN_INTERNAL,	/* 0/1: circulation inside */
	FF_FAN_EXTERNAL,	/* 0/1: exhaust */
};

/* M661's reply: the binary block of /data/ paths, or A3 fw 1.3.7's text. */
enum ff_list_form {
	FF_LIST_BINARY,		/* ok, 44AAAA44, N, N x (3A3AA3A3, L, path) */
	FF_LIST_TEXT,		/* "info_list.size: N", names, no ok */
};

/* M662's reply: the PNG after "ok", or A3 fw 1.3.7's framed form. */
enum ff_thumb_form {
	FF_THUMB_RAW,		/* "ok\r\n" then the PNG */
	FF_THUMB_A3,		/* "ack header length", A2A22A2A, L, PNG */
};

/*
 * The per-model policy: one row per enum ff_kind.  Format strings cannot
 * live here (-Wformat=2 refuses non-literal formats), so the quirks are data
 * (separators, decimals, flags) that the formatters consult.
 */
struct ff_info {
	enum ff_kind	 kind;
	const char	*kind_name;	/* the config's model = value */
	const char	*default_name;	/* when the config names none */

	/* M115 */
	const char	*machine_type;
	const char	*firmware;
	const char	*dims_sep;	/* between "X: 140", "Y: 140", "Z: 140" */
	unsigned	 tool_count;
	const char	*mac;		/* NULL: no Mac Address line */
	const char	*mac_sep;	/* after "Mac Address:" */
	const char	*mac_eol;	/* that line's odd terminator */

	/* M601 S1 */
	const char	*login_ok;
	const char	*login_taken;	/* while a session exists; NULL: the
					 * login is accepted again */

	/* M105 */
	int		 temp_decimals;	/* 0: "24", 1: "220.3" */
	const char	*nozzle_sep;	/* between "T0:24" and "/0" */
	const char	*bed_sep;	/* between "B:0" and "/0" */
	int		 t1_pair;	/* prints an (idle) T1 pair */

	/* M114: -1 prints the shortest form ("86.9984", "140"), else fixed */
	int		 pos_decimals;

	/* M27 */
	int		 m27_percent;	/* progress as n/100 rather than bytes */
	const char	*layer_sep;	/* before "Layer:" while a job is on;
					 * NULL: no Layer line */

	/* M119 */
	int		 m119_modern;	/* MachineStatus first, LED, CurrentFile */
	const char	*endstops;	/* the Endstop line, after "Endstop: " */
	const char	*status_flags;	/* the Status line, after "Status: " */

	/* M146: the reply's tail, captured as a bare "ok\n" */
	const char	*led_ok;

	/* M653/M654: the reply's tail; NULL: "ok\r\n" */
	const char	*ack_ok;

	/* Files over TCP. */
	enum ff_list_form list_form;	/* M661 */
	enum ff_thumb_form thumb_form;	/* M662 */
	int		 upload_framed;	/* M28 data in 4112-byte blocks, else raw */
	int		 m23_starts;	/* M23 alone starts the print */
	int		 silent_moves;	/* no reply to G0/G1/G28/G90/G91/G92 */
	const char	*m650;		/* M650's line */
	const char	*estop_echo;	/* M112's line; NULL: none */

	/* The machine. */
	unsigned	 dims[3];	/* mm: build volume (M115, /detail) */
	double		 axis_min[3];	/* mm: X Y Z limits of G1 */
	double		 axis_max[3];	/* mm */
	double		 home[3];	/* mm: where G28 leaves the head */
	int		 has_bed;	/* 0: B reads 0/0 and M140 is ignored */
	double		 nozzle_ambient;	/* °C: cold reading */
	double		 bed_ambient;		/* °C */
	double		 chamber_ambient;	/* °C, /detail only */
	double		 nozzle_max;	/* °C: highest target accepted */
	double		 bed_max;	/* °C */
	double		 print_nozzle;	/* °C: target a print sets */
	double		 print_bed;	/* °C */
	int		 led_initial;
	const char	*demo_file;	/* on the printer at start-up */
	uint64_t	 demo_size;	/* bytes */
	uint64_t	 last_done;	/* M27 before any job: bytes or % */
	uint64_t	 last_total;
	uint64_t	 done_overshoot; /* bytes M27 counts past the end of a
					 * finished job (the Finder's +1) */

	/* Discovery. */
	int		 disco_modern;	/* 276-byte reply, else 140-byte */
	uint16_t	 vid, pid;
	uint16_t	 product_type;	/* modern layout only */

	/* Default ports (the config may override them). */
	uint16_t	 tcp_port;
	uint16_t	 http_port;

	/* HTTP API (5M-era only). */
	int		 http_api;
	int		 chamber_ctl, external_fan_ctl, internal_fan_ctl;
	int		 light_ctl, nozzle_ctl, platform_ctl;
};

struct ff_params {
	enum ff_kind	 kind;
	const char	*name;		/* "My Finder"; NULL: the model's */
	const char	*serial;	/* "62B08883" */
	const char	*check_code;	/* HTTP API pair with serial */
	const char	*ip;		/* for /detail ipAddr; may be NULL */
	uint16_t	 tcp_port, http_port;	/* 0: the model's default */
	uint16_t	 camera_port;	/* MJPEG stream; 0: no camera */
};

/* One consistent picture of the machine at one instant. */
struct ff_status {
	int64_t		 t;		/* ms: the instant */
	enum ff_machine	 machine;
	enum ff_move	 move;
	enum ff_job	 job;
	double		 nozzle, nozzle_target;	/* °C */
	double		 bed, bed_target;	/* °C */
	double		 chamber;		/* °C */
	double		 pos[4];	/* mm: X Y Z A (A = extruder) */
	int		 led;
	const char	*file;		/* the job's file; "" when none */
	uint64_t	 m27_done;	/* what M27 shows: bytes or percent */
	uint64_t	 m27_total;
	double		 progress;	/* 0..1 of the job (1 when done) */
	unsigned	 layer, layers;	/* 0/0 when no job */
	int64_t		 elapsed_ms;	/* printing time of the job, no pauses */
	int64_t		 remaining_ms;
	int		 cooling_fan, chamber_fan;	/* % */
	int		 internal_fan, external_fan;	/* 0/1 */
	int		 speed_pct;	/* print speed adjustment, % */
	double		 z_comp;	/* mm: Z offset */
	int		 camera;	/* 0/1: streamCtrl_cmd */
	int		 auto_shutdown;	/* 0/1: delayClose_cmd */
	int		 shutdown_min;	/* min: delayClose_cmd's delay */
	int		 steppers;	/* 0/1: M17/M18 */
	int		 runout;	/* 0/1: M405/M406 filament sensor */
	unsigned	 tool_count;	/* M611 */
	int64_t		 total_print_ms;	/* every job so far */
	double		 total_filament_mm;
};

struct ff_model;

int		 ff_model_kind_parse(const char *s, enum ff_kind *out);
const char	*ff_model_kind_name(enum ff_kind k);
const struct ff_info *ff_model_kind_info(enum ff_kind k);

struct ff_model	*ff_model_new(const struct ff_params *p, int64_t now_ms);
void		 ff_model_free(struct ff_model *m);

const struct ff_info *ff_model_info(const struct ff_model *m);
const char	*ff_model_name(const struct ff_model *m);
/* M610 / reName_cmd: 1..FF_PRINTER_NAME_MAX printable bytes; -1 else. */
int		 ff_model_set_name(struct ff_model *m, const char *name);
/* Control sessions (M601 .. M602 or close): delta +1 opens one, -1 ends
 * one; returns how many are open after it. */
int		 ff_model_sessions(struct ff_model *m, int delta);
const char	*ff_model_serial(const struct ff_model *m);
const char	*ff_model_check_code(const struct ff_model *m);
const char	*ff_model_ip(const struct ff_model *m);	/* "" when unknown */
uint16_t	 ff_model_tcp_port(const struct ff_model *m);
uint16_t	 ff_model_http_port(const struct ff_model *m);
uint16_t	 ff_model_camera_port(const struct ff_model *m);	/* 0: none */

/* Folds the time up to now_ms into the state (heaters, the job's end). */
void		 ff_model_advance(struct ff_model *m, int64_t now_ms);
/* Advances to now_ms, then describes the machine. */
void		 ff_model_status(struct ff_model *m, int64_t now_ms,
		    struct ff_status *st);
/* The state as last advanced, for callers without a clock (discovery). */
void		 ff_model_snapshot(const struct ff_model *m,
		    struct ff_status *st);

/*
 * Files.  Only names and sizes are kept.  ff_model_file_add() replaces the
 * size of a name already there; it returns -1 for a bad name (empty, longer
 * than FF_NAME_MAX, with '/', '\\' or control bytes, "." or "..") or when
 * FF_FILES_MAX files are already there (the upload is refused; nothing is
 * evicted, as a full card refuses a copy).
 */
int		 ff_model_file_add(struct ff_model *m, const char *name,
		    uint64_t size);
size_t		 ff_model_file_count(const struct ff_model *m);
/* The i-th file, in the order added; NULL past the end. */
const char	*ff_model_file_name(const struct ff_model *m, size_t i,
		    uint64_t *size);
int		 ff_model_file_find(const struct ff_model *m, const char *name,
		    uint64_t *size);
/* 1 when ff_model_file_add() would take name, else 0. */
int		 ff_model_file_name_ok(const char *name);
/* The thumbnail every file has: a PNG (static, never freed). */
const uint8_t	*ff_model_thumb_png(size_t *len);

/* Job control; each returns 0, or -1 when the state does not allow it. */
int		 ff_model_select(struct ff_model *m, const char *name,
		    int64_t now_ms);		/* M23: idle and known */
int		 ff_model_start(struct ff_model *m, int64_t now_ms);
						/* M24: the selected file */
int		 ff_model_print_file(struct ff_model *m, const char *name,
		    int64_t now_ms);		/* select + start */
int		 ff_model_pause(struct ff_model *m, int64_t now_ms);
int		 ff_model_resume(struct ff_model *m, int64_t now_ms);
int		 ff_model_cancel(struct ff_model *m, int64_t now_ms);
/* After a finished job (5M "completed"): back to ready. */
int		 ff_model_clear_platform(struct ff_model *m, int64_t now_ms);
void		 ff_model_estop(struct ff_model *m, int64_t now_ms);

/* Motion; -1 while printing, paused or homing. */
int		 ff_model_home(struct ff_model *m, int64_t now_ms);
void		 ff_model_set_relative(struct ff_model *m, int relative);
/* mask: bit i set when axis i (X Y Z A) of v[] is given; feed: mm/min, or
 * <= 0 for the last one used. */
int		 ff_model_move(struct ff_model *m, const double v[4],
		    unsigned mask, double feed, int64_t now_ms);

/* Settings: the value is clamped to what the model accepts. */
void		 ff_model_set_target(struct ff_model *m, enum ff_heater h,
		    double celsius, int64_t now_ms);
void		 ff_model_set_led(struct ff_model *m, int on, int64_t now_ms);
void		 ff_model_set_fan(struct ff_model *m, enum ff_fan f, int value);
void		 ff_model_set_speed(struct ff_model *m, int pct);
void		 ff_model_set_zcomp(struct ff_model *m, double mm);
void		 ff_model_set_camera(struct ff_model *m, int on);
void		 ff_model_set_shutdown(struct ff_model *m, int on, int minutes);
/* M18 refuses while a job is on: -1. */
int		 ff_model_set_steppers(struct ff_model *m, int on,
		    int64_t now_ms);
void		 ff_model_set_runout(struct ff_model *m, int on);
/* M611: 1 or 2 tools; -1 for anything else. */
int		 ff_model_set_tools(struct ff_model *m, unsigned n);

const char	*ff_model_machine_name(enum ff_machine s);	/* "READY" */
const char	*ff_model_move_name(enum ff_move s);		/* "MOVING" */

#endif
