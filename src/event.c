/*
 * event: see event.h.  The frames follow the key order of the captures in
 * PROTOCOL.md 4.2.  Integer members (id, timestamp, action_id, current,
 * total) are printed from the integers themselves as raw JSON, not through
 * cJSON's doubles, so a byte count past 2^53 is still exact.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"

#define EVENT_FIRST_ID		32	/* the first frame id a machine sends */
#define EVENT_BOOT_CS		3800	/* centiseconds a real machine has
					 * been up when it sends its first */
#define EVENT_UNSET		INT64_MIN

/* One counter for every frame kind and every thread: the service sees one
 * rising sequence, as from the real firmware. */
static atomic_int_fast64_t	event_next_id = EVENT_FIRST_ID;
/* CLOCK_MONOTONIC at event_init(), in centiseconds; EVENT_UNSET before. */
static atomic_int_fast64_t	event_start_cs = EVENT_UNSET;

static int64_t
event_now_cs(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return (int64_t)ts.tv_sec * 100 + ts.tv_nsec / 10000000;
}

void
event_init(void)
{
	/* Only the clock restarts: ids keep rising for the whole process,
	 * so a second init (tests) never hands out an id twice. */
	atomic_store(&event_start_cs, event_now_cs());
}

static int64_t
event_timestamp(void)
{
	int_fast64_t start = atomic_load(&event_start_cs);
	int64_t now = event_now_cs();

	/* A frame built before event_init() starts the clock itself rather
	 * than reporting centiseconds since the machine's own boot. */
	if (start == EVENT_UNSET &&
	    atomic_compare_exchange_strong(&event_start_cs, &start, now))
		start = now;	/* on failure, start holds the winner's */
	if (now < start)
		now = start;
	return now - start + EVENT_BOOT_CS;
}

static int
event_add_int(cJSON *o, const char *key, int64_t v)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRId64, v);
	return cJSON_AddRawToObject(o, key, num) != NULL ? 0 : -1;
}

static int
event_add_uint(cJSON *o, const char *key, uint64_t v)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRIu64, v);
	return cJSON_AddRawToObject(o, key, num) != NULL ? 0 : -1;
}

/* A new object holding the members every frame starts with. */
static cJSON *
event_head(const char *type)
{
	cJSON *o;

	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	if (event_add_int(o, "id", atomic_fetch_add(&event_next_id, 1)) == -1 ||
	    event_add_int(o, "timestamp", event_timestamp()) == -1 ||
	    cJSON_AddStringToObject(o, "type", type) == NULL ||
	    cJSON_AddNumberToObject(o, "version", 1) == NULL) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* Prints o unformatted plus "\n" and frees o. */
static char *
event_print(cJSON *o)
{
	char *s, *line = NULL;
	size_t n;

	if (o == NULL)
		return NULL;
	if ((s = cJSON_PrintUnformatted(o)) == NULL)
		goto done;
	n = strlen(s);
	if ((line = malloc(n + 2)) == NULL)
		goto done;
	memcpy(line, s, n);
	line[n] = '\n';
	line[n + 1] = '\0';
done:
	free(s);
	cJSON_Delete(o);
	return line;
}

/* The members an extra can never replace: the frame's identity. */
static int
event_core_member(const char *key)
{
	static const char *const core[] = {
		"id", "timestamp", "type", "version", "action_id", "event"
	};
	size_t i;

	for (i = 0; i < sizeof(core) / sizeof(core[0]); i++)
		if (strcmp(key, core[i]) == 0)
			return 1;
	return 0;
}

static int
event_add_extra(cJSON *o, const cJSON *extra)
{
	const cJSON *c;
	cJSON *dup;

	if (extra == NULL || !cJSON_IsObject(extra))
		return 0;
	cJSON_ArrayForEach(c, extra) {
		if (c->string == NULL || event_core_member(c->string))
			continue;
		if ((dup = cJSON_Duplicate(c, 1)) == NULL)
			return -1;
		/* "level" may be changed (a warning event), in place so the
		 * key order stays; any other key already there (a repeated
		 * key in extra) keeps its first value. */
		if (strcmp(c->string, "level") == 0) {
			if (!cJSON_ReplaceItemInObjectCaseSensitive(o, "level",
			    dup)) {
				cJSON_Delete(dup);
				return -1;
			}
			continue;
		}
		if (cJSON_GetObjectItemCaseSensitive(o, c->string) != NULL) {
			cJSON_Delete(dup);
			continue;
		}
		if (!cJSON_AddItemToObject(o, c->string, dup)) {
			cJSON_Delete(dup);
			return -1;
		}
	}
	return 0;
}

char *
event_frame(int64_t action_id, const char *event, const cJSON *extra)
{
	cJSON *o;

	if (event == NULL)
		return NULL;
	if ((o = event_head("event")) == NULL)
		return NULL;
	if ((action_id != EVENT_NO_ACTION &&
	    event_add_int(o, "action_id", action_id) == -1) ||
	    cJSON_AddStringToObject(o, "level", "INFO") == NULL ||
	    cJSON_AddStringToObject(o, "event", event) == NULL ||
	    event_add_extra(o, extra) == -1) {
		cJSON_Delete(o);
		return NULL;
	}
	return event_print(o);
}

char *
event_log_frame(const char *level, const char *msg)
{
	cJSON *o;

	if ((o = event_head("log")) == NULL)
		return NULL;
	if (cJSON_AddStringToObject(o, "log", msg != NULL ? msg : "") == NULL ||
	    cJSON_AddStringToObject(o, "level",
	    level != NULL ? level : "INFO") == NULL) {
		cJSON_Delete(o);
		return NULL;
	}
	return event_print(o);
}

char *
event_progress_frame(int64_t action_id, const char *progress,
    uint64_t current, uint64_t total, const char *units)
{
	cJSON *o;

	if (progress == NULL)
		return NULL;
	if ((o = event_head("progress")) == NULL)
		return NULL;
	/* current, units, total: the order of the capture in 4.2. */
	if (event_add_int(o, "action_id", action_id) == -1 ||
	    cJSON_AddStringToObject(o, "progress", progress) == NULL ||
	    event_add_uint(o, "current", current) == -1 ||
	    cJSON_AddStringToObject(o, "units",
	    units != NULL ? units : "bytes") == NULL ||
	    event_add_uint(o, "total", total) == -1) {
		cJSON_Delete(o);
		return NULL;
	}
	return event_print(o);
}
