/*
 * ff_disco: answers FlashForge UDP discovery probes, with no sockets.
 *
 * Clients find printers two ways: a 20-byte probe beginning "www.usr"
 * broadcast to port 48899, and an empty or short datagram to the multicast
 * group 225.0.0.9:19000 (or 8899).  The reply layout follows the model:
 * the legacy 140 bytes (Finder, Adventurer 3 and 4) or the modern 276 bytes
 * (Adventurer 5M, 5M Pro).  Integers are big-endian u16; strings are
 * NUL-padded and cut to leave at least one NUL.
 */
#ifndef GFE_FF_DISCO_H
#define GFE_FF_DISCO_H

#include <stddef.h>
#include <stdint.h>

#include "ff_model.h"

#define FF_DISCO_LEGACY_LEN	140
#define FF_DISCO_MODERN_LEN	276

/* Offsets (bytes) of both layouts. */
#define FF_DISCO_NAME		0x00
#define FF_DISCO_LEGACY_NAME_LEN 0x80	/* 0x80-0x83 stay zero */
#define FF_DISCO_MODERN_NAME_LEN 0x84
#define FF_DISCO_PORT		0x84	/* the TCP command port */
#define FF_DISCO_VID		0x86
#define FF_DISCO_PID		0x88
#define FF_DISCO_STATUS		0x8a
#define FF_DISCO_PRODUCT	0x8c	/* modern only */
#define FF_DISCO_EVENT_PORT	0x8e	/* modern only */
#define FF_DISCO_SERIAL		0x92	/* modern only, to the end */

/* Status values at FF_DISCO_STATUS (not documented; ours). */
#define FF_DISCO_READY		0
#define FF_DISCO_BUSY		1	/* printing, paused or homing */

/* UDP ports printers answer discovery from: 8899, 19000, 48899. */
#define FF_DISCO_PORTS		8899, 19000, 48899

/*
 * Given a datagram received (probe, len, any length and content) on the
 * legacy port or the multicast group, writes this model's reply into buf
 * and returns its length; 0 means buf is smaller than the reply.  The
 * status is the model's as last advanced: call ff_model_advance() first
 * for the current one.
 */
size_t	 ff_disco_reply(const struct ff_model *m, const void *probe,
	    size_t len, unsigned char *buf, size_t bufsize);

/*
 * 1 if a datagram from src_port comes from a printer, not a client: the
 * port is one printers answer from (FF_DISCO_PORTS) or one of ours (n
 * ports, 0s ignored).  Such a datagram is a reply (or spoofed to look
 * like one) and must not be answered, or two printers, or one printer and
 * itself, would answer each other for ever.  Every client in FLASHFORGE.md
 * probes from another port (18001-18003 or an ephemeral one).
 */
int	 ff_disco_from_printer(uint16_t src_port, const uint16_t *ours,
	    size_t n);

#endif
