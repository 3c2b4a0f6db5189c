/*
 * emulator: the daemon's life: run the configured machines (the Glowforge:
 * sign in, keep the status socket up with a fresh sign-in per connection
 * and back-off between attempts, dispatch actions; the FlashForge: its
 * listeners) and handle signals (TERM/INT stop, HUP reloads the config,
 * USR1 presses the button).
 */
#ifndef GFE_EMULATOR_H
#define GFE_EMULATOR_H

struct config;

/* Runs until SIGTERM/SIGINT; returns the process exit status.  *cf is
 * replaced by a reload; foreground and verbose pick the log level again. */
int	 emulator_run(struct config *cf, int foreground, int verbose);

#endif
