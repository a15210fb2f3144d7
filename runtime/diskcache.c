/* diskcache.c — the on-disk kernel cache: the object code of compiled
 * kernels, kept between contexts and processes so that getting a kernel
 * seen before costs a file read and a link instead of code generation.
 * kernel.c builds the tiled IR (cheap) and calls rt_compile_cached in
 * place of the backend's compile; backends offer objects through the
 * compile_obj/load_obj hooks of backend.h.
 *
 * One file per kernel, DIR/<16 hex digits of the cache key's hash>.o:
 *
 *   magic "QKCOBJ01", u64 ident length, u64 object length,
 *   u64 checksum of the object, the ident, the object bytes
 *
 * The ident is the kernel's full cache key (kernel.c), the backend's
 * object tag (target triple, CPU, features, LLVM version) and the build
 * id of the binary holding libqkc, so a hash collision, an object for
 * another CPU and an object from another build of qkc (whose code
 * generator may differ under the same version number) are all misses.
 * A miss -- also a short, corrupt, foreign-owned or unreadable file --
 * compiles the kernel and replaces the file. Files are written under a
 * temporary name in DIR and renamed into place, so concurrent processes
 * read the old file or the new one, never a partial one. Writing is best
 * effort: a cache that cannot be written costs speed, never a kernel.
 *
 * No state of its own: the directory comes from the context. */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__ELF__)
#include <link.h>
#endif

#define MAGIC "QKCOBJ01"
#define HEADER_BYTES (8 + 3 * 8)
#define MAX_FILE_BYTES ((uint64_t)1 << 30) /* larger files are not ours */

/* ---- the directory ---- */

static char *join(const char *a, const char *b)
{
    qk_buf buf = {0};
    qk_buf_printf(&buf, "%s%s%s", a, a[0] && a[strlen(a) - 1] == '/' ? "" : "/", b);
    return qk_buf_take(&buf);
}

/* NULL -> $QKC_CACHE_DIR, else $XDG_CACHE_HOME/qkc/kernels, else
 * $HOME/.cache/qkc/kernels (include/qkc.h); "" (option or variable)
 * disables the cache. Returns a malloc'd path or NULL. Creates nothing:
 * the directory is made on the first write. */
char *rt_cache_dir_resolve(const char *opt)
{
    if (opt)
        return opt[0] ? qk_xstrdup(opt) : NULL;
    const char *env = getenv("QKC_CACHE_DIR");
    if (env)
        return env[0] ? qk_xstrdup(env) : NULL;
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && xdg[0] == '/') /* the XDG spec ignores relative paths */
        return join(xdg, "qkc/kernels");
    const char *home = getenv("HOME");
    if (home && home[0])
        return join(home, ".cache/qkc/kernels");
    return NULL;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p, mode 0700 for what it creates. 0 or -1. */
static int make_dirs(const char *dir)
{
    if (is_dir(dir))
        return 0;
    char *p = qk_xstrdup(dir);
    int rc = 0;
    for (char *s = p + 1; rc == 0; s++) {
        if (*s != '/' && *s != 0)
            continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0700) != 0 && errno != EEXIST && !is_dir(p))
            rc = -1;
        *s = c;
        if (c == 0)
            break;
    }
    rc = rc == 0 && is_dir(p) ? 0 : -1;
    free(p);
    return rc;
}

/* ---- what an object depends on ---- */

#if defined(__ELF__)
typedef struct build_id_search {
    uintptr_t addr; /* an address inside libqkc */
    qk_buf *out;
    int found;
} build_id_search;

/* Appends the hex NT_GNU_BUILD_ID of the PT_NOTE segment at note. */
static int scan_notes(const unsigned char *note, size_t size, qk_buf *out)
{
    size_t off = 0;
    while (off + sizeof(ElfW(Nhdr)) <= size) {
        const ElfW(Nhdr) *h = (const void *)(note + off);
        size_t name_at = off + sizeof *h, desc_at = name_at + ((h->n_namesz + 3u) & ~3u);
        size_t next = desc_at + ((h->n_descsz + 3u) & ~3u);
        if (next > size)
            return 0;
        if (h->n_type == NT_GNU_BUILD_ID && h->n_namesz == 4 && memcmp(note + name_at, "GNU", 4) == 0) {
            for (size_t i = 0; i < h->n_descsz; i++)
                qk_buf_printf(out, "%02x", note[desc_at + i]);
            return h->n_descsz > 0;
        }
        off = next;
    }
    return 0;
}

static int find_build_id(struct dl_phdr_info *info, size_t size, void *arg)
{
    build_id_search *s = arg;
    int mine = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        mine |= ph->p_type == PT_LOAD && s->addr >= lo && s->addr < lo + ph->p_memsz;
    }
    for (int i = 0; mine && !s->found && i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_NOTE)
            s->found = scan_notes((const unsigned char *)(info->dlpi_addr + ph->p_vaddr), ph->p_memsz, s->out);
    }
    return mine;
}
#endif

/* Appends the build id of the binary (executable or libqkc.so) holding
 * this code: it changes whenever qkc's code generator may have. 0, or -1
 * when there is none (then objects are not cached). */
static int build_id(qk_buf *out)
{
#if defined(__ELF__)
    build_id_search s = {(uintptr_t)build_id, out, 0};
    dl_iterate_phdr(find_build_id, &s);
    return s.found ? 0 : -1;
#else
    (void)out;
    return -1;
#endif
}

/* The ident of e's object: key, object tag, build id. NULL: no build id. */
static char *make_ident(const qk_backend *be, void *state, const rt_entry *e)
{
    qk_buf b = {0};
    qk_buf_printf(&b, "%s\n--object %s\n--build ", e->key, be->obj_tag(state));
    if (build_id(&b) != 0) {
        qk_buf_free(&b);
        return NULL;
    }
    return qk_buf_take(&b);
}

/* ---- reading ---- */

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static int read_all(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* The whole file, when it is a regular file of ours of a sane size and no
 * one else can write it (the code in it will run). NULL otherwise. */
static unsigned char *read_ours(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    unsigned char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 022) &&
        st.st_size >= HEADER_BYTES && (uint64_t)st.st_size <= MAX_FILE_BYTES) {
        *n = (size_t)st.st_size;
        buf = qk_xmalloc(*n);
        if (read_all(fd, buf, *n) != 0) {
            free(buf);
            buf = NULL;
        }
    }
    close(fd);
    return buf;
}

/* 1 with the object's offset and size in buf when buf is a valid file
 * for ident, else 0. */
static int check_file(const unsigned char *buf, size_t n, const char *ident, size_t *obj_at, size_t *obj_n)
{
    if (memcmp(buf, MAGIC, 8) != 0)
        return 0;
    uint64_t ident_n = get_u64(buf + 8), on = get_u64(buf + 16), sum = get_u64(buf + 24);
    if (ident_n != strlen(ident) || on > n || ident_n > n - on || HEADER_BYTES + ident_n + on != n)
        return 0;
    if (memcmp(buf + HEADER_BYTES, ident, ident_n) != 0)
        return 0;
    *obj_at = HEADER_BYTES + (size_t)ident_n;
    *obj_n = (size_t)on;
    return qk_hash64(buf + *obj_at, *obj_n, 0) == sum;
}

/* Loads the cached object of e from path. 1 on a hit, 0 on a miss. */
static int try_load(const qk_backend *be, void *state, const char *path, const char *ident, rt_entry *e)
{
    size_t n = 0, at = 0, on = 0;
    unsigned char *buf = read_ours(path, &n);
    int hit = buf && check_file(buf, n, ident, &at, &on);
    char err[256];
    if (hit && be->load_obj(state, e->f, buf + at, on, &e->code, err, sizeof err) != 0)
        hit = 0; /* e.g. an object the linker rejects: compile afresh */
    free(buf);
    return hit;
}

/* ---- writing ---- */

static int write_all(int fd, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes the file for ident and obj to path, atomically. Best effort. */
static void store(const char *dir, const char *path, const char *ident, const void *obj, size_t n)
{
    if (make_dirs(dir) != 0)
        return;
    qk_buf tmp = {0};
    qk_buf_printf(&tmp, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp.s);
    if (fd < 0) {
        qk_buf_free(&tmp);
        return;
    }
    unsigned char head[HEADER_BYTES];
    uint64_t v[3] = {strlen(ident), n, qk_hash64(obj, n, 0)};
    memcpy(head, MAGIC, 8);
    memcpy(head + 8, v, sizeof v);
    int ok = write_all(fd, head, sizeof head) == 0 && write_all(fd, ident, strlen(ident)) == 0 &&
             write_all(fd, obj, n) == 0;
    ok &= close(fd) == 0;
    if (!ok || rename(tmp.s, path) != 0)
        unlink(tmp.s);
    qk_buf_free(&tmp);
}

/* ---- the entry point ---- */

/* Compiles e->f into e->code through the disk cache in dir (NULL: no
 * cache): load the object of an earlier compile, or compile one, store
 * it and load it. Without the object hooks, a cache or an ident it falls
 * back to be->compile. *hit = 1 when the code came from disk. 0, or -1
 * with the backend's message in err. */
int rt_compile_cached(const qk_backend *be, void *state, const char *dir, rt_entry *e, int *hit, char *err,
                      size_t errsz)
{
    *hit = 0;
    char *ident = dir && be->obj_tag && be->compile_obj && be->load_obj ? make_ident(be, state, e) : NULL;
    if (!ident)
        return be->compile(state, e->f, &e->code, err, errsz);
    char name[32];
    snprintf(name, sizeof name, "%016llx.o", (unsigned long long)e->hash);
    char *path = join(dir, name);
    int rc = 0;
    *hit = try_load(be, state, path, ident, e);
    if (!*hit) {
        void *obj = NULL;
        size_t n = 0;
        rc = be->compile_obj(state, e->f, &obj, &n, err, errsz);
        if (rc == 0)
            rc = be->load_obj(state, e->f, obj, n, &e->code, err, errsz);
        if (rc == 0)
            store(dir, path, ident, obj, n);
        free(obj);
        if (rc != 0) /* the object route failed: the backend's own may not */
            rc = be->compile(state, e->f, &e->code, err, errsz);
    }
    free(path);
    free(ident);
    return rc;
}
