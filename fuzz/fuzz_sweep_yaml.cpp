// libFuzzer target: the sweep file parser (YAML -> SweepConfig, every check included). An
// optional first line "#set KEY=VALUE" becomes a --set override, so those are fuzzed too.
// A cnp::Error is the expected answer; yaml-cpp exceptions must not escape.
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "jobs/sweep.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> overrides;
  if (text.rfind("#set ", 0) == 0) {
    const size_t end = text.find('\n');
    overrides.push_back(text.substr(5, end == std::string::npos ? std::string::npos : end - 5));
  }
  try {
    const cnp::jobs::SweepConfig config = cnp::jobs::parse_sweep(text, "fuzz.yaml", overrides);
    (void)config.registry();
  } catch (const cnp::Error&) {
  }
  return 0;
}
