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
 * - M601 fails ("Control failed.") only for an explicit S other than 1.
 * - M661 lists one "0:/user/<name>" line per file, the path M23 takes.
 * - M662 (thumbnail) answers as an empty success: we keep no images.
 * - M23 answers "File opened: <name> Size: <bytes>" and "File selected",
 *   or "open failed, File: <name>" when unknown or a job is on.
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

#define FF_PROTO_USER	"0:/user/"	/* the card's prefix in M23, M661 */
#define FF_PROTO_NUM	48		/* bytes of a formatted number */

struct ff_proto_ctx {
	FILE			*out;
	struct ff_model		*m;
	const struct ff_info	*fi;
	const char		*args;	/* after the code, NUL-terminated */
	const char		*tail;	/* the reply's "ok" line */
	int64_t			 now;	/* ms */
};

typedef void (*ff_proto_fn)(struct ff_proto_ctx *);

void
ff_proto_init(struct ff_proto *p)
{
	p->len = 0;
	p->line[0] = '\0';
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

	if (ff_proto_param(c->args, 'S', &s) && s != 1)
		fputs("Control failed.\r\n", c->out);
	else
		fprintf(c->out, "%s\r\n", c->fi->login_ok);
}

static void
ff_proto_m602(struct ff_proto_ctx *c)
{
	fputs("Control Release.\r\n", c->out);
}

static void
ff_proto_m115(struct ff_proto_ctx *c)
{
	const struct ff_info *fi = c->fi;

	fprintf(c->out, "Machine Type: %s\r\nMachine Name: %s\r\n"
	    "Firmware: %s\r\nSN: %s\r\nX: %u%sY: %u%sZ: %u\r\n"
	    "Tool Count: %u\r\n", fi->machine_type, ff_model_name(c->m),
	    fi->firmware, ff_model_serial(c->m), fi->dims[0], fi->dims_sep,
	    fi->dims[1], fi->dims_sep, fi->dims[2], fi->tool_count);
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

static void
ff_proto_m661(struct ff_proto_ctx *c)
{
	const char *name;
	size_t i;

	for (i = 0; (name = ff_model_file_name(c->m, i, NULL)) != NULL; i++)
		fprintf(c->out, "%s%s\r\n", FF_PROTO_USER, name);
}

static void
ff_proto_m23(struct ff_proto_ctx *c)
{
	char clean[FF_NAME_MAX + 1];
	const char *name = c->args;
	uint64_t size;

	if (strncmp(name, FF_PROTO_USER, strlen(FF_PROTO_USER)) == 0)
		name += strlen(FF_PROTO_USER);
	if (ff_model_select(c->m, name, c->now) == 0 &&
	    ff_model_file_find(c->m, name, &size) == 0)
		fprintf(c->out, "File opened: %s Size: %llu\r\n"
		    "File selected\r\n", name, (unsigned long long)size);
	else
		fprintf(c->out, "open failed, File: %s\r\n",
		    ff_proto_clean(clean, sizeof(clean), name, strlen(name)));
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

static const struct ff_proto_cmd {
	const char	*code;
	ff_proto_fn	 fn;
} ff_proto_cmds[] = {
	{ "M601", ff_proto_m601 },
	{ "M602", ff_proto_m602 },
	{ "M115", ff_proto_m115 },
	{ "M114", ff_proto_m114 },
	{ "M105", ff_proto_m105 },
	{ "M27", ff_proto_m27 },
	{ "M119", ff_proto_m119 },
	{ "M146", ff_proto_m146 },
	{ "M104", ff_proto_m104 },
	{ "M140", ff_proto_m140 },
	{ "M661", ff_proto_m661 },
	{ "M662", ff_proto_nothing },
	{ "M23", ff_proto_m23 },
	{ "M24", ff_proto_m24 },
	{ "M25", ff_proto_m25 },
	{ "M26", ff_proto_m26 },
	{ "M112", ff_proto_m112 },
	{ "G28", ff_proto_g28 },
	{ "G90", ff_proto_g90 },
	{ "G91", ff_proto_g91 },
	{ "G0", ff_proto_g1 },
	{ "G1", ff_proto_g1 },
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

/* Answers the command in p->line[0..p->len); 0, or -1 out of memory. */
static int
ff_proto_line(struct ff_proto *p, struct ff_model *m, int64_t now_ms,
    ff_emit_fn emit, void *arg)
{
	const struct ff_proto_cmd *cmd;
	struct ff_proto_ctx c;
	char echo[FF_CODE_ECHO_MAX + 1], *s = p->line, *end = p->line + p->len;
	char *buf = NULL;
	const char *code;
	size_t codelen, i, n = 0;
	int ret = -1;

	while (end > s && (end[-1] == '\r' || ff_proto_space(end[-1])))
		end--;
	*end = '\0';
	while (s < end && ff_proto_space(*s))
		s++;
	if (s < end && *s == '~')
		s++;
	while (s < end && ff_proto_space(*s))
		s++;
	if (s == end)
		return 0;	/* a blank line: nothing to answer */
	code = s;
	while (s < end && !ff_proto_space(*s))
		s++;
	codelen = (size_t)(s - code);
	while (s < end && ff_proto_space(*s))
		s++;

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
	c.m = m;
	c.fi = ff_model_info(m);
	c.args = s;
	c.tail = "ok\r\n";
	c.now = now_ms;
	fprintf(c.out, "CMD %s Received.\r\n", echo);
	if (cmd != NULL)
		cmd->fn(&c);
	fputs(c.tail, c.out);
	if (ferror(c.out)) {
		fclose(c.out);
		goto done;
	}
	if (fclose(c.out) != 0)
		goto done;
	emit(arg, buf, n);
	ret = 0;
 done:
	free(buf);
	if (ret == -1)
		log_warnx("no memory for a reply");
	return ret;
}

int
ff_proto_feed(struct ff_proto *p, struct ff_model *m, const void *in,
    size_t len, int64_t now_ms, ff_emit_fn emit, void *arg)
{
	const unsigned char *b = in;
	size_t i;

	for (i = 0; i < len; i++) {
		if (b[i] == '\n') {
			if (ff_proto_line(p, m, now_ms, emit, arg) == -1) {
				p->len = 0;
				return -1;
			}
			p->len = 0;
			continue;
		}
		if (p->len >= FF_LINE_MAX) {
			log_warnx("dropping a client: a line past %d bytes",
			    FF_LINE_MAX);
			p->len = 0;
			return -1;
		}
		p->line[p->len++] = (char)b[i];
	}
	return 0;
}
