/* frontend.c — the frontend pipeline on one screen: register and lex each
 * source, parse it, load its imports (each file once, cycles fine), check
 * the whole program, lower it to Kernel IR.
 *
 *   qk_frontend_compile: load_file(root) → resolve_imports(every file)
 *                        → sema_program → kir_build_program */
#include "frontend/frontend.h"

#include "frontend/ast.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct fe {
    qk_arena *a;
    qk_diags *d;
    const char *dsl_path;
    ast_program prog;
} fe;

static int is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The real path when the file exists, else the name itself. */
static const char *canonical(fe *F, const char *path)
{
    char *r = realpath(path, NULL);
    const char *c = qk_strdup(F->a, r ? r : path);
    free(r);
    return c;
}

static const char *dir_of(fe *F, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return ".";
    return slash == path ? "/" : qk_strndup(F->a, path, (size_t)(slash - path));
}

static ast_file *load_file(fe *F, const char *name, const char *text, size_t len, const char *path, const char *dir)
{
    const qk_source *src = qk_diags_add_source(F->d, name, text, len);
    ast_file *f = qk_alloc(F->a, sizeof *f);
    f->name = src->name;
    f->text = src->text;
    f->len = src->len;
    f->path = path;
    f->dir = dir;
    *(ast_file **)ast_push(F->a, &F->prog.files, &F->prog.nfiles, sizeof f) = f;
    lex_token *toks;
    int n = lex_tokenize(f->text, f->len, f->name, F->a, F->d, &toks);
    parse_file(f, toks, n, F->a, F->d);
    return f;
}

/* dir + "/" + name when that is a regular file, else NULL. */
static const char *try_dir(fe *F, const char *dir, size_t dirlen, const char *name)
{
    if (dirlen == 0)
        return NULL;
    const char *p = qk_asprintf(F->a, "%.*s/%s", (int)dirlen, dir, name);
    return is_regular(p) ? p : NULL;
}

/* Tries each entry of a ':'-separated list of directories. */
static const char *try_dirs(fe *F, const char *list, const char *name)
{
    while (list && *list) {
        size_t n = strcspn(list, ":");
        const char *p = try_dir(F, list, n, name);
        if (p)
            return p;
        list += n + (list[n] == ':');
    }
    return NULL;
}

/* Import search order: the importing file's directory, dsl_path, the
 * standard formats (qk_dsl_dir), $QKC_DSL_PATH. */
static const char *find_import(fe *F, const ast_file *from, const char *name)
{
    if (name[0] == '/')
        return is_regular(name) ? name : NULL;
    const char *p = from->dir ? try_dir(F, from->dir, strlen(from->dir), name) : NULL;
    if (!p)
        p = try_dirs(F, F->dsl_path, name);
    char dsl[4096];
    if (!p)
        p = try_dirs(F, qk_dsl_dir(dsl, sizeof dsl), name);
    if (!p)
        p = try_dirs(F, getenv("QKC_DSL_PATH"), name);
    return p;
}

static int already_loaded(fe *F, const char *path)
{
    for (int i = 0; i < F->prog.nfiles; i++)
        if (strcmp(F->prog.files[i]->path, path) == 0)
            return 1;
    return 0;
}

static void load_import(fe *F, const ast_file *from, const ast_import *im)
{
    const char *p = find_import(F, from, im->path);
    if (!p) {
        qk_error(F->d, im->loc, "cannot find import '%s'", im->path);
        return;
    }
    const char *path = canonical(F, p);
    if (already_loaded(F, path))
        return;
    size_t len;
    char *text = qk_read_file(p, &len);
    if (!text) {
        qk_error(F->d, im->loc, "cannot read import '%s': %s", p, strerror(errno));
        return;
    }
    load_file(F, p, text, len, path, dir_of(F, p));
    free(text);
}

kir_program *qk_frontend_compile(const char *source, size_t len, const char *filename, const char *dsl_path,
                                 qk_diags *d)
{
    int before = d->nerrors;
    fe F = {.a = qk_arena_new(), .d = d, .dsl_path = dsl_path};
    int real = filename && is_regular(filename);
    const char *name = filename ? filename : "<input>";
    load_file(&F, name, source ? source : "", source ? len : 0, real ? canonical(&F, filename) : name,
              real ? dir_of(&F, filename) : NULL);
    for (int i = 0; i < F.prog.nfiles; i++)
        for (int j = 0; j < F.prog.files[i]->nimports; j++)
            load_import(&F, F.prog.files[i], &F.prog.files[i]->imports[j]);
    kir_program *p = NULL;
    if (d->nerrors == before)
        sema_program(&F.prog, F.a, d);
    if (d->nerrors == before)
        p = kir_build_program(&F.prog, d);
    qk_arena_free(F.a);
    return p;
}
