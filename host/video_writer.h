/* video_writer.h: RGB24 frames to a video file through libavcodec +
 * libavformat, for the synthetic datasets and tests that need videos made
 * without the ffmpeg CLI. The container follows the file extension. */
#ifndef STACL_VIDEO_WRITER_H
#define STACL_VIDEO_WRITER_H

#include <stdint.h>

#include "stacl.h"

typedef struct stacl_video_writer stacl_video_writer;

/* codec: "h264" (libx264), "mjpeg", "ffv1", "mpeg4", "vp9" (libvpx-vp9).
 * Encodes with one thread and fixed settings, so the same frames give the
 * same bytes. The file appears (renamed from a temporary) on close. */
stacl_status stacl_video_writer_open(stacl_video_writer **out, const char *path, const char *codec, int width,
                                     int height, int fps);
stacl_status stacl_video_writer_add(stacl_video_writer *w, const uint8_t *rgb);
/* Flushes the encoder, writes the trailer, renames into place, frees. */
stacl_status stacl_video_writer_close(stacl_video_writer *w);
/* Abandons the file (and the temporary) and frees; NULL is a no-op. */
void stacl_video_writer_free(stacl_video_writer *w);

#endif
