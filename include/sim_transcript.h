/*
 * sim_transcript: what went over the wire between the sim and the machine,
 * as JSON lines {"t": ms, "dir": ..., ...}: every frame and HTTP request,
 * with secrets redacted.  It also keeps the secrets the sim handed out
 * (passwords, tokens), so the player and the load driver can check that
 * none comes back on the wire.  Single-threaded.
 */
#ifndef GFE_SIM_TRANSCRIPT_H
#define GFE_SIM_TRANSCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define SIM_SECRETS_MAX		4096	/* secrets tracked that are not
					 * 64-hex tokens (no cap on those) */

struct sim_transcript;

/* path may be NULL (no transcript, secrets still tracked); secrets_path,
 * when not NULL, gets each registered secret on a line of its own (mode
 * 0600) for the harness's leak check.  NULL on error (logged). */
struct sim_transcript *sim_transcript_new(const char *path,
		    const char *secrets_path);
void		 sim_transcript_free(struct sim_transcript *tr);
/* A string that must never be written anywhere: replaced by "<redacted>"
 * in the transcript, and looked for in every machine frame.  -1 when the
 * table is full (the caller refuses what would have created it). */
int		 sim_transcript_secret(struct sim_transcript *tr,
		    const char *secret);
/* 1 when text contains a registered secret. */
int		 sim_transcript_leaks(const struct sim_transcript *tr,
		    const char *text, size_t len);
/* Writes obj's members after "t" and "dir"; obj stays the caller's. */
void		 sim_transcript_record(struct sim_transcript *tr,
		    int64_t t_ms, const char *dir, const cJSON *obj);
/* A frame sent to the machine: the parsed object, or the raw text. */
void		 sim_transcript_frame(struct sim_transcript *tr,
		    int64_t t_ms, const char *dir, const char *text,
		    size_t len);

/* 1 when s[0..len) is valid UTF-8. */
int		 sim_transcript_utf8_valid(const char *s, size_t len);

#endif
