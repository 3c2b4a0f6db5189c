/*
 * frame: see frame.h.  Everything here reads bytes an untrusted peer chose,
 * so each check runs before the data reaches the next layer: the UTF-8 and
 * nesting scans are flat loops over the raw line, and only a line that
 * passes them is handed to cJSON (whose parser recurses once per level).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "frame.h"

#define FRAME_TYPE_MAX	32		/* action_type: [a-z_]{1,32} */
#define FRAME_ID_LIMIT	9007199254740992.0	/* 2^53 */

static int
frame_blank(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' &&
		    s[i] != '\v' && s[i] != '\f')
			return 0;
	return 1;
}

size_t
frame_split(const char *buf, size_t len,
    void (*fn)(const char *line, size_t len, void *arg), void *arg)
{
	const char *p = buf, *end = buf + len, *nl;
	size_t n, count = 0;

	if (buf == NULL)
		return 0;
	while (p < end) {
		/* No trailing newline: the last line runs to the end. */
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		n = (size_t)(nl - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (!frame_blank(p, n)) {
			if (fn != NULL)
				fn(p, n, arg);
			count++;
		}
		p = nl + 1;
	}
	return count;
}

int
frame_buf_append(struct frame_buf *fb, const void *in, size_t len)
{
	size_t need = fb->len + len, cap;
	char *nb;

	/* An empty frame may come with in == NULL and no buffer yet:
	 * memcpy(NULL, NULL, 0) is undefined, so nothing is copied. */
	if (len == 0)
		return 0;
	if (need > FRAME_MAX_LEN)
		return -1;
	if (need > fb->cap) {
		cap = fb->cap ? fb->cap : 4096;
		while (cap < need)
			cap *= 2;
		if (cap > FRAME_MAX_LEN)
			cap = FRAME_MAX_LEN;
		if ((nb = realloc(fb->buf, cap)) == NULL)
			return -1;
		fb->buf = nb;
		fb->cap = cap;
	}
	memcpy(fb->buf + fb->len, in, len);
	fb->len += len;
	return 0;
}

void
frame_buf_free(struct frame_buf *fb)
{
	free(fb->buf);
	memset(fb, 0, sizeof(*fb));
}

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no surrogates (U+D800..DFFF),
 * nothing past U+10FFFF.  The second byte's range depends on the first; the
 * others are plain continuation bytes.  Returns the offset of the first bad
 * sequence, or len when the whole buffer is valid.
 */
static size_t
frame_utf8_check(const unsigned char *s, size_t len)
{
	size_t i = 0, need, k;
	unsigned char lo, hi, c;

	while (i < len) {
		c = s[i];
		lo = 0x80;
		hi = 0xBF;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xC2 && c <= 0xDF)
			need = 1;
		else if (c == 0xE0) {
			need = 2;
			lo = 0xA0;	/* below: overlong */
		} else if (c == 0xED) {
			need = 2;
			hi = 0x9F;	/* above: surrogates */
		} else if (c >= 0xE1 && c <= 0xEF)
			need = 2;
		else if (c == 0xF0) {
			need = 3;
			lo = 0x90;	/* below: overlong */
		} else if (c >= 0xF1 && c <= 0xF3)
			need = 3;
		else if (c == 0xF4) {
			need = 3;
			hi = 0x8F;	/* above: past U+10FFFF */
		} else
			return i;	/* 80..C1 (stray or overlong), F5..FF */
		if (len - i <= need)
			return i;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (k = 2; k <= need; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return i;
		i += need + 1;
	}
	return len;
}

/*
 * The nesting depth of [ and { outside strings, stopping as soon as it
 * passes max: a frame of a million '[' costs one pass, no recursion.  The
 * string rules are cJSON's (a '"' opens, a '\\' escapes the next byte), so
 * both see the same structure.  Also refuses a "\u0000" escape: cJSON would
 * cut the string there, and a type or URL that is not what was sent is
 * worse than a dropped frame.  0, or -1 with the reason in err.
 */
static int
frame_scan(const char *s, size_t len, int max, char *err, size_t errlen)
{
	size_t i;
	int depth = 0, instr = 0;

	for (i = 0; i < len; i++) {
		if (instr) {
			if (s[i] == '"')
				instr = 0;
			else if (s[i] == '\\' && i + 1 < len) {
				if (len - i >= 6 && s[i + 1] == 'u' &&
				    memcmp(s + i + 2, "0000", 4) == 0) {
					log_reason(err, errlen, "\\u0000 in a "
					    "string at byte %zu", i);
					return -1;
				}
				i++;
			}
			continue;
		}
		switch (s[i]) {
		case '"':
			instr = 1;
			break;
		case '[':
		case '{':
			if (++depth > max) {
				log_reason(err, errlen, "JSON nested deeper "
				    "than %d levels", max);
				return -1;
			}
			break;
		case ']':
		case '}':
			depth--;	/* unbalanced: cJSON says so */
			break;
		}
	}
	return 0;
}

static int
frame_type_ok(const char *s)
{
	size_t n;

	n = strspn(s, "abcdefghijklmnopqrstuvwxyz_");
	return n >= 1 && n <= FRAME_TYPE_MAX && s[n] == '\0';
}

/* An optional URL member: absent, null or "" all mean "not given" (the
 * service's serializer is not known to omit empty fields).  0 or -1. */
static int
frame_opt_string(const cJSON *o, const char *key, const char **out,
    char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	*out = NULL;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || v->valuestring == NULL) {
		log_reason(err, errlen, "%s is not a string", key);
		return -1;
	}
	if (*v->valuestring != '\0')
		*out = v->valuestring;
	return 0;
}

/* line checked (size, UTF-8, no NUL, nesting) and parsed: a JSON object,
 * or NULL with the reason in err. */
static cJSON *
frame_parse_json(const char *line, size_t len, char *err, size_t errlen)
{
	const char *end = NULL, *nul;
	char *copy;
	cJSON *json;
	size_t bad;

	if (line == NULL) {
		log_reason(err, errlen, "no frame");
		return NULL;
	}
	if (len > FRAME_MAX_LEN) {
		log_reason(err, errlen, "frame of %zu bytes, the limit is %d",
		    len, FRAME_MAX_LEN);
		return NULL;
	}
	if ((bad = frame_utf8_check((const unsigned char *)line, len)) < len) {
		log_reason(err, errlen, "invalid UTF-8 at byte %zu", bad);
		return NULL;
	}
	/* cJSON stops at a NUL and would accept "{...}\0garbage". */
	if ((nul = memchr(line, '\0', len)) != NULL) {
		log_reason(err, errlen, "NUL byte at byte %zu",
		    (size_t)(nul - line));
		return NULL;
	}
	if (frame_scan(line, len, FRAME_MAX_DEPTH, err, errlen) == -1)
		return NULL;

	/* cJSON's "require null terminated" wants the terminator inside the
	 * length it is given; the line is a slice of a message, so copy it. */
	if ((copy = malloc(len + 1)) == NULL) {
		log_reason(err, errlen, "out of memory");
		return NULL;
	}
	memcpy(copy, line, len);
	copy[len] = '\0';
	json = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
	if (json == NULL)
		log_reason(err, errlen, "not JSON (error at byte %zu)",
		    end != NULL && end >= copy && end <= copy + len ?
		    (size_t)(end - copy) : (size_t)0);
	else if (!cJSON_IsObject(json)) {
		log_reason(err, errlen, "not a JSON object");
		cJSON_Delete(json);
		json = NULL;
	}
	free(copy);
	return json;
}

/* The action's id: an integer a double holds exactly.  0 or -1. */
static int
frame_action_id(const cJSON *json, int64_t *out, char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, "id");
	double id;

	if (v == NULL) {
		log_reason(err, errlen, "no id");
		return -1;
	}
	if (!cJSON_IsNumber(v)) {
		log_reason(err, errlen, "id is not a number");
		return -1;
	}
	id = v->valuedouble;
	if (!isfinite(id) || id != floor(id)) {
		log_reason(err, errlen, "id is not an integer");
		return -1;
	}
	/* From 2^53 on a double no longer tells n from n + 1 (the text
	 * 9007199254740993 reads as ...992): such an id could not be echoed
	 * back as sent, so it is refused, not rounded. */
	if (id <= 0 || id >= FRAME_ID_LIMIT) {
		log_reason(err, errlen, "id out of range (1 .. 2^53-1)");
		return -1;
	}
	*out = (int64_t)id;
	return 0;
}

/* A required string member; NULL (told in err) when absent or not one. */
static const char *
frame_string(const cJSON *json, const char *key, char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, key);

	if (v == NULL) {
		log_reason(err, errlen, "no %s", key);
		return NULL;
	}
	if (!cJSON_IsString(v) || v->valuestring == NULL) {
		log_reason(err, errlen, "%s is not a string", key);
		return NULL;
	}
	return v->valuestring;
}

/* action_type and status into a.  0 or -1. */
static int
frame_action_kind(const cJSON *json, struct action *a, char *err,
    size_t errlen)
{
	const char *s;

	if ((s = frame_string(json, "action_type", err, errlen)) == NULL)
		return -1;
	/* It becomes part of file and event names: no '/', '.', capitals. */
	if (!frame_type_ok(s)) {
		log_reason(err, errlen, "action_type is not [a-z_]{1,%d}",
		    FRAME_TYPE_MAX);
		return -1;
	}
	a->type = s;
	if ((s = frame_string(json, "status", err, errlen)) == NULL)
		return -1;
	if (strcmp(s, "ready") == 0)
		a->status = ACTION_READY;
	else if (strcmp(s, "cancelled") == 0)
		a->status = ACTION_CANCELLED;
	else
		a->status = ACTION_OTHER;
	return 0;
}

int
frame_parse_action(const char *line, size_t len, struct action *a,
    char *err, size_t errlen)
{
	const cJSON *v;
	cJSON *json;

	memset(a, 0, sizeof(*a));
	log_reason(err, errlen, "%s", "");
	if ((json = frame_parse_json(line, len, err, errlen)) == NULL)
		goto fail;
	if (frame_action_id(json, &a->id, err, errlen) == -1 ||
	    frame_action_kind(json, a, err, errlen) == -1)
		goto fail;
	if (frame_opt_string(json, "motion_url", &a->motion_url, err,
	    errlen) == -1 ||
	    frame_opt_string(json, "endpoint", &a->endpoint, err,
	    errlen) == -1)
		goto fail;

	/* An object, or a list whose first element counts (PROTOCOL 4.1);
	 * anything else means no per-shot settings. */
	v = cJSON_GetObjectItemCaseSensitive(json, "settings");
	if (cJSON_IsArray(v))
		v = cJSON_GetArrayItem(v, 0);
	a->settings = cJSON_IsObject(v) ? v : NULL;

	a->json = json;
	return 0;
fail:
	cJSON_Delete(json);
	memset(a, 0, sizeof(*a));
	return -1;
}

void
frame_action_free(struct action *a)
{
	if (a == NULL)
		return;
	cJSON_Delete(a->json);
	memset(a, 0, sizeof(*a));
}
