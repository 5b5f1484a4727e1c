// libFuzzer target: the restricted unpickler on arbitrary bytes, in memory (fast), with
// the zip format's persistent-id rule. A cnp::Error is the expected answer.
#include <cstdint>

#include "common/error.h"
#include "model/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cnp::model::pickle;
  try {
    Unpickled u = unpickle(data, size, 0, [](const Unpickled& un, const Value& pid) {
      return storage_ref_from_pid(un, pid, 5);
    });
    // Walk the result as the checkpoint reader does.
    const Value& root = u.at(u.root);
    if (root.kind == Kind::Dict) (void)u.dict_get(root, "network");
  } catch (const cnp::Error&) {
  }
  return 0;
}
