/* sqlite_absent.h — the part of SQLite's API that tunedb.c uses, for a
 * build without SQLite (QKC_HAVE_SQLITE=0, e.g. a GPU machine with no
 * libsqlite3-dev). Opening fails with a message that says so; a handle is
 * never made, so the other calls are never reached. Keeps tunedb.c free
 * of conditionals. */
#ifndef QK_SQLITE_ABSENT_H
#define QK_SQLITE_ABSENT_H

#include <stdint.h>

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
typedef int64_t sqlite3_int64;

enum {
    SQLITE_OK = 0,
    SQLITE_ERROR = 1,
    SQLITE_MISUSE = 21,
    SQLITE_ROW = 100,
    SQLITE_DONE = 101,
    SQLITE_OPEN_READONLY = 0x1,
    SQLITE_OPEN_READWRITE = 0x2,
    SQLITE_OPEN_CREATE = 0x4,
};
#define SQLITE_STATIC ((void (*)(void *))0)
#define SQLITE_TRANSIENT ((void (*)(void *))-1)

#define QK_NO_SQLITE "qkc was built without SQLite: the tuning database is unavailable"

static inline int sqlite3_open_v2(const char *path, sqlite3 **db, int flags, const char *vfs)
{
    *db = NULL;
    return SQLITE_ERROR;
}
static inline const char *sqlite3_errstr(int rc) { return QK_NO_SQLITE; }
static inline const char *sqlite3_errmsg(sqlite3 *db) { return QK_NO_SQLITE; }
static inline int sqlite3_close(sqlite3 *db) { return SQLITE_OK; }
static inline int sqlite3_busy_timeout(sqlite3 *db, int ms) { return SQLITE_MISUSE; }
static inline int sqlite3_exec(sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **), void *arg,
                               char **errmsg)
{
    return SQLITE_MISUSE;
}
static inline int sqlite3_prepare_v2(sqlite3 *db, const char *sql, int n, sqlite3_stmt **st, const char **tail)
{
    *st = NULL;
    return SQLITE_MISUSE;
}
static inline int sqlite3_step(sqlite3_stmt *st) { return SQLITE_MISUSE; }
static inline int sqlite3_finalize(sqlite3_stmt *st) { return SQLITE_OK; }
static inline int sqlite3_changes(sqlite3 *db) { return 0; }
static inline int sqlite3_bind_text(sqlite3_stmt *st, int i, const char *s, int n, void (*del)(void *))
{
    return SQLITE_MISUSE;
}
static inline int sqlite3_bind_int(sqlite3_stmt *st, int i, int v) { return SQLITE_MISUSE; }
static inline int sqlite3_bind_int64(sqlite3_stmt *st, int i, sqlite3_int64 v) { return SQLITE_MISUSE; }
static inline int sqlite3_bind_double(sqlite3_stmt *st, int i, double v) { return SQLITE_MISUSE; }
static inline int sqlite3_bind_null(sqlite3_stmt *st, int i) { return SQLITE_MISUSE; }
static inline const unsigned char *sqlite3_column_text(sqlite3_stmt *st, int i) { return NULL; }
static inline int sqlite3_column_int(sqlite3_stmt *st, int i) { return 0; }
static inline sqlite3_int64 sqlite3_column_int64(sqlite3_stmt *st, int i) { return 0; }
static inline double sqlite3_column_double(sqlite3_stmt *st, int i) { return 0; }

#endif
