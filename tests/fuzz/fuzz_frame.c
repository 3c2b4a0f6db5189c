/*
 * fuzz_frame: one WebSocket message from the service, handled as ws.c and
 * dispatch.c do: frame_split() into lines, frame_parse_action() on each,
 * frame_action_free().  Seeds: tests/corpus/frames.
 *
 * Besides "no crash, no leak, no UB", it checks what the rest of the
 * daemon takes on trust once a line passed: the id is in range, the type
 * is a short lower-case word (it becomes part of file names), the optional
 * strings are non-empty, settings is an object, and the JSON is no deeper
 * than FRAME_MAX_DEPTH (the flat pre-scan and cJSON must agree on the
 * structure, or a deep frame could reach cJSON's recursion).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "frame.h"
#include "fuzz.h"

#define FUZZ_ERRLEN	160	/* as dispatch_line(): long reasons are cut */

struct fuzz_msg {
	const char	*buf;
	size_t		 len;
	size_t		 lines;
};

/* Nesting of arrays and objects; a scalar is 0.  Recursion is bounded by
 * the pre-scan's limit when that works, and by the input size if not. */
static int
fuzz_json_depth(const cJSON *j)
{
	const cJSON *c;
	int d, max = 0;

	if (!cJSON_IsArray(j) && !cJSON_IsObject(j))
		return 0;
	for (c = j->child; c != NULL; c = c->next)
		if ((d = fuzz_json_depth(c)) > max)
			max = d;
	return max + 1;
}

static void
fuzz_parse(const char *line, size_t len)
{
	struct action a;
	char err[FUZZ_ERRLEN];
	size_t n;

	if (frame_parse_action(line, len, &a, err, sizeof(err)) == -1) {
		/* dispatch_line() logs the reason: there must be one. */
		FUZZ_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
		FUZZ_CHECK(a.json == NULL && a.type == NULL);
		return;
	}
	FUZZ_CHECK(a.json != NULL && cJSON_IsObject(a.json));
	FUZZ_CHECK(fuzz_json_depth(a.json) <= FRAME_MAX_DEPTH);
	FUZZ_CHECK(a.id >= 1 && a.id < (INT64_C(1) << 53));
	FUZZ_CHECK(a.type != NULL);
	n = strspn(a.type, "abcdefghijklmnopqrstuvwxyz_");
	FUZZ_CHECK(n >= 1 && n <= 32 && a.type[n] == '\0');
	FUZZ_CHECK(a.status == ACTION_READY || a.status == ACTION_CANCELLED ||
	    a.status == ACTION_OTHER);
	FUZZ_CHECK(a.motion_url == NULL || a.motion_url[0] != '\0');
	FUZZ_CHECK(a.endpoint == NULL || a.endpoint[0] != '\0');
	FUZZ_CHECK(a.settings == NULL || cJSON_IsObject(a.settings));
	frame_action_free(&a);
	FUZZ_CHECK(a.json == NULL);
}

static void
fuzz_line(const char *line, size_t len, void *arg)
{
	struct fuzz_msg *m = arg;
	char *copy;

	m->lines++;
	FUZZ_CHECK(line >= m->buf && len <= (size_t)(m->buf + m->len - line));
	FUZZ_CHECK(len > 0 && memchr(line, '\n', len) == NULL);
	/*
	 * The line is a slice of the message, not NUL-terminated.  A copy of
	 * exactly len bytes makes any read past the slice an ASan report,
	 * where in the message it would read the next line unnoticed.
	 */
	if ((copy = malloc(len)) == NULL)
		return;
	memcpy(copy, line, len);
	fuzz_parse(copy, len);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_msg m;
	size_t n;

	m.buf = (const char *)data;
	m.len = size;
	m.lines = 0;
	n = frame_split(m.buf, m.len, fuzz_line, &m);
	FUZZ_CHECK(n == m.lines);
	return 0;
}
