/*
 * sim_uvpoll: gf-cloud-sim's own uv_poll_start() and uv_poll_stop(),
 * exported by its executable so that lws' libuv plugin calls them: they
 * skip the calls that would leave a handle as it is (each costs libuv an
 * epoll_ctl() DEL and ADD) and pass the others on to libuv.  See
 * sim_uvpoll.c for why.
 */
#ifndef GFE_SIM_UVPOLL_H
#define GFE_SIM_UVPOLL_H

#include <stdint.h>

/* Calls skipped since the start: the summary's proof that lws' calls
 * reach these (0 under load means the export is lost). */
uint64_t	 sim_uvpoll_skipped(void);

#endif
