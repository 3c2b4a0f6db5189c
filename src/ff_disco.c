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

/*
 * Every datagram is a probe (FLASHFORGE.md: "answer every datagram (any
 * length)"): clients send empty ones, 8 bytes, 16 hex characters,
 * "discover" or the 20-byte "www.usr" probe, and nothing says a printer
 * looks at the content.  The reply's size is the model's, whatever came
 * in, so a long datagram gets no more than a probe would: one reply per
 * datagram, output bounded by input as on a real printer.  What keeps two
 * printers from answering each other for ever is the sender's port (see
 * ff_disco_from_printer()), not the content.
 */
int
ff_disco_from_printer(uint16_t src_port, const uint16_t *ours, size_t n)
{
	static const uint16_t known[] = { FF_DISCO_PORTS };
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (src_port == known[i])
			return 1;
	for (i = 0; i < n; i++)
		if (ours[i] != 0 && src_port == ours[i])
			return 1;
	return 0;
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
