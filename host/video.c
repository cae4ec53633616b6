/* video.c: FFmpeg decoding behind stacl_video (see video.h). The decode loop
 * is a small state machine over FFmpeg's send_packet/receive_frame API:
 * EAGAIN means "feed another packet", EOF means "fully drained"; a packet the
 * decoder rejects is counted and skipped, so damaged files yield the frames
 * that do decode. RGB conversion uses swscale with the flags and colour
 * details the ffmpeg CLI uses (bicubic, the frame's matrix and range), so
 * frames equal `ffmpeg -pix_fmt rgb24` output. Reads by frame index and
 * the packet-timestamp index are in video_read.c. */
#include "video.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavutil/imgutils.h>

#include "status.h"
#include "video_internal.h"

/* Consecutive rejected packets after which a stream is declared undecodable
 * (a fuzzed file can otherwise spin through megabytes of garbage). */
#define VIDEO_MAX_BAD_RUN 256

static const char *av_err(int code, char *buf, size_t cap) {
    av_strerror(code, buf, cap);
    return buf;
}

const stacl_video_info *stacl_video_get_info(const stacl_video *v) { return &v->info; }
const char *stacl_video_path(const stacl_video *v) { return v->path; }
int64_t stacl_video_bad_packets(const stacl_video *v) { return v->bad_packets; }
void stacl_video_set_progress(stacl_video *v, stacl_video_progress fn, void *user) {
    v->progress = fn;
    v->progress_user = user;
}

void stacl_video_free(stacl_video *v) {
    if (!v) return;
    sws_freeContext(v->sws);
    av_free(v->conv);
    free(v->pts_sorted);
    free(v->key_pts);
    av_frame_free(&v->frame);
    av_packet_free(&v->pkt);
    avcodec_free_context(&v->dec);
    avformat_close_input(&v->fmt);
    free(v->path);
    free(v);
}

/* The library never prints: FFmpeg's own log goes quiet once, process-wide
 * (stacl's messages carry the reason instead). */
static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;
static void quiet_ffmpeg(void) { av_log_set_level(AV_LOG_QUIET); }
void stacl_ffmpeg_quiet(void) { pthread_once(&quiet_once, quiet_ffmpeg); }

static double q2d_or0(AVRational r) { return (r.num > 0 && r.den > 0) ? av_q2d(r) : 0.0; }

stacl_status stacl_video_open(stacl_video **out, const char *path, int threads) {
    stacl_status st = STACL_OK;
    char eb[128];
    stacl_video *v = NULL;
    *out = NULL;
    if (!path || !*path) return stacl_fail(STACL_ERR_INVALID_ARG, "video path is empty");
    /* Stat first: FFmpeg's messages for a missing file or a folder are vague. */
    struct stat sb;
    if (stat(path, &sb) != 0)
        return stacl_fail(STACL_ERR_IO, "%s: cannot open video: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return stacl_fail(STACL_ERR_IO, "%s: cannot open video: is a folder", path);
    if (sb.st_size == 0) return stacl_fail(STACL_ERR_FORMAT, "%s: empty file (0 bytes), not a video", path);

    stacl_ffmpeg_quiet();
    v = calloc(1, sizeof *v);
    if (!v || !(v->path = strdup(path))) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    v->exact_frames = -1;
    v->seek_target_pts = INT64_MIN;
    v->allow_seek = 1;
    int ret = avformat_open_input(&v->fmt, path, NULL, NULL);
    if (ret < 0) {
        st = ret == AVERROR_INVALIDDATA ? STACL_ERR_FORMAT : STACL_ERR_IO;
        FAIL(st, "%s: not a readable media file (%s)", path, av_err(ret, eb, sizeof eb));
    }
    ret = avformat_find_stream_info(v->fmt, NULL);
    if (ret < 0) FAIL(STACL_ERR_FORMAT, "%s: cannot read stream info (%s)", path, av_err(ret, eb, sizeof eb));
    const AVCodec *codec = NULL;
    ret = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (ret == AVERROR_STREAM_NOT_FOUND) FAIL(STACL_ERR_FORMAT, "%s: no video stream", path);
    if (ret == AVERROR_DECODER_NOT_FOUND || (ret >= 0 && !codec)) {
        int s = ret >= 0 ? ret : av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
        const char *name = s >= 0 ? avcodec_get_name(v->fmt->streams[s]->codecpar->codec_id) : "unknown";
        char tag[AV_FOURCC_MAX_STRING_SIZE] = "?";
        if (s >= 0) av_fourcc_make_string(tag, v->fmt->streams[s]->codecpar->codec_tag);
        FAIL(STACL_ERR_UNSUPPORTED, "%s: no decoder for video codec '%s' (tag %s) in this FFmpeg build", path, name,
             tag);
    }
    if (ret < 0) FAIL(STACL_ERR_FORMAT, "%s: no usable video stream (%s)", path, av_err(ret, eb, sizeof eb));
    v->stream = ret;
    AVStream *s = v->fmt->streams[v->stream];
    /* Only the chosen stream's packets matter; let the demuxer drop the rest. */
    for (unsigned i = 0; i < v->fmt->nb_streams; i++)
        if ((int)i != v->stream) v->fmt->streams[i]->discard = AVDISCARD_ALL;

    v->dec = avcodec_alloc_context3(codec);
    if (!v->dec) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    ret = avcodec_parameters_to_context(v->dec, s->codecpar);
    if (ret < 0) FAIL(STACL_ERR_FORMAT, "%s: bad codec parameters (%s)", path, av_err(ret, eb, sizeof eb));
    v->dec->thread_count = threads < 0 ? 1 : threads;
    v->dec->pkt_timebase = s->time_base;
    ret = avcodec_open2(v->dec, codec, NULL);
    if (ret < 0)
        FAIL(STACL_ERR_UNSUPPORTED, "%s: cannot open the %s decoder (%s)", path, codec->name,
             av_err(ret, eb, sizeof eb));
    if (v->dec->width <= 0 || v->dec->height <= 0 || v->dec->width > 16384 || v->dec->height > 16384)
        FAIL(STACL_ERR_FORMAT, "%s: video stream has an invalid frame size %dx%d", path, v->dec->width,
             v->dec->height);
    v->pkt = av_packet_alloc();
    v->frame = av_frame_alloc();
    v->conv_stride = FFALIGN(v->dec->width * 3, 64);
    v->conv = av_malloc((size_t)v->conv_stride * (v->dec->height + 1) + 64);
    if (!v->pkt || !v->frame || !v->conv) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);

    stacl_video_info *in = &v->info;
    in->width = v->dec->width;
    in->height = v->dec->height;
    in->fps = q2d_or0(s->avg_frame_rate);
    if (in->fps == 0.0) in->fps = q2d_or0(s->r_frame_rate);
    if (s->duration != AV_NOPTS_VALUE && s->duration > 0) in->duration_s = (double)s->duration * q2d_or0(s->time_base);
    else if (v->fmt->duration > 0) in->duration_s = (double)v->fmt->duration / AV_TIME_BASE;
    in->container_frames = s->nb_frames > 0 ? s->nb_frames : 0;
    snprintf(in->codec, sizeof in->codec, "%s", codec->name);
    snprintf(in->container, sizeof in->container, "%s", v->fmt->iformat->name);
    *out = v;
    return STACL_OK;
cleanup:
    stacl_video_free(v);
    return st;
}

/* Back to the first packet, decoder flushed: the next frame is index 0. */
stacl_status stacl_video_rewind(stacl_video *v) {
    char eb[128];
    /* Seek to the stream's first timestamp, accepting anything before it
     * (B-frame streams start with negative DTS). */
    AVStream *s = v->fmt->streams[v->stream];
    int64_t first = s->start_time != AV_NOPTS_VALUE ? s->start_time : 0;
    int ret = avformat_seek_file(v->fmt, v->stream, INT64_MIN, first, first, 0);
    if (ret < 0) ret = av_seek_frame(v->fmt, v->stream, first, AVSEEK_FLAG_BACKWARD);
    if (ret < 0) ret = av_seek_frame(v->fmt, -1, 0, AVSEEK_FLAG_BYTE | AVSEEK_FLAG_BACKWARD);
    if (ret < 0) return stacl_fail(STACL_ERR_IO, "%s: cannot rewind (%s)", v->path, av_err(ret, eb, sizeof eb));
    avcodec_flush_buffers(v->dec);
    av_packet_unref(v->pkt);
    v->pkt_pending = v->draining = v->finished = 0;
    v->next_index = 0;
    v->bad_run = 0;
    v->seek_target_pts = INT64_MIN;
    return STACL_OK;
}

/* One decoded frame into v->frame, or *eof = 1. The state machine: try to
 * receive; on EAGAIN feed the next packet of our stream (or the NULL packet
 * at the end of input, which switches to draining); on EOF we are done. */
stacl_status stacl_video_decode_one(stacl_video *v, int *eof) {
    char eb[128];
    *eof = 0;
    if (v->finished) {
        *eof = 1;
        return STACL_OK;
    }
    for (;;) {
        int ret = avcodec_receive_frame(v->dec, v->frame);
        if (ret == 0) {
            v->bad_run = 0;
            if (v->progress && ++v->frames_out % 64 == 0)
                v->progress(v->progress_user, v->frames_out, v->n_pts);
            return STACL_OK;
        }
        if (ret == AVERROR_EOF) {
            v->finished = 1;
            *eof = 1;
            return STACL_OK;
        }
        if (ret != AVERROR(EAGAIN)) {
            /* A decoding error surfaced at output: skip it like a bad packet. */
            v->bad_packets++;
            if (++v->bad_run > VIDEO_MAX_BAD_RUN)
                return stacl_fail(STACL_ERR_FORMAT, "%s: corrupt video data (%s)", v->path, av_err(ret, eb, sizeof eb));
            if (v->draining) {
                v->finished = 1;
                *eof = 1;
                return STACL_OK;
            }
            continue;
        }
        if (v->draining) { /* EAGAIN while draining: decoder has nothing more */
            v->finished = 1;
            *eof = 1;
            return STACL_OK;
        }
        if (!v->pkt_pending) {
            ret = av_read_frame(v->fmt, v->pkt);
            if (ret < 0) {
                /* End of input, or a read error in a truncated/corrupt file:
                 * either way decode what we have. A real I/O error is rare
                 * on local files and reported through the frame count. */
                ret = avcodec_send_packet(v->dec, NULL);
                v->draining = 1;
                if (ret < 0 && ret != AVERROR_EOF) {
                    v->finished = 1;
                    *eof = 1;
                    return STACL_OK;
                }
                continue;
            }
            if (v->pkt->stream_index != v->stream) {
                av_packet_unref(v->pkt);
                continue;
            }
        }
        ret = avcodec_send_packet(v->dec, v->pkt);
        if (ret == AVERROR(EAGAIN)) { /* output must be read first; keep the packet */
            v->pkt_pending = 1;
            continue;
        }
        v->pkt_pending = 0;
        av_packet_unref(v->pkt);
        if (ret < 0) {
            v->bad_packets++;
            if (++v->bad_run > VIDEO_MAX_BAD_RUN)
                return stacl_fail(STACL_ERR_FORMAT, "%s: corrupt video data: %d packets in a row rejected (%s)",
                                  v->path, VIDEO_MAX_BAD_RUN, av_err(ret, eb, sizeof eb));
        }
    }
}

/* The frame in v->frame to RGB24 at the stream's size (a frame of another
 * size is scaled, as the ffmpeg CLI's auto-inserted scaler does). */
stacl_status stacl_video_frame_to_rgb(stacl_video *v, uint8_t *rgb) {
    AVFrame *f = v->frame;
    if (f->width <= 0 || f->height <= 0 || f->format < 0)
        return stacl_fail(STACL_ERR_FORMAT, "%s: decoder returned an invalid frame", v->path);
    enum AVPixelFormat src_fmt = (enum AVPixelFormat)f->format;
    int full_range = f->color_range == AVCOL_RANGE_JPEG;
    /* Deprecated yuvj formats mean full range; swscale wants the plain format. */
    switch (src_fmt) {
    case AV_PIX_FMT_YUVJ420P: src_fmt = AV_PIX_FMT_YUV420P; full_range = 1; break;
    case AV_PIX_FMT_YUVJ422P: src_fmt = AV_PIX_FMT_YUV422P; full_range = 1; break;
    case AV_PIX_FMT_YUVJ444P: src_fmt = AV_PIX_FMT_YUV444P; full_range = 1; break;
    case AV_PIX_FMT_YUVJ440P: src_fmt = AV_PIX_FMT_YUV440P; full_range = 1; break;
    default: break;
    }
    v->sws = sws_getCachedContext(v->sws, f->width, f->height, src_fmt, v->info.width, v->info.height,
                                  AV_PIX_FMT_RGB24, SWS_BICUBIC, NULL, NULL, NULL);
    if (!v->sws)
        return stacl_fail(STACL_ERR_UNSUPPORTED, "%s: cannot convert pixel format '%s' to RGB", v->path,
                          av_get_pix_fmt_name(src_fmt) ? av_get_pix_fmt_name(src_fmt) : "?");
    int cs = SWS_CS_DEFAULT;
    switch (f->colorspace) {
    case AVCOL_SPC_BT709: cs = SWS_CS_ITU709; break;
    case AVCOL_SPC_FCC: cs = SWS_CS_FCC; break;
    case AVCOL_SPC_SMPTE240M: cs = SWS_CS_SMPTE240M; break;
    case AVCOL_SPC_BT2020_NCL: case AVCOL_SPC_BT2020_CL: cs = SWS_CS_BT2020; break;
    default: break;
    }
    /* Output RGB is full range, as the ffmpeg CLI produces it. */
    sws_setColorspaceDetails(v->sws, sws_getCoefficients(cs), full_range, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0,
                             1 << 16, 1 << 16);
    uint8_t *dst[4] = {v->conv, NULL, NULL, NULL};
    int dst_stride[4] = {v->conv_stride, 0, 0, 0};
    int h = sws_scale(v->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dst_stride);
    if (h != v->info.height) return stacl_fail(STACL_ERR_FORMAT, "%s: pixel conversion failed", v->path);
    const size_t row = (size_t)v->info.width * 3;
    for (int y = 0; y < v->info.height; y++) memcpy(rgb + (size_t)y * row, v->conv + (size_t)y * v->conv_stride, row);
    return STACL_OK;
}

stacl_status stacl_video_count_frames(stacl_video *v, int64_t *n) {
    stacl_status st = STACL_OK;
    *n = 0;
    if (v->exact_frames < 0) {
        TRY(stacl_video_rewind(v));
        int eof = 0;
        int64_t count = 0;
        for (;;) {
            TRY(stacl_video_decode_one(v, &eof));
            if (eof) break;
            count++;
            av_frame_unref(v->frame);
        }
        v->exact_frames = count;
    }
    if (v->exact_frames == 0)
        FAIL(STACL_ERR_FORMAT, "%s: no frame decodes (%lld packets rejected by the %s decoder)", v->path,
             (long long)v->bad_packets, v->info.codec);
    *n = v->exact_frames;
cleanup:
    return st;
}

stacl_status stacl_video_seek(stacl_video *v, double seconds) {
    stacl_status st = STACL_OK;
    TRY(stacl_video_rewind(v));
    if (!(seconds > 0)) return STACL_OK;
    AVStream *s = v->fmt->streams[v->stream];
    int64_t start = s->start_time != AV_NOPTS_VALUE ? s->start_time : 0;
    /* Round up: the first frame at or after `seconds`, even in coarse time bases. */
    int64_t target = start + av_rescale_q_rnd((int64_t)llround(seconds * 1e6), (AVRational){1, 1000000}, s->time_base,
                                              AV_ROUND_UP);
    int ret = av_seek_frame(v->fmt, v->stream, target, AVSEEK_FLAG_BACKWARD);
    if (ret < 0) {
        /* Not seekable by timestamp (some AVI/raw streams): decode forward
         * from the start instead; correct, only slower. */
        TRY(stacl_video_rewind(v));
    } else {
        avcodec_flush_buffers(v->dec);
        v->next_index = -1; /* unknown after a seek */
    }
    v->seek_target_pts = target;
cleanup:
    return st;
}

stacl_status stacl_video_next_frame(stacl_video *v, uint8_t *rgb, double *t_s, int *eof) {
    stacl_status st = STACL_OK;
    AVStream *s = v->fmt->streams[v->stream];
    *t_s = NAN;
    for (;;) {
        TRY(stacl_video_decode_one(v, eof));
        if (*eof) return STACL_OK;
        int64_t pts = v->frame->best_effort_timestamp;
        if (v->seek_target_pts != INT64_MIN && pts != AV_NOPTS_VALUE && pts < v->seek_target_pts) {
            av_frame_unref(v->frame);
            continue; /* before the seek target: decoded only to reach it */
        }
        v->seek_target_pts = INT64_MIN;
        if (pts != AV_NOPTS_VALUE) {
            int64_t start = s->start_time != AV_NOPTS_VALUE ? s->start_time : 0;
            *t_s = (double)(pts - start) * q2d_or0(s->time_base);
        }
        st = stacl_video_frame_to_rgb(v, rgb);
        if (v->next_index >= 0) v->next_index++;
        av_frame_unref(v->frame);
        return st;
    }
cleanup:
    av_frame_unref(v->frame);
    return st;
}
