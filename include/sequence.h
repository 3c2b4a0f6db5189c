/*
 * sequence: protocol policy as data.  For every action type, the steps the
 * machine takes and the events it sends (PROTOCOL.md 5).  Two profiles are
 * compiled in ("2.6", "1.x"); a JSON sequences_file may replace the steps of
 * any action type.  Event names may hold "{type}", replaced by the action's
 * type when sent (the four camera actions share one sequence).
 *
 * Terminal events are not in the tables: a step that fails sends
 * "{type}:failed", a cancel "{type}:cancelled", and both end the job.
 */
#ifndef GFE_SEQUENCE_H
#define GFE_SEQUENCE_H

#include <stddef.h>
#include <cjson/cJSON.h>

enum seq_op {
	SEQ_EVENT,	/* send an event */
	SEQ_DOWNLOAD,	/* fetch and check motion_url, keep the job */
	SEQ_CAPTURE,	/* take the picture */
	SEQ_UPLOAD,	/* upload it; failure sends "{type}:upload:failed" */
	SEQ_BUTTON,	/* wait for the emulated button */
	SEQ_WARMUP,	/* wait [THERMAL]/[MOTION] warm_up_delay */
	SEQ_COOLDOWN,	/* wait cool_down_delay */
	SEQ_FW_PROBE,	/* ask /update/current; failure fails the action */
	SEQ_REFUSE,	/* fail the action: never obeyed from the cloud */
};

struct seq_step {
	enum seq_op	 op;
	char		*event;		/* SEQ_EVENT: name, may hold {type} */
	cJSON		*extra;		/* members added to the event, or NULL */
	int		 delay_ms;	/* ms to wait before the step */
	int		 no_action_id;	/* event not tied to the action */
	int		 report;	/* attach the settings report */
	int		 progress;	/* SEQ_DOWNLOAD: send progress frames */
};

struct seq {
	char		*action;	/* action type */
	struct seq_step	*steps;
	size_t		 nsteps;
};

struct seq_table;

/* profile: "2.6" or "1.x"; override: a JSON file path or NULL.
 * NULL with the reason in err ("file: message") on failure. */
struct seq_table *seq_table_new(const char *profile, const char *override,
		    char *err, size_t errlen);
void		  seq_table_free(struct seq_table *t);
/* NULL for an action type the profile does not know. */
const struct seq *seq_find(const struct seq_table *t, const char *action);
/* The same, from a JSON document (override files; tests). */
int		  seq_table_load_json(struct seq_table *t, const char *json,
		    char *err, size_t errlen);
/* Expands {type} into buf; returns buf. */
const char	*seq_event_name(const char *pattern, const char *type,
		    char *buf, size_t buflen);

/* Added by the sequence module. */
/* "event", "download", ... as in sequences files; "?" when unknown. */
const char	*seq_op_name(enum seq_op op);
/* A malloc'ed copy of pattern with every "{type}" and "{url}" replaced
 * (NULL type or url: ""); NULL when out of memory. */
char		*seq_expand(const char *pattern, const char *type,
		    const char *url);
/* A deep copy of a step's extra with seq_expand() applied to every string
 * value (the 1.x "downloading pulse data from {url}"): pass it, not
 * step->extra, to event_frame() and cJSON_Delete() it.  NULL for a NULL
 * extra or when out of memory. */
cJSON		*seq_extra_expand(const cJSON *extra, const char *type,
		    const char *url);

#endif
