/*
 * sim_ws_probe: a minimal "machine" for testing gf-cloud-sim without the
 * daemon (tests/integration/sim-selftest.sh).  It opens the status WebSocket with a
 * ws_token the test got from the sim's sign-in, and answers every action:
 * "ready" with "<type>:completed", "cancelled" with "<type>:cancelled",
 * and prints each action it gets on stdout, one per line.
 * --mode makes it misbehave in one chosen way, to see the sim notice:
 *   dup-id	two frames with the same id
 *   no-newline	a frame without its trailing newline
 *   leak	a log frame quoting the ws token
 *   wrong-end	"<type>:failed" instead of ":completed"
 *   deaf	never reads a byte once connected (the sim's writes pile up)
 * It exits 0 when the sim closes the socket, 1 on error or after 30 s.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <libwebsockets.h>

#define PROBE_OUT_MAX	64	/* frames waiting to be sent */

struct probe {
	const char	*mode;
	const char	*token;
	char		*out[PROBE_OUT_MAX];
	int		 nout;
	long		 next_id;
	int		 done;
	int		 rc;
	struct timespec	 t0;
	char		 in[65536];
	size_t		 inlen;
};

static long
probe_timestamp(const struct probe *pr)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return 3800 + (long)(ts.tv_sec - pr->t0.tv_sec) * 100 +
	    (ts.tv_nsec - pr->t0.tv_nsec) / 10000000;
}

static void
probe_queue(struct probe *pr, struct lws *wsi, const char *type,
    double action_id, const char *event)
{
	char buf[512];
	long id = pr->next_id++;
	int n;

	if (strcmp(pr->mode, "dup-id") == 0 && id > 32)
		id = 32;
	if (strcmp(type, "log") == 0)
		n = snprintf(buf, sizeof(buf), "{\"id\":%ld,\"timestamp\":%ld,"
		    "\"type\":\"log\",\"version\":1,\"log\":\"%s\","
		    "\"level\":\"INFO\"}%s", id, probe_timestamp(pr), event,
		    strcmp(pr->mode, "no-newline") == 0 ? "" : "\n");
	else
		n = snprintf(buf, sizeof(buf), "{\"id\":%ld,\"timestamp\":%ld,"
		    "\"type\":\"event\",\"version\":1,\"action_id\":%.0f,"
		    "\"level\":\"INFO\",\"event\":\"%s\"}%s", id,
		    probe_timestamp(pr), action_id, event,
		    strcmp(pr->mode, "no-newline") == 0 ? "" : "\n");
	if (n < 0 || (size_t)n >= sizeof(buf) || pr->nout == PROBE_OUT_MAX)
		return;
	pr->out[pr->nout++] = strdup(buf);
	lws_callback_on_writable(wsi);
}

static void
probe_action(struct probe *pr, struct lws *wsi, const char *line, size_t len)
{
	const cJSON *id, *type, *status;
	char ev[128];
	cJSON *a;

	a = cJSON_ParseWithLength(line, len);
	id = cJSON_GetObjectItemCaseSensitive(a, "id");
	type = cJSON_GetObjectItemCaseSensitive(a, "action_type");
	status = cJSON_GetObjectItemCaseSensitive(a, "status");
	if (!cJSON_IsNumber(id) || !cJSON_IsString(type) ||
	    !cJSON_IsString(status)) {
		fprintf(stderr, "probe: ignoring %.*s\n", (int)len, line);
		cJSON_Delete(a);
		return;
	}
	if (strcmp(status->valuestring, "ready") == 0)
		snprintf(ev, sizeof(ev), "%s:%s", type->valuestring,
		    strcmp(pr->mode, "wrong-end") == 0 ? "failed" :
		    "completed");
	else if (strcmp(status->valuestring, "cancelled") == 0)
		snprintf(ev, sizeof(ev), "%s:cancelled", type->valuestring);
	else {
		cJSON_Delete(a);
		return;
	}
	if (strcmp(pr->mode, "leak") == 0)
		probe_queue(pr, wsi, "log", 0, pr->token);
	probe_queue(pr, wsi, "event", id->valuedouble, ev);
	cJSON_Delete(a);
}

static int
probe_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct probe *pr = lws_context_user(lws_get_context(wsi));
	unsigned char buf[LWS_PRE + 512];
	const char *p, *nl, *end;
	size_t n;
	int i;

	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		fprintf(stderr, "probe: connection error: %s\n",
		    in != NULL ? (const char *)in : "?");
		pr->rc = 1;
		pr->done = 1;
		break;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		fprintf(stderr, "probe: connected\n");
		if (strcmp(pr->mode, "deaf") == 0)
			lws_rx_flow_control(wsi, 0);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (pr->inlen + len >= sizeof(pr->in)) {
			pr->rc = 1;
			return -1;
		}
		memcpy(pr->in + pr->inlen, in, len);
		pr->inlen += len;
		if (!lws_is_final_fragment(wsi))
			break;
		/* The service may pack several actions in one message. */
		end = pr->in + pr->inlen;
		for (p = pr->in; p < end; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(end - p));
			if (nl == NULL)
				nl = end;
			if (nl == p)
				continue;
			/* The test reads the actions (their URLs) here. */
			printf("%.*s\n", (int)(nl - p), p);
			fflush(stdout);
			probe_action(pr, wsi, p, (size_t)(nl - p));
		}
		pr->inlen = 0;
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (pr->nout == 0)
			break;
		n = strlen(pr->out[0]);
		memcpy(buf + LWS_PRE, pr->out[0], n);
		if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n)
			return -1;
		free(pr->out[0]);
		for (i = 1; i < pr->nout; i++)
			pr->out[i - 1] = pr->out[i];
		pr->nout--;
		if (pr->nout > 0)
			lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		fprintf(stderr, "probe: closed by the sim\n");
		pr->done = 1;
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols probe_protocols[] = {
	{ "glowforge", probe_cb, 0, 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

int
main(int argc, char *argv[])
{
	struct lws_context_creation_info info;
	struct lws_client_connect_info ci;
	struct lws_context *ctx;
	struct probe pr;
	char url[512], path[256], host[300];
	const char *prot, *address, *upath, *ca = NULL;
	int port;

	if (argc < 4) {
		fprintf(stderr, "usage: sim_ws_probe URL TOKEN MODE [CA]\n"
		    "MODE: ok, dup-id, no-newline, leak, wrong-end\n");
		return 2;
	}
	memset(&pr, 0, sizeof(pr));
	pr.token = argv[2];
	pr.mode = argv[3];
	pr.next_id = 32;
	if (argc > 4)
		ca = argv[4];
	clock_gettime(CLOCK_MONOTONIC, &pr.t0);
	snprintf(url, sizeof(url), "%s", argv[1]);
	if (lws_parse_uri(url, &prot, &address, &port, &upath)) {
		fprintf(stderr, "probe: bad URL\n");
		return 2;
	}
	lws_set_log_level(LLL_ERR, NULL);

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = probe_protocols;
	info.user = &pr;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.client_ssl_ca_filepath = ca;
	if ((ctx = lws_create_context(&info)) == NULL)
		return 1;

	snprintf(path, sizeof(path), "/%s", pr.token);
	snprintf(host, sizeof(host), "%s:%d", address, port);
	memset(&ci, 0, sizeof(ci));
	ci.context = ctx;
	ci.address = address;
	ci.port = port;
	ci.path = path;
	ci.host = host;
	ci.origin = "status.glowforge.com";	/* lws adds "http://" */
	ci.protocol = "glowforge";
	ci.userdata = NULL;
	if (strcmp(prot, "wss") == 0)
		ci.ssl_connection = LCCSCF_USE_SSL;
	if (lws_client_connect_via_info(&ci) == NULL) {
		fprintf(stderr, "probe: cannot connect\n");
		lws_context_destroy(ctx);
		return 1;
	}
	while (!pr.done) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (ts.tv_sec - pr.t0.tv_sec > 30) {
			fprintf(stderr, "probe: timeout\n");
			pr.rc = 1;
			break;
		}
		if (lws_service(ctx, 0) < 0)
			break;
	}
	lws_context_destroy(ctx);
	while (pr.nout > 0)
		free(pr.out[--pr.nout]);
	return pr.rc;
}
