/* synthetic_actions.h: a synthetic temporal-action dataset whose labels need
 * temporal order. Eight classes in four mirror-time pairs: a textured shape
 * moving left/right, up/down, rotating clockwise/counter-clockwise, growing/
 * shrinking, over a random textured background, at random speeds. The
 * second class of each pair is the first played backwards: both draw their
 * parameters from the same symmetric distribution and render the same
 * motion, one in reversed frame order, so the set of frames (and any
 * average over frames) cannot tell a pair apart; only order can. */
#ifndef STACL_SYNTHETIC_ACTIONS_H
#define STACL_SYNTHETIC_ACTIONS_H

#include <stdint.h>

#define STACL_SYNTH_CLASSES 8
extern const char *const stacl_synth_class_names[STACL_SYNTH_CLASSES];
/* A second, easier set with the same pairing (2k forward, 2k + 1 the same
 * clip reversed): brightening/darkening, fading in/fading out (a shape's
 * opacity), growing/shrinking, moving right/left, bright shapes on darker
 * backgrounds. Each pair's frame set
 * differs in a global way a random frozen backbone can still see, so a
 * demo measures temporal order rather than appearance recognition. */
extern const char *const stacl_synth_simple_names[STACL_SYNTH_CLASSES];
void stacl_synth_render_simple(int label, uint64_t seed, int w, int h, int frames, uint8_t *rgb);

/* Renders `frames` RGB24 frames (w x h, packed, frame after frame) of class
 * `label` (0..7) for sample seed `seed`; the same arguments give the same
 * pixels. rgb holds frames*w*h*3 bytes. */
void stacl_synth_render(int label, uint64_t seed, int w, int h, int frames, uint8_t *rgb);

#endif
