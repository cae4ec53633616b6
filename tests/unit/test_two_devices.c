/* test_two_devices.c: ST-Adapter inference with the frozen backbone on one
 * OpenCL device and the adapters on another (stacl_adapter_load_on, `stacl
 * forward --backbone-device --adapter-device`). ctest runs it with
 * POCL_DEVICES="pthread pthread": two identical PoCL CPU devices, so the
 * same kernels run on the same device type and the logits and tokens must be
 * bit-identical to the single-device run, whatever the number of chunks the
 * copies are pipelined in. Also: the copies are reported as op
 * "transfer", a head-only / same-device load takes no copies, training
 * refuses a remote adapter, and the CLI's errors. Skipped when no two
 * devices with the same name and platform exist. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"
#include "runtime.h"
#include "stacl.h"
#include "test_util.h"

static int dev_a = -1, dev_b = -1; /* two identical devices, or -1 */
static stacl_ctx *ctx0, *ctx1;
static stacl_model *model;

static int setup(void **state) {
    (void)state;
    stacl_device_info *infos = NULL;
    int n = 0;
    if (stacl_list_devices(&infos, &n) != STACL_OK) {
        fprintf(stderr, "setup: %s\n", stacl_last_error());
        return -1;
    }
    for (int i = 0; i < n && dev_a < 0; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(infos[i].name, infos[j].name) == 0 && strcmp(infos[i].platform, infos[j].platform) == 0) {
                dev_a = i;
                dev_b = j;
                break;
            }
    free(infos);
    if (dev_a < 0) {
        printf("only %d OpenCL device(s) and no two identical ones (POCL_DEVICES=\"pthread pthread\" gives two): "
               "skipping\n", n);
        return tu_group_setup(state);
    }
    char sel[16], path[512];
    snprintf(path, sizeof path, "%s/models/hf", STACL_TEST_DATA);
    snprintf(sel, sizeof sel, "%d", dev_a);
    if (stacl_ctx_create(&ctx0, sel) != STACL_OK) goto fail;
    snprintf(sel, sizeof sel, "%d", dev_b);
    if (stacl_ctx_create(&ctx1, sel) != STACL_OK || stacl_model_load(&model, ctx0, path) != STACL_OK) goto fail;
    printf("backbone on device %d, adapters on device %d: %s\n", dev_a, dev_b, stacl_ctx_device(ctx1)->name);
    return tu_group_setup(state);
fail:
    fprintf(stderr, "setup: %s\n", stacl_last_error());
    return -1;
}

static int teardown(void **state) {
    stacl_model_free(model);
    stacl_ctx_free(ctx1);
    stacl_ctx_free(ctx0);
    return tu_group_teardown(state);
}

#define SKIP_WITHOUT_TWO_DEVICES()                                                                                     \
    do {                                                                                                               \
        if (dev_a < 0) {                                                                                               \
            printf("skipped: needs two identical OpenCL devices\n");                                                  \
            skip();                                                                                                    \
        }                                                                                                              \
    } while (0)

/* The op's summed time and launches in the state's last pass (-1 launches
 * when the op is absent). */
static double op_time(const stacl_state *s, const char *op, int *launches) {
    const stacl_op_time *t;
    int n = stacl_state_op_times(s, &t);
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].op, op) == 0) return *launches = t[i].launches, t[i].ms;
    return *launches = -1, 0.0;
}

/* Runs `kind` over all clips in one pass, then clip 0 alone (a smaller
 * pass after a larger one: the adapter device's workspace is reused). */
static void run_all(stacl_state *s, const stacl_adapter *ad, const stacl_npy *input, stacl_output kind, float *all,
                    float *one) {
    const int clips = (int)input->shape[0], frames = (int)input->shape[1];
    if (stacl_classify_forward(s, ad, input->data, clips, frames, kind, all) != STACL_OK)
        fail_msg("%s", stacl_last_error());
    if (stacl_classify_forward(s, ad, input->data, 1, frames, kind, one) != STACL_OK)
        fail_msg("%s", stacl_last_error());
}

static void check_case(const char *name) {
    char path[512], rel[256];
    snprintf(path, sizeof path, "%s/adapter/%s/adapter.safetensors", STACL_TEST_DATA, name);
    stacl_adapter *local = NULL, *remote = NULL, *same = NULL;
    stacl_state *s = NULL;
    stacl_npy input = {0}, golden = {0};
    snprintf(rel, sizeof rel, "adapter/%s/input.npy", name);
    tu_load_npy(rel, &input);
    const int clips = (int)input.shape[0], frames = (int)input.shape[1];
    if (stacl_adapter_load(&local, model, path) != STACL_OK) fail_msg("%s", stacl_last_error());
    if (stacl_adapter_load_on(&remote, model, ctx1, path) != STACL_OK) fail_msg("%s", stacl_last_error());
    if (stacl_adapter_load_on(&same, model, ctx0, path) != STACL_OK) fail_msg("%s", stacl_last_error());
    stacl_adapter_info info;
    stacl_adapter_get_info(remote, &info);
    const int sites = info.n_pre_attn + info.n_pre_mlp;
    assert_true(sites > 0);
    assert_int_equal(stacl_state_create(&s, model, clips * frames), STACL_OK);

    for (int k = 0; k < 2; k++) {
        const stacl_output kind = k ? STACL_OUT_TOKENS : STACL_OUT_EMBEDDING;
        const size_t n_all = stacl_classify_output_size(local, clips, frames, kind);
        const size_t n_one = stacl_classify_output_size(local, 1, frames, kind);
        float *a_all = malloc(n_all * sizeof *a_all), *b_all = malloc(n_all * sizeof *b_all);
        float *a_one = malloc(n_one * sizeof *a_one), *b_one = malloc(n_one * sizeof *b_one);
        assert_true(a_all && b_all && a_one && b_one);
        int launches;

        run_all(s, local, &input, kind, a_all, a_one);
        op_time(s, "transfer", &launches);
        assert_int_equal(launches, -1); /* one device: no copies */

        run_all(s, same, &input, kind, b_all, b_one); /* load_on with the model's ctx: the same */
        op_time(s, "transfer", &launches);
        assert_int_equal(launches, -1);
        assert_memory_equal(a_all, b_all, n_all * sizeof *a_all);

        /* The copies in 1 chunk (the plain chain), several (uneven: 4 and 5
         * chunks of 6 frames), more chunks than frames (9: as many as
         * frames), and the automatic count (0): all bit-identical. */
        static const int chunk_counts[] = {1, 2, 4, 5, 9, 0};
        for (size_t ci = 0; ci < sizeof chunk_counts / sizeof chunk_counts[0]; ci++) {
            assert_int_equal(stacl_adapter_set_transfer_chunks(remote, chunk_counts[ci]), STACL_OK);
            const int chunks = stacl_adapter_transfer_chunks(remote, frames);
            if (chunk_counts[ci]) assert_int_equal(chunks, chunk_counts[ci] < frames ? chunk_counts[ci] : frames);
            memset(b_all, 0xff, n_all * sizeof *b_all);
            memset(b_one, 0xff, n_one * sizeof *b_one);
            run_all(s, remote, &input, kind, b_all, b_one);
            /* The last pass (one clip): 4 copies per adapter and chunk (read +
             * write each way), timed by OpenCL events on both devices' queues. */
            double ms = op_time(s, "transfer", &launches);
            printf("%s %s, %d chunk(s) per clip: transfer %.3f ms in %d copies (%d adapters), device total %.3f ms\n",
                   name, k ? "tokens" : "logits", chunks, ms, launches, sites, stacl_state_last_device_ms(s));
            assert_int_equal(launches, 4 * sites * chunks);
            assert_true(ms > 0.0);
            op_time(s, "adapter_fc1", &launches);
            assert_int_equal(launches, sites * chunks); /* the adapter device's ops are in the state's times */
            op_time(s, "adapter_dwconv3d", &launches);
            assert_int_equal(launches, sites); /* the conv mixes frames: once on all of them */
            /* Bit-identical: same kernels, same device type. */
            assert_memory_equal(a_all, b_all, n_all * sizeof *a_all);
            assert_memory_equal(a_one, b_one, n_one * sizeof *a_one);
        }
        assert_int_equal(stacl_adapter_set_transfer_chunks(remote, -1), STACL_ERR_INVALID_ARG);
        assert_int_equal(stacl_adapter_set_transfer_chunks(local, 3), STACL_OK); /* one device: nothing to split */
        assert_int_equal(stacl_adapter_transfer_chunks(local, frames), 1);

        /* And right, not just equal: the float64 PyTorch golden. */
        snprintf(rel, sizeof rel, "adapter/%s/%s.npy", name, k ? "tokens" : "logits");
        tu_load_npy(rel, &golden);
        tu_check_golden("two devices", rel, b_all, &golden, n_all);
        stacl_npy_release(&golden);
        free(a_all);
        free(b_all);
        free(a_one);
        free(b_one);
    }
    stacl_state_free(s);
    stacl_adapter_free(same);
    stacl_adapter_free(remote);
    stacl_adapter_free(local);
    stacl_npy_release(&input);
}

static void test_attn_mlp(void **state) {
    (void)state;
    SKIP_WITHOUT_TWO_DEVICES();
    check_case("attn_mlp");
}

static void test_mlp_all(void **state) {
    (void)state;
    SKIP_WITHOUT_TWO_DEVICES();
    check_case("mlp_all");
}

/* Training runs on one device: a remote adapter is refused with a message. */
static void test_training_refused(void **state) {
    (void)state;
    SKIP_WITHOUT_TWO_DEVICES();
    char path[512];
    snprintf(path, sizeof path, "%s/adapter/mlp_all/adapter.safetensors", STACL_TEST_DATA);
    stacl_adapter *ad = NULL;
    stacl_trainer *t = NULL;
    if (stacl_adapter_load_on(&ad, model, ctx1, path) != STACL_OK) fail_msg("%s", stacl_last_error());
    stacl_train_options opt = stacl_train_options_default();
    assert_int_equal(stacl_trainer_create(&t, ad, 1, 3, &opt), STACL_ERR_UNSUPPORTED);
    tu_expect_message("another device", NULL);
    assert_null(t);
    /* Saving still works (reads the adapter device's buffer). */
    char out[512];
    assert_int_equal(stacl_adapter_save(ad, TU_PATH(out, "saved.safetensors")), STACL_OK);
    stacl_adapter_free(ad);
    stacl_adapter *back = NULL;
    if (stacl_adapter_load(&back, model, out) != STACL_OK) fail_msg("%s", stacl_last_error());
    stacl_adapter_free(back);
}

/* Fails unless the two files exist and hold the same bytes. */
static void expect_same_file(const char *path_a, const char *path_b) {
    size_t na = 0, nb = 0;
    char *a = tu_read_file(path_a, &na), *b = tu_read_file(path_b, &nb);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a);
    free(b);
}

static int run_cli(char **out, char **err, const char *const *argv_tail);

/* A fixed-point adapter on the adapter device: the float residual stream
 * moves as for a float adapter, the integer kernels run there, and the
 * results are bit-identical to the fixed-point adapter on the backbone's
 * device (and differ from the float adapter's: the integer path ran). The
 * remote adapter first runs in float, so its workspace must grow for the
 * int16 copy of x when it turns fixed-point. */
static void test_fixed_point(void **state) {
    (void)state;
    SKIP_WITHOUT_TWO_DEVICES();
    char path[512];
    snprintf(path, sizeof path, "%s/adapter/attn_mlp/adapter.safetensors", STACL_TEST_DATA);
    stacl_npy input = {0};
    tu_load_npy("adapter/attn_mlp/input.npy", &input);
    const int clips = (int)input.shape[0], frames = (int)input.shape[1];
    stacl_adapter *local = NULL, *remote = NULL;
    stacl_state *s = NULL;
    if (stacl_adapter_load(&local, model, path) != STACL_OK) fail_msg("%s", stacl_last_error());
    if (stacl_adapter_load_on(&remote, model, ctx1, path) != STACL_OK) fail_msg("%s", stacl_last_error());
    assert_int_equal(stacl_state_create(&s, model, clips * frames), STACL_OK);
    const size_t n_all = stacl_classify_output_size(local, clips, frames, STACL_OUT_TOKENS);
    const size_t n_one = stacl_classify_output_size(local, 1, frames, STACL_OUT_TOKENS);
    float *f_all = malloc(n_all * 4), *a_all = malloc(n_all * 4), *b_all = malloc(n_all * 4);
    float *a_one = malloc(n_one * 4), *b_one = malloc(n_one * 4);
    assert_true(f_all && a_all && b_all && a_one && b_one);
    assert_int_equal(stacl_adapter_set_transfer_chunks(remote, 3), STACL_OK); /* float: 3 chunks; fixed: 1 */
    run_all(s, remote, &input, STACL_OUT_TOKENS, f_all, b_one); /* float, remote: the workspace without xq */
    const int chunks = stacl_adapter_transfer_chunks(remote, frames);
    assert_int_equal(chunks, 3);
    if (stacl_adapter_set_fixed_point(local, "q4.12") != STACL_OK ||
        stacl_adapter_set_fixed_point(remote, "q4.12") != STACL_OK)
        fail_msg("%s", stacl_last_error());
    assert_string_equal(stacl_adapter_fixed_point(remote), "q4.12");
    run_all(s, local, &input, STACL_OUT_TOKENS, a_all, a_one);
    memset(b_all, 0xff, n_all * 4);
    memset(b_one, 0xff, n_one * 4);
    run_all(s, remote, &input, STACL_OUT_TOKENS, b_all, b_one);
    stacl_adapter_info info;
    stacl_adapter_get_info(remote, &info);
    const int sites = info.n_pre_attn + info.n_pre_mlp;
    assert_int_equal(stacl_adapter_transfer_chunks(remote, frames), 1); /* fixed point: not split */
    int launches;
    op_time(s, "transfer", &launches);
    assert_int_equal(launches, 4 * sites); /* one chunk per site whatever the setting */
    op_time(s, "adapter_fc1_q", &launches);
    assert_int_equal(launches, sites);
    assert_memory_equal(a_all, b_all, n_all * 4);
    assert_memory_equal(a_one, b_one, n_one * 4);
    size_t differ = 0;
    for (size_t i = 0; i < n_all; i++) differ += a_all[i] != f_all[i];
    printf("fixed point q4.12 on the adapter device (%d sites, one chunk; %d for float): bit-identical to one "
           "device; %zu of %zu token values differ from the float adapter's\n", sites, chunks, differ, n_all);
    assert_true(differ > n_all / 10);
    free(f_all); free(a_all); free(b_all); free(a_one); free(b_one);
    stacl_state_free(s);
    stacl_adapter_free(remote);
    stacl_adapter_free(local);
    stacl_npy_release(&input);

    /* The CLI: a fixed-point checkpoint (stacl export) on the adapter device
     * gives the same .npy bytes as on one device. */
    char model_dir[512], in_npy[512], fx[512], one[512], two[512], sa[16], sb[16];
    snprintf(model_dir, sizeof model_dir, "%s/models/hf", STACL_TEST_DATA);
    snprintf(in_npy, sizeof in_npy, "%s/adapter/attn_mlp/input.npy", STACL_TEST_DATA);
    snprintf(sa, sizeof sa, "%d", dev_a);
    snprintf(sb, sizeof sb, "%d", dev_b);
    TU_PATH(fx, "fixed.safetensors");
    TU_PATH(one, "fixed_one.npy");
    TU_PATH(two, "fixed_two.npy");
    const char *exp[] = {"export", "--fixed-point", "q4.12", "--model", model_dir, "--adapter", path, "--out", fx, NULL};
    const char *single[] = {"forward", "--model", model_dir, "--adapter", fx, "--input", in_npy, "--out", one,
                            "--device", sa, "--tokens", NULL};
    const char *dual[] = {"forward", "--model", model_dir, "--adapter", fx, "--input", in_npy, "--out", two,
                          "--device", sa, "--adapter-device", sb, "--tokens", NULL};
    const char *const *runs[] = {exp, single, dual};
    for (int i = 0; i < 3; i++) {
        char *out = NULL, *err = NULL;
        const int code = run_cli(&out, &err, runs[i]);
        if (code != 0) fail_msg("%s: exit %d: %s", runs[i][0], code, err);
        if (i == 2) assert_non_null(strstr(out, "transfer between devices: "));
        free(out);
        free(err);
    }
    expect_same_file(one, two);
}

static int run_cli(char **out, char **err, const char *const *argv_tail) {
    const char *argv[32] = {STACL_CLI_PATH};
    int n = 1;
    while (*argv_tail && n < 31) argv[n++] = *argv_tail++;
    argv[n] = NULL;
    return tu_run(argv, NULL, out, err);
}

static void test_cli(void **state) {
    (void)state;
    SKIP_WITHOUT_TWO_DEVICES();
    char model_dir[512], ckpt[512], input[512], one[512], two[512], sa[16], sb[16];
    snprintf(model_dir, sizeof model_dir, "%s/models/hf", STACL_TEST_DATA);
    snprintf(ckpt, sizeof ckpt, "%s/adapter/attn_mlp/adapter.safetensors", STACL_TEST_DATA);
    snprintf(input, sizeof input, "%s/adapter/attn_mlp/input.npy", STACL_TEST_DATA);
    snprintf(sa, sizeof sa, "%d", dev_a);
    snprintf(sb, sizeof sb, "%d", dev_b);
    for (int tokens = 0; tokens < 2; tokens++) {
        char *out = NULL, *err = NULL;
        TU_PATH(one, tokens ? "one_tokens.npy" : "one.npy");
        TU_PATH(two, tokens ? "two_tokens.npy" : "two.npy");
        const char *single[] = {"forward", "--model", model_dir, "--adapter", ckpt, "--input", input, "--out", one,
                                "--device", sa, tokens ? "--tokens" : "--quiet", NULL};
        int code = run_cli(&out, &err, single);
        if (code != 0) fail_msg("exit %d: %s", code, err);
        assert_null(strstr(out, "transfer"));
        free(out);
        free(err);
        /* --device sets the backbone's; --adapter-device overrides the adapters'. */
        const char *dual[] = {"forward", "--model", model_dir, "--adapter", ckpt, "--input", input, "--out", two,
                              "--device", sa, "--adapter-device", sb, "--profile", tokens ? "--tokens" : NULL, NULL};
        code = run_cli(&out, &err, dual);
        if (code != 0) fail_msg("exit %d: %s", code, err);
        printf("%s", strstr(out, "transfer between") ? strstr(out, "transfer between") : out);
        assert_non_null(strstr(out, "adapter device: ["));
        assert_non_null(strstr(out, "transfer between devices: "));
        assert_non_null(strstr(out, "  transfer ")); /* the --profile table */
        free(out);
        free(err);
        expect_same_file(one, two); /* the same .npy file, byte for byte */
    }
    /* --backbone-device and --adapter-device given separately. */
    char *out = NULL, *err = NULL;
    const char *dual[] = {"forward", "--model", model_dir, "--adapter", ckpt, "--input", input, "--out", two,
                          "--backbone-device", sa, "--adapter-device", sb, NULL};
    int code = run_cli(&out, &err, dual);
    if (code != 0) fail_msg("exit %d: %s", code, err);
    assert_non_null(strstr(out, "transfer between devices: "));
    free(out);
    free(err);
    expect_same_file(TU_PATH(one, "one.npy"), two);

    /* An adapter device that does not exist: exit 1, naming the option. */
    const char *bad[] = {"forward", "--model", model_dir, "--adapter", ckpt, "--input", input, "--out", two,
                         "--backbone-device", sa, "--adapter-device", "99", NULL};
    code = run_cli(&out, &err, bad);
    printf("  ok (exit %d): %s", code, err);
    assert_int_equal(code, 1);
    assert_non_null(strstr(err, "--adapter-device 99"));
    assert_non_null(strstr(err, "no device with that index"));
    free(out);
    free(err);
    /* --adapter-device without --adapter: a usage error. */
    const char *usage[] = {"forward", "--model", model_dir, "--input", input, "--out", two, "--adapter-device", sb,
                           NULL};
    code = run_cli(&out, &err, usage);
    assert_int_equal(code, 2);
    assert_non_null(strstr(err, "--adapter-device goes with --adapter"));
    free(out);
    free(err);
}

/* Runs the CLI; expects exit code `want` and, when given, `needle` in its
 * stderr (printed). */
static void expect_cli(const char *const *argv_tail, int want, const char *needle) {
    char *out = NULL, *err = NULL;
    int code = run_cli(&out, &err, argv_tail);
    if (code != want) fail_msg("exit %d (wanted %d): %s", code, want, err);
    if (needle) {
        printf("  ok (exit %d): %s", code, err);
        if (!strstr(err, needle)) fail_msg("'%s' not in: %s", needle, err);
    }
    free(out);
    free(err);
}

/* A file's bytes with a change: a prefix of `keep` bytes (0: all), and the
 * byte at `flip` (when not 0) xor 0x55. */
static void write_variant(const char *from, const char *to, size_t keep, size_t flip) {
    size_t n = 0;
    char *d = tu_read_file(from, &n);
    assert_non_null(d);
    if (keep && keep < n) n = keep;
    if (flip && flip < n) d[flip] ^= 0x55;
    assert_int_equal(tu_write_file(to, d, n), 0);
    free(d);
}

/* --adapter-binary: `stacl build-binary` for the adapter device, the
 * two-device forward from it (bit-identical), and the errors: truncated,
 * corrupt, another device, other kernel sources, a raw binary the driver
 * rejects, a raw binary without the adapter's kernels. */
static void test_adapter_binary(void **state) {
    (void)state;
    SKIP_WITHOUT_TWO_DEVICES();
    char model_dir[512], ckpt[512], input[512], one[512], two[512], bin[512], bad[512], sa[16], sb[16];
    snprintf(model_dir, sizeof model_dir, "%s/models/hf", STACL_TEST_DATA);
    snprintf(ckpt, sizeof ckpt, "%s/adapter/attn_mlp/adapter.safetensors", STACL_TEST_DATA);
    snprintf(input, sizeof input, "%s/adapter/attn_mlp/input.npy", STACL_TEST_DATA);
    snprintf(sa, sizeof sa, "%d", dev_a);
    snprintf(sb, sizeof sb, "%d", dev_b);
    TU_PATH(one, "bin_one.npy");
    TU_PATH(two, "bin_two.npy");
    TU_PATH(bin, "adapter.bin");
    TU_PATH(bad, "bad.bin");

    const char *help[] = {"build-binary", "--help", NULL};
    expect_cli(help, 0, NULL);
    const char *no_out[] = {"build-binary", "--device", sb, NULL};
    expect_cli(no_out, 2, "-o FILE is required");
    const char *build[] = {"build-binary", "--device", sb, "-o", bin, NULL};
    expect_cli(build, 0, NULL);
    size_t nbin = 0;
    char *img = tu_read_file(bin, &nbin);
    assert_non_null(img);
    assert_memory_equal(img, "STACLPRG", 8);

    const char *single[] = {"forward", "--model", model_dir, "--adapter", ckpt, "--input", input, "--out", one,
                            "--device", sa, "--quiet", NULL};
    expect_cli(single, 0, NULL);
    /* From the binary, plain and in 2 chunks: the same .npy bytes. */
    for (int chunked = 0; chunked < 2; chunked++) {
        const char *dual[] = {"forward", "--model", model_dir, "--adapter", ckpt, "--input", input, "--out", two,
                              "--device", sa, "--adapter-device", sb, "--adapter-binary", bin, "--quiet",
                              chunked ? "--transfer-chunks" : NULL, "2", NULL};
        expect_cli(dual, 0, NULL);
        expect_same_file(one, two);
    }
    /* The API: a context from the binary runs the adapter. */
    stacl_ctx *bctx = NULL;
    assert_int_equal(stacl_ctx_create_from_binary(&bctx, sb, bin), STACL_OK);
    stacl_ctx_free(bctx);

    const char *with_bad[] = {"forward", "--model", model_dir, "--adapter", ckpt, "--input", input, "--out", two,
                              "--device", sa, "--adapter-device", sb, "--adapter-binary", bad, NULL};
    /* Truncated: in the device binary, and inside the header. */
    write_variant(bin, bad, nbin / 2, 0);
    expect_cli(with_bad, 1, "is truncated");
    write_variant(bin, bad, 10, 0);
    expect_cli(with_bad, 1, "is truncated");
    /* Corrupt: a flipped byte of the device binary. */
    write_variant(bin, bad, 0, nbin - 1000);
    expect_cli(with_bad, 1, "checksum does not match");
    /* Another device: the header's device name changed. */
    char *hd = strstr(img + 16, "device=");
    assert_non_null(hd);
    hd[7] ^= 0x20; /* the name's first letter, other case */
    assert_int_equal(tu_write_file(bad, img, nbin), 0);
    expect_cli(with_bad, 1, "was built for device");
    hd[7] ^= 0x20;
    char *hk = strstr(img + 16, "kernels=");
    assert_non_null(hk);
    hk[8] = hk[8] == '0' ? '1' : '0';
    assert_int_equal(tu_write_file(bad, img, nbin), 0);
    expect_cli(with_bad, 1, "holds other kernels");
    /* Not stacl's format: a raw binary the driver rejects (named, with the device). */
    assert_int_equal(tu_write_file(bad, "not a program binary, not at all", 32), 0);
    expect_cli(with_bad, 1, "rejected the program binary");
    /* A raw binary of a program without the adapter's kernels. */
    stacl_ctx *c = NULL;
    assert_int_equal(stacl_ctx_create(&c, sb), STACL_OK);
    const char *src = "__kernel void adapter_fc1(__global float *x) { x[0] = 1.0f; }\n"
                      "__kernel void something_else(__global float *x) { x[0] = 2.0f; }\n";
    const size_t len = strlen(src);
    cl_program prog = NULL;
    assert_int_equal(stacl_program_from_source(c, &src, &len, 1, &prog), STACL_OK);
    size_t size = 0;
    assert_int_equal(clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL), CL_SUCCESS);
    unsigned char *raw = malloc(size);
    assert_non_null(raw);
    unsigned char *bins[1] = {raw};
    assert_int_equal(clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL), CL_SUCCESS);
    assert_int_equal(tu_write_file(bad, raw, size), 0);
    free(raw);
    clReleaseProgram(prog);
    stacl_ctx_free(c);
    expect_cli(with_bad, 1, "has no kernel 'adapter_dwconv3d'");
    assert_int_equal(stacl_ctx_create_from_binary(&bctx, sb, bad), STACL_ERR_MISSING);
    assert_null(bctx);
    tu_expect_message("adapter_dwconv3d", NULL);
    free(img);

    /* --adapter-binary without --adapter: a usage error. */
    const char *usage[] = {"forward", "--model", model_dir, "--input", input, "--out", two, "--adapter-binary", bin,
                           NULL};
    expect_cli(usage, 2, "--adapter-binary goes with --adapter");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attn_mlp),
        cmocka_unit_test(test_mlp_all),
        cmocka_unit_test(test_training_refused),
        cmocka_unit_test(test_fixed_point),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_adapter_binary),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
