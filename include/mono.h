/*
 * mono: the monotonic clock, for every timeout and deadline in the daemon.
 * Timed waits must not stretch or shrink when the wall clock is set.
 */
#ifndef GFE_MONO_H
#define GFE_MONO_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds since an arbitrary start. */
int64_t	 mono_now_ms(void);
/* The CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait() on a
 * condition variable made by mono_cond_init(). */
void	 mono_deadline(struct timespec *ts, int64_t ms);
/* A condition variable whose timed waits use CLOCK_MONOTONIC. */
void	 mono_cond_init(pthread_cond_t *cond);

#endif
