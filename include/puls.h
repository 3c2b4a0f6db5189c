/*
 * puls: the Glowforge pulse (stepper) file, PROTOCOL.md 8.
 *
 * Pure decoding (header, step statistics) plus a streaming reader that takes
 * the bytes of a download as they arrive, gzip or plain (by magic), checks
 * the header and size bounds, counts steps and hands the plain bytes
 * (header + body) to a sink: memory stays bounded whatever the job's size.
 */
#ifndef GFE_PULS_H
#define GFE_PULS_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#define PULS_MAGIC_LEN		8	/* format byte, "GF1", u32 length */
#define PULS_MAX_TAGS		256
#define PULS_WARN_BODY		(32ULL * 1024 * 1024)	/* bytes: log a warning */
#define PULS_MAX_BODY		(128ULL * 1024 * 1024)	/* bytes: refuse past */

struct puls_tag {
	char		name[5];	/* 4 ASCII chars, NUL-terminated */
	uint32_t	value;
};

struct puls_header {
	uint8_t		format;		/* 0x80 seen */
	uint32_t	header_len;	/* bytes, magic included */
	size_t		ntags;
	struct puls_tag	tags[PULS_MAX_TAGS];
};

struct puls_stats {
	uint64_t	xp, xn, yp, yn, zp, zn;	/* step counts */
	uint64_t	le;			/* ticks with the laser enabled */
	uint64_t	lp;			/* laser power setting bytes */
};

/* 0: parsed; 1: need more bytes (len < header_len); -1: bad, reason in err. */
int	 puls_header_parse(const uint8_t *buf, size_t len,
	    struct puls_header *h, char *err, size_t errlen);
/* 0 and *v when the tag is present, -1 otherwise. */
int	 puls_header_get(const struct puls_header *h, const char *name,
	    uint32_t *v);
/* The job checks of PROTOCOL.md 8 (STfr, MCsn against serial, PDfm):
 * 0, or -1 with the reason in err. */
int	 puls_header_check(const struct puls_header *h, uint64_t serial,
	    char *err, size_t errlen);

/* ticks at stfr per second as "H:MM:SS.ffffff" (the .info run_time). */
void	 puls_run_time(uint64_t ticks, uint32_t stfr, char *buf, size_t len);

/* Adds the steps of a body chunk; any chunking gives the same result. */
void	 puls_stats_add(struct puls_stats *st, const uint8_t *body, size_t len);

/* The .info object of PROTOCOL.md 8: header_data, header_len, size,
 * run_time, stats. */
cJSON	*puls_info_json(const struct puls_header *h, uint64_t body_size,
	    const struct puls_stats *st);

/* Streaming reader. sink receives the plain bytes in order (header first);
 * a non-zero return from it aborts the stream (puls_stream_feed() -> -1). */
typedef int (*puls_sink_fn)(const void *buf, size_t len, void *arg);

struct puls_stream;

/* serial: this machine's serial (MCsn check); max_body: refuse past it. */
struct puls_stream *puls_stream_new(uint64_t serial, uint64_t max_body,
		    puls_sink_fn sink, void *sink_arg);
void	 puls_stream_free(struct puls_stream *s);
/* Announced body size (e.g. Content-Length), checked before the data. */
int	 puls_stream_expect(struct puls_stream *s, uint64_t declared_len);
/* 0, or -1 when the job is refused; the reason: puls_stream_error(). */
int	 puls_stream_feed(struct puls_stream *s, const void *buf, size_t len);
/* End of input: -1 on a truncated gzip stream or missing header. */
int	 puls_stream_finish(struct puls_stream *s);
const char *puls_stream_error(const struct puls_stream *s);
const struct puls_header *puls_stream_header(const struct puls_stream *s);
const struct puls_stats  *puls_stream_stats(const struct puls_stream *s);
uint64_t puls_stream_body_size(const struct puls_stream *s);
int	 puls_stream_compressed(const struct puls_stream *s);
/* Added: skips puls_header_check() (offline analysis of any machine's
 * job); the header must still parse.  Call before the first feed. */
void	 puls_stream_nocheck(struct puls_stream *s);
/* Added: the sink counts (gf-puls, puls_trace_stats()): the stream's own
 * puls_stream_stats() stay zero.  Call before the first feed. */
void	 puls_stream_nostats(struct puls_stream *s);

/* Job generation, for tests and gf-puls generate.  Writes a complete plain
 * pulse file (header with STfr, MCsn=0, PDfm=0; then the body) to sink. */
struct puls_gen_move {
	int32_t		dx, dy, dz;	/* steps, signed */
	int		laser;		/* laser enabled during the move */
};
struct puls_gen_params {
	uint32_t	stfr;		/* ticks per second, default 10000 */
	double		speed;		/* steps per second at cruise */
	double		accel;		/* steps per second^2 */
	uint8_t		power;		/* laser power byte (0..127) */
	uint32_t	serial;		/* MCsn; 0 = any machine */
};
int	 puls_generate(const struct puls_gen_params *p,
	    const struct puls_gen_move *moves, size_t nmoves,
	    puls_sink_fn sink, void *arg);

#endif
