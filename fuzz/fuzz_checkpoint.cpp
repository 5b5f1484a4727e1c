// libFuzzer target: read_checkpoint on arbitrary bytes (zip, legacy and the pickles inside).
// The reader takes a path, so each input goes into a memfd and is read through
// /proc/self/fd/N: no disk traffic. A cnp::Error is the expected answer to bad bytes;
// any other exception, a crash, a leak or a sanitizer report is a bug.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/error.h"
#include "model/checkpoint.h"

namespace {
int memory_file() {
  static const int fd = memfd_create("cnp_fuzz_checkpoint", 0);
  if (fd < 0) std::abort();
  return fd;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memory_file();
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size))
    std::abort();
  try {
    cnp::model::Checkpoint ck = cnp::model::read_checkpoint("/proc/self/fd/" + std::to_string(fd));
    // Touch what a caller would use.
    for (const auto& [name, tensor] : ck.tensors) {
      if (tensor.bytes.size() !=
          static_cast<size_t>(tensor.numel()) * cnp::model::dtype_size(tensor.dtype))
        std::abort();
      (void)tensor.to_float();
    }
  } catch (const cnp::Error&) {
  }
  return 0;
}
