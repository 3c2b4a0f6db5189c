/*
 * dispatch: see dispatch.h.
 *
 * Threads: the dispatcher thread pops rx and decides; at most one job thread
 * runs an action's steps.  d->mtx guards the machine state below (the
 * running job, the button, homing) and d->cond wakes a job waiting for the
 * button, a delay or a cancel.  A job's cancel flag is atomic so that the
 * download callback can poll it without the lock.
 *
 * Every job ends with exactly one terminal event.  Its lane is freed just
 * before that event is queued (dispatch_job_end): the service sends the
 * next action the moment it sees the event, and it must find the lane free.
 * A table may have steps after that event (1.x; delays in a sequences
 * file): the job's thread then goes on while the next job runs, on the
 * finishing list, and is joined once it returns, never waited for by the
 * dispatcher thread, which must stay free for the next action.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "camera.h"
#include "cloud.h"
#include "config.h"
#include "dispatch.h"
#include "event.h"
#include "frame.h"
#include "history.h"
#include "log.h"
#include "metrics.h"
#include "mono.h"
#include "puls.h"
#include "queue.h"
#include "sequence.h"
#include "settings.h"
#include "store.h"

#define DISPATCH_EVENT_MAX	160	/* bytes, an expanded event name */
#define DISPATCH_HOMING_SHOTS	4	/* lid images of a homing cycle */
#define DISPATCH_PROGRESS_STEP	(256 * 1024)	/* bytes between progress */
#define DISPATCH_DEFAULT_FW	"2.6.0-2228"
#define DISPATCH_PENDING_MAX	16	/* service-lane actions held */
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

struct job {
	struct dispatch		*d;
	struct action		 a;		/* owns the action's JSON */
	const struct seq	*seq;
	atomic_int		 cancel;	/* set by the dispatcher */
	enum dispatch_lane	 lane;
	int			 terminal_sent;	/* job thread only */
	/* Presses counted from here: one that comes while the job downloads,
	 * before it waits, still starts the print.  Under d->mtx. */
	unsigned		 button_seen;
	pthread_t		 thread;
	int			 ended;		/* under d->mtx: terminal queued */
	int			 finished;	/* under d->mtx: returning */
	struct job		*next;		/* on d->finishing */
	uint8_t			*jpeg;		/* the captured frame */
	size_t			 jpeg_len;	/* bytes */
};

struct dispatch {
	const struct config	*cf;
	struct cloud		*cloud;
	const struct seq_table	*seq;
	struct queue		*rx, *tx;	/* the caller's */
	uint64_t		 serial;	/* this machine's, MCsn */
	pthread_t		 thread;
	int			 started;

	/* Frame ids must reach the service in order (PROTOCOL.md 4.2): an id
	 * is taken and its frame queued under this lock, never apart. */
	pthread_mutex_t		 txmtx;

	pthread_mutex_t		 mtx;		/* guards what follows */
	pthread_cond_t		 cond;
	/* The running (or ended, not yet joined) job of each lane. */
	struct job		*job[DISPATCH_LANES];
	/* Ended jobs whose threads still run a table's trailing steps. */
	struct job		*finishing;
	/* Service-lane actions waiting for their turn; owned here until
	 * started or cancelled. */
	struct action		 pending[DISPATCH_PENDING_MAX];
	size_t			 npending;
	/* The last DISPATCH_SEEN_MAX ids launched or held, a ring: an id
	 * starts once (PROTOCOL.md 4.3).  told: its repeat was logged. */
	struct {
		int64_t		 id;
		int		 told;
	}			 seen[DISPATCH_SEEN_MAX];
	size_t			 nseen, seen_next;
	unsigned		 button_seq;	/* presses so far */
	int			 stopping;
	int			 report_sent;	/* full settings report sent */
	int			 homing_shots;	/* lid images since homing began */
};

/* ---- sending ------------------------------------------------------------ */

/* Lock d->txmtx around building the frame and this. */
static void
dispatch_send(struct dispatch *d, char *frame, enum queue_prio prio)
{
	if (frame == NULL) {
		log_warnx("out of memory: a frame is lost");
		return;
	}
	if (queue_push(d->tx, frame, strlen(frame), prio) == 1)
		log_warnx("tx queue full: oldest progress/log frame dropped");
}

static void
dispatch_send_event(struct dispatch *d, int64_t action_id, const char *name,
    const cJSON *extra)
{
	log_debug("event %s (action %lld)", name, (long long)action_id);
	history_event(action_id, name);
	pthread_mutex_lock(&d->txmtx);
	dispatch_send(d, event_frame(action_id, name, extra), QUEUE_PRIO_HIGH);
	pthread_mutex_unlock(&d->txmtx);
}

static void
dispatch_send_log(struct dispatch *d, const char *level, const char *msg)
{
	pthread_mutex_lock(&d->txmtx);
	dispatch_send(d, event_log_frame(level, msg), QUEUE_PRIO_LOW);
	pthread_mutex_unlock(&d->txmtx);
}

/* "{type}:suffix" for this job. */
static void
dispatch_job_event(struct job *j, const char *suffix, const cJSON *extra)
{
	char name[DISPATCH_EVENT_MAX];

	snprintf(name, sizeof(name), "%s:%s", j->a.type, suffix);
	dispatch_send_event(j->d, j->a.id, name, extra);
}

/* ---- waiting ------------------------------------------------------------ */

/* Waits ms, or for the button when button is set.  -1 when cancelled. */
static int
dispatch_job_wait(struct job *j, int64_t ms, int button)
{
	struct dispatch *d = j->d;
	struct timespec ts;
	int rc = 0;

	if (ms < 0)
		ms = 0;
	mono_deadline(&ts, ms);
	pthread_mutex_lock(&d->mtx);
	while (!atomic_load(&j->cancel) && rc != ETIMEDOUT &&
	    !(button && d->button_seq != j->button_seen))
		rc = pthread_cond_timedwait(&d->cond, &d->mtx, &ts);
	if (button)
		j->button_seen = d->button_seq;	/* one press, one step */
	pthread_mutex_unlock(&d->mtx);
	return atomic_load(&j->cancel) ? -1 : 0;
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
		pthread_mutex_lock(&j->d->txmtx);
		dispatch_send(j->d, event_progress_frame(j->a.id, name,
		    dl->got, dl->total ? dl->total : dl->got, "bytes"),
		    QUEUE_PRIO_LOW);
		pthread_mutex_unlock(&j->d->txmtx);
	}
	return 0;
}

/* 0, -1 refused/failed, -2 cancelled. */
static int
dispatch_step_download(struct job *j, const struct seq_step *st)
{
	struct dispatch *d = j->d;
	struct cloud_sink sink;
	struct dispatch_dl dl;
	enum cloud_result r;
	cJSON *info = NULL;
	char *kept = NULL, what[32];
	uint64_t max;			/* bytes of body */
	int ret = -1;

	memset(&dl, 0, sizeof(dl));
	dl.job = j;
	dl.progress = st->progress;
	if (j->a.motion_url == NULL || !cloud_url_allowed(j->a.motion_url)) {
		log_warnx("job %lld: no usable motion_url (http/https only)",
		    (long long)j->a.id);
		return -1;
	}
	dl.store = store_begin(d->cf->motion_dl_dir, j->a.type, j->a.id);
	/* Memory does not grow with the bound: the body streams to disk. */
	max = d->cf->max_job_mib > 0 ? (uint64_t)d->cf->max_job_mib << 20 :
	    PULS_MAX_BODY;
	dl.ps = puls_stream_new(d->serial, max, dispatch_dl_keep, &dl);
	if (dl.ps == NULL)
		goto done;
	sink.declared = dispatch_dl_declared;
	sink.data = dispatch_dl_data;
	sink.arg = &dl;
	/* Bytes on the wire, over every hop: the body bound, plus room for
	 * a header (a few KiB at most); the stream checks the exact bound. */
	sink.max_bytes = max + DISPATCH_DL_SLACK;
	snprintf(what, sizeof(what), "job %lld", (long long)j->a.id);
	r = cloud_download(d->cloud, j->a.motion_url, &sink, &j->cancel,
	    what);
	if (r == CLOUD_ERR_CANCELLED) {
		ret = -2;
		goto done;
	}
	if (r == CLOUD_ERR_SINK) {
		metrics_inc(METRICS_JOBS_REFUSED);
		log_warnx("job %lld refused: %s", (long long)j->a.id,
		    puls_stream_error(dl.ps));
		goto done;
	}
	if (r != CLOUD_OK)
		goto done;	/* cloud said why, with the job's id */
	if (puls_stream_finish(dl.ps) == -1) {
		metrics_inc(METRICS_JOBS_REFUSED);
		log_warnx("job %lld refused: %s", (long long)j->a.id,
		    puls_stream_error(dl.ps));
		goto done;
	}
	info = puls_info_json(puls_stream_header(dl.ps),
	    puls_stream_body_size(dl.ps), puls_stream_stats(dl.ps));
	if (dl.store != NULL) {
		if (info != NULL && store_commit(dl.store, info, &kept) == 0)
			log_info("job %lld kept as %s (%llu body bytes%s)",
			    (long long)j->a.id, kept,
			    (unsigned long long)puls_stream_body_size(dl.ps),
			    puls_stream_compressed(dl.ps) ? ", sent gzipped" :
			    "");
		else if (info == NULL)
			store_abort(dl.store);
		dl.store = NULL;	/* commit frees it either way */
	}
	ret = 0;
done:
	if (dl.store != NULL)
		store_abort(dl.store);
	puls_stream_free(dl.ps);
	cJSON_Delete(info);
	free(kept);
	return ret;
}

static void
dispatch_save_image(struct job *j)
{
	const struct config *cf = j->d->cf;
	const char *dir = cf->log_dir != NULL ? cf->log_dir : cf->base_dir;
	char path[4096];
	struct stat sb;
	size_t off = 0;
	ssize_t n;
	int fd;

	if (dir == NULL)
		return;
	/* type is validated ([a-z_]) and id is a number: a safe name. */
	snprintf(path, sizeof(path), "%s/%s_%lld.jpg", dir, j->a.type,
	    (long long)j->a.id);
	/* Whatever sits at that name must not hold the job: a FIFO would
	 * block open() and write() for ever, a link would send the image
	 * elsewhere.  So: no blocking, no following, a regular file only. */
	fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOFOLLOW |
	    O_CLOEXEC, 0640);
	if (fd == -1) {
		/* ENXIO: a FIFO nobody reads; ELOOP: a symbolic link. */
		if (errno == ENXIO || errno == ELOOP)
			log_warnx("save_sent_images: %s: not a regular file, "
			    "not saved", path);
		else
			log_warn("save_sent_images: %s", path);
		return;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		log_warnx("save_sent_images: %s: not a regular file, not "
		    "saved", path);
		goto done;
	}
	if (ftruncate(fd, 0) == -1) {
		log_warn("save_sent_images: %s", path);
		goto done;
	}
	while (off < j->jpeg_len) {
		n = write(fd, j->jpeg + off, j->jpeg_len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("save_sent_images: %s", path);
			goto done;
		}
		off += (size_t)n;
	}
done:
	if (close(fd) == -1)
		log_warn("save_sent_images: %s", path);
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
		pthread_mutex_lock(&d->mtx);
		if (strcmp(j->a.type, "lid_image") == 0 &&
		    d->homing_shots < DISPATCH_HOMING_SHOTS)
			shot.homing_stage = ++d->homing_shots;
		pthread_mutex_unlock(&d->mtx);
	}
	free(j->jpeg);
	j->jpeg = NULL;
	if (camera_take(d->cf->image_src_dir, &shot, &j->jpeg, &j->jpeg_len,
	    name, sizeof(name)) == -1)
		return -1;
	log_debug("%s %lld: frame %s (%zu bytes)", j->a.type,
	    (long long)j->a.id, name, j->jpeg_len);
	if (d->cf->save_sent_images)
		dispatch_save_image(j);
	return 0;
}

static int
dispatch_step_upload(struct job *j)
{
	enum cloud_result r;

	if (j->jpeg == NULL) {
		log_warnx("%s %lld: nothing captured to upload", j->a.type,
		    (long long)j->a.id);
		return -1;
	}
	if (j->a.endpoint != NULL && !cloud_url_allowed(j->a.endpoint)) {
		log_warnx("%s %lld: upload endpoint refused (http/https only)",
		    j->a.type, (long long)j->a.id);
		return -1;
	}
	r = cloud_upload(j->d->cloud, j->a.endpoint, j->a.type, j->a.id,
	    j->jpeg, j->jpeg_len);
	if (r != CLOUD_OK)
		return -1;	/* cloud said why */
	return 0;
}

static int
dispatch_step_fw_probe(struct job *j)
{
	const char *mine = j->d->cf->fw_version != NULL ?
	    j->d->cf->fw_version : DISPATCH_DEFAULT_FW;
	enum cloud_result r;
	char *version = NULL;

	if ((r = cloud_fw_probe(j->d->cloud, &version)) != CLOUD_OK) {
		log_warnx("firmware probe failed: %s", cloud_strerror(r));
		return -1;
	}
	if (strcmp(version, mine) != 0)
		log_notice("service offers firmware %s, machine runs %s "
		    "(nothing is installed)", version, mine);
	else
		log_info("firmware %s is current", mine);
	free(version);
	return 0;
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

	pthread_mutex_lock(&d->mtx);
	/* A motion moves the head: the next lid images home again. */
	if (completed && strcmp(j->a.type, "motion") == 0 &&
	    !d->cf->bypass_homing)
		d->homing_shots = 0;
	j->ended = 1;
	pthread_cond_broadcast(&d->cond);
	/* Held actions start on the dispatcher thread: an empty item on rx
	 * wakes it (received lines are never empty). */
	if (j->lane == LANE_SERVICE && d->npending > 0) {
		char *wake = strdup("");

		if (wake != NULL)
			queue_push(d->rx, wake, 0, QUEUE_PRIO_HIGH);
	}
	pthread_mutex_unlock(&d->mtx);
}

/* The event of a step, with the settings report when the step asks. */
static void
dispatch_step_event(struct job *j, const struct seq_step *st)
{
	struct dispatch *d = j->d;
	struct settings_overrides ov;
	char name[DISPATCH_EVENT_MAX];
	cJSON *extra = NULL, *settings, *values;
	int full;

	seq_event_name(st->event, j->a.type, name, sizeof(name));
	if (!st->no_action_id && dispatch_is_terminal(j, name) &&
	    j->terminal_sent) {
		/* A table may name two; the service must see one. */
		log_warnx("%s %lld: %s skipped, the action already ended",
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
		pthread_mutex_lock(&d->mtx);
		full = !d->report_sent && !d->cf->bypass_homing;
		d->report_sent = 1;
		pthread_mutex_unlock(&d->mtx);
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
			if ((values = settings_report(&ov)) != NULL)
				cJSON_AddItemToObject(settings, "values",
				    values);
		}
	}
	if (!st->no_action_id && dispatch_is_terminal(j, name)) {
		dispatch_job_end(j, strcmp(name + strlen(j->a.type),
		    ":completed") == 0);
		j->terminal_sent = 1;
	}
	dispatch_send_event(d, st->no_action_id ? EVENT_NO_ACTION : j->a.id,
	    name, extra);
	cJSON_Delete(extra);
}

static void *
dispatch_job_run(void *arg)
{
	struct job *j = arg;
	struct dispatch *d = j->d;
	const struct seq_step *st;
	size_t i;
	int r = 0;

	log_info("%s %lld: started", j->a.type, (long long)j->a.id);
	history_started(j->a.id);
	for (i = 0; i < j->seq->nsteps && r == 0; i++) {
		st = &j->seq->steps[i];
		/* After the terminal event (1.x sends a few more) a cancel
		 * comes too late: the action has ended. */
		if (st->delay_ms > 0 && dispatch_job_wait(j, st->delay_ms, 0) &&
		    !j->terminal_sent)
			r = -2;
		if (r == 0 && atomic_load(&j->cancel) && !j->terminal_sent)
			r = -2;
		if (r != 0)
			break;
		switch (st->op) {
		case SEQ_EVENT:
			dispatch_step_event(j, st);
			break;
		case SEQ_DOWNLOAD:
			r = dispatch_step_download(j, st);
			break;
		case SEQ_CAPTURE:
			r = dispatch_step_capture(j);
			break;
		case SEQ_UPLOAD:
			if ((r = dispatch_step_upload(j)) == -1 &&
			    !atomic_load(&j->cancel))
				dispatch_job_event(j, "upload:failed", NULL);
			break;
		case SEQ_BUTTON:
			log_info("%s %lld: waiting for the button (%.1f s, or "
			    "SIGUSR1)", j->a.type, (long long)j->a.id,
			    d->cf->button_press_delay);
			r = dispatch_job_wait(j, (int64_t)(
			    d->cf->button_press_delay * 1000), 1) ? -2 : 0;
			break;
		case SEQ_WARMUP:
			r = dispatch_job_wait(j, (int64_t)(
			    d->cf->warm_up_delay * 1000), 0) ? -2 : 0;
			break;
		case SEQ_COOLDOWN:
			r = dispatch_job_wait(j, (int64_t)(
			    d->cf->cool_down_delay * 1000), 0) ? -2 : 0;
			break;
		case SEQ_FW_PROBE:
			r = dispatch_step_fw_probe(j);
			break;
		case SEQ_REFUSE:
			log_warnx("%s %lld refused: a cloud command never does "
			    "this to the machine", j->a.type,
			    (long long)j->a.id);
			r = -1;
			break;
		}
		/* A cancel that raced with a step that went through. */
		if (r == 0 && atomic_load(&j->cancel) && !j->terminal_sent)
			r = -2;
	}
	/* A step that failed because it was cancelled (shutdown aborts the
	 * transfers) was cancelled. */
	if (r == -1 && atomic_load(&j->cancel))
		r = -2;
	/* Exactly one terminal event, whatever the table (or an override
	 * file) says. */
	if (j->terminal_sent)
		r = 0;		/* the service was told it completed */
	else {
		dispatch_job_end(j, r == 0);
		dispatch_job_event(j, r == -1 ? "failed" : r == -2 ?
		    "cancelled" : "completed", NULL);
	}
	log_info("%s %lld: %s", j->a.type, (long long)j->a.id,
	    r == 0 ? "completed" : r == -1 ? "failed" : "cancelled");
	/* Last touch of j: from here the dispatcher may join and free it.
	 * Moved to the finishing list, it is reaped on the dispatcher
	 * thread, which an empty item on rx wakes. */
	pthread_mutex_lock(&d->mtx);
	j->finished = 1;
	if (d->job[j->lane] != j) {
		char *wake = strdup("");

		if (wake != NULL)
			queue_push(d->rx, wake, 0, QUEUE_PRIO_HIGH);
	}
	pthread_mutex_unlock(&d->mtx);
	return NULL;
}

/* ---- jobs --------------------------------------------------------------- */

static void
dispatch_job_free(struct job *j)
{
	if (j == NULL)
		return;
	frame_action_free(&j->a);
	free(j->jpeg);
	free(j);
}

/* Frees the lanes of ended jobs, and joins and frees the jobs whose
 * threads have returned.  An ended job may still have trailing steps, with
 * delays (a sequences file): it waits on the finishing list, so the join
 * never blocks the dispatcher.  Lock held. */
static void
dispatch_reap(struct dispatch *d)
{
	struct job *j, **jp;
	int lane;

	for (lane = 0; lane < DISPATCH_LANES; lane++) {
		if ((j = d->job[lane]) == NULL || !j->ended)
			continue;
		d->job[lane] = NULL;
		j->next = d->finishing;
		d->finishing = j;
	}
	for (jp = &d->finishing; (j = *jp) != NULL; ) {
		if (!j->finished) {
			jp = &j->next;
			continue;
		}
		*jp = j->next;
		/* It has returned, or is about to: a short join. */
		pthread_mutex_unlock(&d->mtx);
		pthread_join(j->thread, NULL);
		dispatch_job_free(j);
		pthread_mutex_lock(&d->mtx);
		jp = &d->finishing;	/* the list may have changed */
	}
}

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

/* Starts a's job in its lane now.  Lock held, lane free.  Takes a.  0, or
 * -1 when it could not start: a then got its one terminal event,
 * "{type}:failed", as a job that failed does (the service would otherwise
 * wait for it), and the lane is still free. */
static int
dispatch_launch(struct dispatch *d, struct action *a, const struct seq *seq,
    enum dispatch_lane lane)
{
	char name[DISPATCH_EVENT_MAX];
	struct job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		log_warnx("out of memory: %s %lld failed", a->type,
		    (long long)a->id);
		snprintf(name, sizeof(name), "%s:failed", a->type);
		dispatch_send_event(d, a->id, name, NULL);
		frame_action_free(a);
		return -1;
	}
	j->d = d;
	j->a = *a;
	memset(a, 0, sizeof(*a));
	j->seq = seq;
	j->lane = lane;
	j->button_seen = d->button_seq;	/* lock held */
	atomic_init(&j->cancel, 0);
	if (pthread_create(&j->thread, NULL, dispatch_job_run, j) != 0) {
		log_warnx("cannot start a job thread: %s %lld failed",
		    j->a.type, (long long)j->a.id);
		dispatch_job_event(j, "failed", NULL);
		dispatch_job_free(j);
		return -1;
	}
	d->job[lane] = j;
	return 0;
}

/* Reaps ended jobs and starts the oldest held action; when it cannot
 * start (it failed at once), the next one.  Lock held. */
static void
dispatch_next(struct dispatch *d)
{
	struct action a;

	dispatch_reap(d);
	while (d->job[LANE_SERVICE] == NULL && d->npending > 0 &&
	    !d->stopping) {
		a = d->pending[0];
		memmove(&d->pending[0], &d->pending[1],
		    --d->npending * sizeof(d->pending[0]));
		dispatch_launch(d, &a, seq_find(d->seq, a.type),
		    LANE_SERVICE);
	}
}

/* Takes ownership of a's JSON. */
/* The slot of id among the remembered ones, or -1.  Lock held. */
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
 * oldest past the bound.  Lock held. */
static void
dispatch_seen_add(struct dispatch *d, int64_t id)
{
	d->seen[d->seen_next].id = id;
	d->seen[d->seen_next].told = 0;
	d->seen_next = (d->seen_next + 1) % DISPATCH_SEEN_MAX;
	if (d->nseen < DISPATCH_SEEN_MAX)
		d->nseen++;
}

/* A "ready" for an id already started: no second run and no event (a
 * second terminal event would break "exactly one"), one warning per id,
 * whatever the service repeats.  1 if a was such a repeat (and freed).
 * Lock held. */
static int
dispatch_seen_repeat(struct dispatch *d, struct action *a)
{
	long i;

	if ((i = dispatch_seen_find(d, a->id)) == -1)
		return 0;
	if (!d->seen[i].told)
		log_warnx("%s %lld: ready again for an id already started; "
		    "not run twice", a->type, (long long)a->id);
	else
		log_debug("%s %lld: ready again, ignored", a->type,
		    (long long)a->id);
	d->seen[i].told = 1;
	frame_action_free(a);
	return 1;
}

static void
dispatch_start_job(struct dispatch *d, struct action *a)
{
	const struct seq *seq;
	enum dispatch_lane lane;
	struct job *busy;
	char msg[256];

	if ((seq = seq_find(d->seq, a->type)) == NULL) {
		log_info("action %lld: type %s ignored", (long long)a->id,
		    a->type);
		frame_action_free(a);
		return;
	}
	history_received(a->id, a->type);
	pthread_mutex_lock(&d->mtx);
	dispatch_next(d);
	if (d->stopping) {
		pthread_mutex_unlock(&d->mtx);
		frame_action_free(a);
		return;
	}
	if (dispatch_seen_repeat(d, a)) {
		pthread_mutex_unlock(&d->mtx);
		return;
	}
	lane = dispatch_lane_of(seq);
	if ((busy = d->job[lane]) == NULL) {
		dispatch_seen_add(d, a->id);
		dispatch_launch(d, a, seq, lane);
		pthread_mutex_unlock(&d->mtx);
		return;
	}
	/* Busy and not held: not started, so a later "ready" may start it. */
	if (lane == LANE_SERVICE && d->npending < DISPATCH_PENDING_MAX) {
		dispatch_seen_add(d, a->id);
		log_debug("%s %lld held until %s %lld ends", a->type,
		    (long long)a->id, busy->a.type, (long long)busy->a.id);
		d->pending[d->npending++] = *a;
		memset(a, 0, sizeof(*a));
		pthread_mutex_unlock(&d->mtx);
		return;
	}
	snprintf(msg, sizeof(msg), "busy: %s %lld not started, %s %lld is "
	    "running", a->type, (long long)a->id, busy->a.type,
	    (long long)busy->a.id);
	pthread_mutex_unlock(&d->mtx);
	log_warnx("%s", msg);
	dispatch_send_log(d, "WARNING", msg);
	history_refused(a->id, msg);
	frame_action_free(a);
}

static void
dispatch_cancel(struct dispatch *d, const struct action *a)
{
	char name[DISPATCH_EVENT_MAX];
	struct action held;
	size_t i;

	pthread_mutex_lock(&d->mtx);
	for (i = 0; i < d->npending; i++) {
		if (d->pending[i].id != a->id)
			continue;
		/* Held, never started: drop it and say so. */
		held = d->pending[i];
		memmove(&d->pending[i], &d->pending[i + 1],
		    (--d->npending - i) * sizeof(d->pending[0]));
		pthread_mutex_unlock(&d->mtx);
		log_info("%s %lld: cancelled before it started", held.type,
		    (long long)held.id);
		snprintf(name, sizeof(name), "%s:cancelled", held.type);
		dispatch_send_event(d, held.id, name, NULL);
		frame_action_free(&held);
		return;
	}
	for (i = 0; i < DISPATCH_LANES; i++) {
		struct job *j = d->job[i];

		if (j == NULL || j->ended || j->a.id != a->id)
			continue;
		log_info("%s %lld: cancelled by the service", j->a.type,
		    (long long)a->id);
		atomic_store(&j->cancel, 1);
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->mtx);
		return;
	}
	pthread_mutex_unlock(&d->mtx);
	log_debug("cancel for %lld ignored: not a running job",
	    (long long)a->id);
}

void
dispatch_line(struct dispatch *d, const char *line, size_t len)
{
	struct action a;
	char err[160];

	if (frame_parse_action(line, len, &a, err, sizeof(err)) == -1) {
		log_warnx("frame dropped: %s", err);
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
		log_debug("action %lld (%s): status ignored", (long long)a.id,
		    a.type);
		break;
	}
	frame_action_free(&a);
}

static void *
dispatch_thread(void *arg)
{
	struct dispatch *d = arg;
	size_t len;
	char *line;

	while ((line = queue_pop_wait(d->rx, &len, -1)) != NULL) {
		if (len == 0) {		/* a job ended: see dispatch_job_run */
			pthread_mutex_lock(&d->mtx);
			dispatch_next(d);
			pthread_mutex_unlock(&d->mtx);
		} else
			dispatch_line(d, line, len);
		free(line);
	}
	return NULL;
}

/* ---- life --------------------------------------------------------------- */

struct dispatch *
dispatch_new(const struct config *cf, struct cloud *cloud,
    const struct seq_table *seq, struct queue *rx, struct queue *tx)
{
	struct dispatch *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->cf = cf;
	d->cloud = cloud;
	d->seq = seq;
	d->rx = rx;
	d->tx = tx;
	d->serial = strtoull(cf->serial != NULL ? cf->serial : "0", NULL, 10);
	d->homing_shots = cf->bypass_homing ? DISPATCH_HOMING_SHOTS : 0;
	pthread_mutex_init(&d->txmtx, NULL);
	pthread_mutex_init(&d->mtx, NULL);
	mono_cond_init(&d->cond);
	return d;
}

void
dispatch_free(struct dispatch *d)
{
	if (d == NULL)
		return;
	/* dispatch_stop() joined every job. */
	while (d->npending > 0)
		frame_action_free(&d->pending[--d->npending]);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->mtx);
	pthread_mutex_destroy(&d->txmtx);
	free(d);
}

int
dispatch_start(struct dispatch *d)
{
	if (pthread_create(&d->thread, NULL, dispatch_thread, d) != 0) {
		log_warnx("cannot start the dispatcher thread");
		return -1;
	}
	d->started = 1;
	return 0;
}

void
dispatch_press_button(struct dispatch *d)
{
	pthread_mutex_lock(&d->mtx);
	d->button_seq++;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->mtx);
	log_info("button pressed");
}

void
dispatch_stop(struct dispatch *d, int timeout_ms)
{
	struct timespec ts;
	struct job *j;
	int lane, rc = 0;

	/* No new actions: what is left in rx is read and not started. */
	pthread_mutex_lock(&d->mtx);
	d->stopping = 1;
	pthread_mutex_unlock(&d->mtx);
	queue_close(d->rx);
	if (d->started) {
		pthread_join(d->thread, NULL);
		d->started = 0;
	}
	mono_deadline(&ts, timeout_ms);
	pthread_mutex_lock(&d->mtx);
	for (lane = 0; lane < DISPATCH_LANES; lane++) {
		if ((j = d->job[lane]) == NULL)
			continue;
		/* An ended job may still be in a table's trailing steps: the
		 * flag cuts their waits short too. */
		if (!j->ended)
			log_info("%s %lld: cancelled by shutdown", j->a.type,
			    (long long)j->a.id);
		atomic_store(&j->cancel, 1);
	}
	for (j = d->finishing; j != NULL; j = j->next)
		atomic_store(&j->cancel, 1);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->mtx);
	/* After the flags, so an aborted transfer reads as cancelled. */
	cloud_abort(d->cloud);
	pthread_mutex_lock(&d->mtx);
	for (lane = 0; lane < DISPATCH_LANES; lane++) {
		if ((j = d->job[lane]) == NULL)
			continue;
		while (!j->ended && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&d->cond, &d->mtx, &ts);
		if (!j->ended)
			log_warnx("%s %lld still running at shutdown",
			    j->a.type, (long long)j->a.id);
	}
	pthread_mutex_unlock(&d->mtx);
	/* cloud_abort() ends any transfer within curl's progress period, so
	 * these joins are bounded even when the wait above timed out. */
	for (lane = 0; lane < DISPATCH_LANES; lane++) {
		/* Under the lock: a finishing job reads its lane's slot. */
		pthread_mutex_lock(&d->mtx);
		j = d->job[lane];
		d->job[lane] = NULL;
		pthread_mutex_unlock(&d->mtx);
		if (j == NULL)
			continue;
		pthread_join(j->thread, NULL);
		dispatch_job_free(j);
	}
	/* The dispatcher thread is gone: nothing else touches the list. */
	while ((j = d->finishing) != NULL) {
		d->finishing = j->next;
		pthread_join(j->thread, NULL);
		dispatch_job_free(j);
	}
}
