/*
 * sim_transcript: see sim_transcript.h.
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "sim_scenario.h"
#include "sim_transcript.h"

/*
 * Secrets.  The issued tokens are 64 hex chars: they go in a hash set, and
 * a text is searched by hashing each 64-char window of its hex runs, so a
 * frame costs O(its length) whatever the number of tokens.  Other secrets
 * (a password of another shape) are few and searched one by one.
 */
#define SIM_SECRET_HEX		64	/* chars of a hashed secret */

struct sim_transcript {
	FILE	*fp;
	FILE	*secrets_fp;
	char	**hexset;	/* open addressing, NULL: empty */
	size_t	 hexcap;	/* a power of two */
	size_t	 nhex;
	char	**other;
	size_t	 nother;
};

static uint64_t
sim_transcript_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */
	size_t i;

	/* Folded: hex is the same secret in either case. */
	for (i = 0; i < n; i++) {
		h ^= (unsigned char)tolower((unsigned char)s[i]);
		h *= 1099511628211ULL;
	}
	return h;
}

static int
sim_transcript_hexrun(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Where s[0..64) is, or would go, in the set. */
static size_t
sim_transcript_hexslot(char *const *set, size_t cap, const char *s)
{
	size_t i = (size_t)sim_transcript_hash(s, SIM_SECRET_HEX) & (cap - 1);

	while (set[i] != NULL && strncasecmp(set[i], s, SIM_SECRET_HEX) != 0)
		i = (i + 1) & (cap - 1);
	return i;
}

static int
sim_transcript_hexadd(struct sim_transcript *tr, char *s)
{
	char **ns;
	size_t cap, i;

	if (2 * (tr->nhex + 1) > tr->hexcap) {
		cap = tr->hexcap == 0 ? 64 : 2 * tr->hexcap;
		if ((ns = calloc(cap, sizeof(*ns))) == NULL)
			return -1;
		for (i = 0; i < tr->hexcap; i++)
			if (tr->hexset[i] != NULL)
				ns[sim_transcript_hexslot(ns, cap,
				    tr->hexset[i])] = tr->hexset[i];
		free(tr->hexset);
		tr->hexset = ns;
		tr->hexcap = cap;
	}
	i = sim_transcript_hexslot(tr->hexset, tr->hexcap, s);
	if (tr->hexset[i] != NULL) {
		explicit_bzero(s, SIM_SECRET_HEX);
		free(s);		/* already known */
		return 0;
	}
	tr->hexset[i] = s;
	tr->nhex++;
	return 0;
}

/* The first secret in text[0..len): its offset and length, or -1. */
static ssize_t
sim_transcript_find_secret(const struct sim_transcript *tr, const char *text,
    size_t len, size_t *slen)
{
	size_t i = 0, run, k, best = (size_t)-1, bl = 0;
	const char *q;

	while (tr->nhex > 0 && i + SIM_SECRET_HEX <= len) {
		if (!isxdigit((unsigned char)text[i])) {
			i++;
			continue;
		}
		for (run = i; run < len && isxdigit((unsigned char)text[run]);
		    run++)
			;
		for (k = i; k + SIM_SECRET_HEX <= run; k++)
			if (tr->hexset[sim_transcript_hexslot(tr->hexset,
			    tr->hexcap, text + k)] != NULL) {
				best = k;
				bl = SIM_SECRET_HEX;
				goto others;
			}
		i = run;
	}
others:
	for (k = 0; k < tr->nother; k++) {
		q = memmem(text, best != (size_t)-1 ? best + bl : len,
		    tr->other[k], strlen(tr->other[k]));
		if (q != NULL && (size_t)(q - text) < best) {
			best = (size_t)(q - text);
			bl = strlen(tr->other[k]);
		}
	}
	if (best == (size_t)-1)
		return -1;
	*slen = bl;
	return (ssize_t)best;
}

struct sim_transcript *
sim_transcript_new(const char *path, const char *secrets_path)
{
	struct sim_transcript *tr;
	int fd;

	if ((tr = calloc(1, sizeof(*tr))) == NULL) {
		log_warn("calloc");
		return NULL;
	}
	if (path != NULL && (tr->fp = fopen(path, "we")) == NULL) {
		log_warn("%s", path);
		goto fail;
	}
	if (secrets_path != NULL) {
		/* Secrets: nobody else may read them, from the first byte. */
		fd = open(secrets_path, O_WRONLY | O_CREAT | O_TRUNC |
		    O_CLOEXEC, 0600);
		if (fd == -1 || fchmod(fd, 0600) == -1 ||
		    (tr->secrets_fp = fdopen(fd, "w")) == NULL) {
			log_warn("%s", secrets_path);
			if (fd != -1)
				close(fd);
			goto fail;
		}
	}
	return tr;
fail:
	sim_transcript_free(tr);
	return NULL;
}

void
sim_transcript_free(struct sim_transcript *tr)
{
	size_t i;

	if (tr == NULL)
		return;
	if (tr->fp != NULL)
		fclose(tr->fp);
	if (tr->secrets_fp != NULL)
		fclose(tr->secrets_fp);
	for (i = 0; i < tr->hexcap; i++)
		if (tr->hexset[i] != NULL) {
			explicit_bzero(tr->hexset[i], SIM_SECRET_HEX);
			free(tr->hexset[i]);
		}
	for (i = 0; i < tr->nother; i++) {
		explicit_bzero(tr->other[i], strlen(tr->other[i]));
		free(tr->other[i]);
	}
	free(tr->hexset);
	free(tr->other);
	free(tr);
}

int
sim_transcript_secret(struct sim_transcript *tr, const char *secret)
{
	size_t n, i;
	char **no, *s;

	if (secret == NULL || *secret == '\0')
		return 0;
	n = strlen(secret);
	if (n != SIM_SECRET_HEX || !sim_transcript_hexrun(secret, n)) {
		/* A fleet shares a password: keep it once. */
		for (i = 0; i < tr->nother; i++)
			if (strcmp(tr->other[i], secret) == 0)
				return 0;
		if (tr->nother == SIM_SECRETS_MAX) {
			log_warnx("more than %d secrets that are not tokens",
			    SIM_SECRETS_MAX);
			return -1;
		}
		if ((no = reallocarray(tr->other, tr->nother + 1,
		    sizeof(*no))) == NULL)
			goto oom;
		tr->other = no;
	}
	if ((s = strdup(secret)) == NULL)
		goto oom;
	if (n == SIM_SECRET_HEX && sim_transcript_hexrun(secret, n)) {
		if (sim_transcript_hexadd(tr, s) == -1) {
			free(s);
			goto oom;
		}
	} else
		tr->other[tr->nother++] = s;
	if (tr->secrets_fp != NULL) {
		fprintf(tr->secrets_fp, "%s\n", secret);
		fflush(tr->secrets_fp);
	}
	return 0;
oom:
	log_warn("secret");
	return -1;
}

int
sim_transcript_leaks(const struct sim_transcript *tr,
    const char *text, size_t len)
{
	size_t slen;

	return sim_transcript_find_secret(tr, text, len, &slen) != -1;
}

/* s with every secret replaced; s is freed.  NULL when out of memory. */
static char *
sim_transcript_redact(const struct sim_transcript *tr, char *s)
{
	static const char mark[] = "<redacted>";
	size_t len = strlen(s), slen, used = 0, cap;
	ssize_t at;
	char *out, *p = s;

	if (sim_transcript_find_secret(tr, s, len, &slen) == -1)
		return s;
	/* Worst case: every byte a (1-byte) secret. */
	cap = len * sizeof(mark) + 1;
	if ((out = malloc(cap)) == NULL) {
		explicit_bzero(s, len);
		free(s);
		return NULL;
	}
	while ((at = sim_transcript_find_secret(tr, p, len - (size_t)(p - s),
	    &slen)) != -1) {
		memcpy(out + used, p, (size_t)at);
		used += (size_t)at;
		memcpy(out + used, mark, sizeof(mark) - 1);
		used += sizeof(mark) - 1;
		p += (size_t)at + slen;
	}
	strcpy(out + used, p);
	explicit_bzero(s, len);
	free(s);
	return out;
}

void
sim_transcript_record(struct sim_transcript *tr, int64_t t_ms,
    const char *dir, const cJSON *obj)
{
	char *s;

	if (tr == NULL || tr->fp == NULL)
		return;
	if ((s = cJSON_PrintUnformatted(obj)) == NULL)
		return;
	if ((s = sim_transcript_redact(tr, s)) == NULL)
		return;
	/* Splice "t" and "dir" in front of obj's own members. */
	if (strcmp(s, "{}") == 0)
		fprintf(tr->fp, "{\"t\":%lld,\"dir\":\"%s\"}\n",
		    (long long)t_ms, dir);
	else
		fprintf(tr->fp, "{\"t\":%lld,\"dir\":\"%s\",%s\n",
		    (long long)t_ms, dir, s + 1);
	fflush(tr->fp);
	free(s);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t
sim_transcript_utf8_seq(const unsigned char *s, size_t len)
{
	size_t n, i;
	uint32_t c;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		c = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		c = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		c = s[0] & 0x07;
	} else
		return 0;
	if (n > len)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and past U+10FFFF are not UTF-8. */
	if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) ||
	    (n == 4 && c < 0x10000) || c > 0x10ffff ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n;
}

int
sim_transcript_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	while (len > 0) {
		if ((n = sim_transcript_utf8_seq(p, len)) == 0)
			return 0;
		p += n;
		len -= n;
	}
	return 1;
}

/* One object, or an array of the objects on each line (a batch), or
 * NULL when the text is neither. */
static cJSON *
sim_transcript_frames(const char *text, size_t len)
{
	const char *p, *nl, *end = text + len;
	cJSON *one, *all;

	if ((one = sim_scenario_json_exact(text, len)) != NULL) {
		if (cJSON_IsObject(one))
			return one;
		cJSON_Delete(one);
		return NULL;
	}
	if (memchr(text, '\n', len) == NULL || (all = cJSON_CreateArray()) ==
	    NULL)
		return NULL;
	for (p = text; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		one = sim_scenario_json_exact(p, (size_t)(nl - p));
		if (!cJSON_IsObject(one)) {
			cJSON_Delete(one);
			cJSON_Delete(all);
			return NULL;
		}
		cJSON_AddItemToArray(all, one);
	}
	return all;
}

void
sim_transcript_frame(struct sim_transcript *tr, int64_t t_ms,
    const char *dir, const char *text, size_t len)
{
	cJSON *rec, *frame;
	char *copy;
	size_t i;

	if (tr == NULL || tr->fp == NULL)
		return;
	if ((rec = cJSON_CreateObject()) == NULL)
		return;
	frame = NULL;
	if (sim_transcript_utf8_valid(text, len))
		frame = sim_transcript_frames(text, len);
	if (cJSON_IsObject(frame))
		cJSON_AddItemToObject(rec, "frame", frame);
	else if (cJSON_IsArray(frame))
		cJSON_AddItemToObject(rec, "frames", frame);
	else {
		cJSON_Delete(frame);
		/* Keep the transcript valid JSON whatever came: bytes that
		 * are not UTF-8, and NULs, become '?'. */
		if ((copy = malloc(len + 1)) == NULL)
			goto done;
		memcpy(copy, text, len);
		copy[len] = '\0';
		for (i = 0; i < len; i++) {
			size_t n = sim_transcript_utf8_seq(
			    (unsigned char *)copy + i, len - i);

			if (copy[i] == '\0' || n == 0)
				copy[i] = '?';
			else
				i += n - 1;
		}
		cJSON_AddStringToObject(rec, "raw", copy);
		free(copy);
	}
	sim_transcript_record(tr, t_ms, dir, rec);
done:
	cJSON_Delete(rec);
}
