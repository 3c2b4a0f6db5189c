/*
 * replay_main: runs a fuzz target's LLVMFuzzerTestOneInput() over files,
 * without libFuzzer, so the seed corpus and every crash ever found run in
 * the ordinary builds (gcc, ASan, TSan) as the fuzz-replay-* tests.
 *
 * usage: replay_<target> FILE|FOLDER...
 *
 * A folder's regular files run in name order; names starting with '.' are
 * skipped, so a folder with no inputs yet is kept in git by a .gitkeep.
 * Each input is copied into a buffer of exactly its size, as libFuzzer
 * does, so ASan sees a read one byte past it.  The name goes to stderr
 * before the input runs: a crash report then says which file it was.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static int
replay_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	size_t len = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	/* malloc(0) may be NULL; libFuzzer hands an empty input a pointer. */
	if ((buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1)) == NULL) {
		fprintf(stderr, "replay: %s: out of memory\n", path);
		close(fd);
		return -1;
	}
	while (len < (size_t)st.st_size) {
		n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "replay: %s: %s\n", path,
			    n == 0 ? "short read" : strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

static int
replay_dir(const char *dir, size_t *count)
{
	struct dirent **ents;
	struct stat st;
	char path[PATH_MAX];
	int i, n, rc = 0;

	if ((n = scandir(dir, &ents, NULL, alphasort)) == -1) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (ents[i]->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
			continue;
		if (replay_file(path) == -1)
			rc = -1;
		else
			(*count)++;
	}
	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return rc;
}

int
main(int argc, char *argv[])
{
	struct stat st;
	size_t count = 0;
	int i, rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|FOLDER...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		/* A missing folder is an error: a typo must not pass. */
		if (stat(argv[i], &st) == -1) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
			    strerror(errno));
			rc = 1;
		} else if (S_ISDIR(st.st_mode)) {
			if (replay_dir(argv[i], &count) == -1)
				rc = 1;
		} else if (replay_file(argv[i]) == -1)
			rc = 1;
		else
			count++;
	}
	fprintf(stderr, "replay: %zu inputs, %s\n", count,
	    rc == 0 ? "all ran" : "some could not be read");
	return rc;
}
