/*
 * mlog: log lines about one machine.  In a fleet of more than one, each
 * line starts with the machine's label and its INFO lines go out at DEBUG
 * (a fleet summary line says what they would); a single machine's lines
 * are exactly as they always were.
 *
 * The label is never the serial: the serial is half of the machine's
 * login (PROTOCOL.md 2) and never goes into a log.  It is the machine's
 * hostname when the fleet gives one, else "m<index>", its position in the
 * whole fleet (the same in every shard).
 */
#ifndef GFE_MLOG_H
#define GFE_MLOG_H

#include "log.h"

#define MLOG_LABEL_MAX	72	/* bytes: a hostname (63), ": ", NUL */

struct mlog {
	char	 prefix[MLOG_LABEL_MAX];	/* "" or "<label>: " */
	int	 info_pri;		/* LOG_INFO, or LOG_DEBUG in a fleet */
	const char *label;		/* "" or the label alone */
};

/* One machine's line at pri (LOG_INFO goes out at lg's info_pri); e: 1
 * to add errno's text, as log_warn() does. */
#define MLOG(lg, pri, e, fmt, ...)					\
	log_emit((pri) == LOG_INFO ? (lg)->info_pri : (pri), (e),	\
	    __FILE__, __func__, "%s" fmt, (lg)->prefix, ##__VA_ARGS__)

/* A single machine's: no prefix, INFO at INFO. */
extern const struct mlog mlog_single;

#endif
