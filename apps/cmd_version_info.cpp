// `cnp env`: what this build links against, for bug reports.
#include <iostream>

#include "apps/commands.h"
#include "common/version.h"

namespace {
cnp::apps::CommandRegistration registration({
    "env",
    "Print the build configuration (version, NCCL option)",
    [](CLI::App&) -> std::function<int()> {
      return [] {
        std::cout << "cnp " << CNP_VERSION << "\n";
#ifdef CNP_HAVE_NCCL
        std::cout << "nccl: built\n";
#else
        std::cout << "nccl: not built (configure with -DCNP_WITH_NCCL=ON)\n";
#endif
        return 0;
      };
    },
});
}  // namespace
