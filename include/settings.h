/*
 * settings: the machine settings table (generated at build time from
 * src/machine-settings.csv) and the report of PROTOCOL.md 6.
 */
#ifndef GFE_SETTINGS_H
#define GFE_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

enum settings_type { SETTINGS_INT, SETTINGS_FLOAT, SETTINGS_STR };

struct settings_row {
	char			 code[5];	/* e.g. "LLvl" */
	enum settings_type	 type;
	int			 reported;	/* part of the report */
	const char		*defval;	/* as in the CSV; "" when none */
	const char		*min, *max;	/* "" when none */
};

extern const struct settings_row settings_table[];
extern const size_t settings_table_len;

/* NULL when the code is not in the table. */
const struct settings_row *settings_find(const char *code);

/* What the report overrides (PROTOCOL.md 6); NULL strings keep defaults. */
struct settings_overrides {
	int64_t		 action_id;	/* SAid */
	uint64_t	 serial;	/* MCsn */
	const char	*fw_version;	/* MCov */
	const char	*app_version;	/* MCdv */
	const char	*head_firmware;	/* HEfv */
	const char	*head_id;	/* HEid */
	const char	*head_serial;	/* HEsn */
	int64_t		 now;		/* MCdt, unix seconds; 0: time(NULL) */
};

/* A new {CODE: value, ...} object of every reported row, typed per the
 * table, with the overrides applied (ov NULL: none, MCdt now); NULL on
 * allocation failure.  An override string that is not of its row's type is
 * logged and the default is reported instead. */
cJSON	*settings_report(const struct settings_overrides *ov);

/* The same report as compact JSON text, byte for byte what
 * cJSON_PrintUnformatted(settings_report(ov)) gives, for a frame to carry
 * as a raw member.  Each default is printed once per process: a fleet
 * sends one full report per machine, and printing ~300 numbers each time
 * stalled its loop.  Malloc'ed; NULL on allocation failure. */
char	*settings_report_text(const struct settings_overrides *ov);

#endif
