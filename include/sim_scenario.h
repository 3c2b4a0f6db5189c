/*
 * sim_scenario: the scripted side of gf-cloud-sim, parsed.  A scenario is a
 * file of JSON lines (format: the comment at the top of sim_scenario.c and
 * tests/integration/scenarios/README.md), parsed once into steps, each line checked with
 * "file:line: message" errors.  The player (sim_player) walks the steps;
 * the load driver (sim_load) takes its action templates.  Single-threaded.
 */
#ifndef GFE_SIM_SCENARIO_H
#define GFE_SIM_SCENARIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#define SIM_ID_BASE		3116300	/* first automatic id */
#define SIM_TIMEOUT_DEFAULT	10	/* seconds a line may wait */
#define SIM_TIMEOUT_DROP	30	/* seconds to wait for a reconnect */
#define SIM_SCENARIO_MAX	(1024 * 1024)	/* bytes in a scenario */
#define SIM_LABEL_MAX		32	/* bytes, NUL included */
#define SIM_BATCH_MAX		16	/* actions in one "send" array */
#define SIM_EVENTS_PER_ACTION	256

/* What a knob verb asks of the server (sim_player_ops.knob). */
enum sim_knob {
	SIM_KNOB_EXPIRE_TOKEN,		/* retire the auth_token */
	SIM_KNOB_FAIL_UPLOAD,		/* n uploads answer 500 */
	SIM_KNOB_FAIL_PULSE,		/* n pulse downloads answer 500 */
	SIM_KNOB_FAIL_SIGNIN,		/* n sign-ins answer 503 */
	SIM_KNOB_PRESS_BUTTON,		/* SIGUSR1 to the machine's pid */
	SIM_KNOB_REFUSE_SIGNIN,		/* n sign-ins answer 401 */
	SIM_KNOB_HOSTILE_FW,		/* n firmware probes: a forged line */
};

/* A line's verb. */
enum sim_step_kind {
	SIM_STEP_SEND,
	SIM_STEP_AWAIT,
	SIM_STEP_CANCEL,
	SIM_STEP_RAW,
	SIM_STEP_EXPECT_NONE,
	SIM_STEP_DROP,
	SIM_STEP_KNOB,
	SIM_STEP_SEND_BIG,
	SIM_STEP_EXPECT_CLOSE,
	SIM_STEP_AWAIT_SIGNIN,
	SIM_STEP_AWAIT_FILE,
};

/* One line to play, as the parser leaves it for the player. */
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

struct sim_scenario;

/* Parsing.  On error NULL, with "name:line: message" in err. */
struct sim_scenario *sim_scenario_parse(const char *text, size_t len,
		    const char *name, char *err, size_t errlen);
struct sim_scenario *sim_scenario_load(const char *path, char *err,
		    size_t errlen);
void		 sim_scenario_free(struct sim_scenario *sc);
/* Lines that do something (comments, blanks and "config" excluded). */
size_t		 sim_scenario_steps(const struct sim_scenario *sc);
/* Step i (0 .. steps-1) when it sends one action: 0 and out filled in;
 * -1 for any other step (out->lineno still set when i is in range). */
struct sim_send_step {
	const cJSON	*action;	/* the template */
	const char	*expect;	/* or NULL */
	const cJSON	*events;	/* array of names, or NULL */
	int		 timeout_ms;
	int		 lineno;
};
int		 sim_scenario_send_step(const struct sim_scenario *sc,
		    size_t i, struct sim_send_step *out);
/* The frame for an action template: "id", "status": "ready" and
 * "machine_serial": "S<serial>" filled in, "motion_file" and "endpoint"
 * made URLs by the callbacks (malloc'ed strings).  NULL on error. */
cJSON		*sim_scenario_action(const cJSON *tmpl, int64_t id,
		    const char *serial,
		    char *(*pulse_url)(void *, const char *),
		    char *(*upload_url)(void *, int64_t), void *arg);
/* The JSON value filling text[0..len), or NULL: trailing bytes other
 * than blanks make it invalid (cJSON alone stops at the first value). */
cJSON		*sim_scenario_json_exact(const char *text, size_t len);
/* 1 when ev ends an action of this type: "<type>:completed", ":failed"
 * or ":cancelled", exactly. */
int		 sim_scenario_is_terminal(const char *type, const char *ev);

/* The daemon settings the scenario asks for ("config" lines), as INI
 * fragments "[SECTION]\nkey: value\n" for the harness.  0, or -1 on a
 * write error. */
int		 sim_scenario_print_config(const struct sim_scenario *sc,
		    FILE *fp);

/* The player's view: step i (0 .. steps-1), label names by index, how
 * many labels and actions (every "send" member) the file has, its name. */
const struct sim_step *sim_scenario_step(const struct sim_scenario *sc,
		    size_t i);
const char	*sim_scenario_label(const struct sim_scenario *sc, int label);
size_t		 sim_scenario_labels(const struct sim_scenario *sc);
size_t		 sim_scenario_actions(const struct sim_scenario *sc);
const char	*sim_scenario_name(const struct sim_scenario *sc);

/* Shared with the player's frame checks: an integer that a double holds
 * exactly (v may be NULL), and an event name of the safe alphabet. */
int		 sim_scenario_json_int(const cJSON *j, int64_t *v);
int		 sim_scenario_event_ok(const char *s);

/* A file name the sim serves or stores: [A-Za-z0-9_.-], no "..". */
int	 sim_scenario_name_ok(const char *s);

#endif
