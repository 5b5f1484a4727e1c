// Architecture arithmetic, the built-in variant table and architecture inference
// from state-dict shapes (REFERENCE.md §1-3). Torch-free on purpose: `cnp variants`,
// `cnp inspect` and the sweep planner use it without paying LibTorch's compile cost.
#include "model/architecture.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>

#include "common/error.h"

namespace cnp::model {

namespace {

std::string join_ints(const std::array<int, 4>& values) {
  std::ostringstream out;
  for (size_t i = 0; i < values.size(); ++i) out << (i ? "," : "") << values[i];
  return out.str();
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

// Conv2d weights + bias.
int64_t conv_params(int64_t cin, int64_t cout, int64_t kernel, int64_t groups) {
  return cout * (cin / groups) * kernel * kernel + cout;
}

// Multiply-accumulates of a Conv2d producing an out_side x out_side map (bias not counted).
int64_t conv_macs(int64_t cin, int64_t cout, int64_t kernel, int64_t groups, int64_t out_side) {
  return out_side * out_side * cout * (cin / groups) * kernel * kernel;
}

}  // namespace

int Architecture::num_upsamples() const {
  return static_cast<int>(std::count(head_upsample.begin(), head_upsample.end(), true));
}

int Architecture::heatmap_size(int input_size) const {
  return (input_size / 32) << num_upsamples();
}

bool Architecture::operator==(const Architecture& other) const {
  return depths == other.depths && dims == other.dims && head_channels == other.head_channels &&
         head_upsample == other.head_upsample && depth_dim == other.depth_dim &&
         joints == other.joints;
}

std::string Architecture::describe() const {
  std::ostringstream out;
  out << "depths " << join_ints(depths) << " dims " << join_ints(dims) << " head " << head_channels
      << " ups ";
  for (size_t i = 0; i < head_upsample.size(); ++i)
    out << (i ? "," : "") << (head_upsample[i] ? "T" : "F");
  out << " depth_dim " << depth_dim << " joints " << joints;
  return out.str();
}

void Architecture::validate(const std::string& where) const {
  for (int i = 0; i < 4; ++i) {
    if (depths[i] < 1 || depths[i] > 1000)
      throw context_error(where, "depths[" + std::to_string(i) + "] must be in 1..1000, got " +
                                     std::to_string(depths[i]));
    if (dims[i] < 1 || dims[i] > 100000)
      throw context_error(where, "dims[" + std::to_string(i) + "] must be in 1..100000, got " +
                                     std::to_string(dims[i]));
  }
  if (head_channels < 1 || head_channels > 100000)
    throw context_error(where,
                        "head_channels must be in 1..100000, got " + std::to_string(head_channels));
  if (depth_dim < 1 || depth_dim > 4096)
    throw context_error(where, "depth_dim must be in 1..4096, got " + std::to_string(depth_dim));
  if (joints < 1 || joints > 1000)
    throw context_error(where, "joints must be in 1..1000, got " + std::to_string(joints));
}

// Published Human3.6M numbers are the paper's tables (REFERENCE.md §2).
VariantRegistry VariantRegistry::with_builtins() {
  VariantRegistry registry;
  auto make = [](std::string name, std::array<int, 4> depths, std::array<int, 4> dims, int head,
                 bool third_up, int depth_dim, std::optional<double> mpjpe,
                 std::optional<double> pa_mpjpe) {
    Variant v;
    v.name = std::move(name);
    v.arch.depths = depths;
    v.arch.dims = dims;
    v.arch.head_channels = head;
    v.arch.head_upsample = {true, true, third_up};
    v.arch.depth_dim = depth_dim;
    v.arch.joints = 18;
    v.published_mpjpe = mpjpe;
    v.published_pa_mpjpe = pa_mpjpe;
    v.builtin = true;
    return v;
  };
  registry.add(make("XS", {2, 2, 6, 2}, {40, 80, 160, 320}, 128, false, 32, 56.61, std::nullopt));
  registry.add(make("S", {3, 3, 9, 3}, {48, 96, 192, 384}, 256, false, 32, 51.80, std::nullopt));
  registry.add(make("M", {3, 3, 9, 3}, {48, 96, 192, 384}, 256, true, 64, 51.05, 34.5));
  registry.add(make("L", {3, 3, 9, 3}, {48, 96, 192, 384}, 512, true, 64, 49.75, 32.8));
  return registry;
}

void VariantRegistry::add(const Variant& variant) {
  if (variant.name.empty()) throw Error("variant with an empty name");
  if (find(variant.name))
    throw Error("variant '" + variant.name + "' is defined twice (built-in names: XS, S, M, L)");
  variant.arch.validate("variant '" + variant.name + "'");
  variants_.push_back(variant);
}

const Variant* VariantRegistry::find(const std::string& name) const {
  for (const auto& v : variants_)
    if (v.name == name) return &v;
  return nullptr;
}

const Variant& VariantRegistry::get(const std::string& name) const {
  if (const Variant* v = find(name)) return *v;
  std::string known;
  for (const auto& v : variants_) known += (known.empty() ? "" : ", ") + v.name;
  throw Error("unknown variant '" + name + "' (known: " + known + ")");
}

std::vector<const Variant*> VariantRegistry::matching(const Architecture& arch,
                                                      bool compare_upsample) const {
  std::vector<const Variant*> result;
  for (const auto& v : variants_) {
    Architecture candidate = v.arch;
    if (!compare_upsample) candidate.head_upsample = arch.head_upsample;
    if (candidate == arch) result.push_back(&v);
  }
  return result;
}

// Learnable parameters: every conv weight and bias plus BatchNorm weight and bias
// (running statistics are buffers, not parameters). Matches the paper's counts.
int64_t parameter_count(const Architecture& arch) {
  const auto& d = arch.dims;
  int64_t total = conv_params(3, d[0], 4, 1) + 2 * d[0];  // stem conv + BN
  for (int i = 0; i < 4; ++i) {
    if (i > 0) total += 2 * d[i - 1] + conv_params(d[i - 1], d[i], 2, 1);  // BN + conv
    const int64_t block = conv_params(d[i], d[i], 7, d[i]) + 2 * d[i] +
                          conv_params(d[i], 4 * d[i], 1, 1) + conv_params(4 * d[i], d[i], 1, 1);
    total += arch.depths[i] * block;
  }
  total += 2 * d[3];  // final backbone BN
  int64_t cin = d[3];
  for (int k = 0; k < 3; ++k) {
    total += conv_params(cin, cin, 3, cin) + 2 * cin + conv_params(cin, arch.head_channels, 1, 1);
    cin = arch.head_channels;
  }
  total +=
      conv_params(arch.head_channels, static_cast<int64_t>(arch.joints) * arch.depth_dim, 1, 1);
  return total;
}

// Multiply-accumulates of every convolution (stem, downsample, block depthwise and
// both pointwise convs, head depthwise and pointwise convs, final 1x1 conv), weights
// only. Not counted: biases, BatchNorm, ReLU, the residual adds, bilinear upsampling
// and the soft-argmax. This is what the paper's "GFLOPs" column reports (0.82, 1.74,
// 2.79, 4.26 G for XS, S, M, L at 256x256).
int64_t mac_count(const Architecture& arch, int input_size) {
  const auto& d = arch.dims;
  int64_t side = input_size / 4;
  int64_t total = conv_macs(3, d[0], 4, 1, side);
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      side /= 2;
      total += conv_macs(d[i - 1], d[i], 2, 1, side);
    }
    const int64_t block = conv_macs(d[i], d[i], 7, d[i], side) +
                          conv_macs(d[i], 4 * d[i], 1, 1, side) +
                          conv_macs(4 * d[i], d[i], 1, 1, side);
    total += arch.depths[i] * block;
  }
  int64_t cin = d[3];
  for (int k = 0; k < 3; ++k) {
    // dwconv and pwconv run before this layer's upsampling.
    total += conv_macs(cin, cin, 3, cin, side) + conv_macs(cin, arch.head_channels, 1, 1, side);
    if (arch.head_upsample[k]) side *= 2;
    cin = arch.head_channels;
  }
  total +=
      conv_macs(arch.head_channels, static_cast<int64_t>(arch.joints) * arch.depth_dim, 1, 1, side);
  return total;
}

int64_t optimized_mac_count(const Architecture& arch, int input_size) {
  const int64_t total = mac_count(arch, input_size);
  if (!arch.head_upsample.back()) return total;
  const int64_t side = arch.heatmap_size(input_size), before = side / 2;
  const int64_t outputs = static_cast<int64_t>(arch.joints) * arch.depth_dim;
  return total - arch.head_channels * outputs * (side * side - before * before);
}

namespace {

const TensorData& require(const std::map<std::string, const TensorData*>& by_name,
                          const std::string& key, size_t rank, const std::string& source) {
  auto it = by_name.find(key);
  if (it == by_name.end())
    throw Error(source + ": no tensor '" + key +
                "' (not a ConvNeXtPose state dict, or an unknown key scheme)");
  if (it->second->shape.size() != rank)
    throw Error(source + ": tensor '" + key + "' has shape " + shape_string(it->second->shape) +
                ", expected " + std::to_string(rank) + " dimensions");
  return *it->second;
}

// Parses "<prefix>I.J." at the start of `key`; returns false if it does not match.
bool parse_two_indices(const std::string& key, const std::string& prefix, int& first, int& second) {
  if (key.compare(0, prefix.size(), prefix) != 0) return false;
  const char* p = key.c_str() + prefix.size();
  char* end = nullptr;
  long a = std::strtol(p, &end, 10);
  if (end == p || *end != '.') return false;
  p = end + 1;
  long b = std::strtol(p, &end, 10);
  if (end == p || *end != '.') return false;
  if (a < 0 || a > 1000000 || b < 0 || b > 1000000) return false;
  first = static_cast<int>(a);
  second = static_cast<int>(b);
  return true;
}

}  // namespace

// joints and depth_dim are not separable from the final layer alone (its out_channels is
// their product): we assume Human3.6M's 18 joints, or 17 when the count is not divisible
// by 18 (Human3.6M without the added Thorax); anything else is an error.
InferredArchitecture infer_architecture(const NamedTensors& tensors, const std::string& source) {
  std::map<std::string, const TensorData*> by_name;
  for (const auto& [name, tensor] : tensors) by_name[name] = &tensor;

  InferredArchitecture result;
  Architecture& arch = result.arch;

  const TensorData& stem = require(by_name, "backbone.downsample_layers.0.0.weight", 4, source);
  if (stem.shape[1] != 3)
    throw Error(source + ": stem conv 'backbone.downsample_layers.0.0.weight' has " +
                std::to_string(stem.shape[1]) + " input channels, expected 3 (RGB)");
  arch.dims[0] = static_cast<int>(stem.shape[0]);
  for (int i = 1; i < 4; ++i) {
    const std::string key = "backbone.downsample_layers." + std::to_string(i) + ".1.weight";
    const TensorData& conv = require(by_name, key, 4, source);
    if (conv.shape[1] != arch.dims[i - 1])
      throw Error(source + ": '" + key + "' has " + std::to_string(conv.shape[1]) +
                  " input channels but the previous stage has " + std::to_string(arch.dims[i - 1]));
    arch.dims[i] = static_cast<int>(conv.shape[0]);
  }

  std::array<int, 4> max_block{-1, -1, -1, -1};
  for (const auto& [name, tensor] : tensors) {
    int stage = 0, block = 0;
    if (!parse_two_indices(name, "backbone.stages.", stage, block)) continue;
    if (stage > 3) throw Error(source + ": unexpected stage index in '" + name + "'");
    max_block[stage] = std::max(max_block[stage], block);
  }
  for (int i = 0; i < 4; ++i) {
    if (max_block[i] < 0)
      throw Error(source + ": no blocks for backbone stage " + std::to_string(i) +
                  " (no 'backbone.stages." + std::to_string(i) + ".*' keys)");
    arch.depths[i] = max_block[i] + 1;
  }

  int cin = arch.dims[3];
  for (int k = 1; k <= 3; ++k) {
    const std::string key = "head.deconv_layers_" + std::to_string(k) + ".pwconv.weight";
    const TensorData& pw = require(by_name, key, 4, source);
    if (pw.shape[1] != cin)
      throw Error(source + ": '" + key + "' has " + std::to_string(pw.shape[1]) +
                  " input channels, expected " + std::to_string(cin));
    if (k == 1) arch.head_channels = static_cast<int>(pw.shape[0]);
    if (pw.shape[0] != arch.head_channels)
      throw Error(source + ": head layers disagree on head_channels ('" + key + "' has " +
                  std::to_string(pw.shape[0]) + ", layer 1 has " +
                  std::to_string(arch.head_channels) + ")");
    cin = arch.head_channels;
  }

  const TensorData& final_layer = require(by_name, "head.final_layer.weight", 4, source);
  const int64_t out = final_layer.shape[0];
  if (out % 18 == 0) {
    arch.joints = 18;
  } else if (out % 17 == 0) {
    arch.joints = 17;
  } else {
    throw Error(source + ": head.final_layer has " + std::to_string(out) +
                " output channels, not a multiple of 18 (or 17) joints");
  }
  arch.depth_dim = static_cast<int>(out / arch.joints);
  // Released convention: depth_dim 64 <-> 3-UP, otherwise 2-UP (not in the weights).
  arch.head_upsample = {true, true, arch.depth_dim == 64};
  result.upsample_known = false;
  return result;
}

}  // namespace cnp::model
