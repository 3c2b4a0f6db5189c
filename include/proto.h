/*
 * proto: the Glowforge protocol's defaults (PROTOCOL.md): what the
 * reference machine sends where the configuration says nothing, and what
 * gf-cloud-sim offers.  One place, so the daemon and the simulator can
 * never disagree about them.
 */
#ifndef GFE_PROTO_H
#define GFE_PROTO_H

#include <stddef.h>

/* MCov, the User-Agent's version and the firmware /update/current offers.
 * machine-settings.csv's MCov row is the settings report's data: it holds
 * the same string. */
#define PROTO_FW_VERSION	"2.6.0-2228"

/* The firmware a machine runs: its FACTORY_FIRMWARE fw_version, or the
 * default (configured: NULL or ""). */
static inline const char *
proto_fw_version(const char *configured)
{
	return configured != NULL && *configured != '\0' ? configured :
	    PROTO_FW_VERSION;
}

#endif
