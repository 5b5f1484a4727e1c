// Typed YAML reads with one-line errors (yaml_fields.h says why they are hand-written).
#include "jobs/yaml_fields.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <set>

namespace cnp::jobs::yaml_fields {

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::string child_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

std::string as_string(const Context& ctx, const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) ctx.fail(node, path, "'" + path + "' must be a string");
  if (node.Scalar().empty()) ctx.fail(node, path, "'" + path + "' must not be empty");
  return node.Scalar();
}

std::string as_choice(const Context& ctx, const YAML::Node& node, const std::string& path,
                      const std::vector<std::string>& choices) {
  const std::string value = as_string(ctx, node, path);
  if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
    ctx.fail(node, path,
             "'" + path + "' must be " + join(choices, " | ") + " (got '" + value + "')");
  }
  return value;
}

bool parse_int(const std::string& text, long long& out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtoll(text.c_str(), &end, 10);
  return errno == 0 && end && *end == '\0' && out >= INT32_MIN && out <= INT32_MAX;
}

int as_int(const Context& ctx, const YAML::Node& node, const std::string& path) {
  long long value = 0;
  if (!node.IsScalar() || !parse_int(node.Scalar(), value)) {
    ctx.fail(node, path,
             "'" + path + "' must be an integer" +
                 (node.IsScalar() ? " (got '" + node.Scalar() + "')" : std::string()));
  }
  return static_cast<int>(value);
}

int as_positive_int(const Context& ctx, const YAML::Node& node, const std::string& path) {
  const int value = as_int(ctx, node, path);
  if (value < 1)
    ctx.fail(node, path, "'" + path + "' must be >= 1 (got " + std::to_string(value) + ")");
  return value;
}

int as_auto_or_bounded(const Context& ctx, const YAML::Node& node, const std::string& path,
                       int max_value) {
  if (node.IsScalar() && node.Scalar() == "auto") return 0;
  long long value = 0;
  if (!node.IsScalar() || !parse_int(node.Scalar(), value) || value < 1) {
    ctx.fail(node, path,
             "'" + path + "' must be 'auto' or a positive integer" +
                 (node.IsScalar() ? " (got '" + node.Scalar() + "')" : std::string()));
  }
  if (value > max_value) {
    ctx.fail(node, path,
             "'" + path + "' is " + node.Scalar() + "; at most " + std::to_string(max_value) +
                 " is allowed");
  }
  return static_cast<int>(value);
}

bool as_bool(const Context& ctx, const YAML::Node& node, const std::string& path) {
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    ctx.fail(node, path,
             "'" + path + "' must be true or false" +
                 (node.IsScalar() ? " (got '" + node.Scalar() + "')" : std::string()));
  }
  return value;
}

double as_number(const Context& ctx, const YAML::Node& node, const std::string& path) {
  if (node.IsScalar()) {
    char* end = nullptr;
    const double value = std::strtod(node.Scalar().c_str(), &end);
    if (!node.Scalar().empty() && end && *end == '\0') return value;
  }
  ctx.fail(node, path, "'" + path + "' must be a number");
}

std::vector<YAML::Node> as_items(const Context& ctx, const YAML::Node& node,
                                 const std::string& path, bool allow_scalar) {
  std::vector<YAML::Node> items;
  if (node.IsSequence()) {
    for (const auto& item : node) items.push_back(item);
  } else if (allow_scalar && node.IsScalar()) {
    items.push_back(node);
  } else {
    ctx.fail(node, path, "'" + path + "' must be a list");
  }
  if (items.empty()) ctx.fail(node, path, "'" + path + "' must not be empty");
  return items;
}

std::string item_path(const std::string& path, size_t i, size_t n) {
  return n == 1 ? path : path + "[" + std::to_string(i) + "]";
}

}  // namespace cnp::jobs::yaml_fields
