/*
 * ff_proto: see ff_proto.h.
 *
 * Each reply is formatted into a memory stream from one ff_model_status()
 * snapshot, so the lines of one reply describe one instant.  Per-model
 * differences come from struct ff_info; the formats here are the shapes
 * the captures share.
 *
 * Where FLASHFORGE.md is silent:
 * - Codes match case-insensitively; a known command is echoed by its
 *   canonical name ("m115" gets "CMD M115 Received."), an unknown one as
 *   sent, its bytes outside '!'..'~' shown as '?' and cut at
 *   FF_CODE_ECHO_MAX, so junk is never reflected raw.
 * - M601 fails ("Control failed.") only for an explicit S other than 1
 *   (and on the A3 while another session is open, see ff_model.c).
 * - M661/M662 take the model's form (ff_model.c says which and why);
 *   every file's thumbnail is the same small PNG.
 * - File names may come as "0:/user/<name>", "/data/<name>" or bare.
 * - M23 answers "File opened: <name> Size: <bytes>" and "File selected",
 *   or "open failed, File: <name>" when unknown or a job is on; on models
 *   whose M23 starts the print it also starts it.
 * - M28 <size> <path> switches the connection to data: exactly <size>
 *   raw bytes, or framed blocks each answered "N0000 ok." (see the
 *   model).  Data is counted and checked, never kept, never a command.
 *   M29 stores the file when every byte arrived: "Done saving file.".
 *   An upload that was short (a block header is not there, or a raw
 *   line "~M29" before the count), long (any line but M29 after the
 *   count), corrupt (bad block header or CRC: "N0000 error.") or over
 *   FF_TCP_UPLOAD_MAX stores nothing and M29 answers "Error: ...".  Lines
 *   after a failed upload are skipped until M29, and never drop the
 *   client for their length.
 * - Code and arguments need no space between them: "~M109S200".
 * - Motion and job commands the state refuses still end in "ok".
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ff_model.h"
#include "ff_proto.h"
#include "log.h"
#include "metrics.h"

#define FF_PROTO_USER	"0:/user/"	/* the card's prefix in M23, M28 */
#define FF_PROTO_DATA	"/data/"	/* the printer's own path */
#define FF_PROTO_NUM	48		/* bytes of a formatted number */
#define FF_BLOCK_MAGIC	0x5a5aa5a5U	/* an M28 block's first 4 bytes */
#define FF_LIST_MAGIC	0x44aaaa44U	/* M661's binary block */
#define FF_ENTRY_MAGIC	0x3a3aa3a3U	/* M661: before each path */
#define FF_THUMB_MAGIC	0xa2a22a2aU	/* M662 on the A3 */

struct ff_proto_ctx {
	struct ff_proto		*p;
	FILE			*out;
	struct ff_model		*m;
	const struct ff_info	*fi;
	const char		*args;	/* after the code, NUL-terminated */
	const char		*tail;	/* the reply's "ok" line */
	const char		*echo;	/* the code, as echoed */
	int64_t			 now;	/* ms */
};

typedef void (*ff_proto_fn)(struct ff_proto_ctx *);

void
ff_proto_init(struct ff_proto *p)
{
	memset(p, 0, sizeof(*p));
	p->mode = FF_MODE_LINE;
	p->up = FF_UP_NONE;
}

void
ff_proto_close(struct ff_proto *p, struct ff_model *m)
{
	if (p->session)
		ff_model_sessions(m, -1);
	p->session = 0;
}

/* --- parsing --------------------------------------------------------- */

static int
ff_proto_space(char c)
{
	return c == ' ' || c == '\t';
}

/* The value of a "<letter><number>" word of args (case-insensitive): 1 and
 * *v when present with a number, else 0. */
static int
ff_proto_param(const char *args, char letter, double *v)
{
	const char *s = args;
	char *end;
	double d;

	while (*s != '\0') {
		while (ff_proto_space(*s))
			s++;
		if (*s == '\0')
			break;
		if (toupper((unsigned char)*s) == toupper((unsigned char)letter)) {
			d = strtod(s + 1, &end);
			if (end != s + 1 && isfinite(d) &&
			    (*end == '\0' || ff_proto_space(*end))) {
				*v = d;
				return 1;
			}
		}
		while (*s != '\0' && !ff_proto_space(*s))
			s++;
	}
	return 0;
}

/* Copies at most size - 1 bytes of s, control bytes shown as '?', so
 * nothing a client sent comes back raw. */
static const char *
ff_proto_clean(char *buf, size_t size, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && i + 1 < size; i++) {
		unsigned char ch = s[i];

		buf[i] = ch >= 0x20 && ch != 0x7f ? (char)ch : '?';
	}
	buf[i] = '\0';
	return buf;
}

/* --- formatting ------------------------------------------------------ */

/*
 * decimals >= 0: fixed ("220.3"); -1: at most four decimals with trailing
 * zeros dropped ("86.9984", "140"), the Finder's way.  Never "-0".
 */
static const char *
ff_proto_num(char *buf, size_t size, double v, int decimals)
{
	int d = decimals >= 0 ? decimals : 4;
	char *dot, *e;

	if (fabs(v) < 0.5 * pow(10, -d) || !isfinite(v))
		v = 0;
	snprintf(buf, size, "%.*f", d, v);
	if (decimals < 0 && (dot = strchr(buf, '.')) != NULL) {
		e = buf + strlen(buf);
		while (e > dot + 1 && e[-1] == '0')
			e--;
		if (e == dot + 1)
			e = dot;
		*e = '\0';
	}
	return buf;
}

/* One "T0:24 /0"-style pair. */
static void
ff_proto_temp(struct ff_proto_ctx *c, const char *label, double cur,
    double target, const char *sep)
{
	char a[FF_PROTO_NUM], b[FF_PROTO_NUM];
	int d = c->fi->temp_decimals;

	fprintf(c->out, "%s:%s%s/%s", label, ff_proto_num(a, sizeof(a), cur, d),
	    sep, ff_proto_num(b, sizeof(b), target, d));
}

/* --- commands -------------------------------------------------------- */

static void
ff_proto_m601(struct ff_proto_ctx *c)
{
	double s;

	if (ff_proto_param(c->args, 'S', &s) && s != 1) {
		fputs("Control failed.\r\n", c->out);
		return;
	}
	/* The A3 refuses a second session (ff_model.c says why). */
	if (c->fi->login_taken != NULL && ff_model_sessions(c->m, 0) > 0) {
		fprintf(c->out, "%s\r\n", c->fi->login_taken);
		return;
	}
	if (!c->p->session) {
		c->p->session = 1;
		ff_model_sessions(c->m, 1);
	}
	fprintf(c->out, "%s\r\n", c->fi->login_ok);
}

static void
ff_proto_m602(struct ff_proto_ctx *c)
{
	ff_proto_close(c->p, c->m);
	fputs("Control Release.\r\n", c->out);
}

static void
ff_proto_m115(struct ff_proto_ctx *c)
{
	const struct ff_info *fi = c->fi;
	struct ff_status st;

	ff_model_status(c->m, c->now, &st);
	fprintf(c->out, "Machine Type: %s\r\nMachine Name: %s\r\n"
	    "Firmware: %s\r\nSN: %s\r\nX: %u%sY: %u%sZ: %u\r\n"
	    "Tool Count: %u\r\n", fi->machine_type, ff_model_name(c->m),
	    fi->firmware, ff_model_serial(c->m), fi->dims[0], fi->dims_sep,
	    fi->dims[1], fi->dims_sep, fi->dims[2], st.tool_count);
	if (fi->mac != NULL)
		fprintf(c->out, "Mac Address:%s%s%s", fi->mac_sep, fi->mac,
		    fi->mac_eol);
}

static void
ff_proto_m114(struct ff_proto_ctx *c)
{
	char n[4][FF_PROTO_NUM];
	struct ff_status st;
	int d = c->fi->pos_decimals, i;

	ff_model_status(c->m, c->now, &st);
	for (i = 0; i < 4; i++)
		ff_proto_num(n[i], sizeof(n[i]), st.pos[i], d);
	fprintf(c->out, "X:%s Y:%s Z:%s A:%s B:0\r\n", n[0], n[1], n[2], n[3]);
}

static void
ff_proto_m105(struct ff_proto_ctx *c)
{
	struct ff_status st;

	ff_model_status(c->m, c->now, &st);
	ff_proto_temp(c, "T0", st.nozzle, st.nozzle_target, c->fi->nozzle_sep);
	if (c->fi->t1_pair) {
		fputc(' ', c->out);
		ff_proto_temp(c, "T1", 0, 0, c->fi->nozzle_sep);
	}
	fputc(' ', c->out);
	ff_proto_temp(c, "B", st.bed, st.bed_target, c->fi->bed_sep);
	fputs("\r\n", c->out);
}

static void
ff_proto_m27(struct ff_proto_ctx *c)
{
	struct ff_status st;
	int active;

	ff_model_status(c->m, c->now, &st);
	active = st.job == FF_JOB_PRINTING || st.job == FF_JOB_PAUSED;
	fprintf(c->out, "SD printing byte %llu/%llu",
	    (unsigned long long)st.m27_done, (unsigned long long)st.m27_total);
	if (active && c->fi->layer_sep != NULL)
		fprintf(c->out, "%sLayer: %u/%u\r\n", c->fi->layer_sep,
		    st.layer, st.layers);
	else
		fputs("\r\n", c->out);
}

static void
ff_proto_m119(struct ff_proto_ctx *c)
{
	const struct ff_info *fi = c->fi;
	struct ff_status st;

	ff_model_status(c->m, c->now, &st);
	fprintf(c->out, "Endstop: %s\r\n", fi->endstops);
	if (!fi->m119_modern) {
		/* The Finder's order: naive parsers depend on it. */
		fprintf(c->out, "Status: %s\r\nMachineStatus: %s\r\n"
		    "MoveMode: %s\r\n", fi->status_flags,
		    ff_model_machine_name(st.machine),
		    ff_model_move_name(st.move));
		return;
	}
	fprintf(c->out, "MachineStatus: %s\r\nMoveMode: %s\r\nStatus: %s\r\n"
	    "LED: %d\r\nCurrentFile: %s\r\n",
	    ff_model_machine_name(st.machine), ff_model_move_name(st.move),
	    fi->status_flags, st.led, st.file);
}

static void
ff_proto_m146(struct ff_proto_ctx *c)
{
	double r = 0, g = 0, b = 0;
	int any;

	/* "M146 1" / "M146 0": the A3's LED switch. */
	if (isdigit((unsigned char)c->args[0])) {
		ff_model_set_led(c->m, atoi(c->args) != 0, c->now);
		c->tail = c->fi->led_ok;
		return;
	}
	any = ff_proto_param(c->args, 'r', &r);
	any |= ff_proto_param(c->args, 'g', &g);
	any |= ff_proto_param(c->args, 'b', &b);
	if (any)
		ff_model_set_led(c->m, r > 0 || g > 0 || b > 0, c->now);
	c->tail = c->fi->led_ok;
}

static void
ff_proto_m104(struct ff_proto_ctx *c)
{
	double s;

	if (ff_proto_param(c->args, 'S', &s))
		ff_model_set_target(c->m, FF_HEATER_NOZZLE, s, c->now);
}

static void
ff_proto_m140(struct ff_proto_ctx *c)
{
	double s;

	if (ff_proto_param(c->args, 'S', &s))
		ff_model_set_target(c->m, FF_HEATER_BED, s, c->now);
}

/* The file name in a path: "0:/user/" and "/data/" are the same card. */
static const char *
ff_proto_base(const char *path)
{
	if (strncmp(path, FF_PROTO_USER, strlen(FF_PROTO_USER)) == 0)
		return path + strlen(FF_PROTO_USER);
	if (strncmp(path, FF_PROTO_DATA, strlen(FF_PROTO_DATA)) == 0)
		return path + strlen(FF_PROTO_DATA);
	return path;
}

static void
ff_proto_u32(FILE *out, uint32_t v)
{
	unsigned char b[4];

	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
	fwrite(b, 1, sizeof(b), out);
}

static uint32_t
ff_proto_get32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | b[3];
}

/* A file the A3 lists: it shows G-code only. */
static int
ff_proto_gcode_name(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot != NULL && (strcasecmp(dot, ".g") == 0 ||
	    strcasecmp(dot, ".gx") == 0 || strcasecmp(dot, ".gcode") == 0);
}

/* A3 fw 1.3.7: "info_list.size: N", bare names, no "ok". */
static void
ff_proto_m661_text(struct ff_proto_ctx *c)
{
	const char *name;
	size_t i, n = 0;

	for (i = 0; (name = ff_model_file_name(c->m, i, NULL)) != NULL; i++)
		n += ff_proto_gcode_name(name);
	if (n == 0) {
		fputs("CMD M661 Error.\n", c->out);
		return;
	}
	fprintf(c->out, "CMD M661 Received.\ninfo_list.size: %zu\n", n);
	for (i = 0; (name = ff_model_file_name(c->m, i, NULL)) != NULL; i++)
		if (ff_proto_gcode_name(name))
			fprintf(c->out, "%s\n", name);
}

/* The whole reply: its form depends on the model. */
static void
ff_proto_m661(struct ff_proto_ctx *c)
{
	const char *name;
	size_t i;

	if (c->fi->list_form == FF_LIST_TEXT) {
		ff_proto_m661_text(c);
		return;
	}
	fputs("CMD M661 Received.\r\nok\r\n", c->out);
	ff_proto_u32(c->out, FF_LIST_MAGIC);
	ff_proto_u32(c->out, (uint32_t)ff_model_file_count(c->m));
	for (i = 0; (name = ff_model_file_name(c->m, i, NULL)) != NULL; i++) {
		ff_proto_u32(c->out, FF_ENTRY_MAGIC);
		ff_proto_u32(c->out, (uint32_t)(strlen(FF_PROTO_DATA) +
		    strlen(name)));
		fprintf(c->out, "%s%s", FF_PROTO_DATA, name);
	}
}

/* The whole reply: "ok" then the image, or the A3's framing. */
static void
ff_proto_m662(struct ff_proto_ctx *c)
{
	const char *nl = c->fi->thumb_form == FF_THUMB_A3 ? "\n" : "\r\n";
	const uint8_t *png;
	size_t len;

	fprintf(c->out, "CMD M662 Received.%s", nl);
	if (ff_model_file_find(c->m, ff_proto_base(c->args), NULL) == -1) {
		fprintf(c->out, "Error: File not exists%s", nl);
		if (c->fi->thumb_form != FF_THUMB_A3)
			fputs("ok\r\n", c->out);
		return;
	}
	png = ff_model_thumb_png(&len);
	if (c->fi->thumb_form == FF_THUMB_A3) {
		fprintf(c->out, "ack header length: %zu\n", len);
		ff_proto_u32(c->out, FF_THUMB_MAGIC);
		ff_proto_u32(c->out, (uint32_t)len);
	} else
		fputs("ok\r\n", c->out);
	fwrite(png, 1, len, c->out);
}

static void
ff_proto_m23(struct ff_proto_ctx *c)
{
	char clean[FF_NAME_MAX + 1];
	const char *name = ff_proto_base(c->args);
	uint64_t size;
	int rc;

	if (c->fi->m23_starts)
		rc = ff_model_print_file(c->m, name, c->now);
	else
		rc = ff_model_select(c->m, name, c->now);
	if (rc == 0 && ff_model_file_find(c->m, name, &size) == 0)
		fprintf(c->out, "File opened: %s Size: %llu\r\n"
		    "File selected\r\n", name, (unsigned long long)size);
	else
		fprintf(c->out, "open failed, File: %s\r\n",
		    ff_proto_clean(clean, sizeof(clean), name, strlen(name)));
}

/* M28 <size> <path>: the bytes that follow are the file's. */
static void
ff_proto_m28(struct ff_proto_ctx *c)
{
	struct ff_proto *p = c->p;
	char clean[FF_NAME_MAX + 1];
	unsigned long long size;
	const char *name;
	char *end;

	p->up = FF_UP_NONE;
	if (!isdigit((unsigned char)c->args[0])) {
		fputs("Error: Cannot create file\r\n", c->out);
		return;
	}
	size = strtoull(c->args, &end, 10);
	while (ff_proto_space(*end))
		end++;
	name = ff_proto_base(end);
	if (!ff_model_file_name_ok(name)) {
		log_warnx("M28: refused the name \"%s\"", ff_proto_clean(clean,
		    sizeof(clean), name, strlen(name)));
		fputs("Error: Cannot create file\r\n", c->out);
		return;
	}
	if (size > FF_TCP_UPLOAD_MAX || (ff_model_file_find(c->m, name, NULL) ==
	    -1 && ff_model_file_count(c->m) >= FF_FILES_MAX)) {
		log_warnx("M28: no room for %s (%llu bytes)", name, size);
		fputs("Error: Not enough space\r\n", c->out);
		return;
	}
	snprintf(p->up_name, sizeof(p->up_name), "%s", name);
	p->up_size = size;
	p->up_got = 0;
	p->blk_no = 0;
	p->blk_pos = 0;
	p->tail_len = 0;
	if (size == 0) {
		p->up = FF_UP_DONE;
		p->mode = FF_MODE_SKIP;
	} else {
		p->up = FF_UP_BAD;	/* until every byte is in */
		p->mode = c->fi->upload_framed ? FF_MODE_FRAMED : FF_MODE_RAW;
	}
	fprintf(c->out, "Writing to file: %s%s\r\n", FF_PROTO_USER, name);
}

static void
ff_proto_m29(struct ff_proto_ctx *c)
{
	struct ff_proto *p = c->p;

	if (p->up == FF_UP_DONE) {
		if (ff_model_file_add(c->m, p->up_name, p->up_size) == 0) {
			log_info("M29: received %s (%llu bytes)", p->up_name,
			    (unsigned long long)p->up_size);
			fputs("Done saving file.\r\n", c->out);
		} else
			fputs("Error: Not enough space\r\n", c->out);
	} else if (p->up == FF_UP_BAD) {
		log_warnx("M29: %s: %llu of %llu bytes; not stored",
		    p->up_name, (unsigned long long)p->up_got,
		    (unsigned long long)p->up_size);
		fputs("Error: file size mismatch, file deleted\r\n", c->out);
	}
	p->up = FF_UP_NONE;
	p->mode = FF_MODE_LINE;
}

static void
ff_proto_m610(struct ff_proto_ctx *c)
{
	if (ff_model_set_name(c->m, c->args) == -1) {
		log_warnx("M610: refused a name");
		fputs("Error: invalid name\r\n", c->out);
	}
}

static void
ff_proto_m17(struct ff_proto_ctx *c)
{
	(void)ff_model_set_steppers(c->m, 1, c->now);
}

static void
ff_proto_m18(struct ff_proto_ctx *c)
{
	if (ff_model_set_steppers(c->m, 0, c->now) == -1)
		fputs("printing can not send M18\r\n", c->out);
}

/* M190 S<t> heats, R<t> cools to t: either way t is the target.  The
 * reply does not wait: clients poll M105. */
static void
ff_proto_m190(struct ff_proto_ctx *c)
{
	double s;

	if (ff_proto_param(c->args, 'S', &s) || ff_proto_param(c->args, 'R', &s))
		ff_model_set_target(c->m, FF_HEATER_BED, s, c->now);
}

static void
ff_proto_m405(struct ff_proto_ctx *c)
{
	ff_model_set_runout(c->m, 1);
}

static void
ff_proto_m406(struct ff_proto_ctx *c)
{
	ff_model_set_runout(c->m, 0);
}

static void
ff_proto_m611(struct ff_proto_ctx *c)
{
	double s;

	/* Range first: casting -1 or 1e10 to unsigned is undefined. */
	if (!ff_proto_param(c->args, 'S', &s) || s != floor(s) ||
	    s < 0 || s > 255 || ff_model_set_tools(c->m, (unsigned)s) == -1)
		fputs("Error: invalid tool count\r\n", c->out);
}

static void
ff_proto_m650(struct ff_proto_ctx *c)
{
	fprintf(c->out, "%s\r\n", c->fi->m650);
}

static void
ff_proto_m24(struct ff_proto_ctx *c)
{
	if (ff_model_resume(c->m, c->now) == -1)
		(void)ff_model_start(c->m, c->now);
}

static void
ff_proto_m25(struct ff_proto_ctx *c)
{
	(void)ff_model_pause(c->m, c->now);
}

static void
ff_proto_m26(struct ff_proto_ctx *c)
{
	(void)ff_model_cancel(c->m, c->now);
}

static void
ff_proto_m112(struct ff_proto_ctx *c)
{
	ff_model_estop(c->m, c->now);
	if (c->fi->estop_echo != NULL)
		fprintf(c->out, "%s\r\n", c->fi->estop_echo);
}

/* M106 [S0..255]: the part-cooling fan (S absent: full); M107: off. */
static void
ff_proto_m106(struct ff_proto_ctx *c)
{
	double s = 255;

	(void)ff_proto_param(c->args, 'S', &s);
	/* Clamp while a double: a cast of S1e10 to int is undefined. */
	s = s < 0 ? 0 : s > 255 ? 255 : s;
	ff_model_set_fan(c->m, FF_FAN_COOLING, (int)(s * 100 / 255 + 0.5));
}

static void
ff_proto_m107(struct ff_proto_ctx *c)
{
	ff_model_set_fan(c->m, FF_FAN_COOLING, 0);
}

static void
ff_proto_g28(struct ff_proto_ctx *c)
{
	(void)ff_model_home(c->m, c->now);
}

static void
ff_proto_g90(struct ff_proto_ctx *c)
{
	ff_model_set_relative(c->m, 0);
}

static void
ff_proto_g91(struct ff_proto_ctx *c)
{
	ff_model_set_relative(c->m, 1);
}

static void
ff_proto_g1(struct ff_proto_ctx *c)
{
	static const char axes[4] = { 'X', 'Y', 'Z', 'E' };
	double v[4] = { 0, 0, 0, 0 }, f = 0;
	unsigned mask = 0;
	int i;

	for (i = 0; i < 4; i++)
		if (ff_proto_param(c->args, axes[i], &v[i]))
			mask |= 1U << i;
	if (!ff_proto_param(c->args, 'F', &f))
		f = 0;
	if (mask != 0 || f > 0)
		(void)ff_model_move(c->m, v, mask, f, c->now);
}

static void
ff_proto_nothing(struct ff_proto_ctx *c)
{
	(void)c;
}

/* M653/M654: acknowledged in the model's words, no effect. */
static void
ff_proto_ack(struct ff_proto_ctx *c)
{
	if (c->fi->ack_ok != NULL)
		c->tail = c->fi->ack_ok;
}

/* Flags of a command. */
#define FF_CMD_WHOLE	0x1	/* writes its whole reply, header and tail */
#define FF_CMD_MOVE	0x2	/* a G-code move: silent on some models */

static const struct ff_proto_cmd {
	const char	*code;
	ff_proto_fn	 fn;
	unsigned	 flags;
} ff_proto_cmds[] = {
	{ "M601", ff_proto_m601, 0 },
	{ "M602", ff_proto_m602, 0 },
	{ "M115", ff_proto_m115, 0 },
	{ "M114", ff_proto_m114, 0 },
	{ "M105", ff_proto_m105, 0 },
	{ "M27", ff_proto_m27, 0 },
	{ "M119", ff_proto_m119, 0 },
	{ "M146", ff_proto_m146, 0 },
	{ "M104", ff_proto_m104, 0 },
	{ "M109", ff_proto_m104, 0 },
	{ "M140", ff_proto_m140, 0 },
	{ "M190", ff_proto_m190, 0 },
	{ "M661", ff_proto_m661, FF_CMD_WHOLE },
	{ "M662", ff_proto_m662, FF_CMD_WHOLE },
	{ "M23", ff_proto_m23, 0 },
	{ "M24", ff_proto_m24, 0 },
	{ "M25", ff_proto_m25, 0 },
	{ "M26", ff_proto_m26, 0 },
	{ "M28", ff_proto_m28, 0 },
	{ "M29", ff_proto_m29, 0 },
	{ "M112", ff_proto_m112, 0 },
	{ "M106", ff_proto_m106, 0 },
	{ "M107", ff_proto_m107, 0 },
	{ "M610", ff_proto_m610, 0 },
	{ "M17", ff_proto_m17, 0 },
	{ "M18", ff_proto_m18, 0 },
	{ "M108", ff_proto_nothing, 0 },	/* tool change: one tool */
	{ "M405", ff_proto_m405, 0 },
	{ "M406", ff_proto_m406, 0 },
	{ "M611", ff_proto_m611, 0 },
	{ "M650", ff_proto_m650, 0 },
	{ "M653", ff_proto_ack, 0 },
	{ "M654", ff_proto_ack, 0 },
	{ "M663", ff_proto_nothing, 0 },
	{ "G28", ff_proto_g28, FF_CMD_MOVE },
	{ "G90", ff_proto_g90, FF_CMD_MOVE },
	{ "G91", ff_proto_g91, FF_CMD_MOVE },
	{ "G92", ff_proto_nothing, FF_CMD_MOVE },
	{ "G0", ff_proto_g1, FF_CMD_MOVE },
	{ "G1", ff_proto_g1, FF_CMD_MOVE },
};

static const struct ff_proto_cmd *
ff_proto_lookup(const char *code, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(ff_proto_cmds) / sizeof(ff_proto_cmds[0]); i++)
		if (strlen(ff_proto_cmds[i].code) == len &&
		    strncasecmp(ff_proto_cmds[i].code, code, len) == 0)
			return &ff_proto_cmds[i];
	return NULL;
}

/* The code's length at s: a letter and its digits ("M109" of
 * "M109S200"), else up to the first space. */
static size_t
ff_proto_code_len(const char *s, const char *end)
{
	const char *e = s;

	if (e < end && isalpha((unsigned char)*e) && e + 1 < end &&
	    isdigit((unsigned char)e[1])) {
		e++;
		while (e < end && isdigit((unsigned char)*e))
			e++;
		if (e == end || ff_proto_space(*e) || isalpha((unsigned char)*e))
			return (size_t)(e - s);
		e = s;
	}
	while (e < end && !ff_proto_space(*e))
		e++;
	return (size_t)(e - s);
}

/* Strips p->line[0..p->len) to its command: the code at *code, NUL-ended;
 * 0 for a blank line. */
static size_t
ff_proto_split(struct ff_proto *p, char **code, char **args)
{
	char *s = p->line, *end = p->line + p->len;
	size_t codelen;

	while (end > s && (end[-1] == '\r' || ff_proto_space(end[-1])))
		end--;
	*end = '\0';
	while (s < end && ff_proto_space(*s))
		s++;
	if (s < end && *s == '~')
		s++;
	while (s < end && ff_proto_space(*s))
		s++;
	*code = s;
	if (s == end)
		return 0;
	codelen = ff_proto_code_len(s, end);
	s += codelen;
	while (s < end && ff_proto_space(*s))
		s++;
	*args = s;
	return codelen;
}

/* Answers the command in p->line[0..p->len); 0, or -1 out of memory. */
static int
ff_proto_line(struct ff_proto *p, struct ff_model *m, int64_t now_ms,
    ff_emit_fn emit, void *arg)
{
	const struct ff_proto_cmd *cmd;
	struct ff_proto_ctx c;
	char echo[FF_CODE_ECHO_MAX + 1], *code, *args = NULL;
	char *buf = NULL;
	size_t codelen, i, n = 0;
	int ret = -1, silent;

	if ((codelen = ff_proto_split(p, &code, &args)) == 0)
		return 0;	/* a blank line: nothing to answer */
	metrics_inc(METRICS_FF_COMMANDS);
	if ((cmd = ff_proto_lookup(code, codelen)) != NULL)
		snprintf(echo, sizeof(echo), "%s", cmd->code);
	else {
		for (i = 0; i < codelen && i < FF_CODE_ECHO_MAX; i++) {
			unsigned char ch = code[i];

			echo[i] = ch > 0x20 && ch < 0x7f ? (char)ch : '?';
		}
		echo[i] = '\0';
		log_debug("unknown command %s", echo);
	}

	memset(&c, 0, sizeof(c));
	if ((c.out = open_memstream(&buf, &n)) == NULL)
		goto done;
	c.p = p;
	c.m = m;
	c.fi = ff_model_info(m);
	c.args = args;
	c.tail = "ok\r\n";
	c.echo = echo;
	c.now = now_ms;
	silent = cmd != NULL && (cmd->flags & FF_CMD_MOVE) &&
	    c.fi->silent_moves;
	if (cmd == NULL || !(cmd->flags & FF_CMD_WHOLE))
		fprintf(c.out, "CMD %s Received.\r\n", echo);
	if (cmd != NULL)
		cmd->fn(&c);
	if (cmd == NULL || !(cmd->flags & FF_CMD_WHOLE))
		fputs(c.tail, c.out);
	if (ferror(c.out)) {
		fclose(c.out);
		goto done;
	}
	if (fclose(c.out) != 0)
		goto done;
	if (!silent)
		emit(arg, buf, n);
	ret = 0;
 done:
	free(buf);
	if (ret == -1)
		log_warnx("no memory for a reply");
	return ret;
}

/* A failed upload: the rest is skipped until M29. */
static void
ff_proto_up_fail(struct ff_proto *p, const char *why)
{
	log_warnx("M28 %s: %s after %llu of %llu bytes", p->up_name, why,
	    (unsigned long long)p->up_got, (unsigned long long)p->up_size);
	p->up = FF_UP_BAD;
	p->mode = FF_MODE_SKIP;
	p->len = 0;
}

/* Raw data: bytes counted up to up_size.  A "~M29" line inside is the
 * client ending early (G-code never starts a line with '~').  Returns
 * the bytes taken. */
static size_t
ff_proto_raw(struct ff_proto *p, struct ff_model *m, const unsigned char *b,
    size_t len, int64_t now_ms, ff_emit_fn emit, void *arg, int *err)
{
	size_t i;

	for (i = 0; i < len && p->up_got < p->up_size; i++) {
		p->up_got++;
		if (b[i] != '\n') {
			if (p->tail_len < sizeof(p->tail))
				p->tail[p->tail_len++] = (char)b[i];
			continue;
		}
		if ((p->tail_len == 4 || (p->tail_len == 5 &&
		    p->tail[4] == '\r')) && strncasecmp(p->tail, "~M29", 4) == 0) {
			ff_proto_up_fail(p, "M29 before the end");
			memcpy(p->line, "~M29", 4);
			p->len = 4;
			*err = ff_proto_line(p, m, now_ms, emit, arg);
			p->len = 0;
			return i + 1;
		}
		p->tail_len = 0;
	}
	if (p->up_got == p->up_size) {
		p->up = FF_UP_DONE;
		p->mode = FF_MODE_SKIP;
	}
	return i;
}

static uint32_t
ff_proto_crc32(uint32_t crc, const unsigned char *b, size_t len)
{
	size_t i;
	int k;

	crc = ~crc;
	for (i = 0; i < len; i++) {
		crc ^= b[i];
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320U & (0U - (crc & 1)));
	}
	return ~crc;
}

static void
ff_proto_block_reply(struct ff_proto *p, const char *what, ff_emit_fn emit,
    void *arg)
{
	char line[64];
	int n;

	n = snprintf(line, sizeof(line), "N%04u %s.\r\n", p->blk_no, what);
	emit(arg, line, (size_t)n);
}

/* A block's header is in: 0 if it is the one expected. */
static int
ff_proto_block_head(struct ff_proto *p)
{
	p->blk_len = ff_proto_get32(p->head + 8);
	p->blk_crc = ff_proto_get32(p->head + 12);
	p->crc = 0;
	return ff_proto_get32(p->head) == FF_BLOCK_MAGIC &&
	    ff_proto_get32(p->head + 4) == p->blk_no && p->blk_len > 0 &&
	    p->blk_len <= FF_BLOCK_DATA &&
	    p->blk_len <= p->up_size - p->up_got ? 0 : -1;
}

/* Framed data: 4112-byte blocks, each acknowledged.  Returns the bytes
 * taken; a byte that cannot start a block ends the data (short). */
static size_t
ff_proto_framed(struct ff_proto *p, const unsigned char *b, size_t len,
    ff_emit_fn emit, void *arg)
{
	size_t i = 0, k, n;

	while (i < len && p->mode == FF_MODE_FRAMED) {
		if (p->blk_pos < FF_BLOCK_HEAD) {
			if (p->blk_pos == 0 && b[i] != 0x5a) {
				log_warnx("M28 %s: short: %llu of %llu bytes",
				    p->up_name, (unsigned long long)p->up_got,
				    (unsigned long long)p->up_size);
				p->mode = FF_MODE_LINE;	/* commands again */
				return i;
			}
			p->head[p->blk_pos++] = b[i++];
			if (p->blk_pos == FF_BLOCK_HEAD &&
			    ff_proto_block_head(p) == -1) {
				ff_proto_block_reply(p, "error", emit, arg);
				ff_proto_up_fail(p, "bad block header");
			}
			continue;
		}
		k = p->blk_pos - FF_BLOCK_HEAD;	/* payload bytes so far */
		n = FF_BLOCK_HEAD + FF_BLOCK_DATA - p->blk_pos;
		if (n > len - i)
			n = len - i;
		if (k < p->blk_len)
			p->crc = ff_proto_crc32(p->crc, b + i, n < p->blk_len -
			    k ? n : p->blk_len - k);
		p->blk_pos += n;
		i += n;
		if (p->blk_pos < FF_BLOCK_HEAD + FF_BLOCK_DATA)
			continue;
		if (p->crc != p->blk_crc) {
			ff_proto_block_reply(p, "error", emit, arg);
			ff_proto_up_fail(p, "CRC mismatch");
			break;
		}
		ff_proto_block_reply(p, "ok", emit, arg);
		p->up_got += p->blk_len;
		p->blk_no++;
		p->blk_pos = 0;
		if (p->up_got == p->up_size) {
			p->up = FF_UP_DONE;
			p->mode = FF_MODE_SKIP;
		}
	}
	return i;
}

/* After an upload's data: only M29 is a command; anything else means the
 * upload was longer than announced.  A failed upload's binary rest may
 * run into the M29 line: "~M29" ending a line counts. */
static int
ff_proto_skip_line(struct ff_proto *p, struct ff_model *m, int64_t now_ms,
    ff_emit_fn emit, void *arg)
{
	const char *l = p->line;
	size_t n = p->len, i = 0;
	int m29;

	/* The line may hold NULs: lengths, not strings. */
	while (n > 0 && (l[n - 1] == '\r' || ff_proto_space(l[n - 1])))
		n--;
	while (i < n && ff_proto_space(l[i]))
		i++;
	m29 = (n - i == 3 && strncasecmp(l + i, "M29", 3) == 0) ||
	    (n - i >= 4 && strncasecmp(l + n - 4, "~M29", 4) == 0 &&
	    (n - i == 4 || p->up == FF_UP_BAD));
	if (m29) {
		memcpy(p->line, "M29", 3);
		p->len = 3;
		return ff_proto_line(p, m, now_ms, emit, arg);
	}
	if (i < n && p->up == FF_UP_DONE)
		ff_proto_up_fail(p, "data past the size");
	return 0;
}

int
ff_proto_feed(struct ff_proto *p, struct ff_model *m, const void *in,
    size_t len, int64_t now_ms, ff_emit_fn emit, void *arg)
{
	const unsigned char *b = in;
	size_t i = 0;
	int err = 0, rc;

	while (i < len) {
		if (p->mode == FF_MODE_RAW) {
			i += ff_proto_raw(p, m, b + i, len - i, now_ms, emit,
			    arg, &err);
			if (err == -1)
				return -1;
			continue;
		}
		if (p->mode == FF_MODE_FRAMED) {
			i += ff_proto_framed(p, b + i, len - i, emit, arg);
			continue;
		}
		if (b[i] == '\n') {
			i++;
			rc = p->mode == FF_MODE_SKIP ?
			    ff_proto_skip_line(p, m, now_ms, emit, arg) :
			    ff_proto_line(p, m, now_ms, emit, arg);
			p->len = 0;
			if (rc == -1)
				return -1;
			continue;
		}
		if (p->len >= FF_LINE_MAX) {
			if (p->mode == FF_MODE_SKIP) {
				i++;	/* a failed upload's data: no limit */
				continue;
			}
			log_warnx("dropping a client: a line past %d bytes",
			    FF_LINE_MAX);
			p->len = 0;
			return -1;
		}
		p->line[p->len++] = (char)b[i++];
	}
	return 0;
}
