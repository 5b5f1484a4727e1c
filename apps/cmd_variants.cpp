// `cnp variants`: the variant registry with parameters and MACs computed from each
// architecture (not copied from the paper) next to the published Human3.6M results.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "model/architecture.h"
#include "model/architecture_json.h"

namespace {

using cnp::model::Variant;

std::string ints(const std::array<int, 4>& v) {
  return std::to_string(v[0]) + "," + std::to_string(v[1]) + "," + std::to_string(v[2]) + "," +
         std::to_string(v[3]);
}

std::string ups(const std::array<bool, 3>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += std::string(i ? "," : "") + (v[i] ? "T" : "F");
  return s;
}

std::string optional_mm(const std::optional<double>& value) {
  if (!value) return "-";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", *value);
  return buffer;
}

nlohmann::json variant_json(const Variant& v) {
  const auto& a = v.arch;
  nlohmann::json j = cnp::model::architecture_to_json<nlohmann::json>(a);
  j["name"] = v.name;
  j["builtin"] = v.builtin;
  j["heatmap_size"] = a.heatmap_size(256);
  j["parameters"] = cnp::model::parameter_count(a);
  j["macs"] = cnp::model::mac_count(a, 256);
  j["published_mpjpe"] = v.published_mpjpe ? nlohmann::json(*v.published_mpjpe) : nullptr;
  j["published_pa_mpjpe"] = v.published_pa_mpjpe ? nlohmann::json(*v.published_pa_mpjpe) : nullptr;
  return j;
}

cnp::apps::CommandRegistration registration({
    "variants",
    "List the model variants with parameters, MACs and published results",
    [](CLI::App& sub) -> std::function<int()> {
      auto json = std::make_shared<bool>(false);
      sub.add_flag("--json", *json, "Print JSON instead of a table");
      return [json] {
        const auto registry = cnp::model::VariantRegistry::with_builtins();
        if (*json) {
          nlohmann::json out = nlohmann::json::array();
          for (const auto& v : registry.all()) out.push_back(variant_json(v));
          std::cout << out.dump(2) << "\n";
          return 0;
        }
        std::printf("%-8s %-9s %-16s %5s %-6s %5s %8s %9s %7s %9s %9s\n", "variant", "depths",
                    "dims", "head", "ups", "depth", "heatmap", "params", "GMACs", "MPJPE",
                    "PA-MPJPE");
        for (const auto& v : registry.all()) {
          const auto& a = v.arch;
          const int side = a.heatmap_size(256);
          std::printf("%-8s %-9s %-16s %5d %-6s %5d %8s %8.2fM %7.2f %9s %9s\n", v.name.c_str(),
                      ints(a.depths).c_str(), ints(a.dims).c_str(), a.head_channels,
                      ups(a.head_upsample).c_str(), a.depth_dim,
                      (std::to_string(side) + "x" + std::to_string(side)).c_str(),
                      cnp::model::parameter_count(a) / 1e6, cnp::model::mac_count(a, 256) / 1e9,
                      optional_mm(v.published_mpjpe).c_str(),
                      optional_mm(v.published_pa_mpjpe).c_str());
        }
        std::printf(
            "params: learnable weights (BatchNorm buffers excluded); GMACs: multiply-accumulates "
            "of all convolutions at 256x256; MPJPE: protocol 2, PA-MPJPE: protocol 1, mm "
            "(paper)\n");
        return 0;
      };
    },
});

}  // namespace
