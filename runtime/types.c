/* types.c — small tables of the runtime: status names, the mapping
 * between public and internal dtypes, and dtype -> C type for kernel
 * signatures. */
#include "runtime/runtime.h"

#ifndef QKC_VERSION
#define QKC_VERSION "0.2.0"
#endif

static const char *const status_names[] = {
    [QKC_OK] = "ok",
    [QKC_ERR_INVALID_ARG] = "invalid argument",
    [QKC_ERR_NOMEM] = "out of memory",
    [QKC_ERR_IO] = "input/output error",
    [QKC_ERR_COMPILE] = "compile error",
    [QKC_ERR_NOT_FOUND] = "not found",
    [QKC_ERR_SHAPE] = "shape mismatch",
    [QKC_ERR_DTYPE] = "dtype mismatch",
    [QKC_ERR_TARGET] = "target error",
    [QKC_ERR_NO_DEVICE] = "no device",
    [QKC_ERR_UNSUPPORTED] = "unsupported",
    [QKC_ERR_INTERNAL] = "internal error",
};
_Static_assert(QK_COUNT(status_names) == QKC_ERR_INTERNAL + 1, "status table");

const char *qkc_version(void)
{
    return QKC_VERSION;
}

const char *qkc_strerror(qkc_status status)
{
    if ((int)status < 0 || (int)status >= QK_COUNT(status_names))
        return "unknown status";
    return status_names[status];
}

/* Public and internal dense dtypes, side by side. */
static const struct {
    qkc_dtype pub;
    qk_dtype in;
    const char *ctype;
} dtypes[] = {
    {QKC_F32, QK_DT_F32, "float"},    {QKC_F16, QK_DT_F16, "uint16_t"}, {QKC_BF16, QK_DT_BF16, "uint16_t"},
    {QKC_I8, QK_DT_I8, "int8_t"},     {QKC_I32, QK_DT_I32, "int32_t"},  {QKC_U8, QK_DT_U8, "uint8_t"},
};
_Static_assert(QK_COUNT(dtypes) == QK_DT_COUNT, "dtype table");

qk_dtype rt_dtype_to_qk(qkc_dtype t)
{
    for (int i = 0; i < QK_COUNT(dtypes); i++)
        if (dtypes[i].pub == t)
            return dtypes[i].in;
    return QK_DT_NONE;
}

qkc_dtype rt_dtype_from_qk(qk_dtype t)
{
    for (int i = 0; i < QK_COUNT(dtypes); i++)
        if (dtypes[i].in == t)
            return dtypes[i].pub;
    return QKC_PACKED;
}

const char *rt_qkc_dtype_name(qkc_dtype t)
{
    if (t == QKC_PACKED)
        return "packed";
    qk_dtype d = rt_dtype_to_qk(t);
    return d == QK_DT_NONE ? "?" : qk_dtype_name(d);
}

const char *rt_c_type(qk_dtype t)
{
    for (int i = 0; i < QK_COUNT(dtypes); i++)
        if (dtypes[i].in == t)
            return dtypes[i].ctype;
    return "uint8_t";
}
