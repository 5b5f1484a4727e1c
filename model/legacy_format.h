#pragma once
// PyTorch's legacy (non-zip) checkpoint format: five pickles back to back
// (magic number, protocol version, sys info, the object, the storage keys), then
// per storage key an int64 element count and the raw little-endian bytes.
#include <cstddef>
#include <string>
#include <unordered_map>

#include "model/pickle.h"

namespace cnp::model::legacy {

struct Span {
  size_t offset = 0;  // into the file bytes
  size_t bytes = 0;
};

struct Parsed {
  pickle::Unpickled object;
  std::unordered_map<std::string, Span> storages;  // root storage key -> its bytes
};

// Parses the whole file (kept in memory by the caller). Throws cnp::Error
// without the file name (the caller adds it).
Parsed parse(const std::string& data);

}  // namespace cnp::model::legacy
