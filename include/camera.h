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

/* 0 and a malloc'ed JPEG in *jpeg (caller frees), or -1 (logged).
 * src_dir may be NULL.  name, when not NULL, gets a short description
 * ("HOME_2.jpg" or "built-in lid, homing stage 2") for the log. */
int	 camera_take(const char *src_dir, const struct camera_shot *shot,
	    uint8_t **jpeg, size_t *len, char *name, size_t namelen);

/* The built-in lid frame with a job's progress (1..100 %) as a bar under
 * the bed: the FlashForge's camera.  As camera_take() otherwise. */
int	 camera_take_progress(int pct, uint8_t **jpeg, size_t *len);

#endif
