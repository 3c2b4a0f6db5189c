/*
 * sequence: see sequence.h.  The compiled-in profiles are plain tables, one
 * line per step, so a protocol change is a table edit; a sequences_file can
 * change any action's steps without a rebuild.
 *
 * Where the time goes.  The emulator has no laser, so the only waits in a
 * print are the ones the user configures: WARMUP (warm_up_delay) sits right
 * after "print:warmup:starting", while the service shows the machine warming
 * up; COOLDOWN (cool_down_delay) sits after the head is home and before
 * "print:completed": the 1.x trace shows a real machine "resting" there
 * (return_to_home, then resting, then completed), so that is where it cools.
 * Both profiles put them in the same places.  hunt and motion have neither:
 * the 2.6 service is not known to wait for them there, and an override file
 * can add them.
 */
#include <sys/stat.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "sequence.h"

#define SEQ_TYPE_MAX	32		/* action types: [a-z_]{1,32} */
#define SEQ_EVENT_MAX	128		/* bytes of an event name pattern */
#define SEQ_DELAY_MAX	600000		/* ms */
#define SEQ_FILE_MAX	(1024 * 1024)	/* bytes of a sequences_file */

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

struct seq_table {
	struct seq	*seqs;
	size_t		 nseqs;
};

/* --- the compiled-in profiles --- */

#define F_NOACT		0x1	/* event not tied to the action */
#define F_REPORT	0x2	/* with the settings report */
#define F_PROGRESS	0x4	/* download with progress frames */

struct seq_def {
	enum seq_op	 op;
	const char	*event;
	const char	*extra;		/* a JSON object's text, or NULL */
	int		 flags;
};

#define EV(name)		{ SEQ_EVENT, name, NULL, 0 }
#define EVX(name, extra)	{ SEQ_EVENT, name, extra, 0 }
#define EVF(name, flags)	{ SEQ_EVENT, name, NULL, flags }
#define OP(op)			{ op, NULL, NULL, 0 }
#define OPF(op, flags)		{ op, NULL, NULL, flags }

struct seq_profile_entry {
	const char		*action;
	const struct seq_def	*steps;
	size_t			 nsteps;
};

#define SEQ(action, steps)	{ action, steps, nitems(steps) }

/*
 * Profile "2.6": the table of PROTOCOL.md 5.  Terminal ":failed" and
 * ":cancelled" events come from the dispatcher, not from here.
 */
static const struct seq_def p26_settings[] = {
	EVF("settings:completed", F_REPORT),
};

/* lid_image, head_image, lidar_image, user_image. */
static const struct seq_def p26_image[] = {
	EV("{type}:starting"),
	EV("{type}:capture:starting"),
	OP(SEQ_CAPTURE),
	EV("{type}:capture:completed"),
	EV("{type}:upload:starting"),
	OP(SEQ_UPLOAD),
	EV("{type}:upload:completed"),
	EV("{type}:completed"),
};

static const struct seq_def p26_hunt[] = {
	EV("hunt:starting"),
	OP(SEQ_DOWNLOAD),
	EV("hunt:completed"),
};

static const struct seq_def p26_motion[] = {
	EV("motion:starting"),
	OP(SEQ_DOWNLOAD),
	EV("motion:completed"),
};

static const struct seq_def p26_print[] = {
	EV("print:starting"),
	OP(SEQ_DOWNLOAD),
	EV("print:download:completed"),
	OP(SEQ_BUTTON),
	EV("print:warmup:starting"),
	OP(SEQ_WARMUP),
	EV("print:running"),
	EV("print:return_to_home:succeeded"),
	OP(SEQ_COOLDOWN),
	EV("print:completed"),
};

static const struct seq_def p26_update_check[] = {
	OP(SEQ_FW_PROBE),
	EV("update_check:completed"),
};

/* Never obeyed from the cloud: the dispatcher answers "{type}:failed". */
static const struct seq_def p_refuse[] = {
	OP(SEQ_REFUSE),
};

/* focus is absent on purpose: the factory firmware ignores it. */
static const struct seq_profile_entry profile_26[] = {
	SEQ("settings", p26_settings),
	SEQ("lid_image", p26_image),
	SEQ("head_image", p26_image),
	SEQ("lidar_image", p26_image),
	SEQ("user_image", p26_image),
	SEQ("hunt", p26_hunt),
	SEQ("motion", p26_motion),
	SEQ("print", p26_print),
	SEQ("update_check", p26_update_check),
	SEQ("factory_reset", p_refuse),
	SEQ("head_firmware_update", p_refuse),
};

/*
 * Profile "1.x": the 2018 firmware, from the prose of PROTOCOL.md 5.
 * Extra members only where the text gives them.  "{url}" in an extra's
 * string is the action's motion_url (seq_extra_expand()).
 */
static const struct seq_def p1_settings[] = {
	EV("settings:received"),
	EV("settings:starting"),
	EVF("settings:completed", F_REPORT),
	EV("settings:reset"),
};

/* The text gives "capture:*" one log member; it reports how long the shot
 * took, so it rides on capture:completed. */
static const struct seq_def p1_image[] = {
	EV("{type}:received"),
	EV("{type}:starting"),
	EV("{type}:capture:starting"),
	OP(SEQ_CAPTURE),
	EVX("{type}:capture:completed", "{\"log\":\"capture time: 1.47755\"}"),
	EV("{type}:upload:starting"),
	OP(SEQ_UPLOAD),
	EV("{type}:upload:completed"),
	EV("{type}:completed"),
	EV("{type}:reset"),
};

/*
 * hunt and motion: "the same phase pattern" as print, in the order the
 * text lists the phases (starting:*, running, running:*), which differs
 * from print's interleaving; the text is taken literally.  The homing of a
 * hunt is its download and run, reported once done.
 */
static const struct seq_def p1_hunt[] = {
	EV("hunt:received"),
	EV("hunt:starting"),
	OP(SEQ_DOWNLOAD),
	EV("hunt:homing:completed"),
	EV("hunt:idle:succeeded"),
	EV("hunt:warmup:starting"),
	EV("hunt:warmup:succeeded"),
	EV("hunt:starting:starting"),
	EV("hunt:starting:succeeded"),
	EV("hunt:running"),
	EV("hunt:running:starting"),
	EV("hunt:running:succeeded"),
	EV("hunt:finished:starting"),
	EV("hunt:finished:succeeded"),
	EV("hunt:resting:starting"),
	EV("hunt:completed"),
	EV("hunt:reset"),
};

static const struct seq_def p1_motion[] = {
	EV("motion:received"),
	EV("motion:starting"),
	EV("motion:download:starting"),
	OP(SEQ_DOWNLOAD),
	EV("motion:download:completed"),
	EV("motion:idle:succeeded"),
	EV("motion:warmup:starting"),
	EV("motion:warmup:succeeded"),
	EV("motion:starting:starting"),
	EV("motion:starting:succeeded"),
	EV("motion:running"),
	EV("motion:running:starting"),
	EV("motion:running:succeeded"),
	EV("motion:finished:starting"),
	EV("motion:finished:succeeded"),
	EV("motion:resting:starting"),
	EV("motion:completed"),
	EV("motion:reset"),
};

/*
 * print: the text's order exactly.  The button and estop events are not
 * tied to the job (4.2).  ":resting:succeeded" and ":idle:starting" are
 * sent as written, with an empty prefix: by then the firmware has dropped
 * the job, so they carry no action_id either (a guess; the text is silent).
 */
static const struct seq_def p1_print[] = {
	EVX("print:received", "{\"log\":\"state=ready\"}"),
	EV("print:starting"),
	EVX("print:download:starting",
	    "{\"log\":\"downloading pulse data from {url}\"}"),
	OPF(SEQ_DOWNLOAD, F_PROGRESS),
	EV("print:download:completed"),
	EVX("print:waiting", "{\"log\":\"waiting for button press\"}"),
	OP(SEQ_BUTTON),
	EVF("button:pressed", F_NOACT),
	EV("print:idle:succeeded"),
	EV("print:warmup:starting"),
	OP(SEQ_WARMUP),
	EV("print:warmup:succeeded"),
	EV("print:starting:starting"),
	EV("print:running"),
	EV("print:starting:succeeded"),
	EV("print:running:starting"),
	EVF("estop:deactivated", F_NOACT),
	EVF("button:released", F_NOACT),
	EV("print:running:succeeded"),
	EV("print:finished:starting"),
	EV("print:finished:succeeded"),
	EV("print:return_to_home:starting"),
	EV("print:return_to_home:succeeded"),
	EV("print:resting:starting"),
	EV("print:resting"),
	OP(SEQ_COOLDOWN),
	EVF("estop:activated", F_NOACT),
	EV("print:completed"),
	EV("print:reset"),
	EVF(":resting:succeeded", F_NOACT),
	EVF(":idle:starting", F_NOACT),
};

/* The text gives nothing richer for these: as in 2.6. */
static const struct seq_profile_entry profile_1x[] = {
	SEQ("settings", p1_settings),
	SEQ("lid_image", p1_image),
	SEQ("head_image", p1_image),
	SEQ("lidar_image", p1_image),
	SEQ("user_image", p1_image),
	SEQ("hunt", p1_hunt),
	SEQ("motion", p1_motion),
	SEQ("print", p1_print),
	SEQ("update_check", p26_update_check),
	SEQ("factory_reset", p_refuse),
	SEQ("head_firmware_update", p_refuse),
};

static const struct {
	const char			*name;
	const struct seq_profile_entry	*entries;
	size_t				 nentries;
} seq_profiles[] = {
	{ "2.6", profile_26, nitems(profile_26) },
	{ "1.x", profile_1x, nitems(profile_1x) },
};

/* Op names, as in sequences files. */
static const char *const seq_op_names[] = {
	[SEQ_EVENT] = "event",
	[SEQ_DOWNLOAD] = "download",
	[SEQ_CAPTURE] = "capture",
	[SEQ_UPLOAD] = "upload",
	[SEQ_BUTTON] = "button",
	[SEQ_WARMUP] = "warmup",
	[SEQ_COOLDOWN] = "cooldown",
	[SEQ_FW_PROBE] = "fw_probe",
	[SEQ_REFUSE] = "refuse",
};

/* --- helpers --- */


const char *
seq_op_name(enum seq_op op)
{
	if ((size_t)op >= nitems(seq_op_names) || seq_op_names[op] == NULL)
		return "?";
	return seq_op_names[op];
}

static int
seq_type_ok(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz_");

	return n >= 1 && n <= SEQ_TYPE_MAX && s[n] == '\0';
}

static void
seq_steps_free(struct seq_step *steps, size_t n)
{
	size_t i;

	if (steps == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(steps[i].event);
		cJSON_Delete(steps[i].extra);
	}
	free(steps);
}

static void
seq_clear(struct seq *s)
{
	free(s->action);
	seq_steps_free(s->steps, s->nsteps);
	memset(s, 0, sizeof(*s));
}

/* Puts s (taken, whatever the outcome) into t, replacing the sequence of
 * the same action.  0, or -1 when out of memory. */
static int
seq_table_put(struct seq_table *t, struct seq *s)
{
	struct seq *n;
	size_t i;

	for (i = 0; i < t->nseqs; i++) {
		if (strcmp(t->seqs[i].action, s->action) == 0) {
			seq_clear(&t->seqs[i]);
			t->seqs[i] = *s;
			return 0;
		}
	}
	if ((n = reallocarray(t->seqs, t->nseqs + 1, sizeof(*n))) == NULL) {
		seq_clear(s);
		return -1;
	}
	t->seqs = n;
	t->seqs[t->nseqs++] = *s;
	return 0;
}

/* A compiled-in sequence as a struct seq.  0 or -1 (out of memory). */
static int
seq_from_defs(struct seq *s, const char *action, const struct seq_def *d,
    size_t n)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	if ((s->action = strdup(action)) == NULL ||
	    (s->steps = calloc(n, sizeof(*s->steps))) == NULL)
		goto fail;
	s->nsteps = n;
	for (i = 0; i < n; i++) {
		s->steps[i].op = d[i].op;
		s->steps[i].no_action_id = (d[i].flags & F_NOACT) != 0;
		s->steps[i].report = (d[i].flags & F_REPORT) != 0;
		s->steps[i].progress = (d[i].flags & F_PROGRESS) != 0;
		if (d[i].event != NULL &&
		    (s->steps[i].event = strdup(d[i].event)) == NULL)
			goto fail;
		/* The texts above are valid JSON objects (test_sequence). */
		if (d[i].extra != NULL &&
		    (s->steps[i].extra = cJSON_Parse(d[i].extra)) == NULL)
			goto fail;
	}
	return 0;
fail:
	seq_clear(s);
	return -1;
}

/* --- sequences files --- */

/* The members a step of a file may have, as bits of a set. */
enum seq_member { M_EVENT = 1, M_OP = 2, M_EXTRA = 4, M_DELAY = 8,
    M_ACTID = 16, M_REPORT = 32, M_PROGRESS = 64 };

static const struct {
	const char	*name;
	int		 bit;
} seq_members[] = {
	{ "event", M_EVENT }, { "op", M_OP }, { "extra", M_EXTRA },
	{ "delay_ms", M_DELAY }, { "action_id", M_ACTID },
	{ "report", M_REPORT }, { "progress", M_PROGRESS },
};

/* An event name: 1 to SEQ_EVENT_MAX bytes, no control character (it goes
 * into frames and log lines).  0, or -1 with the reason in err. */
static int
seq_check_event(const cJSON *c, char *err, size_t errlen)
{
	size_t i, len;

	if (!cJSON_IsString(c)) {
		log_reason(err, errlen, "event is not a string");
		return -1;
	}
	len = strlen(c->valuestring);
	if (len == 0 || len > SEQ_EVENT_MAX) {
		log_reason(err, errlen, "event is not 1 to %d bytes long",
		    SEQ_EVENT_MAX);
		return -1;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)c->valuestring[i] < 0x20 ||
		    c->valuestring[i] == 0x7f) {
			log_reason(err, errlen, "event has a control "
			    "character");
			return -1;
		}
	}
	return 0;
}

/* Member c, which is bit, checked and (but for event and extra, copied
 * once the step is whole) put into st.  0, or -1 with "message" in err. */
static int
seq_parse_member(const cJSON *c, int bit, struct seq_step *st, char *err,
    size_t errlen)
{
	size_t i;
	double d;

	switch (bit) {
	case M_EVENT:
		return seq_check_event(c, err, errlen);
	case M_OP:
		if (!cJSON_IsString(c)) {
			log_reason(err, errlen, "op is not a string");
			return -1;
		}
		/* "event" is not an op: it is the other member. */
		for (i = 1; i < nitems(seq_op_names); i++)
			if (strcmp(c->valuestring, seq_op_names[i]) == 0)
				break;
		if (i == nitems(seq_op_names)) {
			log_reason(err, errlen, "unknown op \"%.40s\"",
			    c->valuestring);
			return -1;
		}
		st->op = (enum seq_op)i;
		return 0;
	case M_EXTRA:
		if (!cJSON_IsObject(c)) {
			log_reason(err, errlen, "extra is not an object");
			return -1;
		}
		return 0;
	case M_DELAY:
		d = c->valuedouble;
		if (!cJSON_IsNumber(c) || d != floor(d) || d < 0 ||
		    d > SEQ_DELAY_MAX) {
			log_reason(err, errlen, "delay_ms is not an integer "
			    "in 0..%d", SEQ_DELAY_MAX);
			return -1;
		}
		st->delay_ms = (int)d;
		return 0;
	}
	/* action_id, report, progress */
	if (!cJSON_IsBool(c)) {
		log_reason(err, errlen, "%s is not true or false", c->string);
		return -1;
	}
	if (bit == M_ACTID)
		st->no_action_id = cJSON_IsFalse(c);
	else if (bit == M_REPORT)
		st->report = cJSON_IsTrue(c);
	else
		st->progress = cJSON_IsTrue(c);
	return 0;
}

/* The members seen make one step: an event or an op, and nothing that
 * would silently do nothing.  0, or -1 with "message" in err. */
static int
seq_check_members(int seen, const struct seq_step *st, char *err,
    size_t errlen)
{
	if ((seen & (M_EVENT | M_OP)) == 0) {
		log_reason(err, errlen, "neither \"event\" nor \"op\"");
		return -1;
	}
	if ((seen & (M_EVENT | M_OP)) == (M_EVENT | M_OP)) {
		log_reason(err, errlen, "both \"event\" and \"op\"");
		return -1;
	}
	if ((seen & M_OP) && (seen & (M_EXTRA | M_ACTID | M_REPORT))) {
		log_reason(err, errlen, "extra, action_id and report need an "
		    "event");
		return -1;
	}
	if ((seen & M_PROGRESS) && st->op != SEQ_DOWNLOAD) {
		log_reason(err, errlen, "progress needs op \"download\"");
		return -1;
	}
	return 0;
}

/* One step of a file.  0, or -1 with "message" in err. */
static int
seq_parse_step(const cJSON *o, struct seq_step *st, char *err, size_t errlen)
{
	const cJSON *c;
	size_t i;
	int seen = 0, bit;

	memset(st, 0, sizeof(*st));
	if (!cJSON_IsObject(o)) {
		log_reason(err, errlen, "not an object");
		return -1;
	}
	cJSON_ArrayForEach(c, o) {
		bit = 0;
		for (i = 0; i < nitems(seq_members); i++)
			if (strcmp(c->string, seq_members[i].name) == 0)
				bit = seq_members[i].bit;
		if (bit == 0) {
			log_reason(err, errlen, "unknown member \"%.40s\"",
			    c->string);
			return -1;
		}
		if (seen & bit) {
			log_reason(err, errlen, "repeated member \"%s\"",
			    c->string);
			return -1;
		}
		seen |= bit;
		if (seq_parse_member(c, bit, st, err, errlen) == -1)
			return -1;
	}
	if (seq_check_members(seen, st, err, errlen) == -1)
		return -1;

	if (seen & M_EVENT) {
		st->op = SEQ_EVENT;
		c = cJSON_GetObjectItemCaseSensitive(o, "event");
		if ((st->event = strdup(c->valuestring)) == NULL)
			goto nomem;
	}
	if (seen & M_EXTRA) {
		c = cJSON_GetObjectItemCaseSensitive(o, "extra");
		if ((st->extra = cJSON_Duplicate(c, 1)) == NULL)
			goto nomem;
	}
	return 0;
nomem:
	log_reason(err, errlen, "out of memory");
	free(st->event);
	cJSON_Delete(st->extra);
	memset(st, 0, sizeof(*st));
	return -1;
}

/* One action's array of steps into s.  0, or -1 with "action: ..." in err. */
static int
seq_parse_seq(const cJSON *arr, struct seq *s, char *err, size_t errlen)
{
	const char *action = arr->string;
	const cJSON *c;
	char msg[160];
	size_t n;

	memset(s, 0, sizeof(*s));
	if (!seq_type_ok(action)) {
		log_reason(err, errlen, "%.40s: not an action type ([a-z_]{1,%d})",
		    action, SEQ_TYPE_MAX);
		return -1;
	}
	if (!cJSON_IsArray(arr)) {
		log_reason(err, errlen, "%s: not an array of steps", action);
		return -1;
	}
	if ((n = (size_t)cJSON_GetArraySize(arr)) == 0) {
		log_reason(err, errlen, "%s: no steps", action);
		return -1;
	}
	if ((s->action = strdup(action)) == NULL ||
	    (s->steps = calloc(n, sizeof(*s->steps))) == NULL) {
		log_reason(err, errlen, "%s: out of memory", action);
		goto fail;
	}
	cJSON_ArrayForEach(c, arr) {
		if (seq_parse_step(c, &s->steps[s->nsteps], msg,
		    sizeof(msg)) == -1) {
			log_reason(err, errlen, "%s: step %zu: %s", action,
			    s->nsteps + 1, msg);
			goto fail;
		}
		s->nsteps++;
	}
	return 0;
fail:
	seq_clear(s);
	return -1;
}

int
seq_table_load_json(struct seq_table *t, const char *json, char *err,
    size_t errlen)
{
	const cJSON *c, *d;
	struct seq *news = NULL;
	cJSON *root = NULL;
	const char *end = NULL;
	size_t n = 0, i;
	int rc = -1;

	if (json == NULL) {
		log_reason(err, errlen, "no document");
		return -1;
	}
	root = cJSON_ParseWithOpts(json, &end, 1);
	if (root == NULL) {
		log_reason(err, errlen, "not JSON (error at byte %zu)",
		    end != NULL && end >= json ? (size_t)(end - json) : 0);
		goto done;
	}
	if (!cJSON_IsObject(root)) {
		log_reason(err, errlen, "not a JSON object");
		goto done;
	}
	/* All or nothing: every sequence is checked before one replaces
	 * anything in t. */
	if ((news = calloc((size_t)cJSON_GetArraySize(root) + 1,
	    sizeof(*news))) == NULL) {
		log_reason(err, errlen, "out of memory");
		goto done;
	}
	cJSON_ArrayForEach(c, root) {
		/* Every key is an action type; the profile is the config's
		 * business, so a "profile" key gets a pointed message. */
		if (strcmp(c->string, "profile") == 0) {
			log_reason(err, errlen, "profile: not allowed here (set "
			    "protocol_profile in the configuration)");
			goto done;
		}
		for (d = root->child; d != c; d = d->next) {
			if (strcmp(d->string, c->string) == 0) {
				log_reason(err, errlen, "%.40s: given twice",
				    c->string);
				goto done;
			}
		}
		if (seq_parse_seq(c, &news[n], err, errlen) == -1)
			goto done;
		n++;
	}
	for (i = 0; i < n; i++) {
		if (seq_table_put(t, &news[i]) == -1) {
			/* Only allocation fails here; what was put stays. */
			log_reason(err, errlen, "out of memory");
			for (i++; i < n; i++)
				seq_clear(&news[i]);
			n = 0;
			goto done;
		}
	}
	n = 0;
	rc = 0;
done:
	for (i = 0; i < n; i++)
		seq_clear(&news[i]);
	free(news);
	cJSON_Delete(root);
	return rc;
}

/* The whole file as a string.  NULL with "message" in err. */
static char *
seq_read_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	FILE *fp;
	char *buf = NULL;
	size_t n;
	int fd;

	if ((fd = config_open_regular(path, 0, &st, err, errlen)) == -1)
		return NULL;
	if ((fp = fdopen(fd, "r")) == NULL) {
		log_reason(err, errlen, "%s", strerror(errno));
		close(fd);
		return NULL;
	}
	if ((buf = malloc(SEQ_FILE_MAX + 1)) == NULL) {
		log_reason(err, errlen, "out of memory");
		goto fail;
	}
	n = fread(buf, 1, SEQ_FILE_MAX + 1, fp);
	if (ferror(fp)) {
		log_reason(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	if (n > SEQ_FILE_MAX) {
		log_reason(err, errlen, "larger than %d bytes", SEQ_FILE_MAX);
		goto fail;
	}
	if (memchr(buf, '\0', n) != NULL) {
		log_reason(err, errlen, "NUL byte in the file");
		goto fail;
	}
	buf[n] = '\0';
	fclose(fp);
	return buf;
fail:
	free(buf);
	fclose(fp);
	return NULL;
}

/* --- the table --- */

struct seq_table *
seq_table_new(const char *profile, const char *override, char *err,
    size_t errlen)
{
	struct seq_table *t = NULL;
	struct seq s;
	char *doc = NULL, msg[256];
	size_t p, i;

	if (profile == NULL)
		profile = "2.6";
	for (p = 0; p < nitems(seq_profiles); p++)
		if (strcmp(profile, seq_profiles[p].name) == 0)
			break;
	if (p == nitems(seq_profiles)) {
		log_reason(err, errlen, "unknown protocol profile \"%.20s\" "
		    "(2.6 or 1.x)", profile);
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto nomem;
	for (i = 0; i < seq_profiles[p].nentries; i++) {
		const struct seq_profile_entry *e = &seq_profiles[p].entries[i];

		if (seq_from_defs(&s, e->action, e->steps, e->nsteps) == -1 ||
		    seq_table_put(t, &s) == -1)
			goto nomem;
	}
	if (override != NULL) {
		if ((doc = seq_read_file(override, msg, sizeof(msg))) == NULL ||
		    seq_table_load_json(t, doc, msg, sizeof(msg)) == -1) {
			log_reason(err, errlen, "%s: %s", override, msg);
			goto fail;
		}
	}
	free(doc);
	return t;
nomem:
	log_reason(err, errlen, "out of memory");
fail:
	free(doc);
	seq_table_free(t);
	return NULL;
}

void
seq_table_free(struct seq_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nseqs; i++)
		seq_clear(&t->seqs[i]);
	free(t->seqs);
	free(t);
}

const struct seq *
seq_find(const struct seq_table *t, const char *action)
{
	size_t i;

	if (t == NULL || action == NULL)
		return NULL;
	for (i = 0; i < t->nseqs; i++)
		if (strcmp(t->seqs[i].action, action) == 0)
			return &t->seqs[i];
	return NULL;
}

/* --- placeholders --- */

const char *
seq_event_name(const char *pattern, const char *type, char *buf,
    size_t buflen)
{
	static const char ph[] = "{type}";
	const char *p, *s;
	size_t o = 0, n;

	if (buf == NULL || buflen == 0)
		return buf;
	if (type == NULL)
		type = "";
	for (p = pattern != NULL ? pattern : ""; *p != '\0';) {
		if (strncmp(p, ph, sizeof(ph) - 1) == 0) {
			s = type;
			n = strlen(type);
			p += sizeof(ph) - 1;
		} else {
			s = p;
			n = 1;
			p++;
		}
		/* Cut at the buffer's end, keeping the terminator. */
		if (n > buflen - 1 - o)
			n = buflen - 1 - o;
		memcpy(buf + o, s, n);
		o += n;
		if (o == buflen - 1)
			break;
	}
	buf[o] = '\0';
	return buf;
}

char *
seq_expand(const char *pattern, const char *type, const char *url)
{
	static const struct {
		const char	*name;
		size_t		 len;
	} ph[] = { { "{type}", 6 }, { "{url}", 5 } };
	const char *val[2], *p;
	size_t len = 0, k, pass;
	char *out = NULL;

	val[0] = type != NULL ? type : "";
	val[1] = url != NULL ? url : "";
	if (pattern == NULL)
		pattern = "";
	/* Pass 0 measures, pass 1 copies. */
	for (pass = 0; pass < 2; pass++) {
		len = 0;
		for (p = pattern; *p != '\0';) {
			for (k = 0; k < nitems(ph); k++)
				if (strncmp(p, ph[k].name, ph[k].len) == 0)
					break;
			if (k < nitems(ph)) {
				if (out != NULL)
					memcpy(out + len, val[k],
					    strlen(val[k]));
				len += strlen(val[k]);
				p += ph[k].len;
			} else {
				if (out != NULL)
					out[len] = *p;
				len++;
				p++;
			}
		}
		if (out == NULL && (out = malloc(len + 1)) == NULL)
			return NULL;
	}
	out[len] = '\0';
	return out;
}

/* Expands every string value below o, in place.  0 or -1. */
static int
seq_expand_tree(cJSON *o, const char *type, const char *url)
{
	cJSON *c;
	char *s;
	int rc;

	if (cJSON_IsString(o) && o->valuestring != NULL) {
		if (strchr(o->valuestring, '{') == NULL)
			return 0;
		if ((s = seq_expand(o->valuestring, type, url)) == NULL)
			return -1;
		rc = cJSON_SetValuestring(o, s) != NULL ? 0 : -1;
		free(s);
		return rc;
	}
	cJSON_ArrayForEach(c, o)
		if (seq_expand_tree(c, type, url) == -1)
			return -1;
	return 0;
}

cJSON *
seq_extra_expand(const cJSON *extra, const char *type, const char *url)
{
	cJSON *dup;

	if (extra == NULL)
		return NULL;
	if ((dup = cJSON_Duplicate(extra, 1)) == NULL)
		return NULL;
	if (seq_expand_tree(dup, type, url) == -1) {
		cJSON_Delete(dup);
		return NULL;
	}
	return dup;
}
