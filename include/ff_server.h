/*
 * ff_server: the FlashForge printer on the network, on the shared loop
 * (evloop.h): TCP command port (lws raw sockets), HTTP API (lws HTTP
 * server), UDP discovery (adopted datagram sockets).  It owns the printer
 * model (ff_model.h); every callback runs on the loop thread, so the
 * model needs no lock.  What is said on the wire is ff_proto, ff_http and
 * ff_disco's business; this module only moves bytes and bounds them.
 */
#ifndef GFE_FF_SERVER_H
#define GFE_FF_SERVER_H

struct config;
struct ff_server;
struct evloop;

/* Binds every listener (before the loop runs); NULL after logging why,
 * e.g. a port in use.  ff_server_free() only after evloop_free(). */
struct ff_server	*ff_server_new(struct evloop *ev, const struct config *cf);
void			 ff_server_free(struct ff_server *s);

#endif
