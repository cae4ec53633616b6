/* video.h: video decoding through FFmpeg's libraries (libavformat,
 * libavcodec, libswscale): open any container/codec the installed FFmpeg
 * decodes, report metadata, count the frames that really decode, read frames
 * by decoded-frame index or by timestamp, as packed RGB24.
 *
 * Frame indices are positions in the decoder's output order (0 = the first
 * frame that decodes), the same numbering as `ffmpeg -i V -vf select=eq(n\,K)
 * -fps_mode passthrough`. Container frame counts are only estimates (AVI
 * indexes can list empty "dropped" entries: opencv-doc's tree.avi claims 444
 * and decodes 68), see stacl_video_count_frames. */
#ifndef STACL_VIDEO_H
#define STACL_VIDEO_H

#include <stdint.h>

#include "stacl.h"

typedef struct stacl_video stacl_video;

typedef struct stacl_video_info {
    int width, height;        /* decoded frame size (output RGB size) */
    double fps;               /* average frame rate; 0 if unknown */
    double duration_s;        /* stream or container duration; 0 if unknown */
    int64_t container_frames; /* what the container header claims; 0 if unknown */
    char codec[32];           /* "h264", "mjpeg", ... */
    char container[64];       /* "mov,mp4,m4a,3gp,3g2,mj2", "avi", ... */
} stacl_video_info;

/* Opens path and its best video stream's decoder. threads: decoder threads
 * (0 = FFmpeg's choice; 1 for loaders that decode many videos in parallel).
 * Errors name the file: IO (missing, unreadable), FORMAT (not a media file,
 * truncated header, no video stream), UNSUPPORTED (no decoder). */
stacl_status stacl_video_open(stacl_video **out, const char *path, int threads);
void stacl_video_free(stacl_video *v);
const stacl_video_info *stacl_video_get_info(const stacl_video *v);
const char *stacl_video_path(const stacl_video *v);

/* Frame count estimate without decoding: video packets that carry data, read
 * by demuxing (milliseconds; equals the decoded count for every intact file
 * tested, where the container's own count can be far off). */
stacl_status stacl_video_count_packets(stacl_video *v, int64_t *n);
/* Exact count: decodes the whole stream. FORMAT error when no frame decodes. */
stacl_status stacl_video_count_frames(stacl_video *v, int64_t *n);

/* Writes frame idx[k] to rgb + k*W*H*3 (indices in any order, repeats
 * allowed). Decodes from frame 0, or, after stacl_video_count_packets built
 * a timestamp index, from keyframes near runs of wanted frames (same bytes;
 * see docs/video.md). Stops after the largest index. When the
 * stream ends first, returns STACL_ERR_SHAPE with *decoded set to the number
 * of frames that did decode (the caller can resample on that count);
 * otherwise *decoded is the number decoded so far (may be NULL). */
stacl_status stacl_video_read_frames(stacl_video *v, const int64_t *idx, int n, uint8_t *rgb, int64_t *decoded);

/* Seeks so that the next stacl_video_next_frame returns the first frame
 * whose presentation time is >= seconds (seeks to the keyframe before, then
 * decodes forward). */
stacl_status stacl_video_seek(stacl_video *v, double seconds);
/* Next frame in presentation order into rgb (W*H*3); *t_s its time in
 * seconds (NAN if unknown); *eof = 1 (and nothing written) at the end. */
stacl_status stacl_video_next_frame(stacl_video *v, uint8_t *rgb, double *t_s, int *eof);

/* Silences FFmpeg's own logging, once per process: the library never
 * prints (its messages carry the reasons). Called by every FFmpeg entry. */
void stacl_ffmpeg_quiet(void);

/* read_frames starts at a keyframe near the first wanted frame when
 * stacl_video_count_packets built a timestamp index (default on; 0 forces
 * decoding from frame 0, for tests). keyframe_starts counts the reads that
 * did start at a keyframe. */
void stacl_video_allow_seek(stacl_video *v, int allow);
int64_t stacl_video_keyframe_starts(const stacl_video *v);

/* Called every 64 decoded frames (from the decoding thread) with the frames
 * decoded since open and the packet count (0 before one is known), so a
 * command can show progress on long videos. NULL turns it off. */
typedef void (*stacl_video_progress)(void *user, int64_t decoded, int64_t packets);
void stacl_video_set_progress(stacl_video *v, stacl_video_progress fn, void *user);

/* Packets the decoder rejected so far (corrupt data skipped). */
int64_t stacl_video_bad_packets(const stacl_video *v);

#endif
