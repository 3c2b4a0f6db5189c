/*
 * fuzz_ff: the FlashForge printer's two parsers on one model: HTTP JSON
 * bodies (ff_http_handle()) and TCP command bytes (ff_proto_feed()).
 * Seeds: tests/corpus/ff.
 *
 * Input: byte 0 picks the model (mod FF_KIND_COUNT); the rest is records
 * split at 0x1e (ASCII RS).  A record's first byte picks its target: below
 * 0x80 an HTTP path (fuzz_paths[], mod its count) and the rest is the
 * POST body; 0x80 and up, the rest is fed to one TCP connection, so
 * commands run against what HTTP set and lines may span records.  The
 * clock moves FUZZ_STEP_MS per record, so jobs start, run and end.  The
 * model's pair is serial "SN1", check code "abc" (the seeds carry it).
 *
 * Besides "no crash, no leak, no UB": every HTTP answer is a JSON object
 * with a status of 200-599, and every TCP reply is emitted non-empty.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <cjson/cJSON.h>

#include "ff_http.h"
#include "ff_model.h"
#include "ff_proto.h"
#include "log.h"
#include "fuzz.h"

#define FUZZ_RS		0x1e	/* between records */
#define FUZZ_STEP_MS	1500	/* clock per record */

static const char *const fuzz_paths[] = {
	"/product", "/detail", "/control", "/gcodeList", "/gcodeThumb",
	"/printGcode", "/detail?x=1", "/nosuch",
};

static void
fuzz_emit(void *arg, const void *buf, size_t len)
{
	(void)arg;
	FUZZ_CHECK(buf != NULL && len > 0);
}

static void
fuzz_http(struct ff_model *m, uint8_t which, const uint8_t *body,
    size_t len, int64_t now)
{
	const char *path = fuzz_paths[which % (sizeof(fuzz_paths) /
	    sizeof(fuzz_paths[0]))];
	char *resp = NULL, *b;
	int status = 0;
	cJSON *j;

	/* The server hands a body over NUL-terminated, NULL when empty. */
	if ((b = malloc(len + 1)) == NULL)
		return;
	memcpy(b, body, len);
	b[len] = '\0';
	if (ff_http_handle(m, path, len > 0 ? b : NULL, len, now, &resp,
	    &status) == 0) {
		FUZZ_CHECK(resp != NULL);
		FUZZ_CHECK(status >= 200 && status <= 599);
		j = cJSON_Parse(resp);
		FUZZ_CHECK(j != NULL && cJSON_IsObject(j));
		cJSON_Delete(j);
	}
	free(resp);
	free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ff_params p;
	struct ff_proto *proto;
	struct ff_model *m;
	const uint8_t *rec, *end, *rs;
	int64_t now = 0;
	int dropped = 0;

	if (size < 1)
		return 0;
	log_setlevel(LOG_ERR);	/* bad input logs; only the noise goes */
	memset(&p, 0, sizeof(p));
	p.kind = (enum ff_kind)(data[0] % FF_KIND_COUNT);
	p.name = "Fuzz";
	p.serial = "SN1";
	p.check_code = "abc";
	p.ip = "192.0.2.7";
	if ((m = ff_model_new(&p, now)) == NULL)
		return 0;
	if ((proto = malloc(sizeof(*proto))) == NULL) {
		ff_model_free(m);
		return 0;
	}
	ff_proto_init(proto);
	/* A file to print, as an upload would leave. */
	ff_model_file_add(m, "cube.gcode", 1234);

	end = data + size;
	for (rec = data + 1; rec < end; rec = rs + 1) {
		if ((rs = memchr(rec, FUZZ_RS, (size_t)(end - rec))) == NULL)
			rs = end;
		now += FUZZ_STEP_MS;
		ff_model_advance(m, now);
		if (rs == rec)
			continue;
		if (rec[0] < 0x80)
			fuzz_http(m, rec[0], rec + 1, (size_t)(rs - rec - 1),
			    now);
		else if (!dropped && ff_proto_feed(proto, m, rec + 1,
		    (size_t)(rs - rec - 1), now, fuzz_emit, NULL) == -1)
			dropped = 1;	/* the server would close it */
	}
	free(proto);
	ff_model_free(m);
	return 0;
}
