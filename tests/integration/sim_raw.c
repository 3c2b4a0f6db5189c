/*
 * sim_raw: a raw TCP client for hostile HTTP shapes (tests/integration/sim-selftest.sh).
 * It sends its standard input to 127.0.0.1:PORT in ONE write (so pipelined
 * requests arrive together, as an attacker sends them), then copies what
 * comes back to standard output until the peer closes.
 *
 *   sim_raw PORT [SECONDS] <request
 *
 * Exits 0 when the peer closed, 1 on error, 2 when nothing came back
 * within SECONDS (default 5) of the last byte: a server that wedged.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RAW_IN_MAX	(1024 * 1024)	/* bytes of request */

static int
raw_read_all(int fd, char *buf, size_t cap, size_t *len)
{
	ssize_t r;

	*len = 0;
	while (*len < cap) {
		r = read(fd, buf + *len, cap - *len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		*len += (size_t)r;
	}
	return -1;
}

static int
raw_send(int s, const char *buf, size_t len)
{
	size_t off = 0;
	ssize_t w;

	while (off < len) {
		w = send(s, buf + off, len - off, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	struct pollfd pfd;
	static char in[RAW_IN_MAX];
	char buf[4096];
	size_t len;
	ssize_t r;
	int s, secs = 5, n;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: sim_raw PORT [SECONDS] <request\n");
		return 1;
	}
	if (argc == 3)
		secs = atoi(argv[2]);
	if (raw_read_all(STDIN_FILENO, in, sizeof(in), &len) == -1) {
		perror("stdin");
		return 1;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(s, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		perror("connect");
		return 1;
	}
	if (raw_send(s, in, len) == -1) {
		perror("send");
		return 1;
	}
	pfd.fd = s;
	pfd.events = POLLIN;
	for (;;) {
		n = poll(&pfd, 1, secs * 1000);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			perror("poll");
			return 1;
		}
		if (n == 0) {
			fprintf(stderr, "sim_raw: no answer within %d s\n",
			    secs);
			return 2;
		}
		r = read(s, buf, sizeof(buf));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && errno == ECONNRESET)
			return 0;	/* closed with our bytes unread */
		if (r < 0) {
			perror("read");
			return 1;
		}
		if (r == 0)
			return 0;
		if (fwrite(buf, 1, (size_t)r, stdout) != (size_t)r)
			return 1;
		fflush(stdout);
	}
}
