// `cnp inspect CHECKPOINT`: what a checkpoint file holds (format, epoch, every tensor)
// and which architecture and registered variant it looks like.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "model/architecture.h"
#include "model/architecture_json.h"
#include "model/checkpoint.h"
#include "model/remap.h"

namespace {

using namespace cnp::model;

bool is_bn_buffer(const std::string& key) {
  for (const char* suffix : {"running_mean", "running_var", "num_batches_tracked"}) {
    const std::string s = suffix;
    if (key.size() >= s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0) return true;
  }
  return false;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int run_inspect(const std::string& path, bool as_json) {
  const Checkpoint checkpoint = read_checkpoint(path);
  const NamedTensors remapped = remap_keys(checkpoint.tensors);
  int64_t parameters = 0;
  for (const auto& [key, tensor] : remapped)
    if (!is_bn_buffer(key)) parameters += tensor.numel();

  nlohmann::json out;
  out["path"] = path;
  out["sha256"] = cnp::sha256_file(path);
  out["format"] = checkpoint.format;
  out["archive_name"] = checkpoint.archive_name;
  out["container_key"] = checkpoint.container_key;
  out["epoch"] = checkpoint.epoch ? nlohmann::json(*checkpoint.epoch) : nullptr;
  out["tensor_count"] = checkpoint.tensors.size();
  out["total_elements"] = checkpoint.total_elements();
  out["parameters"] = parameters;
  nlohmann::json tensors = nlohmann::json::array();
  for (size_t i = 0; i < checkpoint.tensors.size(); ++i) {
    const auto& [key, tensor] = checkpoint.tensors[i];
    nlohmann::json t;
    t["name"] = key;
    t["remapped"] = remapped[i].first;
    t["dtype"] = dtype_name(tensor.dtype);
    t["shape"] = tensor.shape;
    tensors.push_back(t);
  }
  out["tensors"] = tensors;

  const auto registry = VariantRegistry::with_builtins();
  std::vector<std::string> matches;
  try {
    const InferredArchitecture inferred = infer_architecture(remapped, path);
    const Architecture& a = inferred.arch;
    nlohmann::json arch = architecture_to_json<nlohmann::json>(a);
    arch["upsample_known"] = inferred.upsample_known;
    arch["heatmap_size"] = a.heatmap_size(256);
    arch["parameters"] = parameter_count(a);
    arch["macs"] = mac_count(a, 256);
    arch["description"] = a.describe();
    out["architecture"] = arch;
    for (const Variant* v : registry.matching(a, inferred.upsample_known))
      matches.push_back(v->name);
    out["architecture_error"] = nullptr;
  } catch (const cnp::Error& e) {
    out["architecture"] = nullptr;
    out["architecture_error"] = e.what();
  }
  out["matching_variants"] = matches;

  if (as_json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("checkpoint:   %s\n", path.c_str());
  std::printf("format:       %s%s%s\n", checkpoint.format.c_str(),
              checkpoint.archive_name.empty() ? "" : ", archive ", checkpoint.archive_name.c_str());
  std::printf("container:    %s\n", checkpoint.container_key.empty()
                                        ? "(bare state_dict)"
                                        : ("'" + checkpoint.container_key + "'").c_str());
  std::printf("epoch:        %s\n",
              checkpoint.epoch ? std::to_string(*checkpoint.epoch).c_str() : "(none)");
  std::printf("tensors:      %zu (%lld elements, %lld learnable parameters)\n",
              checkpoint.tensors.size(), static_cast<long long>(checkpoint.total_elements()),
              static_cast<long long>(parameters));
  if (out["architecture"].is_null()) {
    std::printf("architecture: not recognised: %s\n",
                out["architecture_error"].get<std::string>().c_str());
  } else {
    std::printf("architecture: %s\n",
                out["architecture"]["description"].get<std::string>().c_str());
    std::printf(
        "              (the upsample pattern is not in the weights: depth_dim 64 is "
        "assumed 3-UP, else 2-UP)\n");
  }
  std::string names;
  for (const auto& m : matches) names += (names.empty() ? "" : ", ") + m;
  std::printf("variant:      %s\n",
              names.empty() ? "none of the registered variants matches" : names.c_str());
  std::printf("\n%-60s %-8s %s\n", "tensor", "dtype", "shape");
  for (const auto& [key, tensor] : checkpoint.tensors)
    std::printf("%-60s %-8s %s\n", key.c_str(), dtype_name(tensor.dtype),
                shape_string(tensor.shape).c_str());
  return 0;
}

cnp::apps::CommandRegistration registration({
    "inspect",
    "Show a checkpoint's format, epoch, tensors, inferred architecture and matching variant",
    [](CLI::App& sub) -> std::function<int()> {
      auto path = std::make_shared<std::string>();
      auto json = std::make_shared<bool>(false);
      sub.add_option("checkpoint", *path, "Checkpoint file (.pth, .pth.tar; zip or legacy)")
          ->required();
      sub.add_flag("--json", *json, "Print JSON");
      return [path, json] { return run_inspect(*path, *json); };
    },
});

}  // namespace
