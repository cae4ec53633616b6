/* tune_search.h: the parameter search behind `stacl tune` (tune_search.c).
 * Library code: it prints nothing and reports progress through a callback. */
#ifndef STACL_TUNE_SEARCH_H
#define STACL_TUNE_SEARCH_H

#include "tune.h"

typedef struct stacl_tune_progress {
    const char *phase;     /* "Xgemm", "XgemmDirect", "Padtranspose", "Transpose", "Pad", "Copy", "routine" */
    int index, total;      /* 1-based step, candidates in the phase */
    const char *candidate; /* "GEMMK=0 KREG=1 ..." (or the shape, phase "routine") */
    int accepted;          /* passed verification and ran */
    const char *reason;    /* why rejected ("" if accepted); the path chosen in phase "routine" */
    double ms, best_ms;    /* weighted GEMM time per forward of this candidate, best so far */
    double elapsed_s;
} stacl_tune_progress;

typedef struct stacl_tune_options {
    double budget_s; /* 0: 300 s; phases stop starting candidates at 45% (Xgemm), 65% (XgemmDirect)
                        and 90% (the layout kernels) of it */
    int frames;      /* clip length of the ViT-B/16 shapes (0: 8) */
    int training;    /* also the shapes only training's backward pass runs */
    int reps;        /* timed calls per shape and candidate, fastest taken (0: 3) */
    /* Tests and experiments: fixed candidate lists (visited in order) instead
     * of the generated spaces, and shapes instead of ViT-B/16's (each called
     * once per "forward", beta 0). */
    const size_t (*xgemm)[16];
    int n_xgemm;
    const size_t (*direct)[10];
    int n_direct;
    const stacl_tune_shape *shapes;
    int n_shapes;
    /* Experiments only: run known-bad sets (stacl_tune_known_bad) instead of
     * excluding them; GEMMK=1 corrupts the heap on PoCL + CLBlast 1.5.3. */
    int allow_known_bad;
    /* Tests: skip the layout-kernel phase (Padtranspose, Transpose, Pad, Copy). */
    int no_layout;
    /* Tests: return nonzero to corrupt one element of this candidate's
     * result before verification (a wrong kernel). */
    int (*inject)(void *user, const char *phase, int step);
    void (*progress)(void *user, const stacl_tune_progress *p);
    void *user;
} stacl_tune_options;

typedef struct stacl_tune_phase_report {
    int tried, rejected, best; /* best: index in the candidate list, -1 none */
    double first_ms, best_ms;  /* the starting set's and the best weighted time */
} stacl_tune_phase_report;

typedef struct stacl_tune_report {
    stacl_tune_phase_report xgemm, direct;
    stacl_tune_phase_report layout[4]; /* Padtranspose, Transpose, Pad, Copy (tried 0: skipped) */
    double elapsed_s;
} stacl_tune_report;

/* Searches within the budget and fills out (keyed to ctx's device) with the
 * winners and the per-shape routine table; leaves the winners applied. */
/* The ViT-B/16 GEMM shapes tuned by default for `frames` frames (0: 8),
 * with `training` also the backward pass's, and how many times each runs
 * per clip (weights, may be NULL); returns the count (at most cap). */
int stacl_tune_default_shapes(int frames, int training, stacl_tune_shape *out, int *weights, int cap);

stacl_status stacl_tune_search(stacl_ctx *ctx, const stacl_tune_options *o, stacl_tune *out,
                               stacl_tune_report *rep);

#endif
