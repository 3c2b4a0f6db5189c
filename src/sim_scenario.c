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
 *	Not played: options for tests/run-scenario.sh (it reads them
 *	itself); here only checked to be an array of one-line strings.
 *
 * Every frame from the machine is checked: newline-terminated JSON objects,
 * valid UTF-8, "type" event/log/progress, "version" 1, "id" an integer rising
 * strictly over the whole run, "timestamp" an integer, events naming an
 * action the sim sent, at most one terminal event per action, an
 * ":upload:completed" only after an image really arrived, no secret.  The
 * first failure ends the run.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "sim_scenario.h"

#define SIM_LABEL_MAX		32	/* bytes, NUL included */
#define SIM_EVENT_MAX		128	/* bytes in an event name */
#define SIM_BATCH_MAX		16	/* actions in one "send" array */
#define SIM_EVENTS_PER_ACTION	256
#define SIM_LOOSE_MAX		1024	/* events without action_id */
#define SIM_TIMEOUT_MAX		3600	/* seconds */
#define SIM_COUNT_MAX		1000	/* fail_* knobs */
#define SIM_BIG_MIN		16	/* bytes of a send_big frame */
#define SIM_BIG_MAX		(64 * 1024 * 1024)
#define SIM_REPEAT_MAX		1000	/* send_big frames in a burst */
#define SIM_FILE_POLL_MS	50	/* await_file: ms between looks */

enum sim_step_kind {
	STEP_SEND,
	STEP_AWAIT,
	STEP_CANCEL,
	STEP_RAW,
	STEP_EXPECT_NONE,
	STEP_DROP,
	STEP_KNOB,
	STEP_SEND_BIG,
	STEP_EXPECT_CLOSE,
	STEP_AWAIT_SIGNIN,
	STEP_AWAIT_FILE,
};

struct sim_step {
	enum sim_step_kind	 kind;
	int			 lineno;
	cJSON			*actions;	/* send: the templates */
	int			 labels[SIM_BATCH_MAX];	/* or -1 */
	int			 label;		/* referred to */
	char			*event;		/* expect/await */
	cJSON			*events;	/* the list, or NULL */
	int			 timeout_ms;
	int			 repeat;	/* send_big: frames */
	char			*raw;		/* or await_file's name */
	enum sim_knob		 knob;
	/* A knob's count, send_big's bytes, expect_close's code or
	 * await_signin's status. */
	int			 count;
	int			 reconnect;	/* drop: wait for it */
};

struct sim_scenario {
	char		*name;
	struct sim_step	*steps;
	size_t		 nsteps;
	char		(*labels)[SIM_LABEL_MAX];
	size_t		 nlabels;
	size_t		 nactions;	/* sent by all steps */
	cJSON		*config;	/* section -> key -> value */
};

static int	 sim_scenario_utf8_ok(const char *, size_t);

/* --- parsing --- */

/* The JSON value filling text[0..len), or NULL: trailing bytes other than
 * blanks make it invalid (cJSON alone would stop at the first value). */
static cJSON *
sim_scenario_parse_exact(const char *text, size_t len)
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

static int
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
static int
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
		if ((st->event = strdup(e->valuestring)) == NULL)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "out of memory");
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

	st->kind = STEP_SEND;
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
	{ "send", STEP_SEND, { "label", "expect", "events", "timeout" } },
	{ "await", STEP_AWAIT, { "label", "timeout" } },
	{ "cancel", STEP_CANCEL, { "expect", "events", "timeout" } },
	{ "raw", STEP_RAW, { NULL } },
	{ "expect_none", STEP_EXPECT_NONE, { NULL } },
	{ "drop", STEP_DROP, { "timeout", "reconnect" } },
	{ "send_big", STEP_SEND_BIG, { "repeat" } },
	{ "expect_close", STEP_EXPECT_CLOSE, { "timeout" } },
	{ "await_signin", STEP_AWAIT_SIGNIN, { "timeout" } },
	{ "await_file", STEP_AWAIT_FILE, { "timeout" } },
	{ "refuse_signin", STEP_KNOB, { NULL } },
	{ "harness", STEP_KNOB, { NULL } },
	{ "expire_token", STEP_KNOB, { NULL } },
	{ "fail_upload", STEP_KNOB, { NULL } },
	{ "fail_pulse", STEP_KNOB, { NULL } },
	{ "fail_signin", STEP_KNOB, { NULL } },
	{ "hostile_fw_version", STEP_KNOB, { NULL } },
	{ "press_button", STEP_KNOB, { NULL } },
	{ "config", STEP_KNOB, { NULL } },
};
#define SIM_NVERBS	\
	(sizeof(sim_scenario_verbs) / sizeof(sim_scenario_verbs[0]))

/* 1: a step was filled in; 0: nothing to play (config, comment); -1. */
static int
sim_scenario_parse_line(struct sim_scenario *sc, const cJSON *line,
    struct sim_step *st, const char *name, char *err, size_t errlen)
{
	const cJSON *m, *v = NULL;
	const char *verb = NULL;
	size_t i, k, vi = 0;
	int ok;
	int64_t n;

	if (!cJSON_IsObject(line))
		return sim_scenario_err(err, errlen, name, st->lineno,
		    "a line must be a JSON object");
	cJSON_ArrayForEach(m, line) {
		for (i = 0; i < SIM_NVERBS; i++)
			if (strcmp(m->string, sim_scenario_verbs[i].verb) == 0)
				break;
		if (i == SIM_NVERBS)
			continue;
		if (verb != NULL)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "two verbs on one line (\"%s\", \"%s\")", verb,
			    m->string);
		verb = m->string;
		v = m;
		vi = i;
	}
	if (verb == NULL) {
		/* A line holding only a comment is a comment. */
		cJSON_ArrayForEach(m, line)
			if (strcmp(m->string, "comment") != 0)
				return sim_scenario_err(err, errlen, name,
				    st->lineno, "unknown verb \"%.40s\"",
				    m->string);
		return 0;
	}
	cJSON_ArrayForEach(m, line) {
		const cJSON *o;

		if (m == v)
			continue;
		ok = strcmp(m->string, "comment") == 0;
		for (k = 0; !ok && k < 5 &&
		    sim_scenario_verbs[vi].extra[k] != NULL; k++)
			ok = strcmp(m->string,
			    sim_scenario_verbs[vi].extra[k]) == 0;
		if (!ok)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"%.40s\" is not allowed with \"%s\"", m->string,
			    verb);
		/* cJSON keeps duplicate keys; a typo'd twin would be lost. */
		for (o = m->next; o != NULL; o = o->next)
			if (strcmp(o->string, m->string) == 0)
				return sim_scenario_err(err, errlen, name,
				    st->lineno, "\"%s\" given twice",
				    m->string);
	}

	st->label = -1;
	switch (sim_scenario_verbs[vi].kind) {
	case STEP_SEND:
		if (sim_scenario_parse_send(sc, line, v, st, name, err,
		    errlen) == -1)
			return -1;
		return 1;
	case STEP_AWAIT:
		st->kind = STEP_AWAIT;
		if (!cJSON_IsString(v) ||
		    !sim_scenario_event_ok(v->valuestring))
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"await\" must be an event name");
		if ((st->event = strdup(v->valuestring)) == NULL)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "out of memory");
		m = cJSON_GetObjectItemCaseSensitive(line, "label");
		if (m != NULL && sim_scenario_ref(sc, m, "label", &st->label,
		    name, st->lineno, err, errlen) == -1)
			return -1;
		if (sim_scenario_timeout(line, SIM_TIMEOUT_DEFAULT,
		    &st->timeout_ms, name, st->lineno, err, errlen) == -1)
			return -1;
		return 1;
	case STEP_CANCEL:
		st->kind = STEP_CANCEL;
		if (sim_scenario_ref(sc, v, "cancel", &st->label, name,
		    st->lineno, err, errlen) == -1)
			return -1;
		if (sim_scenario_expectations(line, st, name, err,
		    errlen) == -1)
			return -1;
		return 1;
	case STEP_RAW:
		st->kind = STEP_RAW;
		if (!cJSON_IsString(v))
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"raw\" must be a string");
		if ((st->raw = strdup(v->valuestring)) == NULL)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "out of memory");
		return 1;
	case STEP_EXPECT_NONE:
		st->kind = STEP_EXPECT_NONE;
		if (sim_scenario_ref(sc, v, "expect_none", &st->label, name,
		    st->lineno, err, errlen) == -1)
			return -1;
		return 1;
	case STEP_DROP:
		st->kind = STEP_DROP;
		if (!cJSON_IsTrue(v))
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"drop\" must be true");
		st->reconnect = 1;
		m = cJSON_GetObjectItemCaseSensitive(line, "reconnect");
		if (m != NULL) {
			if (!cJSON_IsBool(m))
				return sim_scenario_err(err, errlen, name,
				    st->lineno, "\"reconnect\" must be true "
				    "or false");
			st->reconnect = cJSON_IsTrue(m);
			if (!st->reconnect && cJSON_GetObjectItemCaseSensitive(
			    line, "timeout") != NULL)
				return sim_scenario_err(err, errlen, name,
				    st->lineno, "\"timeout\" needs a "
				    "reconnect to wait for");
		}
		if (sim_scenario_timeout(line, SIM_TIMEOUT_DROP,
		    &st->timeout_ms, name, st->lineno, err, errlen) == -1)
			return -1;
		return 1;
	case STEP_SEND_BIG:
		st->kind = STEP_SEND_BIG;
		if (!sim_scenario_json_int(v, &n) || n < SIM_BIG_MIN ||
		    n > SIM_BIG_MAX)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"send_big\" must be bytes, %d to %d",
			    SIM_BIG_MIN, SIM_BIG_MAX);
		st->count = (int)n;
		st->repeat = 1;
		m = cJSON_GetObjectItemCaseSensitive(line, "repeat");
		if (m != NULL && (!sim_scenario_json_int(m, &n) || n < 1 ||
		    n > SIM_REPEAT_MAX))
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"repeat\" must be a count, 1 to %d",
			    SIM_REPEAT_MAX);
		if (m != NULL)
			st->repeat = (int)n;
		return 1;
	case STEP_EXPECT_CLOSE:
		st->kind = STEP_EXPECT_CLOSE;
		/* RFC 6455 7.4: the codes an endpoint may send. */
		if (!sim_scenario_json_int(v, &n) || n < 1000 || n > 4999)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"expect_close\" must be a close code, 1000 to "
			    "4999");
		st->count = (int)n;
		if (sim_scenario_timeout(line, SIM_TIMEOUT_DEFAULT,
		    &st->timeout_ms, name, st->lineno, err, errlen) == -1)
			return -1;
		return 1;
	case STEP_AWAIT_SIGNIN:
		st->kind = STEP_AWAIT_SIGNIN;
		if (!sim_scenario_json_int(v, &n) || (n != 200 && n != 401 &&
		    n != 503))
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"await_signin\" must be 200, 401 or 503");
		st->count = (int)n;
		if (sim_scenario_timeout(line, SIM_TIMEOUT_DEFAULT,
		    &st->timeout_ms, name, st->lineno, err, errlen) == -1)
			return -1;
		return 1;
	case STEP_AWAIT_FILE:
		st->kind = STEP_AWAIT_FILE;
		/* A plain name: nothing outside the harness's folder. */
		if (!cJSON_IsString(v) || *v->valuestring == '\0' ||
		    strchr(v->valuestring, '/') != NULL ||
		    strcmp(v->valuestring, ".") == 0 ||
		    strcmp(v->valuestring, "..") == 0 ||
		    strlen(v->valuestring) > 255)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"await_file\" must be a file name, no '/'");
		if ((st->raw = strdup(v->valuestring)) == NULL)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "out of memory");
		if (sim_scenario_timeout(line, SIM_TIMEOUT_DEFAULT,
		    &st->timeout_ms, name, st->lineno, err, errlen) == -1)
			return -1;
		return 1;
	case STEP_KNOB:
		break;
	}

	if (strcmp(verb, "config") == 0) {
		if (sim_scenario_parse_config(sc, v, name, st->lineno, err,
		    errlen) == -1)
			return -1;
		return 0;
	}
	if (strcmp(verb, "harness") == 0) {
		/* run-scenario.sh's: it checks the options themselves. */
		if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"harness\" must be an array of options");
		cJSON_ArrayForEach(m, v)
			if (!cJSON_IsString(m) || *m->valuestring == '\0' ||
			    strpbrk(m->valuestring, "\r\n") != NULL)
				return sim_scenario_err(err, errlen, name,
				    st->lineno, "\"harness\" must hold "
				    "one-line strings");
		return 0;
	}
	st->kind = STEP_KNOB;
	if (strcmp(verb, "expire_token") == 0) {
		if (!cJSON_IsTrue(v))
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"expire_token\" must be true");
		st->knob = SIM_KNOB_EXPIRE_TOKEN;
		st->count = 1;
		return 1;
	}
	if (strcmp(verb, "press_button") == 0) {
		if (!cJSON_IsTrue(v))
			return sim_scenario_err(err, errlen, name, st->lineno,
			    "\"press_button\" must be true");
		st->knob = SIM_KNOB_PRESS_BUTTON;
		st->count = 1;
		return 1;
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
		line = sim_scenario_parse_exact(p, n);
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
	if (st->kind != STEP_SEND || cJSON_GetArraySize(st->actions) != 1)
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
sim_scenario_utf8_valid(const char *s, size_t len)
{
	return sim_scenario_utf8_ok(s, len);
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

/* --- transcript --- */

/*
 * Secrets.  The issued tokens are 64 hex chars: they go in a hash set, and
 * a text is searched by hashing each 64-char window of its hex runs, so a
 * frame costs O(its length) whatever the number of tokens.  Other secrets
 * (a password of another shape) are few and searched one by one.
 */
#define SIM_SECRET_HEX		64	/* chars of a hashed secret */

struct sim_transcript {
	FILE	*fp;
	FILE	*secrets_fp;
	char	**hexset;	/* open addressing, NULL: empty */
	size_t	 hexcap;	/* a power of two */
	size_t	 nhex;
	char	**other;
	size_t	 nother;
};

static uint64_t
sim_scenario_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */
	size_t i;

	/* Folded: hex is the same secret in either case. */
	for (i = 0; i < n; i++) {
		h ^= (unsigned char)tolower((unsigned char)s[i]);
		h *= 1099511628211ULL;
	}
	return h;
}

static int
sim_scenario_hexrun(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Where s[0..64) is, or would go, in the set. */
static size_t
sim_scenario_hexslot(char *const *set, size_t cap, const char *s)
{
	size_t i = (size_t)sim_scenario_hash(s, SIM_SECRET_HEX) & (cap - 1);

	while (set[i] != NULL && strncasecmp(set[i], s, SIM_SECRET_HEX) != 0)
		i = (i + 1) & (cap - 1);
	return i;
}

static int
sim_scenario_hexadd(struct sim_transcript *tr, char *s)
{
	char **ns;
	size_t cap, i;

	if (2 * (tr->nhex + 1) > tr->hexcap) {
		cap = tr->hexcap == 0 ? 64 : 2 * tr->hexcap;
		if ((ns = calloc(cap, sizeof(*ns))) == NULL)
			return -1;
		for (i = 0; i < tr->hexcap; i++)
			if (tr->hexset[i] != NULL)
				ns[sim_scenario_hexslot(ns, cap,
				    tr->hexset[i])] = tr->hexset[i];
		free(tr->hexset);
		tr->hexset = ns;
		tr->hexcap = cap;
	}
	i = sim_scenario_hexslot(tr->hexset, tr->hexcap, s);
	if (tr->hexset[i] != NULL) {
		explicit_bzero(s, SIM_SECRET_HEX);
		free(s);		/* already known */
		return 0;
	}
	tr->hexset[i] = s;
	tr->nhex++;
	return 0;
}

/* The first secret in text[0..len): its offset and length, or -1. */
static ssize_t
sim_scenario_find_secret(const struct sim_transcript *tr, const char *text,
    size_t len, size_t *slen)
{
	size_t i = 0, run, k, best = (size_t)-1, bl = 0;
	const char *q;

	while (tr->nhex > 0 && i + SIM_SECRET_HEX <= len) {
		if (!isxdigit((unsigned char)text[i])) {
			i++;
			continue;
		}
		for (run = i; run < len && isxdigit((unsigned char)text[run]);
		    run++)
			;
		for (k = i; k + SIM_SECRET_HEX <= run; k++)
			if (tr->hexset[sim_scenario_hexslot(tr->hexset,
			    tr->hexcap, text + k)] != NULL) {
				best = k;
				bl = SIM_SECRET_HEX;
				goto others;
			}
		i = run;
	}
others:
	for (k = 0; k < tr->nother; k++) {
		q = memmem(text, best != (size_t)-1 ? best + bl : len,
		    tr->other[k], strlen(tr->other[k]));
		if (q != NULL && (size_t)(q - text) < best) {
			best = (size_t)(q - text);
			bl = strlen(tr->other[k]);
		}
	}
	if (best == (size_t)-1)
		return -1;
	*slen = bl;
	return (ssize_t)best;
}

struct sim_transcript *
sim_scenario_transcript_new(const char *path, const char *secrets_path)
{
	struct sim_transcript *tr;
	int fd;

	if ((tr = calloc(1, sizeof(*tr))) == NULL) {
		log_warn("calloc");
		return NULL;
	}
	if (path != NULL && (tr->fp = fopen(path, "we")) == NULL) {
		log_warn("%s", path);
		goto fail;
	}
	if (secrets_path != NULL) {
		/* Secrets: nobody else may read them, from the first byte. */
		fd = open(secrets_path, O_WRONLY | O_CREAT | O_TRUNC |
		    O_CLOEXEC, 0600);
		if (fd == -1 || fchmod(fd, 0600) == -1 ||
		    (tr->secrets_fp = fdopen(fd, "w")) == NULL) {
			log_warn("%s", secrets_path);
			if (fd != -1)
				close(fd);
			goto fail;
		}
	}
	return tr;
fail:
	sim_scenario_transcript_free(tr);
	return NULL;
}

void
sim_scenario_transcript_free(struct sim_transcript *tr)
{
	size_t i;

	if (tr == NULL)
		return;
	if (tr->fp != NULL)
		fclose(tr->fp);
	if (tr->secrets_fp != NULL)
		fclose(tr->secrets_fp);
	for (i = 0; i < tr->hexcap; i++)
		if (tr->hexset[i] != NULL) {
			explicit_bzero(tr->hexset[i], SIM_SECRET_HEX);
			free(tr->hexset[i]);
		}
	for (i = 0; i < tr->nother; i++) {
		explicit_bzero(tr->other[i], strlen(tr->other[i]));
		free(tr->other[i]);
	}
	free(tr->hexset);
	free(tr->other);
	free(tr);
}

int
sim_scenario_transcript_secret(struct sim_transcript *tr, const char *secret)
{
	size_t n, i;
	char **no, *s;

	if (secret == NULL || *secret == '\0')
		return 0;
	n = strlen(secret);
	if (n != SIM_SECRET_HEX || !sim_scenario_hexrun(secret, n)) {
		/* A fleet shares a password: keep it once. */
		for (i = 0; i < tr->nother; i++)
			if (strcmp(tr->other[i], secret) == 0)
				return 0;
		if (tr->nother == SIM_SECRETS_MAX) {
			log_warnx("more than %d secrets that are not tokens",
			    SIM_SECRETS_MAX);
			return -1;
		}
		if ((no = reallocarray(tr->other, tr->nother + 1,
		    sizeof(*no))) == NULL)
			goto oom;
		tr->other = no;
	}
	if ((s = strdup(secret)) == NULL)
		goto oom;
	if (n == SIM_SECRET_HEX && sim_scenario_hexrun(secret, n)) {
		if (sim_scenario_hexadd(tr, s) == -1) {
			free(s);
			goto oom;
		}
	} else
		tr->other[tr->nother++] = s;
	if (tr->secrets_fp != NULL) {
		fprintf(tr->secrets_fp, "%s\n", secret);
		fflush(tr->secrets_fp);
	}
	return 0;
oom:
	log_warn("secret");
	return -1;
}

int
sim_scenario_transcript_leaks(const struct sim_transcript *tr,
    const char *text, size_t len)
{
	size_t slen;

	return sim_scenario_find_secret(tr, text, len, &slen) != -1;
}

/* s with every secret replaced; s is freed.  NULL when out of memory. */
static char *
sim_scenario_redact(const struct sim_transcript *tr, char *s)
{
	static const char mark[] = "<redacted>";
	size_t len = strlen(s), slen, used = 0, cap;
	ssize_t at;
	char *out, *p = s;

	if (sim_scenario_find_secret(tr, s, len, &slen) == -1)
		return s;
	/* Worst case: every byte a (1-byte) secret. */
	cap = len * sizeof(mark) + 1;
	if ((out = malloc(cap)) == NULL) {
		explicit_bzero(s, len);
		free(s);
		return NULL;
	}
	while ((at = sim_scenario_find_secret(tr, p, len - (size_t)(p - s),
	    &slen)) != -1) {
		memcpy(out + used, p, (size_t)at);
		used += (size_t)at;
		memcpy(out + used, mark, sizeof(mark) - 1);
		used += sizeof(mark) - 1;
		p += (size_t)at + slen;
	}
	strcpy(out + used, p);
	explicit_bzero(s, len);
	free(s);
	return out;
}

void
sim_scenario_transcript_record(struct sim_transcript *tr, int64_t t_ms,
    const char *dir, const cJSON *obj)
{
	char *s;

	if (tr == NULL || tr->fp == NULL)
		return;
	if ((s = cJSON_PrintUnformatted(obj)) == NULL)
		return;
	if ((s = sim_scenario_redact(tr, s)) == NULL)
		return;
	/* Splice "t" and "dir" in front of obj's own members. */
	if (strcmp(s, "{}") == 0)
		fprintf(tr->fp, "{\"t\":%lld,\"dir\":\"%s\"}\n",
		    (long long)t_ms, dir);
	else
		fprintf(tr->fp, "{\"t\":%lld,\"dir\":\"%s\",%s\n",
		    (long long)t_ms, dir, s + 1);
	fflush(tr->fp);
	free(s);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t
sim_scenario_utf8_seq(const unsigned char *s, size_t len)
{
	size_t n, i;
	uint32_t c;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		c = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		c = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		c = s[0] & 0x07;
	} else
		return 0;
	if (n > len)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and past U+10FFFF are not UTF-8. */
	if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) ||
	    (n == 4 && c < 0x10000) || c > 0x10ffff ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n;
}

static int
sim_scenario_utf8_ok(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	while (len > 0) {
		if ((n = sim_scenario_utf8_seq(p, len)) == 0)
			return 0;
		p += n;
		len -= n;
	}
	return 1;
}

/* One object, or an array of the objects on each line (a batch), or
 * NULL when the text is neither. */
static cJSON *
sim_scenario_frames(const char *text, size_t len)
{
	const char *p, *nl, *end = text + len;
	cJSON *one, *all;

	if ((one = sim_scenario_parse_exact(text, len)) != NULL) {
		if (cJSON_IsObject(one))
			return one;
		cJSON_Delete(one);
		return NULL;
	}
	if (memchr(text, '\n', len) == NULL || (all = cJSON_CreateArray()) ==
	    NULL)
		return NULL;
	for (p = text; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		one = sim_scenario_parse_exact(p, (size_t)(nl - p));
		if (!cJSON_IsObject(one)) {
			cJSON_Delete(one);
			cJSON_Delete(all);
			return NULL;
		}
		cJSON_AddItemToArray(all, one);
	}
	return all;
}

void
sim_scenario_transcript_frame(struct sim_transcript *tr, int64_t t_ms,
    const char *dir, const char *text, size_t len)
{
	cJSON *rec, *frame;
	char *copy;
	size_t i;

	if (tr == NULL || tr->fp == NULL)
		return;
	if ((rec = cJSON_CreateObject()) == NULL)
		return;
	frame = NULL;
	if (sim_scenario_utf8_ok(text, len))
		frame = sim_scenario_frames(text, len);
	if (cJSON_IsObject(frame))
		cJSON_AddItemToObject(rec, "frame", frame);
	else if (cJSON_IsArray(frame))
		cJSON_AddItemToObject(rec, "frames", frame);
	else {
		cJSON_Delete(frame);
		/* Keep the transcript valid JSON whatever came: bytes that
		 * are not UTF-8, and NULs, become '?'. */
		if ((copy = malloc(len + 1)) == NULL)
			goto done;
		memcpy(copy, text, len);
		copy[len] = '\0';
		for (i = 0; i < len; i++) {
			size_t n = sim_scenario_utf8_seq(
			    (unsigned char *)copy + i, len - i);

			if (copy[i] == '\0' || n == 0)
				copy[i] = '?';
			else
				i += n - 1;
		}
		cJSON_AddStringToObject(rec, "raw", copy);
		free(copy);
	}
	sim_scenario_transcript_record(tr, t_ms, dir, rec);
done:
	cJSON_Delete(rec);
}

/* --- player --- */

struct sim_action {
	int64_t		 id;
	char		 type[SIM_LABEL_MAX];
	int		 label;		/* or -1 */
	int		 lineno;
	cJSON		*sent;		/* as sent, for cancel */
	char		**events;	/* received, in order */
	size_t		 nevents;
	const cJSON	*expect_list;	/* "events" to match, or NULL */
	int		 ended;		/* a terminal event arrived */
	int		 expect_none;
	size_t		 frame;		/* which frame sent it (0, 1, ...) */
	int64_t		 tx_us;		/* that frame written, or -1 */
	int64_t		 rx_us;		/* its first event arrived, or -1 */
};

enum sim_wait { WAIT_NONE, WAIT_EVENT, WAIT_RECONNECT, WAIT_CLOSE,
    WAIT_SIGNIN, WAIT_FILE };

/* The sign-in answers await_signin knows, and an index for each. */
static const int sim_signin_status[] = { 200, 401, 503 };
#define SIM_NSIGNIN_STATUS	\
	(sizeof(sim_signin_status) / sizeof(sim_signin_status[0]))

struct sim_player {
	const struct sim_scenario *sc;
	struct sim_player_ops	 ops;
	struct sim_transcript	*tr;
	char			 serial[40];

	enum sim_result		 result;
	char			 reason[512];
	size_t			 pc;		/* next step */
	int			 started;
	int			 connected;
	unsigned		 conn_gen;	/* connections so far */
	int			 peer_code;	/* this socket's close code */
	int			 close_code;	/* the last closed one's */
	unsigned		 ncloses;	/* sockets the machine lost */
	int			 signins_used[SIM_NSIGNIN_STATUS];

	enum sim_wait		 wait;
	int			 wait_action;	/* -1: no action_id */
	const char		*wait_event;
	int64_t			 deadline;
	int64_t			 file_deadline;	/* await_file's timeout */
	unsigned		 wait_gen;

	struct sim_action	*actions;	/* one per action sent */
	size_t			 nactions;
	int			*label_action;	/* label -> action */
	int64_t			 next_id;

	int			 have_rx_id;
	int64_t			 last_rx_id;

	/* Latency bookkeeping: frames go out in the order queued, so a
	 * count of frames queued and written maps each write to its
	 * actions. */
	size_t			 nframes;	/* queued with ops.send */
	size_t			 nwritten;	/* reported written */
	size_t			 tx_next;	/* first action not yet written */
	int64_t			 now_us;	/* the message being read */

	struct {
		char	*name;
		int	 used;
	}			*loose;		/* no action_id */
	size_t			 nloose;
};

static void
sim_scenario_vfail(struct sim_player *p, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
sim_scenario_vfail(struct sim_player *p, const char *fmt, va_list ap)
{
	if (p->result != SIM_RUNNING)
		return;
	vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
	p->result = SIM_FAILED;
	p->wait = WAIT_NONE;
	log_debug("failed: %s", p->reason);
}

void
sim_scenario_player_fail(struct sim_player *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sim_scenario_vfail(p, fmt, ap);
	va_end(ap);
}

struct sim_player *
sim_scenario_player_new(const struct sim_scenario *sc,
    const struct sim_player_ops *ops, struct sim_transcript *tr,
    const char *serial)
{
	struct sim_player *p;
	size_t i;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->sc = sc;
	p->ops = *ops;
	p->tr = tr;
	snprintf(p->serial, sizeof(p->serial), "%s", serial);
	p->next_id = SIM_ID_BASE;
	/* Every action the scenario can send has its slot already: the
	 * player never grows past what the file describes. */
	p->actions = calloc(sc->nactions + 1, sizeof(*p->actions));
	p->label_action = calloc(sc->nlabels + 1, sizeof(*p->label_action));
	p->loose = calloc(SIM_LOOSE_MAX, sizeof(*p->loose));
	if (p->actions == NULL || p->label_action == NULL || p->loose == NULL) {
		sim_scenario_player_free(p);
		return NULL;
	}
	for (i = 0; i < sc->nlabels; i++)
		p->label_action[i] = -1;
	return p;
}

void
sim_scenario_player_free(struct sim_player *p)
{
	size_t i, j;

	if (p == NULL)
		return;
	for (i = 0; i < p->nactions; i++) {
		cJSON_Delete(p->actions[i].sent);
		for (j = 0; j < p->actions[i].nevents; j++)
			free(p->actions[i].events[j]);
		free(p->actions[i].events);
	}
	free(p->actions);
	free(p->label_action);
	if (p->loose != NULL)
		for (i = 0; i < p->nloose; i++)
			free(p->loose[i].name);
	free(p->loose);
	free(p);
}

enum sim_result
sim_scenario_player_result(const struct sim_player *p)
{
	return p->result;
}

const char *
sim_scenario_player_reason(const struct sim_player *p)
{
	return p->result == SIM_FAILED ? p->reason : "";
}

int64_t
sim_scenario_player_deadline(const struct sim_player *p)
{
	return p->result == SIM_RUNNING && p->wait != WAIT_NONE ?
	    p->deadline : -1;
}

/* "<action_type>:completed|failed|cancelled", exactly: a sub-phase such as
 * "print:download:completed" does not end the action. */
static int
sim_scenario_terminal(const struct sim_action *a, const char *ev)
{
	return sim_scenario_is_terminal(a->type, ev);
}

static const char *
sim_scenario_action_name(const struct sim_player *p,
    const struct sim_action *a, char *buf, size_t len)
{
	if (a->label != -1)
		snprintf(buf, len, "%s (%s %lld)", p->sc->labels[a->label],
		    a->type, (long long)a->id);
	else
		snprintf(buf, len, "%s %lld", a->type, (long long)a->id);
	return buf;
}

/* "a, b, c" into buf, cut to fit. */
static const char *
sim_scenario_list(char *const *ev, size_t n, char *buf, size_t len)
{
	size_t i, used = 0;
	int w;

	buf[0] = '\0';
	if (n == 0)
		snprintf(buf, len, "nothing");
	for (i = 0; i < n && used < len; i++) {
		w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
		    ev[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	return buf;
}

static int
sim_scenario_id_used(const struct sim_player *p, int64_t id)
{
	size_t i;

	for (i = 0; i < p->nactions; i++)
		if (p->actions[i].id == id)
			return 1;
	return 0;
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

/* The frame for one action template: ids, defaults and URLs filled in.
 * NULL on error (the player has failed). */
static cJSON *
sim_scenario_build(struct sim_player *p, const cJSON *tmpl, int lineno,
    int64_t *idp)
{
	const cJSON *m;
	cJSON *a;
	int64_t id;

	/* An explicit id was checked at parse time to be an integer. */
	m = cJSON_GetObjectItemCaseSensitive(tmpl, "id");
	if (m != NULL) {
		if (!sim_scenario_json_int(m, &id))
			goto oom;
	} else {
		while (sim_scenario_id_used(p, p->next_id))
			p->next_id++;
		id = p->next_id++;
	}
	if (sim_scenario_id_used(p, id) &&
	    !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tmpl, "resend"))) {
		sim_scenario_player_fail(p, "line %d: action id %lld sent "
		    "twice", lineno, (long long)id);
		return NULL;
	}
	if ((a = sim_scenario_action(tmpl, id, p->serial, p->ops.pulse_url,
	    p->ops.upload_url, p->ops.arg)) == NULL)
		goto oom;
	*idp = id;
	return a;
oom:
	sim_scenario_player_fail(p, "line %d: out of memory", lineno);
	return NULL;
}

static int
sim_scenario_send_text(struct sim_player *p, const char *text, int lineno)
{
	if (p->ops.send(p->ops.arg, text, strlen(text)) == -1) {
		sim_scenario_player_fail(p, "line %d: cannot queue the frame",
		    lineno);
		return -1;
	}
	p->nframes++;
	return 0;
}

static void
sim_scenario_do_send(struct sim_player *p, const struct sim_step *st,
    int64_t now)
{
	struct sim_action *a;
	const cJSON *tmpl;
	cJSON *built;
	char *frame = NULL, *s;
	size_t flen = 0, slen;
	int i = 0;
	int64_t id;

	cJSON_ArrayForEach(tmpl, st->actions) {
		if ((built = sim_scenario_build(p, tmpl, st->lineno, &id)) ==
		    NULL)
			goto done;
		a = &p->actions[p->nactions++];
		a->id = id;
		snprintf(a->type, sizeof(a->type), "%s", cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(tmpl, "action_type")));
		a->label = st->labels[i];
		a->lineno = st->lineno;
		a->sent = built;
		a->expect_list = st->events;
		a->frame = p->nframes;
		a->tx_us = a->rx_us = -1;
		if (a->label != -1)
			p->label_action[a->label] = (int)(p->nactions - 1);

		if ((s = cJSON_PrintUnformatted(built)) == NULL) {
			sim_scenario_player_fail(p, "line %d: out of memory",
			    st->lineno);
			goto done;
		}
		/* A batch goes out as one frame, objects split by newlines,
		 * as the service sometimes does. */
		slen = strlen(s);
		if ((frame = realloc(frame, flen + slen + 2)) == NULL) {
			free(s);
			sim_scenario_player_fail(p, "line %d: out of memory",
			    st->lineno);
			goto done;
		}
		if (flen > 0)
			frame[flen++] = '\n';
		memcpy(frame + flen, s, slen + 1);
		flen += slen;
		free(s);
		i++;
	}
	if (sim_scenario_send_text(p, frame, st->lineno) == -1)
		goto done;
	if (st->event != NULL) {
		p->wait = WAIT_EVENT;
		p->wait_action = (int)(p->nactions - 1);
		p->wait_event = st->event;
		p->deadline = now + st->timeout_ms;
	}
done:
	free(frame);
}

static void
sim_scenario_do_cancel(struct sim_player *p, const struct sim_step *st,
    int64_t now)
{
	int ai = p->label_action[st->label];
	struct sim_action *a;
	cJSON *c;
	char *s;

	if (ai == -1) {
		sim_scenario_player_fail(p, "line %d: \"%s\" was never sent",
		    st->lineno, p->sc->labels[st->label]);
		return;
	}
	a = &p->actions[ai];
	if ((c = cJSON_Duplicate(a->sent, 1)) == NULL ||
	    !cJSON_ReplaceItemInObjectCaseSensitive(c, "status",
	    cJSON_CreateString("cancelled")) ||
	    (s = cJSON_PrintUnformatted(c)) == NULL) {
		cJSON_Delete(c);
		sim_scenario_player_fail(p, "line %d: out of memory",
		    st->lineno);
		return;
	}
	cJSON_Delete(c);
	if (st->events != NULL)
		a->expect_list = st->events;
	if (sim_scenario_send_text(p, s, st->lineno) == 0 &&
	    st->event != NULL) {
		p->wait = WAIT_EVENT;
		p->wait_action = ai;
		p->wait_event = st->event;
		p->deadline = now + st->timeout_ms;
	}
	free(s);
}

/* {"pad":"xx...x"}, exactly st->count bytes: valid JSON, and no action. */
static void
sim_scenario_send_big(struct sim_player *p, const struct sim_step *st)
{
	static const char head[] = "{\"pad\":\"", tail[] = "\"}";
	size_t n = (size_t)st->count;
	char *s;
	int i;

	if ((s = malloc(n + 1)) == NULL) {
		sim_scenario_player_fail(p, "line %d: out of memory",
		    st->lineno);
		return;
	}
	memcpy(s, head, sizeof(head) - 1);
	memset(s + sizeof(head) - 1, 'x', n - (sizeof(head) - 1) -
	    (sizeof(tail) - 1));
	memcpy(s + n - (sizeof(tail) - 1), tail, sizeof(tail));
	log_info("line %d: sending %d frame(s) of %zu bytes", st->lineno,
	    st->repeat, n);
	for (i = 0; i < st->repeat; i++)
		if (sim_scenario_send_text(p, s, st->lineno) == -1)
			break;
	free(s);
}

/* 1: the wait is over; 0: not yet; -1: failed. */
static int
sim_scenario_wait_check(struct sim_player *p, int64_t now)
{
	const struct sim_step *st = &p->sc->steps[p->pc];
	struct sim_action *a = NULL;
	char name[96], seen[384];
	size_t i;

	switch (p->wait) {
	case WAIT_NONE:
		return 1;
	case WAIT_RECONNECT:
		if (p->connected && p->conn_gen > p->wait_gen)
			return 1;
		if (now >= p->deadline) {
			sim_scenario_player_fail(p, "line %d: the machine did "
			    "not reconnect within %d ms", st->lineno,
			    st->timeout_ms);
			return -1;
		}
		return 0;
	case WAIT_CLOSE:
		if (p->ncloses > p->wait_gen) {
			if (p->close_code == st->count)
				return 1;
			if (p->close_code == 0)
				sim_scenario_player_fail(p, "line %d: the "
				    "machine closed its socket without a close "
				    "code, expected %d", st->lineno, st->count);
			else
				sim_scenario_player_fail(p, "line %d: the "
				    "machine closed its socket with code %d, "
				    "expected %d", st->lineno, p->close_code,
				    st->count);
			return -1;
		}
		if (now >= p->deadline) {
			sim_scenario_player_fail(p, "line %d: the machine did "
			    "not close its socket within %d ms", st->lineno,
			    st->timeout_ms);
			return -1;
		}
		return 0;
	case WAIT_SIGNIN:
		for (i = 0; i < SIM_NSIGNIN_STATUS; i++)
			if (sim_signin_status[i] == st->count)
				break;
		if (i < SIM_NSIGNIN_STATUS && p->ops.signins(p->ops.arg,
		    st->count) > p->signins_used[i]) {
			p->signins_used[i]++;
			return 1;
		}
		if (now >= p->deadline) {
			sim_scenario_player_fail(p, "line %d: no sign-in "
			    "answered %d within %d ms", st->lineno, st->count,
			    st->timeout_ms);
			return -1;
		}
		return 0;
	case WAIT_FILE:
		if (p->ops.file_exists(p->ops.arg, st->raw))
			return 1;
		if (now >= p->file_deadline) {
			sim_scenario_player_fail(p, "line %d: no file %s within "
			    "%d ms", st->lineno, st->raw, st->timeout_ms);
			return -1;
		}
		/* Nothing else wakes the player: look again soon. */
		p->deadline = now + SIM_FILE_POLL_MS < p->file_deadline ?
		    now + SIM_FILE_POLL_MS : p->file_deadline;
		return 0;
	case WAIT_EVENT:
		break;
	}
	if (p->wait_action == -1) {
		for (i = 0; i < p->nloose; i++)
			if (!p->loose[i].used &&
			    strcmp(p->loose[i].name, p->wait_event) == 0) {
				p->loose[i].used = 1;
				return 1;
			}
	} else {
		a = &p->actions[p->wait_action];
		for (i = 0; i < a->nevents; i++) {
			if (strcmp(a->events[i], p->wait_event) == 0)
				return 1;
			if (sim_scenario_terminal(a, a->events[i])) {
				sim_scenario_player_fail(p, "line %d: %s ended "
				    "with %s while waiting for %s (saw: %s)",
				    st->lineno, sim_scenario_action_name(p, a,
				    name, sizeof(name)), a->events[i],
				    p->wait_event, sim_scenario_list(a->events,
				    a->nevents, seen, sizeof(seen)));
				return -1;
			}
		}
	}
	if (now >= p->deadline) {
		if (a != NULL)
			sim_scenario_player_fail(p, "line %d: no %s for %s "
			    "within %d ms (saw: %s)", st->lineno,
			    p->wait_event, sim_scenario_action_name(p, a, name,
			    sizeof(name)), st->timeout_ms,
			    sim_scenario_list(a->events, a->nevents, seen,
			    sizeof(seen)));
		else
			sim_scenario_player_fail(p, "line %d: no %s within "
			    "%d ms", st->lineno, p->wait_event,
			    st->timeout_ms);
		return -1;
	}
	return 0;
}

/* After the last line: every action with an "events" list has ended. */
static void
sim_scenario_finish(struct sim_player *p)
{
	struct sim_action *a;
	char name[96], seen[384];
	size_t i;

	for (i = 0; i < p->nactions; i++) {
		a = &p->actions[i];
		if (a->expect_list != NULL && !a->ended) {
			sim_scenario_player_fail(p, "line %d: %s never ended "
			    "(saw: %s)", a->lineno, sim_scenario_action_name(p,
			    a, name, sizeof(name)), sim_scenario_list(
			    a->events, a->nevents, seen, sizeof(seen)));
			return;
		}
	}
	p->result = SIM_PASSED;
	log_info("scenario %s: all %zu lines passed", p->sc->name,
	    p->sc->nsteps);
}

/* Plays lines until one has to wait, the end, or a failure. */
static void
sim_scenario_run(struct sim_player *p, int64_t now)
{
	const struct sim_step *st;
	struct sim_action *a;
	int ai, r;

	while (p->result == SIM_RUNNING && p->started &&
	    p->pc < p->sc->nsteps) {
		st = &p->sc->steps[p->pc];
		if (p->wait != WAIT_NONE) {
			if ((r = sim_scenario_wait_check(p, now)) != 1)
				return;
			p->wait = WAIT_NONE;
			p->pc++;
			continue;
		}
		log_debug("line %d", st->lineno);
		switch (st->kind) {
		case STEP_SEND:
			sim_scenario_do_send(p, st, now);
			break;
		case STEP_CANCEL:
			sim_scenario_do_cancel(p, st, now);
			break;
		case STEP_AWAIT:
			p->wait = WAIT_EVENT;
			p->wait_action = -1;
			if (st->label != -1) {
				p->wait_action = p->label_action[st->label];
				if (p->wait_action == -1) {
					sim_scenario_player_fail(p, "line %d: "
					    "\"%s\" was never sent", st->lineno,
					    p->sc->labels[st->label]);
					return;
				}
			}
			p->wait_event = st->event;
			p->deadline = now + st->timeout_ms;
			break;
		case STEP_RAW:
			sim_scenario_send_text(p, st->raw, st->lineno);
			break;
		case STEP_EXPECT_NONE:
			ai = p->label_action[st->label];
			if (ai == -1) {
				sim_scenario_player_fail(p, "line %d: \"%s\" "
				    "was never sent", st->lineno,
				    p->sc->labels[st->label]);
				return;
			}
			a = &p->actions[ai];
			a->expect_none = 1;
			if (a->nevents > 0)
				sim_scenario_player_fail(p, "line %d: %s got "
				    "%s, expected no event", st->lineno,
				    p->sc->labels[st->label], a->events[0]);
			break;
		case STEP_DROP:
			log_info("line %d: dropping the connection",
			    st->lineno);
			p->ops.drop(p->ops.arg);
			p->connected = 0;
			if (!st->reconnect)
				break;
			p->wait = WAIT_RECONNECT;
			p->wait_gen = p->conn_gen;
			p->deadline = now + st->timeout_ms;
			break;
		case STEP_SEND_BIG:
			sim_scenario_send_big(p, st);
			break;
		case STEP_EXPECT_CLOSE:
			/* A close already seen belongs to an earlier line. */
			p->wait = WAIT_CLOSE;
			p->wait_gen = p->ncloses;
			p->deadline = now + st->timeout_ms;
			break;
		case STEP_AWAIT_SIGNIN:
			p->wait = WAIT_SIGNIN;
			p->deadline = now + st->timeout_ms;
			break;
		case STEP_AWAIT_FILE:
			log_info("line %d: waiting for the file %s", st->lineno,
			    st->raw);
			p->wait = WAIT_FILE;
			p->file_deadline = p->deadline = now + st->timeout_ms;
			break;
		case STEP_KNOB:
			p->ops.knob(p->ops.arg, st->knob, st->count);
			break;
		}
		if (p->wait == WAIT_NONE && p->result == SIM_RUNNING)
			p->pc++;
	}
	if (p->result == SIM_RUNNING && p->pc == p->sc->nsteps)
		sim_scenario_finish(p);
}

void
sim_scenario_player_connected(struct sim_player *p, int64_t now_ms)
{
	p->connected = 1;
	p->conn_gen++;
	if (!p->started)
		log_info("machine connected: playing %s", p->sc->name);
	else
		log_info("machine reconnected (connection %u)", p->conn_gen);
	p->started = 1;
	sim_scenario_run(p, now_ms);
}

void
sim_scenario_player_peer_close(struct sim_player *p, int code)
{
	log_info("the machine sent a close frame (code %d)", code);
	p->peer_code = code;
}

void
sim_scenario_player_disconnected(struct sim_player *p, int64_t now_ms)
{
	if (p->connected && p->wait != WAIT_RECONNECT &&
	    p->result == SIM_RUNNING)
		log_notice("the machine's connection closed");
	if (p->connected) {
		/* The machine's doing, not a drop's: note how it closed. */
		p->close_code = p->peer_code;
		p->ncloses++;
	}
	p->peer_code = 0;
	p->connected = 0;
	sim_scenario_run(p, now_ms);
}

void
sim_scenario_player_tick(struct sim_player *p, int64_t now_ms)
{
	sim_scenario_run(p, now_ms);
}

static int
sim_scenario_frame_fail(struct sim_player *p, const char *why,
    const char *line, size_t len)
{
	sim_scenario_player_fail(p, "bad frame from the machine: %s: %.*s",
	    why, (int)(len > 120 ? 120 : len), line);
	return -1;
}

static int
sim_scenario_rx_event(struct sim_player *p, const cJSON *f, const char *line,
    size_t len)
{
	const cJSON *ev = cJSON_GetObjectItemCaseSensitive(f, "event");
	const cJSON *aid = cJSON_GetObjectItemCaseSensitive(f, "action_id");
	const cJSON *want;
	struct sim_action *a = NULL;
	char name[96], seen[384], **ne;
	int64_t id;
	size_t i;
	int k;

	if (!cJSON_IsString(ev) || !sim_scenario_event_ok(ev->valuestring))
		return sim_scenario_frame_fail(p, "no valid \"event\"", line,
		    len);
	if (aid == NULL) {
		if (p->nloose == SIM_LOOSE_MAX) {
			sim_scenario_player_fail(p, "more than %d events "
			    "without an action_id", SIM_LOOSE_MAX);
			return -1;
		}
		if ((p->loose[p->nloose].name = strdup(ev->valuestring)) ==
		    NULL) {
			sim_scenario_player_fail(p, "out of memory");
			return -1;
		}
		p->nloose++;
		return 0;
	}
	if (!sim_scenario_json_int(aid, &id))
		return sim_scenario_frame_fail(p, "\"action_id\" is not an "
		    "integer", line, len);
	for (i = 0; i < p->nactions; i++)
		if (p->actions[i].id == id)
			a = &p->actions[i];
	if (a == NULL) {
		sim_scenario_player_fail(p, "event %s for action %lld, which "
		    "the sim never sent", ev->valuestring, (long long)id);
		return -1;
	}
	if (a->rx_us == -1)
		a->rx_us = p->now_us;
	sim_scenario_action_name(p, a, name, sizeof(name));
	if (a->expect_none) {
		sim_scenario_player_fail(p, "%s got %s, expected no event",
		    name, ev->valuestring);
		return -1;
	}
	if (a->ended && sim_scenario_terminal(a, ev->valuestring)) {
		sim_scenario_player_fail(p, "%s: a second terminal event, %s "
		    "(saw: %s)", name, ev->valuestring, sim_scenario_list(
		    a->events, a->nevents, seen, sizeof(seen)));
		return -1;
	}
	if (a->nevents == SIM_EVENTS_PER_ACTION) {
		sim_scenario_player_fail(p, "%s: more than %d events", name,
		    SIM_EVENTS_PER_ACTION);
		return -1;
	}
	ne = reallocarray(a->events, a->nevents + 1, sizeof(*ne));
	if (ne == NULL || (ne[a->nevents] = strdup(ev->valuestring)) == NULL) {
		if (ne != NULL)
			a->events = ne;
		sim_scenario_player_fail(p, "out of memory");
		return -1;
	}
	a->events = ne;
	a->nevents++;
	log_debug("%s: %s", name, ev->valuestring);

	/* The service trusts ":upload:completed": make sure it is true. */
	snprintf(seen, sizeof(seen), "%s:upload:completed", a->type);
	if (strcmp(ev->valuestring, seen) == 0 &&
	    p->ops.uploads(p->ops.arg, a->id) == 0) {
		sim_scenario_player_fail(p, "%s: %s but no valid image was "
		    "uploaded", name, ev->valuestring);
		return -1;
	}

	if (!sim_scenario_terminal(a, ev->valuestring))
		return 0;
	a->ended = 1;
	if (a->expect_list == NULL)
		return 0;
	k = 0;
	cJSON_ArrayForEach(want, a->expect_list) {
		if ((size_t)k >= a->nevents ||
		    strcmp(want->valuestring, a->events[k]) != 0)
			break;
		k++;
	}
	if (want != NULL || (size_t)k != a->nevents) {
		char *w = cJSON_PrintUnformatted(a->expect_list);

		sim_scenario_player_fail(p, "line %d: %s: events differ at "
		    "#%d: got [%s], expected %s", a->lineno, name, k + 1,
		    sim_scenario_list(a->events, a->nevents, seen,
		    sizeof(seen)), w != NULL ? w : "?");
		free(w);
		return -1;
	}
	return 0;
}

/* One line from the machine: a frame of PROTOCOL.md 4.2. */
static int
sim_scenario_rx_line(struct sim_player *p, const char *line, size_t len)
{
	const cJSON *type, *m;
	cJSON *f;
	int64_t v;
	int r = -1;

	if (len == 0)
		return sim_scenario_frame_fail(p, "an empty line", line, len);
	f = sim_scenario_parse_exact(line, len);
	if (!cJSON_IsObject(f)) {
		sim_scenario_frame_fail(p, "not a JSON object", line, len);
		goto done;
	}
	type = cJSON_GetObjectItemCaseSensitive(f, "type");
	if (!cJSON_IsString(type) || (strcmp(type->valuestring, "event") != 0 &&
	    strcmp(type->valuestring, "log") != 0 &&
	    strcmp(type->valuestring, "progress") != 0)) {
		sim_scenario_frame_fail(p, "\"type\" is not event, log or "
		    "progress", line, len);
		goto done;
	}
	m = cJSON_GetObjectItemCaseSensitive(f, "version");
	if (!sim_scenario_json_int(m, &v) || v != 1) {
		sim_scenario_frame_fail(p, "\"version\" is not 1", line, len);
		goto done;
	}
	m = cJSON_GetObjectItemCaseSensitive(f, "timestamp");
	if (!sim_scenario_json_int(m, &v) || v < 0) {
		sim_scenario_frame_fail(p, "\"timestamp\" is not an integer",
		    line, len);
		goto done;
	}
	m = cJSON_GetObjectItemCaseSensitive(f, "id");
	if (!sim_scenario_json_int(m, &v)) {
		sim_scenario_frame_fail(p, "\"id\" is not an integer", line,
		    len);
		goto done;
	}
	if (p->have_rx_id && v <= p->last_rx_id) {
		char why[96];

		snprintf(why, sizeof(why), "\"id\" %lld does not rise past "
		    "%lld", (long long)v, (long long)p->last_rx_id);
		sim_scenario_frame_fail(p, why, line, len);
		goto done;
	}
	p->have_rx_id = 1;
	p->last_rx_id = v;

	if (strcmp(type->valuestring, "event") == 0)
		r = sim_scenario_rx_event(p, f, line, len);
	else if (strcmp(type->valuestring, "log") == 0) {
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(f,
		    "log")))
			sim_scenario_frame_fail(p, "a log without \"log\"",
			    line, len);
		else
			r = 0;
	} else {
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(f,
		    "progress")))
			sim_scenario_frame_fail(p, "a progress without "
			    "\"progress\"", line, len);
		else
			r = 0;
	}
done:
	cJSON_Delete(f);
	return r;
}

void
sim_scenario_player_rx(struct sim_player *p, const char *msg, size_t len,
    int64_t now_ms)
{
	sim_scenario_player_rx_us(p, msg, len, now_ms * 1000);
}

void
sim_scenario_player_rx_us(struct sim_player *p, const char *msg, size_t len,
    int64_t now_us)
{
	const char *line = msg, *end = msg + len, *nl;
	int64_t now_ms = now_us / 1000;
	size_t n;

	p->now_us = now_us;

	/* Record first: the transcript must show what failed. */
	while (line < end) {
		nl = memchr(line, '\n', (size_t)(end - line));
		n = nl != NULL ? (size_t)(nl - line) : (size_t)(end - line);
		sim_scenario_transcript_frame(p->tr, now_ms, "rx", line, n);
		line += n + 1;
	}
	if (p->result != SIM_RUNNING)
		return;
	if (p->tr != NULL && sim_scenario_transcript_leaks(p->tr, msg, len)) {
		sim_scenario_player_fail(p, "a frame from the machine holds a "
		    "secret (password or token)");
		return;
	}
	if (!sim_scenario_utf8_ok(msg, len)) {
		sim_scenario_player_fail(p, "a frame from the machine is not "
		    "UTF-8");
		return;
	}
	if (len == 0 || msg[len - 1] != '\n') {
		sim_scenario_frame_fail(p, "not newline-terminated", msg, len);
		return;
	}
	for (line = msg; line < end; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (sim_scenario_rx_line(p, line, (size_t)(nl - line)) == -1)
			return;
	}
	sim_scenario_run(p, now_ms);
}

void
sim_scenario_player_written(struct sim_player *p, int64_t now_us)
{
	size_t f;

	if (p->nwritten == p->nframes)
		return;		/* not a frame of ours: nothing to time */
	f = p->nwritten++;
	/* A close awaited after the frames that bring it: the machine's
	 * time starts as the last of them goes to the kernel, not when it
	 * was queued (send_big's 8 MiB take the sim itself seconds under a
	 * sanitizer, time the machine never had). */
	if (p->wait == WAIT_CLOSE && p->nwritten == p->nframes &&
	    now_us / 1000 + p->sc->steps[p->pc].timeout_ms > p->deadline)
		p->deadline = now_us / 1000 + p->sc->steps[p->pc].timeout_ms;
	/* Actions are stored in the order sent, so their frame numbers
	 * never decrease: the ones in frame f are next in line. */
	while (p->tx_next < p->nactions &&
	    p->actions[p->tx_next].frame <= f) {
		if (p->actions[p->tx_next].frame == f)
			p->actions[p->tx_next].tx_us = now_us;
		p->tx_next++;
	}
}

static int
sim_scenario_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile pct of the n sorted values. */
static int64_t
sim_scenario_rank(const int64_t *v, size_t n, unsigned pct)
{
	size_t r = (n * pct + 99) / 100;

	return v[r > 0 ? r - 1 : 0];
}

/* The latency of action a in us, or -1 when it was not measured. */
static int64_t
sim_scenario_action_latency(const struct sim_action *a)
{
	if (a->tx_us < 0 || a->rx_us < 0 || a->rx_us < a->tx_us)
		return -1;
	return a->rx_us - a->tx_us;
}

int
sim_scenario_player_latency(const struct sim_player *p,
    struct sim_latency *lat)
{
	int64_t *v, us;
	size_t i, n = 0;

	memset(lat, 0, sizeof(*lat));
	if (p->nactions == 0)
		return 0;
	if ((v = calloc(p->nactions, sizeof(*v))) == NULL)
		return -1;
	for (i = 0; i < p->nactions; i++)
		if ((us = sim_scenario_action_latency(&p->actions[i])) >= 0)
			v[n++] = us;
	if (n > 0) {
		qsort(v, n, sizeof(*v), sim_scenario_cmp_i64);
		lat->count = n;
		lat->p50 = sim_scenario_rank(v, n, 50);
		lat->p90 = sim_scenario_rank(v, n, 90);
		lat->p99 = sim_scenario_rank(v, n, 99);
		lat->max = v[n - 1];
	}
	free(v);
	return 0;
}

int
sim_scenario_player_latencies(const struct sim_player *p, FILE *fp)
{
	const struct sim_action *a;
	int64_t us;
	size_t i;

	for (i = 0; i < p->nactions; i++) {
		a = &p->actions[i];
		if ((us = sim_scenario_action_latency(a)) >= 0)
			fprintf(fp, "%lld %s %lld\n", (long long)a->id,
			    a->type, (long long)us);
	}
	return fflush(fp) == 0 && !ferror(fp) ? 0 : -1;
}

void
sim_scenario_player_where(const struct sim_player *p, char *buf, size_t len)
{
	const struct sim_step *st;
	char name[96];

	if (!p->started) {
		snprintf(buf, len, "the machine never connected");
		return;
	}
	if (p->pc >= p->sc->nsteps) {
		snprintf(buf, len, "after the last line");
		return;
	}
	st = &p->sc->steps[p->pc];
	switch (p->wait) {
	case WAIT_EVENT:
		if (p->wait_action != -1)
			snprintf(buf, len, "line %d: waiting for %s from %s",
			    st->lineno, p->wait_event,
			    sim_scenario_action_name(p,
			    &p->actions[p->wait_action], name, sizeof(name)));
		else
			snprintf(buf, len, "line %d: waiting for %s",
			    st->lineno, p->wait_event);
		break;
	case WAIT_RECONNECT:
		snprintf(buf, len, "line %d: waiting for a reconnect",
		    st->lineno);
		break;
	case WAIT_CLOSE:
		snprintf(buf, len, "line %d: waiting for the machine to close "
		    "with %d", st->lineno, st->count);
		break;
	case WAIT_SIGNIN:
		snprintf(buf, len, "line %d: waiting for a sign-in answered "
		    "%d", st->lineno, st->count);
		break;
	case WAIT_FILE:
		snprintf(buf, len, "line %d: waiting for the file %s",
		    st->lineno, st->raw);
		break;
	case WAIT_NONE:
		snprintf(buf, len, "line %d", st->lineno);
		break;
	}
}

void
sim_scenario_player_summary(const struct sim_player *p, FILE *fp)
{
	struct sim_latency lat;
	const struct sim_action *a;
	char name[96];
	size_t i, j;

	for (i = 0; i < p->nactions; i++) {
		a = &p->actions[i];
		fprintf(fp, "line %d %s:", a->lineno,
		    sim_scenario_action_name(p, a, name, sizeof(name)));
		for (j = 0; j < a->nevents; j++)
			fprintf(fp, " %s", a->events[j]);
		if (a->nevents == 0)
			fprintf(fp, " (no event)");
		else if (!a->ended)
			fprintf(fp, " (not ended)");
		fputc('\n', fp);
	}
	for (i = 0; i < p->nloose; i++)
		fprintf(fp, "event without action_id: %s\n", p->loose[i].name);
	if (sim_scenario_player_latency(p, &lat) == 0 && lat.count > 0)
		fprintf(fp, "latency: %zu actions, frame written to first "
		    "event: p50 %lld us, p90 %lld us, p99 %lld us, max %lld "
		    "us\n", lat.count, (long long)lat.p50, (long long)lat.p90,
		    (long long)lat.p99, (long long)lat.max);
	if (p->result == SIM_FAILED)
		fprintf(fp, "FAILED: %s\n", p->reason);
	else if (p->result == SIM_PASSED)
		fprintf(fp, "PASSED\n");
	else
		fprintf(fp, "UNFINISHED at step %zu of %zu\n", p->pc + 1,
		    p->sc->nsteps);
	fflush(fp);
}
