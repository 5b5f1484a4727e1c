#pragma once
// Typed reads of YAML values for the sweep file, each failing with one line that names the
// key and where it is: "file:line:col" of the node, or "--set KEY" for a value given on the
// command line. Hand-written because yaml-cpp's own conversions throw without the key's
// path, and no schema library among the Debian packages reports yaml-cpp marks.
// Internal to cnp_jobs (sweep.cpp); callers use sweep.h.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"

namespace cnp::jobs::yaml_fields {

struct Override {
  std::string key;    // dotted path
  std::string value;  // raw YAML text
};

// Where an error points: "--set KEY" for values that came from an override,
// otherwise file:line:col of the node (1-based).
class Context {
 public:
  Context(std::string file, std::vector<Override> overrides)
      : file_(std::move(file)), overrides_(std::move(overrides)) {}

  std::string where(const YAML::Node& node, const std::string& path) const {
    for (const auto& o : overrides_) {
      if (path == o.key || path.rfind(o.key + ".", 0) == 0 || path.rfind(o.key + "[", 0) == 0) {
        return "--set " + o.key;
      }
    }
    if (node.Mark().is_null()) {
      // A mapping an override created on its way to its key.
      for (const auto& o : overrides_) {
        if (o.key.rfind(path + ".", 0) == 0) return "--set " + o.key;
      }
    }
    return mark_location(node.Mark());
  }
  std::string mark_location(const YAML::Mark& mark) const {
    if (mark.is_null()) return file_;
    return file_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  [[noreturn]] void fail(const YAML::Node& node, const std::string& path,
                         const std::string& message) const {
    throw context_error(where(node, path), message);
  }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<Override> overrides_;
};

std::string join(const std::vector<std::string>& items, const char* sep = ", ");
std::string child_path(const std::string& parent, const std::string& key);

// A mapping whose keys are checked against a fixed set (no unknown, no duplicate keys).
class MapReader {
 public:
  MapReader(const Context& ctx, const YAML::Node& node, std::string path,
            std::vector<std::string> allowed)
      : ctx_(ctx), node_(node), path_(std::move(path)) {
    const std::string label = path_.empty() ? "the top level" : path_;
    if (!node_.IsMap()) ctx_.fail(node_, path_, "'" + label + "' must be a mapping");
    std::sort(allowed.begin(), allowed.end());
    std::set<std::string> seen;
    for (const auto& kv : node_) {
      const std::string key = kv.first.Scalar();
      const std::string kpath = child_path(path_, key);
      if (!kv.first.IsScalar()) ctx_.fail(kv.first, kpath, "keys in " + label + " must be strings");
      if (!seen.insert(key).second)
        ctx_.fail(kv.first, kpath, "duplicate key '" + key + "' in " + label);
      if (!std::binary_search(allowed.begin(), allowed.end(), key)) {
        ctx_.fail(kv.first, kpath,
                  "unknown key '" + key + "' in " + label + " (expected: " + join(allowed) + ")");
      }
    }
  }
  bool has(const std::string& key) const { return node_[key].IsDefined(); }
  YAML::Node get(const std::string& key) const { return node_[key]; }
  YAML::Node require(const std::string& key) const {
    YAML::Node value = node_[key];
    if (!value.IsDefined()) {
      ctx_.fail(node_, child_path(path_, key),
                "missing required key '" + key + "' in " +
                    (path_.empty() ? std::string("the sweep file") : path_));
    }
    return value;
  }
  std::string path(const std::string& key) const { return child_path(path_, key); }
  const YAML::Node& node() const { return node_; }

 private:
  const Context& ctx_;
  YAML::Node node_;
  std::string path_;
};

std::string as_string(const Context& ctx, const YAML::Node& node, const std::string& path);
std::string as_choice(const Context& ctx, const YAML::Node& node, const std::string& path,
                      const std::vector<std::string>& choices);
// Base-10 text to a value in int's range (false for anything else).
bool parse_int(const std::string& text, long long& out);
int as_int(const Context& ctx, const YAML::Node& node, const std::string& path);
int as_positive_int(const Context& ctx, const YAML::Node& node, const std::string& path);
// "auto" -> 0, else an integer in [1, max_value].
int as_auto_or_bounded(const Context& ctx, const YAML::Node& node, const std::string& path,
                       int max_value);
bool as_bool(const Context& ctx, const YAML::Node& node, const std::string& path);
double as_number(const Context& ctx, const YAML::Node& node, const std::string& path);
// A sequence (or, where allowed, a single scalar standing for a one-item list).
std::vector<YAML::Node> as_items(const Context& ctx, const YAML::Node& node,
                                 const std::string& path, bool allow_scalar);
// "path[i]", or "path" alone for a one-item list.
std::string item_path(const std::string& path, size_t i, size_t n);

template <typename T>
void check_unique(const Context& ctx, const std::vector<YAML::Node>& nodes,
                  const std::vector<T>& values, const std::string& path) {
  for (size_t i = 0; i < values.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (values[i] == values[j]) {
        std::ostringstream v;
        v << std::boolalpha << values[i];
        ctx.fail(nodes[i], item_path(path, i, values.size()),
                 "duplicate entry '" + v.str() + "' in " + path);
      }
    }
  }
}

template <size_t N, typename F>
auto fixed_list(const Context& ctx, const YAML::Node& node, const std::string& path, F convert) {
  std::array<decltype(convert(node, path)), N> out{};
  if (!node.IsSequence() || node.size() != N) {
    ctx.fail(node, path, "'" + path + "' must be a list of " + std::to_string(N) + " values");
  }
  for (size_t i = 0; i < N; ++i) out[i] = convert(node[i], path + "[" + std::to_string(i) + "]");
  return out;
}

}  // namespace cnp::jobs::yaml_fields
