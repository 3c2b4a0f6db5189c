/*
 * ff_state: see ff_state.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ff_state.h"
#include "log.h"

/* The file's bytes, NUL-terminated, in buf; 1 when there is no file, -1
 * after logging. */
static int
ff_state_read(const char *path, char *buf, size_t len)
{
	ssize_t n;
	size_t got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno == ENOENT)
			return 1;
		log_warn("flashforge: cannot read %s", path);
		return -1;
	}
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			log_warn("flashforge: cannot read %s", path);
			close(fd);
			return -1;
		}
		got += (size_t)n;
	}
	close(fd);
	if (got == len - 1) {
		log_warnx("flashforge: %s: over %zu bytes; ignored", path,
		    len - 1);
		return -1;
	}
	buf[got] = '\0';
	return 0;
}

static int
ff_state_is(const cJSON *o, const char *key, const char *want)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) && strcmp(v->valuestring, want) == 0;
}

int
ff_state_load(const char *path, const struct ff_state_key *k, char *name,
    size_t len)
{
	char buf[FF_STATE_MAX + 1];
	const cJSON *v;
	cJSON *o;
	int rc;

	if ((rc = ff_state_read(path, buf, sizeof(buf))) != 0)
		return rc;
	o = cJSON_Parse(buf);
	v = cJSON_GetObjectItemCaseSensitive(o, "name");
	if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
		log_warnx("flashforge: %s is not a state file; ignored", path);
		cJSON_Delete(o);
		return -1;
	}
	rc = 1;
	if (ff_state_is(o, "model", k->model) &&
	    ff_state_is(o, "serial", k->serial) &&
	    ff_state_is(o, "configured_name", k->name)) {
		if (strlen(v->valuestring) >= len) {
			log_warnx("flashforge: %s: name too long; ignored",
			    path);
			rc = -1;
		} else {
			memcpy(name, v->valuestring,
			    strlen(v->valuestring) + 1);
			rc = 0;
		}
	}
	cJSON_Delete(o);
	return rc;
}

/* Writes all of buf to fd; -1 with errno set. */
static int
ff_state_write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
ff_state_save(const char *path, const struct ff_state_key *k,
    const char *name)
{
	char *json = NULL, *tmp = NULL;
	cJSON *o;
	int fd = -1, rc = -1;

	if ((o = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(o, "model", k->model) == NULL ||
	    cJSON_AddStringToObject(o, "serial", k->serial) == NULL ||
	    cJSON_AddStringToObject(o, "configured_name", k->name) == NULL ||
	    cJSON_AddStringToObject(o, "name", name) == NULL ||
	    (json = cJSON_Print(o)) == NULL ||
	    asprintf(&tmp, "%s.XXXXXX", path) == -1) {
		tmp = NULL;
		log_warnx("flashforge: cannot save the name to %s: out of "
		    "memory", path);
		goto out;
	}
	/* Beside the file: rename() is atomic within one file system. */
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		log_warn("flashforge: cannot save the name to %s", path);
		goto out;
	}
	if (ff_state_write_all(fd, json, strlen(json)) == -1 ||
	    ff_state_write_all(fd, "\n", 1) == -1 || fsync(fd) == -1) {
		log_warn("flashforge: cannot save the name to %s", path);
		goto out;
	}
	rc = close(fd);
	fd = -1;
	if (rc == -1 || rename(tmp, path) == -1) {
		rc = -1;
		log_warn("flashforge: cannot save the name to %s", path);
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	if (fd != -1) {
		close(fd);
		unlink(tmp);
	}
	free(tmp);
	free(json);
	cJSON_Delete(o);
	return rc;
}
