/*
 * Unit tests for ff_http.c: the serialNumber/checkCode check, each
 * endpoint's JSON shape, /control's commands, and a print started over
 * HTTP as TCP (ff_proto) then reports it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "ff_http.h"
#include "ff_model.h"
#include "ff_proto.h"

#define SERIAL	"SNMOMC9900728"
#define CODE	"a1b2c3"
#define AUTH	"\"serialNumber\":\"" SERIAL "\",\"checkCode\":\"" CODE "\""

static struct ff_model *
new_model(enum ff_kind kind)
{
	struct ff_params p = {
		.kind = kind,
		.name = "Five",
		.serial = SERIAL,
		.check_code = CODE,
		.ip = "192.168.1.77",
		.camera_port = 8080,
	};
	struct ff_model *m = ff_model_new(&p, 0);

	assert_non_null(m);
	return m;
}

/* Posts body to path; returns the parsed answer, checks the status. */
static cJSON *
post(struct ff_model *m, const char *path, const char *body, int64_t t,
    int want_status)
{
	char *resp = NULL;
	int status = 0;
	cJSON *j;

	assert_int_equal(ff_http_handle(m, path, body,
	    body != NULL ? strlen(body) : 0, t, &resp, &status), 0);
	assert_non_null(resp);
	if (status != want_status)
		fail_msg("%s: status %d, want %d", path, status, want_status);
	j = cJSON_Parse(resp);
	if (j == NULL || !cJSON_IsObject(j))
		fail_msg("%s: not a JSON object: %s", path, resp);
	free(resp);
	return j;
}

static int
code_of(const cJSON *j)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "code");

	assert_true(cJSON_IsNumber(c));
	return c->valueint;
}

/* Posts and checks the answer's code; the caller deletes the answer. */
static cJSON *
post_code(struct ff_model *m, const char *path, const char *body, int64_t t,
    int want)
{
	cJSON *j = post(m, path, body, t, 200);

	if (code_of(j) != want)
		fail_msg("%s %s: code %d, want %d", path, body, code_of(j),
		    want);
	assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j,
	    "message")));
	return j;
}

static void
post_expect(struct ff_model *m, const char *path, const char *body,
    int64_t t, int want)
{
	cJSON_Delete(post_code(m, path, body, t, want));
}

static const char *const paths[] = {
	"/product", "/detail", "/control", "/gcodeList", "/gcodeThumb",
	"/printGcode",
};

static const char *const bad_auth[] = {
	NULL,
	"",
	"not json",
	"[1,2]",
	"{}",
	"{\"serialNumber\":\"" SERIAL "\"}",
	"{\"checkCode\":\"" CODE "\"}",
	"{\"serialNumber\":\"" SERIAL "\",\"checkCode\":\"wrong\"}",
	"{\"serialNumber\":\"wrong\",\"checkCode\":\"" CODE "\"}",
	"{\"serialNumber\":\"" SERIAL "x\",\"checkCode\":\"" CODE "\"}",
	"{\"serialNumber\":1,\"checkCode\":\"" CODE "\"}",
	"{\"serialNumber\":\"" SERIAL "\",\"checkCode\":null}",
	"{\"serialNumber\":\"" SERIAL "\",\"checkCode\":\"" CODE "\"",
};

static void
test_auth(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M_PRO);
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		for (k = 0; k < sizeof(bad_auth) / sizeof(bad_auth[0]); k++) {
			cJSON *j = post_code(m, paths[i], bad_auth[k], 0,
			    FF_HTTP_AUTH);

			/* Nothing but the code and the message. */
			assert_int_equal(cJSON_GetArraySize(j), 2);
			cJSON_Delete(j);
		}
	/* A refused /printGcode did not print. */
	post_expect(m, "/printGcode", "{\"serialNumber\":\"x\","
	    "\"fileName\":\"20mm_cube.gcode\"}", 0, FF_HTTP_AUTH);
	assert_int_equal(ff_http_auth(m, SERIAL, CODE), 1);
	assert_int_equal(ff_http_auth(m, SERIAL, "a1b2c"), 0);
	assert_int_equal(ff_http_auth(m, "", CODE), 0);
	assert_int_equal(ff_http_auth(m, NULL, CODE), 0);
	assert_int_equal(ff_http_auth(m, SERIAL, NULL), 0);
	ff_model_free(m);
}

static void
test_not_found(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M);
	struct ff_model *finder = new_model(FF_FINDER);
	cJSON *j;

	(void)state;
	j = post(m, "/nope", "{" AUTH "}", 0, 404);
	assert_int_equal(code_of(j), 404);
	cJSON_Delete(j);
	j = post(m, "/detailx", "{" AUTH "}", 0, 404);
	cJSON_Delete(j);
	j = post(m, "", NULL, 0, 404);
	cJSON_Delete(j);
	/* A query string is not part of the path. */
	post_expect(m, "/detail?x=1", "{" AUTH "}", 0, FF_HTTP_OK);
	/* Models before the 5M have no HTTP API. */
	j = post(finder, "/detail", "{" AUTH "}", 0, 404);
	cJSON_Delete(j);
	ff_model_free(m);
	ff_model_free(finder);
}

static void
test_product(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M_PRO);
	char *resp;
	int status;

	(void)state;
	assert_int_equal(ff_http_handle(m, "/product", "{" AUTH "}",
	    strlen("{" AUTH "}"), 0, &resp, &status), 0);
	assert_int_equal(status, 200);
	assert_string_equal(resp, "{\"code\":0,\"message\":\"Success\","
	    "\"product\":{\"chamberTempCtrlState\":0,"
	    "\"externalFanCtrlState\":1,\"internalFanCtrlState\":1,"
	    "\"lightCtrlState\":1,\"nozzleTempCtrlState\":1,"
	    "\"platformTempCtrlState\":1}}");
	free(resp);
	ff_model_free(m);
}

enum jtype { J_NUM, J_STR };

static const struct field {
	const char	*key;
	enum jtype	 type;
} detail_fields[] = {
	{ "status", J_STR }, { "name", J_STR }, { "firmwareVersion", J_STR },
	{ "ipAddr", J_STR }, { "macAddr", J_STR }, { "pid", J_NUM },
	{ "measure", J_STR }, { "rightTemp", J_NUM },
	{ "rightTargetTemp", J_NUM }, { "platTemp", J_NUM },
	{ "platTargetTemp", J_NUM }, { "chamberTemp", J_NUM },
	{ "printProgress", J_NUM }, { "printLayer", J_NUM },
	{ "targetPrintLayer", J_NUM }, { "printDuration", J_NUM },
	{ "estimatedTime", J_NUM }, { "printFileName", J_STR },
	{ "printFileThumbUrl", J_STR }, { "cameraStreamUrl", J_STR },
	{ "lightStatus", J_STR }, { "doorStatus", J_STR },
	{ "autoShutdown", J_STR }, { "coolingFanSpeed", J_NUM },
	{ "chamberFanSpeed", J_NUM }, { "cumulativeFilament", J_NUM },
	{ "cumulativePrintTime", J_NUM }, { "tvoc", J_NUM },
	{ "zAxisCompensation", J_NUM }, { "errorCode", J_STR },
};

static const cJSON *
detail_of(const cJSON *j)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "detail");
	size_t i;

	assert_true(cJSON_IsObject(d));
	for (i = 0; i < sizeof(detail_fields) / sizeof(detail_fields[0]);
	    i++) {
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(d,
		    detail_fields[i].key);

		if (detail_fields[i].type == J_NUM ? !cJSON_IsNumber(f) :
		    !cJSON_IsString(f))
			fail_msg("detail.%s missing or mistyped",
			    detail_fields[i].key);
	}
	return d;
}

static const char *
dstr(const cJSON *d, const char *key)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(d, key);

	assert_true(cJSON_IsString(f));
	return f->valuestring;
}

static double
dnum(const cJSON *d, const char *key)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(d, key);

	assert_true(cJSON_IsNumber(f));
	return f->valuedouble;
}

static void
test_detail(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M_PRO);
	const uint8_t *png;
	size_t png_len;
	const cJSON *d;
	cJSON *j;

	(void)state;
	j = post_code(m, "/detail", "{" AUTH "}", 0, FF_HTTP_OK);
	d = detail_of(j);
	assert_string_equal(dstr(d, "status"), "ready");
	assert_string_equal(dstr(d, "name"), "Five");
	assert_string_equal(dstr(d, "ipAddr"), "192.168.1.77");
	assert_string_equal(dstr(d, "macAddr"), "88:A9:A7:9C:42:07");
	assert_string_equal(dstr(d, "measure"), "220X220X220");
	assert_string_equal(dstr(d, "lightStatus"), "open");
	assert_string_equal(dstr(d, "printFileName"), "");
	assert_string_equal(dstr(d, "printFileThumbUrl"), "");
	assert_int_equal(ff_http_get_thum(m, 0, &png, &png_len), -1);
	assert_true(dnum(d, "pid") == 0x24);
	assert_true(dnum(d, "rightTemp") == 25);
	assert_true(dnum(d, "platTemp") == 25);
	assert_true(dnum(d, "chamberTemp") == 25);
	assert_true(dnum(d, "printProgress") == 0);
	assert_true(dnum(d, "targetPrintLayer") == 0);
	cJSON_Delete(j);

	/* Temperatures are rounded to tenths. */
	ff_model_set_target(m, FF_HEATER_NOZZLE, 220, 0);
	j = post_code(m, "/detail", "{" AUTH "}", 15000, FF_HTTP_OK);
	d = detail_of(j);
	/* 25 + 195 (1 - 1/e) = 148.26 */
	assert_true(dnum(d, "rightTemp") == 148.3);
	assert_true(dnum(d, "rightTargetTemp") == 220);
	cJSON_Delete(j);
	ff_model_free(m);
}

static const struct control_case {
	const char	*name;
	const char	*payload;
	int		 code;
	const char	*key;		/* a /detail field then */
	const char	*str;		/* its string, or NULL */
	double		 num;		/* else its number */
} control_cases[] = {
	{ "light off", "{\"cmd\":\"lightControl_cmd\","
	  "\"args\":{\"status\":\"close\"}}", FF_HTTP_OK,
	  "lightStatus", "close", 0 },
	{ "light on", "{\"cmd\":\"lightControl_cmd\","
	  "\"args\":{\"status\":\"open\"}}", FF_HTTP_OK,
	  "lightStatus", "open", 0 },
	{ "light bad", "{\"cmd\":\"lightControl_cmd\","
	  "\"args\":{\"status\":\"dim\"}}", FF_HTTP_BAD,
	  "lightStatus", "open", 0 },
	{ "fans and speed", "{\"cmd\":\"printerCtl_cmd\",\"args\":"
	  "{\"zAxisCompensation\":0.05,\"speed\":110,\"chamberFan\":30,"
	  "\"coolingFan\":80}}", FF_HTTP_OK, "coolingFanSpeed", NULL, 80 },
	{ "z offset kept", "{\"cmd\":\"printerCtl_cmd\",\"args\":"
	  "{\"chamberFan\":35}}", FF_HTTP_OK, "zAxisCompensation", NULL,
	  0.05 },
	{ "chamber fan", "{\"cmd\":\"printerCtl_cmd\",\"args\":"
	  "{\"chamberFan\":35}}", FF_HTTP_OK, "chamberFanSpeed", NULL, 35 },
	{ "printer nothing", "{\"cmd\":\"printerCtl_cmd\",\"args\":{}}",
	  FF_HTTP_BAD, "chamberFanSpeed", NULL, 35 },
	{ "circulation", "{\"cmd\":\"circulateCtl_cmd\",\"args\":"
	  "{\"internal\":\"open\",\"external\":\"close\"}}", FF_HTTP_OK,
	  "internalFanStatus", "open", 0 },
	{ "exhaust", "{\"cmd\":\"circulateCtl_cmd\",\"args\":"
	  "{\"external\":\"open\"}}", FF_HTTP_OK,
	  "externalFanStatus", "open", 0 },
	/* [FFAPI] sends all four, -200 where unset. */
	{ "temperature", "{\"cmd\":\"temperatureCtl_cmd\",\"args\":"
	  "{\"rightNozzle\":200,\"leftNozzle\":-200,\"platform\":55,"
	  "\"chamber\":-200}}", FF_HTTP_OK, "platTargetTemp", NULL, 55 },
	{ "temperature nozzle set", "{\"cmd\":\"temperatureCtl_cmd\","
	  "\"args\":{\"rightNozzle\":-200,\"leftNozzle\":-200,"
	  "\"platform\":60,\"chamber\":-200}}", FF_HTTP_OK,
	  "rightTargetTemp", NULL, 200 },
	{ "temperature -200 unchanged", "{\"cmd\":\"temperatureCtl_cmd\","
	  "\"args\":{\"rightNozzle\":-200,\"leftNozzle\":-200,"
	  "\"platform\":-200,\"chamber\":-200}}", FF_HTTP_OK,
	  "platTargetTemp", NULL, 60 },
	{ "temperature -100 off", "{\"cmd\":\"temperatureCtl_cmd\","
	  "\"args\":{\"rightNozzle\":-100,\"leftNozzle\":-200,"
	  "\"platform\":-200,\"chamber\":-200}}", FF_HTTP_OK,
	  "rightTargetTemp", NULL, 0 },
	{ "temperature nothing", "{\"cmd\":\"temperatureCtl_cmd\","
	  "\"args\":{\"x\":1}}", FF_HTTP_BAD, "platTargetTemp", NULL, 60 },
	{ "camera on", "{\"cmd\":\"streamCtrl_cmd\",\"args\":"
	  "{\"action\":\"open\"}}", FF_HTTP_OK, "cameraStreamUrl",
	  "http://192.168.1.77:8080/?action=stream", 0 },
	{ "camera off", "{\"cmd\":\"streamCtrl_cmd\",\"args\":"
	  "{\"action\":\"close\"}}", FF_HTTP_OK, "cameraStreamUrl", "", 0 },
	{ "camera bad", "{\"cmd\":\"streamCtrl_cmd\",\"args\":"
	  "{\"action\":\"zoom\"}}", FF_HTTP_BAD, "cameraStreamUrl", "", 0 },
	{ "shutdown timer", "{\"cmd\":\"delayClose_cmd\",\"args\":"
	  "{\"automaticShutdown\":true,\"shutdownAfterTime\":30}}",
	  FF_HTTP_OK, "autoShutdown", "open", 0 },
	{ "shutdown minutes", "{\"cmd\":\"delayClose_cmd\",\"args\":"
	  "{\"automaticShutdown\":\"close\"}}", FF_HTTP_OK,
	  "autoShutdownTime", NULL, 30 },
	/* A cast of 1e10 to int is undefined: clamped first (a day). */
	{ "shutdown minutes huge", "{\"cmd\":\"delayClose_cmd\",\"args\":"
	  "{\"automaticShutdown\":\"open\",\"shutdownAfterTime\":1e10}}",
	  FF_HTTP_OK, "autoShutdownTime", NULL, 1440 },
	{ "shutdown minutes negative", "{\"cmd\":\"delayClose_cmd\","
	  "\"args\":{\"shutdownAfterTime\":-1e10}}",
	  FF_HTTP_OK, "autoShutdownTime", NULL, 0 },
	{ "rename", "{\"cmd\":\"reName_cmd\",\"args\":"
	  "{\"name\":\"Shop 5M\"}}", FF_HTTP_OK, "name", "Shop 5M", 0 },
	{ "rename bad", "{\"cmd\":\"reName_cmd\",\"args\":"
	  "{\"name\":\"\"}}", FF_HTTP_BAD, "name", "Shop 5M", 0 },
	{ "calibration", "{\"cmd\":\"calibration_cmd\",\"args\":"
	  "{\"levelingDetection\":false,\"vibrationCompensation\":false}}",
	  FF_HTTP_OK, "status", "ready", 0 },
	{ "pause without a job", "{\"cmd\":\"jobCtl_cmd\",\"args\":"
	  "{\"jobID\":\"\",\"action\":\"pause\"}}", FF_HTTP_BUSY,
	  "status", "ready", 0 },
	{ "job bad action", "{\"cmd\":\"jobCtl_cmd\",\"args\":"
	  "{\"action\":\"explode\"}}", FF_HTTP_BAD, "status", "ready", 0 },
	{ "clear platform idle", "{\"cmd\":\"stateCtrl_cmd\",\"args\":"
	  "{\"action\":\"setClearPlatform\"}}", FF_HTTP_OK,
	  "status", "ready", 0 },
	{ "state bad action", "{\"cmd\":\"stateCtrl_cmd\",\"args\":"
	  "{\"action\":\"x\"}}", FF_HTTP_BAD, "status", "ready", 0 },
	{ "unknown command", "{\"cmd\":\"selfDestruct_cmd\",\"args\":{}}",
	  FF_HTTP_BAD, "status", "ready", 0 },
	{ "no command", "{\"args\":{}}", FF_HTTP_BAD, "status", "ready", 0 },
	{ "no args", "{\"cmd\":\"lightControl_cmd\"}", FF_HTTP_BAD,
	  "lightStatus", "open", 0 },
	/* Out of int's range: clamped as doubles, never cast first. */
	{ "speed 1e10", "{\"cmd\":\"printerCtl_cmd\",\"args\":"
	  "{\"speed\":1e10}}", FF_HTTP_OK, "printSpeedAdjust", NULL, 200 },
	{ "speed -1e10", "{\"cmd\":\"printerCtl_cmd\",\"args\":"
	  "{\"speed\":-1e10}}", FF_HTTP_OK, "printSpeedAdjust", NULL, 10 },
	{ "chamber fan 1e10", "{\"cmd\":\"printerCtl_cmd\",\"args\":"
	  "{\"chamberFan\":1e10}}", FF_HTTP_OK, "chamberFanSpeed", NULL,
	  100 },
	{ "cooling fan 1e10", "{\"cmd\":\"printerCtl_cmd\",\"args\":"
	  "{\"coolingFan\":1e10}}", FF_HTTP_OK, "coolingFanSpeed", NULL,
	  100 },
	{ "z offset 1e300", "{\"cmd\":\"printerCtl_cmd\",\"args\":"
	  "{\"zAxisCompensation\":1e300}}", FF_HTTP_OK,
	  "zAxisCompensation", NULL, 5 },
	/* cJSON reads 1e999 as infinity: not a number to act on. */
	{ "speed infinite", "{\"cmd\":\"printerCtl_cmd\",\"args\":"
	  "{\"speed\":1e999}}", FF_HTTP_BAD, "printSpeedAdjust", NULL, 10 },
};

static void
test_control(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M_PRO);
	char body[1024];
	const cJSON *d;
	cJSON *j;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(control_cases) / sizeof(control_cases[0]);
	    i++) {
		const struct control_case *c = &control_cases[i];
		cJSON *r;

		snprintf(body, sizeof(body), "{" AUTH ",\"payload\":%s}",
		    c->payload);
		r = post(m, "/control", body, 0, 200);
		if (code_of(r) != c->code)
			fail_msg("%s: code %d, want %d", c->name, code_of(r),
			    c->code);
		cJSON_Delete(r);
		j = post_code(m, "/detail", "{" AUTH "}", 0, FF_HTTP_OK);
		d = detail_of(j);
		if (c->str != NULL) {
			if (strcmp(dstr(d, c->key), c->str) != 0)
				fail_msg("%s: %s is %s, want %s", c->name,
				    c->key, dstr(d, c->key), c->str);
		} else if (dnum(d, c->key) != c->num)
			fail_msg("%s: %s is %g, want %g", c->name, c->key,
			    dnum(d, c->key), c->num);
		cJSON_Delete(j);
	}
	ff_model_free(m);
}

/* The base64 s decodes to the PNG ff_model_thumb_png() gives M662. */
static void
expect_tcp_png(const char *s)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char out[256];
	const uint8_t *png;
	size_t n = 0, len;
	unsigned bits = 0, v = 0;
	const char *p;

	for (; *s != '\0' && *s != '='; s++) {
		assert_non_null(p = strchr(abc, *s));
		v = v << 6 | (unsigned)(p - abc);
		if ((bits += 6) >= 8) {
			bits -= 8;
			assert_true(n < sizeof(out));
			out[n++] = (unsigned char)(v >> bits);
		}
	}
	png = ff_model_thumb_png(&len);
	assert_int_equal(n, len);
	assert_memory_equal(out, png, len);
}

static void
test_gcode_list_and_thumb(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M);
	const cJSON *list, *img;
	cJSON *j;

	(void)state;
	assert_int_equal(ff_model_file_add(m, "b.3mf", 5), 0);
	j = post_code(m, "/gcodeList", "{" AUTH "}", 0, FF_HTTP_OK);
	list = cJSON_GetObjectItemCaseSensitive(j, "gcodeList");
	assert_true(cJSON_IsArray(list));
	assert_int_equal(cJSON_GetArraySize(list), 2);
	assert_string_equal(cJSON_GetArrayItem(list, 0)->valuestring,
	    "20mm_cube.gcode");
	assert_string_equal(cJSON_GetArrayItem(list, 1)->valuestring,
	    "b.3mf");
	cJSON_Delete(j);

	j = post_code(m, "/gcodeThumb", "{" AUTH ",\"fileName\":\"b.3mf\"}",
	    0, FF_HTTP_OK);
	img = cJSON_GetObjectItemCaseSensitive(j, "imageData");
	assert_true(cJSON_IsString(img));
	/* Base64 of a PNG signature; the PNG M662 sends over TCP. */
	assert_memory_equal(img->valuestring, "iVBORw0KGgo", 11);
	expect_tcp_png(img->valuestring);
	cJSON_Delete(j);
	post_expect(m, "/gcodeThumb", "{" AUTH ",\"fileName\":\"c.3mf\"}", 0,
	    FF_HTTP_BAD);
	post_expect(m, "/gcodeThumb", "{" AUTH "}", 0, FF_HTTP_BAD);
	ff_model_free(m);
}

struct capture {
	char	 buf[4096];
	size_t	 len;
};

static void
cap_emit(void *arg, const void *buf, size_t len)
{
	struct capture *c = arg;

	assert_true(c->len + len < sizeof(c->buf));
	memcpy(c->buf + c->len, buf, len);
	c->len += len;
	c->buf[c->len] = '\0';
}

static void
tcp(struct ff_model *m, int64_t t, const char *in, const char *want)
{
	struct capture c = { .len = 0 };
	struct ff_proto p;

	ff_proto_init(&p);
	assert_int_equal(ff_proto_feed(&p, m, in, strlen(in), t, cap_emit, &c),
	    0);
	assert_string_equal(c.buf, want);
}

static void
detail_num(struct ff_model *m, const char *key, double want)
{
	cJSON *j = post_code(m, "/detail", "{" AUTH "}", 0, FF_HTTP_OK);

	if (dnum(detail_of(j), key) != want)
		fail_msg("/detail %s is %g, want %g", key,
		    dnum(detail_of(j), key), want);
	cJSON_Delete(j);
}

/* Temperatures set over HTTP show in M105; a rename in M115. */
static void
test_control_over_tcp(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M_PRO);

	(void)state;
	post_expect(m, "/control", "{" AUTH ",\"payload\":{\"cmd\":"
	    "\"temperatureCtl_cmd\",\"args\":{\"rightNozzle\":210,"
	    "\"leftNozzle\":-200,\"platform\":-200,\"chamber\":-200}}}", 0,
	    FF_HTTP_OK);
	post_expect(m, "/control", "{" AUTH ",\"payload\":{\"cmd\":"
	    "\"temperatureCtl_cmd\",\"args\":{\"rightNozzle\":-200,"
	    "\"leftNozzle\":-200,\"platform\":65,\"chamber\":-200}}}", 0,
	    FF_HTTP_OK);
	tcp(m, 0, "~M105\r\n", "CMD M105 Received.\r\n"
	    "T0:25.0/210.0 T1:0.0/0.0 B:25.0/65.0\r\nok\r\n");
	/* And the other way: a fan set over TCP shows in /detail. */
	tcp(m, 0, "~M106 S128\r\n", "CMD M106 Received.\r\nok\r\n");
	detail_num(m, "coolingFanSpeed", 50);
	tcp(m, 0, "~M107\r\n", "CMD M107 Received.\r\nok\r\n");
	detail_num(m, "coolingFanSpeed", 0);
	post_expect(m, "/control", "{" AUTH ",\"payload\":{\"cmd\":"
	    "\"reName_cmd\",\"args\":{\"name\":\"Bench\"}}}", 0,
	    FF_HTTP_OK);
	tcp(m, 0, "~M115\r\n", "CMD M115 Received.\r\n"
	    "Machine Type: Flashforge Adventurer 5M Pro\r\n"
	    "Machine Name: Bench\r\nFirmware: v2.7.6\r\nSN: " SERIAL "\r\n"
	    "X: 220 Y: 220 Z: 220\r\nTool Count: 1\r\n"
	    "Mac Address:88:A9:A7:9C:42:07\n \r\nok\r\n");
	ff_model_free(m);
}

/* A print started over HTTP, followed over TCP and HTTP. */
static void
test_print_gcode(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M_PRO);
	const uint8_t *png;
	size_t png_len;
	const cJSON *d;
	cJSON *j;

	(void)state;
	/* As /uploadGcode leaves it: 5230000 bytes, 523 layers, 2615 s. */
	assert_int_equal(ff_model_file_add(m, "x.gx", 5230000), 0);
	post_expect(m, "/printGcode", "{" AUTH ",\"fileName\":\"nope.gx\","
	    "\"levelingBeforePrint\":true}", 0, FF_HTTP_BAD);
	post_expect(m, "/printGcode", "{" AUTH "}", 0, FF_HTTP_BAD);
	post_expect(m, "/printGcode", "{" AUTH ",\"fileName\":\"x.gx\","
	    "\"levelingBeforePrint\":true}", 0, FF_HTTP_OK);
	/* Busy now. */
	post_expect(m, "/printGcode", "{" AUTH ",\"fileName\":\"x.gx\"}", 1,
	    FF_HTTP_BUSY);

	tcp(m, 470700, "~M27\r\n", "CMD M27 Received.\r\n"
	    "SD printing byte 18/100\nLayer: 95/523\r\nok\r\n");
	tcp(m, 470700, "~M119\r\n", "CMD M119 Received.\r\n"
	    "Endstop: X-max: 110 Y-max: 110 Z-min: 0\r\n"
	    "MachineStatus: BUILDING_FROM_SD\r\nMoveMode: MOVING\r\n"
	    "Status: S:1 L:0 J:0 F:0\r\nLED: 1\r\nCurrentFile: x.gx\r\nok\r\n");
	j = post_code(m, "/detail", "{" AUTH "}", 470700, FF_HTTP_OK);
	d = detail_of(j);
	assert_string_equal(dstr(d, "status"), "printing");
	assert_string_equal(dstr(d, "printFileName"), "x.gx");
	assert_string_equal(dstr(d, "printFileThumbUrl"),
	    "http://192.168.1.77:8898/getThum");
	assert_int_equal(ff_http_get_thum(m, 470700, &png, &png_len), 0);
	assert_true(png_len > 8 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
	assert_true(dnum(d, "printProgress") == 0.18);
	assert_true(dnum(d, "printLayer") == 95);
	assert_true(dnum(d, "targetPrintLayer") == 523);
	assert_true(dnum(d, "printDuration") == 470);
	assert_true(dnum(d, "estimatedTime") == 2615 - 470 - 1);
	assert_true(dnum(d, "rightTargetTemp") == 220);
	assert_true(dnum(d, "platTargetTemp") == 50);
	cJSON_Delete(j);

	/* Paused over HTTP, seen over TCP. */
	post_expect(m, "/control", "{" AUTH ",\"payload\":{\"cmd\":"
	    "\"jobCtl_cmd\",\"args\":{\"jobID\":\"\",\"action\":\"pause\"}}}",
	    470700, FF_HTTP_OK);
	tcp(m, 500000, "~M119\r\n", "CMD M119 Received.\r\n"
	    "Endstop: X-max: 110 Y-max: 110 Z-min: 0\r\n"
	    "MachineStatus: PAUSED\r\nMoveMode: PAUSED\r\n"
	    "Status: S:1 L:0 J:0 F:0\r\nLED: 1\r\nCurrentFile: x.gx\r\nok\r\n");
	j = post_code(m, "/detail", "{" AUTH "}", 500000, FF_HTTP_OK);
	assert_string_equal(dstr(detail_of(j), "status"), "paused");
	cJSON_Delete(j);
	/* Resumed over TCP, it ends; cleared over HTTP. */
	tcp(m, 500000, "~M24\r\n", "CMD M24 Received.\r\nok\r\n");
	j = post_code(m, "/detail", "{" AUTH "}", 10000000, FF_HTTP_OK);
	d = detail_of(j);
	assert_string_equal(dstr(d, "status"), "completed");
	assert_true(dnum(d, "printProgress") == 1);
	assert_true(dnum(d, "cumulativePrintTime") == 2615000 / 60000);
	cJSON_Delete(j);
	tcp(m, 10000000, "~M27\r\n", "CMD M27 Received.\r\n"
	    "SD printing byte 100/100\r\nok\r\n");
	post_expect(m, "/control", "{" AUTH ",\"payload\":{\"cmd\":"
	    "\"stateCtrl_cmd\",\"args\":{\"action\":\"setClearPlatform\"}}}",
	    10000000, FF_HTTP_OK);
	j = post_code(m, "/detail", "{" AUTH "}", 10000000, FF_HTTP_OK);
	assert_string_equal(dstr(detail_of(j), "status"), "ready");
	cJSON_Delete(j);
	tcp(m, 10000000, "~M27\r\n", "CMD M27 Received.\r\n"
	    "SD printing byte 0/100\r\nok\r\n");
	ff_model_free(m);
}

/* Cancel over HTTP. */
static void
test_cancel(void **state)
{
	struct ff_model *m = new_model(FF_ADVENTURER5M);
	cJSON *j;

	(void)state;
	assert_int_equal(ff_model_print_file(m, "20mm_cube.gcode", 0), 0);
	post_expect(m, "/control", "{" AUTH ",\"payload\":{\"cmd\":"
	    "\"jobCtl_cmd\",\"args\":{\"action\":\"continue\"}}}", 10,
	    FF_HTTP_BUSY);
	post_expect(m, "/control", "{" AUTH ",\"payload\":{\"cmd\":"
	    "\"stateCtrl_cmd\",\"args\":{\"action\":\"setClearPlatform\"}}}",
	    10, FF_HTTP_BUSY);
	post_expect(m, "/control", "{" AUTH ",\"payload\":{\"cmd\":"
	    "\"jobCtl_cmd\",\"args\":{\"action\":\"cancel\"}}}", 20,
	    FF_HTTP_OK);
	j = post_code(m, "/detail", "{" AUTH "}", 20, FF_HTTP_OK);
	assert_string_equal(dstr(detail_of(j), "status"), "ready");
	assert_true(dnum(detail_of(j), "rightTargetTemp") == 0);
	cJSON_Delete(j);
	tcp(m, 20, "~M119\r\n", "CMD M119 Received.\r\n"
	    "Endstop: X-max: 110 Y-max: 110 Z-min: 0\r\n"
	    "MachineStatus: READY\r\nMoveMode: READY\r\n"
	    "Status: S:1 L:0 J:0 F:0\r\nLED: 1\r\nCurrentFile: \r\nok\r\n");
	ff_model_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_product),
		cmocka_unit_test(test_detail),
		cmocka_unit_test(test_control),
		cmocka_unit_test(test_control_over_tcp),
		cmocka_unit_test(test_gcode_list_and_thumb),
		cmocka_unit_test(test_print_gcode),
		cmocka_unit_test(test_cancel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
