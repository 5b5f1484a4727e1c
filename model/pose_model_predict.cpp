// Inference: PoseModel::predict on normalised float batches, and predict_crops /
// stage_crops / predict_staged on the data set's uint8 crops, which are normalised (and
// flipped) on the model's device. On a GPU a staged batch travels through pinned host
// memory on a copy stream of its own, so its transfer overlaps the forward of the batch
// before; the compute stream waits for it with an event, not with a host synchronisation.
#include <c10/core/Event.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <chrono>
#include <cstring>

#include "common/error.h"
#include "model/inference_kernels.h"
#include "model/pose_model_impl.h"

namespace cnp::model {

struct StagedCrops {
  int n = 0;
  torch::Tensor crops;              // (n, 256, 256, 3) uint8 BGR, on the model's device
  torch::Tensor pinned;             // GPU: the host copy the transfer reads, kept until it is done
  torch::Tensor bad_rows;           // indices of samples whose input is all zero; may be undefined
  std::optional<c10::Event> ready;  // GPU: recorded on the copy stream after the transfer
};

namespace {

constexpr int64_t kCropBytes = int64_t{kInputSize} * kInputSize * 3;

Error inference_error(const ModelOptions& options, const c10::Error& e) {
  const std::string what = e.what_without_backtrace();
  return Error("inference failed on " + options.device + " (" + options.precision +
               "): " + what.substr(0, what.find('\n')));
}

// The reference's normalisation (data::normalize_crop) as tensor ops on the crops' device:
// channels reversed (BGR -> RGB), then (pixel - mean) / std per channel, in float32. The same
// IEEE subtraction and division as the CPU loop, so the values are the same bit for bit.
torch::Tensor normalize_crops(const torch::Tensor& crops) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(crops.device());
  const auto mean = torch::tensor({0.485f, 0.456f, 0.406f}, options).view({1, 3, 1, 1});
  const auto stdev = torch::tensor({0.229f, 0.224f, 0.225f}, options).view({1, 3, 1, 1});
  const auto rgb = crops.flip({3}).permute({0, 3, 1, 2}).to(torch::kFloat);
  // Contiguous NCHW like predict()'s input, so both paths run the same kernels (LibTorch picks
  // convolution algorithms by memory layout).
  return ((rgb - mean) / stdev).contiguous();
}

}  // namespace

// The network's input in its precision; with the flip test, the n mirror images follow the n
// plain ones, so both go through one batched forward of 2n images.
torch::Tensor PoseModel::Impl::network_input(const torch::Tensor& normalised, bool flip) const {
  torch::Tensor x = normalised.to(dtype);
  return flip ? torch::cat({x, x.flip({3})}) : x;
}

void PoseModel::Impl::predict_device(const torch::Tensor& x, int n, float* plain, float* flipped,
                                     StageTimes* times) {
  const int64_t joints = arch.joints;
  auto coords = forward(x, times).to(torch::kCPU).contiguous();
  std::memcpy(plain, coords.data_ptr<float>(), sizeof(float) * n * joints * 3);
  if (flipped) {
    auto back = coords.slice(0, n, 2 * n).clone();
    const int64_t width = arch.heatmap_size(kInputSize);
    back.select(2, 0).mul_(-1).add_(width - 1);
    auto perm = torch::tensor(flip_permutation, torch::kLong);
    back = back.index_select(1, perm).contiguous();
    std::memcpy(flipped, back.data_ptr<float>(), sizeof(float) * n * joints * 3);
  }
}

void PoseModel::predict(const float* input, int n, float* plain, float* flipped) const {
  predict(input, n, plain, flipped, nullptr);
}

void PoseModel::predict(const float* input, int n, float* plain, float* flipped,
                        StageTimes* times) const {
  if (times) *times = StageTimes{};
  if (n < 0) throw Error("predict: negative batch size " + std::to_string(n));
  if (n == 0) return;
  Impl& impl = *impl_;  // forward() is not const in LibTorch
  try {
    torch::InferenceMode guard;
    auto x =
        torch::from_blob(const_cast<float*>(input), {n, 3, kInputSize, kInputSize}, torch::kFloat);
    impl.predict_device(impl.network_input(x.to(impl.device), flipped != nullptr), n, plain,
                        flipped, times);
  } catch (const c10::Error& e) {
    throw inference_error(impl.options, e);
  }
}

std::shared_ptr<StagedCrops> PoseModel::stage_crops(const uint8_t* crops, int n,
                                                    const uint8_t* bad) const {
  if (n < 0) throw Error("stage_crops: negative batch size " + std::to_string(n));
  const Impl& impl = *impl_;
  auto staged = std::make_shared<StagedCrops>();
  staged->n = n;
  if (n == 0) return staged;
  try {
    torch::InferenceMode guard;
    std::vector<int64_t> bad_rows;
    for (int i = 0; bad && i < n; ++i)
      if (bad[i]) bad_rows.push_back(i);
    if (!bad_rows.empty()) staged->bad_rows = torch::tensor(bad_rows, torch::kLong);
    const std::vector<int64_t> shape{n, kInputSize, kInputSize, 3};
    if (!impl.copy_stream) {
      staged->crops = torch::from_blob(const_cast<uint8_t*>(crops), shape, torch::kByte).clone();
      return staged;
    }
    // Pinned memory lets the transfer run asynchronously at full bus speed; a copy into it
    // costs ~20 us per crop on one core, far less than decoding it.
    staged->pinned =
        torch::empty(shape, torch::TensorOptions().dtype(torch::kByte).pinned_memory(true));
    std::memcpy(staged->pinned.data_ptr(), crops, static_cast<size_t>(n) * kCropBytes);
    c10::StreamGuard on_copy_stream(*impl.copy_stream);
    staged->crops = staged->pinned.to(impl.device, torch::kByte, /*non_blocking=*/true);
    staged->ready.emplace(impl.device.type());
    staged->ready->record(*impl.copy_stream);
  } catch (const c10::Error& e) {
    throw inference_error(impl.options, e);
  }
  return staged;
}

void PoseModel::predict_staged(const StagedCrops& staged, float* plain, float* flipped,
                               StageTimes* times) const {
  if (times) *times = StageTimes{};
  if (staged.n == 0) return;
  Impl& impl = *impl_;
  try {
    torch::InferenceMode guard;
    const auto start = std::chrono::steady_clock::now();
    torch::Tensor x = impl.staged_input(staged, flipped != nullptr);
    if (times) {
      if (impl.device.is_cuda()) torch::cuda::synchronize(impl.device.index());
      times->input_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
    }
    impl.predict_device(x, staged.n, plain, flipped, times);
  } catch (const c10::Error& e) {
    throw inference_error(impl.options, e);
  }
}

torch::Tensor PoseModel::Impl::staged_input(const StagedCrops& staged, bool flip) const {
  if (staged.ready) {
    const c10::impl::VirtualGuardImpl device_guard(device.type());
    const c10::Stream compute = device_guard.getStream(device);
    staged.ready->block(compute);
    // The crops were allocated on the copy stream; they are read on the compute stream.
    device_guard.recordDataPtrOnStream(staged.crops.storage().data_ptr(), compute);
  }
  torch::Tensor x = normalize_crops(staged.crops);
  if (staged.bad_rows.defined()) x.index_fill_(0, staged.bad_rows.to(device), 0.0);
  return network_input(x, flip);
}

void PoseModel::prepare_staged(const StagedCrops& staged, bool flip) const {
  if (staged.n == 0) return;
  const Impl& impl = *impl_;
  try {
    torch::InferenceMode guard;
    const torch::Tensor x = impl.staged_input(staged, flip);
    if (impl.device.is_cuda()) torch::cuda::synchronize(impl.device.index());
  } catch (const c10::Error& e) {
    throw inference_error(impl.options, e);
  }
}

void PoseModel::predict_crops(const uint8_t* crops, int n, const uint8_t* bad, float* plain,
                              float* flipped, StageTimes* times) const {
  predict_staged(*stage_crops(crops, n, bad), plain, flipped, times);
}

const char* PoseModel::cpu_kernels() {
  return kernels::kernel_isa();
}

bool PoseModel::cuda_available() {
  return torch::cuda::is_available();
}
int PoseModel::cuda_device_count() {
  return static_cast<int>(torch::cuda::device_count());
}

}  // namespace cnp::model
