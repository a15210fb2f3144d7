/* tunedb.c — the tuning database (tunedb.h): tuned configurations and
 * probe results in one SQLite file, shared by `qkc tune`, `qkc probe`,
 * `qkc bench` and the JIT's configuration lookup.
 *
 * Three tables: `meta` (key/value; holds the schema version), `records`
 * (one column per qk_tune_record field, indexed by (kernel_hash,
 * fingerprint, shape) and (kernel_hash, fingerprint, bucket)) and `probe`
 * (one row per fingerprint, one column per qk_probe_result number). The
 * columns of both structs are described once, in tables below; the SQL,
 * the binds and the reads are generated from them so they cannot drift
 * apart. Only those static column names are ever formatted into SQL; user
 * text always goes through bound parameters.
 *
 * Concurrency: WAL journal where the filesystem allows it, a busy timeout
 * of 10 s, every write one BEGIN IMMEDIATE transaction, so several sweep
 * processes can write at once. A handle is used by one thread at a time.
 *
 * Every failure is -1 plus a message in err; nothing prints or exits. */
#include "runtime/tunedb.h"

#include "common/base.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#if QKC_HAVE_SQLITE
#include <sqlite3.h>
#else
#include "runtime/sqlite_absent.h"
#endif

#define TUNEDB_SCHEMA 2        /* bump when the tables change; 2: records.timing */
#define TUNEDB_BUSY_MS 10000   /* wait this long for another writer */
#define SHAPE_MAX_DIMS 16
#define SHAPE_MAX_VALUE ((int64_t)1 << 62) /* so rounding up cannot overflow */

struct qk_tunedb {
    sqlite3 *h;
    int readonly;
    int schema; /* the file's version: 1 until upgraded (read-only opens) */
    char *path;
};

/* ---- errors ---- */

static int fail(char *err, size_t errsz, const char *fmt, ...)
{
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* "tuning database PATH: WHAT: sqlite's reason" */
static int db_fail(const qk_tunedb *db, const char *what, char *err, size_t errsz)
{
    return fail(err, errsz, "tuning database %s: %s: %s", db->path, what, sqlite3_errmsg(db->h));
}

/* ---- the columns of the stored structs ---- */

typedef enum { COL_TEXT, COL_INT, COL_I64, COL_REAL } col_kind;

typedef struct col {
    const char *name;
    col_kind kind;
    size_t off;
    size_t size; /* of a COL_TEXT buffer */
    int since;   /* the schema version that added the column; 0: the first */
} col;

#define RCOL(field, kind) {#field, kind, offsetof(qk_tune_record, field), sizeof(((qk_tune_record *)0)->field), 0}
#define RCOL_SINCE(field, kind, ver)                                                                                   \
    {#field, kind, offsetof(qk_tune_record, field), sizeof(((qk_tune_record *)0)->field), ver}

/* records: the id is the rowid and is handled apart. */
static const col record_cols[] = {
    RCOL(kernel_hash, COL_TEXT), RCOL(kernel_name, COL_TEXT), RCOL(shape, COL_TEXT),
    RCOL(bucket, COL_TEXT),      RCOL(fingerprint, COL_TEXT), RCOL(threads, COL_INT),
    RCOL(config, COL_TEXT),      RCOL(seconds, COL_REAL),     RCOL(gbps, COL_REAL),
    RCOL(gops, COL_REAL),        RCOL(version, COL_TEXT),     RCOL(created, COL_I64),
    RCOL(origin, COL_TEXT),      RCOL_SINCE(timing, COL_TEXT, 2),
};

#define PCOL(name, field, kind) {name, kind, offsetof(qk_probe_result, field), sizeof(((qk_probe_result *)0)->field)}

_Static_assert(QK_PROBE_LEVELS == 4, "probe_cols lists four cache levels");

/* probe: the arrays become one column per element (bw_LEVEL_1 is one
 * thread, bw_LEVEL_n all threads). */
static const col probe_cols[] = {
    PCOL("fingerprint", fingerprint, COL_TEXT),
    PCOL("threads", threads, COL_INT),
    PCOL("bw_l1_1", read_bw[QK_PROBE_L1][0], COL_REAL),
    PCOL("bw_l1_n", read_bw[QK_PROBE_L1][1], COL_REAL),
    PCOL("bw_l2_1", read_bw[QK_PROBE_L2][0], COL_REAL),
    PCOL("bw_l2_n", read_bw[QK_PROBE_L2][1], COL_REAL),
    PCOL("bw_l3_1", read_bw[QK_PROBE_L3][0], COL_REAL),
    PCOL("bw_l3_n", read_bw[QK_PROBE_L3][1], COL_REAL),
    PCOL("bw_dram_1", read_bw[QK_PROBE_DRAM][0], COL_REAL),
    PCOL("bw_dram_n", read_bw[QK_PROBE_DRAM][1], COL_REAL),
    PCOL("ws_l1", ws_bytes[QK_PROBE_L1], COL_I64),
    PCOL("ws_l2", ws_bytes[QK_PROBE_L2], COL_I64),
    PCOL("ws_l3", ws_bytes[QK_PROBE_L3], COL_I64),
    PCOL("ws_dram", ws_bytes[QK_PROBE_DRAM], COL_I64),
    PCOL("f32_fma_1", f32_fma[0], COL_REAL),
    PCOL("f32_fma_n", f32_fma[1], COL_REAL),
    PCOL("int8_dot_1", int8_dot[0], COL_REAL),
    PCOL("int8_dot_n", int8_dot[1], COL_REAL),
    PCOL("f32_insn", f32_insn, COL_TEXT),
    PCOL("int8_insn", int8_insn, COL_TEXT),
    PCOL("created", created, COL_I64),
    PCOL("seconds", seconds, COL_REAL),
};

static const char *const col_sql_type[] = {
    [COL_TEXT] = "TEXT NOT NULL DEFAULT ''",
    [COL_INT] = "INTEGER NOT NULL DEFAULT 0",
    [COL_I64] = "INTEGER NOT NULL DEFAULT 0",
    [COL_REAL] = "REAL NOT NULL DEFAULT 0",
};

/* Length of a text field, never reading past its buffer. */
static size_t col_textlen(const col *c, const void *obj)
{
    return strnlen((const char *)obj + c->off, c->size);
}

static int col_bind(sqlite3_stmt *st, int i, const col *c, const void *obj)
{
    const char *p = (const char *)obj + c->off;
    switch (c->kind) {
    case COL_TEXT:
        return sqlite3_bind_text(st, i, p, (int)col_textlen(c, obj), SQLITE_TRANSIENT);
    case COL_INT:
        return sqlite3_bind_int(st, i, *(const int *)(const void *)p);
    case COL_I64:
        return sqlite3_bind_int64(st, i, *(const int64_t *)(const void *)p);
    case COL_REAL:
        return sqlite3_bind_double(st, i, *(const double *)(const void *)p);
    }
    return SQLITE_MISUSE;
}

static void col_read(sqlite3_stmt *st, int i, const col *c, void *obj)
{
    char *p = (char *)obj + c->off;
    switch (c->kind) {
    case COL_TEXT: {
        const char *s = (const char *)sqlite3_column_text(st, i);
        snprintf(p, c->size, "%s", s ? s : "");
        break;
    }
    case COL_INT:
        *(int *)(void *)p = sqlite3_column_int(st, i);
        break;
    case COL_I64:
        *(int64_t *)(void *)p = sqlite3_column_int64(st, i);
        break;
    case COL_REAL:
        *(double *)(void *)p = sqlite3_column_double(st, i);
        break;
    }
}

/* Binds cols to parameters first, first+1, ... */
static int bind_row(sqlite3_stmt *st, int first, const col *cols, int n, const void *obj)
{
    for (int i = 0; i < n; i++)
        if (col_bind(st, first + i, &cols[i], obj) != SQLITE_OK)
            return -1;
    return 0;
}

static void read_row(sqlite3_stmt *st, int first, const col *cols, int n, void *obj)
{
    for (int i = 0; i < n; i++)
        col_read(st, first + i, &cols[i], obj);
}

/* "a, b, c" */
static void sql_names(qk_buf *b, const col *cols, int n)
{
    for (int i = 0; i < n; i++)
        qk_buf_printf(b, "%s%s", i ? ", " : "", cols[i].name);
}

/* "?, ?, ?" */
static void sql_params(qk_buf *b, int n)
{
    for (int i = 0; i < n; i++)
        qk_buf_puts(b, i ? ", ?" : "?");
}

static void sql_create(qk_buf *b, const char *table, const char *first, const col *cols, int n)
{
    qk_buf_printf(b, "CREATE TABLE IF NOT EXISTS %s (%s", table, first);
    for (int i = 0; i < n; i++)
        qk_buf_printf(b, ", %s %s", cols[i].name, col_sql_type[cols[i].kind]);
    qk_buf_puts(b, ");\n");
}

/* The SELECT of every record column: id first, then record_cols; a
 * column newer than the file (read-only, not upgraded) reads as its
 * default. */
static void sql_select_records(const qk_tunedb *db, qk_buf *b)
{
    qk_buf_puts(b, "SELECT id");
    for (int i = 0; i < QK_COUNT(record_cols); i++) {
        const col *c = &record_cols[i];
        if (c->since > db->schema)
            qk_buf_printf(b, ", %s AS %s", c->kind == COL_TEXT ? "''" : "0", c->name);
        else
            qk_buf_printf(b, ", %s", c->name);
    }
    qk_buf_puts(b, " FROM records ");
}

/* SQL ranking a record's timing: cold first, then hot, then unrecorded. */
#define TIMING_RANK "(CASE timing WHEN 'cold' THEN 0 WHEN 'hot' THEN 1 ELSE 2 END)"

static int timing_rank(const char *timing)
{
    return strcmp(timing, "cold") == 0 ? 0 : strcmp(timing, "hot") == 0 ? 1 : 2;
}

static void read_record(sqlite3_stmt *st, qk_tune_record *r)
{
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    read_row(st, 1, record_cols, QK_COUNT(record_cols), r);
}

/* ---- statements and transactions ---- */

/* Prepares sql (a qk_buf's text, freed here). */
static int prepare(qk_tunedb *db, qk_buf *sql, sqlite3_stmt **st, char *err, size_t errsz)
{
    int rc = sqlite3_prepare_v2(db->h, sql->s, -1, st, NULL);
    qk_buf_free(sql);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(*st);
        *st = NULL;
        return db_fail(db, "preparing a statement", err, errsz);
    }
    return 0;
}

/* Runs sql; a failure reads "tuning database PATH: WHAT: reason". */
static int exec(qk_tunedb *db, const char *sql, const char *what, char *err, size_t errsz)
{
    if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(db, what, err, errsz);
    return 0;
}

/* BEGIN IMMEDIATE takes the write lock at once, so the busy timeout
 * applies and a transaction never fails half-way on a lock upgrade. */
static int tx_begin(qk_tunedb *db, char *err, size_t errsz)
{
    if (db->readonly)
        return fail(err, errsz, "tuning database %s: opened read-only", db->path);
    return exec(db, "BEGIN IMMEDIATE", "starting a transaction", err, errsz);
}

/* Commits when ok == 0, else rolls back; returns ok, or -1 when the commit failed. */
static int tx_end(qk_tunedb *db, int ok, char *err, size_t errsz)
{
    if (ok < 0) {
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
        return ok;
    }
    if (exec(db, "COMMIT", "committing", err, errsz) < 0) {
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return ok;
}

/* Runs a statement that returns no rows; finalizes it. */
static int step_done(qk_tunedb *db, sqlite3_stmt *st, const char *what, char *err, size_t errsz)
{
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : db_fail(db, what, err, errsz);
    sqlite3_finalize(st);
    return ret;
}

/* ---- shapes and buckets ---- */

typedef struct dim {
    char name[64];
    int64_t value;
} dim;

static int dim_cmp(const void *a, const void *b)
{
    return strcmp(((const dim *)a)->name, ((const dim *)b)->name);
}

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static int is_name_char(char c, int first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (!first && c >= '0' && c <= '9');
}

/* dim = name "=" digits; sets *end past it. 0 or -1. */
static int parse_dim(const char *s, dim *d, const char **end)
{
    s = skip_space(s);
    size_t n = 0;
    while (is_name_char(s[n], n == 0))
        n++;
    if (n == 0 || n >= sizeof d->name)
        return -1;
    memcpy(d->name, s, n);
    d->name[n] = 0;
    s = skip_space(s + n);
    if (*s++ != '=')
        return -1;
    s = skip_space(s);
    if (*s < '0' || *s > '9')
        return -1;
    int64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (*s - '0');
        if (v > SHAPE_MAX_VALUE)
            return -1;
    }
    if (v < 1)
        return -1;
    d->value = v;
    *end = skip_space(s);
    return 0;
}

/* shape = [dim ("," dim)*]: the dims sorted by name, their count, or -1
 * (malformed, repeated name, too many dims). "" is the shape of no dims. */
static int shape_parse(const char *s, dim *d)
{
    int n = 0;
    if (!s)
        return -1;
    if (*skip_space(s) == 0)
        return 0;
    for (;;) {
        if (n == SHAPE_MAX_DIMS || parse_dim(s, &d[n], &s) < 0)
            return -1;
        n++;
        if (*s == 0)
            break;
        if (*s++ != ',')
            return -1;
    }
    qsort(d, (size_t)n, sizeof *d, dim_cmp);
    for (int i = 1; i < n; i++)
        if (strcmp(d[i - 1].name, d[i].name) == 0)
            return -1;
    return n;
}

/* "K=4096,N=4096" into buf; -1 when it does not fit. */
static int shape_print(const dim *d, int n, char *buf, size_t size)
{
    size_t len = 0;
    if (size == 0)
        return -1;
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        int w = snprintf(buf + len, size - len, "%s%s=%lld", i ? "," : "", d[i].name, (long long)d[i].value);
        if (w < 0 || (size_t)w >= size - len)
            return -1;
        len += (size_t)w;
    }
    return 0;
}

/* The power of two nearest to v in log space: 2^k when v < 2^k * sqrt(2). */
static int64_t round_pow2(int64_t v)
{
    int64_t lo = 1;
    while (lo <= v / 2)
        lo *= 2;
    return (double)v / (double)lo < 1.4142135623730951 ? lo : lo * 2;
}

/* The shape's normal form (dims sorted by name). 0 or -1. */
static int shape_normalize(const char *shape, char *buf, size_t size)
{
    dim d[SHAPE_MAX_DIMS];
    int n = shape_parse(shape, d);
    return n < 0 ? -1 : shape_print(d, n, buf, size);
}

int qk_tunedb_bucket(const char *shape, char *buf, size_t size)
{
    dim d[SHAPE_MAX_DIMS];
    int n = shape_parse(shape, d);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++)
        d[i].value = round_pow2(d[i].value);
    return shape_print(d, n, buf, size);
}

/* Sum over dims of |log2(a/b)|, or -1 when the dim names differ. */
static double shape_distance(const dim *a, int na, const dim *b, int nb)
{
    if (na != nb)
        return -1;
    double sum = 0;
    for (int i = 0; i < na; i++) {
        if (strcmp(a[i].name, b[i].name) != 0)
            return -1;
        sum += fabs(log2((double)a[i].value / (double)b[i].value));
    }
    return sum;
}

/* ---- the default path and opening ---- */

const char *qk_tunedb_default_path(char *buf, size_t n)
{
    const char *env = getenv("QKC_TUNE_DB"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int w;
    if (env && *env)
        w = snprintf(buf, n, "%s", env);
    else if (xdg && *xdg)
        w = snprintf(buf, n, "%s/qkc/tune.db", xdg);
    else if (home && *home)
        w = snprintf(buf, n, "%s/.cache/qkc/tune.db", home);
    else
        return NULL;
    return w < 0 || (size_t)w >= n ? NULL : buf; /* NULL too when it does not fit */
}

/* mkdir -p of the directories above path. 0 or -1 + err. */
static int make_parents(const char *path, char *err, size_t errsz)
{
    char *dir = qk_xstrdup(path);
    char *slash = strrchr(dir, '/');
    int ret = 0;
    if (slash)
        *slash = 0;
    for (char *p = dir + 1; slash && ret == 0; p++) {
        int last = *p == 0;
        if (*p != '/' && !last)
            continue;
        *p = 0;
        struct stat sb;
        if (mkdir(dir, 0777) != 0 && !(errno == EEXIST && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)))
            ret = fail(err, errsz, "cannot create directory %s for the tuning database: %s", dir, strerror(errno));
        if (last)
            break;
        *p = '/';
    }
    free(dir);
    return ret;
}

/* The first query: sqlite opens files lazily, so this is where garbage
 * bytes are found ("file is not a database"). *has_meta = 1 when the
 * meta table exists. */
static int probe_file(qk_tunedb *db, int *has_meta, char *err, size_t errsz)
{
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'";
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        fail(err, errsz, "tuning database %s: %s", db->path, sqlite3_errmsg(db->h));
        sqlite3_finalize(st);
        return -1;
    }
    *has_meta = sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    return 0;
}

/* WAL lets readers run beside a writer; a filesystem that refuses it
 * (no shared memory) keeps the rollback journal, which also works. */
static void use_wal(qk_tunedb *db)
{
    sqlite3_stmt *st = NULL;
    int wal = 0;
    if (sqlite3_prepare_v2(db->h, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        wal = mode && strcmp(mode, "wal") == 0;
    }
    sqlite3_finalize(st);
    if (!wal)
        sqlite3_exec(db->h, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
    /* In WAL mode NORMAL loses at most the last commits on power loss,
     * never the file; fine for a cache of measurements. */
    sqlite3_exec(db->h, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
}

/* Reads meta's version into db->schema; fails when it is one this code
 * does not know. */
static int check_version(qk_tunedb *db, char *err, size_t errsz)
{
    qk_buf sql = {0};
    sqlite3_stmt *st = NULL;
    qk_buf_puts(&sql, "SELECT value FROM meta WHERE key = 'schema_version'");
    if (prepare(db, &sql, &st, err, errsz) < 0)
        return -1;
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        char *end = NULL;
        long ver = v ? strtol(v, &end, 10) : 0;
        if (!v || end == v || *end || ver < 1)
            ret = fail(err, errsz, "tuning database %s: unrecognized schema version '%s'", db->path, v ? v : "");
        else if (ver > TUNEDB_SCHEMA)
            ret = fail(err, errsz,
                       "tuning database %s: schema version %ld is newer than this qkc understands (%d); "
                       "use a newer qkc or another database (QKC_TUNE_DB)",
                       db->path, ver, TUNEDB_SCHEMA);
        else
            db->schema = (int)ver;
    } else if (rc == SQLITE_DONE) {
        ret = fail(err, errsz, "tuning database %s: no schema version in the meta table", db->path);
    } else {
        ret = db_fail(db, "reading the schema version", err, errsz);
    }
    sqlite3_finalize(st);
    return ret;
}

/* Brings an older file to TUNEDB_SCHEMA in one transaction: the version
 * is read again inside it, so of two processes upgrading at once the
 * second finds nothing to do. Records keep the new columns' defaults. */
static int upgrade_schema(qk_tunedb *db, char *err, size_t errsz)
{
    if (tx_begin(db, err, errsz) < 0)
        return -1;
    int ret = check_version(db, err, errsz);
    for (int i = 0; ret == 0 && i < QK_COUNT(record_cols); i++) {
        const col *c = &record_cols[i];
        if (c->since <= db->schema)
            continue;
        char add[160];
        snprintf(add, sizeof add, "ALTER TABLE records ADD COLUMN %s %s", c->name, col_sql_type[c->kind]);
        ret = exec(db, add, "upgrading the schema", err, errsz);
    }
    if (ret == 0 && db->schema < TUNEDB_SCHEMA) {
        char ver[80];
        snprintf(ver, sizeof ver, "UPDATE meta SET value = '%d' WHERE key = 'schema_version'", TUNEDB_SCHEMA);
        ret = exec(db, ver, "upgrading the schema version", err, errsz);
    }
    ret = tx_end(db, ret, err, errsz);
    if (ret == 0)
        db->schema = TUNEDB_SCHEMA;
    return ret;
}

static int create_tables(qk_tunedb *db, char *err, size_t errsz)
{
    qk_buf sql = {0};
    sql_create(&sql, "records", "id INTEGER PRIMARY KEY", record_cols, QK_COUNT(record_cols));
    qk_buf_puts(&sql, "CREATE INDEX IF NOT EXISTS records_by_shape ON records (kernel_hash, fingerprint, shape);\n"
                      "CREATE INDEX IF NOT EXISTS records_by_bucket ON records (kernel_hash, fingerprint, bucket);\n");
    sql_create(&sql, "probe", "fingerprint TEXT PRIMARY KEY", probe_cols + 1, QK_COUNT(probe_cols) - 1);
    int ret = exec(db, sql.s, "creating the tables", err, errsz);
    qk_buf_free(&sql);
    return ret;
}

/* One transaction, so concurrent first opens see all of the schema or none;
 * the version is checked before any table of ours is added. */
static int create_schema(qk_tunedb *db, char *err, size_t errsz)
{
    char ver[64];
    snprintf(ver, sizeof ver, "INSERT OR IGNORE INTO meta VALUES ('schema_version', '%d')", TUNEDB_SCHEMA);
    if (tx_begin(db, err, errsz) < 0)
        return -1;
    int ret = exec(db, "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
                   "creating the meta table", err, errsz);
    if (ret == 0)
        ret = exec(db, ver, "writing the schema version", err, errsz);
    if (ret == 0)
        ret = check_version(db, err, errsz);
    if (ret == 0)
        ret = create_tables(db, err, errsz);
    return tx_end(db, ret, err, errsz);
}

/* Checks the path before sqlite sees it: directories, a missing file
 * opened read-only, parent directories to create. */
static int check_path(const char *path, int readonly, char *err, size_t errsz)
{
    struct stat sb;
    if (!path || !*path)
        return fail(err, errsz, "tuning database: empty path");
    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode))
            return fail(err, errsz, "tuning database %s: is a directory", path);
        return 0;
    }
    if (errno != ENOENT)
        return fail(err, errsz, "tuning database %s: %s", path, strerror(errno));
    if (readonly)
        return fail(err, errsz, "no tuning database at %s", path);
    return make_parents(path, err, errsz);
}

static int open_handle(qk_tunedb *db, char *err, size_t errsz)
{
    int flags = db->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(db->path, &db->h, flags, NULL);
    if (rc != SQLITE_OK)
        return fail(err, errsz, "tuning database %s: %s", db->path, db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
    sqlite3_busy_timeout(db->h, TUNEDB_BUSY_MS);
    int has_meta = 0;
    if (probe_file(db, &has_meta, err, errsz) < 0)
        return -1;
    if (!db->readonly)
        use_wal(db);
    if (!has_meta && db->readonly)
        return fail(err, errsz, "tuning database %s: not a qkc tuning database (no meta table)", db->path);
    if ((has_meta ? check_version(db, err, errsz) : create_schema(db, err, errsz)) < 0)
        return -1;
    if (db->schema < TUNEDB_SCHEMA && !db->readonly)
        return upgrade_schema(db, err, errsz);
    return 0;
}

int qk_tunedb_open(const char *path, int readonly, qk_tunedb **out, char *err, size_t errsz)
{
    if (!out)
        return fail(err, errsz, "tuning database: no output handle");
    *out = NULL;
    if (check_path(path, readonly, err, errsz) < 0)
        return -1;
    qk_tunedb *db = qk_xcalloc(1, sizeof *db);
    db->readonly = readonly != 0;
    db->path = qk_xstrdup(path);
    if (open_handle(db, err, errsz) < 0) {
        qk_tunedb_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

void qk_tunedb_close(qk_tunedb *db)
{
    if (!db)
        return;
    sqlite3_close(db->h); /* NULL is harmless; every statement is finalized by now */
    free(db->path);
    free(db);
}

/* ---- records ---- */

int qk_tunedb_put(qk_tunedb *db, const qk_tune_record *r, char *err, size_t errsz)
{
    if (!db || !r)
        return fail(err, errsz, "tuning database: no database or record");
    qk_tune_record row = *r;
    for (int i = 0; i < QK_COUNT(record_cols); i++)
        if (record_cols[i].kind == COL_TEXT)
            ((char *)&row + record_cols[i].off)[record_cols[i].size - 1] = 0;
    if (!row.kernel_hash[0])
        return fail(err, errsz, "tuning database: record without a kernel hash");
    if (row.timing[0] && strcmp(row.timing, "cold") != 0 && strcmp(row.timing, "hot") != 0)
        return fail(err, errsz, "tuning database: timing '%s' (expected \"cold\", \"hot\" or \"\")", row.timing);
    if (shape_normalize(r->shape, row.shape, sizeof row.shape) < 0 ||
        qk_tunedb_bucket(row.shape, row.bucket, sizeof row.bucket) < 0)
        return fail(err, errsz, "tuning database: malformed shape '%s' (expected e.g. \"K=4096,N=4096\")", row.shape);
    if (row.created == 0)
        row.created = (int64_t)time(NULL);

    qk_buf sql = {0};
    sqlite3_stmt *st = NULL;
    qk_buf_puts(&sql, "INSERT INTO records (");
    sql_names(&sql, record_cols, QK_COUNT(record_cols));
    qk_buf_puts(&sql, ") VALUES (");
    sql_params(&sql, QK_COUNT(record_cols));
    qk_buf_puts(&sql, ")");
    if (tx_begin(db, err, errsz) < 0) {
        qk_buf_free(&sql);
        return -1;
    }
    int ret = prepare(db, &sql, &st, err, errsz);
    if (ret == 0 && bind_row(st, 1, record_cols, QK_COUNT(record_cols), &row) < 0) {
        sqlite3_finalize(st);
        ret = db_fail(db, "binding a record", err, errsz);
    } else if (ret == 0) {
        ret = step_done(db, st, "inserting a record", err, errsz);
    }
    return tx_end(db, ret, err, errsz);
}

typedef struct best_query {
    const char *hash, *fingerprint;
    const char *shape; /* normalized */
    dim dims[SHAPE_MAX_DIMS];
    int ndims;
    int any_layout; /* 0: records that repack are passed over */
} best_query;

int qk_tunedb_config_repacks(const char *config)
{
    for (const char *p = config; p && (p = strstr(p, "repack=")) != NULL; p += 7)
        if (p == config || p[-1] == ' ')
            return strtol(p + 7, NULL, 10) != 0;
    return 0;
}

static int layout_ok(const best_query *q, const qk_tune_record *r)
{
    return q->any_layout || !qk_tunedb_config_repacks(r->config);
}

/* The fastest record of exactly q's shape, of the first timing present
 * (cold, hot, unrecorded). 1, 0 or -1. */
static int best_exact(qk_tunedb *db, const best_query *q, int threads, qk_tune_record *out, char *err,
                      size_t errsz)
{
    qk_buf sql = {0};
    sqlite3_stmt *st = NULL;
    sql_select_records(db, &sql);
    qk_buf_puts(&sql, "WHERE kernel_hash = ?1 AND fingerprint = ?2 AND shape = ?3 AND (?4 <= 0 OR threads = ?4) "
                      "ORDER BY " TIMING_RANK ", seconds ASC, id DESC");
    if (prepare(db, &sql, &st, err, errsz) < 0)
        return -1;
    sqlite3_bind_text(st, 1, q->hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, q->fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, q->shape, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, threads);
    int rc = SQLITE_DONE, ret = 0;
    while (!ret && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_record(st, out);
        ret = layout_ok(q, out);
    }
    if (!ret && rc != SQLITE_DONE)
        ret = db_fail(db, "looking up a record", err, errsz);
    sqlite3_finalize(st);
    return ret;
}

/* The record whose stored shape is nearest to q's (same dim names); among
 * equally near ones, the fastest of the first timing present. 1, 0 or -1. */
static int best_nearest(qk_tunedb *db, const best_query *q, int threads, qk_tune_record *out, char *err,
                        size_t errsz)
{
    qk_buf sql = {0};
    sqlite3_stmt *st = NULL;
    sql_select_records(db, &sql);
    qk_buf_puts(&sql, "WHERE kernel_hash = ?1 AND fingerprint = ?2 AND (?3 <= 0 OR threads = ?3)");
    if (prepare(db, &sql, &st, err, errsz) < 0)
        return -1;
    sqlite3_bind_text(st, 1, q->hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, q->fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, threads);
    double best = -1;
    int rc;
    qk_tune_record r;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        dim d[SHAPE_MAX_DIMS];
        read_record(st, &r);
        if (!layout_ok(q, &r))
            continue;
        int n = shape_parse(r.shape, d);
        double dist = n < 0 ? -1 : shape_distance(q->dims, q->ndims, d, n);
        if (dist < 0)
            continue; /* another kind of shape, or one written by hand */
        int tie = best >= 0 && dist < best + 1e-9 && dist > best - 1e-9;
        int rank = timing_rank(r.timing), out_rank = best < 0 ? 0 : timing_rank(out->timing);
        int nearer = best < 0 || dist < best - 1e-9 ||
                     (tie && (rank < out_rank || (rank == out_rank && r.seconds < out->seconds)));
        if (nearer) {
            best = dist;
            *out = r;
        }
    }
    int ret = rc == SQLITE_DONE ? best >= 0 : db_fail(db, "looking up records", err, errsz);
    sqlite3_finalize(st);
    return ret;
}

static int best_for_threads(qk_tunedb *db, const best_query *q, int threads, qk_tune_record *out, int *exact,
                            char *err, size_t errsz)
{
    int found = best_exact(db, q, threads, out, err, errsz);
    if (found != 0) {
        *exact = found == 1;
        return found;
    }
    *exact = 0;
    return best_nearest(db, q, threads, out, err, errsz);
}

int qk_tunedb_best(qk_tunedb *db, const char *kernel_hash, const char *fingerprint, const char *shape, int threads,
                   int any_layout, qk_tune_record *out, int *exact, char *err, size_t errsz)
{
    char norm[sizeof out->shape];
    int ex = 0;
    best_query q = {.hash = kernel_hash, .fingerprint = fingerprint, .shape = norm, .any_layout = any_layout};
    if (!db || !kernel_hash || !fingerprint || !out)
        return fail(err, errsz, "tuning database: lookup without a database, kernel hash or fingerprint");
    q.ndims = shape_parse(shape, q.dims);
    if (q.ndims < 0 || shape_print(q.dims, q.ndims, norm, sizeof norm) < 0)
        return fail(err, errsz, "tuning database: malformed shape '%s'", shape ? shape : "(null)");
    int found = best_for_threads(db, &q, threads, out, &ex, err, errsz);
    if (found == 0 && threads > 0)
        found = best_for_threads(db, &q, 0, out, &ex, err, errsz);
    if (exact)
        *exact = found == 1 && ex;
    return found;
}

/* ---- list and prune ---- */

static int filter_text_set(const char *s)
{
    return s && *s;
}

/* The filter's WHERE clause over parameters ?1..?4. */
static void sql_filter(qk_buf *b)
{
    qk_buf_puts(b, "WHERE (?1 IS NULL OR kernel_name = ?1) AND (?2 IS NULL OR kernel_hash = ?2) "
                   "AND (?3 IS NULL OR fingerprint = ?3) AND (?4 = 0 OR created < ?4) ");
}

/* NULL and "" match everything: both bind NULL. */
static void bind_filter(sqlite3_stmt *st, const qk_tune_filter *f)
{
    const char *text[3] = {f ? f->kernel_name : NULL, f ? f->kernel_hash : NULL, f ? f->fingerprint : NULL};
    for (int i = 0; i < 3; i++) {
        if (filter_text_set(text[i]))
            sqlite3_bind_text(st, i + 1, text[i], -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, i + 1);
    }
    sqlite3_bind_int64(st, 4, f ? f->older_than : 0);
}

int qk_tunedb_list(qk_tunedb *db, const qk_tune_filter *flt, qk_tune_record **out, char *err, size_t errsz)
{
    if (!db || !out)
        return fail(err, errsz, "tuning database: list without a database or output");
    *out = NULL;
    qk_buf sql = {0};
    sqlite3_stmt *st = NULL;
    sql_select_records(db, &sql);
    sql_filter(&sql);
    qk_buf_puts(&sql, "ORDER BY created DESC, id DESC LIMIT ?5");
    if (prepare(db, &sql, &st, err, errsz) < 0)
        return -1;
    bind_filter(st, flt);
    sqlite3_bind_int(st, 5, flt && flt->limit > 0 ? flt->limit : -1);
    qk_tune_record *recs = NULL;
    int n = 0, cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            recs = qk_xrealloc(recs, (size_t)cap * sizeof *recs);
        }
        read_record(st, &recs[n++]);
    }
    if (rc != SQLITE_DONE) {
        free(recs);
        n = db_fail(db, "listing records", err, errsz);
    } else {
        *out = recs; /* NULL when there are none */
    }
    sqlite3_finalize(st);
    return n;
}

/* keep_best spares, per (hash, shape, fingerprint, threads, timing), the
 * fastest record of the whole group (not only of the matching ones). The
 * filter's limit does not apply to pruning. */
int qk_tunedb_prune(qk_tunedb *db, const qk_tune_filter *flt, int keep_best, char *err, size_t errsz)
{
    if (!db)
        return fail(err, errsz, "tuning database: prune without a database");
    qk_buf sql = {0};
    sqlite3_stmt *st = NULL;
    qk_buf_puts(&sql, "DELETE FROM records ");
    sql_filter(&sql);
    qk_buf_puts(&sql, "AND (?5 = 0 OR id <> (SELECT b.id FROM records b WHERE b.kernel_hash = records.kernel_hash "
                      "AND b.fingerprint = records.fingerprint AND b.shape = records.shape "
                      "AND b.threads = records.threads AND b.timing = records.timing "
                      "ORDER BY b.seconds ASC, b.id ASC LIMIT 1))");
    if (tx_begin(db, err, errsz) < 0) {
        qk_buf_free(&sql);
        return -1;
    }
    int ret = prepare(db, &sql, &st, err, errsz);
    if (ret == 0) {
        bind_filter(st, flt);
        sqlite3_bind_int(st, 5, keep_best != 0);
        ret = step_done(db, st, "pruning records", err, errsz);
    }
    if (ret == 0)
        ret = sqlite3_changes(db->h);
    return tx_end(db, ret, err, errsz);
}

/* ---- CSV and JSON ---- */

/* Appends s[0..n) to b. */
static void buf_putn(qk_buf *b, const char *s, size_t n)
{
    if (n)
        qk_buf_printf(b, "%.*s", (int)n, s);
}

/* RFC 4180: a field with a comma, quote or line break is quoted, and
 * quotes inside are doubled. */
static void csv_text(qk_buf *b, const char *s, size_t n)
{
    size_t plain = 0;
    while (plain < n && !strchr(",\"\r\n", s[plain]))
        plain++;
    if (plain == n) {
        buf_putn(b, s, n);
        return;
    }
    qk_buf_puts(b, "\"");
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            buf_putn(b, s + start, i + 1 - start); /* the quote, then its double */
            start = i;
        }
    }
    buf_putn(b, s + start, n - start);
    qk_buf_puts(b, "\"");
}

static void json_text(qk_buf *b, const char *s, size_t n)
{
    size_t start = 0;
    qk_buf_puts(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_putn(b, s + start, i - start);
        start = i + 1;
        if (c == '"' || c == '\\')
            qk_buf_printf(b, "\\%c", c);
        else if (c == '\n')
            qk_buf_puts(b, "\\n");
        else if (c == '\t')
            qk_buf_puts(b, "\\t");
        else if (c == '\r')
            qk_buf_puts(b, "\\r");
        else
            qk_buf_printf(b, "\\u%04x", c);
    }
    buf_putn(b, s + start, n - start);
    qk_buf_puts(b, "\"");
}

/* One column's value; json = 1 quotes and escapes text as JSON and writes
 * a non-finite number as null. */
static void put_value(qk_buf *b, const col *c, const qk_tune_record *r, int json)
{
    const char *p = (const char *)r + c->off;
    switch (c->kind) {
    case COL_TEXT:
        (json ? json_text : csv_text)(b, p, col_textlen(c, r));
        break;
    case COL_INT:
        qk_buf_printf(b, "%d", *(const int *)(const void *)p);
        break;
    case COL_I64:
        qk_buf_printf(b, "%lld", (long long)*(const int64_t *)(const void *)p);
        break;
    case COL_REAL: {
        double v = *(const double *)(const void *)p;
        if (json && !isfinite(v))
            qk_buf_puts(b, "null");
        else
            qk_buf_printf(b, "%.9g", v);
        break;
    }
    }
}

char *qk_tunedb_csv(const qk_tune_record *r, int n)
{
    qk_buf b = {0};
    qk_buf_puts(&b, "id,");
    for (int i = 0; i < QK_COUNT(record_cols); i++)
        qk_buf_printf(&b, "%s%s", i ? "," : "", record_cols[i].name);
    qk_buf_puts(&b, "\n");
    for (int k = 0; r && k < n; k++) {
        qk_buf_printf(&b, "%lld", (long long)r[k].id);
        for (int i = 0; i < QK_COUNT(record_cols); i++) {
            qk_buf_puts(&b, ",");
            put_value(&b, &record_cols[i], &r[k], 0);
        }
        qk_buf_puts(&b, "\n");
    }
    return qk_buf_take(&b);
}

/* A JSON array of objects, one per line, keys the column names; no
 * trailing newline (like qk_probe_json). */
char *qk_tunedb_json(const qk_tune_record *r, int n)
{
    qk_buf b = {0};
    qk_buf_puts(&b, "[");
    for (int k = 0; r && k < n; k++) {
        qk_buf_printf(&b, "%s\n  {\"id\": %lld", k ? "," : "", (long long)r[k].id);
        for (int i = 0; i < QK_COUNT(record_cols); i++) {
            qk_buf_printf(&b, ", \"%s\": ", record_cols[i].name);
            put_value(&b, &record_cols[i], &r[k], 1);
        }
        qk_buf_puts(&b, "}");
    }
    qk_buf_puts(&b, r && n > 0 ? "\n]" : "]");
    return qk_buf_take(&b);
}

/* ---- probe results ---- */

int qk_tunedb_probe_put(qk_tunedb *db, const qk_probe_result *p, char *err, size_t errsz)
{
    if (!db || !p)
        return fail(err, errsz, "tuning database: no database or probe result");
    qk_probe_result row = *p;
    for (int i = 0; i < QK_COUNT(probe_cols); i++)
        if (probe_cols[i].kind == COL_TEXT)
            ((char *)&row + probe_cols[i].off)[probe_cols[i].size - 1] = 0;
    if (row.created == 0)
        row.created = (int64_t)time(NULL);
    qk_buf sql = {0};
    sqlite3_stmt *st = NULL;
    qk_buf_puts(&sql, "INSERT OR REPLACE INTO probe (");
    sql_names(&sql, probe_cols, QK_COUNT(probe_cols));
    qk_buf_puts(&sql, ") VALUES (");
    sql_params(&sql, QK_COUNT(probe_cols));
    qk_buf_puts(&sql, ")");
    if (tx_begin(db, err, errsz) < 0) {
        qk_buf_free(&sql);
        return -1;
    }
    int ret = prepare(db, &sql, &st, err, errsz);
    if (ret == 0 && bind_row(st, 1, probe_cols, QK_COUNT(probe_cols), &row) < 0) {
        sqlite3_finalize(st);
        ret = db_fail(db, "binding a probe result", err, errsz);
    } else if (ret == 0) {
        ret = step_done(db, st, "storing a probe result", err, errsz);
    }
    return tx_end(db, ret, err, errsz);
}

int qk_tunedb_probe_get(qk_tunedb *db, const char *fingerprint, qk_probe_result *out, char *err, size_t errsz)
{
    if (!db || !fingerprint || !out)
        return fail(err, errsz, "tuning database: probe lookup without a database or fingerprint");
    qk_buf sql = {0};
    sqlite3_stmt *st = NULL;
    qk_buf_puts(&sql, "SELECT ");
    sql_names(&sql, probe_cols, QK_COUNT(probe_cols));
    qk_buf_puts(&sql, " FROM probe WHERE fingerprint = ?1");
    if (prepare(db, &sql, &st, err, errsz) < 0)
        return -1;
    sqlite3_bind_text(st, 1, fingerprint, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        read_row(st, 0, probe_cols, QK_COUNT(probe_cols), out);
        ret = 1;
    } else if (rc != SQLITE_DONE) {
        ret = db_fail(db, "reading a probe result", err, errsz);
    }
    sqlite3_finalize(st);
    return ret;
}
