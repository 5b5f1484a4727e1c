#pragma once
// The ConvNeXtPose network behind a torch-free facade (pimpl), so that the
// pipeline and apps do not pay LibTorch's compile cost.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/architecture.h"
#include "model/checkpoint.h"

namespace cnp::model {

struct ModelOptions {
  std::string device = "cpu";                   // "cpu" | "cuda" | "cuda:N"
  std::string precision = "fp32";               // "fp32" | "bf16" | "fp16"
  int threads = 0;                              // intra-op threads; 0 leaves LibTorch's default
  std::vector<std::pair<int, int>> flip_pairs;  // left/right joints swapped by the flip test
  // Optional: the variant name that load() errors call the requested architecture
  // ("... but the sweep asks for M-wide"); when empty, a matching built-in name or the
  // architecture's description is used.
  std::string variant;
  // Inference through the exactly rewritten network (folded BatchNorm, channels-last,
  // fused soft-argmax decoder); false keeps the straightforward module tree, for
  // checking and bisecting. bf16 on a CPU without AVX512_BF16 takes the straightforward path.
  bool optimize = true;
};

// Wall time of one predict() per stage, in milliseconds.
struct StageTimes {
  double input_ms = 0;  // predict_staged: waiting for the transfer, normalising, flipping
  double backbone_ms = 0;
  double head_ms = 0;
  double decode_ms = 0;  // soft-argmax (and the flip-test mapping)
};

// A batch of crops on its way to a model's device (opaque; see PoseModel::stage_crops).
struct StagedCrops;

class PoseModel {
 public:
  // Remaps the checkpoint keys, checks every model tensor is present with the right
  // shape (no partial load, ever) and loads. Errors name the checkpoint, the first
  // missing/mismatched keys, and what the checkpoint looks like versus `arch`.
  static std::unique_ptr<PoseModel> load(const Architecture& arch, const Checkpoint& checkpoint,
                                         const ModelOptions& options);
  // Random weights (deterministic per seed) with non-trivial BatchNorm statistics;
  // used by `cnp synth`, tests and benchmarks.
  static std::unique_ptr<PoseModel> random(const Architecture& arch, uint64_t seed,
                                           const ModelOptions& options);
  ~PoseModel();

  const Architecture& architecture() const;
  int heatmap_size() const;  // W = H for a 256 input
  // Parameters and buffers under PyTorch's names (what a training script saves,
  // without the 'module.' prefix), in registration order.
  NamedTensors state_dict() const;

  // input: n x 3 x 256 x 256 float32, NCHW contiguous (already normalised).
  // plain: n x joints x 3 soft-argmax coordinates in heatmap units.
  // flipped (optional, may be null): the horizontally flipped input's output, already
  // mapped back (x -> W - 1 - x, flip pairs swapped); the flip-test result is
  // (plain + flipped) / 2.
  void predict(const float* input, int n, float* plain, float* flipped) const;
  // The same, also timing each stage (synchronising the device between stages).
  void predict(const float* input, int n, float* plain, float* flipped, StageTimes* times) const;
  // The same from uint8 crops (n x 256 x 256 x 3, BGR: the data set's crops), normalised like
  // the reference (channel order RGB, (pixel - mean) / std without /255) on the model's device,
  // where the flipped copy is made too. Coordinates equal predict()'s on normalize_crop()'s
  // output bit for bit. Samples with bad[i] != 0 (bad may be null) get an all-zero input.
  void predict_crops(const uint8_t* crops, int n, const uint8_t* bad, float* plain, float* flipped,
                     StageTimes* times = nullptr) const;
  // predict_crops in two steps, so that moving one batch to the GPU overlaps the forward of the
  // one before: stage_crops() copies the crops into pinned host memory and starts their transfer
  // on a copy stream (a CPU model keeps a copy), and may run on another thread than the
  // forward; predict_staged() waits for that transfer on the compute stream and runs the rest.
  std::shared_ptr<StagedCrops> stage_crops(const uint8_t* crops, int n, const uint8_t* bad) const;
  void predict_staged(const StagedCrops& staged, float* plain, float* flipped,
                      StageTimes* times = nullptr) const;
  // predict_staged's input step alone, finished before it returns: wait for the transfer,
  // normalise, make the flipped copy when asked. For measuring the data path (bench_datapath).
  void prepare_staged(const StagedCrops& staged, bool flip) const;
  // Whether predict() runs the optimized network (ModelOptions::optimize and a device /
  // precision it supports).
  bool optimized() const;

  // The CPU kernels' instruction set ("avx512", "avx2" or "generic"; CNP_CPU_ISA caps it).
  static const char* cpu_kernels();
  static bool cuda_available();
  static int cuda_device_count();

 private:
  struct Impl;
  explicit PoseModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cnp::model
