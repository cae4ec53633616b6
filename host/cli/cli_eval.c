/* cli_eval.c: the evaluation loop over a dataset list and its reports,
 * shared by `stacl eval --zeroshot` and `stacl eval --adapter` (see
 * cli_eval.h). */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "cli.h"
#include "cli_eval.h"
#include "loader.h"
#include "npy.h"

int cli_eval_check_outputs(const char *command, const cli_eval_outputs *o) {
    const char *paths[3] = {o->json, o->confusion, o->probs};
    for (int i = 0; i < 3; i++)
        if (paths[i] && !cli_check_writable(command, paths[i])) return 0;
    return 1;
}

int cli_eval_load_list(const char *command, const char *classes_path, const char *list, stacl_names *classes,
                       stacl_dataset **ds) {
    stacl_status st;
    if ((st = stacl_class_names_load(classes_path, classes)) != STACL_OK ||
        (st = stacl_dataset_load(ds, list, classes_path)) != STACL_OK)
        return cli_fail(command, st);
    if (stacl_dataset_num_classes(*ds) != classes->n) {
        fprintf(stderr, "stacl %s: error: %s has %d classes but the dataset sees %d\n", command, classes_path,
                classes->n, stacl_dataset_num_classes(*ds));
        return CLI_EXIT_FAILURE;
    }
    for (int r = 0; r < stacl_dataset_num_rejected(*ds); r++)
        fprintf(stderr, "stacl %s: warning: skipped %s\n", command, stacl_dataset_rejected(*ds, r));
    return 0;
}

void cli_progress_start(cli_progress *p, int enabled) {
    p->t0 = cli_now_ms();
    p->last = 0.0;
    p->tty = isatty(STDERR_FILENO);
    p->open = 0;
    p->enabled = enabled;
}

void cli_progress_show(cli_progress *p, const char *command, int done, int total, int failed) {
    double now = cli_now_ms();
    if (!p->enabled || done <= 0 || now - p->t0 < 2000.0 || now - p->last < (p->tty ? 1000.0 : 30000.0)) return;
    p->last = now;
    double rate = done / ((now - p->t0) / 1000.0), eta = (total - done) / rate;
    fprintf(stderr, "%s%s: %d/%d videos (%d unreadable), %.2f videos/s, about %.0f s left%s", p->tty ? "\r" : "",
            command, done, total, failed, rate, eta, p->tty ? "   " : "\n");
    p->open = p->tty;
}

void cli_progress_break(cli_progress *p) {
    if (p->open) fputc('\n', stderr);
    p->open = 0;
}

int cli_eval_run(const char *command, const stacl_dataset *ds, int classes, stacl_model *model,
                 const stacl_clip_spec *spec, int S, int workers, const cli_eval_outputs *o, cli_eval_score_fn score,
                 void *user, cli_eval_result *r) {
    const int C = classes, N = stacl_dataset_size(ds), T = spec->num_frames;
    memset(r, 0, sizeof *r);
    stacl_state *state = NULL;
    stacl_loader *loader = NULL;
    float *avg = NULL;
    int rc = 0;
    stacl_loader_config lc = stacl_loader_config_default();
    lc.workers = workers;
    lc.clip = *spec;
    lc.size = S;
    stacl_status st;
    if ((st = stacl_state_create(&state, model, T)) != STACL_OK ||
        (st = stacl_loader_create(&loader, ds, &lc)) != STACL_OK) {
        rc = cli_fail(command, st);
        goto done;
    }
    avg = malloc((size_t)C * sizeof *avg);
    r->hits1 = calloc((size_t)C, sizeof *r->hits1);
    r->counts = calloc((size_t)C, sizeof *r->counts);
    r->failed = calloc((size_t)N + 1, sizeof *r->failed);
    if (o->confusion) r->confusion = calloc((size_t)C * C, sizeof *r->confusion);
    if (o->probs) r->probs = malloc((size_t)N * C * sizeof *r->probs);
    if (!avg || !r->hits1 || !r->counts || !r->failed || (o->confusion && !r->confusion) || (o->probs && !r->probs)) {
        rc = cli_fail(command, STACL_ERR_OUT_OF_MEMORY);
        goto done;
    }
    cli_progress prog;
    cli_progress_start(&prog, 1);
    for (int pos = 0;; pos++) {
        cli_progress_show(&prog, command, pos, N, r->skipped);
        const stacl_sample *s = NULL;
        if ((st = stacl_loader_next(loader, &s)) != STACL_OK) { rc = cli_fail(command, st); goto done; }
        if (!s) break;
        if (r->probs)
            for (int c = 0; c < C; c++) r->probs[(size_t)s->index * C + c] = NAN;
        if (!s->ok) {
            cli_progress_break(&prog);
            fprintf(stderr, "stacl %s: warning: skipped %s\n", command, s->error);
            const char *path = stacl_dataset_path(ds, s->index);
            char *f = malloc(strlen(path) + strlen(s->error) + 2);
            if (f) sprintf(f, "%s\t%s", path, s->error);
            r->failed[r->skipped++] = f;
            continue;
        }
        if ((st = score(user, state, s->pixels, s->views, T, avg)) != STACL_OK) { rc = cli_fail(command, st); goto done; }
        if (r->probs) memcpy(r->probs + (size_t)s->index * C, avg, (size_t)C * sizeof *avg);
        /* Rank of the true class: how many classes score higher. */
        int higher = 0, best = 0;
        for (int c = 0; c < C; c++) {
            higher += avg[c] > avg[s->label];
            if (avg[c] > avg[best]) best = c;
        }
        r->top1 += higher == 0;
        r->top5 += higher < 5;
        r->hits1[s->label] += higher == 0;
        r->counts[s->label]++;
        if (r->confusion) r->confusion[(size_t)s->label * C + (higher == 0 ? s->label : best)]++;
        r->videos++;
    }
    cli_progress_break(&prog);
    r->seconds = (cli_now_ms() - prog.t0) / 1000.0;
done:
    stacl_loader_free(loader);
    stacl_state_free(state);
    free(avg);
    return rc;
}

void cli_eval_result_free(cli_eval_result *r) {
    free(r->hits1);
    free(r->counts);
    free(r->confusion);
    free(r->probs);
    for (int i = 0; r->failed && i < r->skipped; i++) free(r->failed[i]);
    free(r->failed);
    memset(r, 0, sizeof *r);
}

/* ---- files ---- */

static int write_text(const char *command, const char *path, const char *text, size_t n) {
    stacl_atomic_file af = {0};
    stacl_status st = stacl_atomic_open(&af, path, 0);
    if (st == STACL_OK) st = stacl_atomic_write(&af, text, n);
    if (st == STACL_OK) st = stacl_atomic_commit(&af);
    stacl_atomic_abort(&af);
    return st == STACL_OK ? 0 : cli_fail(command, st);
}

/* A CSV field, quoted (RFC 4180) when it holds a comma, quote or line break. */
static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int write_confusion(const char *command, const char *path, const cli_eval_result *r, const stacl_names *cls) {
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    if (!f) return cli_fail(command, STACL_ERR_OUT_OF_MEMORY);
    fputs("true\\predicted", f);
    for (int c = 0; c < cls->n; c++) fputc(',', f), csv_field(f, cls->v[c]);
    fputc('\n', f);
    for (int t = 0; t < cls->n; t++) {
        csv_field(f, cls->v[t]);
        for (int p = 0; p < cls->n; p++) fprintf(f, ",%d", r->confusion[(size_t)t * cls->n + p]);
        fputc('\n', f);
    }
    int bad = ferror(f);
    fclose(f);
    int rc = bad || !text ? cli_fail(command, STACL_ERR_OUT_OF_MEMORY) : write_text(command, path, text, n);
    free(text);
    return rc;
}

static double mean_class_accuracy(const cli_eval_result *r, int C, int *present) {
    double sum = 0.0;
    *present = 0;
    for (int c = 0; c < C; c++)
        if (r->counts[c]) sum += (double)r->hits1[c] / r->counts[c], (*present)++;
    return *present ? sum / *present : 0.0;
}

static int write_json(const char *command, const cli_eval_result *r, const stacl_names *cls, const stacl_dataset *ds,
                      const stacl_clip_spec *spec, const cli_eval_outputs *o, const char *mode,
                      const char *model_path, const char *adapter_path, const char *classes_path, const char *list) {
    int present;
    const double mean_class = mean_class_accuracy(r, cls->n, &present), n = r->videos ? r->videos : 1;
    cJSON *j = cJSON_CreateObject(), *pc = cJSON_CreateArray(), *failed = cJSON_CreateArray(),
          *rejected = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "mode", mode);
    cJSON_AddStringToObject(j, "model", model_path);
    if (adapter_path) cJSON_AddStringToObject(j, "adapter", adapter_path);
    cJSON_AddStringToObject(j, "classes_file", classes_path);
    cJSON_AddStringToObject(j, "list", list);
    cJSON_AddNumberToObject(j, "classes", cls->n);
    cJSON_AddNumberToObject(j, "num_frames", spec->num_frames);
    cJSON_AddStringToObject(j, "sampling", spec->sampling == STACL_SAMPLING_DENSE ? "dense" : "uniform");
    cJSON_AddNumberToObject(j, "sampling_rate", spec->sampling_rate);
    cJSON_AddNumberToObject(j, "temporal_views", spec->temporal_views);
    cJSON_AddNumberToObject(j, "spatial_views", spec->spatial_views);
    cJSON_AddNumberToObject(j, "entries", stacl_dataset_size(ds));
    cJSON_AddNumberToObject(j, "videos", r->videos);
    cJSON_AddNumberToObject(j, "skipped", r->skipped);
    cJSON_AddNumberToObject(j, "top1", r->top1 / n);
    cJSON_AddNumberToObject(j, "top5", r->top5 / n);
    cJSON_AddNumberToObject(j, "top1_correct", r->top1);
    cJSON_AddNumberToObject(j, "top5_correct", r->top5);
    cJSON_AddNumberToObject(j, "mean_class_acc", mean_class);
    cJSON_AddNumberToObject(j, "classes_present", present);
    cJSON_AddNumberToObject(j, "seconds", r->seconds);
    for (int c = 0; c < cls->n; c++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "id", c);
        cJSON_AddStringToObject(e, "name", cls->v[c]);
        cJSON_AddNumberToObject(e, "videos", r->counts[c]);
        cJSON_AddNumberToObject(e, "correct", r->hits1[c]);
        if (r->counts[c]) cJSON_AddNumberToObject(e, "accuracy", (double)r->hits1[c] / r->counts[c]);
        else cJSON_AddNullToObject(e, "accuracy");
        cJSON_AddItemToArray(pc, e);
    }
    cJSON_AddItemToObject(j, "per_class", pc);
    for (int i = 0; i < r->skipped; i++) {
        if (!r->failed[i]) continue;
        char *tab = strchr(r->failed[i], '\t');
        cJSON *e = cJSON_CreateObject();
        *tab = '\0';
        cJSON_AddStringToObject(e, "path", r->failed[i]);
        cJSON_AddStringToObject(e, "error", tab + 1);
        *tab = '\t';
        cJSON_AddItemToArray(failed, e);
    }
    cJSON_AddItemToObject(j, "failed", failed);
    for (int i = 0; i < stacl_dataset_num_rejected(ds); i++)
        cJSON_AddItemToArray(rejected, cJSON_CreateString(stacl_dataset_rejected(ds, i)));
    cJSON_AddItemToObject(j, "rejected_lines", rejected);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return cli_fail(command, STACL_ERR_OUT_OF_MEMORY);
    size_t len = strlen(text);
    text[len] = '\n'; /* cJSON_Print's buffer has room: its NUL */
    int rc = write_text(command, o->json, text, len + 1);
    free(text);
    return rc;
}

int cli_eval_report(const char *command, const cli_eval_result *r, const stacl_names *classes,
                    const stacl_dataset *ds, const stacl_clip_spec *spec, const cli_eval_outputs *o, const char *mode,
                    const char *model_path, const char *adapter_path, const char *classes_path, const char *list) {
    const int C = classes->n, n = r->videos;
    int present;
    const double mean_class = mean_class_accuracy(r, C, &present);
    printf("top-1 %.2f%%  top-5 %.2f%%  mean per-class %.2f%%\n", n ? 100.0 * r->top1 / n : 0.0,
           n ? 100.0 * r->top5 / n : 0.0, 100.0 * mean_class);
    if (o->per_class)
        for (int c = 0; c < C; c++)
            if (r->counts[c])
                printf("  %-40s %6.2f%%  (%d/%d)\n", classes->v[c], 100.0 * r->hits1[c] / r->counts[c], r->hits1[c],
                       r->counts[c]);
    int rc = 0;
    if (!rc && o->confusion && !(rc = write_confusion(command, o->confusion, r, classes)))
        printf("wrote %s: confusion matrix (rows: true class, columns: predicted)\n", o->confusion);
    if (!rc && o->probs) {
        const int64_t shape[2] = {stacl_dataset_size(ds), C};
        stacl_status st = stacl_npy_write_f32(o->probs, r->probs, shape, 2);
        if (st != STACL_OK) rc = cli_fail(command, st);
        else printf("wrote %s: float32 [%d, %d] probabilities (NaN rows: skipped videos)\n", o->probs,
                    stacl_dataset_size(ds), C);
    }
    if (!rc && o->json &&
        !(rc = write_json(command, r, classes, ds, spec, o, mode, model_path, adapter_path, classes_path, list)))
        printf("wrote %s\n", o->json);
    return rc;
}
