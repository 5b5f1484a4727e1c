// `cnp pack`: preprocesses a Human3.6M test set into the packed HDF5 cache that the
// sweep reads (one file per protocol, box source and sample_every).
#include <chrono>
#include <iostream>

#include "apps/commands.h"
#include "data/cache.h"
#include "data/h36m.h"

namespace {

struct PackArgs {
  cnp::data::TestSetOptions options;
  std::string bbox = "gt";
  std::string out;
  int threads = 0;
};

cnp::apps::CommandRegistration registration({
    "pack",
    "Pack a Human3.6M test set (metadata + 256x256 crops) into an HDF5 cache",
    [](CLI::App& sub) -> std::function<int()> {
      auto args = std::make_shared<PackArgs>();
      sub.add_option("--root", args->options.root, "Human3.6M root (images/, annotations/)")
          ->required();
      sub.add_option("--protocol", args->options.protocol, "1 (S11) or 2 (S9, S11)")->required();
      sub.add_option("--bbox", args->bbox, "gt | detected")->capture_default_str();
      sub.add_option("--bbox-root", args->options.bbox_root_file,
                     "RootNet output file (required for --bbox detected)");
      sub.add_option("--sample-every", args->options.sample_every, "Keep frame_idx % N == 0")
          ->capture_default_str();
      sub.add_flag("--skip-bad-samples", args->options.skip_bad_samples,
                   "Skip samples with bad data instead of failing");
      sub.add_option("--threads", args->threads, "Decoder threads (0: all cores)")
          ->capture_default_str();
      sub.add_option("--out", args->out, "Cache directory")->required();
      return [args]() -> int {
        const auto start = std::chrono::steady_clock::now();
        args->options.box_source = cnp::data::parse_box_source(args->bbox);
        const cnp::data::TestSet set = cnp::data::load_test_set(args->options);
        const std::string path =
            cnp::data::ensure_cache(args->out, args->options, set, args->threads);
        cnp::data::CacheReader reader(path);
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::cout << path << ": " << reader.samples().size() << " samples";
        if (!set.skipped.empty()) std::cout << " (" << set.skipped.size() << " skipped)";
        std::cout << ", " << seconds << " s\n";
        return 0;
      };
    },
});

}  // namespace
