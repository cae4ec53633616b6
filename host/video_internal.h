/* video_internal.h: the stacl_video handle's fields and the decode steps
 * shared by video.c (open, decode loop, RGB conversion, counting, seeking by
 * time) and video_read.c (the packet-timestamp index and reads by frame
 * index). Not part of any public header. */
#ifndef STACL_VIDEO_INTERNAL_H
#define STACL_VIDEO_INTERNAL_H

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>

#include "video.h"

struct stacl_video {
    char *path;
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    struct SwsContext *sws;
    int stream;
    int draining;      /* NULL packet sent: only receive_frame from now on */
    int finished;      /* decoder returned EOF */
    int pkt_pending;   /* pkt holds a packet the decoder refused with EAGAIN */
    int64_t next_index;/* decoded-frame index of the next frame out */
    int64_t bad_packets, bad_run;
    int64_t exact_frames; /* -1 until a decode reached the end */
    int64_t seek_target_pts; /* frames before this pts are dropped; INT64_MIN = none */
    /* swscale's SIMD paths read and write past the end of packed rows
     * (valgrind shows 8-16 bytes beyond a tight W*3 buffer), so it converts
     * into this padded, aligned buffer and rows are copied out. */
    uint8_t *conv;
    int conv_stride;
    /* Frame index by timestamp, built by stacl_video_count_packets: the
     * packets' PTS sorted (index i = i-th in presentation order) and the
     * keyframes' PTS, so read_frames can start at a keyframe near the first
     * wanted frame instead of at 0. Only when every packet has a unique PTS. */
    int64_t *pts_sorted, n_pts;
    int64_t *key_pts, n_key;
    int index_ok, allow_seek;
    int64_t seeks; /* read_frames calls that started from a keyframe */
    stacl_video_progress progress;
    void *progress_user;
    int64_t frames_out; /* frames decoded since open, for progress */
    stacl_video_info info;
};

/* Back to the first packet, decoder flushed: the next frame is index 0. */
stacl_status stacl_video_rewind(stacl_video *v);
/* One decoded frame into v->frame, or *eof = 1 (see video.c). */
stacl_status stacl_video_decode_one(stacl_video *v, int *eof);
/* v->frame to packed RGB24 at the stream's size. */
stacl_status stacl_video_frame_to_rgb(stacl_video *v, uint8_t *rgb);

#endif
