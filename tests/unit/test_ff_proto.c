/*
 * Unit tests for ff_proto.c: the FlashForge TCP replies byte for byte (the
 * Finder captures of FLASHFORGE.md, the other models' differences), line
 * assembly (split, coalesced, "\n" or "\r\n", with or without '~'),
 * overlong lines and binary junk, and the printer state behind the replies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ff_model.h"
#include "ff_proto.h"

#define CAP_MAX		65536

struct capture {
	char	 buf[CAP_MAX];
	size_t	 len;
	int	 calls;
};

static void
cap_emit(void *arg, const void *buf, size_t len)
{
	struct capture *c = arg;

	assert_true(c->len + len <= sizeof(c->buf));
	memcpy(c->buf + c->len, buf, len);
	c->len += len;
	c->calls++;
}

static void
cap_reset(struct capture *c)
{
	c->len = 0;
	c->calls = 0;
}

/* "\r\n" -> "\\r\\n" for failure messages. */
static const char *
esc(const char *s, size_t n)
{
	static char out[4][8192];
	static int k;
	char *o = out[k++ % 4];
	size_t i, j = 0;

	for (i = 0; i < n && j + 5 < sizeof(out[0]); i++) {
		unsigned char ch = s[i];

		if (ch == '\r')
			j += snprintf(o + j, 8192 - j, "\\r");
		else if (ch == '\n')
			j += snprintf(o + j, 8192 - j, "\\n");
		else if (ch < 0x20 || ch >= 0x7f)
			j += snprintf(o + j, 8192 - j, "\\x%02x", ch);
		else
			o[j++] = (char)ch;
	}
	o[j] = '\0';
	return o;
}

static void
expect_bytes(const char *what, const struct capture *c, const char *want)
{
	size_t n = strlen(want);

	if (c->len != n || memcmp(c->buf, want, n) != 0)
		fail_msg("%s:\n got  \"%s\"\n want \"%s\"", what,
		    esc(c->buf, c->len), esc(want, n));
}

static void
expect_n(const char *what, const struct capture *c, const char *want,
    size_t n)
{
	if (c->len != n || memcmp(c->buf, want, n) != 0)
		fail_msg("%s:\n got  \"%s\"\n want \"%s\"", what,
		    esc(c->buf, c->len), esc(want, n));
}

static struct ff_model *
new_model(enum ff_kind kind, const char *name)
{
	struct ff_params p = {
		.kind = kind,
		.name = name,
		.serial = "62B08883",
		.check_code = "abc123",
		.ip = "192.168.1.50",
	};
	struct ff_model *m = ff_model_new(&p, 0);

	assert_non_null(m);
	return m;
}

/* Feeds one string, expects exactly want back. */
static void
exchange(struct ff_proto *p, struct ff_model *m, int64_t t, const char *in,
    const char *want)
{
	struct capture *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	assert_int_equal(ff_proto_feed(p, m, in, strlen(in), t, cap_emit, c),
	    0);
	expect_bytes(esc(in, strlen(in)), c, want);
	free(c);
}

/* --- the table ------------------------------------------------------- */

struct step {
	int64_t		 t;	/* ms */
	const char	*in;
	const char	*want;	/* NULL: any reply; "": no reply at all */
};

/* The thumbnail every file has (ff_model.c), as a C string. */
#define PNG	"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x04" \
    "\x00\x00\x00\x04\x08\x02\x00\x00\x00&\x93\x09)\x00\x00\x00" \
    "\x0eIDATx\xda" "ch@\x02\x0c\xc4q\x00pR\x18\x01\x9e\xae\xbeo" \
    "\x00\x00\x00\x00IEND\xae" "B`\x82"
#define PNG_LEN	71

#define STEPS_MAX	8

static const struct reply_case {
	const char	*name;
	enum ff_kind	 kind;
	const char	*file;	/* added before the steps, if not NULL */
	uint64_t	 size;	/* bytes */
	struct step	 steps[STEPS_MAX];
} reply_cases[] = {
	/* The Finder captures, byte for byte, on a fresh model. */
	{ "finder M601 S1", FF_FINDER, NULL, 0, {
	    { 0, "~M601 S1\r\n",
	      "CMD M601 Received.\r\nControl Success.\r\nok\r\n" } } },
	{ "finder M115", FF_FINDER, NULL, 0, {
	    { 0, "~M115\r\n",
	      "CMD M115 Received.\r\nMachine Type: Flashforge Finder\r\n"
	      "Machine Name: My Finder\r\nFirmware: V1.5 20160804\r\n"
	      "SN: 62B08883\r\nX: 140  Y: 140  Z: 140\r\nTool Count: 1\r\n"
	      "ok\r\n" } } },
	{ "finder M114", FF_FINDER, NULL, 0, {
	    { 0, "~M114\r\n",
	      "CMD M114 Received.\r\nX:86.9984 Y:70.5016 Z:140 A:0 B:0\r\n"
	      "ok\r\n" } } },
	{ "finder M105", FF_FINDER, NULL, 0, {
	    { 0, "~M105\r\n",
	      "CMD M105 Received.\r\nT0:24 /0 B:0 /0\r\nok\r\n" } } },
	{ "finder M27", FF_FINDER, NULL, 0, {
	    { 0, "~M27\r\n",
	      "CMD M27 Received.\r\nSD printing byte 5525653/5525652\r\n"
	      "ok\r\n" } } },
	{ "finder M119", FF_FINDER, NULL, 0, {
	    { 0, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 1 Y-max: 0 Z-max: 1\r\n"
	      "Status: S:1 L:0 J:0 F:1\r\nMachineStatus: READY\r\n"
	      "MoveMode: READY\r\nok\r\n" } } },
	{ "finder M602", FF_FINDER, NULL, 0, {
	    { 0, "~M602\r\n",
	      "CMD M602 Received.\r\nControl Release.\r\nok\r\n" } } },
	{ "finder M146", FF_FINDER, NULL, 0, {
	    { 0, "~M146 r255 g255 b255 F0\r\n",
	      "CMD M146 Received.\r\nok\n" } } },
	{ "finder refused login", FF_FINDER, NULL, 0, {
	    { 0, "~M601 S0\r\n",
	      "CMD M601 Received.\r\nControl failed.\r\nok\r\n" } } },
	{ "unknown command", FF_FINDER, NULL, 0, {
	    { 0, "~M9999 X1\r\n", "CMD M9999 Received.\r\nok\r\n" } } },
	{ "unknown G-code", FF_ADVENTURER5M_PRO, NULL, 0, {
	    { 0, "~G92 X0\r\n", "CMD G92 Received.\r\nok\r\n" } } },
	{ "M662 of a missing file", FF_ADVENTURER4, NULL, 0, {
	    { 0, "~M662 /data/nope.gx\r\n",
	      "CMD M662 Received.\r\nError: File not exists\r\nok\r\n" } } },

	/* The Adventurer 3 (3C login text). */
	{ "adventurer3 M601", FF_ADVENTURER3, NULL, 0, {
	    { 0, "~M601 S1\r\n",
	      "CMD M601 Received.\r\nControl Success V2.1.\r\nok\r\n" } } },
	{ "adventurer3 M115", FF_ADVENTURER3, NULL, 0, {
	    { 0, "~M115\r\n",
	      "CMD M115 Received.\r\nMachine Type: Flashforge Adventurer 3\r\n"
	      "Machine Name: My Finder\r\nFirmware: v1.3.7\r\n"
	      "SN: 62B08883\r\nX: 150 Y: 150 Z: 150\r\nTool Count: 1\r\n"
	      "Mac Address: 88:A9:A7:90:2A:11\n\r\nok\r\n" } } },
	{ "adventurer3 M105", FF_ADVENTURER3, NULL, 0, {
	    { 0, "~M105\r\n",
	      "CMD M105 Received.\r\nT0:27 /0 B:20/0\r\nok\r\n" } } },
	{ "adventurer3 M27", FF_ADVENTURER3, NULL, 0, {
	    { 0, "~M27\r\n",
	      "CMD M27 Received.\r\nSD printing byte 0/100\r\nok\r\n" } } },

	/* The Adventurer 4: Mac line, heating, printing with layers. */
	{ "adventurer4 M115", FF_ADVENTURER4, NULL, 0, {
	    { 0, "~M115\r\n",
	      "CMD M115 Received.\r\nMachine Type: Flashforge Adventurer 4\r\n"
	      "Machine Name: My Finder\r\nFirmware: v2.1.4\r\n"
	      "SN: 62B08883\r\nX: 220 Y: 200 Z: 250\r\nTool Count: 1\r\n"
	      "Mac Address:88:A9:A7:93:86:F8\n \r\nok\r\n" } } },
	/* 41 s of nozzle, 53 s of bed: the capture's 198/210 48/64. */
	{ "adventurer4 M105 heating", FF_ADVENTURER4, NULL, 0, {
	    { 0, "~M140 S64\r\n", "CMD M140 Received.\r\nok\r\n" },
	    { 12000, "~M104 S210\r\n", "CMD M104 Received.\r\nok\r\n" },
	    { 53000, "~M105\r\n",
	      "CMD M105 Received.\r\nT0:198/210 B:48/64\r\nok\r\n" } } },
	/* 4190000 bytes: 419 layers, 2095 s; 11% at 230.45 s. */
	{ "adventurer4 printing", FF_ADVENTURER4, "x.gx", 4190000, {
	    { 0, "~M23 0:/user/x.gx\r\n",
	      "CMD M23 Received.\r\nFile opened: x.gx Size: 4190000\r\n"
	      "File selected\r\nok\r\n" },
	    { 0, "~M24\r\n", "CMD M24 Received.\r\nok\r\n" },
	    { 230450, "~M27\r\n",
	      "CMD M27 Received.\r\nSD printing byte 11/100\r\n"
	      "Layer: 47/419\r\nok\r\n" },
	    { 230450, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 0 Y-max: 0 Z-min: 0\r\n"
	      "MachineStatus: BUILDING_FROM_SD\r\nMoveMode: MOVING\r\n"
	      "Status: S:1 L:0 J:0 F:0\r\nLED: 1\r\nCurrentFile: x.gx\r\n"
	      "ok\r\n" } } },

	/* The 5M Pro: decimals, T1, centred axes, "\nLayer". */
	{ "5m pro M115", FF_ADVENTURER5M_PRO, NULL, 0, {
	    { 0, "~M115\r\n",
	      "CMD M115 Received.\r\n"
	      "Machine Type: Flashforge Adventurer 5M Pro\r\n"
	      "Machine Name: My Finder\r\nFirmware: v2.7.6\r\n"
	      "SN: 62B08883\r\nX: 220 Y: 220 Z: 220\r\nTool Count: 1\r\n"
	      "Mac Address:88:A9:A7:9C:42:07\n \r\nok\r\n" } } },
	{ "5m pro M114 after G1", FF_ADVENTURER5M_PRO, NULL, 0, {
	    { 0, "~G90\r\n", "CMD G90 Received.\r\nok\r\n" },
	    { 0, "~G1 X-8.262 Y-33.980 Z28.772 E18631.348 F6000\r\n",
	      "CMD G1 Received.\r\nok\r\n" },
	    { 0, "~M114\r\n",
	      "CMD M114 Received.\r\n"
	      "X:-8.262 Y:-33.980 Z:28.772 A:18631.348 B:0\r\nok\r\n" } } },
	{ "5m pro M105 settled", FF_ADVENTURER5M_PRO, NULL, 0, {
	    { 0, "~M104 S220\r\n", "CMD M104 Received.\r\nok\r\n" },
	    { 0, "~M140 S50\r\n", "CMD M140 Received.\r\nok\r\n" },
	    { 0, "~M105\r\n",
	      "CMD M105 Received.\r\nT0:25.0/220.0 T1:0.0/0.0 B:25.0/50.0\r\n"
	      "ok\r\n" },
	    { 3600000, "~M105\r\n",
	      "CMD M105 Received.\r\nT0:220.0/220.0 T1:0.0/0.0 B:50.0/50.0\r\n"
	      "ok\r\n" } } },
	/* 5230000 bytes: 523 layers, 2615 s; 18% at 470.7 s. */
	{ "5m pro printing", FF_ADVENTURER5M_PRO, "x.gx", 5230000, {
	    { 0, "~M23 0:/user/x.gx\r\n", NULL },
	    { 0, "~M24\r\n", "CMD M24 Received.\r\nok\r\n" },
	    { 470700, "~M27\r\n",
	      "CMD M27 Received.\r\nSD printing byte 18/100\n"
	      "Layer: 95/523\r\nok\r\n" },
	    { 470700, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 110 Y-max: 110 "
	      "Z-min: 0\r\nMachineStatus: BUILDING_FROM_SD\r\n"
	      "MoveMode: MOVING\r\nStatus: S:1 L:0 J:0 F:0\r\nLED: 1\r\n"
	      "CurrentFile: x.gx\r\nok\r\n" } } },
	{ "5m idle M119", FF_ADVENTURER5M, NULL, 0, {
	    { 0, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 110 Y-max: 110 "
	      "Z-min: 0\r\nMachineStatus: READY\r\nMoveMode: READY\r\n"
	      "Status: S:1 L:0 J:0 F:0\r\nLED: 1\r\nCurrentFile: \r\n"
	      "ok\r\n" } } },
	{ "5m M27 idle has no Layer line", FF_ADVENTURER5M, NULL, 0, {
	    { 0, "~M27\r\n",
	      "CMD M27 Received.\r\nSD printing byte 0/100\r\nok\r\n" } } },
	{ "5m LEDs off and on", FF_ADVENTURER5M, NULL, 0, {
	    { 0, "~M146 r0 g0 b0 F0\r\n", "CMD M146 Received.\r\nok\n" },
	    { 0, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 110 Y-max: 110 "
	      "Z-min: 0\r\nMachineStatus: READY\r\nMoveMode: READY\r\n"
	      "Status: S:1 L:0 J:0 F:0\r\nLED: 0\r\nCurrentFile: \r\n"
	      "ok\r\n" },
	    { 0, "~M146 r0 g0 b255 F0\r\n", "CMD M146 Received.\r\nok\n" },
	    { 0, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 110 Y-max: 110 "
	      "Z-min: 0\r\nMachineStatus: READY\r\nMoveMode: READY\r\n"
	      "Status: S:1 L:0 J:0 F:0\r\nLED: 1\r\nCurrentFile: \r\n"
	      "ok\r\n" } } },

	/* The Finder's print lifecycle over TCP. */
	{ "finder print, pause, resume, cancel", FF_FINDER, NULL, 0, {
	    { 0, "~M23 0:/user/20mm_cube.g\r\n",
	      "CMD M23 Received.\r\nFile opened: 20mm_cube.g Size: 5525652\r\n"
	      "File selected\r\nok\r\n" },
	    { 0, "~M24\r\n", "CMD M24 Received.\r\nok\r\n" },
	    { 1000, "~M27\r\n",
	      "CMD M27 Received.\r\nSD printing byte 2000/5525652\r\nok\r\n" },
	    { 1000, "~M25\r\n", "CMD M25 Received.\r\nok\r\n" },
	    { 9000, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 1 Y-max: 0 Z-max: 1\r\n"
	      "Status: S:1 L:0 J:0 F:1\r\nMachineStatus: PAUSED\r\n"
	      "MoveMode: PAUSED\r\nok\r\n" },
	    { 9000, "~M24\r\n", "CMD M24 Received.\r\nok\r\n" },
	    { 10000, "~M26\r\n", "CMD M26 Received.\r\nok\r\n" },
	    { 10000, "~M27\r\n",
	      "CMD M27 Received.\r\nSD printing byte 4000/5525652\r\nok\r\n" } } },
	{ "M23 of an unknown file", FF_FINDER, NULL, 0, {
	    { 0, "~M23 0:/user/nope.g\r\n",
	      "CMD M23 Received.\r\nopen failed, File: nope.g\r\nok\r\n" },
	    { 0, "~M24\r\n", "CMD M24 Received.\r\nok\r\n" },
	    { 0, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 1 Y-max: 0 Z-max: 1\r\n"
	      "Status: S:1 L:0 J:0 F:1\r\nMachineStatus: READY\r\n"
	      "MoveMode: READY\r\nok\r\n" } } },
	{ "A3 M661 text, G-code only", FF_ADVENTURER3, "notes.txt", 10, {
	    { 0, "~M661\r\n",
	      "CMD M661 Received.\ninfo_list.size: 1\n20mm_cube.gx\n" } } },

	/* Starting: M23 alone on the Finder/A4/5M, M23 + M24 on the A3. */
	{ "finder M23 alone starts", FF_FINDER, NULL, 0, {
	    { 0, "~M23 0:/user/20mm_cube.g\r\n",
	      "CMD M23 Received.\r\nFile opened: 20mm_cube.g Size: 5525652"
	      "\r\nFile selected\r\nok\r\n" },
	    { 0, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 1 Y-max: 0 Z-max: 1\r\n"
	      "Status: S:1 L:0 J:0 F:1\r\nMachineStatus: BUILDING_FROM_SD\r\n"
	      "MoveMode: MOVING\r\nok\r\n" } } },
	{ "5M M23 of a /data/ name starts", FF_ADVENTURER5M, NULL, 0, {
	    { 0, "~M23 /data/20mm_cube.gcode\r\n", NULL },
	    { 0, "~M27\r\n",
	      "CMD M27 Received.\r\nSD printing byte 0/100\nLayer: 1/104\r\n"
	      "ok\r\n" } } },
	{ "A3 M23 /data/ selects, M24 starts", FF_ADVENTURER3, NULL, 0, {
	    { 0, "~M23 /data/20mm_cube.gx\r\n",
	      "CMD M23 Received.\r\nFile opened: 20mm_cube.gx Size: 1048576"
	      "\r\nFile selected\r\nok\r\n" },
	    { 0, "~M27\r\n",
	      "CMD M27 Received.\r\nSD printing byte 0/100\r\nok\r\n" },
	    { 0, "~M24\r\n", NULL },
	    { 10000, "~M27\r\n",
	      "CMD M27 Received.\r\nSD printing byte 1/100\r\nok\r\n" } } },

	/* The Adventurer 3: silent moves, LED switch, rename. */
	{ "A3 G-code moves are silent", FF_ADVENTURER3, NULL, 0, {
	    { 0, "~G28\r\n", "" },
	    { 10000, "~G90\r\n", "" },
	    { 10000, "~G1 X10 Y20 Z5 F6000\r\n", "" },
	    { 10000, "~G91\r\n", "" },
	    { 10000, "~G92 X0\r\n", "" },
	    { 10000, "~M114\r\n",
	      "CMD M114 Received.\r\nX:10 Y:20 Z:5 A:0 B:0\r\nok\r\n" } } },
	{ "A3 M146 0 and 1", FF_ADVENTURER3, NULL, 0, {
	    { 0, "~M146 0\r\n", "CMD M146 Received.\r\nok\n" },
	    { 0, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 0 Y-max: 0 Z-min: 0\r\n"
	      "MachineStatus: READY\r\nMoveMode: READY\r\n"
	      "Status: S:1 L:0 J:0 F:0\r\nLED: 0\r\nCurrentFile: \r\n"
	      "ok\r\n" },
	    { 0, "~M146 1\r\n", "CMD M146 Received.\r\nok\n" },
	    { 0, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 0 Y-max: 0 Z-min: 0\r\n"
	      "MachineStatus: READY\r\nMoveMode: READY\r\n"
	      "Status: S:1 L:0 J:0 F:0\r\nLED: 1\r\nCurrentFile: \r\n"
	      "ok\r\n" } } },
	{ "A3 M610 renames", FF_ADVENTURER3, NULL, 0, {
	    { 0, "~M610 Workshop A3\r\n", "CMD M610 Received.\r\nok\r\n" },
	    { 0, "~M115\r\n",
	      "CMD M115 Received.\r\nMachine Type: Flashforge Adventurer 3\r\n"
	      "Machine Name: Workshop A3\r\nFirmware: v1.3.7\r\n"
	      "SN: 62B08883\r\nX: 150 Y: 150 Z: 150\r\nTool Count: 1\r\n"
	      "Mac Address: 88:A9:A7:90:2A:11\n\r\nok\r\n" } } },

	/* The other commands clients send. */
	{ "waits without a space", FF_ADVENTURER4, NULL, 0, {
	    { 0, "~M109S200\r\n", "CMD M109 Received.\r\nok\r\n" },
	    { 0, "~M190S60\r\n", "CMD M190 Received.\r\nok\r\n" },
	    { 0, "~M105\r\n",
	      "CMD M105 Received.\r\nT0:25/200 B:25/60\r\nok\r\n" },
	    { 0, "~M190R40\r\n", "CMD M190 Received.\r\nok\r\n" },
	    { 0, "~M105\r\n",
	      "CMD M105 Received.\r\nT0:25/200 B:25/40\r\nok\r\n" } } },
	{ "steppers, runout, tools, M650", FF_FINDER, NULL, 0, {
	    { 0, "~M17\r\n", "CMD M17 Received.\r\nok\r\n" },
	    { 0, "~M18\r\n", "CMD M18 Received.\r\nok\r\n" },
	    { 0, "~M108 T0\r\n", "CMD M108 Received.\r\nok\r\n" },
	    { 0, "~M405\r\n", "CMD M405 Received.\r\nok\r\n" },
	    { 0, "~M406\r\n", "CMD M406 Received.\r\nok\r\n" },
	    { 0, "~M650\r\n", "CMD M650 Received.\r\nX: 0 Y: 0\r\nok\r\n" },
	    { 0, "~M611 S2\r\n", "CMD M611 Received.\r\nok\r\n" },
	    { 0, "~M115\r\n",
	      "CMD M115 Received.\r\nMachine Type: Flashforge Finder\r\n"
	      "Machine Name: My Finder\r\nFirmware: V1.5 20160804\r\n"
	      "SN: 62B08883\r\nX: 140  Y: 140  Z: 140\r\nTool Count: 2\r\n"
	      "ok\r\n" } } },
	{ "M18 refused while printing", FF_FINDER, NULL, 0, {
	    { 0, "~M23 20mm_cube.g\r\n", NULL },
	    { 0, "~M18\r\n",
	      "CMD M18 Received.\r\nprinting can not send M18\r\nok\r\n" },
	    { 0, "~M650\r\n", "CMD M650 Received.\r\nX: 0 Y: 0\r\nok\r\n" } } },
	/* Out-of-range numbers are clamped or refused before any cast. */
	{ "huge and negative arguments", FF_FINDER, NULL, 0, {
	    { 0, "~M106 S1e10\r\n", "CMD M106 Received.\r\nok\r\n" },
	    { 0, "~M106 S-1e10\r\n", "CMD M106 Received.\r\nok\r\n" },
	    { 0, "~M611 S-1\r\n",
	      "CMD M611 Received.\r\nError: invalid tool count\r\nok\r\n" },
	    { 0, "~M611 S1e10\r\n",
	      "CMD M611 Received.\r\nError: invalid tool count\r\nok\r\n" } } },
	{ "A3 M112 echoes", FF_ADVENTURER3, NULL, 0, {
	    { 0, "~M112\r\n",
	      "CMD M112 Received.\r\necho: Emergency Stop!!!\r\nok\r\n" } } },
	{ "A3 M650", FF_ADVENTURER3, NULL, 0, {
	    { 0, "~M650\r\n",
	      "CMD M650 Received.\r\nX: 1.0 Y: 0.5\r\nok\r\n" } } },
	{ "A3 M653/M654/M663", FF_ADVENTURER3, NULL, 0, {
	    { 0, "~M653 S1\r\n", "CMD M653 Received.\r\nack: ok\r\n" },
	    { 0, "~M654 S0\r\n", "CMD M654 Received.\r\nack: ok\r\n" },
	    { 0, "~m663\r\n", "CMD M663 Received.\r\nok\r\n" } } },
	{ "Finder M653 as any command", FF_FINDER, NULL, 0, {
	    { 0, "~M653 S1\r\n", "CMD M653 Received.\r\nok\r\n" } } },

	/* Motion. */
	{ "finder relative and absolute moves", FF_FINDER, NULL, 0, {
	    { 0, "~G91\r\n", "CMD G91 Received.\r\nok\r\n" },
	    { 0, "~G1 X10 Y-0.5016 Z-40 F3000\r\n", NULL },
	    { 0, "~M114\r\n",
	      "CMD M114 Received.\r\nX:96.9984 Y:70 Z:100 A:0 B:0\r\nok\r\n" },
	    { 0, "~G90\r\n", NULL },
	    { 0, "~G1 X999 Y-5\r\n", NULL },
	    { 0, "~M114\r\n",
	      "CMD M114 Received.\r\nX:140 Y:0 Z:100 A:0 B:0\r\nok\r\n" } } },
	{ "a move is MOVING until it is over", FF_FINDER, NULL, 0, {
	    /* 60 mm at 3600 mm/min: 1 s. */
	    { 0, "~G1 Z80 F3600\r\n", NULL },
	    { 999, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 1 Y-max: 0 Z-max: 1\r\n"
	      "Status: S:1 L:0 J:0 F:1\r\nMachineStatus: READY\r\n"
	      "MoveMode: MOVING\r\nok\r\n" },
	    { 1000, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 1 Y-max: 0 Z-max: 1\r\n"
	      "Status: S:1 L:0 J:0 F:1\r\nMachineStatus: READY\r\n"
	      "MoveMode: READY\r\nok\r\n" } } },
	{ "G28 homes and is BUSY meanwhile", FF_FINDER, NULL, 0, {
	    { 0, "~G1 X0 Y0 Z0\r\n", NULL },
	    { 100000, "~G28\r\n", "CMD G28 Received.\r\nok\r\n" },
	    { 100000 + FF_HOME_MS - 1, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 1 Y-max: 0 Z-max: 1\r\n"
	      "Status: S:1 L:0 J:0 F:1\r\nMachineStatus: BUSY\r\n"
	      "MoveMode: MOVING\r\nok\r\n" },
	    { 100000 + FF_HOME_MS, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 1 Y-max: 0 Z-max: 1\r\n"
	      "Status: S:1 L:0 J:0 F:1\r\nMachineStatus: READY\r\n"
	      "MoveMode: READY\r\nok\r\n" },
	    { 100000 + FF_HOME_MS, "~M114\r\n",
	      "CMD M114 Received.\r\nX:86.9984 Y:70.5016 Z:140 A:0 B:0\r\n"
	      "ok\r\n" } } },
	{ "M112 stops the print and the heaters", FF_ADVENTURER4, NULL, 0, {
	    { 0, "~M23 0:/user/20mm_cube.gx\r\n", NULL },
	    { 0, "~M24\r\n", NULL },
	    { 1000, "~M112\r\n", "CMD M112 Received.\r\nok\r\n" },
	    { 1000, "~M119\r\n",
	      "CMD M119 Received.\r\nEndstop: X-max: 0 Y-max: 0 Z-min: 0\r\n"
	      "MachineStatus: READY\r\nMoveMode: READY\r\n"
	      "Status: S:1 L:0 J:0 F:0\r\nLED: 1\r\nCurrentFile: \r\n"
	      "ok\r\n" },
	    { 3600000, "~M105\r\n",
	      "CMD M105 Received.\r\nT0:25/0 B:25/0\r\nok\r\n" } } },
	/* The Finder has no heated bed: M140 changes nothing. */
	{ "finder ignores M140", FF_FINDER, NULL, 0, {
	    { 0, "~M140 S60\r\n", "CMD M140 Received.\r\nok\r\n" },
	    { 60000, "~M105\r\n",
	      "CMD M105 Received.\r\nT0:24 /0 B:0 /0\r\nok\r\n" } } },
};

static void
test_replies(void **state)
{
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		const struct reply_case *rc = &reply_cases[i];
		struct ff_model *m = new_model(rc->kind, "My Finder");
		struct capture *c = calloc(1, sizeof(*c));
		struct ff_proto p;

		assert_non_null(c);
		ff_proto_init(&p);
		if (rc->file != NULL)
			assert_int_equal(ff_model_file_add(m, rc->file,
			    rc->size), 0);
		for (k = 0; k < STEPS_MAX && rc->steps[k].in != NULL; k++) {
			const struct step *s = &rc->steps[k];
			char what[256];

			cap_reset(c);
			assert_int_equal(ff_proto_feed(&p, m, s->in,
			    strlen(s->in), s->t, cap_emit, c), 0);
			snprintf(what, sizeof(what), "%s, step %zu (%s)",
			    rc->name, k, esc(s->in, strlen(s->in)));
			if (s->want != NULL && s->want[0] == '\0') {
				if (c->calls != 0)
					fail_msg("%s: a reply", what);
				continue;
			}
			assert_int_equal(c->calls, 1);
			if (s->want != NULL)
				expect_bytes(what, c, s->want);
		}
		free(c);
		ff_model_free(m);
	}
}

/* Replies with binary parts: one command each, the bytes counted. */
static const struct bin_case {
	const char	*name;
	enum ff_kind	 kind;
	const char	*file;	/* added first, if not NULL */
	uint64_t	 size;	/* bytes */
	const char	*in;
	const char	*want;
	size_t		 want_len;	/* bytes */
} bin_cases[] = {
	/* M662: the PNG after "ok" (5M, with [FFAPI]'s /data/ prefix), or
	 * the A3's framing. */
	{ "5M M662 PNG after ok", FF_ADVENTURER5M, NULL, 0,
	  "~M662 /data/20mm_cube.gcode\r\n",
	      "CMD M662 Received.\r\nok\r\n" PNG,
	  24 + PNG_LEN },
	{ "finder M662 of a bare name", FF_FINDER, NULL, 0,
	  "~M662 20mm_cube.g\r\n",
	      "CMD M662 Received.\r\nok\r\n" PNG,
	  24 + PNG_LEN },
	{ "A3 M662 framed", FF_ADVENTURER3, NULL, 0,
	  "~M662 0:/user/20mm_cube.gx\r\n",
	      "CMD M662 Received.\nack header length: 71\n"
	      "\xa2\xa2\x2a\x2a\x00\x00\x00\x47" PNG,
	  19 + 22 + 8 + PNG_LEN },
	/* M661: the binary block, /data/ paths ([MAUG]'s NM3.gx example). */
	{ "5M M661 binary", FF_ADVENTURER5M, "NM3.gx", 10,
	  "~M661\r\n",
	      "CMD M661 Received.\r\nok\r\n"
	      "\x44\xaa\xaa\x44\x00\x00\x00\x02"
	      "\x3a\x3a\xa3\xa3\x00\x00\x00\x15/data/20mm_cube.gcode"
	      "\x3a\x3a\xa3\xa3\x00\x00\x00\x0c/data/NM3.gx",
	  24 + 8 + 8 + 21 + 8 + 12 },
	{ "finder M661 binary", FF_FINDER, NULL, 0,
	  "~M661\r\n",
	      "CMD M661 Received.\r\nok\r\n"
	      "\x44\xaa\xaa\x44\x00\x00\x00\x01"
	      "\x3a\x3a\xa3\xa3\x00\x00\x00\x11/data/20mm_cube.g",
	  24 + 8 + 8 + 17 },
};

static void
test_bin_replies(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bin_cases) / sizeof(bin_cases[0]); i++) {
		const struct bin_case *bc = &bin_cases[i];
		struct ff_model *m = new_model(bc->kind, "My Finder");
		struct capture *c = calloc(1, sizeof(*c));
		struct ff_proto p;

		assert_non_null(c);
		ff_proto_init(&p);
		if (bc->file != NULL)
			assert_int_equal(ff_model_file_add(m, bc->file,
			    bc->size), 0);
		assert_int_equal(ff_proto_feed(&p, m, bc->in, strlen(bc->in),
		    0, cap_emit, c), 0);
		assert_int_equal(c->calls, 1);
		expect_n(bc->name, c, bc->want, bc->want_len);
		free(c);
		ff_model_free(m);
	}
}

/* --- M28/M29 uploads ------------------------------------------------ */

enum up_how {
	UP_EXACT,	/* every byte, then M29 */
	UP_SHORT,	/* half of the file, then M29 */
	UP_LONG,	/* the file and one line more, then M29 */
	UP_BADCRC,	/* block 1's payload altered */
	UP_TOOBIG,	/* M28 announces more than FF_TCP_UPLOAD_MAX */
};

static const char up_done[] =
    "CMD M29 Received.\r\nDone saving file.\r\nok\r\n";
static const char up_refused[] =
    "CMD M29 Received.\r\nError: file size mismatch, file deleted\r\nok\r\n";

static const struct upload_case {
	const char	*name;
	enum ff_kind	 kind;
	size_t		 size;	/* bytes of the file */
	enum up_how	 how;
	const char	*m29;	/* M29's reply */
	int		 stored;
} upload_cases[] = {
	{ "5M raw", FF_ADVENTURER5M, 7000, UP_EXACT, up_done, 1 },
	{ "A4 raw, empty file", FF_ADVENTURER4, 0, UP_EXACT, up_done, 1 },
	{ "5M Pro raw short", FF_ADVENTURER5M_PRO, 7000, UP_SHORT, up_refused,
	  0 },
	{ "A4 raw long", FF_ADVENTURER4, 7000, UP_LONG, up_refused, 0 },
	{ "finder framed", FF_FINDER, 8400, UP_EXACT, up_done, 1 },
	{ "A3 framed, one block", FF_ADVENTURER3, 4096, UP_EXACT, up_done, 1 },
	{ "finder framed short", FF_FINDER, 8400, UP_SHORT, up_refused, 0 },
	{ "A3 framed long", FF_ADVENTURER3, 8400, UP_LONG, up_refused, 0 },
	{ "finder framed bad CRC", FF_FINDER, 8400, UP_BADCRC, up_refused, 0 },
	{ "5M too big", FF_ADVENTURER5M, 0, UP_TOOBIG, NULL, 0 },
};

static uint32_t
test_crc32(const unsigned char *b, size_t n)
{
	uint32_t crc = 0xffffffffU;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		crc ^= b[i];
		for (k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0xedb88320U : crc >> 1;
	}
	return crc ^ 0xffffffffU;
}

static void
put32(unsigned char *b, uint32_t v)
{
	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
}

/* The wire bytes for file[0..n): as they are, or in 4112-byte blocks;
 * *acks gets the acknowledgements a printer sends for them. */
static unsigned char *
up_wire(const unsigned char *file, size_t n, int framed, size_t *len,
    char *acks, size_t acks_size)
{
	unsigned char *w = malloc(n + (n / 4096 + 1) * 4112), *b;
	size_t off, k, a = 0;
	uint32_t no;

	assert_non_null(w);
	acks[0] = '\0';
	if (!framed) {
		memcpy(w, file, n);
		*len = n;
		return w;
	}
	for (off = 0, no = 0, b = w; off < n; off += k, no++, b += 4112) {
		k = n - off < 4096 ? n - off : 4096;
		memset(b, 0, 4112);
		put32(b, 0x5a5aa5a5U);
		put32(b + 4, no);
		put32(b + 8, (uint32_t)k);
		put32(b + 12, test_crc32(file + off, k));
		memcpy(b + 16, file + off, k);
		a += (size_t)snprintf(acks + a, acks_size - a, "N%04u ok.\r\n",
		    no);
	}
	*len = (size_t)(b - w);
	return w;
}

/* Feeds in pieces of 1000 bytes, splitting blocks and lines anywhere. */
static void
feed_chunks(struct ff_proto *p, struct ff_model *m, const unsigned char *b,
    size_t n, struct capture *c)
{
	size_t off, k;

	for (off = 0; off < n; off += k) {
		k = n - off < 1000 ? n - off : 1000;
		assert_int_equal(ff_proto_feed(p, m, b + off, k, 0, cap_emit,
		    c), 0);
	}
}

static void
run_upload(const struct upload_case *uc)
{
	static const char line[] = "M104 S250\nG28\n";
	const struct ff_info *fi = ff_model_kind_info(uc->kind);
	struct ff_model *m = new_model(uc->kind, "P");
	struct capture *c = calloc(1, sizeof(*c));
	unsigned char *file = malloc(uc->size + 1), *w;
	char cmd[128], acks[256], want[512];
	struct ff_status st;
	struct ff_proto p;
	size_t i, wlen, send;
	uint64_t size;

	assert_non_null(c);
	assert_non_null(file);
	ff_proto_init(&p);
	/* G-code that would heat and home the printer if it were run. */
	for (i = 0; i < uc->size; i++)
		file[i] = (unsigned char)line[i % (sizeof(line) - 1)];
	snprintf(cmd, sizeof(cmd), "~M28 %llu 0:/user/up.gcode\r\n",
	    uc->how == UP_TOOBIG ? FF_TCP_UPLOAD_MAX + 1 :
	    (unsigned long long)uc->size);
	if (uc->how == UP_TOOBIG)
		exchange(&p, m, 0, cmd, "CMD M28 Received.\r\n"
		    "Error: Not enough space\r\nok\r\n");
	else
		exchange(&p, m, 0, cmd, "CMD M28 Received.\r\n"
		    "Writing to file: 0:/user/up.gcode\r\nok\r\n");

	w = up_wire(file, uc->size, fi->upload_framed, &wlen, acks,
	    sizeof(acks));
	send = wlen;
	if (uc->how == UP_SHORT) {
		/* Half, on a line of the file or a block. */
		send = fi->upload_framed ? 4112 : 14 * 250;
		acks[fi->upload_framed ? 11 : 0] = '\0';
	} else if (uc->how == UP_BADCRC) {
		w[4112 + 16 + 5] ^= 0x01;
		snprintf(acks, sizeof(acks), "N0000 ok.\r\nN0001 error.\r\n");
	} else if (uc->how == UP_TOOBIG)
		send = 0;
	cap_reset(c);
	feed_chunks(&p, m, w, send, c);
	if (uc->how == UP_LONG)
		feed_chunks(&p, m, (const unsigned char *)"G28\n", 4, c);
	snprintf(want, sizeof(want), "%s", acks);
	expect_bytes(uc->name, c, want);

	if (uc->m29 != NULL)
		exchange(&p, m, 0, "~M29\r\n", uc->m29);
	if (uc->stored) {
		assert_int_equal(ff_model_file_find(m, "up.gcode", &size), 0);
		assert_int_equal(size, uc->size);
	} else
		assert_int_equal(ff_model_file_find(m, "up.gcode", NULL), -1);
	/* None of the file's lines ran. */
	ff_model_status(m, 0, &st);
	assert_true(st.nozzle_target == 0);
	assert_int_equal(st.machine, FF_MACHINE_READY);
	/* Commands again afterwards. */
	exchange(&p, m, 0, "~M650\r\n", fi->kind == FF_ADVENTURER3 ?
	    "CMD M650 Received.\r\nX: 1.0 Y: 0.5\r\nok\r\n" :
	    "CMD M650 Received.\r\nX: 0 Y: 0\r\nok\r\n");
	free(w);
	free(file);
	free(c);
	ff_model_free(m);
}

static void
test_upload(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(upload_cases) / sizeof(upload_cases[0]); i++)
		run_upload(&upload_cases[i]);
}

/* The uploaded file is listed by M661 and starts with M23. */
static void
test_upload_then_print(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M, "P");
	struct capture *c = calloc(1, sizeof(*c));
	struct ff_proto p;
	struct ff_status st;

	(void)state;
	assert_non_null(c);
	ff_proto_init(&p);
	assert_int_equal(ff_proto_feed(&p, m, "~M28 4 0:/user/a.gx\r\nG28\n"
	    "~M29\r\n~M661\r\n", 38, 0, cap_emit, c), 0);
	assert_non_null(memmem(c->buf, c->len, "\x00\x00\x00\x0a/data/a.gx",
	    14));
	cap_reset(c);
	assert_int_equal(ff_proto_feed(&p, m, "~M23 0:/user/a.gx\r\n", 19, 0,
	    cap_emit, c), 0);
	ff_model_status(m, 1000, &st);
	assert_int_equal(st.job, FF_JOB_PRINTING);
	assert_string_equal(st.file, "a.gx");
	free(c);
	ff_model_free(m);
}

/* --- line assembly --------------------------------------------------- */

static const char finder_m115[] =
    "CMD M115 Received.\r\nMachine Type: Flashforge Finder\r\n"
    "Machine Name: My Finder\r\nFirmware: V1.5 20160804\r\n"
    "SN: 62B08883\r\nX: 140  Y: 140  Z: 140\r\nTool Count: 1\r\nok\r\n";

static void
test_split(void **state)
{
	static const char in[] = "~M115\r\n";
	struct ff_model *m = new_model(FF_FINDER, "My Finder");
	struct capture *c = calloc(1, sizeof(*c));
	struct ff_proto p;
	size_t i;

	(void)state;
	assert_non_null(c);
	ff_proto_init(&p);
	for (i = 0; i < strlen(in); i++) {
		assert_int_equal(ff_proto_feed(&p, m, in + i, 1, 0, cap_emit,
		    c), 0);
		/* Nothing before the '\n'. */
		assert_int_equal(c->calls, in[i] == '\n' ? 1 : 0);
	}
	expect_bytes("byte by byte", c, finder_m115);

	/* Split inside "\r\n" and inside the code, in two feeds. */
	cap_reset(c);
	assert_int_equal(ff_proto_feed(&p, m, "~M1", 3, 0, cap_emit, c), 0);
	assert_int_equal(ff_proto_feed(&p, m, "15\r", 3, 0, cap_emit, c), 0);
	assert_int_equal(c->calls, 0);
	assert_int_equal(ff_proto_feed(&p, m, "\n", 1, 0, cap_emit, c), 0);
	expect_bytes("two feeds", c, finder_m115);
	free(c);
	ff_model_free(m);
}

static void
test_coalesced(void **state)
{
	static const char in[] = "~M601 S1\r\n~M115\r\n~M602\r\n~M1";
	struct ff_model *m = new_model(FF_FINDER, "My Finder");
	struct capture *c = calloc(1, sizeof(*c));
	struct ff_proto p;
	char want[2048];

	(void)state;
	assert_non_null(c);
	ff_proto_init(&p);
	assert_int_equal(ff_proto_feed(&p, m, in, strlen(in), 0, cap_emit, c),
	    0);
	assert_int_equal(c->calls, 3);
	snprintf(want, sizeof(want), "%s%s%s",
	    "CMD M601 Received.\r\nControl Success.\r\nok\r\n", finder_m115,
	    "CMD M602 Received.\r\nControl Release.\r\nok\r\n");
	expect_bytes("three in one read", c, want);
	/* The tail "~M1" waits for the rest of its line. */
	cap_reset(c);
	assert_int_equal(ff_proto_feed(&p, m, "05\n", 3, 0, cap_emit, c), 0);
	expect_bytes("the rest", c,
	    "CMD M105 Received.\r\nT0:24 /0 B:0 /0\r\nok\r\n");
	free(c);
	ff_model_free(m);
}

/* Every spelling gets the same reply. */
static void
test_spellings(void **state)
{
	static const char *const ins[] = {
		"~M105\r\n", "~M105\n", "M105\r\n", "M105\n", "  ~ M105 \r\n",
		"~m105\r\n", "~M105\r\r\n", "\t~M105\t\n",
	};
	static const char want[] =
	    "CMD M105 Received.\r\nT0:24 /0 B:0 /0\r\nok\r\n";
	struct ff_model *m = new_model(FF_FINDER, "My Finder");
	struct ff_proto p;
	size_t i;

	(void)state;
	ff_proto_init(&p);
	for (i = 0; i < sizeof(ins) / sizeof(ins[0]); i++)
		exchange(&p, m, 0, ins[i], want);
	ff_model_free(m);
}

static void
test_blank_lines(void **state)
{
	static const char in[] = "\r\n\n~\r\n  \n~ \t\r\n";
	struct ff_model *m = new_model(FF_FINDER, "My Finder");
	struct capture *c = calloc(1, sizeof(*c));
	struct ff_proto p;

	(void)state;
	assert_non_null(c);
	ff_proto_init(&p);
	assert_int_equal(ff_proto_feed(&p, m, in, strlen(in), 0, cap_emit, c),
	    0);
	assert_int_equal(c->calls, 0);
	free(c);
	ff_model_free(m);
}

static void
test_overlong(void **state)
{
	struct ff_model *m = new_model(FF_FINDER, "My Finder");
	struct capture *c = calloc(1, sizeof(*c));
	char *line = malloc(FF_LINE_MAX + 16);
	struct ff_proto p;

	(void)state;
	assert_non_null(c);
	assert_non_null(line);

	/* FF_LINE_MAX bytes then '\n': the longest line, answered. */
	ff_proto_init(&p);
	memset(line, 'A', FF_LINE_MAX);
	line[FF_LINE_MAX] = '\n';
	assert_int_equal(ff_proto_feed(&p, m, line, FF_LINE_MAX + 1, 0,
	    cap_emit, c), 0);
	assert_int_equal(c->calls, 1);
	assert_int_equal(c->len, strlen("CMD  Received.\r\nok\r\n") +
	    FF_CODE_ECHO_MAX);

	/* One byte more before the '\n': the client is dropped. */
	cap_reset(c);
	ff_proto_init(&p);
	memset(line, 'A', FF_LINE_MAX + 1);
	line[FF_LINE_MAX + 1] = '\n';
	assert_int_equal(ff_proto_feed(&p, m, line, FF_LINE_MAX + 2, 0,
	    cap_emit, c), -1);
	assert_int_equal(c->calls, 0);

	/* The same across many feeds, with no '\n' at all. */
	cap_reset(c);
	ff_proto_init(&p);
	memset(line, 'B', FF_LINE_MAX + 1);
	assert_int_equal(ff_proto_feed(&p, m, line, 1000, 0, cap_emit, c), 0);
	assert_int_equal(ff_proto_feed(&p, m, line, FF_LINE_MAX - 1000, 0,
	    cap_emit, c), 0);
	assert_int_equal(ff_proto_feed(&p, m, line, 1, 0, cap_emit, c), -1);
	assert_int_equal(c->calls, 0);

	/* Commands before the long line in the same read are answered. */
	cap_reset(c);
	ff_proto_init(&p);
	memcpy(line, "~M602\n", 6);
	memset(line + 6, 'C', FF_LINE_MAX + 1);
	assert_int_equal(ff_proto_feed(&p, m, line, 6 + FF_LINE_MAX + 1, 0,
	    cap_emit, c), -1);
	expect_bytes("before the long line", c,
	    "CMD M602 Received.\r\nControl Release.\r\nok\r\n");
	free(line);
	free(c);
	ff_model_free(m);
}

static void
test_junk(void **state)
{
	static const unsigned char junk[] = {
		0x00, 0xff, 0x7f, '~', 0x1b, '[', 'A', ' ', 0x00, 'M', '\r',
		'\n',
	};
	struct ff_model *m = new_model(FF_FINDER, "My Finder");
	struct capture *c = calloc(1, sizeof(*c));
	unsigned char *buf = malloc(20000);
	struct ff_proto p;
	uint32_t seed = 12345;
	size_t i, k, off, n;

	(void)state;
	assert_non_null(c);
	assert_non_null(buf);
	ff_proto_init(&p);
	assert_int_equal(ff_proto_feed(&p, m, junk, sizeof(junk), 0,
	    cap_emit, c), 0);
	expect_bytes("junk", c, "CMD ???~?[A Received.\r\nok\r\n");

	/* Random bytes, '\n' now and then, in random chunks: every reply is
	 * well formed, the model keeps answering. */
	for (i = 0; i < 20000; i++) {
		seed = seed * 1103515245 + 12345;
		buf[i] = (seed >> 16) % 23 == 0 ? '\n' : (unsigned char)(seed >> 8);
	}
	ff_proto_init(&p);
	for (off = 0; off < 20000; off += n) {
		seed = seed * 1103515245 + 12345;
		n = 1 + (seed >> 16) % 300;
		if (n > 20000 - off)
			n = 20000 - off;
		cap_reset(c);
		assert_int_equal(ff_proto_feed(&p, m, buf + off, n, off,
		    cap_emit, c), 0);
		if (c->len > 0) {
			assert_memory_equal(c->buf, "CMD ", 4);
			assert_true(c->len >= 3 && c->buf[c->len - 1] == '\n');
			/* Replies hold no junk: all printable but line ends. */
			for (k = 0; k < c->len; k++)
				assert_true(c->buf[k] == '\r' ||
				    c->buf[k] == '\n' || (c->buf[k] >= 0x20 &&
				    c->buf[k] < 0x7f));
		}
	}
	ff_proto_init(&p);
	exchange(&p, m, 20000, "~M115\r\n", finder_m115);
	free(buf);
	free(c);
	ff_model_free(m);
}

static void
test_long_code_echo(void **state)
{
	struct ff_model *m = new_model(FF_FINDER, "My Finder");
	struct ff_proto p;
	char in[200], want[200];

	(void)state;
	ff_proto_init(&p);
	memset(in, 'Z', 100);
	memcpy(in + 100, " S1\r\n", 6);
	memcpy(want, "CMD ", 4);
	memset(want + 4, 'Z', FF_CODE_ECHO_MAX);
	snprintf(want + 4 + FF_CODE_ECHO_MAX, sizeof(want) - 4 -
	    FF_CODE_ECHO_MAX, " Received.\r\nok\r\n");
	exchange(&p, m, 0, in, want);
	ff_model_free(m);
}

/* Two connections, one printer: state is the model's, not the line's. */
static void
test_two_connections(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M, "Five");
	struct ff_proto a, b;

	(void)state;
	ff_proto_init(&a);
	ff_proto_init(&b);
	assert_int_equal(ff_proto_feed(&a, m, "~M10", 4, 0, cap_emit, NULL),
	    0);
	exchange(&b, m, 0, "~M104 S200\r\n", "CMD M104 Received.\r\nok\r\n");
	exchange(&a, m, 3600000, "5\r\n",
	    "CMD M105 Received.\r\nT0:200.0/200.0 T1:0.0/0.0 B:25.0/0.0\r\n"
	    "ok\r\n");
	ff_model_free(m);
}

/* M601 while a session exists: refused on the A3 only.  Steps in order
 * on connections a and b of one printer. */
static const struct session_step {
	int		 conn;		/* 0: a, 1: b; 2: a closes */
	const char	*in;
	const char	*a3, *other;	/* replies; NULL: the same as a3 */
} session_steps[] = {
	{ 0, "~M601 S1\r\n", "Control Success V2.1.", "Control Success." },
	{ 1, "~M601 S1\r\n", "Error: have been connected",
	  "Control Success." },
	{ 0, "~M601 S1\r\n", "Error: have been connected",
	  "Control Success." },
	{ 0, "~M602\r\n", "Control Release.", NULL },
	{ 1, "~M601 S1\r\n", "Control Success V2.1.", "Control Success." },
	{ 2, NULL, NULL, NULL },
	{ 1, "~M602\r\n", "Control Release.", NULL },
	{ 0, "~M601 S1\r\n", "Control Success V2.1.", "Control Success." },
	{ 2, NULL, NULL, NULL },
	{ 1, "~M601 S1\r\n", "Control Success V2.1.", "Control Success." },
};

static void
test_sessions(void **state)
{
	static const enum ff_kind kinds[] = { FF_ADVENTURER3, FF_FINDER };
	char want[128];
	size_t i, k;

	(void)state;
	for (k = 0; k < 2; k++) {
		struct ff_model *m = new_model(kinds[k], "S");
		struct ff_proto p[2];

		ff_proto_init(&p[0]);
		ff_proto_init(&p[1]);
		for (i = 0; i < sizeof(session_steps) /
		    sizeof(session_steps[0]); i++) {
			const struct session_step *s = &session_steps[i];
			const char *r = k == 0 || s->other == NULL ? s->a3 :
			    s->other;

			if (s->conn == 2) {
				ff_proto_close(&p[0], m);
				ff_proto_init(&p[0]);
				continue;
			}
			snprintf(want, sizeof(want), "CMD M60%c Received.\r\n"
			    "%s\r\nok\r\n", s->in[4], r);
			exchange(&p[s->conn], m, 0, s->in, want);
		}
		ff_proto_close(&p[0], m);
		ff_proto_close(&p[1], m);
		assert_int_equal(ff_model_sessions(m, 0), 0);
		ff_model_free(m);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_bin_replies),
		cmocka_unit_test(test_upload),
		cmocka_unit_test(test_upload_then_print),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_coalesced),
		cmocka_unit_test(test_spellings),
		cmocka_unit_test(test_blank_lines),
		cmocka_unit_test(test_overlong),
		cmocka_unit_test(test_junk),
		cmocka_unit_test(test_long_code_echo),
		cmocka_unit_test(test_two_connections),
		cmocka_unit_test(test_sessions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
