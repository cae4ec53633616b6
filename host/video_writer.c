/* video_writer.c: libavcodec encode + libavformat mux of RGB24 frames (see
 * video_writer.h). The encode loop mirrors the decoder's: send_frame, then
 * receive_packet until EAGAIN (needs more input) or EOF (drained). */
#include "video_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "status.h"
#include "video.h"

struct stacl_video_writer {
    char *path, *tmp;
    AVFormatContext *oc;
    AVCodecContext *enc;
    AVStream *st;
    AVFrame *frame;
    AVPacket *pkt;
    struct SwsContext *sws;
    int64_t next_pts;
    uint8_t *in;   /* padded copy of the input: swscale reads past packed rows */
    int in_stride;
    int header_written;
};

void stacl_video_writer_free(stacl_video_writer *w) {
    if (!w) return;
    if (w->oc && w->oc->pb) avio_closep(&w->oc->pb);
    if (w->tmp) remove(w->tmp);
    sws_freeContext(w->sws);
    av_free(w->in);
    av_packet_free(&w->pkt);
    av_frame_free(&w->frame);
    avcodec_free_context(&w->enc);
    avformat_free_context(w->oc);
    free(w->path);
    free(w->tmp);
    free(w);
}

static const char *encoder_name(const char *codec) {
    if (strcmp(codec, "h264") == 0) return "libx264";
    if (strcmp(codec, "vp9") == 0) return "libvpx-vp9";
    return codec;
}

stacl_status stacl_video_writer_open(stacl_video_writer **out, const char *path, const char *codec, int width,
                                     int height, int fps) {
    stacl_status st = STACL_OK;
    char eb[128];
    *out = NULL;
    if (width < 2 || height < 2 || width % 2 || height % 2 || fps < 1)
        return stacl_fail(STACL_ERR_INVALID_ARG, "%s: video size %dx%d must be even and >= 2, fps %d >= 1", path,
                          width, height, fps);
    stacl_ffmpeg_quiet();
    stacl_video_writer *w = calloc(1, sizeof *w);
    if (!w) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    size_t n = strlen(path) + 8;
    w->path = strdup(path);
    w->tmp = malloc(n);
    if (!w->path || !w->tmp) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    snprintf(w->tmp, n, "%s.tmp", path);
    int ret = avformat_alloc_output_context2(&w->oc, NULL, NULL, path);
    if (ret < 0 || !w->oc) FAIL(STACL_ERR_INVALID_ARG, "%s: no container for this file extension", path);
    const AVCodec *c = avcodec_find_encoder_by_name(encoder_name(codec));
    if (!c) FAIL(STACL_ERR_UNSUPPORTED, "%s: no '%s' encoder in this FFmpeg build (try mjpeg)", path, encoder_name(codec));
    w->st = avformat_new_stream(w->oc, NULL);
    w->enc = avcodec_alloc_context3(c);
    w->frame = av_frame_alloc();
    w->pkt = av_packet_alloc();
    if (!w->st || !w->enc || !w->frame || !w->pkt) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    AVCodecContext *e = w->enc;
    e->width = width;
    e->height = height;
    e->time_base = (AVRational){1, fps};
    e->framerate = (AVRational){fps, 1};
    e->gop_size = 12;
    e->thread_count = 1; /* deterministic bytes */
    e->pix_fmt = c->id == AV_CODEC_ID_MJPEG ? AV_PIX_FMT_YUVJ420P : AV_PIX_FMT_YUV420P;
    if (c->id == AV_CODEC_ID_MJPEG) {
        e->flags |= AV_CODEC_FLAG_QSCALE;
        e->global_quality = FF_QP2LAMBDA * 3;
    } else if (c->id == AV_CODEC_ID_MPEG4) {
        e->flags |= AV_CODEC_FLAG_QSCALE;
        e->global_quality = FF_QP2LAMBDA * 3;
        e->max_b_frames = 2;
    } else if (strcmp(c->name, "libx264") == 0) {
        av_opt_set(e->priv_data, "preset", "veryfast", 0);
        av_opt_set(e->priv_data, "crf", "18", 0);
        e->max_b_frames = 2;
    } else if (strcmp(c->name, "libvpx-vp9") == 0) {
        e->bit_rate = 400000;
    }
    if (w->oc->oformat->flags & AVFMT_GLOBALHEADER) e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    ret = avcodec_open2(e, c, NULL);
    if (ret < 0) FAIL(STACL_ERR_UNSUPPORTED, "%s: cannot open the %s encoder (%s)", path, c->name, (av_strerror(ret, eb, sizeof eb), eb));
    ret = avcodec_parameters_from_context(w->st->codecpar, e);
    if (ret < 0) FAIL(STACL_ERR_INVALID_ARG, "%s: encoder parameters rejected", path);
    w->st->time_base = e->time_base;
    w->st->avg_frame_rate = e->framerate;
    ret = avio_open(&w->oc->pb, w->tmp, AVIO_FLAG_WRITE);
    if (ret < 0) FAIL(STACL_ERR_IO, "%s: cannot create (%s)", w->tmp, (av_strerror(ret, eb, sizeof eb), eb));
    ret = avformat_write_header(w->oc, NULL);
    if (ret < 0) FAIL(STACL_ERR_IO, "%s: cannot write the header (%s)", path, (av_strerror(ret, eb, sizeof eb), eb));
    w->header_written = 1;
    w->frame->format = e->pix_fmt;
    w->frame->width = width;
    w->frame->height = height;
    w->in_stride = FFALIGN(width * 3, 64);
    w->in = av_mallocz((size_t)w->in_stride * (height + 1) + 64);
    if (!w->in || av_frame_get_buffer(w->frame, 0) < 0) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    w->sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, e->pix_fmt, SWS_BICUBIC, NULL, NULL, NULL);
    if (!w->sws) FAIL(STACL_ERR_UNSUPPORTED, "%s: no RGB conversion to the encoder's format", path);
    if (e->pix_fmt == AV_PIX_FMT_YUVJ420P) /* full-range output, as the format says */
        sws_setColorspaceDetails(w->sws, sws_getCoefficients(SWS_CS_DEFAULT), 1, sws_getCoefficients(SWS_CS_DEFAULT),
                                 1, 0, 1 << 16, 1 << 16);
    *out = w;
    return STACL_OK;
cleanup:
    stacl_video_writer_free(w);
    return st;
}

/* Sends frame (NULL: flush) and writes every packet the encoder has ready. */
static stacl_status encode(stacl_video_writer *w, AVFrame *frame) {
    char eb[128];
    int ret = avcodec_send_frame(w->enc, frame);
    if (ret < 0) return stacl_fail(STACL_ERR_IO, "%s: encoder refused a frame (%s)", w->path, (av_strerror(ret, eb, sizeof eb), eb));
    for (;;) {
        ret = avcodec_receive_packet(w->enc, w->pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return STACL_OK;
        if (ret < 0) return stacl_fail(STACL_ERR_IO, "%s: encoding failed (%s)", w->path, (av_strerror(ret, eb, sizeof eb), eb));
        av_packet_rescale_ts(w->pkt, w->enc->time_base, w->st->time_base);
        w->pkt->stream_index = w->st->index;
        ret = av_interleaved_write_frame(w->oc, w->pkt);
        if (ret < 0) return stacl_fail(STACL_ERR_IO, "%s: write failed (%s)", w->path, (av_strerror(ret, eb, sizeof eb), eb));
    }
}

stacl_status stacl_video_writer_add(stacl_video_writer *w, const uint8_t *rgb) {
    if (av_frame_make_writable(w->frame) < 0) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", w->path);
    const size_t row = (size_t)w->enc->width * 3;
    for (int y = 0; y < w->enc->height; y++) memcpy(w->in + (size_t)y * w->in_stride, rgb + (size_t)y * row, row);
    const uint8_t *src[4] = {w->in, NULL, NULL, NULL};
    int stride[4] = {w->in_stride, 0, 0, 0};
    sws_scale(w->sws, src, stride, 0, w->enc->height, w->frame->data, w->frame->linesize);
    w->frame->pts = w->next_pts++;
    return encode(w, w->frame);
}

stacl_status stacl_video_writer_close(stacl_video_writer *w) {
    stacl_status st = STACL_OK;
    TRY(encode(w, NULL));
    if (av_write_trailer(w->oc) < 0) FAIL(STACL_ERR_IO, "%s: cannot write the trailer", w->path);
    if (avio_closep(&w->oc->pb) < 0) FAIL(STACL_ERR_IO, "%s: write failed on close", w->tmp);
    if (rename(w->tmp, w->path) != 0) FAIL(STACL_ERR_IO, "%s: cannot rename %s into place", w->path, w->tmp);
cleanup:
    stacl_video_writer_free(w);
    return st;
}
