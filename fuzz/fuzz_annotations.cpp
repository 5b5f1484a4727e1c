// libFuzzer target: the Human3.6M annotation reader (streamed data and joint files, camera
// file, RootNet box file). The input is up to four sections separated by "\n#####\n":
// subject 11's data JSON, camera JSON, joint JSON and, when present, a RootNet box list
// (then boxes are "detected"). They are written to a private folder under /dev/shm and
// loaded with load_test_set. A cnp::Error is the expected answer.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "data/h36m.h"

namespace {
namespace fs = std::filesystem;

const std::string& root() {
  // Never destroyed: the atexit cleanup below runs after static destructors would.
  static const std::string* dir = [] {
    const fs::path base = fs::exists("/dev/shm") ? "/dev/shm" : fs::temp_directory_path();
    const fs::path d = base / ("cnp_fuzz_annotations_" + std::to_string(getpid()));
    fs::create_directories(d / "annotations");
    return new std::string(d.string());
  }();
  static const bool cleanup_registered = [] {
    return std::atexit([] {
             std::error_code ec;
             fs::remove_all(*dir, ec);
           }) == 0;
  }();
  (void)cleanup_registered;
  return *dir;
}

void put(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  const std::string sep = "\n#####\n";
  size_t begin = 0;
  while (parts.size() < 3) {
    const size_t at = text.find(sep, begin);
    if (at == std::string::npos) break;
    parts.push_back(text.substr(begin, at - begin));
    begin = at + sep.size();
  }
  parts.push_back(text.substr(begin));
  parts.resize(4);
  const std::string dir = root() + "/annotations/Human36M_subject11_";
  put(dir + "data.json", parts[0]);
  put(dir + "camera.json", parts[1]);
  put(dir + "joint_3d.json", parts[2]);
  cnp::data::TestSetOptions options;
  options.root = root();
  options.protocol = 1;
  options.sample_every = 1;
  options.check_images = false;
  options.skip_bad_samples = size % 2 == 1;
  if (!parts[3].empty()) {
    options.box_source = cnp::data::BoxSource::Detected;
    options.bbox_root_file = root() + "/bbox_root.json";
    put(options.bbox_root_file, parts[3]);
  }
  try {
    (void)cnp::data::load_test_set(options);
  } catch (const cnp::Error&) {
  }
  return 0;
}
