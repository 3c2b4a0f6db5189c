/*
 * frame: what arrives from the service.  A WebSocket message may carry
 * several newline-delimited JSON objects; frame_split() cuts them apart and
 * frame_parse_action() checks one object's shape before anyone uses it.
 */
#ifndef GFE_FRAME_H
#define GFE_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#define FRAME_MAX_LEN	(1024 * 1024)	/* bytes; larger messages: close 1009 */
#define FRAME_MAX_DEPTH	64		/* JSON nesting accepted in an action */

/* Calls fn(line, len, arg) for every non-blank line of buf (without its
 * "\n" or "\r\n").  Returns the number of lines passed to fn. */
size_t	 frame_split(const char *buf, size_t len,
	    void (*fn)(const char *line, size_t len, void *arg), void *arg);

/* A message reassembled from WebSocket fragments; zero it to start. */
struct frame_buf {
	char	*buf;
	size_t	 len, cap;	/* bytes */
};

/* Appends len bytes (in may be NULL when len is 0: an empty fragment).
 * -1, buffer unchanged, past FRAME_MAX_LEN or out of memory. */
int	 frame_buf_append(struct frame_buf *fb, const void *in, size_t len);
void	 frame_buf_free(struct frame_buf *fb);

enum action_status { ACTION_READY, ACTION_CANCELLED, ACTION_OTHER };

/* A validated action; json owns every string pointer here. */
struct action {
	cJSON			*json;
	int64_t			 id;
	const char		*type;		/* action_type, [a-z_]{1,32} */
	enum action_status	 status;
	const char		*motion_url;	/* NULL when absent */
	const char		*endpoint;	/* NULL when absent */
	const cJSON		*settings;	/* per-shot object, or NULL */
};

/* 0 and a filled *a (free with frame_action_free), or -1 with a one-line
 * reason in err.  Rejects: invalid UTF-8, nesting past FRAME_MAX_DEPTH, not
 * an object, id not a positive integer, action_type not a short lower-case
 * word, status not a string. */
int	 frame_parse_action(const char *line, size_t len, struct action *a,
	    char *err, size_t errlen);
void	 frame_action_free(struct action *a);

#endif
