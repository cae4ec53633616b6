/* cli_train.h: `stacl train`'s run configuration (what config.json in the
 * run folder holds, so that --resume needs nothing else) and the training
 * loop (cli_train_loop.c). */
#ifndef STACL_CLI_TRAIN_H
#define STACL_CLI_TRAIN_H

#include <limits.h>
#include <stdint.h>

#include "clip_sampling.h"
#include "stacl.h"

typedef struct train_cfg {
    char model[PATH_MAX], train_list[PATH_MAX], val_list[PATH_MAX], classes[PATH_MAX], out[PATH_MAX];
    stacl_adapter_config adapter; /* classes filled from the classes file */
    stacl_clip_spec clip;         /* training sampling; validation uses its test-time views */
    stacl_train_options opt;
    int epochs, warmup_epochs;
    int batch, micro_batch;       /* clips per optimizer step / per device pass */
    double lr;                    /* peak learning rate */
    uint64_t seed;
    int workers;
    int save_every;               /* optimizer steps between checkpoints (0: epoch ends only) */
    int val_every;                /* epochs between validations (0: only at the end) */
    char fixed_point[16];         /* "" (float) or a stacl_adapter_set_fixed_point format */
} train_cfg;

/* config.json in the run folder. */
int cli_train_write_config(const train_cfg *c, const char *path);
int cli_train_read_config(train_cfg *c, const char *path);

/* Runs (or resumes, when the run folder holds a checkpoint) the training
 * described by c. device may be NULL; profile prints the device time per
 * op at each epoch's end. Returns an exit code. */
int cli_train_run(const train_cfg *c, const char *device, int resume, int profile);

/* Predictions of an adapted model on a dataset: for sample i, pred[i] =
 * the class with the largest view-averaged probability, rank[i] = how many
 * classes score above the true one (0: top-1); both -1 for a video that
 * cannot be read. Returns 1, or 0 after printing the error. */
struct stacl_dataset;
int cli_train_predict(stacl_state *state, const stacl_adapter *ad, const struct stacl_dataset *ds,
                      const stacl_clip_spec *clip, int size, int workers, int classes, int *pred, int *rank);

#endif
