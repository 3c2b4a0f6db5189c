/*
 * dispatch: see dispatch.h.
 *
 * Everything runs on the machine's loop thread (evloop.h): no lock.  A job
 * is a step runner: job_run() goes through its table's steps until one
 * must wait (a delay, the button, an HTTP transfer); the wait ends with
 * the job's uv timer firing (a delay, or a 0 ms wake from a transfer's
 * completion, the button or a cancel), and job_timer() goes on from there.
 * A cancel ends the wait at once: timers are restarted at 0 ms, a
 * transfer is cancelled (its done() then runs before cloud_op_cancel()
 * returns).
 *
 * Every job ends with exactly one terminal event.  Its lane is freed just
 * before that event is queued (dispatch_job_end): the service sends the
 * next action the moment it sees the event, and it must find the lane free.
 * A table may have steps after that event (1.x; delays in a sequences
 * file): the job then goes on beside the next one, on d->jobs only.  A job
 * is freed in its timer's close callback, never under a caller's feet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "camera.h"
#include "cloud.h"
#include "config.h"
#include "dispatch.h"
#include "event.h"
#include "evloop.h"
#include "frame.h"
#include "history.h"
#include "log.h"
#include "metrics.h"
#include "mlog.h"
#include "proto.h"
#include "puls.h"
#include "queue.h"
#include "sequence.h"
#include "settings.h"
#include "store.h"

#define DISPATCH_EVENT_MAX	160	/* bytes, an expanded event name */
#define DISPATCH_HOMING_SHOTS	4	/* lid images of a homing cycle */
#define DISPATCH_PROGRESS_STEP	(256 * 1024)	/* bytes between progress */
#define DISPATCH_PENDING_MAX	16	/* service-lane actions held */
#define DISPATCH_SEEN_FIRST	16	/* ids the ring holds at first */
#define DISPATCH_DL_SLACK	(PULS_MAGIC_LEN + 8 * PULS_MAX_TAGS) /* bytes:
					 * a plain file's header */

/*
 * Two lanes.  An action needs the machine when its steps move, shoot or
 * wait for the button: those run one at a time in the machine lane, and
 * one arriving while it is busy is not started.  The others (settings,
 * update_check, the refusals) answer from memory or the network: they run
 * in the service lane, beside a machine job, one after another, because the
 * service packs several actions in one frame and expects each answered.
 */
enum dispatch_lane { LANE_MACHINE, LANE_SERVICE, DISPATCH_LANES };

/* What a job is waiting for; its timer ends every kind of wait. */
enum job_wait {
	WAIT_NONE,
	WAIT_DELAY,		/* a step's delay_ms, before it runs */
	WAIT_TIMER,		/* warm-up, cool-down */
	WAIT_BUTTON,		/* the button, or button_press_delay */
	WAIT_HTTP,		/* j->op; its done() wakes the timer */
};

/* How a step, then the job, ends: the next step runs while the steps go
 * on, and the terminal event ("{type}:<job_end_name()>") says which. */
enum job_end {
	JOB_COMPLETED,		/* so far: on to the next step */
	JOB_FAILED,
	JOB_CANCELLED,
};

struct dispatch_dl;

struct job {
	struct dispatch		*d;
	struct action		 a;		/* owns the action's JSON */
	const struct seq	*seq;
	enum dispatch_lane	 lane;
	size_t			 i;		/* the step running */
	enum job_end		 end;		/* the last step's, then the job's */
	int			 delayed;	/* step i's delay is over */
	int			 cancel;	/* asked: its waits are cut short */
	/* Its terminal event is queued and its lane freed: a table's
	 * trailing steps may still run, but the action is over. */
	int			 ended;
	enum job_wait		 wait;
	/* Presses counted from here: one that comes while the job downloads,
	 * before it waits, still starts the print. */
	unsigned		 button_seen;
	uv_timer_t		 timer;
	struct cloud_op		*op;		/* the transfer waited for */
	enum cloud_result	 op_r;		/* its result */
	char			*op_text;	/* the firmware version */
	struct dispatch_dl	*dl;		/* a download's state */
	struct job		*prev, *next;	/* on d->jobs */
	struct camera_frame	 shot;		/* the frame to upload */
};

struct dispatch {
	const struct config	*cf;
	struct cloud		*cloud;
	const struct seq_table	*seq;
	struct evloop		*ev;
	struct queue		*tx;		/* the caller's */
	uint64_t		 serial;	/* this machine's, MCsn */
	char			*dl_dir;	/* jobs kept there; NULL: not */
	const struct mlog	*lg;		/* its machine's lines */
	uint64_t		 actions;	/* started */
	uint64_t		 failures;	/* ended "failed" */

	/* The running job of each lane (NULL once it ended). */
	struct job		*job[DISPATCH_LANES];
	/* Every job not yet freed: running, or in a table's trailing
	 * steps; njobs counts those whose timer is still closing too. */
	struct job		*jobs;
	unsigned		 njobs;
	/* Starts held actions once the service lane is free: from the loop,
	 * after the terminal event that freed it is queued. */
	uv_timer_t		 kick;
	int			 kick_open;
	/* Service-lane actions waiting for their turn; owned here until
	 * started or cancelled. */
	struct action		 pending[DISPATCH_PENDING_MAX];
	size_t			 npending;
	/* The last DISPATCH_SEEN_MAX ids launched or held, a ring: an id
	 * starts once (PROTOCOL.md 4.3).  told: its repeat was logged.
	 * Grown as ids come (16 KiB at full size): an idle machine of a
	 * fleet holds none. */
	struct dispatch_seen {
		int64_t		 id;
		int		 told;
	}			*seen;
	size_t			 nseen, seen_next, seen_cap;
	unsigned		 button_seq;	/* presses so far */
	int			 stopping;
	void			(*idle)(void *);	/* dispatch_stop()'s */
	void			*idle_arg;
	int			 report_sent;	/* full settings report sent */
	int			 homing_shots;	/* lid images since homing began */
};

/* ---- sending ------------------------------------------------------------ */

static void
dispatch_send(struct dispatch *d, char *frame, enum queue_prio prio)
{
	if (frame == NULL) {
		MLOG(d->lg, LOG_WARNING, 0, "out of memory: a frame is lost");
		return;
	}
	if (queue_push(d->tx, frame, strlen(frame), prio) == 1)
		MLOG(d->lg, LOG_WARNING, 0,
		    "tx queue full: oldest progress/log frame dropped");
}

static void
dispatch_send_event(struct dispatch *d, int64_t action_id, const char *name,
    const cJSON *extra)
{
	MLOG(d->lg, LOG_DEBUG, 0,
	    "event %s (action %lld)", name, (long long)action_id);
	history_event(action_id, name, d->lg->label);
	dispatch_send(d, event_frame(action_id, name, extra), QUEUE_PRIO_HIGH);
}

static void
dispatch_send_log(struct dispatch *d, const char *level, const char *msg)
{
	dispatch_send(d, event_log_frame(level, msg), QUEUE_PRIO_LOW);
}

/* "{type}:suffix" for this job. */
static void
dispatch_job_event(struct job *j, const char *suffix, const cJSON *extra)
{
	char name[DISPATCH_EVENT_MAX];

	snprintf(name, sizeof(name), "%s:%s", j->a.type, suffix);
	dispatch_send_event(j->d, j->a.id, name, extra);
}

/* ---- steps -------------------------------------------------------------- */

struct dispatch_dl {
	struct job		*job;
	struct puls_stream	*ps;
	struct store_job	*store;		/* NULL: not kept */
	int			 progress;	/* send progress frames */
	uint64_t		 total;		/* declared bytes, or 0 */
	uint64_t		 got, next_report;	/* bytes */
};

static void	job_wake(struct job *);
static void	dispatch_kick(uv_timer_t *);

/* A transfer's done(), on the loop: the job goes on from its timer, so
 * a cancel that ran done() from inside cloud_op_cancel() returns first. */
static void
dispatch_http_done(void *arg, enum cloud_result r)
{
	struct job *j = arg;

	j->op = NULL;
	j->op_r = r;
	job_wake(j);
}

static void
dispatch_http_text_done(void *arg, enum cloud_result r, char *text)
{
	struct job *j = arg;

	free(j->op_text);
	j->op_text = text;
	dispatch_http_done(arg, r);
}

/* Plain pulse bytes: keep them.  A failing disk never fails the job: the
 * service still gets the right answer; only the copy is lost, which
 * store_write() logged in one line (the file's name holds the job's id). */
static int
dispatch_dl_keep(const void *buf, size_t len, void *arg)
{
	struct dispatch_dl *dl = arg;

	if (dl->store != NULL && store_write(buf, len, dl->store) == -1) {
		store_abort(dl->store);
		dl->store = NULL;
	}
	return 0;
}

static int
dispatch_dl_declared(uint64_t len, void *arg)
{
	struct dispatch_dl *dl = arg;

	dl->total = len;
	return puls_stream_expect(dl->ps, len) == -1 ? 1 : 0;
}

static int
dispatch_dl_data(const void *buf, size_t len, void *arg)
{
	struct dispatch_dl *dl = arg;
	struct job *j = dl->job;
	char name[DISPATCH_EVENT_MAX];

	if (puls_stream_feed(dl->ps, buf, len) == -1)
		return 1;
	dl->got += len;
	if (dl->progress && dl->got >= dl->next_report) {
		dl->next_report = dl->got + DISPATCH_PROGRESS_STEP;
		snprintf(name, sizeof(name), "%s:download", j->a.type);
		dispatch_send(j->d, event_progress_frame(j->a.id, name,
		    dl->got, dl->total ? dl->total : dl->got, "bytes"),
		    QUEUE_PRIO_LOW);
	}
	return 0;
}

static void
dispatch_dl_free(struct job *j)
{
	struct dispatch_dl *dl = j->dl;

	if (dl == NULL)
		return;
	if (dl->store != NULL)
		store_abort(dl->store);
	puls_stream_free(dl->ps);
	free(dl);
	j->dl = NULL;
}

/* 1: the transfer runs (WAIT_HTTP); 0: j->end says how it ended now. */
static int
dispatch_download_start(struct job *j, const struct seq_step *st)
{
	struct dispatch *d = j->d;
	struct dispatch_dl *dl;
	struct cloud_sink sink;
	char what[32];
	uint64_t max;			/* bytes of body */

	j->end = JOB_FAILED;
	if (j->a.motion_url == NULL || !cloud_url_allowed(j->a.motion_url)) {
		MLOG(j->d->lg, LOG_WARNING, 0,
		    "job %lld: no usable motion_url (http/https only)",
		    (long long)j->a.id);
		return 0;
	}
	if ((dl = j->dl = calloc(1, sizeof(*dl))) == NULL)
		return 0;
	dl->job = j;
	dl->progress = st->progress;
	if (d->dl_dir != NULL)
		dl->store = store_begin(d->dl_dir, j->a.type, j->a.id,
		    d->lg);
	/* Memory does not grow with the bound: the body streams to disk. */
	max = d->cf->max_job_mib > 0 ? (uint64_t)d->cf->max_job_mib << 20 :
	    PULS_MAX_BODY;
	if ((dl->ps = puls_stream_new(d->serial, max, dispatch_dl_keep,
	    dl)) == NULL) {
		dispatch_dl_free(j);
		return 0;
	}
	sink.declared = dispatch_dl_declared;
	sink.data = dispatch_dl_data;
	sink.arg = dl;
	/* Bytes on the wire, over every hop: the body bound, plus room for
	 * a header (a few KiB at most); the stream checks the exact bound. */
	sink.max_bytes = max + DISPATCH_DL_SLACK;
	snprintf(what, sizeof(what), "job %lld", (long long)j->a.id);
	if ((j->op = cloud_download_start(d->cloud, d->ev, j->a.motion_url,
	    &sink, what, dispatch_http_done, j)) == NULL) {
		dispatch_dl_free(j);
		return 0;
	}
	j->end = JOB_COMPLETED;
	j->wait = WAIT_HTTP;
	return 1;
}

/* The transfer ended with j->op_r: check and keep the job.  j->end:
 * completed, failed (refused too) or cancelled. */
static void
dispatch_download_finish(struct job *j)
{
	struct dispatch_dl *dl = j->dl;
	cJSON *info = NULL;
	char *kept = NULL;

	j->end = JOB_FAILED;
	if (j->op_r == CLOUD_ERR_CANCELLED) {
		j->end = JOB_CANCELLED;
		goto done;
	}
	if (j->op_r == CLOUD_ERR_SINK) {
		metrics_inc(METRICS_JOBS_REFUSED);
		MLOG(j->d->lg, LOG_WARNING, 0,
		    "job %lld refused: %s", (long long)j->a.id,
		    puls_stream_error(dl->ps));
		goto done;
	}
	if (j->op_r != CLOUD_OK)
		goto done;	/* cloud said why, with the job's id */
	if (puls_stream_finish(dl->ps) == -1) {
		metrics_inc(METRICS_JOBS_REFUSED);
		MLOG(j->d->lg, LOG_WARNING, 0,
		    "job %lld refused: %s", (long long)j->a.id,
		    puls_stream_error(dl->ps));
		goto done;
	}
	info = puls_info_json(puls_stream_header(dl->ps),
	    puls_stream_body_size(dl->ps), puls_stream_stats(dl->ps));
	if (dl->store != NULL) {
		/* In a fleet the folder holds the serial: the name only. */
		if (info != NULL && store_commit(dl->store, info, &kept) == 0)
			MLOG(j->d->lg, LOG_INFO, 0, "job %lld kept as %s (%llu "
			    "body bytes%s)", (long long)j->a.id,
			    j->d->lg == &mlog_single || strrchr(kept, '/') ==
			    NULL ? kept : strrchr(kept, '/') + 1,
			    (unsigned long long)puls_stream_body_size(dl->ps),
			    puls_stream_compressed(dl->ps) ? ", sent gzipped" :
			    "");
		else if (info == NULL)
			store_abort(dl->store);
		dl->store = NULL;	/* commit frees it either way */
	}
	j->end = JOB_COMPLETED;
done:
	dispatch_dl_free(j);
	cJSON_Delete(info);
	free(kept);
}

/* save_sent_images: a copy of the frame beside the logs; a failure is
 * logged by the store and never fails the job. */
static void
dispatch_save_image(struct job *j)
{
	const struct config *cf = j->d->cf;
	const char *dir = cf->log_dir != NULL ? cf->log_dir : cf->base_dir;

	if (dir != NULL)
		(void)store_save_image(dir, j->a.type, j->a.id, j->shot.data,
		    j->shot.len, j->d->lg);
}

static int
dispatch_step_capture(struct job *j)
{
	struct dispatch *d = j->d;
	struct camera_shot shot;
	const cJSON *il;
	char name[128];

	memset(&shot, 0, sizeof(shot));
	shot.thickness = d->cf->material_thickness;
	if (strcmp(j->a.type, "head_image") == 0 ||
	    strcmp(j->a.type, "lidar_image") == 0) {
		shot.which = CAMERA_HEAD;
		il = j->a.settings != NULL ?
		    cJSON_GetObjectItemCaseSensitive(j->a.settings, "HCil") :
		    NULL;
		shot.laser_on = cJSON_IsNumber(il) && il->valuedouble > 0;
	} else {
		shot.which = CAMERA_LID;
		if (strcmp(j->a.type, "lid_image") == 0 &&
		    d->homing_shots < DISPATCH_HOMING_SHOTS)
			shot.homing_stage = ++d->homing_shots;
	}
	camera_frame_free(&j->shot);
	if (camera_take(d->cf->image_src_dir, &shot, &j->shot, name,
	    sizeof(name)) == -1)
		return -1;
	MLOG(j->d->lg, LOG_DEBUG, 0, "%s %lld: frame %s (%zu bytes)", j->a.type,
	    (long long)j->a.id, name, j->shot.len);
	if (d->cf->save_sent_images)
		dispatch_save_image(j);
	return 0;
}

/* 1: the transfer runs; 0: it failed now (j->end). */
static int
dispatch_upload_start(struct job *j)
{
	j->end = JOB_FAILED;
	if (j->shot.data == NULL) {
		MLOG(j->d->lg, LOG_WARNING, 0,
		    "%s %lld: nothing captured to upload", j->a.type,
		    (long long)j->a.id);
		return 0;
	}
	if (j->a.endpoint != NULL && !cloud_url_allowed(j->a.endpoint)) {
		MLOG(j->d->lg, LOG_WARNING, 0,
		    "%s %lld: upload endpoint refused (http/https only)",
		    j->a.type, (long long)j->a.id);
		return 0;
	}
	/* j->shot stays until the job is freed, after done(). */
	if ((j->op = cloud_upload_start(j->d->cloud, j->d->ev, j->a.endpoint,
	    j->a.type, j->a.id, j->shot.data, j->shot.len, dispatch_http_done,
	    j)) == NULL)
		return 0;
	j->end = JOB_COMPLETED;
	j->wait = WAIT_HTTP;
	return 1;
}

static int
dispatch_fw_probe_start(struct job *j)
{
	if ((j->op = cloud_fw_probe_start(j->d->cloud, j->d->ev,
	    dispatch_http_text_done, j)) == NULL) {
		j->end = JOB_FAILED;
		return 0;
	}
	j->wait = WAIT_HTTP;
	return 1;
}

static void
dispatch_fw_probe_finish(struct job *j)
{
	j->end = cloud_fw_probe_check(j->d->lg, j->op_r, j->op_text,
	    proto_fw_version(j->d->cf->fw_version), 1) == 0 ? JOB_COMPLETED :
	    JOB_FAILED;
	free(j->op_text);
	j->op_text = NULL;
}

/* "{type}:completed|failed|cancelled": the one event that ends an action. */
static int
dispatch_is_terminal(const struct job *j, const char *name)
{
	size_t n = strlen(j->a.type);

	return strncmp(name, j->a.type, n) == 0 && name[n] == ':' &&
	    (strcmp(name + n + 1, "completed") == 0 ||
	    strcmp(name + n + 1, "failed") == 0 ||
	    strcmp(name + n + 1, "cancelled") == 0);
}

/*
 * The action ends: free its lane and settle the machine state before the
 * terminal event can reach the service.  Called right before queueing it.
 */
static void
dispatch_job_end(struct job *j, int completed)
{
	struct dispatch *d = j->d;

	/* A motion moves the head: the next lid images home again. */
	if (completed && strcmp(j->a.type, "motion") == 0 &&
	    !d->cf->bypass_homing)
		d->homing_shots = 0;
	j->ended = 1;
	if (d->job[j->lane] == j)
		d->job[j->lane] = NULL;
	/* Held actions start from the loop, after this terminal event. */
	if (j->lane == LANE_SERVICE && d->npending > 0 && d->kick_open)
		uv_timer_start(&d->kick, dispatch_kick, 0, 0);
}

/* The event of a step, with the settings report when the step asks. */
static void
dispatch_step_event(struct job *j, const struct seq_step *st)
{
	struct dispatch *d = j->d;
	struct settings_overrides ov;
	char name[DISPATCH_EVENT_MAX];
	cJSON *extra = NULL, *settings, *values;
	char *text = NULL;
	int full;

	seq_event_name(st->event, j->a.type, name, sizeof(name));
	if (!st->no_action_id && dispatch_is_terminal(j, name) &&
	    j->ended) {
		/* A table may name two; the service must see one. */
		MLOG(j->d->lg, LOG_WARNING, 0,
		    "%s %lld: %s skipped, the action already ended",
		    j->a.type, (long long)j->a.id, name);
		return;
	}
	/* {type} and {url} in the extra's strings (1.x download logs). */
	extra = seq_extra_expand(st->extra, j->a.type, j->a.motion_url);
	if (st->report) {
		if (extra == NULL)
			extra = cJSON_CreateObject();
		settings = cJSON_AddObjectToObject(extra, "settings");
		/* The full report once per process; then (and always with
		 * bypass_homing) empty, which makes the service skip homing. */
		full = !d->report_sent && !d->cf->bypass_homing;
		d->report_sent = 1;
		if (full && settings != NULL) {
			memset(&ov, 0, sizeof(ov));
			ov.action_id = j->a.id;
			ov.serial = d->serial;
			ov.fw_version = d->cf->fw_version;
			ov.app_version = d->cf->app_version;
			ov.head_firmware = d->cf->head_firmware;
			ov.head_id = d->cf->head_id;
			ov.head_serial = d->cf->head_serial;
			ov.now = (int64_t)time(NULL);
			/* Printed from text made once: a fleet's first
			 * settings round sends one per machine. */
			if ((text = settings_report_text(&ov)) != NULL)
				values = cJSON_CreateRaw(text);
			else	/* out of memory: the slow way, or none */
				values = settings_report(&ov);
			if (values != NULL)
				cJSON_AddItemToObject(settings, "values",
				    values);
			free(text);
		}
	}
	if (!st->no_action_id && dispatch_is_terminal(j, name)) {
		dispatch_job_end(j, strcmp(name + strlen(j->a.type),
		    ":completed") == 0);
	}
	dispatch_send_event(d, st->no_action_id ? EVENT_NO_ACTION : j->a.id,
	    name, extra);
	cJSON_Delete(extra);
}

/* ---- the step runner ---------------------------------------------------- */

static void	job_run(struct job *);
static void	job_timer(uv_timer_t *);

static void
job_wake(struct job *j)
{
	uv_timer_start(&j->timer, job_timer, 0, 0);
}

/* Waits ms (then job_timer()), unless the job was cancelled: 0 then, with
 * j->end JOB_CANCELLED.  1 while waiting. */
static int
job_wait(struct job *j, enum job_wait what, int64_t ms)
{
	if (j->cancel) {
		j->end = JOB_CANCELLED;
		return 0;
	}
	j->wait = what;
	uv_timer_start(&j->timer, job_timer, ms > 0 ? (uint64_t)ms : 0,
	    0);
	return 1;
}

/* Starts step st: 1 when it waits, 0 when it is done (j->end says how). */
static int
job_step_start(struct job *j, const struct seq_step *st)
{
	struct dispatch *d = j->d;

	switch (st->op) {
	case SEQ_EVENT:
		dispatch_step_event(j, st);
		return 0;
	case SEQ_DOWNLOAD:
		return dispatch_download_start(j, st);
	case SEQ_CAPTURE:
		j->end = dispatch_step_capture(j) == 0 ? JOB_COMPLETED :
		    JOB_FAILED;
		return 0;
	case SEQ_UPLOAD:
		if (dispatch_upload_start(j))
			return 1;
		if (!j->cancel)
			dispatch_job_event(j, "upload:failed", NULL);
		return 0;
	case SEQ_BUTTON:
		MLOG(j->d->lg, LOG_INFO, 0,
		    "%s %lld: waiting for the button (%.1f s, or "
		    "SIGUSR1)", j->a.type, (long long)j->a.id,
		    d->cf->button_press_delay);
		if (!j->cancel && d->button_seq != j->button_seen) {
			j->button_seen = d->button_seq;	/* one press, one step */
			return 0;
		}
		return job_wait(j, WAIT_BUTTON,
		    (int64_t)(d->cf->button_press_delay * 1000));
	case SEQ_WARMUP:
		return job_wait(j, WAIT_TIMER,
		    (int64_t)(d->cf->warm_up_delay * 1000));
	case SEQ_COOLDOWN:
		return job_wait(j, WAIT_TIMER,
		    (int64_t)(d->cf->cool_down_delay * 1000));
	case SEQ_FW_PROBE:
		return dispatch_fw_probe_start(j);
	case SEQ_REFUSE:
		MLOG(j->d->lg, LOG_WARNING, 0,
		    "%s %lld refused: a cloud command never does this to "
		    "the machine", j->a.type, (long long)j->a.id);
		j->end = JOB_FAILED;
		return 0;
	}
	return 0;
}

/* The step is over: on to the next. */
static void
job_step_done(struct job *j)
{
	/* A cancel that raced with a step that went through. */
	if (j->end == JOB_COMPLETED && j->cancel && !j->ended)
		j->end = JOB_CANCELLED;
	j->i++;
	j->delayed = 0;
}

static void
job_closed(uv_handle_t *h)
{
	struct job *j = h->data;
	struct dispatch *d = j->d;

	frame_action_free(&j->a);
	camera_frame_free(&j->shot);
	free(j->op_text);
	free(j);
	if (--d->njobs == 0 && d->stopping && d->idle != NULL) {
		void (*idle)(void *) = d->idle;

		d->idle = NULL;
		idle(d->idle_arg);
	}
}

/* The terminal event's suffix, and the log's word, for e. */
static const char *
job_end_name(enum job_end e)
{
	switch (e) {
	case JOB_COMPLETED:
		return "completed";
	case JOB_FAILED:
		return "failed";
	case JOB_CANCELLED:
		return "cancelled";
	}
	return "failed";
}

/* Exactly one terminal event, whatever the table (or an override file)
 * says; then the job goes. */
static void
job_finish(struct job *j)
{
	struct dispatch *d = j->d;
	enum job_end e = j->end;

	switch (e) {
	case JOB_FAILED:
		/* A step that failed because it was cancelled (shutdown
		 * aborts the transfers) was cancelled. */
		if (j->cancel)
			e = JOB_CANCELLED;
		else
			d->failures++;
		break;
	case JOB_COMPLETED:
	case JOB_CANCELLED:
		break;
	}
	if (j->ended)
		e = JOB_COMPLETED;	/* the service was told it completed */
	else {
		dispatch_job_end(j, e == JOB_COMPLETED);
		dispatch_job_event(j, job_end_name(e), NULL);
	}
	MLOG(j->d->lg, LOG_INFO, 0,
	    "%s %lld: %s", j->a.type, (long long)j->a.id, job_end_name(e));
	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		d->jobs = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	dispatch_dl_free(j);
	uv_close((uv_handle_t *)&j->timer, job_closed);
}

/* Runs steps until one waits or the job ends. */
static void
job_run(struct job *j)
{
	const struct seq_step *st;

	while (j->wait == WAIT_NONE) {
		if (j->end != JOB_COMPLETED || j->i >= j->seq->nsteps) {
			job_finish(j);
			return;
		}
		st = &j->seq->steps[j->i];
		if (st->delay_ms > 0 && !j->delayed) {
			j->delayed = 1;
			/* After the terminal event (1.x sends a few more) a
			 * cancel comes too late: the action has ended. */
			if (!j->cancel) {
				job_wait(j, WAIT_DELAY, st->delay_ms);
				return;
			}
		}
		if (j->cancel && !j->ended) {
			j->end = JOB_CANCELLED;
			continue;
		}
		if (job_step_start(j, st))
			return;
		job_step_done(j);
	}
}

/* The job's timer: a wait is over (its time passed, or a wake). */
static void
job_timer(uv_timer_t *t)
{
	struct job *j = t->data;
	enum job_wait w = j->wait;

	j->wait = WAIT_NONE;
	switch (w) {
	case WAIT_NONE:
		return;
	case WAIT_DELAY:
		if (j->cancel && !j->ended)
			j->end = JOB_CANCELLED;
		break;
	case WAIT_BUTTON:
		j->button_seen = j->d->button_seq;	/* one press, one step */
		/* FALLTHROUGH */
	case WAIT_TIMER:
		j->end = j->cancel ? JOB_CANCELLED : JOB_COMPLETED;
		job_step_done(j);
		break;
	case WAIT_HTTP:
		if (j->op != NULL) {		/* not done yet */
			j->wait = WAIT_HTTP;
			return;
		}
		switch (j->seq->steps[j->i].op) {
		case SEQ_DOWNLOAD:
			dispatch_download_finish(j);
			break;
		case SEQ_UPLOAD:
			j->end = j->op_r == CLOUD_OK ? JOB_COMPLETED :
			    JOB_FAILED;
			if (j->end == JOB_FAILED && !j->cancel)
				dispatch_job_event(j, "upload:failed", NULL);
			break;
		default:
			dispatch_fw_probe_finish(j);
			break;
		}
		job_step_done(j);
		break;
	}
	job_run(j);
}

/* Ends the job's wait now: its steps see j->cancel. */
static void
job_interrupt(struct job *j)
{
	switch (j->wait) {
	case WAIT_NONE:
		break;
	case WAIT_HTTP:
		/* done() runs in there and wakes the timer. */
		if (j->op != NULL)
			cloud_op_cancel(j->op);
		break;
	default:
		job_wake(j);
		break;
	}
}

/* ---- jobs --------------------------------------------------------------- */

/* The lane of an action: see enum dispatch_lane. */
static enum dispatch_lane
dispatch_lane_of(const struct seq *seq)
{
	size_t i;

	for (i = 0; i < seq->nsteps; i++)
		switch (seq->steps[i].op) {
		case SEQ_DOWNLOAD:
		case SEQ_CAPTURE:
		case SEQ_UPLOAD:
		case SEQ_BUTTON:
		case SEQ_WARMUP:
		case SEQ_COOLDOWN:
			return LANE_MACHINE;
		default:
			break;
		}
	return LANE_SERVICE;
}

/* Starts a's job in its lane now, lane free.  Takes a.  0, or -1 when
 * it could not start: a then got its one terminal event, "{type}:failed",
 * as a job that failed does (the service would otherwise wait for it),
 * and the lane is still free.  The job may have ended on return. */
static int
dispatch_launch(struct dispatch *d, struct action *a, const struct seq *seq,
    enum dispatch_lane lane)
{
	char name[DISPATCH_EVENT_MAX];
	struct job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    uv_timer_init(evloop_uv(d->ev), &j->timer) != 0) {
		MLOG(d->lg, LOG_WARNING, 0,
		    "cannot start a job: %s %lld failed", a->type,
		    (long long)a->id);
		snprintf(name, sizeof(name), "%s:failed", a->type);
		dispatch_send_event(d, a->id, name, NULL);
		frame_action_free(a);
		free(j);
		return -1;
	}
	j->d = d;
	j->a = *a;
	memset(a, 0, sizeof(*a));
	j->seq = seq;
	j->lane = lane;
	j->button_seen = d->button_seq;
	j->timer.data = j;
	j->next = d->jobs;
	if (d->jobs != NULL)
		d->jobs->prev = j;
	d->jobs = j;
	d->njobs++;
	d->actions++;
	d->job[lane] = j;
	MLOG(d->lg, LOG_INFO, 0,
	    "%s %lld: started", j->a.type, (long long)j->a.id);
	history_started(j->a.id, d->lg->label);
	job_run(j);
	return 0;
}

/* Starts the oldest held action while the service lane is free; when one
 * cannot start (it failed at once), the next one. */
static void
dispatch_next(struct dispatch *d)
{
	struct action a;

	while (d->job[LANE_SERVICE] == NULL && d->npending > 0 &&
	    !d->stopping) {
		a = d->pending[0];
		memmove(&d->pending[0], &d->pending[1],
		    --d->npending * sizeof(d->pending[0]));
		dispatch_launch(d, &a, seq_find(d->seq, a.type),
		    LANE_SERVICE);
	}
}

static void
dispatch_kick(uv_timer_t *t)
{
	dispatch_next(t->data);
}

/* The slot of id among the remembered ones, or -1. */
static long
dispatch_seen_find(const struct dispatch *d, int64_t id)
{
	size_t i;

	for (i = 0; i < d->nseen; i++)
		if (d->seen[i].id == id)
			return (long)i;
	return -1;
}

/* Remembers an id that starts (or is held to start), forgetting the
 * oldest past the bound. */
static void
dispatch_seen_add(struct dispatch *d, int64_t id)
{
	struct dispatch_seen *p;
	size_t cap;

	/* Full below the bound: it never wrapped, seen_next is 0, so the
	 * new slots follow the newest.  Out of memory: a smaller ring. */
	if (d->nseen == d->seen_cap && d->seen_cap < DISPATCH_SEEN_MAX) {
		cap = d->seen_cap == 0 ? DISPATCH_SEEN_FIRST : d->seen_cap * 2;
		cap = cap < DISPATCH_SEEN_MAX ? cap : DISPATCH_SEEN_MAX;
		if ((p = realloc(d->seen, cap * sizeof(*p))) != NULL) {
			d->seen = p;
			d->seen_next = d->seen_cap;
			d->seen_cap = cap;
		}
	}
	if (d->seen_cap == 0)
		return;
	d->seen[d->seen_next].id = id;
	d->seen[d->seen_next].told = 0;
	d->seen_next = (d->seen_next + 1) % d->seen_cap;
	if (d->nseen < d->seen_cap)
		d->nseen++;
}

/* A "ready" for an id already started: no second run and no event (a
 * second terminal event would break "exactly one"), one warning per id,
 * whatever the service repeats.  1 if a was such a repeat (and freed). */
static int
dispatch_seen_repeat(struct dispatch *d, struct action *a)
{
	long i;

	if ((i = dispatch_seen_find(d, a->id)) == -1)
		return 0;
	if (!d->seen[i].told)
		MLOG(d->lg, LOG_WARNING, 0,
		    "%s %lld: ready again for an id already started; "
		    "not run twice", a->type, (long long)a->id);
	else
		MLOG(d->lg, LOG_DEBUG, 0,
		    "%s %lld: ready again, ignored", a->type,
		    (long long)a->id);
	d->seen[i].told = 1;
	frame_action_free(a);
	return 1;
}

/* Takes ownership of a's JSON. */
static void
dispatch_start_job(struct dispatch *d, struct action *a)
{
	const struct seq *seq;
	enum dispatch_lane lane;
	struct job *busy;
	char msg[256];

	if ((seq = seq_find(d->seq, a->type)) == NULL) {
		MLOG(d->lg, LOG_INFO, 0,
		    "action %lld: type %s ignored", (long long)a->id,
		    a->type);
		frame_action_free(a);
		return;
	}
	history_received(a->id, a->type, d->lg->label);
	dispatch_next(d);	/* the held ones first */
	if (d->stopping) {
		frame_action_free(a);
		return;
	}
	if (dispatch_seen_repeat(d, a))
		return;
	lane = dispatch_lane_of(seq);
	if ((busy = d->job[lane]) == NULL) {
		dispatch_seen_add(d, a->id);
		dispatch_launch(d, a, seq, lane);
		return;
	}
	/* Busy and not held: not started, so a later "ready" may start it. */
	if (lane == LANE_SERVICE && d->npending < DISPATCH_PENDING_MAX) {
		dispatch_seen_add(d, a->id);
		MLOG(d->lg, LOG_DEBUG, 0,
		    "%s %lld held until %s %lld ends", a->type,
		    (long long)a->id, busy->a.type, (long long)busy->a.id);
		d->pending[d->npending++] = *a;
		memset(a, 0, sizeof(*a));
		return;
	}
	snprintf(msg, sizeof(msg), "busy: %s %lld not started, %s %lld is "
	    "running", a->type, (long long)a->id, busy->a.type,
	    (long long)busy->a.id);
	MLOG(d->lg, LOG_WARNING, 0, "%s", msg);
	dispatch_send_log(d, "WARNING", msg);
	history_refused(a->id, msg, d->lg->label);
	frame_action_free(a);
}

static void
dispatch_cancel(struct dispatch *d, const struct action *a)
{
	char name[DISPATCH_EVENT_MAX];
	struct action held;
	struct job *j;
	size_t i;

	for (i = 0; i < d->npending; i++) {
		if (d->pending[i].id != a->id)
			continue;
		/* Held, never started: drop it and say so. */
		held = d->pending[i];
		memmove(&d->pending[i], &d->pending[i + 1],
		    (--d->npending - i) * sizeof(d->pending[0]));
		MLOG(d->lg, LOG_INFO, 0,
		    "%s %lld: cancelled before it started", held.type,
		    (long long)held.id);
		snprintf(name, sizeof(name), "%s:cancelled", held.type);
		dispatch_send_event(d, held.id, name, NULL);
		frame_action_free(&held);
		return;
	}
	for (i = 0; i < DISPATCH_LANES; i++) {
		if ((j = d->job[i]) == NULL || j->ended || j->a.id != a->id)
			continue;
		MLOG(d->lg, LOG_INFO, 0,
		    "%s %lld: cancelled by the service", j->a.type,
		    (long long)a->id);
		j->cancel = 1;
		job_interrupt(j);
		return;
	}
	MLOG(d->lg, LOG_DEBUG, 0, "cancel for %lld ignored: not a running job",
	    (long long)a->id);
}

void
dispatch_line(struct dispatch *d, const char *line, size_t len)
{
	struct action a;
	char err[160];

	if (frame_parse_action(line, len, &a, err, sizeof(err)) == -1) {
		MLOG(d->lg, LOG_WARNING, 0, "frame dropped: %s", err);
		return;
	}
	switch (a.status) {
	case ACTION_READY:
		dispatch_start_job(d, &a);	/* takes a */
		return;
	case ACTION_CANCELLED:
		dispatch_cancel(d, &a);
		break;
	case ACTION_OTHER:
		MLOG(d->lg, LOG_DEBUG, 0,
		    "action %lld (%s): status ignored", (long long)a.id,
		    a.type);
		break;
	}
	frame_action_free(&a);
}

/* ---- life --------------------------------------------------------------- */

struct dispatch *
dispatch_new(const struct config *cf, struct cloud *cloud,
    const struct seq_table *seq, struct evloop *ev, struct queue *tx,
    const struct dispatch_id *id)
{
	const char *serial = id != NULL && id->serial != NULL ? id->serial :
	    cf->serial;
	const char *dir = id != NULL ? id->dl_dir : cf->motion_dl_dir;
	struct dispatch *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->lg = id != NULL && id->lg != NULL ? id->lg : &mlog_single;
	if (dir != NULL && (d->dl_dir = strdup(dir)) == NULL) {
		free(d);
		return NULL;
	}
	d->cf = cf;
	d->cloud = cloud;
	d->seq = seq;
	d->ev = ev;
	d->tx = tx;
	d->serial = strtoull(serial != NULL ? serial : "0", NULL, 10);
	d->homing_shots = cf->bypass_homing ? DISPATCH_HOMING_SHOTS : 0;
	if (uv_timer_init(evloop_uv(ev), &d->kick) != 0) {
		free(d->dl_dir);
		free(d);
		return NULL;
	}
	d->kick.data = d;
	d->kick_open = 1;
	return d;
}

void
dispatch_free(struct dispatch *d)
{
	if (d == NULL)
		return;
	/* dispatch_stop() ended every job, and the loop has run their
	 * closes (evloop_run() returned). */
	while (d->npending > 0)
		frame_action_free(&d->pending[--d->npending]);
	free(d->seen);
	free(d->dl_dir);
	free(d);
}

void
dispatch_press_button(struct dispatch *d)
{
	struct job *j;

	d->button_seq++;
	MLOG(d->lg, LOG_INFO, 0, "button pressed");
	for (j = d->jobs; j != NULL; j = j->next)
		if (j->wait == WAIT_BUTTON)
			job_wake(j);
}

void
dispatch_stop(struct dispatch *d, void (*idle)(void *), void *arg)
{
	struct job *j;

	/* No new actions; the held ones are dropped unstarted. */
	d->stopping = 1;
	if (d->kick_open) {
		d->kick_open = 0;
		uv_close((uv_handle_t *)&d->kick, NULL);
	}
	d->idle = idle;
	d->idle_arg = arg;
	for (j = d->jobs; j != NULL; j = j->next) {
		/* An ended job may still be in a table's trailing steps: the
		 * flag cuts their waits short too. */
		if (!j->ended)
			MLOG(d->lg, LOG_INFO, 0,
			    "%s %lld: cancelled by shutdown", j->a.type,
			    (long long)j->a.id);
		j->cancel = 1;
		job_interrupt(j);
	}
	if (d->njobs == 0 && d->idle != NULL) {
		d->idle = NULL;
		idle(arg);
	}
}

unsigned
dispatch_jobs(const struct dispatch *d)
{
	return d->njobs;
}

void
dispatch_counts(const struct dispatch *d, uint64_t *actions,
    uint64_t *failures)
{
	*actions = d->actions;
	*failures = d->failures;
}
