// The ConvNeXtPose network in LibTorch (REFERENCE.md §1) behind the torch-free
// PoseModel facade: module tree, strict checkpoint loading, deterministic random
// weights, inference with soft-argmax and the flip test. This is the only translation
// unit of the project that includes <torch/torch.h> (each one costs ~1 min to compile).
#include "model/pose_model.h"

#include <c10/core/impl/VirtualGuardImpl.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <malloc.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <sstream>

#include "common/error.h"
#include "model/network_modules.h"
#include "model/optimized_network.h"
#include "model/pose_model_impl.h"
#include "model/remap.h"
#include "model/soft_argmax.h"

namespace cnp::model {

namespace {

torch::ScalarType to_torch_dtype(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return torch::kFloat;
    case DType::Float16:
      return torch::kHalf;
    case DType::BFloat16:
      return torch::kBFloat16;
    case DType::Float64:
      return torch::kDouble;
    case DType::Int64:
      return torch::kLong;
    case DType::Int32:
      return torch::kInt;
    case DType::Int16:
      return torch::kShort;
    case DType::Int8:
      return torch::kChar;
    case DType::UInt8:
      return torch::kByte;
    case DType::Bool:
      return torch::kBool;
  }
  throw Error("unknown tensor dtype");
}

DType from_torch_dtype(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat:
      return DType::Float32;
    case torch::kHalf:
      return DType::Float16;
    case torch::kBFloat16:
      return DType::BFloat16;
    case torch::kDouble:
      return DType::Float64;
    case torch::kLong:
      return DType::Int64;
    case torch::kInt:
      return DType::Int32;
    case torch::kShort:
      return DType::Int16;
    case torch::kChar:
      return DType::Int8;
    case torch::kByte:
      return DType::UInt8;
    case torch::kBool:
      return DType::Bool;
    default:
      throw Error(std::string("tensor dtype ") + c10::toString(type) + " has no DType");
  }
}

std::string shape_string(c10::IntArrayRef shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

int64_t shape_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// Parameters and buffers in PyTorch's state_dict order: per module (pre-order), its
// own parameters, then its own buffers.
std::vector<std::pair<std::string, torch::Tensor>> named_state(nn::Module& net) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : net.named_modules("", true)) {
    const std::string prefix = item.key().empty() ? "" : item.key() + ".";
    for (const auto& p : item.value()->named_parameters(false))
      out.emplace_back(prefix + p.key(), p.value());
    for (const auto& b : item.value()->named_buffers(false))
      out.emplace_back(prefix + b.key(), b.value());
  }
  return out;
}

bool is_optional_buffer(const std::string& name) {
  const std::string suffix = "num_batches_tracked";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Variant name when `arch` is a built-in one, else its description.
std::string arch_name(const Architecture& arch, bool compare_upsample) {
  static const VariantRegistry builtins = VariantRegistry::with_builtins();
  auto matches = builtins.matching(arch, compare_upsample);
  return matches.empty() ? arch.describe() : matches.front()->name;
}

// The fields in which `a` differs from `b` ("head 512, depth_dim 64").
std::string differing_fields(const Architecture& a, const Architecture& b) {
  auto ints = [](const std::array<int, 4>& v) {
    return std::to_string(v[0]) + "," + std::to_string(v[1]) + "," + std::to_string(v[2]) + "," +
           std::to_string(v[3]);
  };
  std::vector<std::string> parts;
  if (a.depths != b.depths) parts.push_back("depths " + ints(a.depths));
  if (a.dims != b.dims) parts.push_back("dims " + ints(a.dims));
  if (a.head_channels != b.head_channels || parts.empty())
    parts.push_back("head " + std::to_string(a.head_channels));
  if (a.depth_dim != b.depth_dim || parts.size() == 1)
    parts.push_back("depth_dim " + std::to_string(a.depth_dim));
  if (a.joints != b.joints) parts.push_back("joints " + std::to_string(a.joints));
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : ", ") + p;
  return s;
}

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available())
      throw Error("device '" + name + "' requested but this LibTorch build has no usable CUDA");
    torch::Device device(torch::kCUDA);
    try {
      device = torch::Device(name);
    } catch (const std::exception&) {
      throw Error("invalid device '" + name + "' (use cpu, cuda or cuda:N)");
    }
    const int index = device.has_index() ? device.index() : 0;
    if (index >= static_cast<int>(torch::cuda::device_count()))
      throw Error("device '" + name + "' requested but only " +
                  std::to_string(torch::cuda::device_count()) + " CUDA device(s) are visible");
    return device;
  }
  throw Error("invalid device '" + name + "' (use cpu, cuda or cuda:N)");
}

torch::ScalarType parse_precision(const std::string& name, const torch::Device& device) {
  if (name == "fp32") return torch::kFloat;
  if (name == "bf16") return torch::kBFloat16;
  if (name == "fp16") {
    // LibTorch's CPU convolutions have no float16 kernels.
    if (!device.is_cuda())
      throw Error("precision fp16 needs a CUDA device (use fp32 or bf16 on cpu)");
    return torch::kHalf;
  }
  throw Error("invalid precision '" + name + "' (use fp32, bf16 or fp16)");
}

// Deterministic across platforms and LibTorch versions: raw mt19937_64 bits, no
// library distributions (whose algorithms are implementation-defined).
class Uniform {
 public:
  explicit Uniform(uint64_t seed) : engine_(seed) {}
  double operator()(double lo, double hi) {
    const double unit = static_cast<double>(engine_() >> 11) * (1.0 / 9007199254740992.0);
    return lo + (hi - lo) * unit;
  }
  torch::Tensor tensor(c10::IntArrayRef shape, double lo, double hi) {
    torch::Tensor t = torch::empty(shape, torch::kFloat);
    float* data = t.data_ptr<float>();
    for (int64_t i = 0; i < t.numel(); ++i) data[i] = static_cast<float>((*this)(lo, hi));
    return t;
  }

 private:
  std::mt19937_64 engine_;
};

}  // namespace

// LibTorch's CPU allocator frees every activation after use and allocates it again on
// the next forward. glibc serves blocks above its mmap ceiling (at most 32 MB) with
// fresh mmaps, so each forward page-faults its large activations anew (the flip test's
// doubled batch crosses that size for every variant). Keeping large blocks on the heap
// and not trimming it makes inference 3-5x faster on CPU (bench_sweep, XS: 15.8 -> 45.3
// samples/s plain, 6.9 -> 32.4 with flip). Process-wide, done once when the first
// model is built.
void keep_freed_memory_for_reuse() {
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  });
}

PoseModel::Impl::Impl(const Architecture& a, const ModelOptions& o, const std::string& where)
    : arch(a), options(o) {
  keep_freed_memory_for_reuse();
  arch.validate(where);
  device = parse_device(options.device);
  dtype = parse_precision(options.precision, device);
  // fp32 means fp32: LibTorch lets cuDNN convolutions (and optionally cuBLAS) round their
  // inputs to TF32 on Ampere and newer GPUs, which moved coordinates by up to 0.3 heatmap
  // units against the CPU on an H100. Process-wide, as in PyTorch.
  if (device.is_cuda()) {
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  flip_permutation.resize(arch.joints);
  for (int j = 0; j < arch.joints; ++j) flip_permutation[j] = j;
  for (const auto& [a_joint, b_joint] : options.flip_pairs) {
    if (a_joint < 0 || b_joint < 0 || a_joint >= arch.joints || b_joint >= arch.joints)
      throw Error(where + ": flip pair (" + std::to_string(a_joint) + ", " +
                  std::to_string(b_joint) + ") is out of range for " + std::to_string(arch.joints) +
                  " joints");
    std::swap(flip_permutation[a_joint], flip_permutation[b_joint]);
  }
  if (options.threads > 0) torch::set_num_threads(options.threads);
  net = Network(arch);  // fp32 on the CPU until finish()
}

// Moves the loaded/initialised fp32 CPU network to its device and precision, after
// deriving the optimized network from its fp32 weights.
void PoseModel::Impl::finish() {
  net->eval();
  // Debian's CPU LibTorch has no fast bf16 GEMM/conv: bf16 on a CPU needs our AVX512_BF16 GEMM.
  const bool supported = OptimizedNetwork::supports(device, dtype);
  if (options.optimize && !supported)
    spdlog::debug("precision {} on {}: straightforward network", options.precision, options.device);
  if (options.optimize && supported)
    optimized = std::make_unique<OptimizedNetwork>(*net, arch, device, dtype);
  net->to(device);
  // A copy stream of the device's own pool for stage_crops(); LibTorch's device-generic
  // interface, so this file needs no CUDA headers and builds against a CPU LibTorch.
  if (device.is_cuda())
    copy_stream = c10::impl::VirtualGuardImpl(device.type()).getStreamFromGlobalPool(device);
  // Module::to(dtype) would also cast the integer num_batches_tracked buffers.
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : named_state(*net))
    if (tensor.is_floating_point()) tensor.set_data(tensor.to(dtype));
}

// (N, J, 3) float32 coordinates of an (N, 3, 256, 256) batch on the device.
torch::Tensor PoseModel::Impl::forward(const torch::Tensor& x, StageTimes* times) {
  using Clock = std::chrono::steady_clock;
  auto mark = [&](double* slot, Clock::time_point& since) {
    if (!times) return;
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
    const auto now = Clock::now();
    *slot += std::chrono::duration<double, std::milli>(now - since).count();
    since = now;
  };
  auto since = Clock::now();
  double ignored = 0;
  mark(&ignored, since);
  if (optimized) {
    auto features = optimized->backbone(x);
    mark(times ? &times->backbone_ms : nullptr, since);
    auto logits = optimized->head(features);
    mark(times ? &times->head_ms : nullptr, since);
    auto coords = optimized->decode(logits);
    mark(times ? &times->decode_ms : nullptr, since);
    return coords;
  }
  auto features = net->backbone->forward(x);
  mark(times ? &times->backbone_ms : nullptr, since);
  auto logits = net->head->forward(features);
  mark(times ? &times->head_ms : nullptr, since);
  auto coords = soft_argmax_reference(logits, arch.joints, arch.depth_dim);
  mark(times ? &times->decode_ms : nullptr, since);
  return coords;
}

PoseModel::PoseModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PoseModel::~PoseModel() = default;

const Architecture& PoseModel::architecture() const {
  return impl_->arch;
}
int PoseModel::heatmap_size() const {
  return impl_->arch.heatmap_size(kInputSize);
}

std::unique_ptr<PoseModel> PoseModel::load(const Architecture& arch, const Checkpoint& checkpoint,
                                           const ModelOptions& options) {
  const std::string& path = checkpoint.path;
  auto impl = std::make_unique<Impl>(arch, options, path);
  NamedTensors tensors;
  try {
    tensors = remap_keys(checkpoint.tensors);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  std::map<std::string, const TensorData*> by_name;
  for (const auto& [name, tensor] : tensors) by_name[name] = &tensor;

  // Check everything first: nothing is copied unless every tensor fits.
  auto expected = named_state(*impl->net);
  std::vector<std::string> missing, mismatched;
  std::vector<std::pair<torch::Tensor, const TensorData*>> plan;
  std::map<std::string, bool> used;
  for (const auto& [name, target] : expected) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      if (!is_optional_buffer(name)) missing.push_back(name);
      continue;
    }
    used[name] = true;
    const TensorData& source = *it->second;
    if (source.shape != target.sizes().vec()) {
      mismatched.push_back(name + ": checkpoint " + shape_string(source.shape) + " vs model " +
                           shape_string(target.sizes()));
      continue;
    }
    const auto numel = shape_numel(source.shape);
    if (source.bytes.size() != static_cast<size_t>(numel) * dtype_size(source.dtype))
      throw Error(path + ": tensor '" + name + "' has " + std::to_string(source.bytes.size()) +
                  " bytes for shape " + shape_string(source.shape) + " of " +
                  dtype_name(source.dtype));
    plan.emplace_back(target, &source);
  }

  if (!missing.empty() || !mismatched.empty()) {
    const std::string requested = options.variant.empty() ? arch_name(arch, true) : options.variant;
    std::string looks;
    try {
      auto inferred = infer_architecture(tensors, path).arch;
      Architecture compare = inferred;
      compare.head_upsample = arch.head_upsample;
      if (compare != arch)
        looks = path + " looks like " + arch_name(inferred, false) + " (" +
                differing_fields(inferred, arch) + ") but the model asked for is " + requested +
                " (" + differing_fields(arch, inferred) + ")";
    } catch (const Error& e) {
      looks = path + " does not look like a ConvNeXtPose checkpoint";
    }
    if (looks.empty()) looks = path + ": cannot load into " + requested;
    auto list = [](const std::vector<std::string>& items) {
      std::string s;
      for (size_t i = 0; i < items.size() && i < 3; ++i) s += (i ? ", " : "") + items[i];
      if (items.size() > 3) s += ", ...";
      return s;
    };
    std::string message = looks + ":";
    if (!missing.empty())
      message += " " + std::to_string(missing.size()) + " missing key(s) (" + list(missing) + ")";
    if (!mismatched.empty())
      message += std::string(missing.empty() ? "" : ";") + " " + std::to_string(mismatched.size()) +
                 " shape mismatch(es) (" + list(mismatched) + ")";
    throw Error(message);
  }

  {
    torch::NoGradGuard no_grad;
    for (auto& [target, source] : plan) {
      auto value = torch::from_blob(const_cast<uint8_t*>(source->bytes.data()), source->shape,
                                    to_torch_dtype(source->dtype));
      target.copy_(value.to(target.scalar_type()));
    }
  }
  for (const auto& [name, tensor] : tensors)
    if (!used.count(name))
      spdlog::debug("{}: unused checkpoint tensor '{}' {}", path, name, shape_string(tensor.shape));
  impl->finish();
  return std::unique_ptr<PoseModel>(new PoseModel(std::move(impl)));
}

// Random weights that make a wrong detail visible: kaiming-uniform convs, random
// BatchNorm affine parameters, running statistics calibrated on a fixed image-like batch
// then perturbed (so they are far from the 0/1 defaults yet keep activations in range),
// and a final layer scaled so that heatmap logits have a standard deviation of 4 (peaky
// softmax). Weights come from raw mt19937_64 bits only; the calibrated statistics and
// the final scale come from one forward pass, so a seed gives the same model on a given
// LibTorch/BLAS build (last-bit differences are possible across builds).
std::unique_ptr<PoseModel> PoseModel::random(const Architecture& arch, uint64_t seed,
                                             const ModelOptions& options) {
  auto impl = std::make_unique<Impl>(arch, options, "random model");
  Uniform uniform(seed);
  torch::NoGradGuard no_grad;
  auto& net = *impl->net;
  for (const auto& item : net.named_modules("", true)) {
    if (auto* conv = item.value()->as<nn::Conv2d>()) {
      const auto& w = conv->weight;
      const double fan_in = static_cast<double>(w.size(1) * w.size(2) * w.size(3));
      const double bound = std::sqrt(6.0 / fan_in);
      w.copy_(uniform.tensor(w.sizes(), -bound, bound));
      conv->bias.copy_(uniform.tensor(conv->bias.sizes(), -0.1, 0.1));
    } else if (auto* bn = item.value()->as<nn::BatchNorm2d>()) {
      bn->weight.copy_(uniform.tensor(bn->weight.sizes(), 0.5, 1.5));
      bn->bias.copy_(uniform.tensor(bn->bias.sizes(), -0.2, 0.2));
      bn->options.momentum(1.0);  // calibration pass: running stats = batch stats
    }
  }
  // Image-like calibration batch: 8x8 blocks of 0..255 values, normalised without /255
  // like the real preprocessing.
  const int64_t blocks = kInputSize / 8;
  auto raw = uniform.tensor({1, 3, blocks, blocks}, 0.0, 255.0)
                 .repeat_interleave(8, 2)
                 .repeat_interleave(8, 3);
  auto mean = torch::tensor({0.485f, 0.456f, 0.406f}).view({1, 3, 1, 1});
  auto stdev = torch::tensor({0.229f, 0.224f, 0.225f}).view({1, 3, 1, 1});
  auto batch = (raw - mean) / stdev;
  net.train();
  net.forward(batch);
  net.eval();
  for (const auto& item : net.named_modules("", true)) {
    if (auto* bn = item.value()->as<nn::BatchNorm2d>()) {
      bn->options.momentum(0.1);
      bn->running_mean.add_(uniform.tensor(bn->running_mean.sizes(), -0.1, 0.1) *
                            bn->running_var.sqrt());
      bn->running_var.mul_(uniform.tensor(bn->running_var.sizes(), 0.8, 1.25));
      bn->num_batches_tracked.fill_(static_cast<int64_t>(uniform(1000.0, 100000.0)));
    }
  }
  auto& final_layer = impl->net->head->final_layer;
  const double spread = net.forward(batch).std().item<double>();
  if (spread > 0) {
    final_layer->weight.mul_(4.0 / spread);
    final_layer->bias.mul_(4.0 / spread);
  }
  impl->finish();
  return std::unique_ptr<PoseModel>(new PoseModel(std::move(impl)));
}

NamedTensors PoseModel::state_dict() const {
  NamedTensors out;
  for (const auto& [name, value] : named_state(*impl_->net)) {
    torch::Tensor t = value.detach().to(torch::kCPU).contiguous();
    TensorData data;
    data.dtype = from_torch_dtype(t.scalar_type());
    data.shape = t.sizes().vec();
    data.bytes.resize(t.numel() * t.element_size());
    if (!data.bytes.empty()) std::memcpy(data.bytes.data(), t.data_ptr(), data.bytes.size());
    out.emplace_back(name, std::move(data));
  }
  return out;
}

bool PoseModel::optimized() const {
  return impl_->optimized != nullptr;
}

}  // namespace cnp::model
