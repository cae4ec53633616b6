/* cmd_train.c: `stacl train`: options, presets and the run folder's
 * config.json (written at the start, read back by --resume). The loop is
 * in cli_train_loop.c. */
#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic_file.h"
#include "cli.h"
#include "cli_train.h"

static void usage(void) {
    printf("usage: stacl train --model DIR --train LIST --val LIST --classes CLASSES.csv --out RUN_DIR\n"
           "                   [--preset 12x384|24x384|head] [--adapter-width 384] [--adapter-layers 12]\n"
           "                   [--pre-attn] [--pre-mlp] [--kernel 3,1,1]\n"
           "                   [--num-frames 8] [--sampling uniform|dense] [--sampling-rate 16]\n"
           "                   [--epochs 12] [--warmup-epochs 2] [--lr LR] [--batch 8] [--micro-batch 1]\n"
           "                   [--weight-decay 0.01] [--label-smoothing 0] [--dropout 0.5] [--clip-grad 0]\n"
           "                   [--seed 0] [--workers 2] [--save-every 0] [--val-every 1] [--recompute]\n"
           "                   [--fixed-point q8.8|q4.12|int8[/qI.F]] [--fixed-update master|sr]\n"
           "                   [--device D] [--profile]\n"
           "       stacl train --resume RUN_DIR [--device D] [--profile]\n\n"
           "Trains ST-Adapter adapters and a linear head on a frozen CLIP vision tower. Adapters (fc1 ->\n"
           "depthwise 3D conv -> fc2 on the patch tokens) go in the last --adapter-layers blocks, before\n"
           "attention (--pre-attn) and/or before the MLP (--pre-mlp). Presets as the reference code:\n"
           "12x384 = pre-MLP in all blocks, width 384 (K400); 24x384 = pre-attention and pre-MLP (SSv2);\n"
           "head = no adapters (the frozen backbone with a linear head on frame-averaged class tokens).\n"
           "Head: class tokens averaged over frames, ln_post, dropout, fc. Loss: cross-entropy (with\n"
           "--label-smoothing). AdamW (betas 0.9/0.999, eps 1e-8, decoupled weight decay on weights, not\n"
           "biases), linear warmup from 0 for --warmup-epochs then cosine decay to 0, per step; --lr\n"
           "defaults to the reference recipe's 1e-3 per 256 clips scaled to --batch. --batch clips make an\n"
           "optimizer step, run --micro-batch at a time on the device with gradients accumulated;\n"
           "--clip-grad caps the global gradient norm; --recompute keeps only each block's input and\n"
           "recomputes the rest in the backward pass (less memory, about a third more time).\n"
           "--fixed-point runs the adapters (fc1, conv, fc2) in integer arithmetic, forward and backward\n"
           "(docs/fpga.md): qI.F = 16-bit weights with F fractional bits, int8 = 8-bit weights with a\n"
           "power-of-two scale per output channel; activations q8.8 unless /qI.F follows (q4.12/q5.11:\n"
           "activations with 11 fractional bits, range +-32); the backbone and the head stay fp32.\n"
           "--fixed-update master (default) keeps fp32 master weights and rounds them after each step; sr\n"
           "applies each update to the fixed-point weights with stochastic rounding (no master copy).\n"
           "adapter.safetensors then holds integer tensors (loads with --adapter as fixed point).\n\n"
           "RUN_DIR gets: adapter.safetensors (adapters + head, the reference names: loads with\n"
           "--adapter), train_state.safetensors (AdamW moments, step, data position), classes.csv,\n"
           "config.json (this run's settings) and log.jsonl (one JSON object per step and validation).\n"
           "Checkpoints are written atomically every --save-every steps and at each epoch end; Ctrl-C\n"
           "saves the last completed step and exits; --resume RUN_DIR continues exactly where it\n"
           "stopped (same data order, same random draws). --profile prints the device time per op (OpenCL\n"
           "events) at each epoch's end.\n");
}

static int parse_kernel(const char *v, int k[3]) {
    if (sscanf(v, "%d,%d,%d", &k[0], &k[1], &k[2]) != 3)
        return cli_usage_error("train", "--kernel wants kt,kh,kw (e.g. 3,1,1), got '%s'", v), 0;
    return 1;
}

static int parse_float(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi))
        return cli_usage_error("train", "%s must be a number in [%g, %g], got '%s'", opt, lo, hi, v), 0;
    *out = x;
    return 1;
}

static int apply_preset(const char *name, stacl_adapter_config *a) {
    if (strcmp(name, "12x384") == 0) *a = (stacl_adapter_config){384, {3, 1, 1}, 12, 0, 1, 0};
    else if (strcmp(name, "24x384") == 0) *a = (stacl_adapter_config){384, {3, 1, 1}, 12, 1, 1, 0};
    else if (strcmp(name, "head") == 0) *a = (stacl_adapter_config){0, {1, 1, 1}, 0, 0, 0, 0};
    else return cli_usage_error("train", "unknown --preset '%s' (12x384, 24x384 or head)", name), 0;
    return 1;
}

static void copy_path(char *dst, const char *src) { snprintf(dst, PATH_MAX, "%s", src); }

/* ---- config.json ---- */

int cli_train_write_config(const train_cfg *c, const char *path) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", c->model);
    cJSON_AddStringToObject(j, "train", c->train_list);
    cJSON_AddStringToObject(j, "val", c->val_list);
    cJSON_AddStringToObject(j, "classes", c->classes);
    cJSON_AddNumberToObject(j, "adapter_width", c->adapter.width);
    cJSON_AddItemToObject(j, "kernel", cJSON_CreateIntArray(c->adapter.kernel, 3));
    cJSON_AddNumberToObject(j, "adapter_layers", c->adapter.layers);
    cJSON_AddBoolToObject(j, "pre_attn", c->adapter.pre_attn);
    cJSON_AddBoolToObject(j, "pre_mlp", c->adapter.pre_mlp);
    cJSON_AddNumberToObject(j, "num_frames", c->clip.num_frames);
    cJSON_AddStringToObject(j, "sampling", c->clip.sampling == STACL_SAMPLING_DENSE ? "dense" : "uniform");
    cJSON_AddNumberToObject(j, "sampling_rate", c->clip.sampling_rate);
    cJSON_AddNumberToObject(j, "epochs", c->epochs);
    cJSON_AddNumberToObject(j, "warmup_epochs", c->warmup_epochs);
    cJSON_AddNumberToObject(j, "batch", c->batch);
    cJSON_AddNumberToObject(j, "micro_batch", c->micro_batch);
    cJSON_AddNumberToObject(j, "lr", c->lr);
    cJSON_AddNumberToObject(j, "weight_decay", c->opt.weight_decay);
    cJSON_AddNumberToObject(j, "label_smoothing", c->opt.label_smoothing);
    cJSON_AddNumberToObject(j, "dropout", c->opt.dropout);
    cJSON_AddNumberToObject(j, "clip_grad", c->opt.clip_norm);
    cJSON_AddBoolToObject(j, "recompute", c->opt.recompute);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    cJSON_AddStringToObject(j, "seed", seed); /* a string: JSON numbers lose 64-bit integers */
    cJSON_AddNumberToObject(j, "workers", c->workers);
    cJSON_AddNumberToObject(j, "save_every", c->save_every);
    cJSON_AddNumberToObject(j, "val_every", c->val_every);
    cJSON_AddStringToObject(j, "fixed_point", c->fixed_point);
    cJSON_AddStringToObject(j, "fixed_update", c->opt.fixed_sr_update ? "sr" : "master");
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return fprintf(stderr, "stacl train: error: out of memory\n"), 0;
    stacl_atomic_file af = {0};
    stacl_status st = stacl_atomic_open(&af, path, 0);
    if (st == STACL_OK) st = stacl_atomic_write(&af, text, strlen(text));
    if (st == STACL_OK) st = stacl_atomic_write(&af, "\n", 1);
    if (st == STACL_OK) st = stacl_atomic_commit(&af);
    stacl_atomic_abort(&af);
    free(text);
    if (st != STACL_OK) return cli_fail("train", st), 0;
    return 1;
}

static int get_num(const cJSON *j, const char *key, double *out, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v) && !cJSON_IsBool(v)) {
        fprintf(stderr, "stacl train: error: %s: missing or non-numeric '%s'\n", path, key);
        return 0;
    }
    *out = cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? 1.0 : 0.0) : v->valuedouble;
    return 1;
}

static int get_str(const cJSON *j, const char *key, char *out, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsString(v)) {
        fprintf(stderr, "stacl train: error: %s: missing or non-string '%s'\n", path, key);
        return 0;
    }
    snprintf(out, PATH_MAX, "%s", v->valuestring);
    return 1;
}

int cli_train_read_config(train_cfg *c, const char *path) {
    size_t n = 0;
    char *text = NULL;
    FILE *f = fopen(path, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        text = len >= 0 ? malloc((size_t)len + 1) : NULL;
        if (text) n = fread(text, 1, (size_t)len, f), text[n] = '\0';
        fclose(f);
    }
    if (!text) {
        fprintf(stderr, "stacl train: error: cannot read '%s': %s\n", path, strerror(errno));
        return 0;
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) return fprintf(stderr, "stacl train: error: %s: not valid JSON\n", path), 0;
    double v[20];
    char sampling[PATH_MAX], seed[PATH_MAX];
    const cJSON *kernel = cJSON_GetObjectItemCaseSensitive(j, "kernel");
    int ok = get_str(j, "model", c->model, path) && get_str(j, "train", c->train_list, path) &&
             get_str(j, "val", c->val_list, path) && get_str(j, "classes", c->classes, path) &&
             get_str(j, "sampling", sampling, path) && get_str(j, "seed", seed, path) &&
             get_num(j, "adapter_width", &v[0], path) && get_num(j, "adapter_layers", &v[1], path) &&
             get_num(j, "pre_attn", &v[2], path) && get_num(j, "pre_mlp", &v[3], path) &&
             get_num(j, "num_frames", &v[4], path) && get_num(j, "sampling_rate", &v[5], path) &&
             get_num(j, "epochs", &v[6], path) && get_num(j, "warmup_epochs", &v[7], path) &&
             get_num(j, "batch", &v[8], path) && get_num(j, "micro_batch", &v[9], path) &&
             get_num(j, "lr", &v[10], path) && get_num(j, "weight_decay", &v[11], path) &&
             get_num(j, "label_smoothing", &v[12], path) && get_num(j, "dropout", &v[13], path) &&
             get_num(j, "clip_grad", &v[14], path) && get_num(j, "recompute", &v[15], path) &&
             get_num(j, "workers", &v[16], path) && get_num(j, "save_every", &v[17], path) &&
             get_num(j, "val_every", &v[18], path);
    if (ok && (!cJSON_IsArray(kernel) || cJSON_GetArraySize(kernel) != 3)) {
        fprintf(stderr, "stacl train: error: %s: 'kernel' must be [kt, kh, kw]\n", path);
        ok = 0;
    }
    if (ok) {
        for (int i = 0; i < 3; i++) c->adapter.kernel[i] = cJSON_GetArrayItem(kernel, i)->valueint;
        c->adapter.width = (int)v[0];
        c->adapter.layers = (int)v[1];
        c->adapter.pre_attn = (int)v[2];
        c->adapter.pre_mlp = (int)v[3];
        c->clip.num_frames = (int)v[4];
        c->clip.sampling = strcmp(sampling, "dense") == 0 ? STACL_SAMPLING_DENSE : STACL_SAMPLING_UNIFORM;
        c->clip.sampling_rate = (int)v[5];
        c->epochs = (int)v[6];
        c->warmup_epochs = (int)v[7];
        c->batch = (int)v[8];
        c->micro_batch = (int)v[9];
        c->lr = v[10];
        c->opt.weight_decay = (float)v[11];
        c->opt.label_smoothing = (float)v[12];
        c->opt.dropout = (float)v[13];
        c->opt.clip_norm = (float)v[14];
        c->opt.recompute = (int)v[15];
        c->workers = (int)v[16];
        c->save_every = (int)v[17];
        c->val_every = (int)v[18];
        c->seed = strtoull(seed, NULL, 10);
        /* Absent in runs from before fixed point: float. */
        const cJSON *fp = cJSON_GetObjectItemCaseSensitive(j, "fixed_point");
        const cJSON *fu = cJSON_GetObjectItemCaseSensitive(j, "fixed_update");
        snprintf(c->fixed_point, sizeof c->fixed_point, "%s", cJSON_IsString(fp) ? fp->valuestring : "");
        c->opt.fixed_sr_update = cJSON_IsString(fu) && strcmp(fu->valuestring, "sr") == 0;
        c->opt.fixed_seed = c->seed;
    }
    cJSON_Delete(j);
    return ok;
}

/* ---- the command ---- */

int cmd_train(int argc, char **argv) {
    static const cli_opt opts[] = {
        {"--model", 1},          {"--train", 1},         {"--val", 1},          {"--classes", 1},
        {"--out", 1},            {"--preset", 1},        {"--adapter-width", 1}, {"--adapter-layers", 1},
        {"--pre-attn", 0},       {"--pre-mlp", 0},       {"--kernel", 1},       {"--num-frames", 1},
        {"--sampling", 1},       {"--sampling-rate", 1}, {"--epochs", 1},       {"--warmup-epochs", 1},
        {"--lr", 1},             {"--batch", 1},         {"--micro-batch", 1},  {"--weight-decay", 1},
        {"--label-smoothing", 1}, {"--dropout", 1},      {"--clip-grad", 1},    {"--seed", 1},
        {"--workers", 1},        {"--threads", 1},       {"--save-every", 1},   {"--val-every", 1},
        {"--recompute", 0},      {"--device", 1},        {"--resume", 1},       {"--help", 0},
        {"--profile", 0},        {"--fixed-point", 1},   {"--fixed-update", 1}};
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    cli_args a = {argc, argv, 1, "train", 0};
    train_cfg c;
    memset(&c, 0, sizeof c);
    c.adapter = (stacl_adapter_config){384, {3, 1, 1}, 12, 0, 1, 0};
    c.clip = stacl_clip_spec_default();
    c.opt = stacl_train_options_default();
    c.epochs = 12;
    c.warmup_epochs = 2;
    c.batch = 8;
    c.micro_batch = 1;
    c.lr = -1.0;
    c.workers = 2;
    c.val_every = 1;
    const char *device = NULL, *resume = NULL, *value;
    int sites_given = 0, others = 0, profile = 0, fixed_update = 0, k;
    double x;
    while ((k = cli_next(&a, opts, n_opts, &value)) >= 0) {
        int ok = 1;
        if (k != 29 && k != 30 && k != 32) others = 1;
        switch (k) {
        case 0: copy_path(c.model, value); break;
        case 1: copy_path(c.train_list, value); break;
        case 2: copy_path(c.val_list, value); break;
        case 3: copy_path(c.classes, value); break;
        case 4: copy_path(c.out, value); break;
        case 5: ok = apply_preset(value, &c.adapter); sites_given = 1; break;
        case 6: ok = cli_int("train", "--adapter-width", value, 1, 100000, &c.adapter.width); break;
        case 7: ok = cli_int("train", "--adapter-layers", value, 0, 1000, &c.adapter.layers); break;
        case 8:
        case 9:
            if (!sites_given) c.adapter.pre_attn = c.adapter.pre_mlp = 0; /* the flags replace the default */
            sites_given = 1;
            *(k == 8 ? &c.adapter.pre_attn : &c.adapter.pre_mlp) = 1;
            break;
        case 10: ok = parse_kernel(value, c.adapter.kernel); break;
        case 11: ok = cli_int("train", "--num-frames", value, 1, 4096, &c.clip.num_frames); break;
        case 12:
            if (strcmp(value, "uniform") == 0) c.clip.sampling = STACL_SAMPLING_UNIFORM;
            else if (strcmp(value, "dense") == 0) c.clip.sampling = STACL_SAMPLING_DENSE;
            else ok = (cli_usage_error("train", "--sampling must be uniform or dense, got '%s'", value), 0);
            break;
        case 13: ok = cli_int("train", "--sampling-rate", value, 1, 100000, &c.clip.sampling_rate); break;
        case 14: ok = cli_int("train", "--epochs", value, 1, 100000, &c.epochs); break;
        case 15: ok = cli_int("train", "--warmup-epochs", value, 0, 100000, &c.warmup_epochs); break;
        case 16: ok = parse_float("--lr", value, 0.0, 10.0, &c.lr); break;
        case 17: ok = cli_int("train", "--batch", value, 1, 1 << 20, &c.batch); break;
        case 18: ok = cli_int("train", "--micro-batch", value, 1, 4096, &c.micro_batch); break;
        case 19: ok = parse_float("--weight-decay", value, 0.0, 10.0, &x); c.opt.weight_decay = (float)x; break;
        case 20: ok = parse_float("--label-smoothing", value, 0.0, 1.0, &x); c.opt.label_smoothing = (float)x; break;
        case 21: ok = parse_float("--dropout", value, 0.0, 0.99, &x); c.opt.dropout = (float)x; break;
        case 22: ok = parse_float("--clip-grad", value, 0.0, 1e9, &x); c.opt.clip_norm = (float)x; break;
        case 23: {
            char *end = NULL;
            errno = 0;
            c.seed = strtoull(value, &end, 10);
            if (errno || end == value || *end) ok = (cli_usage_error("train", "--seed must be an integer, got '%s'", value), 0);
            break;
        }
        case 24:
        case 25: ok = cli_int("train", opts[k].name, value, 1, 256, &c.workers); break;
        case 26: ok = cli_int("train", "--save-every", value, 0, 1 << 30, &c.save_every); break;
        case 27: ok = cli_int("train", "--val-every", value, 0, 1 << 30, &c.val_every); break;
        case 28: c.opt.recompute = 1; break;
        case 29: device = value; break;
        case 30: resume = value; break;
        case 31: usage(); return 0;
        case 32: profile = 1; break;
        case 33: {
            stacl_status fst = stacl_adapter_fixed_format_check(value);
            if (fst != STACL_OK) ok = (cli_usage_error("train", "--fixed-point: %s", stacl_last_error()), 0);
            else snprintf(c.fixed_point, sizeof c.fixed_point, "%s", value);
            break;
        }
        case 34:
            if (strcmp(value, "master") == 0) c.opt.fixed_sr_update = 0;
            else if (strcmp(value, "sr") == 0) c.opt.fixed_sr_update = 1;
            else ok = (cli_usage_error("train", "--fixed-update must be master or sr, got '%s'", value), 0);
            fixed_update = 1;
            break;
        }
        if (!ok) return CLI_EXIT_USAGE;
    }
    if (k == -2) return CLI_EXIT_USAGE;
    char path[PATH_MAX + 32];
    if (resume) {
        if (others)
            return cli_usage_error("train", "--resume takes its settings from RUN_DIR/config.json: give only "
                                   "--resume RUN_DIR [--device D]");
        snprintf(path, sizeof path, "%s/config.json", resume);
        if (!cli_train_read_config(&c, path)) return CLI_EXIT_FAILURE;
        copy_path(c.out, resume);
        return cli_train_run(&c, device, 1, profile);
    }
    if (!*c.model || !*c.train_list || !*c.val_list || !*c.classes || !*c.out)
        return cli_usage_error("train", "--model, --train, --val, --classes and --out are required (see --help)");
    if (fixed_update && !*c.fixed_point) return cli_usage_error("train", "--fixed-update needs --fixed-point");
    if (*c.fixed_point && (!c.adapter.layers || (!c.adapter.pre_attn && !c.adapter.pre_mlp)))
        return cli_usage_error("train", "--fixed-point needs adapters (the head stays float)");
    c.opt.fixed_seed = c.seed;
    if (c.micro_batch > c.batch) c.micro_batch = c.batch;
    if (c.warmup_epochs >= c.epochs && c.warmup_epochs > 0)
        return cli_usage_error("train", "--warmup-epochs %d must be less than --epochs %d", c.warmup_epochs, c.epochs);
    if (c.lr < 0.0) c.lr = 1e-3 * c.batch / 256.0; /* the reference recipe: 1e-3 per 256 clips */
    if (mkdir(c.out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "stacl train: error: cannot create run folder '%s': %s\n", c.out, strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    snprintf(path, sizeof path, "%s/train_state.safetensors", c.out);
    FILE *existing = fopen(path, "rb");
    if (existing) {
        fclose(existing);
        fprintf(stderr, "stacl train: error: '%s' already holds a training run: continue it with --resume %s, or "
                "choose another --out\n", c.out, c.out);
        return CLI_EXIT_FAILURE;
    }
    snprintf(path, sizeof path, "%s/config.json", c.out);
    if (!cli_check_writable("train", path) || !cli_train_write_config(&c, path)) return CLI_EXIT_FAILURE;
    return cli_train_run(&c, device, 0, profile);
}
