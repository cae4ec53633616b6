/* test_video.c: FFmpeg decoding against frames the ffmpeg CLI wrote
 * (tests/data/video, made by tests/reference/make_video_golden.sh), frame
 * counting on opencv-doc's real videos (whose containers lie), seeking,
 * metadata, bad input (missing, empty, folder, not a video, no video
 * stream, truncated, bit-flipped: a small fuzz loop), the resampling
 * fallback when fewer frames decode than packets, and one-frame videos. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "test_util.h"
#include "clip_decode.h"
#include "video.h"
#include "video_writer.h"

#define VDATA STACL_TEST_DATA "/video"
#define OPENCV_DATA "/usr/share/doc/opencv-doc/examples/data"

/* Max |a-b| over n bytes. */
static int max_byte_diff(const uint8_t *a, const uint8_t *b, size_t n) {
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > m) m = d;
    }
    return m;
}

/* Decodes frames 0, 7, 23 and compares with the CLI's rgb24 output. */
static void check_small(const char *name, const char *codec, int tol) {
    char path[512], gold[512];
    snprintf(path, sizeof path, VDATA "/%s", name);
    snprintf(gold, sizeof gold, VDATA "/%s.f0_7_23.rgb", name);
    stacl_video *v = NULL;
    assert_int_equal(stacl_video_open(&v, path, 1), STACL_OK);
    const stacl_video_info *in = stacl_video_get_info(v);
    assert_int_equal(in->width, 64);
    assert_int_equal(in->height, 48);
    assert_true(fabs(in->fps - 8.0) < 1e-6);
    assert_string_equal(in->codec, codec);
    int64_t n = 0;
    assert_int_equal(stacl_video_count_frames(v, &n), STACL_OK);
    assert_int_equal(n, 24);
    assert_int_equal(stacl_video_count_packets(v, &n), STACL_OK);
    assert_int_equal(n, 24);
    const size_t fs = 64 * 48 * 3;
    /* Out of order with a repeat: each slot gets its own index. */
    const int64_t idx[4] = {23, 0, 7, 0};
    uint8_t *rgb = malloc(4 * fs);
    size_t glen = 0;
    uint8_t *g = (uint8_t *)tu_read_file(gold, &glen);
    assert_non_null(g);
    assert_int_equal(glen, 3 * fs);
    int64_t decoded = 0;
    assert_int_equal(stacl_video_read_frames(v, idx, 4, rgb, &decoded), STACL_OK);
    assert_int_equal(decoded, 24);
    int d0 = max_byte_diff(rgb + fs, g, fs), d7 = max_byte_diff(rgb + 2 * fs, g + fs, fs),
        d23 = max_byte_diff(rgb, g + 2 * fs, fs), drep = max_byte_diff(rgb + 3 * fs, g, fs);
    printf("  %-10s %-10s max |stacl - ffmpeg CLI| = %d %d %d levels\n", name, codec, d0, d7, d23);
    assert_true(d0 <= tol && d7 <= tol && d23 <= tol && drep <= tol);
    /* Past the end: SHAPE with the real count, for the caller to resample. */
    const int64_t far = 30;
    assert_int_equal(stacl_video_read_frames(v, &far, 1, rgb, &decoded), STACL_ERR_SHAPE);
    assert_int_equal(decoded, 24);
    tu_expect_message(name, "only 24 frames decode");
    free(g);
    free(rgb);
    stacl_video_free(v);
}

static void test_h264_mp4(void **s) { (void)s; check_small("h264.mp4", "h264", 0); }
static void test_vp9_webm(void **s) { (void)s; check_small("vp9.webm", "vp9", 0); }
static void test_mjpeg_avi(void **s) { (void)s; check_small("mjpeg.avi", "mjpeg", 0); }
static void test_ffv1_mkv(void **s) { (void)s; check_small("ffv1.mkv", "ffv1", 0); }

/* A 32x32 window (x, y) of three frames against the CLI's output. */
static void check_real(const char *name, const char *gold_name, int x, int y, const int64_t idx[3], int64_t want_frames,
                       int64_t claimed) {
    char path[512], gold[512];
    snprintf(path, sizeof path, OPENCV_DATA "/%s", name);
    snprintf(gold, sizeof gold, VDATA "/%s", gold_name);
    stacl_video *v = NULL;
    if (stacl_video_open(&v, path, 0) != STACL_OK)
        fail_msg("%s (install Debian's opencv-doc: .ci/install-deps does)", stacl_last_error());
    const stacl_video_info *in = stacl_video_get_info(v);
    assert_int_equal(in->container_frames, claimed);
    int64_t n = 0, p = 0;
    assert_int_equal(stacl_video_count_frames(v, &n), STACL_OK);
    assert_int_equal(stacl_video_count_packets(v, &p), STACL_OK);
    printf("  %-18s %dx%d %s: container says %lld frames, %lld packets, %lld decode\n", name, in->width, in->height,
           in->codec, (long long)claimed, (long long)p, (long long)n);
    assert_int_equal(n, want_frames);
    assert_int_equal(p, want_frames);
    const size_t fs = (size_t)in->width * in->height * 3;
    uint8_t *rgb = malloc(3 * fs);
    assert_int_equal(stacl_video_read_frames(v, idx, 3, rgb, NULL), STACL_OK);
    size_t glen = 0;
    uint8_t *g = (uint8_t *)tu_read_file(gold, &glen);
    assert_non_null(g);
    assert_int_equal(glen, 3 * 32 * 32 * 3);
    for (int k = 0; k < 3; k++) {
        int worst = 0;
        for (int r = 0; r < 32; r++) {
            const uint8_t *a = rgb + k * fs + ((size_t)(y + r) * in->width + x) * 3;
            int d = max_byte_diff(a, g + ((size_t)k * 32 + r) * 32 * 3, 32 * 3);
            if (d > worst) worst = d;
        }
        printf("    frame %lld: max |stacl - ffmpeg CLI| = %d levels\n", (long long)idx[k], worst);
        assert_true(worst <= 0);
    }
    free(g);
    free(rgb);
    stacl_video_free(v);
}

static void test_megamind(void **s) {
    (void)s;
    const int64_t idx[3] = {0, 135, 269};
    check_real("Megamind.avi", "Megamind.avi.x300y200.f0_135_269.rgb", 300, 200, idx, 270, 270);
}
static void test_vtest(void **s) {
    (void)s;
    const int64_t idx[3] = {0, 400, 794};
    check_real("vtest.avi", "vtest.avi.x400y300.f0_400_794.rgb", 400, 300, idx, 795, 795);
}
/* The container claims 444 frames; 68 decode (the rest are empty index
 * entries). Sampling must use 68. */
static void test_tree_lies(void **s) {
    (void)s;
    const int64_t idx[3] = {0, 34, 67};
    check_real("tree.avi", "tree.avi.x150y100.f0_34_67.rgb", 150, 100, idx, 68, 444);
}

static void test_megamind_bugy_decodes(void **s) {
    (void)s;
    stacl_video *v = NULL;
    assert_int_equal(stacl_video_open(&v, OPENCV_DATA "/Megamind_bugy.avi", 0), STACL_OK);
    int64_t n = 0;
    assert_int_equal(stacl_video_count_frames(v, &n), STACL_OK);
    assert_int_equal(n, 270);
    stacl_video_free(v);
}

/* Seeking by time lands on the first frame at or after the time. */
static void test_seek(void **s) {
    (void)s;
    const char *names[] = {"h264.mp4", "vp9.webm", "mjpeg.avi", "ffv1.mkv"};
    const size_t fs = 64 * 48 * 3;
    uint8_t *a = malloc(fs), *b = malloc(fs);
    for (int k = 0; k < 4; k++) {
        char path[512];
        snprintf(path, sizeof path, VDATA "/%s", names[k]);
        stacl_video *v = NULL;
        assert_int_equal(stacl_video_open(&v, path, 1), STACL_OK);
        /* frame 7 is at 7/8 s; a time just before it also gives frame 7 */
        const int64_t seven = 7;
        assert_int_equal(stacl_video_read_frames(v, &seven, 1, a, NULL), STACL_OK);
        double t = 0;
        int eof = 0;
        assert_int_equal(stacl_video_seek(v, 0.8), STACL_OK);
        assert_int_equal(stacl_video_next_frame(v, b, &t, &eof), STACL_OK);
        assert_false(eof);
        if (fabs(t - 0.875) > 1e-6) fail_msg("%s: seek to 0.8 s gave t = %f", names[k], t);
        assert_int_equal(memcmp(a, b, fs), 0);
        /* then frames follow in order to the end */
        int rest = 0;
        for (;;) {
            assert_int_equal(stacl_video_next_frame(v, b, &t, &eof), STACL_OK);
            if (eof) break;
            rest++;
        }
        assert_int_equal(rest, 16);
        /* seek to 0 restarts */
        assert_int_equal(stacl_video_seek(v, 0.0), STACL_OK);
        assert_int_equal(stacl_video_next_frame(v, b, &t, &eof), STACL_OK);
        assert_true(fabs(t) < 1e-6);
        stacl_video_free(v);
    }
    free(a);
    free(b);
}

static void expect_open_fails(const char *path, stacl_status want, const char *msg) {
    stacl_video *v = NULL;
    stacl_status st = stacl_video_open(&v, path, 1);
    if (st == STACL_OK) {
        /* Some damage only shows when decoding. */
        int64_t n = 0;
        st = stacl_video_count_frames(v, &n);
        stacl_video_free(v);
    }
    assert_int_equal(st, want);
    tu_expect_message(path, msg);
}

static void test_bad_files(void **s) {
    (void)s;
    char p[600];
    expect_open_fails(TU_PATH(p, "missing.mp4"), STACL_ERR_IO, "No such file");
    expect_open_fails(tu_group_dir, STACL_ERR_IO, "is a folder");
    assert_int_equal(tu_write_file(TU_PATH(p, "empty.mp4"), "", 0), 0);
    expect_open_fails(p, STACL_ERR_FORMAT, "empty file");
    const char text[] = "path,label\nthis is not a video at all, just some text\n";
    assert_int_equal(tu_write_file(TU_PATH(p, "text.avi"), text, sizeof text - 1), 0);
    expect_open_fails(p, STACL_ERR_FORMAT, "not a readable media file");
    /* A WAV file: a valid media file with audio only. */
    unsigned char wav[44 + 800] = "RIFF";
    uint32_t v32;
    v32 = 36 + 800; memcpy(wav + 4, &v32, 4);
    memcpy(wav + 8, "WAVEfmt ", 8);
    v32 = 16; memcpy(wav + 16, &v32, 4);
    uint16_t v16 = 1; memcpy(wav + 20, &v16, 2); /* PCM */
    v16 = 1; memcpy(wav + 22, &v16, 2);          /* mono */
    v32 = 8000; memcpy(wav + 24, &v32, 4);
    v32 = 16000; memcpy(wav + 28, &v32, 4);
    v16 = 2; memcpy(wav + 32, &v16, 2);
    v16 = 16; memcpy(wav + 34, &v16, 2);
    memcpy(wav + 36, "data", 4);
    v32 = 800; memcpy(wav + 40, &v32, 4);
    assert_int_equal(tu_write_file(TU_PATH(p, "audio.wav"), wav, sizeof wav), 0);
    expect_open_fails(p, STACL_ERR_FORMAT, "no video stream");
    /* An AVI whose video fourcc no decoder knows. */
    size_t n = 0;
    char *avi = tu_read_file(VDATA "/mjpeg.avi", &n);
    assert_non_null(avi);
    for (size_t i = 0; i + 4 <= n; i++)
        if (memcmp(avi + i, "MJPG", 4) == 0) memcpy(avi + i, "QQQQ", 4);
    assert_int_equal(tu_write_file(TU_PATH(p, "unknown_codec.avi"), avi, n), 0);
    free(avi);
    expect_open_fails(p, STACL_ERR_UNSUPPORTED, "no decoder for video codec 'none' (tag QQQQ)");
}

/* Truncations and bit flips of each small video: every call returns a status
 * (never crashes, never hangs); what decodes has the stream's size. */
static void test_fuzz(void **s) {
    (void)s;
    const char *names[] = {"h264.mp4", "vp9.webm", "mjpeg.avi", "ffv1.mkv"};
    uint64_t rng = 12345;
    int runs = 0, ok = 0;
    for (int k = 0; k < 4; k++) {
        char src[512], p[600];
        snprintf(src, sizeof src, VDATA "/%s", names[k]);
        size_t n = 0;
        unsigned char *orig = (unsigned char *)tu_read_file(src, &n);
        assert_non_null(orig);
        unsigned char *buf = malloc(n);
        const char *ext = strrchr(names[k], '.');
        for (int trial = 0; trial < 24; trial++) {
            memcpy(buf, orig, n);
            size_t len = n;
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            if (trial < 8) {
                len = (size_t)((rng >> 33) % n); /* truncated */
            } else {
                int flips = 1 + (int)((rng >> 40) % 16);
                for (int f = 0; f < flips; f++) {
                    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                    size_t at = (size_t)((rng >> 20) % n);
                    buf[at] ^= (unsigned char)(1u << ((rng >> 60) & 7));
                }
            }
            char name[64];
            snprintf(name, sizeof name, "fuzz%d%s", trial, ext);
            assert_int_equal(tu_write_file(TU_PATH(p, name), buf, len), 0);
            stacl_video *v = NULL;
            runs++;
            if (stacl_video_open(&v, p, 1) != STACL_OK) {
                tu_expect_message(p, NULL);
                continue;
            }
            int64_t frames = 0;
            stacl_status st = stacl_video_count_frames(v, &frames);
            if (st == STACL_OK) {
                const stacl_video_info *in = stacl_video_get_info(v);
                size_t fs = (size_t)in->width * in->height * 3;
                uint8_t *rgb = malloc(2 * fs);
                int64_t idx[2] = {0, frames - 1};
                st = stacl_video_read_frames(v, idx, 2, rgb, NULL);
                assert_true(st == STACL_OK || st == STACL_ERR_SHAPE || st == STACL_ERR_FORMAT ||
                            st == STACL_ERR_UNSUPPORTED);
                if (st == STACL_OK) ok++;
                free(rgb);
            } else {
                tu_expect_message(p, NULL);
            }
            stacl_video_free(v);
        }
        free(buf);
        free(orig);
    }
    printf("  fuzz: %d damaged files, %d still decode\n", runs, ok);
}

/* 70% of mjpeg.avi: 17 packets, the last one cut short, so 16 frames
 * decode. A clip whose indices were sampled on 17 reaches past the end and
 * is resampled on 16, the count that really decodes. */
static void test_truncated_resamples(void **s) {
    (void)s;
    size_t n = 0;
    char *orig = tu_read_file(VDATA "/mjpeg.avi", &n), p[600];
    assert_non_null(orig);
    assert_int_equal(tu_write_file(TU_PATH(p, "cut.avi"), orig, n * 70 / 100), 0);
    free(orig);
    stacl_video *v = NULL;
    assert_int_equal(stacl_video_open(&v, p, 1), STACL_OK);
    int64_t packets = 0, frames = 0;
    assert_int_equal(stacl_video_count_packets(v, &packets), STACL_OK);
    assert_int_equal(stacl_video_count_frames(v, &frames), STACL_OK);
    assert_int_equal(packets, 17);
    assert_int_equal(frames, 16);
    stacl_clip_spec spec = stacl_clip_spec_default();
    spec.num_frames = 17;
    stacl_clip_frames cf;
    assert_int_equal(stacl_clip_decode(v, &spec, 0, 0, &cf), STACL_OK);
    assert_int_equal(cf.n_frames, 16);
    assert_int_equal(cf.count_exact, 1);
    for (int i = 0; i < 17; i++) assert_int_equal(cf.idx[i], (2 * i + 1) * 16 / 34);
    stacl_clip_frames_release(&cf);
    /* the same with a training draw: indices stay inside the 16 frames */
    assert_int_equal(stacl_clip_decode(v, &spec, STACL_TRAIN_CLIP, 7, &cf), STACL_OK);
    assert_int_equal(cf.n_frames, 16);
    for (int i = 0; i < 17; i++) assert_true(cf.idx[i] >= 0 && cf.idx[i] < 16);
    stacl_clip_frames_release(&cf);
    stacl_video_free(v);
}

/* A one-frame video still makes a clip (every index 0), in both protocols. */
static void test_one_frame_video(void **s) {
    (void)s;
    char p[600];
    uint8_t rgb[16 * 16 * 3];
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 7);
    stacl_video_writer *w = NULL;
    assert_int_equal(stacl_video_writer_open(&w, TU_PATH(p, "one.mkv"), "ffv1", 16, 16, 5), STACL_OK);
    assert_int_equal(stacl_video_writer_add(w, rgb), STACL_OK);
    assert_int_equal(stacl_video_writer_close(w), STACL_OK);
    stacl_video *v = NULL;
    assert_int_equal(stacl_video_open(&v, p, 1), STACL_OK);
    stacl_clip_spec spec = stacl_clip_spec_default();
    for (int dense = 0; dense < 2; dense++) {
        spec.sampling = dense ? STACL_SAMPLING_DENSE : STACL_SAMPLING_UNIFORM;
        stacl_clip_frames cf;
        assert_int_equal(stacl_clip_decode(v, &spec, 0, 0, &cf), STACL_OK);
        assert_int_equal(cf.n_frames, 1);
        for (int i = 0; i < 8; i++) {
            assert_int_equal(cf.idx[i], 0);
            assert_memory_equal(cf.rgb + (size_t)i * sizeof rgb, cf.rgb, sizeof rgb);
        }
        stacl_clip_frames_release(&cf);
    }
    stacl_video_free(v);
}

/* Reads that start at a keyframe (the packet-timestamp index) give the same
 * bytes as decoding from frame 0, on every container/codec we have; and the
 * fast path is really taken where keyframes allow it. */
static void check_seek_equivalence(const char *path, int sets, int min_keyframe_starts) {
    stacl_video *fast = NULL, *slow = NULL;
    assert_int_equal(stacl_video_open(&fast, path, 1), STACL_OK);
    assert_int_equal(stacl_video_open(&slow, path, 1), STACL_OK);
    stacl_video_allow_seek(slow, 0);
    int64_t n = 0, m = 0;
    assert_int_equal(stacl_video_count_packets(fast, &n), STACL_OK);
    assert_int_equal(stacl_video_count_packets(slow, &m), STACL_OK);
    const stacl_video_info *in = stacl_video_get_info(fast);
    const size_t fs = (size_t)in->width * in->height * 3;
    uint8_t *a = malloc(4 * fs), *b = malloc(4 * fs);
    uint64_t rng = 99;
    for (int set = 0; set < sets; set++) {
        int64_t idx[4];
        for (int k = 0; k < 4; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            idx[k] = (int64_t)((rng >> 33) % (uint64_t)n);
        }
        if (set == 0) idx[0] = idx[1] = idx[2] = idx[3] = n - 1; /* the last frame alone */
        assert_int_equal(stacl_video_read_frames(fast, idx, 4, a, NULL), STACL_OK);
        assert_int_equal(stacl_video_read_frames(slow, idx, 4, b, NULL), STACL_OK);
        if (memcmp(a, b, 4 * fs) != 0)
            fail_msg("%s: frames %lld %lld %lld %lld differ between keyframe start and frame-0 start", path,
                     (long long)idx[0], (long long)idx[1], (long long)idx[2], (long long)idx[3]);
    }
    printf("  %-60s %d reads, %lld from a keyframe\n", path, sets, (long long)stacl_video_keyframe_starts(fast));
    assert_true(stacl_video_keyframe_starts(fast) >= min_keyframe_starts);
    assert_int_equal(stacl_video_keyframe_starts(slow), 0);
    free(a);
    free(b);
    stacl_video_free(fast);
    stacl_video_free(slow);
}

static void test_keyframe_start_equivalence(void **s) {
    (void)s;
    char p[600];
    /* 96 frames with a keyframe every 12, written by stacl (B-frames in H.264 and MPEG-4) */
    const char *codecs[] = {"h264", "mpeg4", "vp9"}, *ext[] = {"mp4", "mkv", "webm"};
    uint8_t *rgb = malloc(48 * 32 * 3);
    for (int c = 0; c < 3; c++) {
        char name[32];
        snprintf(name, sizeof name, "gop12.%s", ext[c]);
        stacl_video_writer *w = NULL;
        assert_int_equal(stacl_video_writer_open(&w, TU_PATH(p, name), codecs[c], 48, 32, 24), STACL_OK);
        for (int f = 0; f < 96; f++) {
            for (int i = 0; i < 48 * 32 * 3; i++) rgb[i] = (uint8_t)(i * 3 + f * 5 + ((i / 3) % 48 < f % 48 ? 90 : 0));
            assert_int_equal(stacl_video_writer_add(w, rgb), STACL_OK);
        }
        assert_int_equal(stacl_video_writer_close(w), STACL_OK);
        check_seek_equivalence(p, 40, 10);
    }
    free(rgb);
    const char *small[] = {"h264.mp4", "vp9.webm", "mjpeg.avi", "ffv1.mkv"};
    for (int k = 0; k < 4; k++) {
        snprintf(p, sizeof p, VDATA "/%s", small[k]);
        check_seek_equivalence(p, 20, 0);
    }
    check_seek_equivalence(OPENCV_DATA "/tree.avi", 6, 0);
    check_seek_equivalence(OPENCV_DATA "/vtest.avi", 2, 1);
    check_seek_equivalence(OPENCV_DATA "/Megamind.avi", 1, 0); /* no packet PTS in this AVI: always from 0 */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h264_mp4),   cmocka_unit_test(test_vp9_webm),
        cmocka_unit_test(test_mjpeg_avi),  cmocka_unit_test(test_ffv1_mkv),
        cmocka_unit_test(test_megamind),   cmocka_unit_test(test_vtest),
        cmocka_unit_test(test_tree_lies),  cmocka_unit_test(test_megamind_bugy_decodes),
        cmocka_unit_test(test_seek),       cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_truncated_resamples), cmocka_unit_test(test_one_frame_video),
        cmocka_unit_test(test_keyframe_start_equivalence),
    };
    return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
