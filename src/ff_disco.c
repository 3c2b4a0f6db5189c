/*
 * ff_disco: see ff_disco.h.
 *
 * Where FLASHFORGE.md is silent: the status word is 0 when ready and 1
 * otherwise; the modern event port (0x8E) is the HTTP API port, the one a
 * 5M client talks to next; bytes 0x80-0x83 (legacy) and 0x90-0x91
 * (modern) are zero.
 */
#include <string.h>

#include "ff_disco.h"
#include "ff_model.h"

static void
ff_disco_u16(unsigned char *buf, size_t off, uint16_t v)
{
	buf[off] = (unsigned char)(v >> 8);
	buf[off + 1] = (unsigned char)(v & 0xff);
}

/* Copies s into a field of len bytes, NUL-padded, keeping a final NUL. */
static void
ff_disco_str(unsigned char *buf, size_t off, size_t len, const char *s)
{
	size_t n = strlen(s);

	if (n > len - 1)
		n = len - 1;
	memcpy(buf + off, s, n);
	memset(buf + off + n, 0, len - n);
}

static int
ff_disco_is_probe(const void *probe, size_t len)
{
	size_t mlen = strlen(FF_DISCO_PROBE_MAGIC);

	if (len >= mlen && memcmp(probe, FF_DISCO_PROBE_MAGIC, mlen) == 0)
		return 1;
	return len <= FF_DISCO_PROBE_MAX;
}

size_t
ff_disco_reply(const struct ff_model *m, const void *probe, size_t len,
    unsigned char *buf, size_t bufsize)
{
	const struct ff_info *fi = ff_model_info(m);
	struct ff_status st;
	size_t rlen;

	if (probe == NULL && len > 0)
		return 0;
	if (!ff_disco_is_probe(probe, len))
		return 0;
	rlen = fi->disco_modern ? FF_DISCO_MODERN_LEN : FF_DISCO_LEGACY_LEN;
	if (buf == NULL || bufsize < rlen)
		return 0;

	ff_model_snapshot(m, &st);
	memset(buf, 0, rlen);
	ff_disco_str(buf, FF_DISCO_NAME, fi->disco_modern ?
	    FF_DISCO_MODERN_NAME_LEN : FF_DISCO_LEGACY_NAME_LEN,
	    ff_model_name(m));
	ff_disco_u16(buf, FF_DISCO_PORT, ff_model_tcp_port(m));
	ff_disco_u16(buf, FF_DISCO_VID, fi->vid);
	ff_disco_u16(buf, FF_DISCO_PID, fi->pid);
	ff_disco_u16(buf, FF_DISCO_STATUS, st.machine == FF_MACHINE_READY ?
	    FF_DISCO_READY : FF_DISCO_BUSY);
	if (fi->disco_modern) {
		ff_disco_u16(buf, FF_DISCO_PRODUCT, fi->product_type);
		ff_disco_u16(buf, FF_DISCO_EVENT_PORT, ff_model_http_port(m));
		ff_disco_str(buf, FF_DISCO_SERIAL, rlen - FF_DISCO_SERIAL,
		    ff_model_serial(m));
	}
	return rlen;
}
