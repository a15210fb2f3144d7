/* cmd_probe.c — `qkc probe`: measure this machine's limits (read bandwidth
 * per cache level and DRAM, peak f32 FMA and int8 dot rates; probe.h) and
 * store them in the tuning database (tunedb.h) under the machine's target
 * fingerprint, where `qkc bench` finds them to report ratios. With a GPU
 * target, the device's memory copy bandwidth instead (device.h), under
 * the device target's fingerprint.
 *   qkc probe [--target T] [--quick] [--threads T] [--json] [--db PATH] [--no-store]
 *   qkc probe [--target T] --show [--json] [--db PATH]    the stored result, no measuring
 * Storing is best effort: a database that cannot be opened or written is a
 * warning and the measured result is still printed (exit 0). --show needs
 * the database: there, the same is an error (exit 1). */
#include "cli/cli.h"
#include "compiler/tir.h"
#include "runtime/device.h"
#include "runtime/probe.h"
#include "runtime/tunedb.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROBE_CLI_MAX_THREADS 256 /* as qk_probe_run accepts */

static void print_result(const qk_probe_result *r, int json)
{
    char *s = json ? qk_probe_json(r) : qk_probe_text(r);
    fputs(s, stdout);
    if (json)
        fputc('\n', stdout);
    free(s);
}

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "qkc: warning: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* --db, else the default path; NULL when there is none (no HOME). */
static const char *db_path(const cli_cmd *cmd, const cli_args *a, char *buf, size_t n)
{
    const char *p = cli_get(cmd, a, "db");
    return p ? p : qk_tunedb_default_path(buf, n);
}

/* The machine probed: the host (ctx NULL), or a GPU context's device. */
static void probed_fingerprint(const qkc_ctx *ctx, char *buf, size_t n)
{
    qk_target t;
    if (ctx)
        qk_device_target(ctx, &t);
    else
        qk_target_host(&t);
    qk_target_fingerprint(&t, buf, n);
}

/* --show: the stored probe of this machine (or of ctx's device). */
static int run_show(const qkc_ctx *ctx, const char *path, int json)
{
    char err[512], fp[512];
    if (!path)
        return cli_error("no tuning database: set QKC_TUNE_DB or HOME, or give --db PATH");
    if (access(path, F_OK) != 0)
        return cli_error("no probe stored: %s does not exist (run 'qkc probe' first)", path);
    qk_tunedb *db = NULL;
    if (qk_tunedb_open(path, 1, &db, err, sizeof err) != 0)
        return cli_error("%s", err); /* tunedb's messages name the file */
    probed_fingerprint(ctx, fp, sizeof fp);
    qk_probe_result r;
    int found = qk_tunedb_probe_get(db, fp, &r, err, sizeof err);
    qk_tunedb_close(db);
    if (found < 0)
        return cli_error("%s", err);
    if (found == 0) {
        cli_error("no probe stored for this %s in %s (run 'qkc probe%s%s' first)", ctx ? "device" : "machine", path,
                  ctx ? " --target " : "", ctx ? qkc_ctx_target(ctx) : "");
        fprintf(stderr, "  this machine: %s\n", fp);
        return 1;
    }
    print_result(&r, json);
    return 0;
}

/* Best effort: a warning when the result cannot be stored. */
static void store(const char *path, const qk_probe_result *r, int json)
{
    char err[512];
    if (!path) {
        warn("no tuning database (set QKC_TUNE_DB or HOME, or give --db PATH): the result is not stored");
        return;
    }
    qk_tunedb *db = NULL;
    int rc = qk_tunedb_open(path, 0, &db, err, sizeof err);
    if (rc == 0)
        rc = qk_tunedb_probe_put(db, r, err, sizeof err);
    qk_tunedb_close(db);
    if (rc != 0)
        warn("the result is not stored: %s", err);
    else
        fprintf(json ? stderr : stdout, "%sstored in %s\n", json ? "qkc probe: " : "\n", path);
}

/* --threads: 0 (every core) .. PROBE_CLI_MAX_THREADS. */
static int parse_threads(const cli_cmd *cmd, const char *s, int *out)
{
    int64_t v = 0;
    if (s && (cli_parse_i64(s, &v) != 0 || v < 0 || v > PROBE_CLI_MAX_THREADS))
        return cli_usage_error(cmd, "--threads must be an integer in 0..%d (0 = every online core), got '%s'",
                               PROBE_CLI_MAX_THREADS, s);
    *out = (int)v;
    return 0;
}

/* On an idle machine the FMA rate scales with the threads up to the
 * cores; far less means other processes took CPU time during the probe. */
static void check_scaling(const qk_probe_result *r)
{
    qk_target t;
    qk_target_host(&t);
    int n = r->threads < t.cores ? r->threads : t.cores;
    double scale = r->f32_fma[0] > 0 ? r->f32_fma[1] / r->f32_fma[0] : 0;
    if (n > 1 && scale < 0.75 * n)
        warn("the FMA rate scaled only %.2fx on %d threads (%d cores): other processes were probably running; "
             "the all-threads figures are low, probe again on an idle machine",
             scale, r->threads, t.cores);
}

static int run_measure(const cli_cmd *cmd, const cli_args *a, const char *path, int json)
{
    qk_probe_opts o = {.quick = cli_get(cmd, a, "quick") != NULL};
    int rc = parse_threads(cmd, cli_get(cmd, a, "threads"), &o.threads);
    if (rc)
        return rc;
    int tty = cli_isatty(stderr);
    if (tty)
        fprintf(stderr, "qkc probe: measuring (about %s)...", o.quick ? "1 s" : "5 s");
    qk_probe_result r;
    char err[512];
    rc = qk_probe_run(&o, &r, err, sizeof err);
    if (tty)
        fprintf(stderr, "\r\033[K");
    if (rc != 0)
        return cli_error("probe failed: %s", err);
    print_result(&r, json);
    check_scaling(&r);
    if (!cli_get(cmd, a, "no-store"))
        store(path, &r, json);
    return 0;
}

/* A GPU target's probe: the device's copy bandwidth. */
static int run_measure_device(const cli_cmd *cmd, const cli_args *a, qkc_ctx *ctx, const char *path, int json)
{
    qk_probe_result r;
    if (qk_device_probe(ctx, cli_get(cmd, a, "quick") != NULL, &r) != QKC_OK)
        return cli_error("probe failed: %s", qkc_errmsg(ctx));
    if (!json) { /* the device's geometry, as the compiler sees it */
        qk_target t;
        qk_device_target(ctx, &t);
        qk_buf b = {0};
        qk_target_print(&t, &b);
        fputs(b.s ? b.s : "", stdout);
        qk_buf_free(&b);
    }
    print_result(&r, json);
    if (!cli_get(cmd, a, "no-store"))
        store(path, &r, json);
    return 0;
}

/* --target: NULL/host -> *ctx = NULL (the CPU probe); a GPU target -> a
 * context for it (the device probe). 0, or an exit status. */
static int probe_target(const cli_cmd *cmd, const char *name, qkc_ctx **ctx)
{
    *ctx = NULL;
    qk_target t;
    if (!name || strcmp(name, "host") == 0)
        return 0;
    if (qk_target_named(name, &t) != 0)
        return cli_usage_error(cmd, "unknown target '%s' (targets: host, sm_80, sm_90)", name);
    if (t.kind != QK_TARGET_GPU)
        return cli_usage_error(cmd, "--target %s: the probe measures this machine's CPU (host) or a GPU device "
                                    "(sm_80, sm_90)", name);
    qkc_ctx_options o = {.target = name, .threads = 1, .tuning_db = ""};
    if (qkc_ctx_create(&o, ctx) != QKC_OK)
        return cli_error("cannot create a context for target %s", name);
    return 0;
}

static int run_probe(const cli_cmd *cmd, const cli_args *a)
{
    int json = cli_get(cmd, a, "json") != NULL, show = cli_get(cmd, a, "show") != NULL;
    const char *db = cli_get(cmd, a, "db");
    if (db && !*db)
        return cli_usage_error(cmd, "--db needs a file name");
    if (show && (cli_get(cmd, a, "quick") || cli_get(cmd, a, "threads") || cli_get(cmd, a, "no-store")))
        return cli_usage_error(cmd, "--show measures nothing: --quick, --threads and --no-store do not apply");
    qkc_ctx *ctx = NULL;
    int rc = probe_target(cmd, cli_get(cmd, a, "target"), &ctx);
    if (rc)
        return rc;
    if (ctx && cli_get(cmd, a, "threads")) {
        qkc_ctx_destroy(ctx);
        return cli_usage_error(cmd, "--threads does not apply to a GPU target");
    }
    char buf[4096];
    const char *path = db_path(cmd, a, buf, sizeof buf);
    if (show)
        rc = run_show(ctx, path, json);
    else if (ctx)
        rc = run_measure_device(cmd, a, ctx, path, json);
    else
        rc = run_measure(cmd, a, path, json);
    qkc_ctx_destroy(ctx);
    return rc;
}

const cli_cmd cli_cmd_probe = {
    .name = "probe",
    .summary = "Measure this machine's limits (bandwidth per cache level and DRAM, peak FMA and int8 rates).",
    .usage = "[--target T] [--quick] [--threads T] [--json] [--db PATH] [--no-store] | [--target T] --show [--json] "
             "[--db PATH]",
    .details =
        "Measures read bandwidth from L1, L2, L3 and DRAM, on one thread and on T threads: each thread\n"
        "streams its own buffer sized for the level (half of L1; half of L2; half of L3 shared among the\n"
        "threads; for DRAM at least 8x L3 in all, 256 MiB per thread), summing it with the widest vector\n"
        "loads the CPU has. Then the peak f32 FMA rate (independent vfmadd chains) and the peak int8\n"
        "dot-product rate (vpdpbusd with AVX-512 VNNI, else vpmaddubsw), on one core and on T. Each\n"
        "figure is the best of several repetitions, timed from a barrier to the last thread's finish.\n"
        "A full probe takes a few seconds; --quick about one, with a smaller DRAM set and fewer\n"
        "repetitions. Keep the machine otherwise idle.\n"
        "The result is stored in the tuning database under this machine's target fingerprint (one per\n"
        "machine; a new probe replaces the old): `qkc bench` reports GB/s as a share of the DRAM (or\n"
        "cache) read bandwidth and GOP/s as a share of the int8 or FMA peak. The database is --db, else\n"
        "$QKC_TUNE_DB, else $XDG_CACHE_HOME/qkc/tune.db, else ~/.cache/qkc/tune.db. If it cannot be\n"
        "written the result is still printed, with a warning. --show prints the stored result without\n"
        "measuring (exit 1 when none is stored). --json prints one JSON object (rates in bytes/s,\n"
        "FLOP/s and OP/s; [1 thread, T threads] pairs).\n"
        "--target sm_80|sm_90 probes the GPU device instead: the copy bandwidth of its memory (the best of\n"
        "20 device-to-device copies of 1 GiB, timed with CUDA events, counting bytes read + written; --quick:\n"
        "5 copies of 256 MiB), stored under the device's fingerprint (threads 0, the figure as DRAM read_bw),\n"
        "where 'qkc bench --target' finds it. Without a CUDA driver or device it fails (exit 1), and so it\n"
        "does on a device of another architecture than the target (probe it with its own target).",
    .example = "qkc probe --threads 2 && qkc probe --show --json",
    .opts = {{"target", 't', "T", "host (this CPU) or sm_80, sm_90 (the GPU device)", "host"},
             {"quick", 'q', NULL, "a fast, rougher probe (about 1 s)", NULL},
             {"threads", 'j', "T", "threads for the all-threads figures (0 = every online core)", "0"},
             {"json", 0, NULL, "print the result as one JSON object", NULL},
             {"db", 0, "PATH", "the tuning database", "$QKC_TUNE_DB or ~/.cache/qkc/tune.db"},
             {"show", 0, NULL, "print the stored probe of this machine; measure nothing", NULL},
             {"no-store", 0, NULL, "measure and print, but do not store", NULL},
             {0}},
    .min_pos = 0,
    .max_pos = 0,
    .run = run_probe,
};
