/* device.c — the device probe of device.h (`qkc probe --target sm_90`):
 * the copy bandwidth of the device's memory through the backend's
 * copy_bandwidth hook, as a qk_probe_result that the tuning database
 * stores under the device target's fingerprint. The timed launch lives
 * with the other launches in launch.c. */
#include "runtime/device.h"
#include "runtime/runtime.h"

#include <string.h>
#include <time.h>

/* A full probe copies 1 GiB (far beyond any L2), 20 times; a quick one
 * 256 MiB, 5 times. Both take well under a second at HBM speeds. */
#define DEVICE_PROBE_BYTES ((int64_t)1 << 30)
#define DEVICE_PROBE_QUICK_BYTES ((int64_t)256 << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

qkc_status qk_device_probe(qkc_ctx *ctx, int quick, qk_probe_result *out)
{
    if (!ctx || !out)
        return rt_fail(ctx, QKC_ERR_INVALID_ARG, "qk_device_probe: NULL %s", !ctx ? "context" : "result");
    memset(out, 0, sizeof *out);
    if (!ctx->backend->copy_bandwidth)
        return rt_fail(ctx, QKC_ERR_UNSUPPORTED, "target %s has no device to probe (GPU targets only)",
                       ctx->target.name);
    char err[1024] = "";
    void *state = NULL;
    int64_t bytes = quick ? DEVICE_PROBE_QUICK_BYTES : DEVICE_PROBE_BYTES;
    double bw = 0, t0 = now_s();
    int rc = rt_backend_state(ctx, &state, err, sizeof err);
    if (rc == 0)
        rc = ctx->backend->copy_bandwidth(state, bytes, quick ? 5 : 20, &bw, err, sizeof err);
    if (rc != 0)
        return rt_fail(ctx, rt_is_no_device(err) ? QKC_ERR_NO_DEVICE : QKC_ERR_TARGET, "probe of %s: %s",
                       ctx->target.name, err[0] ? err : "failed");
    qk_target_fingerprint(&ctx->target, out->fingerprint, sizeof out->fingerprint);
    out->threads = 0;
    out->read_bw[QK_PROBE_DRAM][0] = out->read_bw[QK_PROBE_DRAM][1] = bw;
    out->ws_bytes[QK_PROBE_DRAM] = bytes;
    out->created = (int64_t)time(NULL);
    out->seconds = now_s() - t0;
    return QKC_OK;
}

void qk_device_target(const qkc_ctx *ctx, qk_target *out)
{
    *out = ctx->target;
}
