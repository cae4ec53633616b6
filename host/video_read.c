/* video_read.c: reads by decoded-frame index (see video.h). The packet
 * pass of stacl_video_count_packets also builds a timestamp index (the
 * packets' PTS sorted = presentation order, and the keyframes' PTS), so
 * reads can start at keyframes near runs of wanted frames; whenever the
 * index does not hold, reads decode from frame 0, which is always right. */
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "video_internal.h"

void stacl_video_allow_seek(stacl_video *v, int allow) { v->allow_seek = allow; }
int64_t stacl_video_keyframe_starts(const stacl_video *v) { return v->seeks; }

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Position of pts in the sorted table, or -1. */
static int64_t index_of_pts(const stacl_video *v, int64_t pts) {
    int64_t lo = 0, hi = v->n_pts - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (v->pts_sorted[mid] == pts) return mid;
        if (v->pts_sorted[mid] < pts) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

stacl_status stacl_video_count_packets(stacl_video *v, int64_t *n) {
    stacl_status st = STACL_OK;
    *n = 0;
    TRY(stacl_video_rewind(v));
    int64_t count = 0, cap = 0;
    int ok = 1;
    free(v->pts_sorted);
    free(v->key_pts);
    v->pts_sorted = v->key_pts = NULL;
    v->n_pts = v->n_key = 0;
    v->index_ok = 0;
    while (av_read_frame(v->fmt, v->pkt) >= 0) {
        if (v->pkt->stream_index == v->stream && v->pkt->size > 0) {
            if (ok && count == cap) {
                cap = cap ? cap * 2 : 256;
                int64_t *np = realloc(v->pts_sorted, sizeof *np * (size_t)cap);
                if (np) v->pts_sorted = np;
                int64_t *nk = realloc(v->key_pts, sizeof *nk * (size_t)cap);
                if (nk) v->key_pts = nk;
                if (!np || !nk) ok = 0; /* no index: reads decode from the start */
            }
            if (ok && v->pkt->pts == AV_NOPTS_VALUE) ok = 0;
            if (ok) {
                v->pts_sorted[count] = v->pkt->pts;
                if (v->pkt->flags & AV_PKT_FLAG_KEY) v->key_pts[v->n_key++] = v->pkt->pts;
            }
            count++;
        }
        av_packet_unref(v->pkt);
    }
    if (ok && count > 0) {
        qsort(v->pts_sorted, (size_t)count, sizeof(int64_t), cmp_i64);
        qsort(v->key_pts, (size_t)v->n_key, sizeof(int64_t), cmp_i64);
        for (int64_t i = 1; i < count && ok; i++) ok = v->pts_sorted[i] != v->pts_sorted[i - 1];
        v->n_pts = count;
        v->index_ok = ok;
    }
    TRY(stacl_video_rewind(v));
    *n = count;
cleanup:
    return st;
}

/* Decodes from frame 0 up to frame `last`, filling every slot whose index
 * is reached. SHAPE (with *decoded) when the stream ends first. */
static stacl_status read_linear(stacl_video *v, const int64_t *idx, int n, uint8_t *rgb, int64_t last,
                                int64_t *decoded) {
    stacl_status st = STACL_OK;
    const size_t fsize = (size_t)v->info.width * v->info.height * 3;
    TRY(stacl_video_rewind(v));
    for (int64_t i = 0; i <= last; i++) {
        int eof = 0;
        TRY(stacl_video_decode_one(v, &eof));
        if (eof) {
            v->exact_frames = i;
            if (decoded) *decoded = i;
            if (i == 0)
                FAIL(STACL_ERR_FORMAT, "%s: no frame decodes (%lld packets rejected by the %s decoder)", v->path,
                     (long long)v->bad_packets, v->info.codec);
            FAIL(STACL_ERR_SHAPE, "%s: frame %lld requested but only %lld frames decode", v->path, (long long)last,
                 (long long)i);
        }
        /* Convert once, copy to every slot that wants this frame. */
        int64_t first_hit = -1;
        for (int k = 0; k < n; k++) {
            if (idx[k] != i) continue;
            if (first_hit < 0) {
                TRY(stacl_video_frame_to_rgb(v, rgb + (size_t)k * fsize));
                first_hit = k;
            } else {
                memcpy(rgb + (size_t)k * fsize, rgb + (size_t)first_hit * fsize, fsize);
            }
        }
        av_frame_unref(v->frame);
        v->next_index = i + 1;
        if (decoded) *decoded = i + 1;
    }
cleanup:
    av_frame_unref(v->frame);
    return st;
}

/* Where decoding must start to reach frame w from a keyframe: the last
 * keyframe at or before w in presentation order. Every frame at or after a
 * keyframe decodes from it (only an open GOP's leading frames, which come
 * before it, need older references), so frames from w on are exact; -1
 * when no keyframe precedes w. */
static int64_t keyframe_start(const stacl_video *v, int64_t w) {
    int64_t target = v->pts_sorted[w], kpos = -1;
    for (int64_t i = 0; i < v->n_key && v->key_pts[i] <= target; i++) kpos = i;
    return kpos < 0 ? -1 : index_of_pts(v, v->key_pts[kpos]);
}

/* Seeks to the keyframe at index `start`, decodes forward and fills the
 * slots whose index is in [lo, hi], numbering frames by their PTS in the
 * packet index. UNSUPPORTED (nothing reported) whenever the index does not
 * hold: the seek fails, a frame without a known PTS, frames out of order or
 * past lo, the end of the stream before hi. */
static stacl_status read_range_from_keyframe(stacl_video *v, const int64_t *idx, int n, uint8_t *rgb, int64_t start,
                                             int64_t lo, int64_t hi) {
    if (av_seek_frame(v->fmt, v->stream, v->pts_sorted[start], AVSEEK_FLAG_BACKWARD) < 0) return STACL_ERR_UNSUPPORTED;
    avcodec_flush_buffers(v->dec);
    av_packet_unref(v->pkt);
    v->pkt_pending = v->draining = v->finished = 0;
    v->bad_run = 0;
    v->seek_target_pts = INT64_MIN;
    v->next_index = -1;
    const size_t fsize = (size_t)v->info.width * v->info.height * 3;
    stacl_status st = STACL_OK;
    int64_t last = -1;
    for (;;) {
        int eof = 0;
        st = stacl_video_decode_one(v, &eof);
        if (st != STACL_OK || eof) break;
        int64_t pts = v->frame->best_effort_timestamp;
        int64_t i = pts == AV_NOPTS_VALUE ? -1 : index_of_pts(v, pts);
        if (i < 0 || i <= last || (last < 0 && i > lo)) break; /* the index does not describe this stream */
        last = i;
        if (i >= lo) {
            int64_t first_hit = -1;
            for (int k = 0; k < n && st == STACL_OK; k++) {
                if (idx[k] != i) continue;
                if (first_hit < 0) {
                    st = stacl_video_frame_to_rgb(v, rgb + (size_t)k * fsize);
                    first_hit = k;
                } else {
                    memcpy(rgb + (size_t)k * fsize, rgb + (size_t)first_hit * fsize, fsize);
                }
            }
            if (st != STACL_OK) break;
        }
        av_frame_unref(v->frame);
        if (i == hi) return STACL_OK;
    }
    av_frame_unref(v->frame);
    if (st != STACL_OK && st != STACL_ERR_FORMAT) return st;
    stacl_clear_error();
    return STACL_ERR_UNSUPPORTED;
}

/* Gaps between wanted frames at least this long are jumped over with a seek
 * when a keyframe allows it; shorter ones are decoded through. */
#define SEEK_MIN_GAP 8

/* The fast path: wanted frames (sorted) split into runs; a new run starts
 * where a keyframe lets decoding start more than SEEK_MIN_GAP frames after
 * the previous wanted frame. The first run starts at frame 0 when no such
 * keyframe precedes it. UNSUPPORTED when the index does not hold anywhere. */
static stacl_status read_with_keyframes(stacl_video *v, const int64_t *idx, int n, uint8_t *rgb) {
    int64_t *u = malloc(sizeof *u * (size_t)n);
    if (!u) return STACL_ERR_UNSUPPORTED;
    memcpy(u, idx, sizeof *u * (size_t)n);
    qsort(u, (size_t)n, sizeof *u, cmp_i64);
    stacl_status st = STACL_OK;
    int used_seek = 0;
    for (int pos = 0; pos < n && st == STACL_OK;) {
        int j = pos + 1;
        while (j < n && keyframe_start(v, u[j]) <= u[j - 1] + SEEK_MIN_GAP) j++;
        int64_t start = keyframe_start(v, u[pos]);
        if (pos == 0 && start < SEEK_MIN_GAP) {
            st = read_linear(v, idx, n, rgb, u[j - 1], NULL);
        } else {
            st = read_range_from_keyframe(v, idx, n, rgb, start, u[pos], u[j - 1]);
            used_seek = 1;
        }
        pos = j;
    }
    free(u);
    if (st == STACL_OK && used_seek) v->seeks++;
    if (st == STACL_ERR_SHAPE) { /* the linear part hit the end: let the caller redo and report it */
        stacl_clear_error();
        st = STACL_ERR_UNSUPPORTED;
    }
    return st;
}

stacl_status stacl_video_read_frames(stacl_video *v, const int64_t *idx, int n, uint8_t *rgb, int64_t *decoded) {
    if (decoded) *decoded = 0;
    if (n <= 0) return STACL_OK;
    int64_t max_idx = -1;
    for (int k = 0; k < n; k++) {
        if (idx[k] < 0) return stacl_fail(STACL_ERR_INVALID_ARG, "%s: negative frame index %lld", v->path, (long long)idx[k]);
        if (idx[k] > max_idx) max_idx = idx[k];
    }
    if (v->allow_seek && v->index_ok && max_idx < v->n_pts) {
        stacl_status st = read_with_keyframes(v, idx, n, rgb);
        if (st == STACL_OK) {
            if (decoded) *decoded = max_idx + 1;
            return STACL_OK;
        }
        if (st != STACL_ERR_UNSUPPORTED) return st;
        /* the index did not hold: decode from the start, which is always right */
    }
    return read_linear(v, idx, n, rgb, max_idx, decoded);
}
