/*
 * notify_probe: plays systemd's side of sd_notify(3) for the tests.  It
 * binds a datagram socket at PATH and prints each message it receives on
 * one line, its newlines shown as '|', until it is killed.  The tests set
 * NOTIFY_SOCKET=PATH for the daemon and read these lines to learn when it
 * is ready, reloading or stopping, instead of sleeping.
 *
 * usage: notify_probe PATH            listen; exit on "PROBE_END=1"
 *        notify_probe --send PATH MSG  send one message (as sd_notify)
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int
probe_addr(struct sockaddr_un *sa, const char *path)
{
	if (strlen(path) >= sizeof(sa->sun_path)) {
		fprintf(stderr, "notify_probe: %s: path too long\n", path);
		return -1;
	}
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

static int
probe_send(const char *path, const char *msg)
{
	struct sockaddr_un sa;
	int fd;

	if (probe_addr(&sa, path) == -1)
		return 1;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sa,
	    sizeof(sa)) == -1) {
		fprintf(stderr, "notify_probe: %s: %s\n", path,
		    strerror(errno));
		return 1;
	}
	close(fd);
	return 0;
}

int
main(int argc, char *argv[])
{
	struct sockaddr_un sa;
	char buf[4096];
	ssize_t n, i;
	int fd;

	if (argc == 4 && strcmp(argv[1], "--send") == 0)
		return probe_send(argv[2], argv[3]);
	if (argc != 2) {
		fprintf(stderr, "usage: notify_probe PATH | --send PATH MSG\n");
		return 2;
	}
	if (probe_addr(&sa, argv[1]) == -1)
		return 2;
	unlink(argv[1]);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		fprintf(stderr, "notify_probe: %s: %s\n", argv[1],
		    strerror(errno));
		return 1;
	}
	/* Bound: the caller may start the daemon once this line is out. */
	printf("LISTENING\n");
	fflush(stdout);
	for (;;) {
		if ((n = recv(fd, buf, sizeof(buf) - 1, 0)) == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "notify_probe: %s\n", strerror(errno));
			return 1;
		}
		for (i = 0; i < n; i++)
			if (buf[i] == '\n')
				buf[i] = '|';
		buf[n] = '\0';
		/* Sent after everything else the test waits for: datagrams
		 * on one socket arrive in order, so nothing is lost. */
		if (strcmp(buf, "PROBE_END=1") == 0)
			return 0;
		printf("%s\n", buf);
		if (fflush(stdout) == EOF)
			return 1;	/* the reader went away */
	}
}
