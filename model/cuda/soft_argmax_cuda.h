#pragma once
/* The fused soft-argmax decoder as a CUDA kernel behind a C interface, so that it builds
 * with nvcc alone and links into a CPU-only LibTorch build. Same contract as
 * cnp::model::kernels::soft_argmax_nhwc (model/inference_kernels.h), for all items. */
#ifdef __cplusplus
extern "C" {
#endif

/* logits: device pointer to n x height x width x (joints * depth) float32 (channels-last);
 * out: device pointer to n x joints x 3 float32. upsample2x: 0 or 1. device: the CUDA
 * device of both pointers (-1: the current one). stream: a cudaStream_t, or NULL for the
 * default stream. Waits for the kernel. Returns 0 or an error code for
 * cnp_soft_argmax_cuda_error. */
int cnp_soft_argmax_nhwc_cuda(const float* logits, long long n, long long joints, long long depth,
                              long long height, long long width, int upsample2x, float* out,
                              int device, void* stream);

/* A one-line description of a status returned above. */
const char* cnp_soft_argmax_cuda_error(int status);

/* Number of usable CUDA devices (0 when there is no driver or no GPU); `why` (may be
 * NULL) receives the runtime's message when it is 0 because of an error. */
int cnp_cuda_device_count(const char** why);

#ifdef __cplusplus
}
#endif
