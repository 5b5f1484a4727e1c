// The CUDA soft-argmax kernel (model/cuda/soft_argmax.cu) against the CPU decoder on
// random and very peaky logits, with and without the 2x upsample. Not a GoogleTest: it
// must report "skipped" to ctest (exit 77, SKIP_RETURN_CODE) with the reason when this
// machine has no usable GPU, never pass silently.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "model/cuda/soft_argmax_cuda.h"
#include "model/inference_kernels.h"

namespace {

constexpr int kSkipped = 77;

struct Case {
  long long n, joints, depth, height, width;
  int upsample;
  float spread;  // logits uniform in [-spread, spread]
};

// Max |CUDA - CPU| over all coordinates, or -1 after a CUDA error (printed).
double compare(const Case& c, unsigned seed) {
  std::mt19937 engine(seed);
  std::uniform_real_distribution<float> uniform(-c.spread, c.spread);
  std::vector<float> logits(c.n * c.height * c.width * c.joints * c.depth);
  for (float& v : logits) v = uniform(engine);
  std::vector<float> cpu(c.n * c.joints * 3), gpu(cpu.size());
  cnp::model::kernels::soft_argmax_nhwc(logits.data(), c.joints, c.depth, c.height, c.width,
                                        c.upsample != 0, cpu.data(), 0, c.n * c.joints);
  float *device_logits = nullptr, *device_out = nullptr;
  if (cudaMalloc(&device_logits, logits.size() * sizeof(float)) != cudaSuccess ||
      cudaMalloc(&device_out, gpu.size() * sizeof(float)) != cudaSuccess) {
    std::printf("cudaMalloc failed\n");
    return -1;
  }
  cudaMemcpy(device_logits, logits.data(), logits.size() * sizeof(float), cudaMemcpyHostToDevice);
  const int status = cnp_soft_argmax_nhwc_cuda(device_logits, c.n, c.joints, c.depth, c.height,
                                               c.width, c.upsample, device_out, -1, nullptr);
  if (status != 0) {
    std::printf("kernel failed: %s\n", cnp_soft_argmax_cuda_error(status));
    return -1;
  }
  cudaMemcpy(gpu.data(), device_out, gpu.size() * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(device_logits);
  cudaFree(device_out);
  double worst = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (!std::isfinite(gpu[i])) return 1e9;
    worst = std::fmax(worst, std::fabs(double{cpu[i]} - gpu[i]));
  }
  return worst;
}

}  // namespace

int main() {
  const char* why = "unknown reason";
  if (cnp_cuda_device_count(&why) == 0) {
    std::printf("SKIPPED: no usable CUDA device (%s); the CUDA decoder was compiled, not run\n",
                why);
    return kSkipped;
  }
  const Case cases[] = {
      {2, 18, 32, 32, 32, 0, 9.0f}, {2, 18, 64, 32, 32, 1, 9.0f}, {2, 18, 64, 32, 32, 1, 80.0f},
      {3, 4, 5, 7, 9, 0, 80.0f},    {1, 3, 12, 5, 6, 1, 80.0f},
  };
  int failures = 0;
  unsigned seed = 1;
  for (const Case& c : cases) {
    const double error = compare(c, seed++);
    const bool ok = error >= 0 && error < 1e-3;
    std::printf("%s n%lld j%lld d%lld %lldx%lld%s logits +-%.0f: max |CUDA - CPU| %.2e\n",
                ok ? "ok  " : "FAIL", c.n, c.joints, c.depth, c.height, c.width,
                c.upsample ? " up" : "", c.spread, error);
    failures += ok ? 0 : 1;
  }
  return failures == 0 ? 0 : 1;
}
