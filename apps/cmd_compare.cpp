// `cnp compare RESULT_DIR... [--output DIR] [--json]`: comparison report from the
// job files and samples.h5 of one or more finished sweeps (no inference).
#include <iostream>

#include "apps/commands.h"
#include "common/error.h"
#include "model/architecture.h"
#include "pipeline/report.h"

namespace {

struct CompareOptions {
  std::vector<std::string> dirs;
  std::string output;
  bool json = false;
};

cnp::apps::CommandRegistration registration({
    "compare",
    "Compare finished sweeps: every metric recomputed from samples.h5, paired bootstrap "
    "intervals against the best job, best epoch per variant, paper values",
    [](CLI::App& sub) -> std::function<int()> {
      auto options = std::make_shared<CompareOptions>();
      sub.add_option("result_dirs", options->dirs,
                     "Sweep output directories (each holds jobs/*.json)")
          ->required();
      sub.add_option("--output", options->output,
                     "Also write comparison.json, .md, .html and the pictures "
                     "(epochs, actions, joints as .svg and .png) here");
      sub.add_flag("--json", options->json, "Print JSON instead of Markdown");
      return [options] {
        std::vector<cnp::pipeline::JobResult> results;
        for (const auto& dir : options->dirs) {
          auto loaded = cnp::pipeline::load_job_results(dir);
          if (loaded.empty()) throw cnp::Error(dir + ": no finished jobs (jobs/*.json)");
          for (auto& r : loaded) results.push_back(std::move(r));
        }
        // Built-in variants carry the published numbers; user variants have none.
        const auto registry = cnp::model::VariantRegistry::with_builtins();
        if (!options->output.empty())
          cnp::pipeline::write_comparison(options->output, results, registry);
        std::cout << (options->json ? cnp::pipeline::comparison_to_json(results, registry)
                                    : cnp::pipeline::comparison_to_markdown(results, registry));
        return 0;
      };
    },
});

}  // namespace
