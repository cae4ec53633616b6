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
