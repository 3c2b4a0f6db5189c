/*
 * ff_state: what a FlashForge printer keeps across restarts: the name set
 * by M610 or reName_cmd (FLASHFORGE.md: "M610 <name> renames (persisted)").
 *
 * One small JSON file, written to a temporary file in the same folder,
 * flushed and renamed into place, so a crash leaves the old file or the new
 * one, never half of one.  The file names the printer it belongs to (model,
 * serial and the configured name): a rename applies while those are
 * unchanged, so editing `name:` in the configuration wins, and printers
 * configured differently in one folder do not take each other's names.
 */
#ifndef GFE_FF_STATE_H
#define GFE_FF_STATE_H

#include <stddef.h>

#define FF_STATE_MAX	4096	/* bytes of a state file read, at most */

/* Who the state belongs to: the configuration's values. */
struct ff_state_key {
	const char	*model;		/* "adventurer3", ... */
	const char	*serial;
	const char	*name;		/* the configured name */
};

/*
 * Reads path.  0: the file holds this printer's rename, copied to name
 * (len bytes, NUL-terminated); 1: none applies (no file, or another
 * printer's); -1 after logging why the file is unusable.
 */
int	 ff_state_load(const char *path, const struct ff_state_key *k,
	    char *name, size_t len);
/* Writes path atomically with name as k's rename; -1 after logging. */
int	 ff_state_save(const char *path, const struct ff_state_key *k,
	    const char *name);

#endif
