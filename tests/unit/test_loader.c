/* test_loader.c: dataset lists (CSV with class names and quotes, space-
 * separated Kinetics/SSv2 style, rejected lines) and the prefetching loader:
 * list order for evaluation, bad samples reported and counted without
 * shifting labels, the same bytes with 1 or 3 workers, reproducible
 * training epochs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "loader.h"
#include "test_util.h"

#define VDATA STACL_TEST_DATA "/video"

static void write_text(const char *name, const char *text) {
    char p[600];
    assert_int_equal(tu_write_file(TU_PATH(p, name), text, strlen(text)), 0);
}

static void test_csv_with_names(void **s) {
    (void)s;
    char list[600], names[600];
    write_text("classes.csv", "id,name\n0,move left\n1,move right\n2,\"grow, then stop\"\n");
    write_text("train.csv",
               "path,label\n"
               "a.mp4,move right\r\n"
               "sub/b.webm,0\n"
               "\"c,d.avi\",\"grow, then stop\"\n"
               "/abs/e.mkv,2\n"
               "\n# a comment\n"
               "f.mp4,jump\n"      /* unknown class: rejected */
               "g.mp4\n"           /* no label: rejected */
               "h.mp4,7\n");       /* out of range: rejected */
    stacl_dataset *ds = NULL;
    assert_int_equal(stacl_dataset_load(&ds, TU_PATH(list, "train.csv"), TU_PATH(names, "classes.csv")), STACL_OK);
    assert_int_equal(stacl_dataset_size(ds), 4);
    assert_int_equal(stacl_dataset_num_classes(ds), 3);
    char want[700];
    snprintf(want, sizeof want, "%s/a.mp4", tu_group_dir);
    assert_string_equal(stacl_dataset_path(ds, 0), want);
    assert_int_equal(stacl_dataset_label(ds, 0), 1);
    snprintf(want, sizeof want, "%s/sub/b.webm", tu_group_dir);
    assert_string_equal(stacl_dataset_path(ds, 1), want);
    snprintf(want, sizeof want, "%s/c,d.avi", tu_group_dir);
    assert_string_equal(stacl_dataset_path(ds, 2), want);
    assert_int_equal(stacl_dataset_label(ds, 2), 2);
    assert_string_equal(stacl_dataset_path(ds, 3), "/abs/e.mkv");
    assert_int_equal(stacl_dataset_line(ds, 3), 5);
    assert_string_equal(stacl_dataset_class_name(ds, 2), "grow, then stop");
    assert_int_equal(stacl_dataset_num_rejected(ds), 3);
    assert_non_null(strstr(stacl_dataset_rejected(ds, 0), "train.csv:8: unknown class name 'jump'"));
    assert_non_null(strstr(stacl_dataset_rejected(ds, 1), "train.csv:9: expected 'path,label'"));
    assert_non_null(strstr(stacl_dataset_rejected(ds, 2), "train.csv:10: label out of range: '7 (3 classes)'"));
    stacl_dataset_free(ds);
}

static void test_space_lists(void **s) {
    (void)s;
    char list[600], names[600];
    write_text("names.txt", "abseiling\nair drumming\n");
    write_text("k400.txt", "videos/x.mp4 1\nvideos/y.mp4 300 0\nvideos/z.mp4 air drumming\nbad_line_without_label\n");
    stacl_dataset *ds = NULL;
    /* without names, "air drumming" cannot be resolved */
    assert_int_equal(stacl_dataset_load(&ds, TU_PATH(list, "k400.txt"), NULL), STACL_OK);
    assert_int_equal(stacl_dataset_size(ds), 2);
    assert_int_equal(stacl_dataset_label(ds, 0), 1);
    assert_int_equal(stacl_dataset_label(ds, 1), 0); /* path num_frames label */
    assert_int_equal(stacl_dataset_num_rejected(ds), 2);
    assert_int_equal(stacl_dataset_num_classes(ds), 2);
    assert_null(stacl_dataset_class_name(ds, 0));
    stacl_dataset_free(ds);
    /* the space format takes the last field as the label: "drumming" is no class */
    assert_int_equal(stacl_dataset_load(&ds, list, TU_PATH(names, "names.txt")), STACL_OK);
    assert_int_equal(stacl_dataset_size(ds), 2);
    assert_non_null(strstr(stacl_dataset_rejected(ds, 0), "k400.txt:3: unknown class name 'drumming'"));
    stacl_dataset_free(ds);
    /* nothing usable, a missing list, a bad class file */
    write_text("empty.txt", "# nothing\n\n");
    assert_int_equal(stacl_dataset_load(&ds, TU_PATH(list, "empty.txt"), NULL), STACL_ERR_FORMAT);
    tu_expect_message("empty.txt", "no usable entry");
    assert_int_equal(stacl_dataset_load(&ds, TU_PATH(list, "missing.csv"), NULL), STACL_ERR_IO);
    tu_expect_message("missing.csv", "cannot open dataset list");
    write_text("dup.csv", "0,a\n0,b\n");
    assert_int_equal(stacl_dataset_load(&ds, TU_PATH(list, "k400.txt"), TU_PATH(names, "dup.csv")), STACL_ERR_FORMAT);
    tu_expect_message("dup.csv:2", "given twice");
}

/* The committed test videos plus two bad entries, labels 0..5 in order. */
static stacl_dataset *mixed_list(void) {
    char list[600], text[2048];
    write_text("junk.mp4", "this is not a video\n");
    snprintf(text, sizeof text,
             "%s/h264.mp4 0\nmissing.mp4 1\n%s/vp9.webm 2\njunk.mp4 3\n%s/mjpeg.avi 4\n%s/ffv1.mkv 5\n", VDATA, VDATA,
             VDATA, VDATA);
    write_text("mixed.txt", text);
    stacl_dataset *ds = NULL;
    assert_int_equal(stacl_dataset_load(&ds, TU_PATH(list, "mixed.txt"), NULL), STACL_OK);
    assert_int_equal(stacl_dataset_size(ds), 6);
    return ds;
}

/* Runs an epoch; returns all pixels concatenated (bad samples: none) and
 * fills labels/indices/ok in delivery order. */
static float *run_epoch(const stacl_dataset *ds, const stacl_loader_config *cfg, int *index, int *label, int *ok,
                        size_t *floats, stacl_loader_stats *stats) {
    stacl_loader *l = NULL;
    assert_int_equal(stacl_loader_create(&l, ds, cfg), STACL_OK);
    size_t per = 0, total = 0;
    float *all = NULL;
    const stacl_sample *s;
    int k = 0;
    for (;;) {
        assert_int_equal(stacl_loader_next(l, &s), STACL_OK);
        if (!s) break;
        index[k] = s->index;
        label[k] = s->label;
        ok[k] = s->ok;
        if (s->ok) {
            per = (size_t)s->views * s->frames * 3 * cfg->size * cfg->size;
            all = realloc(all, sizeof(float) * (total + per));
            memcpy(all + total, s->pixels, sizeof(float) * per);
            total += per;
        } else {
            assert_non_null(strstr(s->error, stacl_dataset_path(ds, s->index)));
        }
        k++;
    }
    assert_int_equal(k, stacl_dataset_size(ds));
    stacl_loader_get_stats(l, stats);
    stacl_loader_free(l);
    *floats = total;
    return all;
}

static void test_loader_eval(void **s) {
    (void)s;
    stacl_dataset *ds = mixed_list();
    stacl_loader_config cfg = stacl_loader_config_default();
    cfg.size = 32;
    cfg.clip.num_frames = 4;
    cfg.clip.sampling = STACL_SAMPLING_DENSE;
    cfg.clip.sampling_rate = 3;
    cfg.clip.temporal_views = 2;
    cfg.clip.spatial_views = 3;
    int idx[6], lab[6], ok[6], idx1[6], lab1[6], ok1[6];
    size_t n3, n1;
    stacl_loader_stats st3, st1;
    cfg.workers = 3;
    cfg.prefetch = 2;
    float *a = run_epoch(ds, &cfg, idx, lab, ok, &n3, &st3);
    cfg.workers = 1;
    cfg.prefetch = 1;
    float *b = run_epoch(ds, &cfg, idx1, lab1, ok1, &n1, &st1);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(idx[i], i); /* list order */
        assert_int_equal(lab[i], i); /* labels never shift past a bad sample */
        assert_int_equal(ok[i], i != 1 && i != 3);
        assert_int_equal(idx1[i], i);
    }
    assert_int_equal(st3.ok, 4);
    assert_int_equal(st3.bad, 2);
    assert_int_equal(n3, (size_t)4 * 6 * 4 * 3 * 32 * 32);
    assert_int_equal(n1, n3);
    assert_memory_equal(a, b, n3 * sizeof(float)); /* worker count changes nothing */
    free(a);
    free(b);
    stacl_dataset_free(ds);
}

static void test_loader_train_reproducible(void **s) {
    (void)s;
    stacl_dataset *ds = mixed_list();
    stacl_loader_config cfg = stacl_loader_config_default();
    cfg.train = 1;
    cfg.seed = 99;
    cfg.size = 32;
    cfg.clip.num_frames = 4;
    cfg.aug.flip = 1;
    int i1[6], l1[6], o1[6], i2[6], l2[6], o2[6], i3[6], l3[6], o3[6];
    size_t n1, n2, n3;
    stacl_loader_stats st;
    cfg.workers = 1;
    float *a = run_epoch(ds, &cfg, i1, l1, o1, &n1, &st);
    cfg.workers = 3;
    cfg.prefetch = 3;
    float *b = run_epoch(ds, &cfg, i2, l2, o2, &n2, &st);
    assert_memory_equal(i1, i2, sizeof i1);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1 * sizeof(float));
    cfg.epoch = 1;
    float *c = run_epoch(ds, &cfg, i3, l3, o3, &n3, &st);
    assert_true(memcmp(i1, i3, sizeof i1) != 0 || memcmp(a, c, n1 * sizeof(float)) != 0);
    for (int i = 0; i < 6; i++) assert_int_equal(l3[i], i3[i]); /* label follows its sample */
    free(a);
    free(b);
    free(c);
    stacl_dataset_free(ds);
}

/* Freeing mid-epoch stops the workers cleanly. */
static void test_loader_early_free(void **s) {
    (void)s;
    stacl_dataset *ds = mixed_list();
    stacl_loader_config cfg = stacl_loader_config_default();
    cfg.size = 32;
    cfg.clip.num_frames = 2;
    stacl_loader *l = NULL;
    assert_int_equal(stacl_loader_create(&l, ds, &cfg), STACL_OK);
    const stacl_sample *smp;
    assert_int_equal(stacl_loader_next(l, &smp), STACL_OK);
    assert_non_null(smp);
    stacl_loader_free(l);
    cfg.workers = 0;
    assert_int_equal(stacl_loader_create(&l, ds, &cfg), STACL_ERR_INVALID_ARG);
    tu_expect_message("workers", NULL);
    stacl_dataset_free(ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_with_names),
        cmocka_unit_test(test_space_lists),
        cmocka_unit_test(test_loader_eval),
        cmocka_unit_test(test_loader_train_reproducible),
        cmocka_unit_test(test_loader_early_free),
    };
    return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
