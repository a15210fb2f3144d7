/* device.h — what `qkc bench` and `qkc probe` need of a GPU context
 * beyond the public API (include/qkc.h): launches timed on the device
 * with the buffers kept there, the device memory's copy bandwidth, and
 * the context's target description (read from the device when there is
 * one). Every call goes through a backend's optional device hooks
 * (backends/backend.h), so nothing here names a GPU API; on a target
 * without them the calls fail with QKC_ERR_UNSUPPORTED, and without a
 * driver or device with QKC_ERR_NO_DEVICE and the backend's message.
 *
 * Threading: as qkc_launch (any thread; one context may be shared).
 *
 * Prefix: qk_device_. */
#ifndef QK_DEVICE_H
#define QK_DEVICE_H

#include "compiler/tir.h"
#include "qkc.h"
#include "runtime/probe.h"

typedef struct qk_device_timing {
    int copies;      /* device copies of every buffer, used in turn (>= 1) */
    int reps;        /* timed launches (>= 1) */
    double *seconds; /* out: reps device times, in launch order */
} qk_device_timing;

/* Checks args as qkc_launch does, then runs k on the device as
 * backend.h's launch_timed describes: copies of the buffers, a warm-up
 * on each, reps timed launches. The results land in args (from the
 * first copy). QKC_OK or a status with the message on the context. */
qkc_status qk_device_time(qkc_kernel *k, const qkc_tensor *args, int nargs, const qk_device_timing *timing);

/* Measures the device memory's copy bandwidth on ctx's device (bytes
 * read plus written per second by a device-to-device copy; the best of
 * several) into a probe result: fingerprint = the context's target
 * fingerprint, threads = 0 (a device probe), read_bw[QK_PROBE_DRAM] =
 * the copy bandwidth (both entries), ws_bytes[QK_PROBE_DRAM] = the bytes
 * copied; every other figure is 0. quick: a smaller buffer and fewer
 * repetitions. QKC_OK or a status with the message on ctx. */
qkc_status qk_device_probe(qkc_ctx *ctx, int quick, qk_probe_result *out);

/* The context's target description (the device's figures on a machine
 * with a matching device, else the preset). */
void qk_device_target(const qkc_ctx *ctx, qk_target *out);

#endif
