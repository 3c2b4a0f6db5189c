/*
 * ff_proto: the FlashForge TCP 8899 text protocol, one struct ff_proto per
 * connection, with no sockets: bytes in, reply bytes out through a callback.
 *
 * A command is a line, optionally prefixed with '~', ended by "\n" or
 * "\r\n".  Every reply is "CMD <code> Received.\r\n", the command's lines,
 * then "ok\r\n" (M146: the captured bare "ok\n").  No login is needed for
 * anything: real printers answer status on a fresh connection.  Memory per
 * connection is the fixed line buffer; a reply is built, emitted and freed
 * within one command.
 */
#ifndef GFE_FF_PROTO_H
#define GFE_FF_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "ff_model.h"

#define FF_LINE_MAX	4096	/* bytes of a line before its "\n" */
#define FF_CODE_ECHO_MAX 64	/* bytes of an unknown code echoed back */

typedef void (*ff_emit_fn)(void *arg, const void *buf, size_t len);

struct ff_proto {
	size_t		 len;			/* bytes in line */
	char		 line[FF_LINE_MAX + 1];	/* + the parsers' NUL */
};

void	 ff_proto_init(struct ff_proto *p);
/*
 * Feeds received bytes: commands may be split across calls or several per
 * call.  For each complete command, emits its whole reply with one
 * emit(arg, ...) call.  Returns 0, or -1 when the client must be dropped: a
 * line longer than FF_LINE_MAX bytes (counting a '\r' before the '\n'), or
 * no memory for a reply.  Blank lines are ignored; binary junk is answered
 * as an unknown command.
 */
int	 ff_proto_feed(struct ff_proto *p, struct ff_model *m, const void *in,
	    size_t len, int64_t now_ms, ff_emit_fn emit, void *arg);

#endif
