/*
 * emulator: the daemon's life: sign in, keep the status socket up with a
 * fresh sign-in per connection and back-off between attempts, dispatch
 * actions, and handle signals (TERM/INT stop, USR1 presses the button).
 */
#ifndef GFE_EMULATOR_H
#define GFE_EMULATOR_H

struct config;

/* Runs until SIGTERM/SIGINT; returns the process exit status. */
int	 emulator_run(const struct config *cf);

#endif
