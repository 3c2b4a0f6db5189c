/*
 * Unit tests for ff_disco.c: which datagrams get an answer, and the two
 * reply layouts read back field by field at their documented offsets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ff_disco.h"
#include "ff_model.h"

/* The legacy probe as clients send it. */
static const unsigned char legacy_probe[20] = {
	0x77, 0x77, 0x77, 0x2e, 0x75, 0x73, 0x72, 0x22, 0x65, 0x36, 0xc0,
};

static struct ff_model *
new_model(enum ff_kind kind, const char *name, const char *serial,
    uint16_t port)
{
	struct ff_params p = {
		.kind = kind,
		.name = name,
		.serial = serial,
		.check_code = "cc",
		.tcp_port = port,
	};
	struct ff_model *m = ff_model_new(&p, 0);

	assert_non_null(m);
	return m;
}

static unsigned
be16(const unsigned char *b, size_t off)
{
	return (unsigned)b[off] << 8 | b[off + 1];
}

/* The string at off, and that the rest of its field is NULs. */
static void
expect_field(const unsigned char *b, size_t off, size_t len, const char *s)
{
	size_t n = strlen(s), i;

	assert_true(n < len);
	assert_memory_equal(b + off, s, n);
	for (i = n; i < len; i++)
		if (b[off + i] != 0)
			fail_msg("byte 0x%zx is 0x%02x, want NUL", off + i,
			    b[off + i]);
}

static const struct layout_case {
	enum ff_kind	 kind;
	size_t		 len;
	unsigned	 pid;
} layout_cases[] = {
	{ FF_FINDER, FF_DISCO_LEGACY_LEN, 0x0001 },
	{ FF_ADVENTURER3, FF_DISCO_LEGACY_LEN, 0x0008 },
	{ FF_ADVENTURER4, FF_DISCO_LEGACY_LEN, 0x001e },
	{ FF_ADVENTURER5M, FF_DISCO_MODERN_LEN, 0x0023 },
	{ FF_ADVENTURER5M_PRO, FF_DISCO_MODERN_LEN, 0x0024 },
};

static void
test_layouts(void **state)
{
	unsigned char buf[512];
	size_t i, n;

	(void)state;
	assert_int_equal(FF_DISCO_LEGACY_LEN, 140);
	assert_int_equal(FF_DISCO_MODERN_LEN, 276);
	for (i = 0; i < sizeof(layout_cases) / sizeof(layout_cases[0]); i++) {
		const struct layout_case *c = &layout_cases[i];
		struct ff_model *m = new_model(c->kind, "My Finder",
		    "SNMOMC9900728", 0);

		memset(buf, 0xaa, sizeof(buf));
		n = ff_disco_reply(m, legacy_probe, sizeof(legacy_probe), buf,
		    sizeof(buf));
		assert_int_equal(n, c->len);
		/* Nothing written past the reply. */
		assert_int_equal(buf[n], 0xaa);
		expect_field(buf, 0x00, n == 140 ? 0x80 : 0x84, "My Finder");
		if (n == 140)	/* 0x80-0x83: zero */
			assert_int_equal(be16(buf, 0x80) | be16(buf, 0x82), 0);
		assert_int_equal(be16(buf, 0x84), 8899);
		assert_int_equal(be16(buf, 0x86), 0x2b71);
		assert_int_equal(be16(buf, 0x88), c->pid);
		assert_int_equal(be16(buf, 0x8a), FF_DISCO_READY);
		if (n == 276) {
			assert_int_equal(be16(buf, 0x8c), 0x5a02);
			assert_int_equal(be16(buf, 0x8e), 8898);
			assert_int_equal(be16(buf, 0x90), 0);
			expect_field(buf, 0x92, 276 - 0x92, "SNMOMC9900728");
		}
		ff_model_free(m);
	}
}

/* Which datagrams are probes: prefix, then 'x' up to len bytes. */
static const struct probe_case {
	const char	*name;
	const char	*prefix;
	size_t		 plen;		/* bytes of prefix */
	size_t		 len;		/* bytes */
	int		 answered;
} probe_cases[] = {
	{ "legacy probe", (const char *)legacy_probe, 20, 20, 1 },
	{ "empty datagram", "", 0, 0, 1 },
	{ "short probe", "\x00\x01", 2, 2, 1 },
	{ "magic alone", "www.usr", 7, 7, 1 },
	{ "8-byte probe", "\xc0\xa8\x01\x0c\x46\x51\0\0", 8, 8, 1 },
	{ "16 hex characters", "c0a800de46500000", 16, 16, 1 },
	{ "discover", "discover", 8, 8, 1 },
	{ "64 junk bytes", "", 0, 64, 1 },
	{ "65 junk bytes", "", 0, 65, 1 },
	{ "long magic probe", "www.usr", 7, 300, 1 },
	{ "near magic, long", "www.usX", 7, 300, 1 },
	{ "cut magic, long", "www.us", 6, 300, 1 },
};

static void
test_probes(void **state)
{
	struct ff_model *m = new_model(FF_FINDER, "F", "S", 0);
	struct ff_model *five = new_model(FF_ADVENTURER5M, "F", "S", 0);
	unsigned char buf[FF_DISCO_LEGACY_LEN], reply[FF_DISCO_MODERN_LEN];
	char probe[300];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(probe_cases) / sizeof(probe_cases[0]); i++) {
		const struct probe_case *c = &probe_cases[i];

		memset(probe, 'x', sizeof(probe));
		memcpy(probe, c->prefix, c->plen);
		n = ff_disco_reply(m, probe, c->len, buf, sizeof(buf));
		if ((n != 0) != c->answered)
			fail_msg("%s: reply of %zu bytes", c->name, n);
	}
	/* Content never matters, not even a reply's: the size is the
	 * model's whatever came in. */
	n = ff_disco_reply(five, "", 0, reply, sizeof(reply));
	assert_int_equal(n, FF_DISCO_MODERN_LEN);
	assert_int_equal(ff_disco_reply(m, reply, n, buf, sizeof(buf)),
	    FF_DISCO_LEGACY_LEN);
	assert_int_equal(ff_disco_reply(m, probe, sizeof(probe), buf,
	    sizeof(buf)), FF_DISCO_LEGACY_LEN);
	/* A NULL empty probe is an empty probe. */
	assert_int_equal(ff_disco_reply(m, NULL, 0, buf, sizeof(buf)),
	    FF_DISCO_LEGACY_LEN);
	assert_int_equal(ff_disco_reply(m, NULL, 5, buf, sizeof(buf)), 0);
	ff_model_free(m);
	ff_model_free(five);
}

/* Which senders are printers (their datagrams are replies). */
static const struct from_case {
	uint16_t	 port;
	int		 printer;
} from_cases[] = {
	{ 8899, 1 }, { 19000, 1 }, { 48899, 1 },	/* printers' ports */
	{ 48900, 1 }, { 19001, 1 },			/* ours */
	{ 18001, 0 }, { 18002, 0 }, { 18003, 0 },	/* FlashPrint, MAUG */
	{ 40000, 0 }, { 1, 0 }, { 0, 0 },		/* ephemeral, odd */
};

static void
test_from_printer(void **state)
{
	const uint16_t ours[2] = { 48900, 19001 }, none[2] = { 0, 0 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(from_cases) / sizeof(from_cases[0]); i++) {
		if (ff_disco_from_printer(from_cases[i].port, ours, 2) !=
		    from_cases[i].printer)
			fail_msg("port %u", from_cases[i].port);
	}
	/* Ports left at 0 (off) match nothing. */
	assert_int_equal(ff_disco_from_printer(0, none, 2), 0);
	assert_int_equal(ff_disco_from_printer(48900, none, 2), 0);
}

static void
test_small_buffer(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M_PRO, "F", "S", 0);
	unsigned char buf[FF_DISCO_MODERN_LEN];

	(void)state;
	assert_int_equal(ff_disco_reply(m, "", 0, buf,
	    FF_DISCO_MODERN_LEN - 1), 0);
	assert_int_equal(ff_disco_reply(m, "", 0, NULL, 0), 0);
	assert_int_equal(ff_disco_reply(m, "", 0, buf, FF_DISCO_MODERN_LEN),
	    FF_DISCO_MODERN_LEN);
	ff_model_free(m);
}

/* Names and serials too long for their fields keep a final NUL. */
static void
test_truncation(void **state)
{
	char longname[300];
	unsigned char buf[FF_DISCO_MODERN_LEN];
	struct ff_model *m;

	(void)state;
	memset(longname, 'N', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';

	m = new_model(FF_FINDER, longname, longname, 0);
	assert_int_equal(ff_disco_reply(m, "", 0, buf, sizeof(buf)), 140);
	assert_int_equal(buf[0x7e], 'N');
	assert_int_equal(buf[0x7f], 0);
	assert_int_equal(be16(buf, 0x84), 8899);
	ff_model_free(m);

	m = new_model(FF_ADVENTURER5M, longname, longname, 0);
	assert_int_equal(ff_disco_reply(m, "", 0, buf, sizeof(buf)), 276);
	assert_int_equal(buf[0x82], 'N');
	assert_int_equal(buf[0x83], 0);
	assert_int_equal(be16(buf, 0x84), 8899);
	assert_int_equal(buf[0x92], 'N');
	assert_int_equal(buf[274], 'N');
	assert_int_equal(buf[275], 0);
	ff_model_free(m);
}

static void
test_ports_and_status(void **state)
{
	struct ff_params p = { .kind = FF_ADVENTURER5M_PRO, .name = "P",
	    .serial = "S", .tcp_port = 0x1234, .http_port = 0xbeef };
	unsigned char buf[FF_DISCO_MODERN_LEN];
	struct ff_model *m = ff_model_new(&p, 0);

	(void)state;
	assert_non_null(m);
	assert_int_equal(ff_disco_reply(m, "", 0, buf, sizeof(buf)), 276);
	assert_int_equal(buf[0x84], 0x12);
	assert_int_equal(buf[0x85], 0x34);
	assert_int_equal(buf[0x8e], 0xbe);
	assert_int_equal(buf[0x8f], 0xef);
	/* Printing: busy, as last advanced. */
	assert_int_equal(ff_model_print_file(m, "20mm_cube.gcode", 0), 0);
	ff_disco_reply(m, "", 0, buf, sizeof(buf));
	assert_int_equal(be16(buf, 0x8a), FF_DISCO_BUSY);
	/* Advanced past its end: ready again. */
	ff_model_advance(m, 10 * 3600 * 1000);
	ff_disco_reply(m, "", 0, buf, sizeof(buf));
	assert_int_equal(be16(buf, 0x8a), FF_DISCO_READY);
	ff_model_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layouts),
		cmocka_unit_test(test_probes),
		cmocka_unit_test(test_from_printer),
		cmocka_unit_test(test_small_buffer),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_ports_and_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
