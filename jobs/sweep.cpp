// Sweep file parsing and validation. yaml-cpp parses; the schema checks are
// hand-written because every error must be one line "file:line:col: message" naming
// the key, which a generic schema library would not give us with yaml-cpp marks.
#include "jobs/sweep.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <regex>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/files.h"
#include "jobs/grid.h"
#include "jobs/yaml_fields.h"

namespace cnp::jobs {
namespace {

using namespace yaml_fields;

// Bounds that catch a typo before it spawns 10^6 threads or allocates a 100 GB batch.
constexpr int kMaxThreadsPerRank = 256;
constexpr int kMaxBatchSize = 4096;

bool valid_variant_name(const std::string& name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '+';
  });
}

model::Variant parse_variant(const Context& ctx, const YAML::Node& key, const YAML::Node& body,
                             const std::string& path) {
  model::Variant v;
  v.name = key.Scalar();
  if (!valid_variant_name(v.name)) {
    ctx.fail(key, path, "variant name '" + v.name + "' may only use letters, digits and - _ . +");
  }
  if (model::VariantRegistry::with_builtins().find(v.name)) {
    ctx.fail(key, path, "variant '" + v.name + "' in model.variants shadows a built-in variant");
  }
  MapReader m(ctx, body, path,
              {"depths", "dims", "head_channels", "head_upsample", "depth_dim", "joints",
               "published_mpjpe", "published_pa_mpjpe"});
  auto positive = [&](const YAML::Node& n, const std::string& p) {
    return as_positive_int(ctx, n, p);
  };
  auto boolean = [&](const YAML::Node& n, const std::string& p) { return as_bool(ctx, n, p); };
  v.arch.depths = fixed_list<4>(ctx, m.require("depths"), m.path("depths"), positive);
  v.arch.dims = fixed_list<4>(ctx, m.require("dims"), m.path("dims"), positive);
  v.arch.head_channels = as_positive_int(ctx, m.require("head_channels"), m.path("head_channels"));
  v.arch.head_upsample =
      fixed_list<3>(ctx, m.require("head_upsample"), m.path("head_upsample"), boolean);
  v.arch.depth_dim = as_positive_int(ctx, m.require("depth_dim"), m.path("depth_dim"));
  if (m.has("joints")) v.arch.joints = as_positive_int(ctx, m.get("joints"), m.path("joints"));
  if (m.has("published_mpjpe"))
    v.published_mpjpe = as_number(ctx, m.get("published_mpjpe"), m.path("published_mpjpe"));
  if (m.has("published_pa_mpjpe")) {
    v.published_pa_mpjpe =
        as_number(ctx, m.get("published_pa_mpjpe"), m.path("published_pa_mpjpe"));
  }
  v.arch.validate(ctx.where(key, path));
  return v;
}

void check_template(const Context& ctx, const YAML::Node& node, const std::string& path,
                    const std::string& templ) {
  try {
    resolve_template(templ, "v", 0, 0);
  } catch (const Error& e) {
    ctx.fail(node, path, "'" + path + "': " + e.what());
  }
}

std::vector<int> parse_epochs(const Context& ctx, const YAML::Node& node, const std::string& path) {
  if (node.IsScalar()) {
    long long value = 0;
    if (parse_int(node.Scalar(), value)) {
      if (value < 0) ctx.fail(node, path, "'" + path + "' must not be negative");
      return {static_cast<int>(value)};
    }
    try {
      return parse_epoch_range(node.Scalar());
    } catch (const Error& e) {
      ctx.fail(node, path, "'" + path + "': " + e.what());
    }
  }
  const auto items = as_items(ctx, node, path, false);
  std::vector<int> epochs;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string p = item_path(path, i, 0);
    const int e = as_int(ctx, items[i], p);
    if (e < 0) ctx.fail(items[i], p, "'" + p + "' must not be negative");
    epochs.push_back(e);
  }
  check_unique(ctx, items, epochs, path);
  return epochs;
}

// --set KEY=VALUE: VALUE is YAML; intermediate mappings are created as needed.
void apply_override(YAML::Node node, const std::vector<std::string>& parts, size_t index,
                    const Override& o, const YAML::Node& value) {
  const std::string& part = parts[index];
  if (!node.IsMap()) {
    throw Error("--set " + o.key + ": '" +
                join(std::vector<std::string>(parts.begin(), parts.begin() + index), ".") +
                "' is not a mapping");
  }
  if (index + 1 == parts.size()) {
    node[part] = value;
    return;
  }
  YAML::Node child = node[part];
  if (!child.IsDefined() || child.IsNull()) {
    node[part] = YAML::Node(YAML::NodeType::Map);
    child = node[part];
  }
  apply_override(child, parts, index + 1, o, value);
}

std::vector<Override> parse_overrides(const std::vector<std::string>& overrides) {
  std::vector<Override> out;
  for (const auto& text : overrides) {
    const auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw Error("--set " + text + ": expected KEY=VALUE (e.g. runtime.batch_size=8)");
    }
    Override o{text.substr(0, eq), text.substr(eq + 1)};
    std::stringstream parts(o.key);
    std::string part;
    while (std::getline(parts, part, '.')) {
      if (part.empty()) throw Error("--set " + o.key + ": empty component in key path");
    }
    if (o.key.back() == '.') throw Error("--set " + o.key + ": empty component in key path");
    out.push_back(o);
  }
  return out;
}

SweepConfig validate(const Context& ctx, const YAML::Node& root) {
  SweepConfig cfg;
  cfg.source_path = ctx.file();
  MapReader top(ctx, root, "", {"name", "output", "dataset", "model", "sweep", "runtime"});
  cfg.name = as_string(ctx, top.require("name"), "name");
  if (cfg.name.find('/') != std::string::npos)
    ctx.fail(top.get("name"), "name", "'name' must not contain '/'");
  cfg.output =
      top.has("output") ? as_string(ctx, top.get("output"), "output") : "results/" + cfg.name;

  // dataset
  {
    MapReader d(ctx, top.require("dataset"), "dataset",
                {"root", "bbox", "bbox_root", "sample_every", "cache", "skip_bad_samples"});
    cfg.dataset.root = as_string(ctx, d.require("root"), d.path("root"));
    if (d.has("bbox"))
      cfg.dataset.bbox = as_choice(ctx, d.get("bbox"), d.path("bbox"), {"gt", "detected"});
    if (d.has("bbox_root")) {
      cfg.dataset.bbox_root = as_string(ctx, d.get("bbox_root"), d.path("bbox_root"));
      check_template(ctx, d.get("bbox_root"), d.path("bbox_root"), cfg.dataset.bbox_root);
    } else if (cfg.dataset.bbox == "detected") {
      d.require("bbox_root");
    }
    if (d.has("sample_every")) {
      cfg.dataset.sample_every =
          as_positive_int(ctx, d.get("sample_every"), d.path("sample_every"));
    }
    if (d.has("cache")) cfg.dataset.cache = as_string(ctx, d.get("cache"), d.path("cache"));
    if (d.has("skip_bad_samples")) {
      cfg.dataset.skip_bad_samples =
          as_bool(ctx, d.get("skip_bad_samples"), d.path("skip_bad_samples"));
    }
  }

  // model
  YAML::Node checkpoint_node;
  {
    MapReader m(ctx, top.require("model"), "model", {"checkpoint", "variants"});
    checkpoint_node = m.require("checkpoint");
    cfg.model.checkpoint = as_string(ctx, checkpoint_node, m.path("checkpoint"));
    check_template(ctx, checkpoint_node, m.path("checkpoint"), cfg.model.checkpoint);
    if (m.has("variants")) {
      const YAML::Node vs = m.get("variants");
      if (!vs.IsMap())
        ctx.fail(vs, "model.variants",
                 "'model.variants' must be a mapping of name -> architecture");
      std::set<std::string> names;
      for (const auto& kv : vs) {
        const std::string path = "model.variants." + kv.first.Scalar();
        if (!names.insert(kv.first.Scalar()).second) {
          ctx.fail(kv.first, path,
                   "duplicate variant '" + kv.first.Scalar() + "' in model.variants");
        }
        cfg.model.variants.push_back(parse_variant(ctx, kv.first, kv.second, path));
      }
    }
  }

  // sweep
  {
    MapReader s(ctx, top.require("sweep"), "sweep", {"variants", "epochs", "protocols", "flip"});
    const model::VariantRegistry registry = cfg.registry();
    const auto vnodes = as_items(ctx, s.require("variants"), "sweep.variants", true);
    for (size_t i = 0; i < vnodes.size(); ++i) {
      const std::string p = item_path("sweep.variants", i, vnodes.size());
      const std::string name = as_string(ctx, vnodes[i], p);
      if (!registry.find(name)) {
        std::vector<std::string> known;
        for (const auto& v : registry.all()) known.push_back(v.name);
        ctx.fail(vnodes[i], p,
                 "unknown variant '" + name + "' in sweep.variants (known: " + join(known) + ")");
      }
      cfg.sweep.variants.push_back(name);
    }
    check_unique(ctx, vnodes, cfg.sweep.variants, "sweep.variants");

    cfg.sweep.epochs = parse_epochs(ctx, s.require("epochs"), "sweep.epochs");

    const auto pnodes = as_items(ctx, s.require("protocols"), "sweep.protocols", true);
    for (size_t i = 0; i < pnodes.size(); ++i) {
      const std::string p = item_path("sweep.protocols", i, pnodes.size());
      const int protocol = as_int(ctx, pnodes[i], p);
      if (protocol != 1 && protocol != 2) {
        ctx.fail(pnodes[i], p, "'" + p + "' must be 1 or 2 (got " + std::to_string(protocol) + ")");
      }
      cfg.sweep.protocols.push_back(protocol);
    }
    check_unique(ctx, pnodes, cfg.sweep.protocols, "sweep.protocols");

    if (s.has("flip")) {
      const auto fnodes = as_items(ctx, s.get("flip"), "sweep.flip", true);
      for (size_t i = 0; i < fnodes.size(); ++i) {
        cfg.sweep.flips.push_back(
            as_bool(ctx, fnodes[i], item_path("sweep.flip", i, fnodes.size())));
      }
      check_unique(ctx, fnodes, cfg.sweep.flips, "sweep.flip");
    } else {
      cfg.sweep.flips = {false};
    }

    // One checkpoint path for several grid points would silently evaluate the same
    // weights under different labels.
    const std::string& templ = cfg.model.checkpoint;
    if (cfg.sweep.variants.size() > 1 && templ.find("{variant}") == std::string::npos) {
      ctx.fail(checkpoint_node, "model.checkpoint",
               "'model.checkpoint' has no {variant} but sweep.variants lists several variants");
    }
    if (cfg.sweep.epochs.size() > 1 && templ.find("{epoch}") == std::string::npos) {
      ctx.fail(checkpoint_node, "model.checkpoint",
               "'model.checkpoint' has no {epoch} but sweep.epochs lists several epochs");
    }
  }

  // runtime
  if (top.has("runtime")) {
    MapReader r(ctx, top.get("runtime"), "runtime",
                {"batch_size", "device", "optimize", "precision", "threads_per_rank"});
    if (r.has("batch_size"))
      cfg.runtime.batch_size =
          as_auto_or_bounded(ctx, r.get("batch_size"), r.path("batch_size"), kMaxBatchSize);
    if (r.has("device"))
      cfg.runtime.device =
          as_choice(ctx, r.get("device"), r.path("device"), {"auto", "cpu", "cuda"});
    if (r.has("precision")) {
      cfg.runtime.precision =
          as_choice(ctx, r.get("precision"), r.path("precision"), {"fp32", "bf16", "fp16"});
    }
    if (r.has("threads_per_rank")) {
      cfg.runtime.threads_per_rank = as_auto_or_bounded(
          ctx, r.get("threads_per_rank"), r.path("threads_per_rank"), kMaxThreadsPerRank);
    }
    if (r.has("optimize"))
      cfg.runtime.optimize = as_bool(ctx, r.get("optimize"), r.path("optimize"));
  }
  return cfg;
}

}  // namespace

model::VariantRegistry SweepConfig::registry() const {
  model::VariantRegistry registry = model::VariantRegistry::with_builtins();
  for (const auto& v : model.variants) registry.add(v);
  return registry;
}

std::vector<int> parse_epoch_range(const std::string& text) {
  static const std::regex pattern(R"(^\s*(\d{1,9})\s*-\s*(\d{1,9})\s*(?::\s*(\d{1,9}))?\s*$)");
  std::smatch m;
  if (!std::regex_match(text, m, pattern)) {
    throw Error("bad epoch range '" + text +
                "' (expected FIRST-LAST or FIRST-LAST:STEP, e.g. 60-70)");
  }
  const int first = std::stoi(m[1]);
  const int last = std::stoi(m[2]);
  const int step = m[3].matched ? std::stoi(m[3]) : 1;
  if (first > last) throw Error("bad epoch range '" + text + "': first epoch is after the last");
  if (step < 1) throw Error("bad epoch range '" + text + "': step must be >= 1");
  if ((last - first) / step >= 100000)
    throw Error("bad epoch range '" + text + "': too many epochs");
  std::vector<int> epochs;
  for (int e = first; e <= last; e += step) epochs.push_back(e);
  return epochs;
}

SweepConfig parse_sweep(const std::string& yaml_text, const std::string& source_name,
                        const std::vector<std::string>& overrides) {
  const Context ctx(source_name, parse_overrides(overrides));
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw context_error(ctx.mark_location(e.mark), "YAML syntax error: " + e.msg);
  }
  if (!root.IsMap()) {
    throw context_error(source_name + ":1:1",
                        "the sweep file must be a mapping of keys (name, dataset, ...)");
  }
  for (const auto& o : parse_overrides(overrides)) {
    YAML::Node value;
    try {
      value = YAML::Load(o.value);
    } catch (const YAML::ParserException& e) {
      throw Error("--set " + o.key + ": cannot parse value '" + o.value + "': " + e.msg);
    }
    std::vector<std::string> parts;
    std::stringstream ss(o.key);
    for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
    apply_override(root, parts, 0, o, value);
  }
  try {
    return validate(ctx, root);
  } catch (const YAML::Exception& e) {
    // Conversion surprises inside yaml-cpp still become one clear line.
    throw context_error(ctx.mark_location(e.mark), e.msg);
  }
}

SweepConfig load_sweep(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw Error(path + ": is a folder, not a sweep file (YAML)");
  }
  return parse_sweep(read_file(path), path, overrides);
}

}  // namespace cnp::jobs
