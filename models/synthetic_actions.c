/* synthetic_actions.c: renders the synthetic temporal-action clips (see
 * synthetic_actions.h). Per pixel: background texture, then the shape tested
 * in its own rotated/scaled frame, with stripes in shape coordinates so that
 * rotation is visible. */
#include "synthetic_actions.h"

#include <math.h>
#include <string.h>

const char *const stacl_synth_class_names[STACL_SYNTH_CLASSES] = {
    "moving right", "moving left", "moving down", "moving up",
    "rotating clockwise", "rotating counter-clockwise", "growing", "shrinking"};

static uint64_t next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double uni(uint64_t *s, double lo, double hi) { return lo + (hi - lo) * (double)(next(s) >> 11) * 0x1.0p-53; }

typedef struct params {
    double bg[2][3];       /* background colors */
    double bfx, bfy, bph;  /* background wave */
    double fg[2][3];       /* shape stripe colors */
    int shape;             /* 0 arrow-ish triangle, 1 L, 2 half disc */
    double stripe;         /* stripe frequency in shape units */
    double cx0, cy0, cx1, cy1; /* center path (fractions of the frame) */
    double a0, a1;         /* angle path (radians) */
    double s0, s1;         /* size path (fraction of the short side) */
} params;

/* Is (u, v) in [-1, 1]^2 shape coordinates inside the shape? Asymmetric
 * shapes, so a rotation can be told from its mirror. */
static int inside(int shape, double u, double v) {
    switch (shape) {
    case 0: return u >= -1 && u <= 1 && fabs(v) <= 0.5 * (1 - u) + 0.1;          /* wedge pointing right */
    case 1: return (u >= -1 && u <= -0.3 && v >= -1 && v <= 1) || (u >= -1 && u <= 1 && v >= 0.4 && v <= 1); /* L */
    default: return u * u + v * v <= 1 && (v >= -0.2 || u > 0.3);                 /* notched disc */
    }
}

void stacl_synth_render(int label, uint64_t seed, int w, int h, int frames, uint8_t *rgb) {
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + (uint64_t)(label / 2) + 1;
    params p;
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < 3; c++) p.bg[k][c] = uni(&s, 0, 255), p.fg[k][c] = uni(&s, 0, 255);
    p.bfx = uni(&s, 0.05, 0.4);
    p.bfy = uni(&s, 0.05, 0.4);
    p.bph = uni(&s, 0, 6.283);
    p.shape = (int)(next(&s) % 3);
    p.stripe = uni(&s, 2, 5);
    const double speed = uni(&s, 0.5, 1.0); /* how much of the range one clip covers */
    /* defaults: still, centered, upright, mid size; the pair's motion below */
    p.cx0 = p.cx1 = uni(&s, 0.4, 0.6);
    p.cy0 = p.cy1 = uni(&s, 0.4, 0.6);
    p.a0 = p.a1 = uni(&s, 0, 6.283);
    p.s0 = p.s1 = uni(&s, 0.18, 0.26);
    const int pair = label / 2;
    if (pair == 0 || pair == 1) { /* translation along x (pair 0) or y (pair 1) */
        double span = 0.55 * speed, start = uni(&s, 0.22, 0.78 - span);
        if (pair == 0) p.cx0 = start, p.cx1 = start + span;
        else p.cy0 = start, p.cy1 = start + span;
    } else if (pair == 2) { /* clockwise on screen (y down): angle increases */
        p.a1 = p.a0 + uni(&s, 1.5, 4.5) * speed;
    } else { /* growing */
        p.s0 = uni(&s, 0.12, 0.16);
        p.s1 = p.s0 * uni(&s, 1.8, 2.6) * (0.6 + 0.4 * speed);
    }
    const double short_side = w < h ? w : h;
    for (int f = 0; f < frames; f++) {
        /* the second class of a pair is the first in reverse order */
        int t_index = (label % 2) ? frames - 1 - f : f;
        double t = frames > 1 ? (double)t_index / (frames - 1) : 0.0;
        double cx = (p.cx0 + t * (p.cx1 - p.cx0)) * w, cy = (p.cy0 + t * (p.cy1 - p.cy0)) * h;
        double ang = p.a0 + t * (p.a1 - p.a0), size = (p.s0 + t * (p.s1 - p.s0)) * short_side;
        double ca = cos(ang), sa = sin(ang);
        uint8_t *out = rgb + (size_t)f * w * h * 3;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                double bx = 0.5 + 0.5 * sin(p.bfx * x + p.bph) * cos(p.bfy * y - p.bph);
                double col[3];
                for (int c = 0; c < 3; c++) col[c] = p.bg[0][c] * bx + p.bg[1][c] * (1 - bx);
                double dx = (x + 0.5 - cx) / size, dy = (y + 0.5 - cy) / size;
                double u = ca * dx + sa * dy, v = -sa * dx + ca * dy; /* rotate into shape coordinates */
                if (inside(p.shape, u, v)) {
                    int stripe = (int)floor((u + 1) * p.stripe) & 1;
                    for (int c = 0; c < 3; c++) col[c] = p.fg[stripe][c];
                }
                for (int c = 0; c < 3; c++) out[((size_t)y * w + x) * 3 + c] = (uint8_t)lrint(col[c]);
            }
        }
    }
}

const char *const stacl_synth_simple_names[STACL_SYNTH_CLASSES] = {
    "brightening", "darkening", "fading in", "fading out", "growing", "shrinking", "moving right", "moving left"};

void stacl_synth_render_simple(int label, uint64_t seed, int w, int h, int frames, uint8_t *rgb) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + (uint64_t)(label / 2) * 7919u + 3;
    double bg[2][3], fg[3];
    /* Shapes are always brighter than the background: appearing, growing
     * and fading in then raise the local intensity, so order shows as the
     * sign of a temporal intensity change (with free contrast polarity it
     * would also depend on colors, which random backbones separate poorly). */
    for (int c = 0; c < 3; c++) bg[0][c] = uni(&s, 20, 110), bg[1][c] = uni(&s, 20, 110), fg[c] = uni(&s, 190, 255);
    const double bfx = uni(&s, 0.05, 0.3), bfy = uni(&s, 0.05, 0.3), bph = uni(&s, 0, 6.283);
    const int shape = (int)(next(&s) % 3);
    const int pair = label / 2;
    /* Per-pair paths over t in [0, 1]: brightness gain, shape opacity, size
     * and center. */
    double g0 = 1, g1 = 1, a0 = 1, a1 = 1, s0 = 0.25, s1 = 0.25, cx0 = 0.5, cx1 = 0.5;
    const double cy = uni(&s, 0.4, 0.6);
    if (pair == 0) g0 = uni(&s, 0.25, 0.45), g1 = uni(&s, 0.95, 1.2), a0 = a1 = 0; /* no shape */
    else if (pair == 1) a0 = 0, a1 = 1, s0 = s1 = uni(&s, 0.22, 0.32), cx0 = cx1 = uni(&s, 0.4, 0.6);
    else if (pair == 2) s0 = uni(&s, 0.08, 0.12), s1 = uni(&s, 0.3, 0.4), cx0 = cx1 = uni(&s, 0.4, 0.6);
    else cx0 = uni(&s, 0.15, 0.3), cx1 = uni(&s, 0.7, 0.85), s0 = s1 = uni(&s, 0.18, 0.26);
    const double short_side = w < h ? w : h;
    for (int f = 0; f < frames; f++) {
        const int t_index = (label % 2) ? frames - 1 - f : f; /* the pair's second class: reversed */
        const double t = frames > 1 ? (double)t_index / (frames - 1) : 0.0;
        const double gain = g0 + t * (g1 - g0), alpha = a0 + t * (a1 - a0), size = (s0 + t * (s1 - s0)) * short_side;
        const double cx = (cx0 + t * (cx1 - cx0)) * w, cyy = cy * h;
        uint8_t *out = rgb + (size_t)f * w * h * 3;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                const double bx = 0.5 + 0.5 * sin(bfx * x + bph) * cos(bfy * y - bph);
                double col[3];
                for (int c = 0; c < 3; c++) col[c] = (bg[0][c] * bx + bg[1][c] * (1 - bx)) * gain;
                if (alpha > 0 && inside(shape, (x + 0.5 - cx) / size, (y + 0.5 - cyy) / size))
                    for (int c = 0; c < 3; c++) col[c] = alpha * fg[c] + (1 - alpha) * col[c];
                for (int c = 0; c < 3; c++) {
                    const double v = col[c] < 0 ? 0 : col[c] > 255 ? 255 : col[c];
                    out[((size_t)y * w + x) * 3 + c] = (uint8_t)lrint(v);
                }
            }
    }
}
