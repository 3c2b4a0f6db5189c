/*
 * evloop_probe: N machines on one evloop, over real loopback sockets.
 *
 *   evloop_probe serve [CERT KEY]
 *	A WebSocket server on 127.0.0.1 (its own evloop, its own process):
 *	prints its port, accepts any path, stops on SIGTERM or SIGINT and
 *	prints "served N" (sockets ever established) to stderr.  With a
 *	certificate and key, it serves wss.
 *   evloop_probe run SIM_URL WS_PORT N SERIAL_FIRST PASSWORD_FILE [CA]
 *	Signs N machines (serials SERIAL_FIRST .. SERIAL_FIRST+N-1, one
 *	password) in to gf-cloud-sim at SIM_URL through the curl multi,
 *	then opens each one's WebSocket (path /<its ws_token>, subprotocol
 *	"glowforge") to WS_PORT: the sim's own port, where each machine
 *	has its own socket, or a serve process.  Both on one uv loop.  Once
 *	all N are
 *	up it prints "up N" and stops the loop cleanly.  With a CA file,
 *	the sockets are wss and both trust only that CA (SIM_URL is then
 *	https).  SIM_URL "-": no sign-ins, the sockets alone (to measure
 *	lws on the loop past what the sim can sign in).
 *
 *	With EVLOOP_PROBE_ANSWER=1 in the environment, the machines stay
 *	up and answer each "ready" action with "<type>:completed" (a
 *	machine that does every action at once, for load runs of the sim)
 *	until the sim closes their sockets; then the probe stops.
 *
 * Exit: 0 all up and a clean teardown, 1 a failure, 2 usage.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <libwebsockets.h>

#include "evloop.h"
#include "log.h"

#define PROBE_MAX_MACHINES	20000
#define PROBE_DEADLINE_MS	120000	/* a wedged run fails, not hangs */
#define PROBE_TRANSFERS		64	/* sign-ins in flight at most */
#define PROBE_PROTOCOL		"glowforge"	/* what the sim wants */

struct probe;

static const lws_retry_bo_t	probe_no_idle;	/* all zero */

struct probe_machine {
	struct probe		*p;
	unsigned		 idx;
	char			 body[160];	/* sign-in JSON */
	char			*reply;
	size_t			 replylen;
	struct lws		*wsi;
	int			 up;
	int64_t			 frame_id;	/* the next frame's */
	int64_t			 pend[4];	/* actions to answer (ring) */
	char			 pend_type[4][32];
	unsigned		 npend, pend_head;
};

struct probe {
	struct evloop		*ev;
	struct lws_vhost	*vh;
	uv_timer_t		 deadline;
	uv_signal_t		 sig[2];
	const char		*sim_url;
	const char		*ca;		/* TLS when set (run) */
	const char		*cert, *key;	/* TLS when set (serve) */
	int			 ws_port;
	unsigned		 n, signed_in, up, failed, served;
	int			 answer;	/* EVLOOP_PROBE_ANSWER */
	unsigned		 closed;	/* by the sim, answering */
	unsigned long		 answered;
	struct probe_machine	*m;
	struct curl_slist	*hdr;		/* the sign-in's Content-Type */
	int			 handles;	/* deadline, signals open */
};

static void
probe_stop(struct probe *p)
{
	if (p->handles) {
		p->handles = 0;
		uv_close((uv_handle_t *)&p->deadline, NULL);
		uv_close((uv_handle_t *)&p->sig[0], NULL);
		uv_close((uv_handle_t *)&p->sig[1], NULL);
	}
	evloop_stop(p->ev);
}

/* VmRSS in KiB with every machine up (before teardown), or -1. */
static long
probe_rss_kib(void)
{
	char line[128];
	long kib = -1;
	FILE *fp;

	if ((fp = fopen("/proc/self/status", "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(fp);
	return kib;
}

static void
probe_check_end(struct probe *p)
{
	if (evloop_stopping(p->ev))
		return;
	if (p->answer && p->closed > 0 && p->closed == p->up) {
		fprintf(stderr, "answered %lu actions\n", p->answered);
		probe_stop(p);
	} else if (p->up == p->n && p->closed == 0) {
		fprintf(stderr, "all %u up: VmRSS %ld KiB\n", p->n,
		    probe_rss_kib());
		printf("up %u\n", p->up);
		fflush(stdout);
		if (!p->answer)
			probe_stop(p);
	} else if (p->failed > 0 && p->up + p->failed == p->n) {
		log_warnx("%u of %u machines failed", p->failed, p->n);
		probe_stop(p);
	}
}

static void
probe_fail(struct probe_machine *m, const char *why)
{
	log_warnx("machine %u: %s", m->idx, why);
	m->p->failed++;
	probe_check_end(m->p);
}

/* An action from the sim: a ready one is answered when writeable. */
static void
probe_action(struct probe_machine *m, struct lws *wsi, const char *in,
    size_t len)
{
	const cJSON *id, *type, *st;
	cJSON *j;
	unsigned k;

	if ((j = cJSON_ParseWithLength(in, len)) == NULL)
		return;
	id = cJSON_GetObjectItemCaseSensitive(j, "id");
	type = cJSON_GetObjectItemCaseSensitive(j, "action_type");
	st = cJSON_GetObjectItemCaseSensitive(j, "status");
	if (cJSON_IsNumber(id) && cJSON_IsString(type) && cJSON_IsString(st) &&
	    strcmp(st->valuestring, "ready") == 0 && m->npend < 4) {
		k = (m->pend_head + m->npend++) % 4;
		m->pend[k] = (int64_t)id->valuedouble;
		snprintf(m->pend_type[k], sizeof(m->pend_type[k]), "%s",
		    type->valuestring);
		lws_callback_on_writable(wsi);
	}
	cJSON_Delete(j);
}

static int
probe_answer(struct probe_machine *m, struct lws *wsi)
{
	unsigned char buf[LWS_PRE + 256];
	unsigned k;
	int n;

	if (m->npend == 0)
		return 0;
	k = m->pend_head;
	n = snprintf((char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE,
	    "{\"id\":%lld,\"timestamp\":3800,\"type\":\"event\","
	    "\"version\":1,\"action_id\":%lld,\"level\":\"INFO\","
	    "\"event\":\"%s:completed\"}\n", (long long)m->frame_id++,
	    (long long)m->pend[k], m->pend_type[k]);
	m->pend_head = (k + 1) % 4;
	m->npend--;
	if (lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) != n)
		return -1;
	m->p->answered++;
	if (m->npend > 0)
		lws_callback_on_writable(wsi);
	return 0;
}

static int
probe_client_cb(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
	struct probe_machine *m = lws_get_opaque_user_data(wsi);

	(void)user;
	if (m == NULL)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (m->p->answer)
			probe_action(m, wsi, in, len);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return probe_answer(m, wsi);
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		m->up = 1;
		m->p->up++;
		probe_check_end(m->p);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		m->wsi = NULL;
		probe_fail(m, in != NULL ? (const char *)in : "ws connect");
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		m->wsi = NULL;
		if (evloop_stopping(m->p->ev))
			break;
		if (m->p->answer && m->up) {
			/* The sim ended its run. */
			m->p->closed++;
			probe_check_end(m->p);
		} else
			probe_fail(m, "ws closed while serving");
		break;
	default:
		break;
	}
	return 0;
}

static int
probe_server_cb(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
	struct probe *p = lws_context_user(lws_get_context(wsi));

	(void)user; (void)in; (void)len;
	if (reason == LWS_CALLBACK_ESTABLISHED && p != NULL)
		p->served++;
	return 0;
}

static const struct lws_protocols probe_client_protocols[] = {
	{ PROBE_PROTOCOL, probe_client_cb, 0, 1024, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct lws_protocols probe_server_protocols[] = {
	{ PROBE_PROTOCOL, probe_server_cb, 0, 1024, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void
probe_ws_connect(struct probe_machine *m, const char *ws_token)
{
	struct lws_client_connect_info ci;
	char path[160];

	snprintf(path, sizeof(path), "/%s", ws_token);
	memset(&ci, 0, sizeof(ci));
	ci.context = evloop_lws(m->p->ev);
	ci.vhost = m->p->vh;
	ci.address = "127.0.0.1";
	ci.port = m->p->ws_port;
	ci.path = path;
	ci.host = "127.0.0.1";
	ci.origin = "127.0.0.1";
	ci.protocol = PROBE_PROTOCOL;
	ci.opaque_user_data = m;
	/* No lws validity timer per socket: in lws 4.1 each is a sorted-list
	 * insert, O(sockets), as the sim found. */
	ci.retry_and_idle_policy = &probe_no_idle;
	ci.pwsi = &m->wsi;
	if (m->p->ca != NULL)
		ci.ssl_connection = LCCSCF_USE_SSL;
	if (lws_client_connect_via_info(&ci) == NULL && m->wsi == NULL)
		probe_fail(m, "ws connect failed at once");
	explicit_bzero(path, sizeof(path));
}

static size_t
probe_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct probe_machine *m = arg;
	size_t n = size * nmemb;
	char *r;

	if (m->replylen + n > 4096 ||
	    (r = realloc(m->reply, m->replylen + n + 1)) == NULL)
		return 0;
	memcpy(r + m->replylen, data, n);
	m->replylen += n;
	r[m->replylen] = '\0';
	m->reply = r;
	return n;
}

static void
probe_signed_in(void *arg, CURL *easy, CURLcode rc)
{
	struct probe_machine *m = arg;
	const cJSON *tok;
	cJSON *j = NULL;
	long status = 0;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(easy);
	explicit_bzero(m->body, sizeof(m->body));
	if (rc != CURLE_OK || status != 200 || m->reply == NULL ||
	    (j = cJSON_Parse(m->reply)) == NULL ||
	    !cJSON_IsString(tok = cJSON_GetObjectItemCaseSensitive(j,
	    "ws_token")) || evloop_stopping(m->p->ev)) {
		if (!evloop_stopping(m->p->ev))
			probe_fail(m, rc != CURLE_OK ? curl_easy_strerror(rc) :
			    "sign-in refused or its reply is bad");
	} else {
		m->p->signed_in++;
		probe_ws_connect(m, tok->valuestring);
	}
	if (m->reply != NULL)
		explicit_bzero(m->reply, m->replylen);
	free(m->reply);
	m->reply = NULL;
	cJSON_Delete(j);
}

static int
probe_sign_in(struct probe_machine *m, const char *url,
    unsigned long long serial, const char *pw)
{
	CURL *e;

	snprintf(m->body, sizeof(m->body),
	    "{\"serial\":\"S%llu\",\"password\":\"%s\"}", serial, pw);
	if ((e = curl_easy_init()) == NULL)
		return -1;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, m->p->hdr);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, m->body);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, probe_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, m);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 60000L);
	if (m->p->ca != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, m->p->ca);
	if (evloop_http_start(m->p->ev, e, probe_signed_in, m) == -1) {
		curl_easy_cleanup(e);
		return -1;
	}
	return 0;
}

static void
probe_deadline_cb(uv_timer_t *t)
{
	struct probe *p = t->data;

	log_warnx("deadline: %u signed in, %u up, %u failed of %u",
	    p->signed_in, p->up, p->failed, p->n);
	p->failed = p->n;
	probe_stop(p);
}

static void
probe_signal_cb(uv_signal_t *s, int signum)
{
	struct probe *p = s->data;

	(void)signum;
	if (!evloop_stopping(p->ev))
		probe_stop(p);
}

/* The deadline and the signals, on the loop beside lws and curl. */
static int
probe_handles(struct probe *p)
{
	uv_loop_t *loop = evloop_uv(p->ev);
	int i, sigs[2] = { SIGTERM, SIGINT };

	uv_timer_init(loop, &p->deadline);
	p->handles = 1;
	p->deadline.data = p;
	/* Answering, the probe lasts as long as the sim's run. */
	uv_timer_start(&p->deadline, probe_deadline_cb,
	    getenv("EVLOOP_PROBE_ANSWER") != NULL ? 5 * PROBE_DEADLINE_MS :
	    PROBE_DEADLINE_MS, 0);
	for (i = 0; i < 2; i++) {
		uv_signal_init(loop, &p->sig[i]);
		p->sig[i].data = p;
		if (uv_signal_start(&p->sig[i], probe_signal_cb, sigs[i]) != 0)
			return -1;
	}
	return 0;
}

static struct lws_vhost *
probe_vhost(struct probe *p, int listen)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.vhost_name = listen ? "probe-serve" : "probe-client";
	info.port = listen ? 0 : CONTEXT_PORT_NO_LISTEN;
	info.iface = listen ? "127.0.0.1" : NULL;
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	if (p->cert != NULL || p->ca != NULL)
		/* lws reads it again per vhost, to give it an SSL_CTX. */
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.ssl_cert_filepath = p->cert;
	info.ssl_private_key_filepath = p->key;
	info.client_ssl_ca_filepath = p->ca;
	info.protocols = listen ? probe_server_protocols :
	    probe_client_protocols;
	return lws_create_vhost(evloop_lws(p->ev), &info);
}

static int
probe_serve(struct probe *p)
{
	if ((p->vh = probe_vhost(p, 1)) == NULL || probe_handles(p) == -1)
		return -1;
	uv_timer_stop(&p->deadline);	/* runs until a signal */
	printf("%d\n", lws_get_vhost_listen_port(p->vh));
	fflush(stdout);
	if (evloop_run(p->ev) == -1)
		return -1;
	fprintf(stderr, "served %u\n", p->served);
	return 0;
}

static int
probe_read_password(const char *path, char *buf, size_t len)
{
	FILE *fp;

	if ((fp = fopen(path, "re")) == NULL || fgets(buf, (int)len, fp) ==
	    NULL) {
		log_warn("%s", path);
		if (fp != NULL)
			fclose(fp);
		return -1;
	}
	fclose(fp);
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

static int
probe_run(struct probe *p, char **argv)
{
	char url[512], pw[256] = "";
	unsigned i;
	int nosim;

	p->sim_url = argv[0];
	p->ws_port = atoi(argv[1]);
	p->n = (unsigned)strtoul(argv[2], NULL, 10);
	p->ca = argv[5];	/* NULL (argv's end) without TLS */
	nosim = strcmp(p->sim_url, "-") == 0;
	if (p->n == 0 || p->n > PROBE_MAX_MACHINES || p->ws_port <= 0 ||
	    (!nosim && probe_read_password(argv[4], pw, sizeof(pw)) == -1))
		return -1;
	snprintf(url, sizeof(url), "%s/machines/sign_in", p->sim_url);
	if ((p->hdr = curl_slist_append(NULL,
	    "Content-Type: application/json")) == NULL ||
	    (p->m = calloc(p->n, sizeof(*p->m))) == NULL ||
	    (p->vh = probe_vhost(p, 0)) == NULL || probe_handles(p) == -1)
		return -1;
	p->answer = getenv("EVLOOP_PROBE_ANSWER") != NULL &&
	    strcmp(getenv("EVLOOP_PROBE_ANSWER"), "1") == 0;
	for (i = 0; i < p->n; i++) {
		p->m[i].p = p;
		p->m[i].idx = i;
		p->m[i].frame_id = 32;
		if (nosim)
			probe_ws_connect(&p->m[i], "no-sign-in");
		else if (probe_sign_in(&p->m[i], url,
		    strtoull(argv[3], NULL, 10) + i, pw) == -1)
			return -1;
	}
	explicit_bzero(pw, sizeof(pw));
	if (evloop_run(p->ev) == -1 || p->up != p->n)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct probe p;
	int serve, r;

	serve = (argc == 2 || argc == 4) && strcmp(argv[1], "serve") == 0;
	if (!serve && ((argc != 7 && argc != 8) ||
	    strcmp(argv[1], "run") != 0)) {
		fprintf(stderr, "usage: evloop_probe serve [CERT KEY]\n"
		    "       evloop_probe run SIM_URL WS_PORT N SERIAL_FIRST "
		    "PASSWORD_FILE [CA]\n");
		return 2;
	}
	log_init(LOG_TO_CONSOLE, LOG_INFO, NULL);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	memset(&p, 0, sizeof(p));
	if (serve && argc == 4) {
		p.cert = argv[2];
		p.key = argv[3];
	}
	if ((p.ev = evloop_new(&p, PROBE_TRANSFERS)) == NULL)
		return 1;
	r = serve ? probe_serve(&p) : probe_run(&p, argv + 2);
	if (!evloop_stopping(p.ev))
		probe_stop(&p);		/* a set-up error: nothing ran */
	evloop_free(p.ev);
	free(p.m);
	curl_slist_free_all(p.hdr);
	curl_global_cleanup();
	return r == 0 ? 0 : 1;
}
