#pragma once
// The ConvNeXtPose architecture as plain data (REFERENCE.md §1-2) and the variant
// registry. A variant is data, never code: user variants come from the sweep YAML.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/checkpoint.h"

namespace cnp::model {

struct Architecture {
  std::array<int, 4> depths{};
  std::array<int, 4> dims{};
  int head_channels = 0;
  std::array<bool, 3> head_upsample{};  // per DeConv layer
  int depth_dim = 0;
  int joints = 18;

  int num_upsamples() const;
  // Heatmap side for a given input side: input / 32 * 2^ups (8 * 2^ups at 256).
  int heatmap_size(int input_size = 256) const;
  bool operator==(const Architecture& other) const;
  bool operator!=(const Architecture& other) const { return !(*this == other); }
  std::string describe()
      const;  // "depths 3,3,9,3 dims 48,... head 512 ups T,T,T depth_dim 64 joints 18"
  void validate(const std::string& where) const;  // throws cnp::Error naming `where`
};

struct Variant {
  std::string name;
  Architecture arch;
  std::optional<double> published_mpjpe;     // protocol 2, mm
  std::optional<double> published_pa_mpjpe;  // protocol 1, mm
  bool builtin = false;
};

class VariantRegistry {
 public:
  static VariantRegistry with_builtins();  // XS, S, M, L
  void add(const Variant& variant);        // throws on a duplicate name
  const Variant* find(const std::string& name) const;
  const Variant& get(const std::string& name) const;  // throws naming the variant
  // Variants whose architecture equals `arch`; when upsampling is unknown, ignores
  // head_upsample in the comparison.
  std::vector<const Variant*> matching(const Architecture& arch,
                                       bool compare_upsample = true) const;
  const std::vector<Variant>& all() const { return variants_; }

 private:
  std::vector<Variant> variants_;
};

int64_t parameter_count(const Architecture& arch);  // learnable parameters (no BN buffers)
int64_t mac_count(const Architecture& arch, int input_size = 256);
// What the optimized path computes: mac_count less what moving the final 1x1 conv before the
// head's last bilinear upsample saves, where that layer upsamples (M: 32%, L: 42%).
int64_t optimized_mac_count(const Architecture& arch, int input_size = 256);

// Architecture recovered from (already remapped) state-dict shapes. The upsample
// pattern is not in the weights: `upsample_known` is false and head_upsample holds
// the released convention (depth_dim 64 -> 3-UP, else 2-UP) until a variant fixes it.
struct InferredArchitecture {
  Architecture arch;
  bool upsample_known = false;
};
InferredArchitecture infer_architecture(const NamedTensors& tensors, const std::string& source);

}  // namespace cnp::model
