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

/* What the web page shows of the printer: read-only, no check code. */
struct ff_server_view {
	char		 model[24];	/* the config's model = value */
	char		 name[65];	/* FF_PRINTER_NAME_MAX + 1 */
	const char	*state;		/* "ready", "printing", "paused",
					 * "busy" (homing), "completed" */
	char		 file[256];	/* the job's file; "" when none */
	double		 progress;	/* 0..1 of the job */
	int		 clients;	/* command connections open */
};
/* The running printer (the last ff_server_new() not yet freed), now.
 * On the loop thread only, as every other use of the model: 0, or -1
 * when there is none. */
int			 ff_server_view(struct ff_server_view *v);

#endif
