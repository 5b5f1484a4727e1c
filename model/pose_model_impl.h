#pragma once
// PoseModel's state, shared by the files that implement it (pose_model.cpp: building and
// loading; pose_model_predict.cpp: inference and the device input path). Internal: includes
// LibTorch, so only model/*.cpp include it.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/network_modules.h"
#include "model/optimized_network.h"
#include "model/pose_model.h"

namespace cnp::model {

constexpr int kInputSize = 256;

// Sets glibc's allocator to keep freed blocks (see pose_model.cpp); once per process.
void keep_freed_memory_for_reuse();

struct PoseModel::Impl {
  Architecture arch;
  ModelOptions options;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat;
  std::vector<int64_t> flip_permutation;
  Network net{nullptr};
  std::unique_ptr<OptimizedNetwork> optimized;
  // GPU: the stream that carries staged crops to the device beside the compute stream.
  std::optional<c10::Stream> copy_stream;

  Impl(const Architecture& a, const ModelOptions& o, const std::string& where);
  // Moves the loaded/initialised fp32 CPU network to its device and precision, after
  // deriving the optimized network from its fp32 weights.
  void finish();
  // (N, J, 3) float32 coordinates of an (N, 3, 256, 256) batch on the device.
  torch::Tensor forward(const torch::Tensor& x, StageTimes* times);
  // A normalised float batch on the device as the network takes it: in its precision, and
  // followed by its mirror images when `flip`.
  torch::Tensor network_input(const torch::Tensor& normalised, bool flip) const;
  // A staged batch as network_input: once its transfer is done (on the compute stream),
  // normalised, bad samples zeroed, flipped copy appended when asked.
  torch::Tensor staged_input(const StagedCrops& staged, bool flip) const;
  // Coordinates of network_input()'s result for n images, written to the caller's buffers
  // (`flipped` non-null exactly when the input holds the mirror images too).
  void predict_device(const torch::Tensor& x, int n, float* plain, float* flipped,
                      StageTimes* times);
};

}  // namespace cnp::model
