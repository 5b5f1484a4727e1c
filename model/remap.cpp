// Checkpoint key remapping (REFERENCE.md §3): the key schemes found in the wild are
// rewritten, rule by rule in a fixed order, into the names our network registers.
// Hand-written string handling instead of std::regex: the rules are simple prefix and
// component rewrites, and keeping them as small functions keeps each one readable.
#include "model/remap.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <cstring>
#include <map>

#include "common/error.h"

namespace cnp::model {

namespace {

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

std::string join_key(const std::vector<std::string>& parts) {
  std::string key;
  for (size_t i = 0; i < parts.size(); ++i) key += (i ? "." : "") + parts[i];
  return key;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_index(const std::string& s) {
  return !s.empty() && s.size() < 7 && s.find_first_not_of("0123456789") == std::string::npos;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t square_side(int64_t volume) {
  const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(volume))));
  if (side < 1 || side * side != volume)
    throw Error("kernel volume " + std::to_string(volume) + " is not a square 2-D kernel");
  return side;
}

// MinkowskiEngine stores a 2-D convolution kernel as (kernel_volume, in, out) and a
// depthwise one as (kernel_volume, channels). Kernel row r enumerates the offsets with
// the height index fastest: r = w * ks + h (the order ConvNeXt-V2's own FCMAE-to-dense
// conversion assumes: reshape to (.., ks, ks) and swap the two spatial axes). So
//   standard:  weight[o][i][h][w] = kernel[w * ks + h][i][o]  -> (out, in, ks, ks)
//   depthwise: weight[c][0][h][w] = kernel[w * ks + h][c]     -> (channels, 1, ks, ks)
void minkowski_kernel_to_conv_weight(TensorData& tensor) {
  const size_t elem = dtype_size(tensor.dtype);
  const auto& s = tensor.shape;
  int64_t volume = 0, cin = 0, cout = 0;
  bool depthwise = false;
  if (s.size() == 3) {
    volume = s[0];
    cin = s[1];
    cout = s[2];
  } else if (s.size() == 2) {
    volume = s[0];
    cin = cout = s[1];
    depthwise = true;
  } else {
    throw Error("a MinkowskiEngine kernel must have 2 (depthwise) or 3 dimensions");
  }
  const int64_t ks = square_side(volume);
  const int64_t numel = volume * cin * (depthwise ? 1 : cout);
  if (static_cast<int64_t>(tensor.bytes.size()) != numel * static_cast<int64_t>(elem))
    throw Error(std::to_string(tensor.bytes.size()) + " bytes do not match the shape");
  std::vector<uint8_t> out(tensor.bytes.size());
  const int64_t in_per_group = depthwise ? 1 : cin;
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t i = 0; i < in_per_group; ++i)
      for (int64_t h = 0; h < ks; ++h)
        for (int64_t w = 0; w < ks; ++w) {
          const int64_t row = w * ks + h;
          const int64_t src = depthwise ? row * cout + o : (row * cin + i) * cout + o;
          const int64_t dst = ((o * in_per_group + i) * ks + h) * ks + w;
          std::memcpy(&out[dst * elem], &tensor.bytes[src * elem], elem);
        }
  tensor.bytes = std::move(out);
  tensor.shape = {cout, in_per_group, ks, ks};
}

const char* kHeadLayerNames[3] = {"dwconv", "norm", "pwconv"};

// "0"/"1"/"2" or an already named part -> the canonical head sublayer name, or "".
std::string head_sublayer(const std::string& part) {
  if (is_index(part)) {
    int index = std::stoi(part);
    return index <= 2 ? kHeadLayerNames[index] : "";
  }
  for (const char* name : kHeadLayerNames)
    if (part == name) return part;
  return "";
}

std::vector<RemapRule> make_rules() {
  std::vector<RemapRule> rules;
  rules.push_back({"strip DataParallel 'module.' prefix",
                   "module.X -> X (repeated for nested wrappers)",
                   [](std::string& key, TensorData&) {
                     bool changed = false;
                     while (starts_with(key, "module.")) {
                       key.erase(0, 7);
                       changed = true;
                     }
                     return changed;
                   }});
  rules.push_back({"ConvNeXt-V2 'encoder.' prefix", "encoder.X -> backbone.X (FCMAE checkpoints)",
                   [](std::string& key, TensorData&) {
                     if (!starts_with(key, "encoder.")) return false;
                     key = "backbone." + key.substr(8);
                     return true;
                   }});
  rules.push_back({"ConvNeXt-V2 MinkowskiEngine kernel",
                   "X.kernel (volume, in, out) or (volume, C) -> X.weight (out, in, k, k)",
                   [](std::string& key, TensorData& tensor) {
                     if (!ends_with(key, ".kernel")) return false;
                     minkowski_kernel_to_conv_weight(tensor);
                     key = key.substr(0, key.size() - 7) + ".weight";
                     return true;
                   }});
  rules.push_back({"ConvNeXt-V2 'ln'/'linear' wrappers",
                   "X.ln.Y -> X.Y and X.linear.Y -> X.Y (MinkowskiLayerNorm / MinkowskiLinear)",
                   [](std::string& key, TensorData&) {
                     auto parts = split_key(key);
                     if (parts.size() < 3) return false;
                     const std::string& wrapper = parts[parts.size() - 2];
                     if (wrapper != "ln" && wrapper != "linear") return false;
                     parts.erase(parts.end() - 2);
                     key = join_key(parts);
                     return true;
                   }});
  rules.push_back(
      {"ConvNeXt-V2 bias shape", "X.bias (1, C) -> (C)", [](std::string& key, TensorData& tensor) {
         if (!ends_with(key, ".bias") || tensor.shape.size() < 2) return false;
         for (size_t i = 0; i + 1 < tensor.shape.size(); ++i)
           if (tensor.shape[i] != 1) return false;
         tensor.shape = {tensor.shape.back()};
         return true;
       }});
  rules.push_back({"ConvNeXt-V2 GRN parameters", "grn.gamma/grn.beta (1, C) -> (1, 1, 1, C)",
                   [](std::string& key, TensorData& tensor) {
                     if (!ends_with(key, ".grn.gamma") && !ends_with(key, ".grn.beta"))
                       return false;
                     if (tensor.shape.size() != 2 || tensor.shape[0] != 1) return false;
                     tensor.shape = {1, 1, 1, tensor.shape[1]};
                     return true;
                   }});
  rules.push_back({"pointwise Linear -> 1x1 conv",
                   "stages.I.J.pwconv{1,2}.weight (out, in) -> (out, in, 1, 1)",
                   [](std::string& key, TensorData& tensor) {
                     if (!starts_with(key, "backbone.stages.") || tensor.shape.size() != 2)
                       return false;
                     if (!ends_with(key, ".pwconv1.weight") && !ends_with(key, ".pwconv2.weight"))
                       return false;
                     tensor.shape = {tensor.shape[0], tensor.shape[1], 1, 1};
                     return true;
                   }});
  rules.push_back(
      {"head ModuleList",
       "head.deconv_layers.L.{0,1,2}.X -> head.deconv_layers_{L+1}.{dwconv,norm,pwconv}.X",
       [](std::string& key, TensorData&) {
         auto parts = split_key(key);
         if (parts.size() < 5 || parts[0] != "head" || parts[1] != "deconv_layers" ||
             !is_index(parts[2]))
           return false;
         const std::string sub = head_sublayer(parts[3]);
         const int layer = std::stoi(parts[2]);
         if (sub.empty() || layer > 2) return false;
         std::vector<std::string> out{"head", "deconv_layers_" + std::to_string(layer + 1), sub};
         out.insert(out.end(), parts.begin() + 4, parts.end());
         key = join_key(out);
         return true;
       }});
  rules.push_back({"head nn.Sequential indices",
                   "head.deconv_layers_K.{0,1,2}.X -> head.deconv_layers_K.{dwconv,norm,pwconv}.X",
                   [](std::string& key, TensorData&) {
                     auto parts = split_key(key);
                     if (parts.size() < 4 || parts[0] != "head" ||
                         !starts_with(parts[1], "deconv_layers_") || !is_index(parts[2]))
                       return false;
                     const std::string sub = head_sublayer(parts[2]);
                     if (sub.empty()) return false;
                     parts[2] = sub;
                     key = join_key(parts);
                     return true;
                   }});
  return rules;
}

}  // namespace

const std::vector<RemapRule>& default_remap_rules() {
  static const std::vector<RemapRule> rules = make_rules();
  return rules;
}

NamedTensors remap_keys(NamedTensors tensors, const std::vector<RemapRule>& rules) {
  std::map<std::string, std::string> origin;  // new key -> original key
  std::vector<int> hits(rules.size(), 0);
  for (auto& [key, tensor] : tensors) {
    const std::string original = key;
    for (size_t r = 0; r < rules.size(); ++r) {
      try {
        if (rules[r].apply(key, tensor)) ++hits[r];
      } catch (const Error& e) {
        throw Error("checkpoint tensor '" + original + "' " + shape_string(tensor.shape) + ": " +
                    rules[r].name + ": " + e.what());
      }
    }
    auto [it, inserted] = origin.emplace(key, original);
    if (!inserted)
      throw Error("checkpoint keys '" + it->second + "' and '" + original + "' both map to '" +
                  key + "' after remapping");
  }
  for (size_t r = 0; r < rules.size(); ++r)
    if (hits[r] > 0) spdlog::debug("remap: {} ({} keys)", rules[r].name, hits[r]);
  return tensors;
}

}  // namespace cnp::model
