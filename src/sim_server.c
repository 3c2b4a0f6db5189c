/*
 * sim_server: see sim_server.h.
 *
 * Everything happens in lws callbacks on the one thread: HTTP requests go to
 * sim_http, WebSocket messages to the player, and after each callback
 * sim_server_after() looks at the player: it re-arms the player's deadline
 * timer or, once the scenario has passed or failed, closes the machine's
 * socket and ends the loop.  Frames for the machine wait in a bounded queue
 * owned by the server, not by a connection, so a frame queued while the
 * machine is reconnecting goes out on its next connection.
 */
#include <sys/stat.h>
#include <sys/socket.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libwebsockets.h>

#include "evloop.h"
#include "log.h"
#include "sim_fleet.h"
#include "sim_http.h"
#include "sim_load.h"
#include "sim_player.h"
#include "sim_scenario.h"
#include "sim_server.h"
#include "sim_transcript.h"

#define SIM_SERVER_TXQ_MAX	1024	/* frames for the machine */
#define SIM_SERVER_CLOSE_MS	1000	/* to say goodbye, at most */

struct sim_txframe {
	struct sim_txframe	*next;
	size_t			 len;
	char			 text[];
};

struct sim_ws_sess {
	char			*msg;	/* the message being reassembled */
	size_t			 len;
	int			 close_req;	/* close when next writeable */
	int			 closing;	/* the machine's close came, or
						 * a write failed: lws closes */
	int			 open;		/* counted in nopen */
	struct sim_machine	*m;
};

/* A machine's side of the server: its socket and the frames waiting for
 * it, kept across its reconnects. */
struct sim_conn {
	struct lws		*ws;		/* its socket, or NULL */
	struct sim_txframe	*txh, *txt;
	size_t			 ntx;
};

struct sim_server {
	const struct sim_server_params	*p;
	struct evloop		*ev;		/* libuv + lws, one thread */
	uv_timer_t		 uv_stop;	/* ends the loop, outside lws */
	uv_signal_t		 uv_sig[2];	/* SIGINT, SIGTERM */
	int			 uv_open;	/* those handles are open */
	struct lws_context	*ctx;
	struct lws_vhost	*vh;
	struct lws_protocols	 protocols[3];
	struct sim_http		*http;
	struct sim_player	*player;
	struct sim_transcript	*tr;
	struct timespec		 t0;
	int			 port;
	char			 base[200];	/* scheme://host:port */
	struct lws_vhost	*vh_far;	/* "another host": storage */
	char			 base_far[200];	/* its scheme://host:port */

	struct sim_fleet	*fleet;
	struct sim_conn		*conns;		/* one per machine */
	size_t			 nopen;		/* sockets established */
	struct sim_load		*load;		/* load mode, or NULL */
	unsigned long		 nwritten;	/* frames written so far */
	int			 nsignins;	/* 200s told to the load */
	FILE			*memfp;		/* --machine-memory */

	lws_sorted_usec_list_t	 sul_player;
	lws_sorted_usec_list_t	 sul_global;
	lws_sorted_usec_list_t	 sul_stop;
	/* The load's timers are libuv's (ms): an lws sul due between two
	 * ms makes lws spin on its uv timer until it is ripe. */
	uv_timer_t		 uv_load;
	/* The timer fires on whole ms of the loop's clock, up to 2 ms after
	 * an action is due (2,000/s: one every 0.5 ms), and that wait is
	 * charged to the machine.  So each pass of a busy loop also sends
	 * what is due (libuv's check phase, after the I/O callbacks): no
	 * system call, only a clock read. */
	uv_check_t		 uv_load_check;
	int64_t			 load_next_us;	/* next due time; -1: none */
	uv_timer_t		 uv_progress;
	int			 stopping;
	int			 done;
	int			 sig_seen;
};

static int			 sim_server_signal;	/* on the loop */
static const lws_retry_bo_t	 sim_server_no_idle;	/* all zero */

static int64_t
sim_server_now(const struct sim_server *s)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)(ts.tv_sec - s->t0.tv_sec) * 1000 +
	    (ts.tv_nsec - s->t0.tv_nsec) / 1000000;
}

/* The same clock in microseconds, for action latencies. */
static int64_t
sim_server_now_us(const struct sim_server *s)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)(ts.tv_sec - s->t0.tv_sec) * 1000000 +
	    (ts.tv_nsec - s->t0.tv_nsec) / 1000;
}

static int64_t
sim_server_now_cb(void *arg)
{
	return sim_server_now(arg);
}

static void
sim_server_record_ws(struct sim_server *s, const char *event, int code)
{
	cJSON *o;

	if ((o = cJSON_CreateObject()) == NULL)
		return;
	cJSON_AddStringToObject(o, "event", event);
	if (code > 0)
		cJSON_AddNumberToObject(o, "code", code);
	sim_transcript_record(s->tr, sim_server_now(s), "ws", o);
	cJSON_Delete(o);
}

static void	 sim_server_done(struct sim_server *s);
static void	 sim_server_sul_player(lws_sorted_usec_list_t *sul);
static void	 sim_server_sul_stop(lws_sorted_usec_list_t *sul);
static void	 sim_server_load_cb(uv_timer_t *t);
static void	 sim_server_load_flush(struct sim_server *, struct sim_conn *);

/* The scenario's machine: the fleet's only one. */
static struct sim_conn *
sim_server_conn0(struct sim_server *s)
{
	return &s->conns[0];
}

static void
sim_server_close(struct lws *wsi)
{
	struct sim_ws_sess *ws = lws_wsi_user(wsi);

	ws->close_req = 1;
	lws_callback_on_writable(wsi);
}

/* Say goodbye (1001) and finish the answers under way, but do not wait on
 * the machines for long. */
static void
sim_server_begin_stop(struct sim_server *s)
{
	size_t i;

	s->stopping = 1;
	lws_sul_cancel(&s->sul_player);
	lws_sul_cancel(&s->sul_global);
	if (s->uv_open) {
		uv_timer_stop(&s->uv_load);
		uv_check_stop(&s->uv_load_check);
		uv_timer_stop(&s->uv_progress);
	}
	for (i = 0; i < sim_fleet_count(s->fleet); i++)
		if (s->conns[i].ws != NULL)
			sim_server_close(s->conns[i].ws);
	lws_sul_schedule(s->ctx, 0, &s->sul_stop, sim_server_sul_stop,
	    SIM_SERVER_CLOSE_MS * LWS_US_PER_MS);
}

/* After every callback in load mode. */
static void
sim_server_after_load(struct sim_server *s)
{
	if (s->done)
		return;
	if (!s->stopping && sim_load_done(s->load))
		sim_server_begin_stop(s);
	if (s->stopping && s->nopen == 0 && sim_http_active(s->http) == 0)
		sim_server_done(s);
}

/* After every callback: follow the player. */
static void
sim_server_after(struct sim_server *s)
{
	int64_t dl, now;

	if (s->load != NULL) {
		sim_server_after_load(s);
		return;
	}
	if (s->player == NULL || s->done)
		return;
	if (sim_player_result(s->player) == SIM_RUNNING) {
		dl = sim_player_deadline(s->player);
		if (dl < 0) {
			lws_sul_cancel(&s->sul_player);
			return;
		}
		now = sim_server_now(s);
		lws_sul_schedule(s->ctx, 0, &s->sul_player,
		    sim_server_sul_player,
		    (dl > now ? dl - now : 0) * LWS_US_PER_MS + 1000);
		return;
	}
	if (!s->stopping)
		sim_server_begin_stop(s);
	if (sim_server_conn0(s)->ws == NULL && sim_http_active(s->http) == 0)
		sim_server_done(s);
}

static void
sim_server_sul_player(lws_sorted_usec_list_t *sul)
{
	struct sim_server *s;

	s = (struct sim_server *)(void *)((char *)sul -
	    offsetof(struct sim_server, sul_player));
	sim_player_tick(s->player, sim_server_now(s));
	sim_server_after(s);
}

static void
sim_server_sul_stop(lws_sorted_usec_list_t *sul)
{
	struct sim_server *s = (struct sim_server *)(void *)((char *)sul -
	    offsetof(struct sim_server, sul_stop));

	size_t i;
	struct lws *ws;

	log_debug("the machine did not close in time");
	/* A machine that never reads leaves our close frame and more
	 * stuck behind a full socket: lws_context_destroy() would wait
	 * for them (15-30 s).  Drop that socket now, unflushed. */
	for (i = 0; i < sim_fleet_count(s->fleet); i++)
		if ((ws = s->conns[i].ws) != NULL) {
			shutdown(lws_get_socket_fd(ws), SHUT_RDWR);
			lws_set_timeout(ws, PENDING_TIMEOUT_USER_OK,
			    LWS_TO_KILL_ASYNC);
		}
	sim_server_done(s);
}

static void
sim_server_sul_global(lws_sorted_usec_list_t *sul)
{
	struct sim_server *s = (struct sim_server *)(void *)((char *)sul -
	    offsetof(struct sim_server, sul_global));
	char where[256];

	sim_player_where(s->player, where, sizeof(where));
	sim_player_fail(s->player, "global timeout after %d s (%s)",
	    s->p->timeout_secs, where);
	sim_server_after(s);
}

/* --- player operations --- */

static int
sim_server_queue(struct sim_conn *c, const char *text, size_t len)
{
	struct sim_txframe *f;

	if (c->ntx == SIM_SERVER_TXQ_MAX)
		return -1;
	if ((f = malloc(sizeof(*f) + len + 1)) == NULL)
		return -1;
	f->next = NULL;
	f->len = len;
	memcpy(f->text, text, len);
	f->text[len] = '\0';
	if (c->txt != NULL)
		c->txt->next = f;
	else
		c->txh = f;
	c->txt = f;
	c->ntx++;
	return 0;
}

static int
sim_server_op_send(void *arg, const char *text, size_t len)
{
	struct sim_server *s = arg;
	struct sim_conn *c = sim_server_conn0(s);

	if (sim_server_queue(c, text, len) == -1)
		return -1;
	if (c->ws != NULL)
		lws_callback_on_writable(c->ws);
	return 0;
}

static int
sim_server_load_send(void *arg, struct sim_machine *m, const char *text,
    size_t len)
{
	struct sim_server *s = arg;
	struct sim_conn *c = &s->conns[m->idx];

	if (sim_server_queue(c, text, len) == -1)
		return -1;
	sim_server_load_flush(s, c);
	return 0;
}

static void
sim_server_op_drop(void *arg)
{
	struct sim_server *s = arg;
	struct sim_conn *c = sim_server_conn0(s);

	if (c->ws == NULL)
		return;
	sim_server_record_ws(s, "drop", LWS_CLOSE_STATUS_GOINGAWAY);
	sim_server_close(c->ws);
	/* From now on the socket is on its way out: a reconnect replaces it
	 * even before lws reports it closed. */
	c->ws = NULL;
}

/* --drop-all-at: every machine's socket, closed at once and cleanly, as
 * op_drop does for one.  Each counts as down now, so a reconnect that
 * beats lws's CLOSED for the old socket is seen as one. */
static void
sim_server_load_drop_all(void *arg)
{
	struct sim_server *s = arg;
	struct sim_conn *c;
	size_t i;

	for (i = 0; i < sim_fleet_count(s->fleet); i++) {
		c = &s->conns[i];
		if (c->ws == NULL)
			continue;
		sim_server_record_ws(s, "drop", LWS_CLOSE_STATUS_GOINGAWAY);
		sim_server_close(c->ws);
		c->ws = NULL;
		sim_load_disconnected(s->load, sim_fleet_machine(s->fleet, i),
		    sim_server_now_us(s));
	}
}

/* The machine is another process: its pid is read when needed (the
 * harness writes it before the machine connects).  0 when unknown. */
static long
sim_server_machine_pid(const struct sim_server *s)
{
	char buf[32];
	long pid = 0;
	FILE *fp;

	if (s->p->machine_pid_file == NULL ||
	    (fp = fopen(s->p->machine_pid_file, "re")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), fp) != NULL)
		pid = strtol(buf, NULL, 10);
	fclose(fp);
	return pid > 1 ? pid : 0;
}

/* Its button is SIGUSR1. */
static void
sim_server_press_button(struct sim_server *s)
{
	long pid;

	if (s->p->machine_pid_file == NULL) {
		sim_player_fail(s->player, "press_button: no "
		    "--machine-pid-file to read");
		return;
	}
	if ((pid = sim_server_machine_pid(s)) == 0) {
		sim_player_fail(s->player, "press_button: no pid in "
		    "%s", s->p->machine_pid_file);
		return;
	}
	if (kill((pid_t)pid, SIGUSR1) == -1) {
		sim_player_fail(s->player, "press_button: cannot "
		    "signal pid %ld", pid);
		return;
	}
	log_info("button pressed (SIGUSR1 to %ld)", pid);
}

/* Appends " <key> <kB>" to memfp for each of keys found in the /proc
 * file at path (lines "Key:   123 kB"). */
static void
sim_server_scan_proc(struct sim_server *s, const char *path,
    const char *const *keys, size_t nkeys)
{
	char line[256];
	long long v;
	size_t i, k;
	FILE *fp;

	if ((fp = fopen(path, "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), fp) != NULL)
		for (i = 0; i < nkeys; i++) {
			k = strlen(keys[i]);
			if (strncmp(line, keys[i], k) != 0 ||
			    sscanf(line + k, "%lld", &v) != 1)
				continue;
			fprintf(s->memfp, " %.*s %lld", (int)(k - 1), keys[i],
			    v);
		}
	fclose(fp);
}

/* VmHWM back to VmRSS (proc(5), clear_refs: 5); a failure is logged. */
static void
sim_server_reset_peak(long pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/clear_refs", pid);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1 ||
	    write(fd, "5", 1) != 1)
		log_warn("--reset-peak: %s", path);
	if (fd != -1)
		close(fd);
}

/*
 * --machine-memory: the machine's memory from /proc/<pid>/status and
 * smaps_rollup, kB, appended as one line "<what> <n> VmRSS <kB> VmHWM <kB>
 * ... Pss <kB> ..." before each frame the sim writes and once when play
 * ends.  The sample before a frame shows the machine at rest after the
 * previous action (the benchmarks' "idle"); VmHWM, the peak so far, needs
 * no sampling at the right moment.  Pss shares each library page among
 * the processes that map it; Private_* are pages no other process maps.
 * --reset-peak: after each sample VmHWM is set back to VmRSS (clear_refs
 * 5), so the next sample's VmHWM is the peak between the two: one job's.
 */
static void
sim_server_sample_memory(struct sim_server *s, const char *what,
    unsigned long n)
{
	static const char *const status_keys[] = {
		"VmRSS:", "VmHWM:", "RssAnon:", "RssFile:", "RssShmem:",
		"VmData:", "VmStk:", "Threads:",
	};
	static const char *const rollup_keys[] = {
		"Pss:", "Private_Clean:", "Private_Dirty:",
	};
	char path[64];
	long pid;

	if (s->memfp == NULL || (pid = sim_server_machine_pid(s)) == 0)
		return;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if (access(path, R_OK) == -1)
		return;		/* gone: nothing to say */
	fprintf(s->memfp, "%s %lu", what, n);
	sim_server_scan_proc(s, path, status_keys,
	    sizeof(status_keys) / sizeof(status_keys[0]));
	snprintf(path, sizeof(path), "/proc/%ld/smaps_rollup", pid);
	sim_server_scan_proc(s, path, rollup_keys,
	    sizeof(rollup_keys) / sizeof(rollup_keys[0]));
	fputc('\n', s->memfp);
	fflush(s->memfp);
	if (s->p->reset_peak)
		sim_server_reset_peak(pid);
}

static void
sim_server_op_knob(void *arg, enum sim_knob knob, int n)
{
	struct sim_server *s = arg;

	if (knob == SIM_KNOB_PRESS_BUTTON)
		sim_server_press_button(s);
	else
		sim_http_knob(s->http, knob, n);
}

static char *
sim_server_op_pulse_url(void *arg, const char *name)
{
	struct sim_server *s = arg;
	char *url;

	/* "far-NAME": NAME on the second listener, another origin. */
	if (strncmp(name, SIM_HTTP_FAR_PREFIX, sizeof(SIM_HTTP_FAR_PREFIX) -
	    1) == 0) {
		if (asprintf(&url, "%s/pulse/%s", s->base_far,
		    name + sizeof(SIM_HTTP_FAR_PREFIX) - 1) == -1)
			return NULL;
	} else if (asprintf(&url, "%s/pulse/%s", s->base, name) == -1)
		return NULL;
	return url;
}

static char *
sim_server_op_upload_url(void *arg, int64_t action_id)
{
	struct sim_server *s = arg;

	return sim_http_upload_url(s->http, s->base, action_id);
}

static int
sim_server_op_uploads(void *arg, int64_t action_id)
{
	struct sim_server *s = arg;

	return sim_http_uploads(s->http, action_id);
}

static int
sim_server_op_signins(void *arg, int status)
{
	struct sim_server *s = arg;

	return sim_http_signins(s->http, status);
}

static char *
sim_server_metrics(void *arg)
{
	struct sim_server *s = arg;

	return s->load != NULL ? sim_load_metrics(s->load) : NULL;
}

static int
sim_server_load_signins(void *arg)
{
	struct sim_server *s = arg;

	return sim_http_signins(s->http, 200);
}

static void
sim_server_violation(void *arg, const char *why)
{
	struct sim_server *s = arg;

	if (s->load != NULL)
		sim_load_violation(s->load, "http: %s", why);
	else if (s->player != NULL)
		sim_player_fail(s->player, "http: %s", why);
}

/* --- lws callbacks --- */

static void
sim_server_copy_hdr(struct lws *wsi, enum lws_token_indexes tok, char *buf,
    size_t len)
{
	buf[0] = '\0';
	if (lws_hdr_total_length(wsi, tok) >= (int)len ||
	    lws_hdr_copy(wsi, buf, (int)len, tok) < 0)
		buf[0] = '\0';
}

/* A WebSocket upgrade: 0 to accept it, 1 to refuse.  glowforge: whether
 * the client asked for that subprotocol. */
static int
sim_server_upgrade(struct sim_server *s, struct lws *wsi, int glowforge)
{
	char path[160], origin[256], ua[256], host[128], why[128];
	const char *scheme = s->p->tls_cert != NULL ? "https" : "http";
	struct sim_machine *m = NULL;
	cJSON *o;
	size_t i;
	int ok;

	sim_server_copy_hdr(wsi, WSI_TOKEN_GET_URI, path, sizeof(path));
	sim_server_copy_hdr(wsi, WSI_TOKEN_ORIGIN, origin, sizeof(origin));
	sim_server_copy_hdr(wsi, WSI_TOKEN_HTTP_USER_AGENT, ua, sizeof(ua));
	sim_server_copy_hdr(wsi, WSI_TOKEN_HOST, host, sizeof(host));
	if (s->stopping) {
		/* Not a fault of the machine: the run is over. */
		log_info("WebSocket refused: the %s has ended", s->load !=
		    NULL ? "load run" : "scenario");
		return 1;
	}
	if (!glowforge) {
		snprintf(why, sizeof(why), "no \"glowforge\" subprotocol");
		ok = 0;
	} else
		ok = sim_http_ws_accept(s->http, path, &m, why,
		    sizeof(why)) == 0;
	explicit_bzero(path, sizeof(path));

	if ((o = cJSON_CreateObject()) != NULL) {
		cJSON_AddStringToObject(o, "method", "GET");
		cJSON_AddStringToObject(o, "path", "/<redacted>");
		cJSON_AddStringToObject(o, "upgrade", "websocket");
		cJSON_AddStringToObject(o, "origin", origin);
		cJSON_AddStringToObject(o, "user_agent", ua);
		cJSON_AddNumberToObject(o, "status", ok ? 101 : 403);
		if (!ok)
			cJSON_AddStringToObject(o, "note", why);
		sim_transcript_record(s->tr, sim_server_now(s), "http",
		    o);
		cJSON_Delete(o);
	}
	if (!ok) {
		log_warnx("WebSocket refused: %s", why);
		sim_server_violation(s, why);
		return 1;
	}
	/* URLs handed to the machine use the name it reached us by. */
	for (i = 0; host[i] != '\0'; i++)
		if (!isalnum((unsigned char)host[i]) &&
		    strchr(".-:[]", host[i]) == NULL)
			break;
	if (host[0] != '\0' && host[i] == '\0')
		snprintf(s->base, sizeof(s->base), "%s://%s", scheme, host);
	lws_set_opaque_user_data(wsi, m);
	if (sim_fleet_count(s->fleet) == 1)
		log_info("WebSocket accepted (Origin \"%s\", User-Agent "
		    "\"%s\")", origin, ua);
	else
		log_debug("WebSocket of S%s accepted (Origin \"%s\", "
		    "User-Agent \"%s\")", m->serial, origin, ua);
	return 0;
}

static void
sim_server_check_signal(struct sim_server *s)
{
	if (sim_server_signal == 0 || s->sig_seen)
		return;
	s->sig_seen = 1;
	if (s->load != NULL) {
		log_info("load: stopped by signal %d", (int)sim_server_signal);
		sim_load_stop(s->load, sim_server_now_us(s));
	} else
		sim_player_fail(s->player, "interrupted by signal %d",
		    (int)sim_server_signal);
	sim_server_after(s);
}

static int
sim_server_http_cb(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
	struct sim_server *s = lws_context_user(lws_get_context(wsi));
	int r;

	if (s == NULL || s->http == NULL)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* lws lands here when the upgrade named no subprotocol. */
		r = sim_server_upgrade(s, wsi, 0);
		sim_server_after(s);
		return r;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (s->player != NULL || s->load != NULL)
			sim_server_check_signal(s);
		return 0;
	default:
		break;
	}
	r = sim_http_callback(s->http, wsi, reason, user, in, len);
	if (s->done)
		return r;	/* the context is going */
	/* A request may end a wait (await_signin), or start a load. */
	if (s->load != NULL) {
		/* Each sign-in's time: sim_http counts them as it answers. */
		for (; s->nsignins < sim_http_signins(s->http, 200);
		    s->nsignins++)
			sim_load_signin(s->load, sim_server_now_us(s));
		/* (Vhosts call back while they are made, before the loop.) */
		if (s->uv_open)
			uv_timer_start(&s->uv_load, sim_server_load_cb, 0, 0);
	} else if (s->player != NULL)
		sim_player_tick(s->player, sim_server_now(s));
	sim_server_after(s);
	return r;
}

static int
sim_server_ws_write(struct sim_server *s, struct lws *wsi,
    struct sim_conn *c)
{
	struct sim_txframe *f = c->txh;
	unsigned char *buf;
	int64_t t;
	int n;

	if (f == NULL)
		return 0;
	if ((buf = malloc(LWS_PRE + f->len)) == NULL)
		return -1;
	memcpy(buf + LWS_PRE, f->text, f->len);
	if (s->player != NULL)
		sim_server_sample_memory(s, "frame", ++s->nwritten);
	/* An action's latency starts here, as the frame goes to the kernel:
	 * the wait for a writeable socket is the sim's, not the machine's.
	 * (A load run times actions from their due time instead.) */
	t = sim_server_now_us(s);
	n = lws_write(wsi, buf + LWS_PRE, f->len, LWS_WRITE_TEXT);
	free(buf);
	if (n < (int)f->len) {
		log_warnx("WebSocket write failed");
		return -1;
	}
	if (s->player != NULL)
		sim_player_written(s->player, t);
	sim_transcript_frame(s->tr, sim_server_now(s), "tx", f->text,
	    f->len);
	c->txh = f->next;
	if (c->txh == NULL)
		c->txt = NULL;
	c->ntx--;
	free(f);
	return 0;
}

/*
 * Load mode writes an action as it is due, not from the next writeable
 * callback: under libuv, asking lws for one and its end are each a
 * uv_poll_start(), an epoll_ctl() DEL then ADD, plus a wake-up, 4 of the
 * sim's 17 epoll_ctl per action (perf stat).  lws 4.1 keeps what the
 * kernel did not take and asks for POLLOUT itself; frames after it wait
 * here.  Closing sockets are left to the writeable callback, which lws no
 * longer calls: their frames stay for the machine's next socket.  (The
 * scenario player keeps one frame per callback: its timings are its
 * tests'.)
 */
static void
sim_server_load_flush(struct sim_server *s, struct sim_conn *c)
{
	struct sim_ws_sess *ws;

	if (c->ws == NULL)
		return;
	ws = lws_wsi_user(c->ws);
	if (ws->close_req || ws->closing) {
		lws_callback_on_writable(c->ws);
		return;
	}
	while (c->txh != NULL && !lws_partial_buffered(c->ws))
		if (sim_server_ws_write(s, c->ws, c) == -1) {
			ws->closing = 1;
			lws_set_timeout(c->ws, PENDING_TIMEOUT_CLOSE_SEND,
			    LWS_TO_KILL_ASYNC);
			return;
		}
	if (c->txh != NULL)
		lws_callback_on_writable(c->ws);
}

static void
sim_server_fail(struct sim_server *s, const char *why)
{
	if (s->load != NULL)
		sim_load_violation(s->load, "%s", why);
	else
		sim_player_fail(s->player, "%s", why);
}

static int
sim_server_ws_rx(struct sim_server *s, struct lws *wsi,
    struct sim_ws_sess *ws, const void *in, size_t len)
{
	/* Before the copying: the last fragment's arrival ends a latency. */
	int64_t t = sim_server_now_us(s);
	char *nm;

	if (lws_frame_is_binary(wsi)) {
		sim_server_fail(s, "a binary frame from the machine");
		return 0;
	}
	if (ws->len + len > SIM_MSG_MAX) {
		char why[64];

		snprintf(why, sizeof(why), "a message from the machine past "
		    "%d bytes", SIM_MSG_MAX);
		sim_server_fail(s, why);
		return -1;
	}
	if ((nm = realloc(ws->msg, ws->len + len + 1)) == NULL) {
		log_warn("realloc");
		return -1;
	}
	ws->msg = nm;
	memcpy(ws->msg + ws->len, in, len);
	ws->len += len;
	ws->msg[ws->len] = '\0';
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return 0;
	if (s->load != NULL) {
		if (ws->m != NULL) {
			sim_transcript_frame(s->tr, t / 1000, "rx",
			    ws->msg, ws->len);
			sim_load_rx(s->load, ws->m, ws->msg, ws->len, t);
		}
	} else
		sim_player_rx_us(s->player, ws->msg, ws->len, t);
	/* Keep small buffers: a fleet holds one per socket. */
	if (ws->len > 4096) {
		free(ws->msg);
		ws->msg = NULL;
	}
	ws->len = 0;
	return 0;
}

/* A socket of machine m is up. */
static void
sim_server_established(struct sim_server *s, struct lws *wsi,
    struct sim_ws_sess *ws)
{
	struct sim_conn *c;

	memset(ws, 0, sizeof(*ws));
	ws->m = lws_get_opaque_user_data(wsi);
	if (ws->m == NULL)
		return;
	ws->open = 1;
	s->nopen++;
	c = &s->conns[ws->m->idx];
	if (c->ws != NULL) {
		/* The machine gave up on the old socket first: close that
		 * one, the machine's own, and no other. */
		log_notice("a second WebSocket for S%s: the first is closed",
		    ws->m->serial);
		sim_server_close(c->ws);
	}
	c->ws = wsi;
	sim_server_record_ws(s, "open", 0);
	if (!s->stopping) {
		if (s->load != NULL)
			sim_load_connected(s->load, ws->m,
			    sim_server_now_us(s));
		else
			sim_player_connected(s->player,
			    sim_server_now(s));
	}
	if (c->txh != NULL)
		lws_callback_on_writable(wsi);
}

static void
sim_server_closed(struct sim_server *s, struct lws *wsi,
    struct sim_ws_sess *ws)
{
	struct sim_conn *c;

	free(ws->msg);
	ws->msg = NULL;
	if (ws->open) {
		ws->open = 0;
		s->nopen--;
	}
	sim_server_record_ws(s, "closed", 0);
	if (ws->m == NULL)
		return;
	c = &s->conns[ws->m->idx];
	if (wsi != c->ws)
		return;
	c->ws = NULL;
	if (s->load != NULL)
		sim_load_disconnected(s->load, ws->m, sim_server_now_us(s));
	else
		sim_player_disconnected(s->player, sim_server_now(s));
}

static int
sim_server_ws_cb(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
	struct sim_server *s = lws_context_user(lws_get_context(wsi));
	struct sim_ws_sess *ws = user;
	int r = 0;

	if (s == NULL || (s->player == NULL && s->load == NULL))
		return 0;
	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		r = sim_server_upgrade(s, wsi, 1);
		break;
	case LWS_CALLBACK_ESTABLISHED:
		sim_server_established(s, wsi, ws);
		break;
	case LWS_CALLBACK_RECEIVE:
		r = sim_server_ws_rx(s, wsi, ws, in, len);
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (ws->close_req) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY,
			    (unsigned char *)"bye", 3);
			return -1;
		}
		if (ws->m == NULL || wsi != s->conns[ws->m->idx].ws)
			break;
		if (s->load != NULL) {
			if (!ws->closing)
				sim_server_load_flush(s,
				    &s->conns[ws->m->idx]);
			break;
		}
		r = sim_server_ws_write(s, wsi, &s->conns[ws->m->idx]);
		if (r == 0 && s->conns[ws->m->idx].txh != NULL)
			lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		ws->closing = 1;
		r = len >= 2 ? ((const unsigned char *)in)[0] << 8 |
		    ((const unsigned char *)in)[1] : 0;
		sim_server_record_ws(s, "peer_close", r);
		if (s->player != NULL && ws->m != NULL &&
		    wsi == s->conns[ws->m->idx].ws)
			sim_player_peer_close(s->player, r);
		r = 0;
		break;
	case LWS_CALLBACK_CLOSED:
		sim_server_closed(s, wsi, ws);
		break;
	default:
		break;
	}
	sim_server_after(s);
	return r;
}

/* lws's own log lines, into ours. */
static void
sim_server_lws_log(int level, const char *line)
{
	int pri = level & LLL_ERR ? LOG_ERR : level & LLL_WARN ? LOG_WARNING :
	    level & LLL_NOTICE ? LOG_NOTICE : LOG_DEBUG;
	size_t n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	log_emit(pri, 0, "lws", "lws", "%.*s", (int)n, line);
}

static void	 sim_server_check_signal(struct sim_server *s);

static void
sim_server_on_signal(uv_signal_t *h, int sig)
{
	sim_server_signal = sig;
	sim_server_check_signal(h->data);
}

static void
sim_server_close_handles(struct sim_server *s)
{
	uv_close((uv_handle_t *)&s->uv_stop, NULL);
	uv_close((uv_handle_t *)&s->uv_load, NULL);
	uv_close((uv_handle_t *)&s->uv_load_check, NULL);
	uv_close((uv_handle_t *)&s->uv_progress, NULL);
	uv_close((uv_handle_t *)&s->uv_sig[0], NULL);
	uv_close((uv_handle_t *)&s->uv_sig[1], NULL);
}

static void
sim_server_stop_cb(uv_timer_t *t)
{
	struct sim_server *s = t->data;

	if (s->uv_open) {
		s->uv_open = 0;
		sim_server_close_handles(s);
	}
	/* The context goes, its sockets' callbacks run, then the loop
	 * drains and evloop_run() returns. */
	evloop_stop(s->ev);
}

/* The run is over: the loop is stopped from a timer of its own, never
 * from inside an lws callback (that would destroy the context under
 * it). */
static void
sim_server_done(struct sim_server *s)
{
	if (s->done)
		return;
	s->done = 1;
	if (s->uv_open)
		uv_timer_start(&s->uv_stop, sim_server_stop_cb, 0, 0);
}

/* The second listener: same protocols, another port, so another origin
 * (a storage host).  info is the main vhost's. */
static int
sim_server_start_far(struct sim_server *s,
    struct lws_context_creation_info *info, const char *host)
{
	int port;

	info->vhost_name = SIM_HTTP_FAR_VHOST;
	info->port = 0;
	if ((s->vh_far = lws_create_vhost(s->ctx, info)) == NULL ||
	    (port = lws_get_vhost_listen_port(s->vh_far)) <= 0) {
		log_warnx("cannot listen for the storage host");
		return -1;
	}
	snprintf(s->base_far, sizeof(s->base_far), strchr(host, ':') !=
	    NULL ? "%s://[%s]:%d" : "%s://%s:%d", s->p->tls_cert != NULL ?
	    "https" : "http", host, port);
	log_info("storage host on %s", s->base_far);
	return 0;
}

static int
sim_server_start(struct sim_server *s)
{
	const struct sim_server_params *p = s->p;
	struct lws_context_creation_info info;
	struct evloop_params ep;
	const char *host;

	/* The daemon's loop design: lws on libuv, descriptors up to the
	 * hard limit, a header pool sized for thousands of handshakes. */
	/* 64 KiB a read: an image upload in 4 reads, not 53.  Descriptors
	 * for what the fleet can hold (a socket, two transfers and an
	 * upload's file each, and room for more), not the hard limit: lws
	 * scans its table of that size at every accept. */
	memset(&ep, 0, sizeof(ep));
	ep.read_buf = 65536;
	ep.nofile_max = 4 * (long)sim_fleet_count(s->fleet) + 4096;
	if ((s->ev = evloop_new_params(s, &ep)) == NULL)
		return -1;
	s->ctx = evloop_lws(s->ev);
	lws_set_log_level(LLL_ERR | LLL_WARN | (p->verbose ? LLL_NOTICE : 0),
	    sim_server_lws_log);

	s->protocols[0].name = "http";
	s->protocols[0].callback = sim_server_http_cb;
	s->protocols[0].per_session_data_size = sim_http_session_size();
	s->protocols[1].name = "glowforge";
	s->protocols[1].callback = sim_server_ws_cb;
	s->protocols[1].per_session_data_size = sizeof(struct sim_ws_sess);
	/* Frames come in pieces past it (and are joined): keep a fleet's
	 * per-socket buffers small. */
	s->protocols[1].rx_buffer_size = sim_fleet_count(s->fleet) == 1 ?
	    16384 : 4096;

	memset(&info, 0, sizeof(info));
	info.vhost_name = "gf-cloud-sim";
	info.port = p->port;
	info.iface = p->listen;
	info.protocols = s->protocols;
	/* HTTP/1.1 only: the machine's libcurl would otherwise pick h2. */
	info.alpn = "http/1.1";
	/* No lws validity timer per socket: each one is a sorted-list
	 * insert, O(sockets), on every frame received.  The machines ping
	 * us; a dead socket shows as a failed write or a close. */
	info.retry_and_idle_policy = &sim_server_no_idle;
	if (strchr(p->listen, ':') == NULL)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	if (p->tls_cert != NULL) {
		/* lws reads this option again per vhost: without it the
		 * vhost would serve plain text. */
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = p->tls_cert;
		info.ssl_private_key_filepath = p->tls_key;
	}
	if ((s->vh = lws_create_vhost(s->ctx, &info)) == NULL) {
		log_warnx("cannot listen on %s port %d", p->listen, p->port);
		return -1;
	}
	s->port = lws_get_vhost_listen_port(s->vh);
	if (s->port <= 0) {
		log_warnx("no listening port");
		return -1;
	}

	/* Until the machine tells us the name it uses (its Host header). */
	host = p->listen;
	if (strcmp(host, "0.0.0.0") == 0)
		host = "127.0.0.1";
	else if (strcmp(host, "::") == 0)
		host = "::1";
	snprintf(s->base, sizeof(s->base), strchr(host, ':') != NULL ?
	    "%s://[%s]:%d" : "%s://%s:%d", p->tls_cert != NULL ? "https" :
	    "http", host, s->port);
	log_info("listening on %s", s->base);
	return sim_server_start_far(s, &info, host);
}

static void
sim_server_load_cb(uv_timer_t *t)
{
	struct sim_server *s = t->data;
	int64_t now, next;

	if (s->stopping)
		return;
	now = sim_server_now_us(s);
	next = sim_load_tick(s->load, now);
	s->load_next_us = next;
	if (next >= 0)	/* in whole ms, rounded up: never early */
		uv_timer_start(&s->uv_load, sim_server_load_cb, next > now ?
		    (uint64_t)(next - now + 999) / 1000 : 0, 0);
	sim_server_after(s);
}

/* After each pass's I/O: what fell due meanwhile goes now (uv_load_check). */
static void
sim_server_load_check_cb(uv_check_t *c)
{
	struct sim_server *s = c->data;

	if (!s->stopping && s->load_next_us >= 0 &&
	    sim_server_now_us(s) >= s->load_next_us)
		sim_server_load_cb(&s->uv_load);
}

static void
sim_server_progress_cb(uv_timer_t *t)
{
	struct sim_server *s = t->data;

	if (!s->stopping)
		sim_load_progress(s->load, sim_server_now_us(s), stderr);
}

/* await_file: the name is a plain one (the scenario's parser checks). */
static int
sim_server_op_file_exists(void *arg, const char *name)
{
	struct sim_server *s = arg;
	char path[4096];
	struct stat sb;

	if (s->p->pulse_dir == NULL || snprintf(path, sizeof(path), "%s/%s",
	    s->p->pulse_dir, name) >= (int)sizeof(path))
		return 0;
	return stat(path, &sb) == 0;
}

/* The scenario's player, on the fleet's only machine. */
static int
sim_server_new_player(struct sim_server *s)
{
	struct sim_player_ops ops;

	memset(&ops, 0, sizeof(ops));
	ops.arg = s;
	ops.send = sim_server_op_send;
	ops.drop = sim_server_op_drop;
	ops.knob = sim_server_op_knob;
	ops.pulse_url = sim_server_op_pulse_url;
	ops.upload_url = sim_server_op_upload_url;
	ops.uploads = sim_server_op_uploads;
	ops.signins = sim_server_op_signins;
	ops.file_exists = sim_server_op_file_exists;
	if ((s->player = sim_player_new(s->p->scenario, &ops, s->tr,
	    sim_fleet_machine(s->fleet, 0)->serial)) == NULL) {
		log_warnx("out of memory");
		return -1;
	}
	return 0;
}

static int
sim_server_new_load(struct sim_server *s)
{
	struct sim_load_ops ops;
	char err[256];

	memset(&ops, 0, sizeof(ops));
	ops.arg = s;
	ops.send = sim_server_load_send;
	ops.pulse_url = sim_server_op_pulse_url;
	ops.upload_url = sim_server_op_upload_url;
	ops.uploads = sim_server_op_uploads;
	ops.signins = sim_server_load_signins;
	ops.drop_all = sim_server_load_drop_all;
	if ((s->load = sim_load_new(s->p->load, s->fleet, s->tr, &ops,
	    sim_server_now_us(s), err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	return 0;
}

/* The secrets, the HTTP side, and the player or the load. */
static int
sim_server_setup(struct sim_server *s)
{
	const struct sim_server_params *p = s->p;
	struct sim_http_params hp;
	size_t i;

	if ((s->tr = sim_transcript_new(p->transcript, p->secrets)) ==
	    NULL)
		return -1;
	if (p->machine_memory != NULL &&
	    (s->memfp = fopen(p->machine_memory, "we")) == NULL) {
		log_warn("%s", p->machine_memory);
		return -1;
	}
	s->fleet = p->fleet;
	if ((s->conns = calloc(sim_fleet_count(s->fleet),
	    sizeof(*s->conns))) == NULL) {
		log_warn("calloc");
		return -1;
	}
	for (i = 0; i < sim_fleet_count(s->fleet); i++)
		if (sim_transcript_secret(s->tr,
		    sim_fleet_machine(s->fleet, i)->password) == -1)
			return -1;

	memset(&hp, 0, sizeof(hp));
	hp.fleet = s->fleet;
	hp.pulse_dir = p->pulse_dir;
	hp.upload_dir = p->upload_dir;
	hp.tls = p->tls_cert != NULL;
	hp.tr = s->tr;
	hp.now_ms = sim_server_now_cb;
	hp.violation = sim_server_violation;
	hp.metrics = sim_server_metrics;
	hp.arg = s;
	if ((s->http = sim_http_new(&hp)) == NULL)
		return -1;
	return p->load != NULL ? sim_server_new_load(s) :
	    sim_server_new_player(s);
}

/* Signals and the stop timer, on the loop. */
static int
sim_server_handles(struct sim_server *s)
{
	uv_loop_t *loop = evloop_uv(s->ev);

	signal(SIGPIPE, SIG_IGN);
	if (uv_timer_init(loop, &s->uv_stop) != 0 ||
	    uv_timer_init(loop, &s->uv_load) != 0 ||
	    uv_check_init(loop, &s->uv_load_check) != 0 ||
	    uv_timer_init(loop, &s->uv_progress) != 0)
		return -1;
	/* The check must not keep the loop alive on its own. */
	uv_unref((uv_handle_t *)&s->uv_load_check);
	s->uv_load_check.data = s;
	s->load_next_us = -1;
	uv_signal_init(loop, &s->uv_sig[0]);
	uv_signal_init(loop, &s->uv_sig[1]);
	s->uv_open = 1;
	s->uv_stop.data = s->uv_sig[0].data = s->uv_sig[1].data = s;
	s->uv_load.data = s->uv_progress.data = s;
	if (uv_signal_start(&s->uv_sig[0], sim_server_on_signal, SIGINT) !=
	    0 || uv_signal_start(&s->uv_sig[1], sim_server_on_signal,
	    SIGTERM) != 0)
		return -1;
	return 0;
}

/* The scenario's verdict and its files. */
static int
sim_server_verdict(struct sim_server *s)
{
	const struct sim_server_params *p = s->p;
	FILE *fp;
	int rc;

	rc = sim_player_result(s->player) == SIM_PASSED ? 0 : 1;
	sim_server_sample_memory(s, "end", s->nwritten);
	if (rc != 0)
		fprintf(stderr, "gf-cloud-sim: FAIL: %s\n",
		    sim_player_reason(s->player));
	if (p->summary != NULL) {
		if ((fp = fopen(p->summary, "we")) == NULL)
			log_warn("%s", p->summary);
		else {
			sim_player_summary(s->player, fp);
			fclose(fp);
		}
	}
	if (p->latency != NULL) {
		if ((fp = fopen(p->latency, "we")) == NULL)
			log_warn("%s", p->latency);
		else {
			if (sim_player_latencies(s->player, fp) == -1)
				log_warn("%s", p->latency);
			fclose(fp);
		}
	}
	return rc;
}

static void
sim_server_loop(struct sim_server *s)
{
	if (s->load != NULL) {
		uv_timer_start(&s->uv_load, sim_server_load_cb, 0, 0);
		uv_check_start(&s->uv_load_check, sim_server_load_check_cb);
		if (s->p->load->progress)
			uv_timer_start(&s->uv_progress,
			    sim_server_progress_cb, 1000, 1000);
	} else
		lws_sul_schedule(s->ctx, 0, &s->sul_global,
		    sim_server_sul_global,
		    (lws_usec_t)s->p->timeout_secs * LWS_US_PER_SEC);
	if (evloop_run(s->ev) == -1)
		log_warnx("the event loop left handles open");
	s->ctx = NULL;
}

int
sim_server_run(const struct sim_server_params *p)
{
	struct sim_server s;
	struct sim_txframe *f;
	size_t i;
	int rc = 2;

	memset(&s, 0, sizeof(s));
	s.p = p;
	clock_gettime(CLOCK_MONOTONIC, &s.t0);
	lws_set_log_level(LLL_ERR | LLL_WARN | (p->verbose ? LLL_NOTICE : 0),
	    sim_server_lws_log);
	if (sim_server_setup(&s) == -1 || sim_server_start(&s) == -1 ||
	    sim_server_handles(&s) == -1)
		goto done;
	if (p->print_port) {
		printf("%d\n", s.port);
		if (fflush(stdout) != 0) {
			log_warn("stdout");
			goto done;
		}
	}
	sim_server_loop(&s);
	if (s.load != NULL)
		rc = sim_load_finish(s.load, sim_server_now_us(&s));
	else
		rc = sim_server_verdict(&s);
done:
	if (s.ev != NULL) {
		if (s.uv_open) {
			/* A set-up error: nothing ran yet. */
			s.uv_open = 0;
			sim_server_close_handles(&s);
		}
		evloop_free(s.ev);
	}
	for (i = 0; s.conns != NULL && i < sim_fleet_count(s.fleet); i++)
		while ((f = s.conns[i].txh) != NULL) {
			s.conns[i].txh = f->next;
			free(f);
		}
	free(s.conns);
	sim_load_free(s.load);
	sim_player_free(s.player);
	sim_http_free(s.http);
	sim_transcript_free(s.tr);
	if (s.memfp != NULL)
		fclose(s.memfp);
	return rc;
}
