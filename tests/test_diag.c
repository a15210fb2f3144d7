/* test_diag.c — the golden diagnostics suite. Every .qk file in tests/diag is a
 * malformed program whose first lines say what is wrong with it:
 *     # expect: LINE:COL: error: MESSAGE
 * The test compiles each file and checks that every expected diagnostic
 * is reported at that position with a message that starts with MESSAGE,
 * that no other error is reported, that compilation returned NULL, and
 * that the rendered text has the "file:line:col: error:" line followed by
 * the source line and a caret. */
#include "frontend/frontend.h"

#include <CUnit/Basic.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#ifndef QKC_SOURCE_DIR
#define QKC_SOURCE_DIR "."
#endif
#define DIAG_DIR QKC_SOURCE_DIR "/tests/diag"

typedef struct expect {
    int line, col;
    char msg[512];
} expect;

/* Reads the "# expect:" lines of src; returns how many. */
static int read_expects(const char *src, expect *ex, int max)
{
    int n = 0;
    for (const char *p = src; (p = strstr(p, "# expect: ")) && n < max; p++) {
        expect *e = &ex[n];
        int used = 0;
        if (sscanf(p, "# expect: %d:%d: error: %n", &e->line, &e->col, &used) < 2 || !used)
            continue;
        const char *m = p + used, *end = strchr(m, '\n');
        size_t len = end ? (size_t)(end - m) : strlen(m);
        if (len >= sizeof e->msg)
            len = sizeof e->msg - 1;
        memcpy(e->msg, m, len);
        e->msg[len] = 0;
        n++;
    }
    return n;
}

static int matches(const qk_diag *g, const expect *e)
{
    return g->sev == QK_SEV_ERROR && g->loc.line == e->line && g->loc.col == e->col &&
           strncmp(g->msg, e->msg, strlen(e->msg)) == 0;
}

/* The rendered block of e: header line, source line, caret line. */
static int rendered_ok(const char *text, const char *path, const expect *e)
{
    char head[1600];
    snprintf(head, sizeof head, "%s:%d:%d: error: %s", path, e->line, e->col, e->msg);
    const char *p = strstr(text, head);
    if (!p || !(p = strchr(p, '\n')) || !(p = strchr(p + 1, '\n')))
        return 0;
    const char *caret = p + 1, *eol = strchr(caret, '\n');
    return eol && eol > caret && eol[-1] == '^';
}

/* Checks one file; returns 1 when everything matched. */
static int check_file(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", DIAG_DIR, name);
    size_t len;
    char *src = qk_read_file(path, &len);
    if (!src)
        return 0;
    expect ex[16];
    int nex = read_expects(src, ex, 16), good = nex > 0;
    qk_diags d;
    qk_diags_init(&d);
    kir_program *p = qk_frontend_compile(src, len, path, NULL, &d);
    qk_buf out = {0};
    qk_diags_render(&d, &out);
    for (int i = 0; i < nex; i++) {
        int found = 0;
        for (int j = 0; j < d.n; j++)
            found |= matches(&d.items[j], &ex[i]);
        if (!found || !rendered_ok(out.s ? out.s : "", path, &ex[i])) {
            fprintf(stderr, "\n%s: missing %d:%d: error: %s", name, ex[i].line, ex[i].col, ex[i].msg);
            good = 0;
        }
    }
    if (p || d.nerrors != nex) {
        fprintf(stderr, "\n%s: %d errors reported, %d expected", name, d.nerrors, nex);
        good = 0;
    }
    if (!good)
        fprintf(stderr, "\n%s", out.s ? out.s : "(no diagnostics)\n");
    kir_program_free(p);
    qk_buf_free(&out);
    qk_diags_free(&d);
    free(src);
    return good;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_golden(void)
{
    DIR *dir = opendir(DIAG_DIR);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char *names[512];
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(dir)) && n < 512) {
        size_t l = strlen(ent->d_name);
        if (l > 3 && strcmp(ent->d_name + l - 3, ".qk") == 0)
            names[n++] = qk_xstrdup(ent->d_name);
    }
    closedir(dir);
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    int passed = 0;
    for (int i = 0; i < n; i++) {
        int ok = check_file(names[i]);
        CU_ASSERT(ok);
        passed += ok;
        free(names[i]);
    }
    printf("\n  %d of %d diagnostic programs matched\n", passed, n);
    CU_ASSERT(n >= 35);
}

/* A NULL file name renders as <input>, and positions still work. */
static void test_input_name(void)
{
    qk_diags d;
    qk_diags_init(&d);
    const char *src = "kernel k() -> y: f32 {\n  y = $\n}\n";
    kir_program *p = qk_frontend_compile(src, strlen(src), NULL, NULL, &d);
    CU_ASSERT_PTR_NULL(p);
    qk_buf out = {0};
    qk_diags_render(&d, &out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.s, "<input>:2:7: error: unexpected character '$'\n    y = $\n        ^\n"));
    qk_buf_free(&out);
    qk_diags_free(&d);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("diagnostics", NULL, NULL);
    CU_add_test(s, "golden tests/diag/*.qk", test_golden);
    CU_add_test(s, "unnamed input", test_input_name);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
