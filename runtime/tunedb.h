/* tunedb.h — the tuning database: measured configurations of kernels on
 * machines, and the machines' probed limits, in one SQLite file.
 *
 * A record is (kernel hash, kernel name, shape, shape bucket, target
 * fingerprint, threads, configuration text, measured seconds, derived
 * GB/s and GOP/s, qkc version, time of measurement, origin). The kernel
 * hash names the kernel's canonical text (its KIR and formats) without the
 * configuration, so every configuration of one kernel shares it.
 *
 * Shapes are "K=4096,N=4096" (dimension names sorted); the bucket rounds
 * each value to the nearest power of two ("K=4096,N=4096" for K=4000).
 * Lookup: the best (fastest) record with the exact shape, else the one in
 * the nearest bucket (smallest sum of |log2| distances over the dims),
 * for the same kernel hash, fingerprint and thread count (else any thread
 * count). Times taken cold (inputs rotated through copies beyond the
 * last-level cache) and hot (the same inputs again) are not compared: the
 * fastest cold record wins over any hot one, and a hot one over records
 * whose timing was not recorded (written before schema 2).
 *
 * Schema 2 added the timing column. A schema-1 file is upgraded in place
 * when opened for writing (its records keep timing ""); opened read-only
 * it is read as it is.
 *
 * Concurrency: several processes may write at once (WAL journal, a busy
 * timeout of several seconds, every write one transaction). A missing,
 * unreadable or corrupt file is never fatal: open fails with a message and
 * callers fall back to the cost model with a warning.
 *
 * Default path: $QKC_TUNE_DB, else $XDG_CACHE_HOME/qkc/tune.db, else
 * $HOME/.cache/qkc/tune.db (directories are created).
 *
 * Prefix: qk_tunedb_. */
#ifndef QK_TUNEDB_H
#define QK_TUNEDB_H

#include "runtime/probe.h"

#include <stddef.h>
#include <stdint.h>

typedef struct qk_tunedb qk_tunedb;

typedef struct qk_tune_record {
    int64_t id;             /* rowid (output only) */
    char kernel_hash[17];   /* 16 hex digits */
    char kernel_name[64];
    char shape[256];        /* "K=4096,N=4096" */
    char bucket[256];       /* filled by put() from shape */
    char fingerprint[512];
    int threads;
    char config[256];       /* tir_config_print text */
    double seconds;         /* median measured time */
    double gbps, gops;      /* derived; 0 when not meaningful */
    char version[16];
    int64_t created;        /* unix time; put() fills 0 with now */
    char origin[16];        /* "tune", "sweep", "bench" */
    char timing[8];         /* "cold", "hot", or "" when not recorded (schema 1) */
} qk_tune_record;

/* Default path into buf (see above). Returns buf, or NULL when no HOME. */
const char *qk_tunedb_default_path(char *buf, size_t n);
/* Opens (creating it and its schema when absent) the database at path.
 * readonly: never creates or writes. 0, or -1 with a message in err. */
int qk_tunedb_open(const char *path, int readonly, qk_tunedb **out, char *err, size_t errsz);
void qk_tunedb_close(qk_tunedb *db); /* NULL is harmless */

/* Inserts one record (bucket and created filled in). 0 or -1 + err. */
int qk_tunedb_put(qk_tunedb *db, const qk_tune_record *r, char *err, size_t errsz);
/* Best record for the kernel on this machine and shape: *exact = 1 when
 * the shape matched, 0 for the nearest bucket. Returns 1 found, 0 none,
 * -1 error (+ err). threads <= 0 matches any. any_layout 0 passes over
 * records whose configuration reads weights row-interleaved ("repack=R",
 * R not 0): their kernels take other bytes than the format's own. */
int qk_tunedb_best(qk_tunedb *db, const char *kernel_hash, const char *fingerprint, const char *shape, int threads,
                   int any_layout, qk_tune_record *out, int *exact, char *err, size_t errsz);
/* 1 when a configuration text sets repack to a value other than 0. */
int qk_tunedb_config_repacks(const char *config);

/* Records matching a filter (NULL/0 fields match all), newest first;
 * *out is malloc'd (free it). Returns the count, or -1 + err. */
typedef struct qk_tune_filter {
    const char *kernel_name;
    const char *kernel_hash;
    const char *fingerprint;
    int64_t older_than;     /* created < this; 0 = any */
    int limit;              /* 0 = no limit */
} qk_tune_filter;
int qk_tunedb_list(qk_tunedb *db, const qk_tune_filter *flt, qk_tune_record **out, char *err, size_t errsz);
/* Deletes records matching the filter; keep_best = 1 keeps, per (hash,
 * shape, fingerprint, threads, timing), the fastest record. Returns the number
 * deleted, or -1 + err. */
int qk_tunedb_prune(qk_tunedb *db, const qk_tune_filter *flt, int keep_best, char *err, size_t errsz);
/* CSV (with a header line) or a JSON array of records. Caller frees. */
char *qk_tunedb_csv(const qk_tune_record *r, int n);
char *qk_tunedb_json(const qk_tune_record *r, int n);

/* Probe results, one per fingerprint (the latest replaces the earlier). */
int qk_tunedb_probe_put(qk_tunedb *db, const qk_probe_result *p, char *err, size_t errsz);
/* 1 found, 0 none, -1 error. */
int qk_tunedb_probe_get(qk_tunedb *db, const char *fingerprint, qk_probe_result *out, char *err, size_t errsz);

/* "K=4096,N=4096" -> bucket text. 0 or -1 on a malformed shape. */
int qk_tunedb_bucket(const char *shape, char *buf, size_t n);

#endif
