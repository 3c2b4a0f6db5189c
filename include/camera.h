/*
 * camera: the JPEG frames the emulated cameras "take" (PROTOCOL.md 7).  The
 * reference emulator's frame files from image_src_dir when present, else
 * frames drawn and JPEG-encoded at run time, so no image file is needed.
 */
#ifndef GFE_CAMERA_H
#define GFE_CAMERA_H

#include <stddef.h>
#include <stdint.h>

enum camera_which { CAMERA_LID, CAMERA_HEAD };

struct camera_shot {
	enum camera_which	 which;
	int			 homing_stage;	/* lid: 1..4 while homing, else 0 */
	int			 laser_on;	/* head: HCil > 0 */
	const char		*thickness;	/* head: material, e.g. ".230" */
};

/*
 * A frame taken.  A built-in frame points into the camera's cache, kept
 * for the process's life and shared by every shot (a fleet's thousands of
 * lid_image uploads in flight would otherwise hold a 217 KB copy each);
 * a frame read from a file is the taker's own, in own.
 */
struct camera_frame {
	const uint8_t	*data;		/* the JPEG, or NULL */
	size_t		 len;		/* bytes */
	uint8_t		*own;		/* what camera_frame_free() frees */
};

/* 0 and the frame in *f (camera_frame_free() it), or -1 (logged; *f
 * empty).  src_dir may be NULL.  name, when not NULL, gets a short
 * description ("HOME_2.jpg" or "built-in lid, homing stage 2") for the
 * log. */
int	 camera_take(const char *src_dir, const struct camera_shot *shot,
	    struct camera_frame *f, char *name, size_t namelen);
/* Frees what the frame owns and empties it; an empty frame is fine. */
void	 camera_frame_free(struct camera_frame *f);

/* The built-in lid frame with a job's progress (1..100 %) as a bar under
 * the bed: the FlashForge's camera.  As camera_take() otherwise. */
int	 camera_take_progress(int pct, uint8_t **jpeg, size_t *len);

#endif
