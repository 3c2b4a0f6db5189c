/*
 * event: builds the machine -> service frames of PROTOCOL.md 4.2.
 * Every frame gets the next id of one process-wide counter (starting at 32)
 * and a timestamp in centiseconds since event_init() plus 3800.
 * Returned strings are malloc'ed, newline-terminated JSON objects.
 */
#ifndef GFE_EVENT_H
#define GFE_EVENT_H

#include <stdint.h>
#include <cjson/cJSON.h>

#define EVENT_NO_ACTION	(-1)	/* action_id for events not tied to one */

void	 event_init(void);
/* extra: members copied onto the event (may be NULL). */
char	*event_frame(int64_t action_id, const char *event, const cJSON *extra);
char	*event_log_frame(const char *level, const char *msg);
char	*event_progress_frame(int64_t action_id, const char *progress,
	    uint64_t current, uint64_t total, const char *units);

#endif
