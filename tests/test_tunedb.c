/* test_tunedb.c — the tuning database (runtime/tunedb.h): shape buckets,
 * put/best by exact shape, nearest bucket and thread count, concurrent
 * writers in separate processes, corrupt, missing and unreachable files,
 * prune, CSV/JSON export and probe results. Every test works in its own
 * temporary directory under /tmp. */
#include <CUnit/Basic.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/probe.h"
#include "runtime/tunedb.h"

#define ERRSZ 512

/* ---- temporary directories ---- */

typedef struct tmpdir {
    char dir[64];
    char db[128]; /* dir/tune.db */
} tmpdir;

static int tmp_make(tmpdir *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/qkc_tunedb_XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->db, sizeof t->db, "%s/tune.db", t->dir);
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void tmp_remove(tmpdir *t)
{
    nftw(t->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- records ---- */

static qk_tune_record rec(const char *hash, const char *fp, const char *shape, int threads, double seconds,
                          const char *config)
{
    qk_tune_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.kernel_hash, sizeof r.kernel_hash, "%s", hash);
    snprintf(r.kernel_name, sizeof r.kernel_name, "gemv");
    snprintf(r.shape, sizeof r.shape, "%s", shape);
    snprintf(r.fingerprint, sizeof r.fingerprint, "%s", fp);
    r.threads = threads;
    snprintf(r.config, sizeof r.config, "%s", config);
    r.seconds = seconds;
    snprintf(r.version, sizeof r.version, "0.1.0");
    snprintf(r.origin, sizeof r.origin, "tune");
    return r;
}

static const char *H = "0123456789abcdef", *FP = "x86_64-avx512-test";

static qk_tunedb *open_db(const tmpdir *t)
{
    char err[ERRSZ] = "";
    qk_tunedb *db = NULL;
    if (qk_tunedb_open(t->db, 0, &db, err, sizeof err) != 0)
        fprintf(stderr, "\n  open: %s\n", err);
    return db;
}

/* A new temporary directory and a database in it; NULL when either fails. */
static qk_tunedb *fresh_db(tmpdir *t)
{
    if (tmp_make(t) != 0)
        return NULL;
    return open_db(t);
}

static int put(qk_tunedb *db, qk_tune_record r)
{
    char err[ERRSZ] = "";
    int rc = qk_tunedb_put(db, &r, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "\n  put: %s\n", err);
    return rc;
}

static int count_records(qk_tunedb *db)
{
    char err[ERRSZ];
    qk_tune_record *all = NULL;
    int n = qk_tunedb_list(db, NULL, &all, err, sizeof err);
    free(all);
    return n;
}

/* ---- tests ---- */

static void test_bucket(void)
{
    char b[256];
    CU_ASSERT_EQUAL(qk_tunedb_bucket("K=4000,N=4096", b, sizeof b), 0);
    CU_ASSERT_STRING_EQUAL(b, "K=4096,N=4096");
    CU_ASSERT_EQUAL(qk_tunedb_bucket("N=4096, K=4000", b, sizeof b), 0);
    CU_ASSERT_STRING_EQUAL(b, "K=4096,N=4096");
    CU_ASSERT_EQUAL(qk_tunedb_bucket("N=5000", b, sizeof b), 0);
    CU_ASSERT_STRING_EQUAL(b, "N=4096");
    CU_ASSERT_EQUAL(qk_tunedb_bucket("N=6000", b, sizeof b), 0); /* above 4096*sqrt(2) */
    CU_ASSERT_STRING_EQUAL(b, "N=8192");
    CU_ASSERT_EQUAL(qk_tunedb_bucket("M=1,N=3", b, sizeof b), 0);
    CU_ASSERT_STRING_EQUAL(b, "M=1,N=4");
    CU_ASSERT_EQUAL(qk_tunedb_bucket("", b, sizeof b), 0);
    CU_ASSERT_STRING_EQUAL(b, "");
    const char *bad[] = {"K=", "K", "=4", "K=4,", "K=4,K=5", "K=0", "K=-3", "K=4x", "K=4;N=2", "K=99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(qk_tunedb_bucket(bad[i], b, sizeof b), -1);
    CU_ASSERT_EQUAL(qk_tunedb_bucket("K=4096,N=4096", b, 5), -1); /* does not fit */
}

static void test_roundtrip(void)
{
    tmpdir t;
    qk_tunedb *db = fresh_db(&t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    qk_tune_record r = rec(H, FP, "N=4096,K=4000", 2, 1.25e-4, "rows=8 kc=512");
    r.gbps = 13.5;
    r.gops = 0.125;
    r.created = 1700000000;
    CU_ASSERT_EQUAL(put(db, r), 0);

    qk_tune_record got;
    int exact = -1;
    char err[ERRSZ];
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=4000,N=4096", 2, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_EQUAL(exact, 1);
    CU_ASSERT(got.id > 0);
    CU_ASSERT_STRING_EQUAL(got.kernel_hash, H);
    CU_ASSERT_STRING_EQUAL(got.kernel_name, "gemv");
    CU_ASSERT_STRING_EQUAL(got.shape, "K=4000,N=4096"); /* normalized: sorted */
    CU_ASSERT_STRING_EQUAL(got.bucket, "K=4096,N=4096");
    CU_ASSERT_STRING_EQUAL(got.fingerprint, FP);
    CU_ASSERT_EQUAL(got.threads, 2);
    CU_ASSERT_STRING_EQUAL(got.config, "rows=8 kc=512");
    CU_ASSERT_EQUAL(got.seconds, 1.25e-4);
    CU_ASSERT_EQUAL(got.gbps, 13.5);
    CU_ASSERT_EQUAL(got.gops, 0.125);
    CU_ASSERT_STRING_EQUAL(got.version, "0.1.0");
    CU_ASSERT_EQUAL(got.created, 1700000000);
    CU_ASSERT_STRING_EQUAL(got.origin, "tune");
    CU_ASSERT_STRING_EQUAL(got.timing, "");

    /* created 0 becomes now */
    qk_tune_record r2 = rec(H, FP, "K=8,N=8", 1, 1.0, "c");
    CU_ASSERT_EQUAL(put(db, r2), 0);
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "N=8,K=8", 1, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT(got.created > 1700000000);

    /* a malformed shape is refused by put and best */
    qk_tune_record bad = rec(H, FP, "K=", 1, 1.0, "c");
    CU_ASSERT_EQUAL(qk_tunedb_put(db, &bad, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "shape"));
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=x", 1, 1, &got, &exact, err, sizeof err), -1);
    qk_tunedb_close(db);
    qk_tunedb_close(NULL);
    tmp_remove(&t);
}

static void test_exact_and_bucket(void)
{
    tmpdir t;
    qk_tunedb *db = fresh_db(&t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    CU_ASSERT_EQUAL(put(db, rec(H, FP, "K=4096,N=4096", 1, 2.0, "slow")), 0);
    CU_ASSERT_EQUAL(put(db, rec(H, FP, "K=4096,N=4096", 1, 1.0, "fast")), 0);
    CU_ASSERT_EQUAL(put(db, rec(H, FP, "K=4096,N=4096", 1, 3.0, "slower")), 0);
    CU_ASSERT_EQUAL(put(db, rec(H, FP, "K=4096,N=16384", 1, 0.5, "big")), 0);

    qk_tune_record got;
    int exact = -1;
    char err[ERRSZ];
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=4096,N=4096", 1, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_EQUAL(exact, 1);
    CU_ASSERT_STRING_EQUAL(got.config, "fast");

    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "N=5000,K=4096", 1, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_EQUAL(exact, 0);
    CU_ASSERT_STRING_EQUAL(got.shape, "K=4096,N=4096");
    CU_ASSERT_STRING_EQUAL(got.config, "fast");

    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=4096,N=12000", 1, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_EQUAL(exact, 0);
    CU_ASSERT_STRING_EQUAL(got.config, "big");

    /* other dims, kernel or machine: nothing */
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "N=4096", 1, 1, &got, &exact, err, sizeof err), 0);
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=4096,M=1,N=4096", 1, 1, &got, &exact, err, sizeof err), 0);
    CU_ASSERT_EQUAL(qk_tunedb_best(db, "fedcba9876543210", FP, "K=4096,N=4096", 1, 1, &got, &exact, err, sizeof err),
                    0);
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, "other-machine", "K=4096,N=4096", 1, 1, &got, &exact, err, sizeof err), 0);
    qk_tunedb_close(db);
    tmp_remove(&t);
}

/* qk_tunedb_best for kernel H at threads 1 returns `found`; when 1, the
 * record's config is `config` and `exact` says whether the shape matched. */
static void expect_best(qk_tunedb *db, const char *fp, const char *shape, int any_layout, int found, int exact,
                        const char *config)
{
    qk_tune_record got;
    int ex = -1;
    char err[ERRSZ];
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, fp, shape, 1, any_layout, &got, &ex, err, sizeof err), found);
    if (found != 1)
        return;
    CU_ASSERT_EQUAL(ex, exact);
    if (strcmp(got.config, config) != 0)
        printf("\n  %s, any_layout %d: got '%s', want '%s'\n", shape, any_layout, got.config, config);
    CU_ASSERT_STRING_EQUAL(got.config, config);
}

/* Records that read weights row-interleaved ("repack=R") serve only
 * callers that accept any layout, for the exact shape and the nearest. */
static void test_layouts(void)
{
    tmpdir t;
    qk_tunedb *db = fresh_db(&t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    CU_ASSERT_EQUAL(put(db, rec(H, FP, "K=4096,N=4096", 1, 2.0, "tile_par=8 kblocks=4")), 0);
    CU_ASSERT_EQUAL(put(db, rec(H, FP, "K=4096,N=4096", 1, 0.5, "tile_par=4 repack=1 prefetch=4096")), 0);
    CU_ASSERT_EQUAL(put(db, rec(H, FP, "K=4096,N=4096", 1, 3.0, "tile_par=4 repack=0")), 0);
    CU_ASSERT_EQUAL(put(db, rec(H, FP, "K=4096,N=16384", 1, 0.2, "repack=16")), 0);
    expect_best(db, FP, "K=4096,N=4096", 1, 1, 1, "tile_par=4 repack=1 prefetch=4096");
    expect_best(db, FP, "K=4096,N=4096", 0, 1, 1, "tile_par=8 kblocks=4");
    /* nearest: the repack=16 record is nearer to N=15000 but only any_layout takes it */
    expect_best(db, FP, "K=4096,N=15000", 1, 1, 0, "repack=16");
    expect_best(db, FP, "K=4096,N=15000", 0, 1, 0, "tile_par=8 kblocks=4");
    /* a machine with only row-interleaved records: none for the format's own layout */
    CU_ASSERT_EQUAL(put(db, rec(H, "fp2", "K=64,N=64", 1, 0.1, "repack=8")), 0);
    expect_best(db, "fp2", "K=64,N=64", 0, 0, 0, NULL);
    expect_best(db, "fp2", "K=64,N=64", 1, 1, 1, "repack=8");

    CU_ASSERT_EQUAL(qk_tunedb_config_repacks("repack=1"), 1);
    CU_ASSERT_EQUAL(qk_tunedb_config_repacks("lanes=16 repack=16 prefetch=0"), 1);
    CU_ASSERT_EQUAL(qk_tunedb_config_repacks("lanes=16 repack=0"), 0);
    CU_ASSERT_EQUAL(qk_tunedb_config_repacks("norepack=1"), 0);
    CU_ASSERT_EQUAL(qk_tunedb_config_repacks(""), 0);
    CU_ASSERT_EQUAL(qk_tunedb_config_repacks(NULL), 0);
    qk_tunedb_close(db);
    tmp_remove(&t);
}

static void test_threads(void)
{
    tmpdir t;
    qk_tunedb *db = fresh_db(&t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    CU_ASSERT_EQUAL(put(db, rec(H, FP, "K=1024,N=1024", 1, 2.0, "t1")), 0);
    CU_ASSERT_EQUAL(put(db, rec(H, FP, "K=1024,N=1024", 2, 1.0, "t2")), 0);
    CU_ASSERT_EQUAL(put(db, rec(H, FP, "K=1024,N=4096", 3, 1.0, "t3-bucket")), 0);

    qk_tune_record got;
    int exact = -1;
    char err[ERRSZ];
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=1024,N=1024", 1, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(got.config, "t1");
    CU_ASSERT_EQUAL(exact, 1);
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=1024,N=1024", 2, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(got.config, "t2");
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=1024,N=1024", 0, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(got.config, "t2"); /* any thread count: the fastest */
    /* the thread count first: a bucket match with 3 threads beats an exact shape with others */
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=1024,N=1024", 3, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(got.config, "t3-bucket");
    CU_ASSERT_EQUAL(exact, 0);
    /* no record with 8 threads: any thread count */
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=1024,N=1024", 8, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(got.config, "t2");
    CU_ASSERT_EQUAL(exact, 1);
    qk_tunedb_close(db);
    tmp_remove(&t);
}

/* One writer process: opens the database itself (possibly creating it
 * while the others do too) and puts 50 records. */
static int writer(const char *path, int id)
{
    char err[ERRSZ], shape[64];
    qk_tunedb *db = NULL;
    if (qk_tunedb_open(path, 0, &db, err, sizeof err) != 0) {
        fprintf(stderr, "writer %d: %s\n", id, err);
        return 1;
    }
    for (int i = 0; i < 50; i++) {
        snprintf(shape, sizeof shape, "K=%d,N=%d", 64 * (id + 1), 16 + i);
        qk_tune_record r = rec(H, FP, shape, id + 1, 1e-3 * (i + 1), "c");
        if (qk_tunedb_put(db, &r, err, sizeof err) != 0) {
            fprintf(stderr, "writer %d: %s\n", id, err);
            qk_tunedb_close(db);
            return 1;
        }
    }
    qk_tunedb_close(db);
    return 0;
}

static void test_concurrent_writers(void)
{
    tmpdir t;
    CU_ASSERT_FATAL(tmp_make(&t) == 0);
    pid_t pids[4];
    fflush(NULL);
    for (int i = 0; i < 4; i++) {
        pids[i] = fork();
        CU_ASSERT_FATAL(pids[i] >= 0);
        if (pids[i] == 0)
            _exit(writer(t.db, i));
    }
    for (int i = 0; i < 4; i++) {
        int status = 0;
        CU_ASSERT_EQUAL(waitpid(pids[i], &status, 0), pids[i]);
        CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    qk_tunedb *db = open_db(&t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    CU_ASSERT_EQUAL(count_records(db), 200);
    qk_tunedb_close(db);

    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(t.db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_step(st), SQLITE_ROW);
    const char *ok = (const char *)sqlite3_column_text(st, 0);
    CU_ASSERT_STRING_EQUAL(ok ? ok : "(null)", "ok");
    sqlite3_finalize(st);
    sqlite3_close(h);
    tmp_remove(&t);
}

static int write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static void test_bad_files(void)
{
    tmpdir t;
    char err[ERRSZ], path[256];
    qk_tunedb *db = NULL;
    CU_ASSERT_FATAL(tmp_make(&t) == 0);

    /* 4 KB of random bytes: an error naming the path, in both modes */
    unsigned char junk[4096];
    srand(12345);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)rand();
    CU_ASSERT_EQUAL_FATAL(write_file(t.db, junk, sizeof junk), 0);
    for (int ro = 0; ro < 2; ro++) {
        err[0] = 0;
        CU_ASSERT_EQUAL(qk_tunedb_open(t.db, ro, &db, err, sizeof err), -1);
        CU_ASSERT_PTR_NULL(db);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, t.db));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a database"));
    }

    /* a text file */
    snprintf(path, sizeof path, "%s/text.db", t.dir);
    const char *text = "this is not a database, just some text that is long enough to fill a header\n";
    CU_ASSERT_EQUAL_FATAL(write_file(path, text, strlen(text)), 0);
    CU_ASSERT_EQUAL(qk_tunedb_open(path, 0, &db, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));

    /* a zero-length file becomes a new database */
    snprintf(path, sizeof path, "%s/empty.db", t.dir);
    CU_ASSERT_EQUAL_FATAL(write_file(path, "", 0), 0);
    CU_ASSERT_EQUAL(qk_tunedb_open(path, 0, &db, err, sizeof err), 0);
    CU_ASSERT_PTR_NOT_NULL(db);
    if (db) {
        CU_ASSERT_EQUAL(put(db, rec(H, FP, "N=1", 1, 1.0, "c")), 0);
        CU_ASSERT_EQUAL(count_records(db), 1);
        qk_tunedb_close(db);
        db = NULL;
    }

    /* read-only: a missing file, and a working one that refuses writes */
    snprintf(path, sizeof path, "%s/missing.db", t.dir);
    CU_ASSERT_EQUAL(qk_tunedb_open(path, 1, &db, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no tuning database at"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_EQUAL(access(path, F_OK), -1); /* and did not create it */
    snprintf(path, sizeof path, "%s/empty.db", t.dir);
    CU_ASSERT_EQUAL(qk_tunedb_open(path, 1, &db, err, sizeof err), 0);
    if (db) {
        qk_tune_record r = rec(H, FP, "N=1", 1, 1.0, "c");
        CU_ASSERT_EQUAL(qk_tunedb_put(db, &r, err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "read-only"));
        CU_ASSERT_EQUAL(count_records(db), 1);
        qk_tunedb_close(db);
        db = NULL;
    }

    /* directories: missing ones are created, unreachable ones fail */
    snprintf(path, sizeof path, "%s/a/b/c/tune.db", t.dir);
    CU_ASSERT_EQUAL(qk_tunedb_open(path, 0, &db, err, sizeof err), 0);
    qk_tunedb_close(db);
    db = NULL;
    CU_ASSERT_EQUAL(qk_tunedb_open("/proc/nonexistent/x.db", 0, &db, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/proc/nonexistent"));
    CU_ASSERT_EQUAL(qk_tunedb_open(t.dir, 0, &db, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "directory"));
    CU_ASSERT_EQUAL(qk_tunedb_open("", 0, &db, err, sizeof err), -1);
    CU_ASSERT_PTR_NULL(db);
    tmp_remove(&t);
}

static void test_future_schema(void)
{
    tmpdir t;
    char err[ERRSZ];
    qk_tunedb *db = NULL;
    CU_ASSERT_FATAL(tmp_make(&t) == 0);
    db = open_db(&t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    qk_tunedb_close(db);
    db = NULL;
    sqlite3 *h = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(t.db, &h), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(h, "UPDATE meta SET value = '99' WHERE key = 'schema_version'", NULL, NULL, NULL),
                    SQLITE_OK);
    sqlite3_close(h);
    for (int ro = 0; ro < 2; ro++) {
        CU_ASSERT_EQUAL(qk_tunedb_open(t.db, ro, &db, err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "schema version 99"));
    }
    tmp_remove(&t);
}

/* Cold and hot times are not compared: the fastest cold record wins, then
 * hot, then records whose timing was not recorded; exact shape and the
 * nearest bucket alike. */
static void test_timing(void)
{
    tmpdir t;
    char err[ERRSZ];
    qk_tunedb *db = fresh_db(&t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    qk_tune_record legacy = rec(H, FP, "K=4096,N=4096", 1, 0.5e-3, "legacy");
    qk_tune_record hot = rec(H, FP, "K=4096,N=4096", 1, 1.0e-3, "hot"), hot2 = hot;
    qk_tune_record cold = rec(H, FP, "K=4096,N=4096", 1, 4.0e-3, "cold"), cold2 = cold;
    snprintf(hot.timing, sizeof hot.timing, "hot");
    snprintf(hot2.timing, sizeof hot2.timing, "hot");
    snprintf(hot2.config, sizeof hot2.config, "hot2");
    hot2.seconds = 1.5e-3;
    snprintf(cold.timing, sizeof cold.timing, "cold");
    snprintf(cold2.timing, sizeof cold2.timing, "cold");
    snprintf(cold2.config, sizeof cold2.config, "cold2");
    cold2.seconds = 3.0e-3;

    qk_tune_record got;
    int exact = -1;
    CU_ASSERT_EQUAL(put(db, legacy), 0);
    CU_ASSERT_EQUAL(put(db, hot2), 0);
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=4096,N=4096", 1, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(got.config, "hot2"); /* hot over the faster unrecorded one */
    CU_ASSERT_STRING_EQUAL(got.timing, "hot");
    CU_ASSERT_EQUAL(put(db, hot), 0);
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=4096,N=4096", 1, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(got.config, "hot"); /* the faster of the hot ones */
    CU_ASSERT_EQUAL(put(db, cold), 0);
    CU_ASSERT_EQUAL(put(db, cold2), 0);
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=4096,N=4096", 1, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(got.config, "cold2"); /* cold over every faster hot one */
    CU_ASSERT_STRING_EQUAL(got.timing, "cold");
    CU_ASSERT_EQUAL(exact, 1);
    /* the nearest bucket ranks the same way */
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=4000,N=4100", 1, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(got.config, "cold2");
    CU_ASSERT_EQUAL(exact, 0);
    /* a nearer shape wins whatever its timing */
    qk_tune_record near = rec(H, FP, "K=4000,N=4096", 1, 9.0e-3, "near");
    CU_ASSERT_EQUAL(put(db, near), 0);
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=4000,N=4100", 1, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(got.config, "near");

    /* prune keeps the fastest of each timing */
    CU_ASSERT_EQUAL(qk_tunedb_prune(db, NULL, 1, err, sizeof err), 2); /* hot2 and cold */
    qk_tune_record *all = NULL;
    int n = qk_tunedb_list(db, NULL, &all, err, sizeof err);
    CU_ASSERT_EQUAL(n, 4);
    for (int i = 0; i < n; i++)
        CU_ASSERT(strcmp(all[i].config, "hot2") != 0 && strcmp(all[i].config, "cold") != 0);
    free(all);

    /* anything else is refused */
    qk_tune_record bad = rec(H, FP, "K=8,N=8", 1, 1.0, "c");
    snprintf(bad.timing, sizeof bad.timing, "warm");
    err[0] = 0;
    CU_ASSERT_EQUAL(qk_tunedb_put(db, &bad, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "timing 'warm'"));
    qk_tunedb_close(db);
    tmp_remove(&t);
}

/* A schema-1 file (before the timing column), written here with sqlite
 * itself: read as it is when opened read-only, upgraded in place when
 * opened for writing, its records kept. */
static void test_schema1_upgrade(void)
{
    tmpdir t;
    char err[ERRSZ] = "";
    CU_ASSERT_FATAL(tmp_make(&t) == 0);
    sqlite3 *h = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(t.db, &h), SQLITE_OK);
    const char *v1 =
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema_version', '1');"
        "CREATE TABLE records (id INTEGER PRIMARY KEY, kernel_hash TEXT NOT NULL DEFAULT '', kernel_name TEXT NOT "
        "NULL DEFAULT '', shape TEXT NOT NULL DEFAULT '', bucket TEXT NOT NULL DEFAULT '', fingerprint TEXT NOT NULL "
        "DEFAULT '', threads INTEGER NOT NULL DEFAULT 0, config TEXT NOT NULL DEFAULT '', seconds REAL NOT NULL "
        "DEFAULT 0, gbps REAL NOT NULL DEFAULT 0, gops REAL NOT NULL DEFAULT 0, version TEXT NOT NULL DEFAULT '', "
        "created INTEGER NOT NULL DEFAULT 0, origin TEXT NOT NULL DEFAULT '');"
        "INSERT INTO records (kernel_hash, kernel_name, shape, bucket, fingerprint, threads, config, seconds, "
        "version, created, origin) VALUES ('0123456789abcdef', 'gemv', 'K=4096,N=4096', 'K=4096,N=4096', "
        "'x86_64-avx512-test', 1, 'old', 0.001, '0.1.0', 1700000000, 'tune');";
    CU_ASSERT_EQUAL(sqlite3_exec(h, v1, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);

    qk_tunedb *db = NULL;
    qk_tune_record got;
    int exact = -1;
    CU_ASSERT_EQUAL_FATAL(qk_tunedb_open(t.db, 1, &db, err, sizeof err), 0);
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=4096,N=4096", 1, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(got.config, "old");
    CU_ASSERT_STRING_EQUAL(got.timing, "");
    qk_tune_record *all = NULL;
    CU_ASSERT_EQUAL(qk_tunedb_list(db, NULL, &all, err, sizeof err), 1);
    free(all);
    qk_tunedb_close(db);

    db = open_db(&t); /* writable: upgraded */
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    qk_tune_record hot = rec(H, FP, "K=4096,N=4096", 1, 2.0e-3, "new");
    snprintf(hot.timing, sizeof hot.timing, "hot");
    CU_ASSERT_EQUAL(put(db, hot), 0);
    CU_ASSERT_EQUAL(qk_tunedb_best(db, H, FP, "K=4096,N=4096", 1, 1, &got, &exact, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(got.config, "new"); /* hot over the old unrecorded one */
    CU_ASSERT_EQUAL(count_records(db), 2);
    qk_tunedb_close(db);

    CU_ASSERT_EQUAL_FATAL(sqlite3_open(t.db, &h), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    CU_ASSERT_EQUAL(sqlite3_prepare_v2(h, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st, NULL),
                    SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_step(st), SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(st, 0), "2");
    sqlite3_finalize(st);
    sqlite3_close(h);
    db = open_db(&t); /* a second writable open finds nothing to do */
    CU_ASSERT_PTR_NOT_NULL(db);
    CU_ASSERT_EQUAL(count_records(db), 2);
    qk_tunedb_close(db);
    tmp_remove(&t);
}

static void test_default_path(void)
{
    char buf[512], *saved[3];
    const char *names[3] = {"QKC_TUNE_DB", "XDG_CACHE_HOME", "HOME"};
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(names[i]);
        saved[i] = v ? strdup(v) : NULL;
    }
    setenv("QKC_TUNE_DB", "/x/y.db", 1);
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    setenv("HOME", "/home/u", 1);
    CU_ASSERT_STRING_EQUAL(qk_tunedb_default_path(buf, sizeof buf), "/x/y.db");
    unsetenv("QKC_TUNE_DB");
    CU_ASSERT_STRING_EQUAL(qk_tunedb_default_path(buf, sizeof buf), "/xdg/qkc/tune.db");
    unsetenv("XDG_CACHE_HOME");
    CU_ASSERT_STRING_EQUAL(qk_tunedb_default_path(buf, sizeof buf), "/home/u/.cache/qkc/tune.db");
    CU_ASSERT_PTR_NULL(qk_tunedb_default_path(buf, 8)); /* does not fit */
    unsetenv("HOME");
    CU_ASSERT_PTR_NULL(qk_tunedb_default_path(buf, sizeof buf));
    for (int i = 0; i < 3; i++) {
        if (saved[i])
            setenv(names[i], saved[i], 1);
        else
            unsetenv(names[i]);
        free(saved[i]);
    }
}

static qk_tune_record rec_at(const char *shape, double seconds, int64_t created, const char *config)
{
    qk_tune_record r = rec(H, FP, shape, 1, seconds, config);
    r.created = created;
    return r;
}

static void test_list_prune(void)
{
    tmpdir t;
    char err[ERRSZ];
    qk_tunedb *db = fresh_db(&t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    CU_ASSERT_EQUAL(put(db, rec_at("N=64", 3.0, 100, "a3")), 0);
    CU_ASSERT_EQUAL(put(db, rec_at("N=64", 1.0, 200, "a1")), 0);
    CU_ASSERT_EQUAL(put(db, rec_at("N=64", 2.0, 300, "a2")), 0);
    CU_ASSERT_EQUAL(put(db, rec_at("N=128", 5.0, 100, "b5")), 0);
    qk_tune_record other = rec_at("N=64", 9.0, 150, "other");
    snprintf(other.kernel_name, sizeof other.kernel_name, "gemm");
    snprintf(other.kernel_hash, sizeof other.kernel_hash, "ffffffffffffffff");
    CU_ASSERT_EQUAL(put(db, other), 0);

    /* list: newest first, filters, limit */
    qk_tune_record *l = NULL;
    CU_ASSERT_EQUAL(qk_tunedb_list(db, NULL, &l, err, sizeof err), 5);
    if (l) {
        CU_ASSERT_STRING_EQUAL(l[0].config, "a2");
        CU_ASSERT_STRING_EQUAL(l[2].config, "other");
        CU_ASSERT_STRING_EQUAL(l[3].config, "b5"); /* created 100 like a3, put after it */
        CU_ASSERT_STRING_EQUAL(l[4].config, "a3");
    }
    free(l);
    qk_tune_filter f = {.kernel_name = "gemm"};
    CU_ASSERT_EQUAL(qk_tunedb_list(db, &f, &l, err, sizeof err), 1);
    free(l);
    f = (qk_tune_filter){.limit = 2};
    CU_ASSERT_EQUAL(qk_tunedb_list(db, &f, &l, err, sizeof err), 2);
    free(l);
    f = (qk_tune_filter){.fingerprint = "nowhere"};
    CU_ASSERT_EQUAL(qk_tunedb_list(db, &f, &l, err, sizeof err), 0);
    free(l);

    /* keep_best: per group only the fastest stays */
    f = (qk_tune_filter){.kernel_hash = H};
    CU_ASSERT_EQUAL(qk_tunedb_prune(db, &f, 1, err, sizeof err), 2);
    f = (qk_tune_filter){.kernel_hash = H};
    CU_ASSERT_EQUAL(qk_tunedb_list(db, &f, &l, err, sizeof err), 2);
    if (l) {
        CU_ASSERT_STRING_EQUAL(l[0].config, "a1");
        CU_ASSERT_STRING_EQUAL(l[1].config, "b5");
    }
    free(l);

    /* older_than: deletes created < 150 (b5) */
    f = (qk_tune_filter){.older_than = 150};
    CU_ASSERT_EQUAL(qk_tunedb_prune(db, &f, 0, err, sizeof err), 1);
    CU_ASSERT_EQUAL(count_records(db), 2);
    /* older_than with keep_best keeps a group's only record */
    f = (qk_tune_filter){.older_than = 1000};
    CU_ASSERT_EQUAL(qk_tunedb_prune(db, &f, 1, err, sizeof err), 0);
    CU_ASSERT_EQUAL(qk_tunedb_prune(db, NULL, 0, err, sizeof err), 2);
    CU_ASSERT_EQUAL(count_records(db), 0);
    qk_tunedb_close(db);
    tmp_remove(&t);
}

/* Walks JSON text: brackets balance outside strings, strings end, and
 * no raw control character sits inside one. 0 when it holds. */
static int json_shape_ok(const char *s)
{
    char stack[64];
    int depth = 0, in_str = 0;
    for (; *s; s++) {
        if (in_str) {
            if ((unsigned char)*s < 0x20)
                return -1;
            if (*s == '\\' && s[1])
                s++;
            else if (*s == '"')
                in_str = 0;
        } else if (*s == '"') {
            in_str = 1;
        } else if (*s == '[' || *s == '{') {
            if (depth == (int)sizeof stack)
                return -1;
            stack[depth++] = *s;
        } else if (*s == ']' || *s == '}') {
            if (depth == 0 || stack[--depth] != (*s == ']' ? '[' : '{'))
                return -1;
        }
    }
    return depth == 0 && !in_str ? 0 : -1;
}

static void test_csv_json(void)
{
    qk_tune_record r[2];
    r[0] = rec(H, FP, "K=8,N=8", 1, 0.000123456789, "rows=4");
    snprintf(r[0].kernel_name, sizeof r[0].kernel_name, "my,kern\"el");
    r[0].id = 7;
    r[1] = rec(H, FP, "K=8,N=8", 2, 2.5, "line1\nline2\\x");
    r[1].id = 8;

    char *csv = qk_tunedb_csv(r, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    CU_ASSERT_EQUAL(strncmp(csv, "id,kernel_hash,kernel_name,shape,", 33), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(csv, ",\"my,kern\"\"el\","));
    CU_ASSERT_PTR_NOT_NULL(strstr(csv, ",\"line1\nline2\\x\","));
    CU_ASSERT_PTR_NOT_NULL(strstr(csv, "0.000123456789"));
    free(csv);

    char *json = qk_tunedb_json(r, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    CU_ASSERT_EQUAL(json_shape_ok(json), 0);
    CU_ASSERT_EQUAL(json[0], '[');
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"kernel_name\": \"my,kern\\\"el\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"config\": \"line1\\nline2\\\\x\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"seconds\": 0.000123456789"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"id\": 8"));
    free(json);

    json = qk_tunedb_json(NULL, 0);
    CU_ASSERT_STRING_EQUAL(json, "[]");
    free(json);
    csv = qk_tunedb_csv(NULL, 0);
    CU_ASSERT_EQUAL(strchr(csv, '\n') - csv + 1, (long)strlen(csv)); /* the header alone */
    free(csv);
}

static qk_probe_result probe_sample(double base)
{
    qk_probe_result p;
    memset(&p, 0, sizeof p);
    snprintf(p.fingerprint, sizeof p.fingerprint, "%s", FP);
    p.threads = 2;
    for (int l = 0; l < QK_PROBE_LEVELS; l++) {
        p.read_bw[l][0] = base * (l + 1) + 0.1;
        p.read_bw[l][1] = base * (l + 1) + 0.2;
        p.ws_bytes[l] = ((int64_t)1 << (15 + 3 * l)) + (int64_t)base;
    }
    p.f32_fma[0] = base * 213e9;
    p.f32_fma[1] = base * 426e9;
    p.int8_dot[0] = base * 845e9;
    p.int8_dot[1] = base * 1690e9;
    snprintf(p.f32_insn, sizeof p.f32_insn, "vfmadd231ps zmm");
    snprintf(p.int8_insn, sizeof p.int8_insn, "vpdpbusd zmm");
    p.created = 1700000000 + (int64_t)base;
    p.seconds = base / 3;
    return p;
}

/* Every field of got equals want's. */
static void probe_check(const qk_probe_result *got, const qk_probe_result *want)
{
    CU_ASSERT_STRING_EQUAL(got->fingerprint, want->fingerprint);
    CU_ASSERT_EQUAL(got->threads, want->threads);
    for (int l = 0; l < QK_PROBE_LEVELS; l++) {
        CU_ASSERT_EQUAL(got->read_bw[l][0], want->read_bw[l][0]);
        CU_ASSERT_EQUAL(got->read_bw[l][1], want->read_bw[l][1]);
        CU_ASSERT_EQUAL(got->ws_bytes[l], want->ws_bytes[l]);
    }
    CU_ASSERT_EQUAL(got->f32_fma[0], want->f32_fma[0]);
    CU_ASSERT_EQUAL(got->f32_fma[1], want->f32_fma[1]);
    CU_ASSERT_EQUAL(got->int8_dot[0], want->int8_dot[0]);
    CU_ASSERT_EQUAL(got->int8_dot[1], want->int8_dot[1]);
    CU_ASSERT_STRING_EQUAL(got->f32_insn, want->f32_insn);
    CU_ASSERT_STRING_EQUAL(got->int8_insn, want->int8_insn);
    CU_ASSERT_EQUAL(got->created, want->created);
    CU_ASSERT_EQUAL(got->seconds, want->seconds);
}

static void test_probe(void)
{
    tmpdir t;
    char err[ERRSZ];
    qk_tunedb *db = fresh_db(&t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    qk_probe_result p = probe_sample(1.0), got;
    CU_ASSERT_EQUAL(qk_tunedb_probe_get(db, FP, &got, err, sizeof err), 0);
    CU_ASSERT_EQUAL(qk_tunedb_probe_put(db, &p, err, sizeof err), 0);
    memset(&got, 0x5a, sizeof got);
    CU_ASSERT_EQUAL(qk_tunedb_probe_get(db, FP, &got, err, sizeof err), 1);
    probe_check(&got, &p);

    /* a later probe of the same machine replaces the earlier one */
    qk_probe_result p2 = probe_sample(2.0);
    snprintf(p2.int8_insn, sizeof p2.int8_insn, "vpmaddubsw ymm");
    CU_ASSERT_EQUAL(qk_tunedb_probe_put(db, &p2, err, sizeof err), 0);
    CU_ASSERT_EQUAL(qk_tunedb_probe_get(db, FP, &got, err, sizeof err), 1);
    probe_check(&got, &p2);
    CU_ASSERT_STRING_EQUAL(got.int8_insn, "vpmaddubsw ymm");
    CU_ASSERT_EQUAL(qk_tunedb_probe_get(db, "other-machine", &got, err, sizeof err), 0);
    qk_tunedb_close(db);

    /* and it survives reopening */
    CU_ASSERT_EQUAL(qk_tunedb_open(t.db, 1, &db, err, sizeof err), 0);
    CU_ASSERT_EQUAL(qk_tunedb_probe_get(db, FP, &got, err, sizeof err), 1);
    CU_ASSERT_EQUAL(got.seconds, p2.seconds);
    qk_tunedb_close(db);
    tmp_remove(&t);
}

/* qk_probe_read_pass (the same-run read of `qkc bench --baseline read`):
 * one pass on 1 and 2 threads reads each buffer's bytes rounded down to
 * 512; bad input (no threads, too many, a misaligned buffer) is refused
 * with a message, never read. */
static void test_read_pass(void)
{
    char err[ERRSZ];
    size_t n = 1 << 20;
    void *a = aligned_alloc(64, n), *b = aligned_alloc(64, n);
    CU_ASSERT_FATAL(a && b);
    memset(a, 1, n);
    memset(b, 2, n);
    void *bufs[2] = {a, b};
    double got = -1;
    CU_ASSERT(qk_probe_read_pass(bufs, 1, 1000000, &got, err, sizeof err) >= 0);
    CU_ASSERT_EQUAL(got, 1000000 / 512 * 512);
    CU_ASSERT(qk_probe_read_pass(bufs, 2, n, &got, err, sizeof err) >= 0);
    CU_ASSERT_EQUAL(got, 2.0 * n);
    err[0] = 0;
    CU_ASSERT_EQUAL(qk_probe_read_pass(bufs, 0, n, &got, err, sizeof err), -1);
    CU_ASSERT(strstr(err, "threads") != NULL);
    err[0] = 0;
    CU_ASSERT_EQUAL(qk_probe_read_pass(bufs, 100000, n, &got, err, sizeof err), -1);
    CU_ASSERT(strstr(err, "threads") != NULL);
    void *off[2] = {(char *)a + 4, b};
    err[0] = 0;
    CU_ASSERT_EQUAL(qk_probe_read_pass(off, 2, n - 64, &got, err, sizeof err), -1);
    CU_ASSERT(strstr(err, "not 64-byte aligned") != NULL);
    free(a);
    free(b);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("tunedb", NULL, NULL);
    CU_add_test(s, "shape buckets", test_bucket);
    CU_add_test(s, "put and best: every field round-trips", test_roundtrip);
    CU_add_test(s, "best: exact shape, else the nearest bucket", test_exact_and_bucket);
    CU_add_test(s, "best: thread count, else any", test_threads);
    CU_add_test(s, "best: row-interleaved records only for any layout", test_layouts);
    CU_add_test(s, "four writer processes at once", test_concurrent_writers);
    CU_add_test(s, "corrupt, empty, missing and unreachable files", test_bad_files);
    CU_add_test(s, "a newer schema version is refused", test_future_schema);
    CU_add_test(s, "best: cold over hot over unrecorded timing; prune per timing", test_timing);
    CU_add_test(s, "a schema-1 file: read as it is, upgraded when written", test_schema1_upgrade);
    CU_add_test(s, "default path from the environment", test_default_path);
    CU_add_test(s, "list and prune", test_list_prune);
    CU_add_test(s, "CSV and JSON export", test_csv_json);
    CU_add_test(s, "probe results", test_probe);
    CU_add_test(s, "read pass: bytes read, bad input refused", test_read_pass);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
