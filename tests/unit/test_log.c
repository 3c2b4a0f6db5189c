/*
 * test_log: the escaping every log line goes through (issue 9, item 9).
 * Text from outside must not start a new line nor reach a terminal as an
 * escape sequence, and a cut never leaves half an escape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

#define ALL	((size_t)-1)

static const struct escape_case {
	const char	*name;
	const char	*in;
	size_t		 inlen;		/* 0: strlen(in) */
	size_t		 size;		/* of dst; 0: 256 */
	const char	*want;
	size_t		 consumed;	/* bytes of in taken; ALL */
} escape_cases[] = {
	{ "plain text", "firmware 2.6.0", 0, 0, "firmware 2.6.0", ALL },
	{ "newline", "a\nb", 0, 0, "a\\x0ab", ALL },
	{ "CR LF", "a\r\nb", 0, 0, "a\\x0d\\x0ab", ALL },
	{ "ESC sequence", "\033[2Jx", 0, 0, "\\x1b[2Jx", ALL },
	{ "tab and DEL", "\t\177", 0, 0, "\\x09\\x7f", ALL },
	{ "C1 CSI in UTF-8", "a\xc2\x9b" "31m", 0, 0,
	    "a\\xc2\\x9b31m", ALL },
	{ "UTF-8 letters kept", "caf\xc3\xa9 \xc2\xa0", 0, 0,
	    "caf\xc3\xa9 \xc2\xa0", ALL },
	{ "backslash kept", "C:\\x", 0, 0, "C:\\x", ALL },
	{ "NUL inside", "a\0b", 3, 0, "a\\x00b", ALL },
	{ "cut before an escape", "ab\n", 0, 6, "ab", 2 },
	{ "an escape fits exactly", "ab\n", 0, 7, "ab\\x0a", ALL },
	{ "no room", "abc", 0, 1, "", 0 },
};

static void
test_escape(void **state)
{
	char out[256];
	size_t i, inlen, size, got, want;

	(void)state;
	for (i = 0; i < sizeof(escape_cases) / sizeof(escape_cases[0]); i++) {
		const struct escape_case *c = &escape_cases[i];

		inlen = c->inlen ? c->inlen : strlen(c->in);
		size = c->size ? c->size : sizeof(out);
		memset(out, 'Z', sizeof(out));
		got = log_escape(out, size, c->in, inlen);
		want = c->consumed == ALL ? inlen : c->consumed;
		if (strcmp(out, c->want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", c->name, out,
			    c->want);
		if (got != want)
			fail_msg("%s: %zu bytes in, want %zu", c->name, got,
			    want);
	}
	out[0] = 'Z';
	assert_int_equal(log_escape(out, 0, "x", 1), 0);
	assert_int_equal(out[0], 'Z');	/* nothing written */
}

/* What a hostile firmware version does to the log file: one line. */
static void
test_emit_one_line(void **state)
{
	char path[] = "/tmp/test_log.XXXXXX", buf[4096];
	const char *forged = "9.9\n2026-01-01 00:00:00 ERROR forged\033[2J";
	size_t n, i, lines = 0;
	FILE *f;
	int fd;

	(void)state;
	assert_true((fd = mkstemp(path)) != -1);
	close(fd);
	assert_int_equal(log_init(LOG_TO_JOURNAL, LOG_INFO, path), 0);
	log_notice("service offers firmware %s", forged);
	log_close();
	assert_non_null(f = fopen(path, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	unlink(path);
	buf[n] = '\0';
	for (i = 0; i < n; i++) {
		if (buf[i] == '\n')
			lines++;
		else if ((unsigned char)buf[i] < 0x20)
			fail_msg("control byte 0x%02x at %zu", buf[i], i);
	}
	assert_int_equal(lines, 1);
	assert_non_null(strstr(buf, "firmware 9.9\\x0a2026-01-01"));
	assert_non_null(strstr(buf, "forged\\x1b[2J\n"));
}

/* A long message full of escapes is cut with "...", still one line. */
static void
test_emit_long(void **state)
{
	char path[] = "/tmp/test_log.XXXXXX", *big, *buf;
	size_t n, bigsz = 3000;
	FILE *f;
	int fd;

	(void)state;
	assert_non_null(big = malloc(bigsz + 1));
	assert_non_null(buf = malloc(16384));
	memset(big, '\n', bigsz);
	big[bigsz] = '\0';
	assert_true((fd = mkstemp(path)) != -1);
	close(fd);
	assert_int_equal(log_init(LOG_TO_JOURNAL, LOG_INFO, path), 0);
	log_info("%s", big);
	log_close();
	assert_non_null(f = fopen(path, "r"));
	n = fread(buf, 1, 16383, f);
	fclose(f);
	unlink(path);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "...\n"));
	assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
	free(big);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_emit_one_line),
		cmocka_unit_test(test_emit_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
