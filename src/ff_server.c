/*
 * ff_server: see ff_server.h.
 *
 * Clients that write "~M601 S1\r\n" and their command as two writes, then
 * read once, want both replies in that read; on loopback the command
 * comes a few µs after the login, after we would have answered.  So the
 * reply to a login that arrives alone waits for the next bytes, at most
 * FF_LOGIN_HOLD_US, and both replies leave together.
 *
 * Bounds, so that no client can grow us: at most FF_CLIENTS_MAX command
 * connections (a new one past that closes the one quiet longest, so a
 * flood of idle connections cannot lock real clients out); per connection one line (ff_proto), FF_OUT_MAX bytes of
 * replies not yet taken, and one read held back while those are high.  A
 * client that stops reading is no longer read (flow control) and is
 * dropped when idle for FF_IDLE_SECS.  HTTP bodies are capped except an
 * upload's file, which is counted, never kept.
 *
 * HTTP gets the same rule: at most FF_HTTP_MAX connections, the quietest
 * closed for a newcomer; lws's own timeouts (5 s for the headers, 5 s
 * between body reads) end the slow ones.  Each connection carries one
 * request: its response says "connection: close" and the socket closes
 * after it, so a pipelined second request is never parsed (lws 4.1.6
 * loops for ever on one that follows a body).  Each port has its own
 * budget: past its cap and as many again still closing (one turn of the
 * loop accepts a whole burst), a newcomer is refused, so a burst on one port cannot take the
 * descriptors the others (or the Glowforge link) need.
 *
 * UDP is read by our own recvfrom() loop on a socket lws only watches
 * (a raw file to it): lws 4.1 took a 0-byte datagram for a close.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "config.h"
#include "ff_camera.h"
#include "ff_disco.h"
#include "ff_http.h"
#include "ff_model.h"
#include "ff_proto.h"
#include "ff_server.h"
#include "ff_state.h"
#include "log.h"
#include "evloop.h"
#include "metrics.h"
#include "mono.h"

#define FF_CLIENTS_MAX	64		/* command connections at once */
#define FF_OUT_MAX	(96 * 1024)	/* bytes of replies held per client */
#define FF_OUT_HIGH	(16 * 1024)	/* stop reading above this */
#define FF_HELD_MAX	(16 * 1024)	/* bytes of one read held back */
#define FF_WRITE_CHUNK	4096		/* bytes per writable callback */
#define FF_IDLE_SECS	300		/* a silent client is dropped */
#define FF_BODY_MAX	(64 * 1024)	/* bytes of a JSON request */
#define FF_UPLOAD_MAX	(1024ULL * 1024 * 1024)	/* bytes, one file */
#define FF_LOGIN_HOLD_US 200000		/* µs a lone login's reply waits */
#define FF_MCAST_GROUP	"225.0.0.9"
#define FF_HTTP_MAX	32		/* HTTP connections at once */
/* Evicted connections close on the loop's next turn, but one turn may
 * accept a whole burst: up to a cap's worth of them may be closing. */
#define FF_HTTP_SLOTS	(2 * FF_HTTP_MAX)
#define FF_UDP_BURST	64		/* datagrams read per wake-up */
#define FF_UDP_BUF	2048		/* bytes of a datagram looked at */
#define FF_UDP_RETRY_US	1000000		/* µs before a lost socket reopens */

struct ff_conn;
struct ff_server;

/* One HTTP connection, from accept to close. */
struct ff_http_slot {
	struct lws		*wsi;		/* NULL: free */
	int64_t			 seen_ms;	/* last heard from */
	int			 evicting;	/* closed for a newcomer */
};

/* One discovery socket. */
struct ff_udp {
	struct ff_server	*s;
	struct lws		*wsi;		/* NULL: not watched */
	int			 port, mcast;
	int64_t			 err_ms;	/* last error logged */
	lws_sorted_usec_list_t	 sul;		/* reopens it */
};

struct ff_server {
	struct ff_model		*model;
	struct evloop		*ev;
	int			 failed;	/* ff_server_new() undoes */
	char			 bind_ip[64];
	struct ff_udp		 udp[2];
	struct ff_http_slot	 http[FF_HTTP_SLOTS];
	int			 http_open, http_dying, http_evicted;
	struct lws_vhost	*vh_tcp, *vh_http, *vh_udp;
	struct ff_camera	*camera;	/* NULL: none */
	/* The name kept across restarts (ff_state); path NULL: not kept. */
	char			*state_path, *key_model, *key_serial;
	char			*key_name;
	char			 saved_name[FF_PRINTER_NAME_MAX + 1];
	int			 clients;	/* command connections open */
	int			 dying;		/* of those, closed for newcomers */
	int			 evicted;	/* since the last log line */
	/* Command connections, the one quiet longest first. */
	struct ff_conn		*lru_head, *lru_tail;
};

/* Per command connection; lws allocates and zeroes it. */
struct ff_conn {
	struct lws		*wsi;
	struct ff_proto		 proto;
	unsigned char		 out[LWS_PRE + FF_OUT_MAX];
	size_t			 out_off, out_len;	/* bytes in out */
	unsigned char		 held[FF_HELD_MAX];	/* read, not fed yet */
	size_t			 held_len;
	int			 overflow;	/* a reply did not fit */
	int			 counted;	/* in s->clients */
	int			 holding;	/* a login's reply waits */
	int			 evicting;	/* closed for a newcomer */
	struct ff_conn		*lru_prev, *lru_next;
};

/* Per HTTP request; lws allocates and zeroes it. */
struct ff_req {
	char			 path[64];
	char			*body;
	size_t			 body_len;
	int			 too_big;
	struct lws_spa		*spa;		/* /uploadGcode only */
	char			 file[FF_NAME_MAX + 1];
	uint64_t		 file_size;	/* bytes received */
	int			 file_seen, print_now, upload_bad;
	int			 name_long;	/* lws cuts names at 255 */
	int			 sent;		/* response written: close */
	char			*resp;		/* LWS_PRE headroom, then JSON */
	size_t			 resp_len;
	const char		*ctype;		/* NULL: application/json */
	int			 status;
};

/* The printer ff_server_view() shows: set before the loop runs, cleared
 * after it stopped (ff_server_free() comes after loop_free()). */
static struct ff_server *ff_server_shown;

static struct ff_server *
ff_server_of(struct lws *wsi)
{
	struct lws_vhost *vh = lws_get_vhost(wsi);

	/* Some callbacks (GET_THREAD_ID) come without a vhost. */
	return vh != NULL ? lws_get_vhost_user(vh) : NULL;
}

/* ---- the name, kept across restarts ---- */

static void
ff_state_key_of(const struct ff_server *s, struct ff_state_key *k)
{
	k->model = s->key_model;
	k->serial = s->key_serial;
	k->name = s->key_name;
}

/* Takes the name a previous run kept, if it is this printer's. */
static void
ff_server_restore(struct ff_server *s)
{
	struct ff_state_key k;
	char name[FF_PRINTER_NAME_MAX + 1];

	snprintf(s->saved_name, sizeof(s->saved_name), "%s",
	    ff_model_name(s->model));
	if (s->state_path == NULL)
		return;
	ff_state_key_of(s, &k);
	if (ff_state_load(s->state_path, &k, name, sizeof(name)) != 0)
		return;
	if (ff_model_set_name(s->model, name) == -1) {
		log_warnx("flashforge: %s: not a valid name; ignored",
		    s->state_path);
		return;
	}
	snprintf(s->saved_name, sizeof(s->saved_name), "%s", name);
	log_info("flashforge: name \"%s\" kept from %s", name,
	    s->state_path);
}

/* After a command: a new name (M610, reName_cmd) is written out once.
 * A failure is logged and the name still holds for this run. */
static void
ff_server_persist(struct ff_server *s)
{
	struct ff_state_key k;
	const char *name = ff_model_name(s->model);

	if (s->state_path == NULL || strcmp(name, s->saved_name) == 0)
		return;
	snprintf(s->saved_name, sizeof(s->saved_name), "%s", name);
	ff_state_key_of(s, &k);
	if (ff_state_save(s->state_path, &k, name) == 0)
		log_info("flashforge: renamed \"%s\", kept in %s", name,
		    s->state_path);
}

static void
ff_server_strings_free(struct ff_server *s)
{
	free(s->state_path);
	free(s->key_model);
	free(s->key_serial);
	free(s->key_name);
}

/* ---- TCP 8899: the command port ---- */

static void
ff_lru_unlink(struct ff_server *s, struct ff_conn *c)
{
	if (c->lru_prev != NULL)
		c->lru_prev->lru_next = c->lru_next;
	else if (s->lru_head == c)
		s->lru_head = c->lru_next;
	if (c->lru_next != NULL)
		c->lru_next->lru_prev = c->lru_prev;
	else if (s->lru_tail == c)
		s->lru_tail = c->lru_prev;
	c->lru_prev = c->lru_next = NULL;
}

/* c was just heard from: it goes last in line for eviction. */
static void
ff_lru_touch(struct ff_server *s, struct ff_conn *c)
{
	ff_lru_unlink(s, c);
	c->lru_prev = s->lru_tail;
	if (s->lru_tail != NULL)
		s->lru_tail->lru_next = c;
	else
		s->lru_head = c;
	s->lru_tail = c;
}

/* At the cap: the connection quiet longest makes room. */
static void
ff_lru_evict(struct ff_server *s)
{
	struct ff_conn *old;

	for (old = s->lru_head; old != NULL && old->evicting;
	    old = old->lru_next)
		;
	if (old == NULL)
		return;
	old->evicting = 1;
	s->dying++;
	/* One line per burst, not one per connection. */
	if (s->evicted++ == 0)
		log_warnx("flashforge: %d clients connected; closing the "
		    "quietest for each newcomer", FF_CLIENTS_MAX);
	lws_set_timeout(old->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void
ff_conn_emit(void *arg, const void *buf, size_t len)
{
	struct ff_conn *c = arg;
	unsigned char *base = c->out + LWS_PRE;

	if (c->overflow)
		return;
	if (c->out_off + c->out_len + len > FF_OUT_MAX) {
		memmove(base, base + c->out_off, c->out_len);
		c->out_off = 0;
	}
	if (c->out_len + len > FF_OUT_MAX) {
		c->overflow = 1;
		return;
	}
	memcpy(base + c->out_off + c->out_len, buf, len);
	c->out_len += len;
}

/*
 * Feeds one command line at a time, so that a client sending many
 * commands without reading the replies is stopped at FF_OUT_HIGH: the
 * rest of the read is held, and reading resumes once it has been fed.
 */
static int
ff_conn_feed(struct ff_server *s, struct ff_conn *c, const unsigned char *in,
    size_t len)
{
	const unsigned char *nl;
	size_t n;

	while (len > 0) {
		if (c->out_len >= FF_OUT_HIGH) {
			if (len > sizeof(c->held) - c->held_len) {
				log_warnx("flashforge: client sends without "
				    "reading; dropped");
				return -1;
			}
			memmove(c->held + c->held_len, in, len);
			c->held_len += len;
			lws_rx_flow_control(c->wsi, 0);
			break;
		}
		nl = memchr(in, '\n', len);
		n = nl != NULL ? (size_t)(nl - in) + 1 : len;
		if (ff_proto_feed(&c->proto, s->model, in, n, mono_now_ms(),
		    ff_conn_emit, c) == -1)
			return -1;
		if (c->overflow) {
			log_warnx("flashforge: reply over %d bytes queued for a "
			    "client; dropped", FF_OUT_MAX);
			return -1;
		}
		in += n;
		len -= n;
	}
	ff_server_persist(s);
	if (c->out_len > 0 && !c->holding)
		lws_callback_on_writable(c->wsi);
	return 0;
}

/* 1 if the read is one login line and nothing else: "~M601 S1\r\n". */
static int
ff_conn_lone_login(const unsigned char *in, size_t len)
{
	const unsigned char *nl = memchr(in, '\n', len);

	if (nl == NULL || (size_t)(nl - in) + 1 != len)
		return 0;
	if (len > 0 && in[0] == '~') {
		in++;
		len--;
	}
	return len >= 4 && memcmp(in, "M601", 4) == 0;
}

static int
ff_conn_write(struct ff_server *s, struct ff_conn *c)
{
	unsigned char held[FF_HELD_MAX];
	size_t n, hl;

	if (c->out_len > 0) {
		n = c->out_len < FF_WRITE_CHUNK ? c->out_len : FF_WRITE_CHUNK;
		/* lws_write() needs LWS_PRE bytes before what it sends. */
		if (lws_write(c->wsi, c->out + LWS_PRE + c->out_off, n,
		    LWS_WRITE_RAW) < (int)n)
			return -1;
		c->out_off += n;
		c->out_len -= n;
		if (c->out_len == 0)
			c->out_off = 0;
	}
	if (c->held_len > 0 && c->out_len < FF_OUT_HIGH) {
		hl = c->held_len;
		memcpy(held, c->held, hl);
		c->held_len = 0;
		if (ff_conn_feed(s, c, held, hl) == -1)
			return -1;
		if (c->held_len == 0)
			lws_rx_flow_control(c->wsi, 1);
	}
	if (c->out_len > 0)
		lws_callback_on_writable(c->wsi);
	return 0;
}

static int
ff_tcp_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
	struct ff_server *s = ff_server_of(wsi);
	struct ff_conn *c = user;

	if (s == NULL)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		/* Too many still closing: this port's budget is spent. */
		if (s->dying >= FF_CLIENTS_MAX)
			return -1;
		if (s->clients - s->dying >= FF_CLIENTS_MAX)
			ff_lru_evict(s);
		else if (s->evicted > 0 && s->clients < FF_CLIENTS_MAX / 2) {
			log_info("flashforge: %d idle connections were closed "
			    "for newcomers", s->evicted);
			s->evicted = 0;
		}
		s->clients++;
		metrics_inc(METRICS_FF_CONNECTIONS);
		metrics_ff_clients(1);
		c->counted = 1;
		c->wsi = wsi;
		ff_lru_touch(s, c);
		ff_proto_init(&c->proto);
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, FF_IDLE_SECS);
		break;
	case LWS_CALLBACK_RAW_RX:
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, FF_IDLE_SECS);
		ff_lru_touch(s, c);
		if (c->holding) {
			c->holding = 0;
			lws_set_timer_usecs(wsi, LWS_SET_TIMER_USEC_CANCEL);
		} else if (c->out_len == 0 && ff_conn_lone_login(in, len)) {
			c->holding = 1;
			lws_set_timer_usecs(wsi, FF_LOGIN_HOLD_US);
		}
		if (ff_conn_feed(s, c, in, len) == -1)
			return -1;
		break;
	case LWS_CALLBACK_TIMER:
		/* Nothing followed the login: its reply goes alone. */
		c->holding = 0;
		if (c->out_len > 0)
			lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (ff_conn_write(s, c) == -1)
			return -1;
		break;
	case LWS_CALLBACK_RAW_CLOSE:
		if (c != NULL && c->counted) {
			c->counted = 0;
			ff_proto_close(&c->proto, s->model);
			s->clients--;
			metrics_ff_clients(-1);
			if (c->evicting)
				s->dying--;
			ff_lru_unlink(s, c);
		}
		break;
	default:
		break;
	}
	return 0;
}

/* ---- UDP discovery ---- */

static int ff_udp_open(struct ff_udp *u);

/* Answers what is queued on u's socket, FF_UDP_BURST at most a wake-up
 * (poll says when more is left): every datagram, empty ones too. */
static void
ff_udp_read(struct ff_udp *u, int fd)
{
	unsigned char in[FF_UDP_BUF], reply[FF_DISCO_MODERN_LEN];
	struct sockaddr_storage sa;
	const uint16_t ours[2] = { (uint16_t)u->s->udp[0].port,
	    (uint16_t)u->s->udp[1].port };
	socklen_t salen;
	ssize_t n;
	size_t rlen;
	int i;

	for (i = 0; i < FF_UDP_BURST; i++) {
		salen = sizeof(sa);
		n = recvfrom(fd, in, sizeof(in), MSG_DONTWAIT,
		    (struct sockaddr *)&sa, &salen);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* One line a second at most; the socket stays. */
			if (mono_now_ms() - u->err_ms >= 1000) {
				u->err_ms = mono_now_ms();
				log_warn("flashforge: UDP port %d", u->port);
			}
			return;
		}
		/* A long datagram is cut to FF_UDP_BUF and answered all
		 * the same.  Not one from a printer: a reply. */
		if (sa.ss_family == AF_INET && ff_disco_from_printer(ntohs(
		    ((struct sockaddr_in *)&sa)->sin_port), ours, 2))
			continue;
		/* The reply's status byte says what the model is doing. */
		ff_model_advance(u->s->model, mono_now_ms());
		if ((rlen = ff_disco_reply(u->s->model, in, (size_t)n, reply,
		    sizeof(reply))) == 0)
			continue;
		/* Datagrams: a reply that cannot leave now is simply lost,
		 * as a probe may be; the client probes again. */
		if (sendto(fd, reply, rlen, MSG_DONTWAIT,
		    (struct sockaddr *)&sa, salen) == -1)
			log_debug("flashforge: discovery reply: %s",
			    strerror(errno));
	}
}

static void
ff_udp_retry(lws_sorted_usec_list_t *sul)
{
	struct ff_udp *u = lws_container_of(sul, struct ff_udp, sul);

	if (ff_udp_open(u) == 0)
		log_info("flashforge: UDP port %d watched again", u->port);
	else
		lws_sul_schedule(evloop_lws(u->s->ev), 0, &u->sul,
		    ff_udp_retry, FF_UDP_RETRY_US);
}

static int
ff_udp_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
	struct ff_udp *u = lws_get_opaque_user_data(wsi);

	(void)user;
	(void)in;
	(void)len;
	if (u == NULL)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		ff_udp_read(u, lws_get_socket_fd(wsi));
		break;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		u->wsi = NULL;
		/* Not at shutdown: lws gave it up (a hangup); open anew. */
		if (!u->s->failed && !evloop_stopping(u->s->ev)) {
			log_warnx("flashforge: UDP port %d was closed; "
			    "reopening", u->port);
			lws_sul_schedule(evloop_lws(u->s->ev), 0, &u->sul,
			    ff_udp_retry, FF_UDP_RETRY_US);
		}
		break;
	default:
		break;
	}
	return 0;
}

/* A UDP socket of ours, bound and watched by lws; -1 after logging. */
static int
ff_udp_open(struct ff_udp *u)
{
	lws_adopt_desc_t ad;
	struct sockaddr_in sa;
	struct ip_mreq mr;
	const char *bind_ip = u->s->bind_ip;
	int sock, one = 1, any, port = u->port;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, bind_ip, &sa.sin_addr) != 1)
		return -1;	/* config_check() saw to it */
	any = sa.sin_addr.s_addr == htonl(INADDR_ANY);
	if ((sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1) {
		log_warn("flashforge: UDP socket");
		return -1;
	}
	/* Several emulators (or a real client) may share a probe port. */
	setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(sock, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		log_warn("flashforge: UDP %s:%d", bind_ip, port);
		close(sock);
		return -1;
	}
	/* A socket bound to one address never sees group traffic; the group
	 * is joined only when listening on every interface. */
	if (u->mcast && any) {
		memset(&mr, 0, sizeof(mr));
		inet_pton(AF_INET, FF_MCAST_GROUP, &mr.imr_multiaddr);
		mr.imr_interface.s_addr = htonl(INADDR_ANY);
		if (setsockopt(sock, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr,
		    sizeof(mr)) == -1)
			log_warn("flashforge: joining %s", FF_MCAST_GROUP);
	} else if (u->mcast)
		log_info("flashforge: bind is %s: probes to %s:%d are not "
		    "seen (bind 0.0.0.0 for them)", bind_ip, FF_MCAST_GROUP,
		    port);
	/* A raw file to lws: it only says when to read. */
	memset(&ad, 0, sizeof(ad));
	ad.vh = u->s->vh_udp;
	ad.type = LWS_ADOPT_RAW_FILE_DESC;
	ad.fd.filefd = sock;
	ad.vh_prot_name = "ff-disco";
	ad.opaque = u;
	if ((u->wsi = lws_adopt_descriptor_vhost_via_info(&ad)) == NULL) {
		close(sock);
		log_warnx("flashforge: cannot watch UDP port %d", port);
		return -1;
	}
	return 0;
}

/* ---- HTTP 8898: the 5M-era API ---- */

static struct ff_http_slot *
ff_http_slot(struct ff_server *s, const struct lws *wsi)
{
	size_t i;

	for (i = 0; i < FF_HTTP_SLOTS; i++)
		if (s->http[i].wsi == wsi)
			return &s->http[i];
	return NULL;
}

/* A connection was accepted: 0 to keep it, -1 to refuse it. */
static int
ff_http_accept(struct ff_server *s, struct lws *wsi)
{
	struct ff_http_slot *q, *old = NULL;
	size_t i;

	/* Again for one socket: a CONNECT turned it raw; no tunnels. */
	if (ff_http_slot(s, wsi) != NULL)
		return -1;
	if (s->http_open - s->http_dying >= FF_HTTP_MAX) {
		for (i = 0; i < FF_HTTP_SLOTS; i++) {
			q = &s->http[i];
			if (q->wsi != NULL && !q->evicting && (old == NULL ||
			    q->seen_ms < old->seen_ms))
				old = q;
		}
		if (old != NULL) {
			old->evicting = 1;
			s->http_dying++;
			lws_set_timeout(old->wsi, PENDING_TIMEOUT_USER_OK,
			    LWS_TO_KILL_ASYNC);
		}
		/* One line per burst, not one per connection. */
		if (s->http_evicted++ == 0)
			log_warnx("flashforge: %d HTTP clients connected; "
			    "closing the quietest for each newcomer",
			    FF_HTTP_MAX);
	} else if (s->http_evicted > 0 && s->http_open < FF_HTTP_MAX / 2) {
		log_info("flashforge: %d HTTP connections were closed or "
		    "refused for newcomers", s->http_evicted);
		s->http_evicted = 0;
	}
	/* Every slot taken: too many still closing; refuse this one. */
	if ((q = ff_http_slot(s, NULL)) == NULL)
		return -1;
	q->wsi = wsi;
	q->seen_ms = mono_now_ms();
	q->evicting = 0;
	s->http_open++;
	/* Marks it ours for WSI_DESTROY, which also comes for the listening
	 * socket, maybe after a failed ff_server_new() freed s. */
	lws_set_opaque_user_data(wsi, s);
	return 0;
}

static void
ff_http_gone(struct lws *wsi)
{
	struct ff_server *s = lws_get_opaque_user_data(wsi);
	struct ff_http_slot *q;

	if (s == NULL || (q = ff_http_slot(s, wsi)) == NULL)
		return;
	if (q->evicting)
		s->http_dying--;
	s->http_open--;
	memset(q, 0, sizeof(*q));
}

static void
ff_http_touch(struct ff_server *s, const struct lws *wsi)
{
	struct ff_http_slot *q;

	if ((q = ff_http_slot(s, wsi)) != NULL)
		q->seen_ms = mono_now_ms();
}

static void
ff_req_clear(struct ff_req *r)
{
	if (r->spa != NULL) {
		lws_spa_destroy(r->spa);
		r->spa = NULL;
	}
	free(r->body);
	free(r->resp);
	r->body = r->resp = NULL;
}

/* Copies a request header by name (any case), "" when absent. */
static void
ff_req_header(struct lws *wsi, const char *name, char *buf, size_t len)
{
	char low[64];
	size_t i;

	buf[0] = '\0';
	if (lws_hdr_custom_copy(wsi, buf, (int)len, name,
	    (int)strlen(name)) > 0)
		return;
	/* lws keeps custom header names as the client wrote them. */
	for (i = 0; name[i] != '\0' && i < sizeof(low) - 1; i++)
		low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ?
		    name[i] + 32 : name[i]);
	low[i] = '\0';
	if (lws_hdr_custom_copy(wsi, buf, (int)len, low, (int)i) <= 0)
		buf[0] = '\0';
}

/* Sets a response of len bytes of ctype (NULL: out of memory). */
static void
ff_req_respond_bytes(struct ff_req *r, int status, const char *ctype,
    const void *buf, size_t len)
{
	free(r->resp);
	r->resp_len = 0;
	r->status = status;
	r->ctype = ctype;
	if ((r->resp = malloc(LWS_PRE + len)) == NULL)
		return;
	memcpy(r->resp + LWS_PRE, buf, len);
	r->resp_len = len;
}

/* Sets the response from a JSON string (NULL: out of memory). */
static void
ff_req_respond(struct ff_req *r, int status, const char *json)
{
	size_t n;

	free(r->resp);
	r->resp = NULL;
	r->status = 500;
	if (json == NULL)
		json = "{\"code\":500,\"message\":\"out of memory\"}";
	else
		r->status = status;
	n = strlen(json);
	if ((r->resp = malloc(LWS_PRE + n)) == NULL) {
		r->resp_len = 0;
		return;
	}
	memcpy(r->resp + LWS_PRE, json, n);
	r->resp_len = n;
}

static int
ff_upload_cb(void *data, const char *name, const char *filename, char *buf,
    int len, enum lws_spa_fileupload_states state)
{
	struct ff_req *r = data;
	const char *base;

	(void)name;
	(void)buf;	/* counted, not kept: the emulator prints nothing */
	switch (state) {
	case LWS_UFS_OPEN:
		/* A path from the client is never a path here. */
		base = strrchr(filename, '/');
		base = base != NULL ? base + 1 : filename;
		/* lws keeps 255 bytes of a name: a full one was cut. */
		if (strlen(filename) >= FF_NAME_MAX) {
			r->name_long = 1;
			r->upload_bad = 1;
			break;
		}
		if (r->file_seen || *base == '\0' ||
		    strlen(base) >= sizeof(r->file)) {
			r->upload_bad = 1;
			break;
		}
		snprintf(r->file, sizeof(r->file), "%s", base);
		r->file_seen = 1;
		break;
	case LWS_UFS_CONTENT:
	case LWS_UFS_FINAL_CONTENT:
		if (len > 0)
			r->file_size += (uint64_t)len;
		if (r->file_size > FF_UPLOAD_MAX)
			return -1;
		break;
	case LWS_UFS_CLOSE:
		break;
	}
	return 0;
}

/* All of the request is in: work out the answer. */
static void
ff_req_complete(struct ff_server *s, struct lws *wsi, struct ff_req *r)
{
	char serial[96], check[96], size[32], now[16], *json = NULL;
	int status = 200;

	if (r->too_big) {
		ff_req_respond(r, 413, "{\"code\":413,"
		    "\"message\":\"request body too large\"}");
		return;
	}
	if (strcmp(r->path, FF_HTTP_THUM_PATH) == 0 && lws_hdr_total_length(
	    wsi, WSI_TOKEN_GET_URI) > 0) {
		/* An image, not JSON; no pair asked (a URL to fetch). */
		const uint8_t *png;
		size_t len;

		if (ff_http_get_thum(s->model, mono_now_ms(), &png, &len) == 0)
			ff_req_respond_bytes(r, 200, "image/png", png, len);
		else
			ff_req_respond(r, 404, "{\"code\":404,"
			    "\"message\":\"no job\"}");
		return;
	}
	if (strcmp(r->path, "/uploadGcode") != 0) {
		if (ff_http_handle(s->model, r->path, r->body != NULL ? r->body :
		    "", r->body_len, mono_now_ms(), &json, &status) == -1)
			json = NULL;
		/* streamCtrl_cmd: the port closes (or opens) before the
		 * answer leaves. */
		ff_camera_sync(s->camera);
		ff_server_persist(s);
		ff_req_respond(r, status, json);
		free(json);
		return;
	}

	/* The upload's credentials come as headers, not in the body. */
	ff_req_header(wsi, "serialNumber:", serial, sizeof(serial));
	ff_req_header(wsi, "checkCode:", check, sizeof(check));
	ff_req_header(wsi, "fileSize:", size, sizeof(size));
	ff_req_header(wsi, "printNow:", now, sizeof(now));
	if (!ff_http_auth(s->model, serial, check)) {
		ff_req_respond(r, 200, "{\"code\":1001,"
		    "\"message\":\"serialNumber or checkCode is wrong\"}");
		return;
	}
	if (r->name_long) {
		log_warnx("flashforge: upload refused: file name of %d bytes "
		    "or more", FF_NAME_MAX);
		ff_req_respond(r, 400, "{\"code\":1,"
		    "\"message\":\"file name too long\"}");
		return;
	}
	if (r->upload_bad || !r->file_seen) {
		ff_req_respond(r, 400, "{\"code\":1,"
		    "\"message\":\"no gcode file in the request\"}");
		return;
	}
	if (size[0] != '\0' && strtoull(size, NULL, 10) != r->file_size) {
		ff_req_respond(r, 400, "{\"code\":1,"
		    "\"message\":\"fileSize does not match the file\"}");
		return;
	}
	if (ff_model_file_add(s->model, r->file, r->file_size) == -1) {
		ff_req_respond(r, 200, "{\"code\":1,"
		    "\"message\":\"file list is full\"}");
		return;
	}
	log_info("flashforge: received %s (%llu bytes)", r->file,
	    (unsigned long long)r->file_size);
	if (strcmp(now, "true") == 0 || strcmp(now, "1") == 0) {
		if (ff_model_print_file(s->model, r->file, mono_now_ms()) ==
		    -1) {
			ff_req_respond(r, 200, "{\"code\":2,"
			    "\"message\":\"printer is busy\"}");
			return;
		}
	}
	ff_req_respond(r, 200, "{\"code\":0,\"message\":\"Success\"}");
}

static int
ff_req_send(struct lws *wsi, struct ff_req *r)
{
	unsigned char hdr[LWS_PRE + 512], *p, *end;

	p = hdr + LWS_PRE;
	end = hdr + sizeof(hdr) - 1;
	if (r->resp == NULL)
		return -1;	/* out of memory: drop the connection */
	/* One request per connection (see the top of the file). */
	if (lws_add_http_common_headers(wsi, (unsigned int)r->status,
	    r->ctype != NULL ? r->ctype : "application/json",
	    (lws_filepos_t)r->resp_len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
	    (const unsigned char *)"close", 5, &p, end) ||
	    lws_finalize_write_http_header(wsi, hdr + LWS_PRE, &p, end))
		return -1;
	if (lws_write(wsi, (unsigned char *)r->resp + LWS_PRE, r->resp_len,
	    LWS_WRITE_HTTP_FINAL) < (int)r->resp_len)
		return -1;
	ff_req_clear(r);
	/* lws sends what it holds before the next writable callback,
	 * which then closes. */
	r->sent = 1;
	lws_callback_on_writable(wsi);
	return 0;
}

/* The answer is known: send it.  (Not lws_rx_flow_control(): in lws
 * 4.1.6 it keeps the writable callback from coming.)  What follows in
 * the read is ignored, then closed with the connection. */
static void
ff_req_done(struct lws *wsi)
{
	lws_callback_on_writable(wsi);
}

/* A POST whose body we cannot size: lws 4.1 reads no chunked body. */
static int
ff_req_unsized(struct lws *wsi)
{
	return lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) >
	    0 || lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0;
}

static int
ff_http_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
	struct ff_server *s = ff_server_of(wsi);
	struct ff_req *r = user;
	lws_spa_create_info_t si;
	char *nb;

	if (s == NULL)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	switch (reason) {
	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
		return ff_http_accept(s, wsi);
	case LWS_CALLBACK_WSI_DESTROY:
		ff_http_gone(wsi);
		return 0;
	case LWS_CALLBACK_RAW_ADOPT:
		return -1;	/* a CONNECT turned it raw; no tunnels */
	case LWS_CALLBACK_HTTP:
		ff_http_touch(s, wsi);
		if (r->status != 0)
			return 0;	/* answered already: closing */
		metrics_inc(METRICS_FF_HTTP_REQUESTS);
		ff_req_clear(r);
		memset(r, 0, sizeof(*r));
		snprintf(r->path, sizeof(r->path), "%s", (const char *)in);
		if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) <= 0) {
			/* GET: no body is read; answer now. */
			ff_req_complete(s, wsi, r);
			ff_req_done(wsi);
			return 0;
		}
		if (ff_req_unsized(wsi)) {
			ff_req_respond(r, 411, "{\"code\":411,"
			    "\"message\":\"Content-Length required\"}");
			ff_req_done(wsi);
			return 0;
		}
		if (strcmp(r->path, "/uploadGcode") == 0) {
			memset(&si, 0, sizeof(si));
			si.opt_cb = ff_upload_cb;
			si.opt_data = r;
			si.max_storage = 1024;
			if ((r->spa = lws_spa_create_via_info(wsi, &si)) ==
			    NULL)
				r->upload_bad = 1;
		}
		return 0;
	case LWS_CALLBACK_HTTP_BODY:
		ff_http_touch(s, wsi);
		if (r->status != 0)
			return 0;	/* answered already */
		if (r->spa != NULL) {
			if (lws_spa_process(r->spa, in, (int)len) != 0)
				r->upload_bad = 1;
			return 0;
		}
		if (r->too_big || r->body_len + len > FF_BODY_MAX) {
			r->too_big = 1;
			return 0;
		}
		if ((nb = realloc(r->body, r->body_len + len + 1)) == NULL)
			return -1;
		r->body = nb;
		memcpy(r->body + r->body_len, in, len);
		r->body_len += len;
		r->body[r->body_len] = '\0';
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		/* lws 4.1.6 calls this again while a pipelined request
		 * waits unread; the first call answers. */
		if (r->status != 0)
			return 0;
		if (r->spa != NULL && lws_spa_finalize(r->spa) != 0)
			r->upload_bad = 1;
		ff_req_complete(s, wsi, r);
		ff_req_done(wsi);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (r->sent)
			return -1;	/* all of it went: close */
		if (r->resp == NULL && r->status == 0)
			return 0;	/* not complete yet */
		return ff_req_send(wsi, r);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (r != NULL)
			ff_req_clear(r);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols ff_tcp_protocols[] = {
	{ "ff-tcp", ff_tcp_callback, sizeof(struct ff_conn), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct lws_protocols ff_http_protocols[] = {
	{ "ff-http", ff_http_callback, sizeof(struct ff_req), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct lws_protocols ff_udp_protocols[] = {
	{ "ff-disco", ff_udp_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static struct lws_vhost *
ff_vhost(struct ff_server *s, struct evloop *ev, const char *name,
    const struct lws_protocols *prot, const char *iface, int port, int raw)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.vhost_name = name;
	info.protocols = prot;
	info.port = port;
	info.iface = iface;
	/* With IPv6 on, lws 4.1 cannot bind an IPv4 literal and listens on
	 * every interface instead: a LAN client would reach a loopback bind. */
	if (iface != NULL && strchr(iface, ':') == NULL)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.user = s;
	if (raw) {
		/* Accepted sockets go straight to our protocol, no HTTP. */
		info.options |= LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG;
		info.listen_accept_role = "raw-skt";
		info.listen_accept_protocol = prot[0].name;
	}
	return lws_create_vhost(evloop_lws(ev), &info);
}

struct ff_server *
ff_server_new(struct evloop *ev, const struct config *cf)
{
	struct ff_server *s;
	struct ff_params p;
	const char *iface;
	int http_port, i;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->ev = ev;
	snprintf(s->bind_ip, sizeof(s->bind_ip), "%s", cf->ff_bind);
	memset(&p, 0, sizeof(p));
	if (ff_model_kind_parse(cf->ff_model, &p.kind) == -1)
		goto fail;
	p.name = cf->ff_name;
	p.serial = cf->ff_serial;
	p.check_code = cf->ff_check_code;
	p.ip = cf->ff_bind;
	p.tcp_port = (uint16_t)cf->ff_tcp_port;
	p.http_port = (uint16_t)cf->ff_http_port;
	p.camera_port = (uint16_t)cf->ff_camera_port;
	if ((s->model = ff_model_new(&p, mono_now_ms())) == NULL)
		goto fail;
	if ((s->key_model = strdup(cf->ff_model)) == NULL ||
	    (s->key_serial = strdup(cf->ff_serial)) == NULL ||
	    (s->key_name = strdup(cf->ff_name)) == NULL)
		goto fail;
	if (cf->ff_state_file != NULL && cf->ff_state_file[0] != '\0' &&
	    (s->state_path = strdup(cf->ff_state_file)) == NULL)
		goto fail;
	ff_server_restore(s);

	/* lws binds every interface for a NULL iface. */
	iface = strcmp(cf->ff_bind, "0.0.0.0") == 0 ? NULL : cf->ff_bind;
	if ((s->vh_tcp = ff_vhost(s, ev, "ff-tcp", ff_tcp_protocols, iface,
	    cf->ff_tcp_port, 1)) == NULL) {
		log_warnx("flashforge: cannot listen on TCP %s:%d",
		    cf->ff_bind, cf->ff_tcp_port);
		goto fail;
	}
	/* Printers before the 5M have no HTTP API: nothing to listen for. */
	http_port = ff_model_info(s->model)->http_api ? cf->ff_http_port : 0;
	if (http_port != 0 && (s->vh_http = ff_vhost(s, ev,
	    "ff-http", ff_http_protocols, iface, http_port, 0)) ==
	    NULL) {
		log_warnx("flashforge: cannot listen on TCP %s:%d (HTTP)",
		    cf->ff_bind, cf->ff_http_port);
		goto fail;
	}
	if (cf->ff_camera_port != 0 && (s->camera = ff_camera_new(ev,
	    s->model, cf->ff_bind, cf->ff_camera_port)) == NULL)
		goto fail;
	if (cf->ff_discovery_port != 0 || cf->ff_multicast_port != 0) {
		if ((s->vh_udp = ff_vhost(s, ev, "ff-disco",
		    ff_udp_protocols, NULL, CONTEXT_PORT_NO_LISTEN, 0)) ==
		    NULL) {
			log_warnx("flashforge: cannot set up discovery");
			goto fail;
		}
		s->udp[0].port = cf->ff_discovery_port;
		s->udp[1].port = cf->ff_multicast_port;
		s->udp[1].mcast = 1;
		for (i = 0; i < 2; i++) {
			s->udp[i].s = s;
			if (s->udp[i].port != 0 && ff_udp_open(&s->udp[i]) ==
			    -1)
				goto fail;
		}
	}
	log_info("flashforge: %s \"%s\" on %s: commands TCP %d, HTTP %d, "
	    "discovery UDP %d and %d (0: off)", ff_model_kind_name(p.kind),
	    cf->ff_name, cf->ff_bind, cf->ff_tcp_port, http_port,
	    cf->ff_discovery_port, cf->ff_multicast_port);
	ff_server_shown = s;
	return s;
fail:
	/* The loop is not running yet: this thread may destroy them, and
	 * must, since they point at s.  No UDP socket is to reopen. */
	s->failed = 1;
	/* lws closes these after s is gone: they must not find it. */
	for (i = 0; i < 2; i++)
		if (s->udp[i].wsi != NULL)
			lws_set_opaque_user_data(s->udp[i].wsi, NULL);
	if (s->vh_udp != NULL)
		lws_vhost_destroy(s->vh_udp);
	if (s->vh_http != NULL)
		lws_vhost_destroy(s->vh_http);
	if (s->vh_tcp != NULL)
		lws_vhost_destroy(s->vh_tcp);
	ff_camera_abort(s->camera);
	ff_model_free(s->model);
	ff_server_strings_free(s);
	free(s);
	return NULL;
}

int
ff_server_view(struct ff_server_view *v)
{
	const struct ff_server *s = ff_server_shown;
	struct ff_status st;

	if (s == NULL)
		return -1;
	ff_model_status(s->model, mono_now_ms(), &st);
	snprintf(v->model, sizeof(v->model), "%s",
	    ff_model_kind_name(ff_model_info(s->model)->kind));
	snprintf(v->name, sizeof(v->name), "%s", ff_model_name(s->model));
	snprintf(v->file, sizeof(v->file), "%s", st.file != NULL ? st.file :
	    "");
	switch (st.machine) {
	case FF_MACHINE_BUILDING:
		v->state = "printing";
		break;
	case FF_MACHINE_PAUSED:
		v->state = "paused";
		break;
	case FF_MACHINE_BUSY:
		v->state = "busy";
		break;
	default:
		v->state = st.job == FF_JOB_DONE ? "completed" : "ready";
	}
	v->progress = st.progress;
	v->clients = s->clients;
	return 0;
}

void
ff_server_free(struct ff_server *s)
{
	if (s == NULL)
		return;
	if (ff_server_shown == s)
		ff_server_shown = NULL;
	ff_camera_free(s->camera);
	ff_model_free(s->model);
	ff_server_strings_free(s);
	free(s);
}
