/*
 * sim_scenario: see sim_scenario.h.
 *
 * Scenario format.  One JSON object per line, played in order once the
 * machine's WebSocket is up.  Blank lines and lines starting with '#' are
 * comments; any line may also carry a "comment" string, ignored.  Each line
 * has exactly one verb:
 *
 *  {"send": {ACTION}, "label": "p1", "expect": "motion:completed",
 *   "events": ["motion:starting", "motion:completed"], "timeout": 10}
 *	Sends an action.  Filled in when absent: "id" (a counter from
 *	3116300), "status": "ready", "machine_serial": "S<serial>".
 *	"motion_file": NAME becomes "motion_url": "<sim>/pulse/NAME";
 *	"endpoint": true becomes a fresh presigned PUT URL on the sim.
 *	"resend": true lets an explicit "id" repeat one sent before (a
 *	repeated ready); events then count for the newest action of that id.
 *	"label" names the action for later lines.  "expect": wait (up to
 *	"timeout" seconds, default 10) for that event carrying this action's
 *	id; a different terminal event of the action ("<action_type>:
 *	completed|failed|cancelled", exactly) arriving first fails.  "events": when the terminal event arrives, the events
 *	carrying this id must be exactly this list, in order; an action with
 *	"events" that never ends fails the scenario at its end.
 *	"send" may also be an array of actions, sent as one frame joined by
 *	newlines; "label" is then an array of as many labels, and "expect" and
 *	"events" are not allowed (use "await").
 *  {"await": "print:download:completed", "label": "p1", "timeout": 10}
 *	Waits for an event of a labelled action (already received counts).
 *	Without "label": an event carrying no action_id (e.g. button:pressed);
 *	each such event satisfies one await.
 *  {"cancel": "p1", "expect": "print:cancelled", "events": [...]}
 *	Sends the labelled action again with "status": "cancelled"; "expect",
 *	"events" and "timeout" as for send ("events" replaces the list).
 *  {"raw": "text"}
 *	Sends the text as a frame, as is (hostile input).
 *  {"expect_none": "p2"}
 *	The labelled action must never get an event: checked now and on every
 *	event until the end.  Put a round trip (a settings action) after it to
 *	give a wrong answer the time to show.
 *  {"drop": true, "timeout": 30}
 *	Closes the WebSocket and waits for the machine to reconnect (which
 *	needs a fresh sign-in: ws tokens are single-use).  With
 *	"reconnect": false it goes on at once (the machine may stay away).
 *  {"send_big": 1048577, "repeat": 200}
 *	Sends one text frame of exactly that many bytes (16 to 64 MiB), a
 *	JSON object {"pad": "xx..."} that is no action; "repeat" sends that
 *	many (1 to 1000) back to back, a burst.
 *  {"expect_close": 1009, "timeout": 10}
 *	Waits for the machine to close its socket, sending a close frame
 *	with that code; the timeout counts from when the frames queued
 *	before it were written.  Frames queued after it go out on the next
 *	connection, so a send's "expect" then shows the machine came back.
 *  {"await_signin": 401, "timeout": 10}
 *	Waits for a sign-in answered with that status (200, 401 or 503);
 *	each such sign-in satisfies one await.  Checked after every HTTP
 *	request, so it holds while the machine has no socket.
 *  {"await_file": "page-open", "timeout": 60}
 *	Waits until the harness makes that file (a plain name) in
 *	--pulse-dir: a test outside the sim says when play may go on (a
 *	browser has loaded a page).  Looked for every SIM_FILE_POLL_MS.
 *  {"expire_token": true}	the next Bearer request answers 401
 *  {"fail_upload": N}		the next N uploads answer 500
 *  {"fail_pulse": N}		the next N pulse downloads answer 500
 *  {"fail_signin": N}		the next N sign-ins answer 503
 *  {"refuse_signin": N}	the next N sign-ins answer 401, as wrong
 *				credentials do (not counted against the
 *				machine: it cannot know)
 *  {"hostile_fw_version": N}	the next N /update/current answers carry
 *				a version with a newline, a forged log line
 *				and an ANSI escape (log injection)
 *  {"press_button": true}	SIGUSR1 to the machine (--machine-pid-file):
 *				the emulated button, pressed now
 *  {"config": {"EMULATOR": {"button_press_delay": 30}}}
 *	Not played: daemon settings for the harness (gf-cloud-sim
 *	--print-config), later lines overriding earlier ones.
 *  {"harness": ["--expect-log", "1:sign-in refused"]}
 *	Not played: options for tests/integration/run-scenario.sh (it reads them
 *	itself); here only checked to be an array of one-line strings.
 *
 * What the player checks in the machine's frames: sim_player.c.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "sim_scenario.h"

#define SIM_EVENT_MAX		128	/* bytes in an event name */
#define SIM_TIMEOUT_MAX		3600	/* seconds */
#define SIM_COUNT_MAX		1000	/* fail_* knobs */
#define SIM_BIG_MIN		16	/* bytes of a send_big frame */
#define SIM_BIG_MAX		(64 * 1024 * 1024)
#define SIM_REPEAT_MAX		1000	/* send_big frames in a burst */

struct sim_scenario {
	char		*name;
	struct sim_step	*steps;
	size_t		 nsteps;
	char		(*labels)[SIM_LABEL_MAX];
	size_t		 nlabels;
	size_t		 nactions;	/* sent by all steps */
	cJSON		*config;	/* section -> key -> value */
};

/* --- parsing --- */

/* The JSON value filling text[0..len), or NULL: trailing bytes other than
 * blanks make it invalid (cJSON alone would stop at the first value). */
cJSON *
sim_scenario_json_exact(const char *text, size_t len)
{
	const char *end = NULL;
	cJSON *j;

	j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (j == NULL)
		return NULL;
	while (end < text + len && (*end == ' ' || *end == '\t' ||
	    *end == '\r'))
		end++;
	if (end != text + len) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}


static int
sim_scenario_err(char *err, size_t errlen, const char *name, int lineno,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
sim_scenario_err(char *err, size_t errlen, const char *name, int lineno,
    const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s:%d: %s", name, lineno, msg);
	return -1;
}

/* *dst = a copy of s: 0, or -1 with the error. */
static int
sim_scenario_dup(char **dst, const char *s, const char *name, int lineno,
    char *err, size_t errlen)
{
	if ((*dst = strdup(s)) == NULL)
		return sim_scenario_err(err, errlen, name, lineno,
		    "out of memory");
	return 0;
}

/* Labels and event names end up in messages and file names: keep them to
 * a safe alphabet. */
static int
sim_scenario_label_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= SIM_LABEL_MAX)
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("_.-", *s) == NULL)
			return 0;
	return 1;
}

int
sim_scenario_event_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= SIM_EVENT_MAX)
		return 0;
	for (; *s != '\0'; s++)
		if (!isgraph((unsigned char)*s) || *s == '"' || *s == '\\')
			return 0;
	return 1;
}

/* A file name the sim serves or stores: no path, no dot-dot. */
int
sim_scenario_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 200 || strstr(s, "..") != NULL)
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("_.-", *s) == NULL)
			return 0;
	return 1;
}

/* An integer that a double holds exactly. */
int
sim_scenario_json_int(const cJSON *j, int64_t *v)
{
	double d;

	if (!cJSON_IsNumber(j))
		return 0;
	d = j->valuedouble;
	if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0)
		return 0;
	if (v != NULL)
		*v = (int64_t)d;
	return 1;
}

static int
sim_scenario_find_label(const struct sim_scenario *sc, const char *s)
{
	size_t i;

	for (i = 0; i < sc->nlabels; i++)
		if (strcmp(sc->labels[i], s) == 0)
			return (int)i;
	return -1;
}

static int
sim_scenario_new_label(struct sim_scenario *sc, const char *s)
{
	char (*nl)[SIM_LABEL_MAX];

	nl = reallocarray(sc->labels, sc->nlabels + 1, sizeof(*nl));
	if (nl == NULL)
		return -1;
	sc->labels = nl;
	snprintf(sc->labels[sc->nlabels], SIM_LABEL_MAX, "%s", s);
	return (int)sc->nlabels++;
}

static int
sim_scenario_check_action(const cJSON *a, const char *name, int lineno,
    char *err, size_t errlen)
{
	const cJSON *t, *m;

	if (!cJSON_IsObject(a))
		return sim_scenario_err(err, errlen, name, lineno,
		    "an action must be an object");
	t = cJSON_GetObjectItemCaseSensitive(a, "action_type");
	if (!cJSON_IsString(t) || !sim_scenario_label_ok(t->valuestring))
		return sim_scenario_err(err, errlen, name, lineno,
		    "the action needs an \"action_type\" string");
	m = cJSON_GetObjectItemCaseSensitive(a, "id");
	if (m != NULL) {
		int64_t id;

		if (!sim_scenario_json_int(m, &id) || id <= 0)
			return sim_scenario_err(err, errlen, name, lineno,
			    "\"id\" must be a positive integer");
	}
	/* A repeated "ready" on purpose (PROTOCOL.md 4.3): the id may be
	 * one sent before; "resend" itself is not sent. */
	t = cJSON_GetObjectItemCaseSensitive(a, "resend");
	if (t != NULL && (!cJSON_IsTrue(t) || m == NULL))
		return sim_scenario_err(err, errlen, name, lineno,
		    "\"resend\" must be true, with an \"id\"");
	m = cJSON_GetObjectItemCaseSensitive(a, "status");
	if (m != NULL && !cJSON_IsString(m))
		return sim_scenario_err(err, errlen, name, lineno,
		    "\"status\" must be a string");
	m = cJSON_GetObjectItemCaseSensitive(a, "motion_file");
	if (m != NULL && (!cJSON_IsString(m) ||
	    !sim_scenario_name_ok(m->valuestring)))
		return sim_scenario_err(err, errlen, name, lineno,
		    "\"motion_file\" must be a plain file name");
	if (m != NULL &&
	    cJSON_GetObjectItemCaseSensitive(a, "motion_url") != NULL)
		return sim_scenario_err(err, errlen, name, lineno,
		    "\"motion_file\" and \"motion_url\" exclude each other");
	m = cJSON_GetObjectItemCaseSensitive(a, "endpoint");
	if (m != NULL && !cJSON_IsTrue(m) && !cJSON_IsString(m))
		return sim_scenario_err(err, errlen, name, lineno,
		    "\"endpoint\" must be true or a URL string");
	return 0;
}

static int
sim_scenario_timeout(const cJSON *line, int def, int *ms, const char *name,
    int lineno, char *err, size_t errlen)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(line, "timeout");

	*ms = def * 1000;
	if (t == NULL)
		return 0;
	if (!cJSON_IsNumber(t) || !isfinite(t->valuedouble) ||
	    t->valuedouble <= 0 || t->valuedouble > SIM_TIMEOUT_MAX)
		return sim_scenario_err(err, errlen, name, lineno,
		    "\"timeout\" must be seconds in (0, %d]", SIM_TIMEOUT_MAX);
	*ms = (int)(t->valuedouble * 1000);
	if (*ms < 1)
		*ms = 1;
	return 0;
}

/* "expect" and "events", shared by send and cancel. */
static int
sim_scenario_expectations(const cJSON *line, struct sim_step *st,
    const char *name, char *err, size_t errlen)
{
	const cJSON *e, *ev;

	e = cJSON_GetObjectItemCaseSensitive(line, "expect");
	if (e != NULL) {
		if (!cJSON_IsString(e) ||
		    !sim_scenario_event_ok(e->valuestring))
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"expect\" must be an event name");
		if (sim_scenario_dup(&st->event, e->valuestring, name,
		    st->lineno, err, errlen) == -1)
			return -1;
	}
	e = cJSON_GetObjectItemCaseSensitive(line, "events");
	if (e != NULL) {
		if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) == 0 ||
		    cJSON_GetArraySize(e) > SIM_EVENTS_PER_ACTION)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"events\" must be a non-empty array of names");
		cJSON_ArrayForEach(ev, e)
			if (!cJSON_IsString(ev) ||
			    !sim_scenario_event_ok(ev->valuestring))
				return sim_scenario_err(err, errlen, name,
				    st->lineno, "\"events\" must hold names");
		if ((st->events = cJSON_Duplicate(e, 1)) == NULL)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "out of memory");
	}
	return sim_scenario_timeout(line, SIM_TIMEOUT_DEFAULT, &st->timeout_ms,
	    name, st->lineno, err, errlen);
}

/* A label naming an earlier send. */
static int
sim_scenario_ref(struct sim_scenario *sc, const cJSON *j, const char *what,
    int *label, const char *name, int lineno, char *err, size_t errlen)
{
	if (!cJSON_IsString(j))
		return sim_scenario_err(err, errlen, name, lineno,
		    "\"%s\" must be a label", what);
	*label = sim_scenario_find_label(sc, j->valuestring);
	if (*label == -1)
		return sim_scenario_err(err, errlen, name, lineno,
		    "\"%s\": no earlier send is labelled \"%.40s\"", what,
		    j->valuestring);
	return 0;
}

static int
sim_scenario_parse_send(struct sim_scenario *sc, const cJSON *line,
    const cJSON *v, struct sim_step *st, const char *name, char *err,
    size_t errlen)
{
	const cJSON *lab = cJSON_GetObjectItemCaseSensitive(line, "label");
	const cJSON *a, *l;
	int i, n;

	st->kind = SIM_STEP_SEND;
	if (cJSON_IsObject(v)) {
		if ((st->actions = cJSON_CreateArray()) == NULL)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "out of memory");
		cJSON_AddItemToArray(st->actions, cJSON_Duplicate(v, 1));
		if (lab != NULL && !cJSON_IsString(lab))
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"label\" must be a string");
	} else if (cJSON_IsArray(v)) {
		n = cJSON_GetArraySize(v);
		if (n == 0 || n > SIM_BATCH_MAX)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"send\" array: 1 to %d actions", SIM_BATCH_MAX);
		if (cJSON_GetObjectItemCaseSensitive(line, "expect") != NULL ||
		    cJSON_GetObjectItemCaseSensitive(line, "events") != NULL)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"expect\"/\"events\" need a single action");
		if (lab != NULL && (!cJSON_IsArray(lab) ||
		    cJSON_GetArraySize(lab) != n))
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"label\" must be an array as long as \"send\"");
		if ((st->actions = cJSON_Duplicate(v, 1)) == NULL)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "out of memory");
	} else
		return sim_scenario_err(err, errlen, name, st->lineno,
		    "\"send\" must be an action object or an array of them");
	if (cJSON_GetArraySize(st->actions) !=
	    (cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 1))
		return sim_scenario_err(err, errlen, name, st->lineno,
		    "out of memory");

	i = 0;
	cJSON_ArrayForEach(a, st->actions) {
		if (sim_scenario_check_action(a, name, st->lineno, err,
		    errlen) == -1)
			return -1;
		st->labels[i] = -1;
		l = NULL;
		if (cJSON_IsString(lab))
			l = lab;
		else if (cJSON_IsArray(lab))
			l = cJSON_GetArrayItem(lab, i);
		if (l != NULL) {
			if (!cJSON_IsString(l) ||
			    !sim_scenario_label_ok(l->valuestring))
				return sim_scenario_err(err, errlen, name,
				    st->lineno, "bad label (1-31 of "
				    "[A-Za-z0-9_.-])");
			if (sim_scenario_find_label(sc, l->valuestring) != -1)
				return sim_scenario_err(err, errlen, name,
				    st->lineno, "label \"%s\" used twice",
				    l->valuestring);
			st->labels[i] = sim_scenario_new_label(sc,
			    l->valuestring);
			if (st->labels[i] == -1)
				return sim_scenario_err(err, errlen, name,
				    st->lineno, "out of memory");
		}
		sc->nactions++;
		i++;
	}
	return sim_scenario_expectations(line, st, name, err, errlen);
}

static int
sim_scenario_parse_config(struct sim_scenario *sc, const cJSON *v,
    const char *name, int lineno, char *err, size_t errlen)
{
	const cJSON *sec, *kv;
	cJSON *dsec;

	if (!cJSON_IsObject(v))
		return sim_scenario_err(err, errlen, name, lineno,
		    "\"config\" must be {\"SECTION\": {\"key\": value}}");
	cJSON_ArrayForEach(sec, v) {
		if (!cJSON_IsObject(sec) || !sim_scenario_label_ok(sec->string))
			return sim_scenario_err(err, errlen, name, lineno,
			    "config section \"%.40s\" must be an object",
			    sec->string);
		cJSON_ArrayForEach(kv, sec) {
			if (!sim_scenario_label_ok(kv->string))
				return sim_scenario_err(err, errlen, name,
				    lineno, "bad config key \"%.40s\"",
				    kv->string);
			if (!cJSON_IsNumber(kv) && !cJSON_IsBool(kv) &&
			    !(cJSON_IsString(kv) &&
			    strpbrk(kv->valuestring, "\r\n") == NULL))
				return sim_scenario_err(err, errlen, name,
				    lineno, "config %s.%s: a number, a bool or "
				    "a one-line string", sec->string,
				    kv->string);
		}
		dsec = cJSON_GetObjectItemCaseSensitive(sc->config,
		    sec->string);
		if (dsec == NULL) {
			dsec = cJSON_AddObjectToObject(sc->config,
			    sec->string);
			if (dsec == NULL)
				return sim_scenario_err(err, errlen, name,
				    lineno, "out of memory");
		}
		cJSON_ArrayForEach(kv, sec) {
			cJSON_DeleteItemFromObjectCaseSensitive(dsec,
			    kv->string);
			cJSON_AddItemToObject(dsec, kv->string,
			    cJSON_Duplicate(kv, 1));
		}
	}
	return 0;
}

/* Which members each verb allows besides itself. */
static const struct {
	const char		*verb;
	enum sim_step_kind	 kind;
	const char		*extra[5];
} sim_scenario_verbs[] = {
	{ "send", SIM_STEP_SEND, { "label", "expect", "events", "timeout" } },
	{ "await", SIM_STEP_AWAIT, { "label", "timeout" } },
	{ "cancel", SIM_STEP_CANCEL, { "expect", "events", "timeout" } },
	{ "raw", SIM_STEP_RAW, { NULL } },
	{ "expect_none", SIM_STEP_EXPECT_NONE, { NULL } },
	{ "drop", SIM_STEP_DROP, { "timeout", "reconnect" } },
	{ "send_big", SIM_STEP_SEND_BIG, { "repeat" } },
	{ "expect_close", SIM_STEP_EXPECT_CLOSE, { "timeout" } },
	{ "await_signin", SIM_STEP_AWAIT_SIGNIN, { "timeout" } },
	{ "await_file", SIM_STEP_AWAIT_FILE, { "timeout" } },
	{ "refuse_signin", SIM_STEP_KNOB, { NULL } },
	{ "harness", SIM_STEP_KNOB, { NULL } },
	{ "expire_token", SIM_STEP_KNOB, { NULL } },
	{ "fail_upload", SIM_STEP_KNOB, { NULL } },
	{ "fail_pulse", SIM_STEP_KNOB, { NULL } },
	{ "fail_signin", SIM_STEP_KNOB, { NULL } },
	{ "hostile_fw_version", SIM_STEP_KNOB, { NULL } },
	{ "press_button", SIM_STEP_KNOB, { NULL } },
	{ "config", SIM_STEP_KNOB, { NULL } },
};
#define SIM_NVERBS	\
	(sizeof(sim_scenario_verbs) / sizeof(sim_scenario_verbs[0]))

/* The line's one verb: 1 with *v and *vi set, 0 for a comment line, -1. */
static int
sim_scenario_line_verb(const cJSON *line, const cJSON **v, size_t *vi,
    const char *name, int lineno, char *err, size_t errlen)
{
	const cJSON *m;
	const char *verb = NULL;
	size_t i;

	cJSON_ArrayForEach(m, line) {
		for (i = 0; i < SIM_NVERBS; i++)
			if (strcmp(m->string, sim_scenario_verbs[i].verb) == 0)
				break;
		if (i == SIM_NVERBS)
			continue;
		if (verb != NULL)
			return sim_scenario_err(err, errlen, name, lineno,
			    "two verbs on one line (\"%s\", \"%s\")", verb,
			    m->string);
		verb = m->string;
		*v = m;
		*vi = i;
	}
	if (verb != NULL)
		return 1;
	/* A line holding only a comment is a comment. */
	cJSON_ArrayForEach(m, line)
		if (strcmp(m->string, "comment") != 0)
			return sim_scenario_err(err, errlen, name, lineno,
			    "unknown verb \"%.40s\"", m->string);
	return 0;
}

/* Members besides the verb v: the ones it allows, each once. */
static int
sim_scenario_line_members(const cJSON *line, const cJSON *v, size_t vi,
    const char *name, int lineno, char *err, size_t errlen)
{
	const cJSON *m, *o;
	size_t k;
	int ok;

	cJSON_ArrayForEach(m, line) {
		if (m == v)
			continue;
		ok = strcmp(m->string, "comment") == 0;
		for (k = 0; !ok && k < 5 &&
		    sim_scenario_verbs[vi].extra[k] != NULL; k++)
			ok = strcmp(m->string,
			    sim_scenario_verbs[vi].extra[k]) == 0;
		if (!ok)
			return sim_scenario_err(err, errlen, name, lineno,
			    "\"%.40s\" is not allowed with \"%s\"", m->string,
			    v->string);
		/* cJSON keeps duplicate keys; a typo'd twin would be lost. */
		for (o = m->next; o != NULL; o = o->next)
			if (strcmp(o->string, m->string) == 0)
				return sim_scenario_err(err, errlen, name,
				    lineno, "\"%s\" given twice", m->string);
	}
	return 0;
}

static int
sim_scenario_parse_await(struct sim_scenario *sc, const cJSON *line,
    const cJSON *v, struct sim_step *st, const char *name, char *err,
    size_t errlen)
{
	const cJSON *m;

	st->kind = SIM_STEP_AWAIT;
	if (!cJSON_IsString(v) || !sim_scenario_event_ok(v->valuestring))
		return sim_scenario_err(err, errlen, name, st->lineno,
		    "\"await\" must be an event name");
	if (sim_scenario_dup(&st->event, v->valuestring, name, st->lineno,
	    err, errlen) == -1)
		return -1;
	m = cJSON_GetObjectItemCaseSensitive(line, "label");
	if (m != NULL && sim_scenario_ref(sc, m, "label", &st->label, name,
	    st->lineno, err, errlen) == -1)
		return -1;
	return sim_scenario_timeout(line, SIM_TIMEOUT_DEFAULT,
	    &st->timeout_ms, name, st->lineno, err, errlen);
}

static int
sim_scenario_parse_drop(const cJSON *line, const cJSON *v,
    struct sim_step *st, const char *name, char *err, size_t errlen)
{
	const cJSON *m;

	st->kind = SIM_STEP_DROP;
	if (!cJSON_IsTrue(v))
		return sim_scenario_err(err, errlen, name, st->lineno,
		    "\"drop\" must be true");
	st->reconnect = 1;
	m = cJSON_GetObjectItemCaseSensitive(line, "reconnect");
	if (m != NULL) {
		if (!cJSON_IsBool(m))
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"reconnect\" must be true or false");
		st->reconnect = cJSON_IsTrue(m);
		if (!st->reconnect &&
		    cJSON_GetObjectItemCaseSensitive(line, "timeout") != NULL)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"timeout\" needs a reconnect to wait for");
	}
	return sim_scenario_timeout(line, SIM_TIMEOUT_DROP, &st->timeout_ms,
	    name, st->lineno, err, errlen);
}

static int
sim_scenario_parse_send_big(const cJSON *line, const cJSON *v,
    struct sim_step *st, const char *name, char *err, size_t errlen)
{
	const cJSON *m;
	int64_t n;

	st->kind = SIM_STEP_SEND_BIG;
	if (!sim_scenario_json_int(v, &n) || n < SIM_BIG_MIN ||
	    n > SIM_BIG_MAX)
		return sim_scenario_err(err, errlen, name, st->lineno,
		    "\"send_big\" must be bytes, %d to %d", SIM_BIG_MIN,
		    SIM_BIG_MAX);
	st->count = (int)n;
	st->repeat = 1;
	m = cJSON_GetObjectItemCaseSensitive(line, "repeat");
	if (m != NULL && (!sim_scenario_json_int(m, &n) || n < 1 ||
	    n > SIM_REPEAT_MAX))
		return sim_scenario_err(err, errlen, name, st->lineno,
		    "\"repeat\" must be a count, 1 to %d", SIM_REPEAT_MAX);
	if (m != NULL)
		st->repeat = (int)n;
	return 0;
}

/* expect_close's code or await_signin's status, then the timeout. */
static int
sim_scenario_parse_code(const cJSON *line, const cJSON *v,
    struct sim_step *st, const char *name, char *err, size_t errlen)
{
	int64_t n;

	if (st->kind == SIM_STEP_EXPECT_CLOSE) {
		/* RFC 6455 7.4: the codes an endpoint may send. */
		if (!sim_scenario_json_int(v, &n) || n < 1000 || n > 4999)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"expect_close\" must be a close code, 1000 to "
			    "4999");
	} else if (!sim_scenario_json_int(v, &n) || (n != 200 && n != 401 &&
	    n != 503))
		return sim_scenario_err(err, errlen, name, st->lineno,
		    "\"await_signin\" must be 200, 401 or 503");
	st->count = (int)n;
	return sim_scenario_timeout(line, SIM_TIMEOUT_DEFAULT,
	    &st->timeout_ms, name, st->lineno, err, errlen);
}

static int
sim_scenario_parse_await_file(const cJSON *line, const cJSON *v,
    struct sim_step *st, const char *name, char *err, size_t errlen)
{
	st->kind = SIM_STEP_AWAIT_FILE;
	/* A plain name: nothing outside the harness's folder. */
	if (!cJSON_IsString(v) || *v->valuestring == '\0' ||
	    strchr(v->valuestring, '/') != NULL ||
	    strcmp(v->valuestring, ".") == 0 ||
	    strcmp(v->valuestring, "..") == 0 ||
	    strlen(v->valuestring) > 255)
		return sim_scenario_err(err, errlen, name, st->lineno,
		    "\"await_file\" must be a file name, no '/'");
	if (sim_scenario_dup(&st->raw, v->valuestring, name, st->lineno, err,
	    errlen) == -1)
		return -1;
	return sim_scenario_timeout(line, SIM_TIMEOUT_DEFAULT,
	    &st->timeout_ms, name, st->lineno, err, errlen);
}

/* Lines the harness reads: 0 (nothing to play) or -1. */
static int
sim_scenario_parse_harness(struct sim_scenario *sc, const cJSON *v,
    struct sim_step *st, const char *name, char *err, size_t errlen)
{
	const cJSON *m;

	if (strcmp(v->string, "config") == 0)
		return sim_scenario_parse_config(sc, v, name, st->lineno, err,
		    errlen);
	/* run-scenario.sh's: it checks the options themselves. */
	if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
		return sim_scenario_err(err, errlen, name, st->lineno,
		    "\"harness\" must be an array of options");
	cJSON_ArrayForEach(m, v)
		if (!cJSON_IsString(m) || *m->valuestring == '\0' ||
		    strpbrk(m->valuestring, "\r\n") != NULL)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"harness\" must hold one-line strings");
	return 0;
}

static int
sim_scenario_parse_knob(const cJSON *v, struct sim_step *st,
    const char *name, char *err, size_t errlen)
{
	const char *verb = v->string;
	int64_t n;

	st->kind = SIM_STEP_KNOB;
	if (strcmp(verb, "expire_token") == 0) {
		if (!cJSON_IsTrue(v))
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"expire_token\" must be true");
		st->knob = SIM_KNOB_EXPIRE_TOKEN;
		st->count = 1;
		return 0;
	}
	if (strcmp(verb, "press_button") == 0) {
		if (!cJSON_IsTrue(v))
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"press_button\" must be true");
		st->knob = SIM_KNOB_PRESS_BUTTON;
		st->count = 1;
		return 0;
	}
	if (!sim_scenario_json_int(v, &n) || n < 1 || n > SIM_COUNT_MAX)
		return sim_scenario_err(err, errlen, name, st->lineno,
		    "\"%s\" must be a count, 1 to %d", verb, SIM_COUNT_MAX);
	st->count = (int)n;
	if (strcmp(verb, "fail_upload") == 0)
		st->knob = SIM_KNOB_FAIL_UPLOAD;
	else if (strcmp(verb, "fail_pulse") == 0)
		st->knob = SIM_KNOB_FAIL_PULSE;
	else if (strcmp(verb, "refuse_signin") == 0)
		st->knob = SIM_KNOB_REFUSE_SIGNIN;
	else if (strcmp(verb, "hostile_fw_version") == 0)
		st->knob = SIM_KNOB_HOSTILE_FW;
	else
		st->knob = SIM_KNOB_FAIL_SIGNIN;
	return 0;
}

/* The verb's own value, by kind: 0 or -1. */
static int
sim_scenario_parse_verb(struct sim_scenario *sc, const cJSON *line,
    const cJSON *v, enum sim_step_kind kind, struct sim_step *st,
    const char *name, char *err, size_t errlen)
{
	switch (kind) {
	case SIM_STEP_SEND:
		return sim_scenario_parse_send(sc, line, v, st, name, err,
		    errlen);
	case SIM_STEP_AWAIT:
		return sim_scenario_parse_await(sc, line, v, st, name, err,
		    errlen);
	case SIM_STEP_CANCEL:
		st->kind = SIM_STEP_CANCEL;
		if (sim_scenario_ref(sc, v, "cancel", &st->label, name,
		    st->lineno, err, errlen) == -1)
			return -1;
		return sim_scenario_expectations(line, st, name, err, errlen);
	case SIM_STEP_RAW:
		st->kind = SIM_STEP_RAW;
		if (!cJSON_IsString(v))
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"raw\" must be a string");
		return sim_scenario_dup(&st->raw, v->valuestring, name,
		    st->lineno, err, errlen);
	case SIM_STEP_EXPECT_NONE:
		st->kind = SIM_STEP_EXPECT_NONE;
		return sim_scenario_ref(sc, v, "expect_none", &st->label, name,
		    st->lineno, err, errlen);
	case SIM_STEP_DROP:
		return sim_scenario_parse_drop(line, v, st, name, err, errlen);
	case SIM_STEP_SEND_BIG:
		return sim_scenario_parse_send_big(line, v, st, name, err,
		    errlen);
	case SIM_STEP_EXPECT_CLOSE:
	case SIM_STEP_AWAIT_SIGNIN:
		st->kind = kind;
		return sim_scenario_parse_code(line, v, st, name, err, errlen);
	case SIM_STEP_AWAIT_FILE:
		return sim_scenario_parse_await_file(line, v, st, name, err,
		    errlen);
	case SIM_STEP_KNOB:
		break;
	}
	return sim_scenario_parse_knob(v, st, name, err, errlen);
}

/* 1: a step was filled in; 0: nothing to play (config, comment); -1. */
static int
sim_scenario_parse_line(struct sim_scenario *sc, const cJSON *line,
    struct sim_step *st, const char *name, char *err, size_t errlen)
{
	const cJSON *v = NULL;
	size_t vi = 0;
	int r;

	if (!cJSON_IsObject(line))
		return sim_scenario_err(err, errlen, name, st->lineno,
		    "a line must be a JSON object");
	if ((r = sim_scenario_line_verb(line, &v, &vi, name, st->lineno, err,
	    errlen)) != 1)
		return r;
	if (sim_scenario_line_members(line, v, vi, name, st->lineno, err,
	    errlen) == -1)
		return -1;
	st->label = -1;
	if (strcmp(v->string, "config") == 0 ||
	    strcmp(v->string, "harness") == 0)
		return sim_scenario_parse_harness(sc, v, st, name, err, errlen);
	if (sim_scenario_parse_verb(sc, line, v, sim_scenario_verbs[vi].kind,
	    st, name, err, errlen) == -1)
		return -1;
	return 1;
}

static void
sim_scenario_step_clear(struct sim_step *st)
{
	cJSON_Delete(st->actions);
	cJSON_Delete(st->events);
	free(st->event);
	free(st->raw);
	memset(st, 0, sizeof(*st));
}

struct sim_scenario *
sim_scenario_parse(const char *text, size_t len, const char *name, char *err,
    size_t errlen)
{
	struct sim_scenario *sc;
	struct sim_step st, *ns;
	const char *p = text, *end = text + len, *nl;
	cJSON *line;
	int lineno = 0, r;
	size_t n;

	if ((sc = calloc(1, sizeof(*sc))) == NULL ||
	    (sc->name = strdup(name)) == NULL ||
	    (sc->config = cJSON_CreateObject()) == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	if (len > SIM_SCENARIO_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", name,
		    SIM_SCENARIO_MAX);
		goto fail;
	}
	if (memchr(text, '\0', len) != NULL) {
		snprintf(err, errlen, "%s: holds a NUL byte", name);
		goto fail;
	}
	while (p < end) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		while (n > 0 && isspace((unsigned char)p[n - 1]))
			n--;
		while (n > 0 && isspace((unsigned char)*p)) {
			p++;
			n--;
		}
		if (n == 0 || *p == '#')
			goto next;

		memset(&st, 0, sizeof(st));
		st.lineno = lineno;
		line = sim_scenario_json_exact(p, n);
		if (line == NULL) {
			sim_scenario_err(err, errlen, name, lineno,
			    "not a JSON object on one line");
			goto fail;
		}
		r = sim_scenario_parse_line(sc, line, &st, name, err, errlen);
		cJSON_Delete(line);
		if (r == -1) {
			sim_scenario_step_clear(&st);
			goto fail;
		}
		if (r == 1) {
			ns = reallocarray(sc->steps, sc->nsteps + 1,
			    sizeof(*ns));
			if (ns == NULL) {
				sim_scenario_step_clear(&st);
				sim_scenario_err(err, errlen, name, lineno,
				    "out of memory");
				goto fail;
			}
			sc->steps = ns;
			sc->steps[sc->nsteps++] = st;
		}
next:
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	if (sc->nsteps == 0) {
		snprintf(err, errlen, "%s: no line to play", name);
		goto fail;
	}
	return sc;
fail:
	sim_scenario_free(sc);
	return NULL;
}

struct sim_scenario *
sim_scenario_load(const char *path, char *err, size_t errlen)
{
	struct sim_scenario *sc = NULL;
	char *buf = NULL;
	size_t len = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	/* One byte more than allowed, to tell "too big" from "just fits". */
	if ((buf = malloc(SIM_SCENARIO_MAX + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto done;
	}
	while (len < SIM_SCENARIO_MAX + 1) {
		r = read(fd, buf + len, SIM_SCENARIO_MAX + 1 - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto done;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	sc = sim_scenario_parse(buf, len, path, err, errlen);
done:
	free(buf);
	close(fd);
	return sc;
}

void
sim_scenario_free(struct sim_scenario *sc)
{
	size_t i;

	if (sc == NULL)
		return;
	for (i = 0; i < sc->nsteps; i++)
		sim_scenario_step_clear(&sc->steps[i]);
	free(sc->steps);
	free(sc->labels);
	cJSON_Delete(sc->config);
	free(sc->name);
	free(sc);
}

size_t
sim_scenario_steps(const struct sim_scenario *sc)
{
	return sc->nsteps;
}

int
sim_scenario_send_step(const struct sim_scenario *sc, size_t i,
    struct sim_send_step *out)
{
	const struct sim_step *st;

	if (i >= sc->nsteps)
		return -1;
	st = &sc->steps[i];
	out->lineno = st->lineno;
	if (st->kind != SIM_STEP_SEND || cJSON_GetArraySize(st->actions) != 1)
		return -1;
	out->action = cJSON_GetArrayItem(st->actions, 0);
	out->expect = st->event;
	out->events = st->events;
	out->timeout_ms = st->timeout_ms;
	return 0;
}

int
sim_scenario_is_terminal(const char *type, const char *ev)
{
	size_t n = strlen(type);

	if (strncmp(ev, type, n) != 0 || ev[n] != ':')
		return 0;
	ev += n + 1;
	return strcmp(ev, "completed") == 0 || strcmp(ev, "failed") == 0 ||
	    strcmp(ev, "cancelled") == 0;
}

int
sim_scenario_print_config(const struct sim_scenario *sc, FILE *fp)
{
	const cJSON *sec, *kv;

	cJSON_ArrayForEach(sec, sc->config) {
		fprintf(fp, "[%s]\n", sec->string);
		cJSON_ArrayForEach(kv, sec) {
			if (cJSON_IsBool(kv))
				fprintf(fp, "%s: %s\n", kv->string,
				    cJSON_IsTrue(kv) ? "True" : "False");
			else if (cJSON_IsNumber(kv))
				fprintf(fp, "%s: %.15g\n", kv->string,
				    kv->valuedouble);
			else
				fprintf(fp, "%s: %s\n", kv->string,
				    kv->valuestring);
		}
	}
	return fflush(fp) == 0 && !ferror(fp) ? 0 : -1;
}

cJSON *
sim_scenario_action(const cJSON *tmpl, int64_t id, const char *serial,
    char *(*pulse_url)(void *, const char *),
    char *(*upload_url)(void *, int64_t), void *arg)
{
	const cJSON *m;
	cJSON *a;
	char *url, sn[48];

	if ((a = cJSON_CreateObject()) == NULL ||
	    cJSON_AddNumberToObject(a, "id", (double)id) == NULL)
		goto oom;
	cJSON_ArrayForEach(m, tmpl) {
		url = NULL;
		if (strcmp(m->string, "id") == 0 ||
		    strcmp(m->string, "resend") == 0)
			continue;
		if (strcmp(m->string, "motion_file") == 0) {
			url = pulse_url(arg, m->valuestring);
			if (url == NULL || cJSON_AddStringToObject(a,
			    "motion_url", url) == NULL)
				goto oom_url;
		} else if (strcmp(m->string, "endpoint") == 0 &&
		    cJSON_IsTrue(m)) {
			url = upload_url(arg, id);
			if (url == NULL || cJSON_AddStringToObject(a,
			    "endpoint", url) == NULL)
				goto oom_url;
		} else
			cJSON_AddItemToObject(a, m->string,
			    cJSON_Duplicate(m, 1));
		free(url);
	}
	if (cJSON_GetObjectItemCaseSensitive(a, "machine_serial") == NULL) {
		snprintf(sn, sizeof(sn), "S%s", serial);
		cJSON_AddStringToObject(a, "machine_serial", sn);
	}
	if (cJSON_GetObjectItemCaseSensitive(a, "status") == NULL)
		cJSON_AddStringToObject(a, "status", "ready");
	return a;
oom_url:
	free(url);
oom:
	cJSON_Delete(a);
	return NULL;
}

const struct sim_step *
sim_scenario_step(const struct sim_scenario *sc, size_t i)
{
	return &sc->steps[i];
}

const char *
sim_scenario_label(const struct sim_scenario *sc, int label)
{
	return sc->labels[label];
}

size_t
sim_scenario_labels(const struct sim_scenario *sc)
{
	return sc->nlabels;
}

size_t
sim_scenario_actions(const struct sim_scenario *sc)
{
	return sc->nactions;
}

const char *
sim_scenario_name(const struct sim_scenario *sc)
{
	return sc->name;
}
