// The fused soft-argmax decoder on a GPU: one thread block per (sample, joint). Each
// thread walks a strided share of the (optionally 2x bilinearly upsampled) D x H x W
// volume with an online softmax (running maximum, sums rescaled when it grows); the block
// then merges the per-thread (max, sums) pairs. The volume is never written.
#include <cuda_runtime.h>

#include "model/cuda/soft_argmax_cuda.h"

namespace {

constexpr int kThreads = 256;

struct Partial {
  float max, total, x, y, z;
};

__device__ Partial merge(Partial a, Partial b) {
  const float m = fmaxf(a.max, b.max);
  if (m == -INFINITY) return a;
  const float sa = expf(a.max - m), sb = expf(b.max - m);
  return {m, a.total * sa + b.total * sb, a.x * sa + b.x * sb, a.y * sa + b.y * sb,
          a.z * sa + b.z * sb};
}

__device__ void source_of(long long i, long long in_size, long long out_size, long long& i0,
                          long long& i1, float& frac) {
  const float scale = out_size > 1 ? (float)(in_size - 1) / (float)(out_size - 1) : 0.0f;
  const float real = scale * (float)i;
  i0 = min((long long)real, in_size - 1);
  i1 = i0 + (i0 < in_size - 1 ? 1 : 0);
  frac = real - (float)i0;
}

__global__ void soft_argmax_kernel(const float* logits, long long joints, long long depth,
                                   long long height, long long width, int upsample, float* out) {
  const long long item = blockIdx.x;
  const long long sample = item / joints, joint = item % joints;
  const long long channels = joints * depth;
  const long long out_h = upsample ? 2 * height : height, out_w = upsample ? 2 * width : width;
  const float* base = logits + sample * height * width * channels + joint * depth;
  const long long volume = out_h * out_w * depth;

  Partial p{-INFINITY, 0.f, 0.f, 0.f, 0.f};
  for (long long v = threadIdx.x; v < volume; v += blockDim.x) {
    const long long d = v % depth, ox = (v / depth) % out_w, oy = v / (depth * out_w);
    float value;
    if (upsample) {
      long long y0, y1, x0, x1;
      float fy, fx;
      source_of(oy, height, out_h, y0, y1, fy);
      source_of(ox, width, out_w, x0, x1, fx);
      const float a = base[(y0 * width + x0) * channels + d];
      const float b = base[(y0 * width + x1) * channels + d];
      const float c = base[(y1 * width + x0) * channels + d];
      const float e = base[(y1 * width + x1) * channels + d];
      value = (1.f - fy) * ((1.f - fx) * a + fx * b) + fy * ((1.f - fx) * c + fx * e);
    } else {
      value = base[(oy * width + ox) * channels + d];
    }
    if (value > p.max) {
      const float s = expf(p.max - value);
      p.total *= s;
      p.x *= s;
      p.y *= s;
      p.z *= s;
      p.max = value;
    }
    const float w = expf(value - p.max);
    p.total += w;
    p.x += w * (float)ox;
    p.y += w * (float)oy;
    p.z += w * (float)d;
  }

  __shared__ Partial shared[kThreads];
  shared[threadIdx.x] = p;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half)
      shared[threadIdx.x] = merge(shared[threadIdx.x], shared[threadIdx.x + half]);
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const Partial r = shared[0];
    out[item * 3 + 0] = r.x / r.total;
    out[item * 3 + 1] = r.y / r.total;
    out[item * 3 + 2] = r.z / r.total;
  }
}

constexpr int kBadArguments = -1;

}  // namespace

extern "C" int cnp_soft_argmax_nhwc_cuda(const float* logits, long long n, long long joints,
                                         long long depth, long long height, long long width,
                                         int upsample2x, float* out, int device, void* stream) {
  if (n < 0 || joints <= 0 || depth <= 0 || height <= 0 || width <= 0 || !logits || !out)
    return kBadArguments;
  if (n == 0) return 0;
  cudaError_t status = cudaSuccess;
  if (device >= 0) status = cudaSetDevice(device);
  if (status != cudaSuccess) return static_cast<int>(status);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  soft_argmax_kernel<<<static_cast<unsigned>(n * joints), kThreads, 0, s>>>(
      logits, joints, depth, height, width, upsample2x ? 1 : 0, out);
  status = cudaGetLastError();
  if (status == cudaSuccess) status = cudaStreamSynchronize(s);
  return static_cast<int>(status);
}

extern "C" const char* cnp_soft_argmax_cuda_error(int status) {
  if (status == kBadArguments) return "invalid arguments";
  return cudaGetErrorString(static_cast<cudaError_t>(status));
}

extern "C" int cnp_cuda_device_count(const char** why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    if (why) *why = cudaGetErrorString(status);
    return 0;
  }
  if (count == 0 && why) *why = "no CUDA device";
  return count;
}
