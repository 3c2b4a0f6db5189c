/*
 * sim_player: see sim_player.h.
 *
 * Every frame from the machine is checked: newline-terminated JSON objects,
 * valid UTF-8, "type" event/log/progress, "version" 1, "id" an integer rising
 * strictly over the whole run, "timestamp" an integer, events naming an
 * action the sim sent, at most one terminal event per action, an
 * ":upload:completed" only after an image really arrived, no secret.  The
 * first failure ends the run.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "sim_player.h"
#include "sim_scenario.h"
#include "sim_transcript.h"

#define SIM_LOOSE_MAX		1024	/* events without action_id */
#define SIM_FILE_POLL_MS	50	/* await_file: ms between looks */

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
static const int sim_player_signin_status[] = { 200, 401, 503 };
#define SIM_NSIGNIN_STATUS	\
	(sizeof(sim_player_signin_status) / sizeof(sim_player_signin_status[0]))

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
sim_player_vfail(struct sim_player *p, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
sim_player_vfail(struct sim_player *p, const char *fmt, va_list ap)
{
	if (p->result != SIM_RUNNING)
		return;
	vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
	p->result = SIM_FAILED;
	p->wait = WAIT_NONE;
	log_debug("failed: %s", p->reason);
}

void
sim_player_fail(struct sim_player *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sim_player_vfail(p, fmt, ap);
	va_end(ap);
}

struct sim_player *
sim_player_new(const struct sim_scenario *sc,
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
	p->actions = calloc(sim_scenario_actions(sc) + 1, sizeof(*p->actions));
	p->label_action = calloc(sim_scenario_labels(sc) + 1,
	    sizeof(*p->label_action));
	p->loose = calloc(SIM_LOOSE_MAX, sizeof(*p->loose));
	if (p->actions == NULL || p->label_action == NULL || p->loose == NULL) {
		sim_player_free(p);
		return NULL;
	}
	for (i = 0; i < sim_scenario_labels(sc); i++)
		p->label_action[i] = -1;
	return p;
}

void
sim_player_free(struct sim_player *p)
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
sim_player_result(const struct sim_player *p)
{
	return p->result;
}

const char *
sim_player_reason(const struct sim_player *p)
{
	return p->result == SIM_FAILED ? p->reason : "";
}

int64_t
sim_player_deadline(const struct sim_player *p)
{
	return p->result == SIM_RUNNING && p->wait != WAIT_NONE ?
	    p->deadline : -1;
}

/* "<action_type>:completed|failed|cancelled", exactly: a sub-phase such as
 * "print:download:completed" does not end the action. */
static int
sim_player_terminal(const struct sim_action *a, const char *ev)
{
	return sim_scenario_is_terminal(a->type, ev);
}

static const char *
sim_player_action_name(const struct sim_player *p,
    const struct sim_action *a, char *buf, size_t len)
{
	if (a->label != -1)
		snprintf(buf, len, "%s (%s %lld)",
		    sim_scenario_label(p->sc, a->label),
		    a->type, (long long)a->id);
	else
		snprintf(buf, len, "%s %lld", a->type, (long long)a->id);
	return buf;
}

/* "a, b, c" into buf, cut to fit. */
static const char *
sim_player_list(char *const *ev, size_t n, char *buf, size_t len)
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
sim_player_id_used(const struct sim_player *p, int64_t id)
{
	size_t i;

	for (i = 0; i < p->nactions; i++)
		if (p->actions[i].id == id)
			return 1;
	return 0;
}

/* The frame for one action template: ids, defaults and URLs filled in.
 * NULL on error (the player has failed). */
static cJSON *
sim_player_build(struct sim_player *p, const cJSON *tmpl, int lineno,
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
		while (sim_player_id_used(p, p->next_id))
			p->next_id++;
		id = p->next_id++;
	}
	if (sim_player_id_used(p, id) &&
	    !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tmpl, "resend"))) {
		sim_player_fail(p, "line %d: action id %lld sent "
		    "twice", lineno, (long long)id);
		return NULL;
	}
	if ((a = sim_scenario_action(tmpl, id, p->serial, p->ops.pulse_url,
	    p->ops.upload_url, p->ops.arg)) == NULL)
		goto oom;
	*idp = id;
	return a;
oom:
	sim_player_fail(p, "line %d: out of memory", lineno);
	return NULL;
}

static int
sim_player_send_text(struct sim_player *p, const char *text, int lineno)
{
	if (p->ops.send(p->ops.arg, text, strlen(text)) == -1) {
		sim_player_fail(p, "line %d: cannot queue the frame",
		    lineno);
		return -1;
	}
	p->nframes++;
	return 0;
}

static void
sim_player_do_send(struct sim_player *p, const struct sim_step *st,
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
		if ((built = sim_player_build(p, tmpl, st->lineno, &id)) ==
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
			sim_player_fail(p, "line %d: out of memory",
			    st->lineno);
			goto done;
		}
		/* A batch goes out as one frame, objects split by newlines,
		 * as the service sometimes does. */
		slen = strlen(s);
		if ((frame = realloc(frame, flen + slen + 2)) == NULL) {
			free(s);
			sim_player_fail(p, "line %d: out of memory",
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
	if (sim_player_send_text(p, frame, st->lineno) == -1)
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
sim_player_do_cancel(struct sim_player *p, const struct sim_step *st,
    int64_t now)
{
	int ai = p->label_action[st->label];
	struct sim_action *a;
	cJSON *c;
	char *s;

	if (ai == -1) {
		sim_player_fail(p, "line %d: \"%s\" was never sent",
		    st->lineno, sim_scenario_label(p->sc, st->label));
		return;
	}
	a = &p->actions[ai];
	if ((c = cJSON_Duplicate(a->sent, 1)) == NULL ||
	    !cJSON_ReplaceItemInObjectCaseSensitive(c, "status",
	    cJSON_CreateString("cancelled")) ||
	    (s = cJSON_PrintUnformatted(c)) == NULL) {
		cJSON_Delete(c);
		sim_player_fail(p, "line %d: out of memory",
		    st->lineno);
		return;
	}
	cJSON_Delete(c);
	if (st->events != NULL)
		a->expect_list = st->events;
	if (sim_player_send_text(p, s, st->lineno) == 0 &&
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
sim_player_send_big(struct sim_player *p, const struct sim_step *st)
{
	static const char head[] = "{\"pad\":\"", tail[] = "\"}";
	size_t n = (size_t)st->count;
	char *s;
	int i;

	if ((s = malloc(n + 1)) == NULL) {
		sim_player_fail(p, "line %d: out of memory",
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
		if (sim_player_send_text(p, s, st->lineno) == -1)
			break;
	free(s);
}

static int
sim_player_late(struct sim_player *p, int64_t now, int64_t deadline,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A wait's deadline: -1 (and failed with that message) once it passed,
 * else 0. */
static int
sim_player_late(struct sim_player *p, int64_t now, int64_t deadline,
    const char *fmt, ...)
{
	va_list ap;

	if (now < deadline)
		return 0;
	va_start(ap, fmt);
	sim_player_vfail(p, fmt, ap);
	va_end(ap);
	return -1;
}

static int
sim_player_wait_reconnect(struct sim_player *p, const struct sim_step *st,
    int64_t now)
{
	if (p->connected && p->conn_gen > p->wait_gen)
		return 1;
	return sim_player_late(p, now, p->deadline, "line %d: the machine "
	    "did not reconnect within %d ms", st->lineno, st->timeout_ms);
}

static int
sim_player_wait_close(struct sim_player *p, const struct sim_step *st,
    int64_t now)
{
	if (p->ncloses > p->wait_gen) {
		if (p->close_code == st->count)
			return 1;
		if (p->close_code == 0)
			sim_player_fail(p, "line %d: the machine closed its "
			    "socket without a close code, expected %d",
			    st->lineno, st->count);
		else
			sim_player_fail(p, "line %d: the machine closed its "
			    "socket with code %d, expected %d", st->lineno,
			    p->close_code, st->count);
		return -1;
	}
	return sim_player_late(p, now, p->deadline, "line %d: the machine "
	    "did not close its socket within %d ms", st->lineno,
	    st->timeout_ms);
}

static int
sim_player_wait_signin(struct sim_player *p, const struct sim_step *st,
    int64_t now)
{
	size_t i;

	for (i = 0; i < SIM_NSIGNIN_STATUS; i++)
		if (sim_player_signin_status[i] == st->count)
			break;
	if (i < SIM_NSIGNIN_STATUS && p->ops.signins(p->ops.arg,
	    st->count) > p->signins_used[i]) {
		p->signins_used[i]++;
		return 1;
	}
	return sim_player_late(p, now, p->deadline, "line %d: no sign-in "
	    "answered %d within %d ms", st->lineno, st->count,
	    st->timeout_ms);
}

static int
sim_player_wait_file(struct sim_player *p, const struct sim_step *st,
    int64_t now)
{
	if (p->ops.file_exists(p->ops.arg, st->raw))
		return 1;
	if (sim_player_late(p, now, p->file_deadline, "line %d: no file %s "
	    "within %d ms", st->lineno, st->raw, st->timeout_ms) == -1)
		return -1;
	/* Nothing else wakes the player: look again soon. */
	p->deadline = now + SIM_FILE_POLL_MS < p->file_deadline ?
	    now + SIM_FILE_POLL_MS : p->file_deadline;
	return 0;
}

static int
sim_player_wait_event(struct sim_player *p, const struct sim_step *st,
    int64_t now)
{
	struct sim_action *a = NULL;
	char name[96], seen[384];
	size_t i;

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
			if (sim_player_terminal(a, a->events[i])) {
				sim_player_fail(p, "line %d: %s ended "
				    "with %s while waiting for %s (saw: %s)",
				    st->lineno, sim_player_action_name(p, a,
				    name, sizeof(name)), a->events[i],
				    p->wait_event, sim_player_list(a->events,
				    a->nevents, seen, sizeof(seen)));
				return -1;
			}
		}
	}
	if (now >= p->deadline) {
		if (a != NULL)
			sim_player_fail(p, "line %d: no %s for %s "
			    "within %d ms (saw: %s)", st->lineno,
			    p->wait_event, sim_player_action_name(p, a, name,
			    sizeof(name)), st->timeout_ms,
			    sim_player_list(a->events, a->nevents, seen,
			    sizeof(seen)));
		else
			sim_player_fail(p, "line %d: no %s within "
			    "%d ms", st->lineno, p->wait_event,
			    st->timeout_ms);
		return -1;
	}
	return 0;
}

/* 1: the wait is over; 0: not yet; -1: failed. */
static int
sim_player_wait_check(struct sim_player *p, int64_t now)
{
	const struct sim_step *st = sim_scenario_step(p->sc, p->pc);

	switch (p->wait) {
	case WAIT_NONE:
		return 1;
	case WAIT_RECONNECT:
		return sim_player_wait_reconnect(p, st, now);
	case WAIT_CLOSE:
		return sim_player_wait_close(p, st, now);
	case WAIT_SIGNIN:
		return sim_player_wait_signin(p, st, now);
	case WAIT_FILE:
		return sim_player_wait_file(p, st, now);
	case WAIT_EVENT:
		break;
	}
	return sim_player_wait_event(p, st, now);
}

/* After the last line: every action with an "events" list has ended. */
static void
sim_player_finish(struct sim_player *p)
{
	struct sim_action *a;
	char name[96], seen[384];
	size_t i;

	for (i = 0; i < p->nactions; i++) {
		a = &p->actions[i];
		if (a->expect_list != NULL && !a->ended) {
			sim_player_fail(p, "line %d: %s never ended "
			    "(saw: %s)", a->lineno, sim_player_action_name(p,
			    a, name, sizeof(name)), sim_player_list(
			    a->events, a->nevents, seen, sizeof(seen)));
			return;
		}
	}
	p->result = SIM_PASSED;
	log_info("scenario %s: all %zu lines passed", sim_scenario_name(p->sc),
	    sim_scenario_steps(p->sc));
}

/* An await line: wait for its event, of its action when labelled. */
static void
sim_player_await(struct sim_player *p, const struct sim_step *st,
    int64_t now)
{
	p->wait = WAIT_EVENT;
	p->wait_action = -1;
	if (st->label != -1) {
		p->wait_action = p->label_action[st->label];
		if (p->wait_action == -1) {
			sim_player_fail(p, "line %d: \"%s\" was never sent",
			    st->lineno, sim_scenario_label(p->sc, st->label));
			return;
		}
	}
	p->wait_event = st->event;
	p->deadline = now + st->timeout_ms;
}

/* An expect_none line: the action must have no event, now or later. */
static void
sim_player_expect_none(struct sim_player *p, const struct sim_step *st)
{
	struct sim_action *a;
	int ai = p->label_action[st->label];

	if (ai == -1) {
		sim_player_fail(p, "line %d: \"%s\" was never sent",
		    st->lineno, sim_scenario_label(p->sc, st->label));
		return;
	}
	a = &p->actions[ai];
	a->expect_none = 1;
	if (a->nevents > 0)
		sim_player_fail(p, "line %d: %s got %s, expected no event",
		    st->lineno, sim_scenario_label(p->sc, st->label),
		    a->events[0]);
}

/* Plays lines until one has to wait, the end, or a failure. */
static void
sim_player_run(struct sim_player *p, int64_t now)
{
	const struct sim_step *st;
	int r;

	while (p->result == SIM_RUNNING && p->started &&
	    p->pc < sim_scenario_steps(p->sc)) {
		st = sim_scenario_step(p->sc, p->pc);
		if (p->wait != WAIT_NONE) {
			if ((r = sim_player_wait_check(p, now)) != 1)
				return;
			p->wait = WAIT_NONE;
			p->pc++;
			continue;
		}
		log_debug("line %d", st->lineno);
		switch (st->kind) {
		case SIM_STEP_SEND:
			sim_player_do_send(p, st, now);
			break;
		case SIM_STEP_CANCEL:
			sim_player_do_cancel(p, st, now);
			break;
		case SIM_STEP_AWAIT:
			sim_player_await(p, st, now);
			break;
		case SIM_STEP_RAW:
			sim_player_send_text(p, st->raw, st->lineno);
			break;
		case SIM_STEP_EXPECT_NONE:
			sim_player_expect_none(p, st);
			break;
		case SIM_STEP_DROP:
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
		case SIM_STEP_SEND_BIG:
			sim_player_send_big(p, st);
			break;
		case SIM_STEP_EXPECT_CLOSE:
			/* A close already seen belongs to an earlier line. */
			p->wait = WAIT_CLOSE;
			p->wait_gen = p->ncloses;
			p->deadline = now + st->timeout_ms;
			break;
		case SIM_STEP_AWAIT_SIGNIN:
			p->wait = WAIT_SIGNIN;
			p->deadline = now + st->timeout_ms;
			break;
		case SIM_STEP_AWAIT_FILE:
			log_info("line %d: waiting for the file %s", st->lineno,
			    st->raw);
			p->wait = WAIT_FILE;
			p->file_deadline = p->deadline = now + st->timeout_ms;
			break;
		case SIM_STEP_KNOB:
			p->ops.knob(p->ops.arg, st->knob, st->count);
			break;
		}
		if (p->wait == WAIT_NONE && p->result == SIM_RUNNING)
			p->pc++;
	}
	if (p->result == SIM_RUNNING && p->pc == sim_scenario_steps(p->sc))
		sim_player_finish(p);
}

void
sim_player_connected(struct sim_player *p, int64_t now_ms)
{
	p->connected = 1;
	p->conn_gen++;
	if (!p->started)
		log_info("machine connected: playing %s",
		    sim_scenario_name(p->sc));
	else
		log_info("machine reconnected (connection %u)", p->conn_gen);
	p->started = 1;
	sim_player_run(p, now_ms);
}

void
sim_player_peer_close(struct sim_player *p, int code)
{
	log_info("the machine sent a close frame (code %d)", code);
	p->peer_code = code;
}

void
sim_player_disconnected(struct sim_player *p, int64_t now_ms)
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
	sim_player_run(p, now_ms);
}

void
sim_player_tick(struct sim_player *p, int64_t now_ms)
{
	sim_player_run(p, now_ms);
}

static int
sim_player_frame_fail(struct sim_player *p, const char *why,
    const char *line, size_t len)
{
	sim_player_fail(p, "bad frame from the machine: %s: %.*s",
	    why, (int)(len > 120 ? 120 : len), line);
	return -1;
}

/* An event without action_id: kept for the awaits without a label. */
static int
sim_player_rx_loose(struct sim_player *p, const char *ev)
{
	if (p->nloose == SIM_LOOSE_MAX) {
		sim_player_fail(p, "more than %d events without an action_id",
		    SIM_LOOSE_MAX);
		return -1;
	}
	if ((p->loose[p->nloose].name = strdup(ev)) == NULL) {
		sim_player_fail(p, "out of memory");
		return -1;
	}
	p->nloose++;
	return 0;
}

/* The action has ended: its events must be its "events" list, exactly. */
static int
sim_player_events_match(struct sim_player *p, const struct sim_action *a,
    const char *name)
{
	const cJSON *want;
	char seen[384], *w;
	int k = 0;

	cJSON_ArrayForEach(want, a->expect_list) {
		if ((size_t)k >= a->nevents ||
		    strcmp(want->valuestring, a->events[k]) != 0)
			break;
		k++;
	}
	if (want == NULL && (size_t)k == a->nevents)
		return 0;
	w = cJSON_PrintUnformatted(a->expect_list);
	sim_player_fail(p, "line %d: %s: events differ at #%d: got [%s], "
	    "expected %s", a->lineno, name, k + 1, sim_player_list(a->events,
	    a->nevents, seen, sizeof(seen)), w != NULL ? w : "?");
	free(w);
	return -1;
}

static int
sim_player_rx_event(struct sim_player *p, const cJSON *f, const char *line,
    size_t len)
{
	const cJSON *ev = cJSON_GetObjectItemCaseSensitive(f, "event");
	const cJSON *aid = cJSON_GetObjectItemCaseSensitive(f, "action_id");
	struct sim_action *a = NULL;
	char name[96], seen[384], **ne;
	int64_t id;
	size_t i;

	if (!cJSON_IsString(ev) || !sim_scenario_event_ok(ev->valuestring))
		return sim_player_frame_fail(p, "no valid \"event\"", line,
		    len);
	if (aid == NULL)
		return sim_player_rx_loose(p, ev->valuestring);
	if (!sim_scenario_json_int(aid, &id))
		return sim_player_frame_fail(p, "\"action_id\" is not an "
		    "integer", line, len);
	for (i = 0; i < p->nactions; i++)
		if (p->actions[i].id == id)
			a = &p->actions[i];
	if (a == NULL) {
		sim_player_fail(p, "event %s for action %lld, which "
		    "the sim never sent", ev->valuestring, (long long)id);
		return -1;
	}
	if (a->rx_us == -1)
		a->rx_us = p->now_us;
	sim_player_action_name(p, a, name, sizeof(name));
	if (a->expect_none) {
		sim_player_fail(p, "%s got %s, expected no event",
		    name, ev->valuestring);
		return -1;
	}
	if (a->ended && sim_player_terminal(a, ev->valuestring)) {
		sim_player_fail(p, "%s: a second terminal event, %s "
		    "(saw: %s)", name, ev->valuestring, sim_player_list(
		    a->events, a->nevents, seen, sizeof(seen)));
		return -1;
	}
	if (a->nevents == SIM_EVENTS_PER_ACTION) {
		sim_player_fail(p, "%s: more than %d events", name,
		    SIM_EVENTS_PER_ACTION);
		return -1;
	}
	ne = reallocarray(a->events, a->nevents + 1, sizeof(*ne));
	if (ne == NULL || (ne[a->nevents] = strdup(ev->valuestring)) == NULL) {
		if (ne != NULL)
			a->events = ne;
		sim_player_fail(p, "out of memory");
		return -1;
	}
	a->events = ne;
	a->nevents++;
	log_debug("%s: %s", name, ev->valuestring);

	/* The service trusts ":upload:completed": make sure it is true. */
	snprintf(seen, sizeof(seen), "%s:upload:completed", a->type);
	if (strcmp(ev->valuestring, seen) == 0 &&
	    p->ops.uploads(p->ops.arg, a->id) == 0) {
		sim_player_fail(p, "%s: %s but no valid image was "
		    "uploaded", name, ev->valuestring);
		return -1;
	}

	if (!sim_player_terminal(a, ev->valuestring))
		return 0;
	a->ended = 1;
	if (a->expect_list == NULL)
		return 0;
	return sim_player_events_match(p, a, name);
}

/* One line from the machine: a frame of PROTOCOL.md 4.2. */
static int
sim_player_rx_line(struct sim_player *p, const char *line, size_t len)
{
	const cJSON *type, *m;
	cJSON *f;
	int64_t v;
	int r = -1;

	if (len == 0)
		return sim_player_frame_fail(p, "an empty line", line, len);
	f = sim_scenario_json_exact(line, len);
	if (!cJSON_IsObject(f)) {
		sim_player_frame_fail(p, "not a JSON object", line, len);
		goto done;
	}
	type = cJSON_GetObjectItemCaseSensitive(f, "type");
	if (!cJSON_IsString(type) || (strcmp(type->valuestring, "event") != 0 &&
	    strcmp(type->valuestring, "log") != 0 &&
	    strcmp(type->valuestring, "progress") != 0)) {
		sim_player_frame_fail(p, "\"type\" is not event, log or "
		    "progress", line, len);
		goto done;
	}
	m = cJSON_GetObjectItemCaseSensitive(f, "version");
	if (!sim_scenario_json_int(m, &v) || v != 1) {
		sim_player_frame_fail(p, "\"version\" is not 1", line, len);
		goto done;
	}
	m = cJSON_GetObjectItemCaseSensitive(f, "timestamp");
	if (!sim_scenario_json_int(m, &v) || v < 0) {
		sim_player_frame_fail(p, "\"timestamp\" is not an integer",
		    line, len);
		goto done;
	}
	m = cJSON_GetObjectItemCaseSensitive(f, "id");
	if (!sim_scenario_json_int(m, &v)) {
		sim_player_frame_fail(p, "\"id\" is not an integer", line,
		    len);
		goto done;
	}
	if (p->have_rx_id && v <= p->last_rx_id) {
		char why[96];

		snprintf(why, sizeof(why), "\"id\" %lld does not rise past "
		    "%lld", (long long)v, (long long)p->last_rx_id);
		sim_player_frame_fail(p, why, line, len);
		goto done;
	}
	p->have_rx_id = 1;
	p->last_rx_id = v;

	if (strcmp(type->valuestring, "event") == 0)
		r = sim_player_rx_event(p, f, line, len);
	else if (strcmp(type->valuestring, "log") == 0) {
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(f,
		    "log")))
			sim_player_frame_fail(p, "a log without \"log\"",
			    line, len);
		else
			r = 0;
	} else {
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(f,
		    "progress")))
			sim_player_frame_fail(p, "a progress without "
			    "\"progress\"", line, len);
		else
			r = 0;
	}
done:
	cJSON_Delete(f);
	return r;
}

void
sim_player_rx(struct sim_player *p, const char *msg, size_t len,
    int64_t now_ms)
{
	sim_player_rx_us(p, msg, len, now_ms * 1000);
}

void
sim_player_rx_us(struct sim_player *p, const char *msg, size_t len,
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
		sim_transcript_frame(p->tr, now_ms, "rx", line, n);
		line += n + 1;
	}
	if (p->result != SIM_RUNNING)
		return;
	if (p->tr != NULL && sim_transcript_leaks(p->tr, msg, len)) {
		sim_player_fail(p, "a frame from the machine holds a "
		    "secret (password or token)");
		return;
	}
	if (!sim_transcript_utf8_valid(msg, len)) {
		sim_player_fail(p, "a frame from the machine is not "
		    "UTF-8");
		return;
	}
	if (len == 0 || msg[len - 1] != '\n') {
		sim_player_frame_fail(p, "not newline-terminated", msg, len);
		return;
	}
	for (line = msg; line < end; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (sim_player_rx_line(p, line, (size_t)(nl - line)) == -1)
			return;
	}
	sim_player_run(p, now_ms);
}

void
sim_player_written(struct sim_player *p, int64_t now_us)
{
	size_t f;

	if (p->nwritten == p->nframes)
		return;		/* not a frame of ours: nothing to time */
	f = p->nwritten++;
	/* A close awaited after the frames that bring it: the machine's
	 * time starts as the last of them goes to the kernel, not when it
	 * was queued (send_big's 8 MiB take the sim itself seconds under a
	 * sanitizer, time the machine never had). */
	if (p->wait == WAIT_CLOSE && p->nwritten == p->nframes) {
		int64_t due = now_us / 1000 +
		    sim_scenario_step(p->sc, p->pc)->timeout_ms;

		if (due > p->deadline)
			p->deadline = due;
	}
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
sim_player_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile pct of the n sorted values. */
static int64_t
sim_player_rank(const int64_t *v, size_t n, unsigned pct)
{
	size_t r = (n * pct + 99) / 100;

	return v[r > 0 ? r - 1 : 0];
}

/* The latency of action a in us, or -1 when it was not measured. */
static int64_t
sim_player_action_latency(const struct sim_action *a)
{
	if (a->tx_us < 0 || a->rx_us < 0 || a->rx_us < a->tx_us)
		return -1;
	return a->rx_us - a->tx_us;
}

int
sim_player_latency(const struct sim_player *p,
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
		if ((us = sim_player_action_latency(&p->actions[i])) >= 0)
			v[n++] = us;
	if (n > 0) {
		qsort(v, n, sizeof(*v), sim_player_cmp_i64);
		lat->count = n;
		lat->p50 = sim_player_rank(v, n, 50);
		lat->p90 = sim_player_rank(v, n, 90);
		lat->p99 = sim_player_rank(v, n, 99);
		lat->max = v[n - 1];
	}
	free(v);
	return 0;
}

int
sim_player_latencies(const struct sim_player *p, FILE *fp)
{
	const struct sim_action *a;
	int64_t us;
	size_t i;

	for (i = 0; i < p->nactions; i++) {
		a = &p->actions[i];
		if ((us = sim_player_action_latency(a)) >= 0)
			fprintf(fp, "%lld %s %lld\n", (long long)a->id,
			    a->type, (long long)us);
	}
	return fflush(fp) == 0 && !ferror(fp) ? 0 : -1;
}

void
sim_player_where(const struct sim_player *p, char *buf, size_t len)
{
	const struct sim_step *st;
	char name[96];

	if (!p->started) {
		snprintf(buf, len, "the machine never connected");
		return;
	}
	if (p->pc >= sim_scenario_steps(p->sc)) {
		snprintf(buf, len, "after the last line");
		return;
	}
	st = sim_scenario_step(p->sc, p->pc);
	switch (p->wait) {
	case WAIT_EVENT:
		if (p->wait_action != -1)
			snprintf(buf, len, "line %d: waiting for %s from %s",
			    st->lineno, p->wait_event,
			    sim_player_action_name(p,
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
sim_player_summary(const struct sim_player *p, FILE *fp)
{
	struct sim_latency lat;
	const struct sim_action *a;
	char name[96];
	size_t i, j;

	for (i = 0; i < p->nactions; i++) {
		a = &p->actions[i];
		fprintf(fp, "line %d %s:", a->lineno,
		    sim_player_action_name(p, a, name, sizeof(name)));
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
	if (sim_player_latency(p, &lat) == 0 && lat.count > 0)
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
		    sim_scenario_steps(p->sc));
	fflush(fp);
}
