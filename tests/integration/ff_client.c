/*
 * ff_client: the FlashForge clients of the tests, on real sockets.
 *
 *   ff_client once HOST PORT CMD
 *	As the Finder API does it: a new connection, "~M601 S1\r\n" then
 *	"~CMD\r\n" as two writes, one read of at most 1024 bytes, printed
 *	raw on stdout.
 *   ff_client replay HOST PORT FILE
 *	One connection; FILE's lines "> bytes" are written, "< bytes" must
 *	be read back exactly (C escapes: \r \n \t \\ \xHH).  Exit 1 on the
 *	first difference, shown with escapes.
 *   ff_client disco HOST PORT
 *	The 20-byte legacy probe from a UDP socket of its own; the reply
 *	is parsed by its layout (140 or 276 bytes) and printed as key=value.
 *	HOST may be a multicast group (the socket is then bound to any
 *	address, and the group's route decides the interface).
 *   ff_client abuse HOST PORT
 *	Bad clients, then a good one: a line over 4 KiB (must be dropped),
 *	binary junk (must be answered), a client that never reads, 100
 *	connections at once.  Exit 0 if the printer answered M115 after
 *	each of them.
 *   ff_client pipeline HOST HTTP_PORT TCP_PORT
 *	Two or more HTTP requests in one write (GET, POST with and without
 *	a body, chunked, cut short), each on a connection of its own: each
 *	must get an HTTP response and then the end of the connection, and
 *	TCP_PORT must answer M115 after each.
 *   ff_client udpflood HOST PORT
 *	Datagrams of odd sizes (empty, 1 byte, ..., 65000 bytes) from a
 *	socket that never reads, then one of each size from 0 to 65000
 *	bytes from a fresh socket, each of which must get a discovery reply,
 *	then the legacy probe, which must be answered too.
 *   ff_client httpflood HOST HTTP_PORT TCP_PORT
 *	300 half-sent HTTP requests held open (more than the 256 descriptors
 *	the loop once had for every port), then 20 M115 probes on TCP_PORT,
 *	each answered within PROBE_TIMEOUT_S, then a whole HTTP request,
 *	which must be answered.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLIENT_TIMEOUT_S	20	/* a guard against hangs, not a check */
/* A guard shorter than the daemon's own 5 s header timeout: past it,
 * a flood of half-sent requests would have cleared itself. */
#define PROBE_TIMEOUT_S		2
#define PIPELINE_TIMEOUT_S	5	/* a guard: the answers come at once */
#define HTTP_FLOOD		300	/* connections held open */
#define TCP_PROBES		20

static int timeout_s = CLIENT_TIMEOUT_S;

static const char *host;
static int port;

static void
die(const char *what)
{
	fprintf(stderr, "ff_client: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
timeouts(int fd)
{
	struct timeval tv = { timeout_s, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int
dial(void)
{
	struct sockaddr_in sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "ff_client: %s: not an IPv4 address\n", host);
		exit(2);
	}
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket");
	timeouts(fd);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		die("connect");
	return fd;
}

static void
put(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		if ((n = send(fd, p, len, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			die("send");
		}
		p += n;
		len -= (size_t)n;
	}
}

static int
cmd_once(const char *cmd)
{
	char buf[1024], line[512];
	ssize_t n;
	int fd;

	fd = dial();
	put(fd, "~M601 S1\r\n", 10);
	snprintf(line, sizeof(line), "~%s\r\n", cmd);
	put(fd, line, strlen(line));
	if ((n = recv(fd, buf, sizeof(buf), 0)) == -1)
		die("recv");
	fwrite(buf, 1, (size_t)n, stdout);
	close(fd);
	return 0;
}

/* Decodes C escapes in place; returns the length. */
static size_t
unescape(char *s)
{
	char *r = s, *w = s;
	unsigned v;

	while (*r != '\0') {
		if (*r != '\\' || r[1] == '\0') {
			*w++ = *r++;
			continue;
		}
		r++;
		switch (*r) {
		case 'r': *w++ = '\r'; r++; break;
		case 'n': *w++ = '\n'; r++; break;
		case 't': *w++ = '\t'; r++; break;
		case 'x':
			if (sscanf(r + 1, "%2x", &v) != 1) {
				fprintf(stderr, "ff_client: bad \\x escape\n");
				exit(2);
			}
			*w++ = (char)v;
			r += 3;
			break;
		default: *w++ = *r++; break;
		}
	}
	return (size_t)(w - s);
}

static void
show(const char *tag, const char *buf, size_t len)
{
	size_t i;

	fprintf(stderr, "%s \"", tag);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '\r')
			fputs("\\r", stderr);
		else if (c == '\n')
			fputs("\\n", stderr);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(stderr, "\\x%02x", c);
		else
			fputc(c, stderr);
	}
	fputs("\"\n", stderr);
}

static int
cmd_replay(const char *file)
{
	char line[8192], got[8192];
	size_t len, have;
	ssize_t n;
	FILE *fp;
	int fd, lineno = 0;

	if ((fp = fopen(file, "r")) == NULL)
		die(file);
	fd = dial();
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (line[0] != '>' && line[0] != '<')
			continue;	/* comments, blank lines */
		len = unescape(line + 2);
		if (line[0] == '>') {
			put(fd, line + 2, len);
			continue;
		}
		for (have = 0; have < len; have += (size_t)n) {
			n = recv(fd, got + have, len - have, 0);
			if (n <= 0) {
				fprintf(stderr, "%s:%d: connection ended or "
				    "timed out after %zu of %zu bytes\n", file,
				    lineno, have, len);
				show("  got", got, have);
				return 1;
			}
		}
		if (memcmp(got, line + 2, len) != 0) {
			fprintf(stderr, "%s:%d: reply differs\n", file, lineno);
			show("  want", line + 2, len);
			show("  got ", got, len);
			return 1;
		}
	}
	fclose(fp);
	close(fd);
	return 0;
}

static uint16_t
be16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static int
cmd_disco(void)
{
	/* As captured: "www.usr" then client bytes, 20 in all. */
	static const unsigned char probe[20] = {
		0x77, 0x77, 0x77, 0x2e, 0x75, 0x73, 0x72, 0x22, 0x65, 0x36,
		0xc0, 0x00
	};
	struct sockaddr_in sa, me;
	unsigned char buf[2048];
	ssize_t n;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	/* Bound like a client: its own address (any, for a group), a port
	 * of its own. */
	memset(&me, 0, sizeof(me));
	me.sin_family = AF_INET;
	if (!IN_MULTICAST(ntohl(sa.sin_addr.s_addr)))
		me.sin_addr = sa.sin_addr;
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket");
	timeouts(fd);
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)) == -1)
		die("bind");
	if (sendto(fd, probe, sizeof(probe), 0, (struct sockaddr *)&sa,
	    sizeof(sa)) == -1)
		die("sendto");
	if ((n = recv(fd, buf, sizeof(buf), 0)) == -1)
		die("recv");
	printf("len=%zd\n", n);
	if (n != 140 && n != 276)
		return 1;
	printf("name=%.*s\n", (int)strnlen((char *)buf, n == 140 ? 128 : 132),
	    (char *)buf);
	printf("port=%u\nvid=%u\npid=%u\nstatus=%u\n", be16(buf + 0x84),
	    be16(buf + 0x86), be16(buf + 0x88), be16(buf + 0x8a));
	if (n == 276) {
		printf("product=0x%04x\nevent_port=%u\n", be16(buf + 0x8c),
		    be16(buf + 0x8e));
		printf("serial=%.*s\n", (int)strnlen((char *)buf + 0x92,
		    276 - 0x92), (char *)buf + 0x92);
	}
	return 0;
}

/* 1 if a fresh client gets a whole M115 reply. */
static int
alive(void)
{
	char buf[1024];
	size_t have = 0;
	ssize_t n;
	int fd, ok;

	fd = dial();
	put(fd, "~M115\r\n", 7);
	while (have < sizeof(buf) - 1 &&
	    (n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0)) > 0) {
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "ok\r\n") != NULL)
			break;
	}
	buf[have] = '\0';
	ok = strncmp(buf, "CMD M115 Received.\r\n", 20) == 0 &&
	    strstr(buf, "ok\r\n") != NULL;
	close(fd);
	return ok;
}

/* 1 once the server has closed fd (read returns 0 or an error). */
static int
closed_by_server(int fd)
{
	char buf[4096];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		;
	return n == 0 || errno == ECONNRESET;
}

static int
cmd_abuse(void)
{
	enum { FLOOD = 100 };
	static char big[5000];
	char junk[256], buf[1024];
	int fd, fds[FLOOD], i, bad = 0, flags;
	size_t sent;
	ssize_t n;

	/* A line past 4 KiB: that client is dropped, others are not. */
	fd = dial();
	memset(big, 'G', sizeof(big));
	put(fd, big, sizeof(big));
	if (!closed_by_server(fd)) {
		fprintf(stderr, "abuse: an over-long line did not close\n");
		bad = 1;
	}
	close(fd);
	if (!alive()) {
		fprintf(stderr, "abuse: no answer after an over-long line\n");
		bad = 1;
	}

	/* Binary junk, newline-ended: answered as unknown commands. */
	fd = dial();
	for (i = 0; i < (int)sizeof(junk); i++)
		junk[i] = (char)(i * 37 + 11);
	junk[sizeof(junk) - 1] = '\n';
	put(fd, junk, sizeof(junk));
	put(fd, "~M115\r\n", 7);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0 || strncmp(buf, "CMD ", 4) != 0) {
		fprintf(stderr, "abuse: junk got no reply\n");
		bad = 1;
	}
	close(fd);
	if (!alive()) {
		fprintf(stderr, "abuse: no answer after junk\n");
		bad = 1;
	}

	/* Never reads: send until the server stops taking bytes.  Its
	 * memory is bounded by flow control, and others are served. */
	fd = dial();
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	for (sent = 0; sent < 64 * 1024 * 1024; sent += (size_t)n) {
		struct pollfd pfd = { fd, POLLOUT, 0 };

		n = send(fd, "~M115\r\n~M119\r\n", 14, MSG_NOSIGNAL);
		if (n > 0)
			continue;
		if (n == -1 && errno != EAGAIN)
			break;	/* dropped: also bounded */
		/* Full: the server stopped reading, unless it drains in
		 * the next second (then this goes on). */
		if (poll(&pfd, 1, 1000) == 0)
			break;
		n = 0;
	}
	if (sent >= 64 * 1024 * 1024) {
		fprintf(stderr, "abuse: 64 MiB sent to a client that never "
		    "reads, and the server took it all\n");
		bad = 1;
	}
	if (!alive()) {
		fprintf(stderr, "abuse: no answer beside a non-reader\n");
		bad = 1;
	}
	close(fd);

	/* A flood of idle connections, held open: past the cap the
	 * quietest are closed, so a real client still gets in. */
	for (i = 0; i < FLOOD; i++)
		fds[i] = dial();
	if (!alive()) {
		fprintf(stderr, "abuse: no answer during a flood\n");
		bad = 1;
	}
	if (!closed_by_server(fds[0])) {
		fprintf(stderr, "abuse: the quietest flooder was kept\n");
		bad = 1;
	}
	for (i = 0; i < FLOOD; i++)
		close(fds[i]);
	if (!alive()) {
		fprintf(stderr, "abuse: no answer after a flood\n");
		bad = 1;
	}
	return bad;
}

/* The rest of what the server sends, until it closes: the length, or
 * -1 if it did not close within the guard. */
static ssize_t
read_to_end(int fd, char *buf, size_t len)
{
	size_t have = 0;
	ssize_t n;

	while ((n = recv(fd, buf + have, len - 1 - have, 0)) > 0) {
		have += (size_t)n;
		if (have == len - 1)
			have = 0;	/* keep reading; only the end matters */
	}
	buf[have] = '\0';
	if (n == -1 && errno != ECONNRESET)
		return -1;
	return (ssize_t)have;
}

static int
cmd_pipeline(int tcp_port)
{
#define BODY "{\"serialNumber\":\"x\",\"checkCode\":\"y\"}"
#define POST "POST /detail HTTP/1.1\r\nHost: p\r\nContent-Length: 36\r\n" \
	"\r\n" BODY
#define GET "GET /detail HTTP/1.1\r\nHost: p\r\n\r\n"
#define CHUNKED "POST /detail HTTP/1.1\r\nHost: p\r\n" \
	"Transfer-Encoding: chunked\r\n\r\n24\r\n" BODY "\r\n0\r\n\r\n"
#define NOLEN "POST /control HTTP/1.1\r\nHost: p\r\n\r\n"
	static const struct {
		const char	*name;
		const char	*req;
		int		 refused;	/* closed with no answer */
	} tcs[] = {
		{ "POST+POST", POST POST, 0 },
		{ "GET+POST", GET POST, 0 },
		{ "POST+GET", POST GET, 0 },
		{ "GET+GET", GET GET, 0 },
		{ "chunked+POST", CHUNKED POST, 0 },
		{ "POST+chunked", POST CHUNKED, 0 },
		{ "no length+POST", NOLEN POST, 0 },
		{ "POST x4", POST POST POST POST, 0 },
		{ "POST+half a POST", POST "POST /detail HTTP/1.1\r\nCont", 0 },
		{ "GET with a body+POST", "GET /detail HTTP/1.1\r\nHost: p\r\n"
		  "Content-Length: 36\r\n\r\n" BODY POST, 0 },
		{ "CONNECT+GET", "CONNECT a:1 HTTP/1.1\r\nHost: a\r\n\r\n" GET,
		  1 },
	};
	static char buf[65536];
	int http_port = port, fd, bad = 0;
	size_t i;

	timeout_s = PIPELINE_TIMEOUT_S;
	for (i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++) {
		port = http_port;
		fd = dial();
		put(fd, tcs[i].req, strlen(tcs[i].req));
		/* Only the first response's start is looked at: the
		 * buffer keeps what came last, so read it whole first. */
		if (tcs[i].refused) {
			if (read_to_end(fd, buf, sizeof(buf)) == -1) {
				fprintf(stderr, "pipeline: %s: neither "
				    "answered nor closed\n", tcs[i].name);
				bad = 1;
			}
		} else if (recv(fd, buf, 12, MSG_WAITALL) != 12 ||
		    strncmp(buf, "HTTP/1.1 ", 9) != 0) {
			fprintf(stderr, "pipeline: %s: no HTTP response\n",
			    tcs[i].name);
			bad = 1;
		} else if (read_to_end(fd, buf, sizeof(buf)) == -1) {
			fprintf(stderr, "pipeline: %s: the connection stayed "
			    "open\n", tcs[i].name);
			bad = 1;
		}
		close(fd);
		port = tcp_port;
		if (!alive()) {
			fprintf(stderr, "pipeline: %s: no answer on TCP after "
			    "it\n", tcs[i].name);
			return 1;
		}
	}
	return bad;
#undef BODY
#undef POST
#undef GET
#undef CHUNKED
#undef NOLEN
}

static int
udp_socket(const struct sockaddr_in *to)
{
	struct sockaddr_in me;
	int fd;

	memset(&me, 0, sizeof(me));
	me.sin_family = AF_INET;
	me.sin_addr = to->sin_addr;
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket");
	timeouts(fd);
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)) == -1)
		die("bind");
	return fd;
}

/* One datagram of len bytes from a fresh socket: 0 if a discovery reply
 * (140 or 276 bytes) comes back to that socket. */
static int
udp_answered(const struct sockaddr_in *sa, const void *buf, size_t len)
{
	unsigned char reply[2048];
	ssize_t n;
	int fd = udp_socket(sa);

	if (sendto(fd, buf, len, 0, (const struct sockaddr *)sa,
	    sizeof(*sa)) == -1)
		die("sendto");
	n = recv(fd, reply, sizeof(reply), 0);
	close(fd);
	return n == 140 || n == 276 ? 0 : -1;
}

static int
cmd_udpflood(void)
{
	static const size_t sizes[] = { 0, 1, 7, 19, 63, 65, 1500, 65000 };
	/* Each must be answered: what clients send, and longer. */
	static const size_t answered[] = { 0, 1, 8, 16, 20, 64, 65, 140, 276,
	    1500, 2049, 65000 };
	static unsigned char junk[65000];
	struct sockaddr_in sa;
	size_t i, k;
	int fd, bad = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	memset(junk, 0xa5, sizeof(junk));
	/* A flood from a socket that never reads its replies. */
	fd = udp_socket(&sa);
	for (k = 0; k < 10; k++)
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			if (sendto(fd, junk, sizes[i], 0,
			    (struct sockaddr *)&sa, sizeof(sa)) == -1)
				die("sendto");
	close(fd);
	/* A lost reply shows within PROBE_TIMEOUT_S: all are sent at once. */
	timeout_s = PROBE_TIMEOUT_S;
	for (i = 0; i < sizeof(answered) / sizeof(answered[0]); i++)
		if (udp_answered(&sa, junk, answered[i]) == -1) {
			fprintf(stderr, "udpflood: a datagram of %zu bytes got "
			    "no reply\n", answered[i]);
			bad = 1;
		}
	timeout_s = CLIENT_TIMEOUT_S;
	/* Discovery still works. */
	if (cmd_disco() != 0) {
		fprintf(stderr, "udpflood: no reply to the probe after it\n");
		bad = 1;
	}
	return bad;
}

static int
cmd_httpflood(int tcp_port)
{
	static const char half[] = "POST /detail HTTP/1.1\r\nHost: f\r\n";
	static const char whole[] = "GET /detail HTTP/1.1\r\nHost: f\r\n\r\n";
	static int fds[HTTP_FLOOD];
	char buf[64];
	int http_port = port, i, bad = 0;

	for (i = 0; i < HTTP_FLOOD; i++) {
		fds[i] = dial();
		put(fds[i], half, sizeof(half) - 1);
	}
	port = tcp_port;
	timeout_s = PROBE_TIMEOUT_S;
	for (i = 0; i < TCP_PROBES; i++)
		if (!alive()) {
			fprintf(stderr, "httpflood: TCP probe %d of %d got no "
			    "answer\n", i + 1, TCP_PROBES);
			bad = 1;
			break;
		}
	timeout_s = CLIENT_TIMEOUT_S;
	port = http_port;
	i = dial();
	put(i, whole, sizeof(whole) - 1);
	if (recv(i, buf, 12, MSG_WAITALL) != 12 ||
	    strncmp(buf, "HTTP/1.1 ", 9) != 0) {
		fprintf(stderr, "httpflood: a whole request got no answer\n");
		bad = 1;
	}
	close(i);
	for (i = 0; i < HTTP_FLOOD; i++)
		close(fds[i]);
	return bad;
}

int
main(int argc, char *argv[])
{
	if (argc < 4) {
		fprintf(stderr, "usage: ff_client once|replay|disco|abuse|"
		    "pipeline|udpflood|httpflood HOST PORT [CMD|FILE|PORT]\n");
		return 2;
	}
	host = argv[2];
	port = atoi(argv[3]);
	if (strcmp(argv[1], "once") == 0 && argc == 5)
		return cmd_once(argv[4]);
	if (strcmp(argv[1], "replay") == 0 && argc == 5)
		return cmd_replay(argv[4]);
	if (strcmp(argv[1], "disco") == 0)
		return cmd_disco();
	if (strcmp(argv[1], "abuse") == 0)
		return cmd_abuse();
	if (strcmp(argv[1], "pipeline") == 0 && argc == 5)
		return cmd_pipeline(atoi(argv[4]));
	if (strcmp(argv[1], "udpflood") == 0)
		return cmd_udpflood();
	if (strcmp(argv[1], "httpflood") == 0 && argc == 5)
		return cmd_httpflood(atoi(argv[4]));
	fprintf(stderr, "ff_client: bad arguments\n");
	return 2;
}
