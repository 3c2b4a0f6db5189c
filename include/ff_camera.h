/*
 * ff_camera: the FlashForge's camera, an MJPEG stream
 * (multipart/x-mixed-replace) at http://<bind>:<camera_port>/?action=stream,
 * the URL /detail's cameraStreamUrl gives.  Frames are the built-in camera
 * drawing (camera.h): the bed, with the current job's progress as a bar.
 *
 * Bounded: at most FF_CAMERA_VIEWERS viewers (more get 503) and 32
 * connections of any kind (more are closed at once); one frame is
 * encoded per FF_CAMERA_FRAME_MS and shared by every viewer; a viewer whose
 * socket is still full when the next frame is due skips that frame, so
 * nothing piles up, and one that takes no frame for 30 s is dropped.  While the camera is off (streamCtrl_cmd close) the
 * port is closed (connections are refused) and open streams end.
 */
#ifndef GFE_FF_CAMERA_H
#define GFE_FF_CAMERA_H

#include <stdint.h>

#define FF_CAMERA_VIEWERS	4	/* streams at once */
#define FF_CAMERA_FRAME_MS	250	/* ms between frames: 4 a second */

struct ff_camera;
struct ff_model;
struct evloop;

/* Listens on bind:port (before the loop runs); NULL after logging why.
 * The model must outlive the camera. */
struct ff_camera	*ff_camera_new(struct evloop *ev, struct ff_model *m,
			    const char *bind, int port);
/* After the model's camera state may have changed (streamCtrl_cmd):
 * closes the port when off, opens it again when on.  NULL: nothing. */
void			 ff_camera_sync(struct ff_camera *c);
/* After evloop_free(): the vhost went with the context. */
void			 ff_camera_free(struct ff_camera *c);
/* Before the loop runs only: destroys the vhost too. */
void			 ff_camera_abort(struct ff_camera *c);

#endif
