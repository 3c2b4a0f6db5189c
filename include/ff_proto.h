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
#define FF_TCP_UPLOAD_MAX (1024ULL * 1024 * 1024)	/* bytes of one M28 file */
#define FF_BLOCK_DATA	4096	/* bytes of payload in an M28 block */
#define FF_BLOCK_HEAD	16	/* 5A5AA5A5, number, length, CRC32 */

typedef void (*ff_emit_fn)(void *arg, const void *buf, size_t len);

/* What the bytes that arrive are. */
enum ff_proto_mode {
	FF_MODE_LINE,		/* commands */
	FF_MODE_RAW,		/* M28's bytes, counted to up_size */
	FF_MODE_FRAMED,		/* M28's 4112-byte blocks */
	FF_MODE_SKIP,		/* a failed upload's rest, until M29 */
};

/* An upload over TCP (M28 .. M29): the bytes are counted, never kept. */
enum ff_upload_state {
	FF_UP_NONE,
	FF_UP_DONE,		/* every byte in: M29 stores it */
	FF_UP_BAD,		/* short, long or corrupt: M29 refuses */
};

struct ff_proto {
	size_t		 len;			/* bytes in line */
	char		 line[FF_LINE_MAX + 1];	/* + the parsers' NUL */
	enum ff_proto_mode mode;
	enum ff_upload_state up;
	char		 up_name[FF_NAME_MAX + 1];
	uint64_t	 up_size;		/* bytes M28 announced */
	uint64_t	 up_got;		/* bytes of file received */
	uint32_t	 blk_no;		/* next block expected */
	uint32_t	 blk_len, blk_crc;	/* the header's length and CRC */
	uint32_t	 crc;			/* of this block's payload so far */
	size_t		 blk_pos;		/* bytes of this block received */
	unsigned char	 head[FF_BLOCK_HEAD];
	char		 tail[8];		/* raw data: the line so far */
	size_t		 tail_len;
	int		 session;		/* logged in: M601 .. M602 */
};

void	 ff_proto_init(struct ff_proto *p);
/* The connection closed: ends its session on m, if it has one. */
void	 ff_proto_close(struct ff_proto *p, struct ff_model *m);
/*
 * Feeds received bytes: commands may be split across calls or several per
 * call.  For each complete command, emits its whole reply with one
 * emit(arg, ...) call.  Returns 0, or -1 when the client must be dropped: a
 * line longer than FF_LINE_MAX bytes (counting a '\r' before the '\n'), or
 * no memory for a reply.  Blank lines are ignored; binary junk is answered
 * as an unknown command.  Between M28 and the end of its data, bytes are
 * file data, never commands (see ff_proto.c).
 */
int	 ff_proto_feed(struct ff_proto *p, struct ff_model *m, const void *in,
	    size_t len, int64_t now_ms, ff_emit_fn emit, void *arg);

#endif
