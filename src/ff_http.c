/*
 * ff_http: see ff_http.h.
 *
 * Every answer starts {"code":..,"message":..}; a handler appends its
 * payload and, on failure, rewrites the two with ff_http_fail().  Every
 * value comes from one ff_model_status() snapshot, the one M27, M105,
 * M114 and M119 format over TCP.
 *
 * Where FLASHFORGE.md is silent:
 * - /detail "status": "printing", "paused", "busy" (homing), "completed"
 *   (a finished job, until stateCtrl_cmd setClearPlatform or the next
 *   print), else "ready".  printDuration and estimatedTime are seconds,
 *   cumulativePrintTime minutes, cumulativeFilament metres.
 *   cameraStreamUrl is http://<ip>:<camera_port>/?action=stream while the
 *   camera is on (streamCtrl_cmd), else "".  printFileThumbUrl is
 *   http://<ip>:<http_port>/getThum while there is a job's file (the
 *   facts' URL), else ""; GET /getThum answers that file's PNG (every
 *   file has the same one), 404 when there is no job.
 *   autoShutdown and autoShutdownTime (minutes) show delayClose_cmd.
 * - /control args: lightControl_cmd {"status":"open"|"close"};
 *   printerCtl_cmd any of {"zAxisCompensation","speed","chamberFan",
 *   "coolingFan"} (numbers); circulateCtl_cmd {"internal","external":
 *   "open"|"close"}; jobCtl_cmd {"action":"pause"|"continue"|"cancel"};
 *   stateCtrl_cmd {"action":"setClearPlatform"}; temperatureCtl_cmd
 *   {"rightNozzle","leftNozzle","platform","chamber"} (°C; -200 leaves a
 *   heater as it is, -100 switches it off; a model without the heater
 *   ignores it); streamCtrl_cmd {"action":"open"|"close"}; delayClose_cmd
 *   {"automaticShutdown": "open"|"close"|true|false|1|0,
 *   "shutdownAfterTime": minutes}; reName_cmd {"name"}; calibration_cmd
 *   (acknowledged: levelling takes no time here).  An unknown command
 *   gets code 1 ("Error", the old http-api.md's code).  FLASHFORGE.md
 *   documents no code for an unknown command on the 5M/5M Pro: its only
 *   list is that old, unverified http-api.md (1 Error, 2 Invalid
 *   parameter, 3 Unauthorized, 4 Not found, 5 Busy), where 1 is the
 *   general failure, and the one firmware known to answer one (Creator 5,
 *   not emulated) acks it with 0, which would tell a client a command it
 *   sent took effect when it did not.
 * - /gcodeList: {"gcodeList":[names, in the order they arrived]}.
 * - /gcodeThumb {"fileName"}: {"imageData": base64 PNG}, one small grey
 *   placeholder for every file, the PNG M662 sends (ff_model_thumb_png()).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ff_http.h"
#include "ff_model.h"
#include "log.h"

/* A 4x4 grey PNG: every file's thumbnail. */
#define FF_HTTP_THUMB	"iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAADkl" \
			"EQVR42mNoQAIMxHEAcFIYAZ6uvm8AAAAASUVORK5CYII="

struct ff_http_req {
	struct ff_model		*m;
	const cJSON		*body;	/* the request, an object */
	cJSON			*rep;	/* the answer */
	int64_t			 now;	/* ms */
	int			 oom;
};

typedef void (*ff_http_fn)(struct ff_http_req *);

int
ff_http_get_thum(struct ff_model *m, int64_t now_ms, const uint8_t **png,
    size_t *len)
{
	struct ff_status st;

	if (!ff_model_info(m)->http_api)
		return -1;
	ff_model_status(m, now_ms, &st);
	if (st.file[0] == '\0')
		return -1;
	*png = ff_model_thumb_png(len);
	return 0;
}

int
ff_http_auth(const struct ff_model *m, const char *serial,
    const char *check_code)
{
	if (serial == NULL || check_code == NULL)
		return 0;
	return strcmp(serial, ff_model_serial(m)) == 0 &&
	    strcmp(check_code, ff_model_check_code(m)) == 0;
}

/* --- building answers ------------------------------------------------ */

static void
ff_http_num(struct ff_http_req *r, cJSON *obj, const char *key, double v)
{
	if (cJSON_AddNumberToObject(obj, key, v) == NULL)
		r->oom = 1;
}

static void
ff_http_str(struct ff_http_req *r, cJSON *obj, const char *key,
    const char *v)
{
	if (cJSON_AddStringToObject(obj, key, v) == NULL)
		r->oom = 1;
}

static cJSON *
ff_http_obj(struct ff_http_req *r, cJSON *obj, const char *key)
{
	cJSON *o;

	if ((o = cJSON_AddObjectToObject(obj, key)) == NULL)
		r->oom = 1;
	return o;
}

static void
ff_http_fail(struct ff_http_req *r, int code, const char *message)
{
	cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(r->rep, "code"),
	    code);
	if (cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(r->rep,
	    "message"), message) == NULL)
		r->oom = 1;
}

/* Rounded to decimals places: temperatures read 220.3, not 220.2999. */
static double
ff_http_round(double v, int decimals)
{
	double k = pow(10, decimals);

	return round(v * k) / k;
}

/* --- reading requests ------------------------------------------------ */

static const char *
ff_http_get_str(const cJSON *obj, const char *key)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(j) ? j->valuestring : NULL;
}

/* 1 and *v when obj has a number at key. */
static int
ff_http_get_num(const cJSON *obj, const char *key, double *v)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
		return 0;
	*v = j->valuedouble;
	return 1;
}

/* "open" 1, "close" 0, else -1. */
static int
ff_http_get_switch(const cJSON *obj, const char *key)
{
	const char *s = ff_http_get_str(obj, key);

	if (s == NULL)
		return -1;
	if (strcmp(s, "open") == 0)
		return 1;
	return strcmp(s, "close") == 0 ? 0 : -1;
}

/* --- endpoints ------------------------------------------------------- */

static void
ff_http_product(struct ff_http_req *r)
{
	const struct ff_info *fi = ff_model_info(r->m);
	cJSON *p;

	if ((p = ff_http_obj(r, r->rep, "product")) == NULL)
		return;
	ff_http_num(r, p, "chamberTempCtrlState", fi->chamber_ctl);
	ff_http_num(r, p, "externalFanCtrlState", fi->external_fan_ctl);
	ff_http_num(r, p, "internalFanCtrlState", fi->internal_fan_ctl);
	ff_http_num(r, p, "lightCtrlState", fi->light_ctl);
	ff_http_num(r, p, "nozzleTempCtrlState", fi->nozzle_ctl);
	ff_http_num(r, p, "platformTempCtrlState", fi->platform_ctl);
}

static const char *
ff_http_status_name(const struct ff_status *st)
{
	switch (st->job) {
	case FF_JOB_PRINTING:
		return "printing";
	case FF_JOB_PAUSED:
		return "paused";
	case FF_JOB_DONE:
		return "completed";
	case FF_JOB_NONE:
		break;
	}
	return st->machine == FF_MACHINE_BUSY ? "busy" : "ready";
}

static const char *
ff_http_open(int on)
{
	return on ? "open" : "close";
}

static void
ff_http_detail(struct ff_http_req *r)
{
	const struct ff_info *fi = ff_model_info(r->m);
	struct ff_status st;
	char measure[64], url[128];
	cJSON *d;

	ff_model_status(r->m, r->now, &st);
	if ((d = ff_http_obj(r, r->rep, "detail")) == NULL)
		return;
	snprintf(measure, sizeof(measure), "%uX%uX%u", fi->dims[0],
	    fi->dims[1], fi->dims[2]);
	ff_http_str(r, d, "autoShutdown", ff_http_open(st.auto_shutdown));
	ff_http_num(r, d, "autoShutdownTime", st.shutdown_min);
	if (st.camera && ff_model_camera_port(r->m) != 0) {
		snprintf(url, sizeof(url), "http://%s:%u/?action=stream",
		    ff_model_ip(r->m), (unsigned)ff_model_camera_port(r->m));
		ff_http_str(r, d, "cameraStreamUrl", url);
	} else
		ff_http_str(r, d, "cameraStreamUrl", "");
	ff_http_num(r, d, "chamberFanSpeed", st.chamber_fan);
	ff_http_num(r, d, "chamberTemp", ff_http_round(st.chamber, 1));
	ff_http_num(r, d, "coolingFanSpeed", st.cooling_fan);
	ff_http_num(r, d, "cumulativeFilament",
	    ff_http_round(st.total_filament_mm / 1000, 2));
	ff_http_num(r, d, "cumulativePrintTime",
	    (double)(st.total_print_ms / 60000));
	ff_http_str(r, d, "doorStatus", "close");
	ff_http_str(r, d, "errorCode", "");
	ff_http_num(r, d, "estimatedTime", (double)(st.remaining_ms / 1000));
	ff_http_str(r, d, "externalFanStatus", ff_http_open(st.external_fan));
	ff_http_str(r, d, "firmwareVersion", fi->firmware);
	ff_http_str(r, d, "internalFanStatus", ff_http_open(st.internal_fan));
	ff_http_str(r, d, "ipAddr", ff_model_ip(r->m));
	ff_http_str(r, d, "lightStatus", ff_http_open(st.led));
	ff_http_str(r, d, "macAddr", fi->mac != NULL ? fi->mac : "");
	ff_http_str(r, d, "measure", measure);
	ff_http_str(r, d, "name", ff_model_name(r->m));
	ff_http_num(r, d, "nozzleCnt", fi->tool_count);
	ff_http_num(r, d, "pid", fi->pid);
	ff_http_num(r, d, "platTargetTemp", ff_http_round(st.bed_target, 1));
	ff_http_num(r, d, "platTemp", ff_http_round(st.bed, 1));
	ff_http_num(r, d, "printDuration", (double)(st.elapsed_ms / 1000));
	ff_http_str(r, d, "printFileName", st.file);
	if (st.file[0] != '\0') {
		snprintf(url, sizeof(url), "http://%s:%u" FF_HTTP_THUM_PATH,
		    ff_model_ip(r->m), (unsigned)ff_model_http_port(r->m));
		ff_http_str(r, d, "printFileThumbUrl", url);
	} else
		ff_http_str(r, d, "printFileThumbUrl", "");
	ff_http_num(r, d, "printLayer", st.layer);
	ff_http_num(r, d, "printProgress", ff_http_round(st.progress, 4));
	ff_http_num(r, d, "printSpeedAdjust", st.speed_pct);
	ff_http_num(r, d, "rightTargetTemp",
	    ff_http_round(st.nozzle_target, 1));
	ff_http_num(r, d, "rightTemp", ff_http_round(st.nozzle, 1));
	ff_http_str(r, d, "status", ff_http_status_name(&st));
	ff_http_num(r, d, "targetPrintLayer", st.layers);
	ff_http_num(r, d, "tvoc", 0);
	ff_http_num(r, d, "zAxisCompensation", ff_http_round(st.z_comp, 3));
}

static void
ff_http_ctl_light(struct ff_http_req *r, const cJSON *args)
{
	int on = ff_http_get_switch(args, "status");

	if (on == -1) {
		ff_http_fail(r, FF_HTTP_BAD, "Invalid status");
		return;
	}
	ff_model_set_led(r->m, on, r->now);
}

/* A client's number as an int: clamped while still a double, since a
 * cast of 1e10 is undefined (ff_http_get_num() turned NaN away). */
static int
ff_http_int(double v)
{
	return (int)(v < -1e6 ? -1e6 : v > 1e6 ? 1e6 : v);
}

static void
ff_http_ctl_printer(struct ff_http_req *r, const cJSON *args)
{
	double v;
	int any = 0;

	if (ff_http_get_num(args, "zAxisCompensation", &v)) {
		ff_model_set_zcomp(r->m, v);
		any = 1;
	}
	if (ff_http_get_num(args, "speed", &v)) {
		ff_model_set_speed(r->m, ff_http_int(v));
		any = 1;
	}
	if (ff_http_get_num(args, "chamberFan", &v)) {
		ff_model_set_fan(r->m, FF_FAN_CHAMBER, ff_http_int(v));
		any = 1;
	}
	if (ff_http_get_num(args, "coolingFan", &v)) {
		ff_model_set_fan(r->m, FF_FAN_COOLING, ff_http_int(v));
		any = 1;
	}
	if (!any)
		ff_http_fail(r, FF_HTTP_BAD, "No setting given");
}

static void
ff_http_ctl_circulate(struct ff_http_req *r, const cJSON *args)
{
	int in = ff_http_get_switch(args, "internal");
	int ex = ff_http_get_switch(args, "external");

	if (in == -1 && ex == -1) {
		ff_http_fail(r, FF_HTTP_BAD, "No fan given");
		return;
	}
	if (in != -1)
		ff_model_set_fan(r->m, FF_FAN_INTERNAL, in);
	if (ex != -1)
		ff_model_set_fan(r->m, FF_FAN_EXTERNAL, ex);
}

static void
ff_http_ctl_job(struct ff_http_req *r, const cJSON *args)
{
	const char *a = ff_http_get_str(args, "action");
	int rc;

	if (a != NULL && strcmp(a, "pause") == 0)
		rc = ff_model_pause(r->m, r->now);
	else if (a != NULL && strcmp(a, "continue") == 0)
		rc = ff_model_resume(r->m, r->now);
	else if (a != NULL && strcmp(a, "cancel") == 0)
		rc = ff_model_cancel(r->m, r->now);
	else {
		ff_http_fail(r, FF_HTTP_BAD, "Invalid action");
		return;
	}
	if (rc == -1)
		ff_http_fail(r, FF_HTTP_BUSY, "Printer busy");
}

static void
ff_http_ctl_state(struct ff_http_req *r, const cJSON *args)
{
	const char *a = ff_http_get_str(args, "action");

	if (a == NULL || strcmp(a, "setClearPlatform") != 0) {
		ff_http_fail(r, FF_HTTP_BAD, "Invalid action");
		return;
	}
	if (ff_model_clear_platform(r->m, r->now) == -1)
		ff_http_fail(r, FF_HTTP_BUSY, "Printer busy");
}

/* One heater's argument: absent or -200 leaves it, -100 switches it off. */
static int
ff_http_temp_arg(const cJSON *args, const char *key, double *v)
{
	if (!ff_http_get_num(args, key, v) || *v == -200)
		return 0;
	if (*v == -100)
		*v = 0;
	return 1;
}

static void
ff_http_ctl_temp(struct ff_http_req *r, const cJSON *args)
{
	static const char *const keys[] = {
		"rightNozzle", "leftNozzle", "platform", "chamber",
	};
	double v;
	size_t i;
	int any = 0;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		any |= cJSON_HasObjectItem(args, keys[i]);
	if (!any) {
		ff_http_fail(r, FF_HTTP_BAD, "No temperature given");
		return;
	}
	if (ff_http_temp_arg(args, "rightNozzle", &v))
		ff_model_set_target(r->m, FF_HEATER_NOZZLE, v, r->now);
	if (ff_http_temp_arg(args, "platform", &v))
		ff_model_set_target(r->m, FF_HEATER_BED, v, r->now);
	/* leftNozzle and chamber: one nozzle, no chamber heater here. */
}

static void
ff_http_ctl_stream(struct ff_http_req *r, const cJSON *args)
{
	const char *a = ff_http_get_str(args, "action");

	if (a == NULL || (strcmp(a, "open") != 0 && strcmp(a, "close") != 0)) {
		ff_http_fail(r, FF_HTTP_BAD, "Invalid action");
		return;
	}
	ff_model_set_camera(r->m, strcmp(a, "open") == 0);
}

/* "open"/"close", true/false or a number: 1/0; -1 when none. */
static int
ff_http_get_flag(const cJSON *obj, const char *key)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (cJSON_IsBool(j))
		return cJSON_IsTrue(j);
	if (cJSON_IsNumber(j))
		return j->valuedouble != 0;
	return ff_http_get_switch(obj, key);
}

static void
ff_http_ctl_delay(struct ff_http_req *r, const cJSON *args)
{
	struct ff_status st;
	int on = ff_http_get_flag(args, "automaticShutdown");
	double min;

	ff_model_snapshot(r->m, &st);
	if (!ff_http_get_num(args, "shutdownAfterTime", &min)) {
		if (on == -1) {
			ff_http_fail(r, FF_HTTP_BAD, "No setting given");
			return;
		}
		min = st.shutdown_min;
	}
	/* Clamp while a double (1e10 minutes would overflow the cast);
	 * ff_model_set_shutdown() bounds it to a day. */
	min = min < 0 ? 0 : min > 24 * 60 ? 24 * 60 : min;
	ff_model_set_shutdown(r->m, on == -1 ? st.auto_shutdown : on,
	    (int)min);
}

static void
ff_http_ctl_rename(struct ff_http_req *r, const cJSON *args)
{
	if (ff_model_set_name(r->m, ff_http_get_str(args, "name")) == -1) {
		log_warnx("%s: reName_cmd: refused a name", ff_model_name(r->m));
		ff_http_fail(r, FF_HTTP_BAD, "Invalid name");
	}
}

static void
ff_http_ctl_ack(struct ff_http_req *r, const cJSON *args)
{
	(void)r;
	(void)args;
}

static const struct ff_http_ctl {
	const char	*cmd;
	void		(*fn)(struct ff_http_req *, const cJSON *);
} ff_http_ctls[] = {
	{ "lightControl_cmd", ff_http_ctl_light },
	{ "printerCtl_cmd", ff_http_ctl_printer },
	{ "circulateCtl_cmd", ff_http_ctl_circulate },
	{ "jobCtl_cmd", ff_http_ctl_job },
	{ "stateCtrl_cmd", ff_http_ctl_state },
	{ "temperatureCtl_cmd", ff_http_ctl_temp },
	{ "streamCtrl_cmd", ff_http_ctl_stream },
	{ "delayClose_cmd", ff_http_ctl_delay },
	{ "reName_cmd", ff_http_ctl_rename },
	{ "calibration_cmd", ff_http_ctl_ack },
};

static void
ff_http_control(struct ff_http_req *r)
{
	const cJSON *payload, *args;
	const char *cmd;
	size_t i;

	payload = cJSON_GetObjectItemCaseSensitive(r->body, "payload");
	cmd = ff_http_get_str(payload, "cmd");
	args = cJSON_GetObjectItemCaseSensitive(payload, "args");
	if (cmd == NULL) {
		ff_http_fail(r, FF_HTTP_BAD, "No command");
		return;
	}
	for (i = 0; i < sizeof(ff_http_ctls) / sizeof(ff_http_ctls[0]); i++) {
		if (strcmp(cmd, ff_http_ctls[i].cmd) == 0) {
			ff_http_ctls[i].fn(r, args);
			return;
		}
	}
	ff_http_fail(r, FF_HTTP_BAD, "Unknown command");
}

static void
ff_http_gcode_list(struct ff_http_req *r)
{
	const char *name;
	cJSON *list, *s;
	size_t i;

	if ((list = cJSON_AddArrayToObject(r->rep, "gcodeList")) == NULL) {
		r->oom = 1;
		return;
	}
	for (i = 0; (name = ff_model_file_name(r->m, i, NULL)) != NULL; i++) {
		if ((s = cJSON_CreateString(name)) == NULL ||
		    !cJSON_AddItemToArray(list, s)) {
			cJSON_Delete(s);
			r->oom = 1;
			return;
		}
	}
}

static void
ff_http_gcode_thumb(struct ff_http_req *r)
{
	const char *name = ff_http_get_str(r->body, "fileName");

	if (name == NULL || ff_model_file_find(r->m, name, NULL) == -1) {
		ff_http_fail(r, FF_HTTP_BAD, "File not found");
		return;
	}
	ff_http_str(r, r->rep, "imageData", FF_HTTP_THUMB);
}

static void
ff_http_print_gcode(struct ff_http_req *r)
{
	const char *name = ff_http_get_str(r->body, "fileName");

	/* levelingBeforePrint is accepted and ignored: levelling takes no
	 * time here. */
	if (name == NULL || ff_model_file_find(r->m, name, NULL) == -1) {
		ff_http_fail(r, FF_HTTP_BAD, "File not found");
		return;
	}
	if (ff_model_print_file(r->m, name, r->now) == -1)
		ff_http_fail(r, FF_HTTP_BUSY, "Printer busy");
}

static const struct ff_http_route {
	const char	*path;
	ff_http_fn	 fn;
} ff_http_routes[] = {
	{ "/product", ff_http_product },
	{ "/detail", ff_http_detail },
	{ "/control", ff_http_control },
	{ "/gcodeList", ff_http_gcode_list },
	{ "/gcodeThumb", ff_http_gcode_thumb },
	{ "/printGcode", ff_http_print_gcode },
};

static const struct ff_http_route *
ff_http_route(const struct ff_model *m, const char *path)
{
	size_t i, n;

	if (path == NULL || !ff_model_info(m)->http_api)
		return NULL;
	n = strcspn(path, "?");
	for (i = 0; i < sizeof(ff_http_routes) / sizeof(ff_http_routes[0]);
	    i++)
		if (strlen(ff_http_routes[i].path) == n &&
		    strncmp(ff_http_routes[i].path, path, n) == 0)
			return &ff_http_routes[i];
	return NULL;
}

int
ff_http_handle(struct ff_model *m, const char *path, const char *body,
    size_t body_len, int64_t now_ms, char **resp, int *status)
{
	const struct ff_http_route *route;
	struct ff_http_req r;
	cJSON *req = NULL;
	int ret = -1;

	*resp = NULL;
	*status = 200;
	memset(&r, 0, sizeof(r));
	r.m = m;
	r.now = now_ms;
	if ((r.rep = cJSON_CreateObject()) == NULL)
		goto done;
	ff_http_num(&r, r.rep, "code", FF_HTTP_OK);
	ff_http_str(&r, r.rep, "message", "Success");
	if (r.oom)
		goto done;

	if ((route = ff_http_route(m, path)) == NULL) {
		*status = 404;
		ff_http_fail(&r, 404, "Not found");
	} else {
		if (body != NULL && body_len > 0)
			req = cJSON_ParseWithLength(body, body_len);
		if (!cJSON_IsObject(req) || !ff_http_auth(m,
		    ff_http_get_str(req, "serialNumber"),
		    ff_http_get_str(req, "checkCode"))) {
			log_debug("%s: %s: wrong serialNumber/checkCode",
			    ff_model_name(m), route->path);
			ff_http_fail(&r, FF_HTTP_AUTH,
			    "Serial number or check code error");
		} else {
			r.body = req;
			route->fn(&r);
		}
	}
	if (r.oom || (*resp = cJSON_PrintUnformatted(r.rep)) == NULL)
		goto done;
	ret = 0;
 done:
	if (ret == -1)
		log_warnx("no memory for an HTTP answer");
	cJSON_Delete(req);
	cJSON_Delete(r.rep);
	return ret;
}
