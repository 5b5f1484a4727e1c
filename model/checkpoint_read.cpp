// read_checkpoint and parse_checkpoint: zip (torch >= 1.6) and legacy PyTorch checkpoints,
// from a file or from its bytes in memory, without LibTorch. The pickles go through the
// restricted unpickler of pickle_reader.cpp (see pickle_reader.h for why it is hand-written);
// storages are read with libzip or from the legacy byte stream, and every tensor is materialised
// contiguous.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <unordered_map>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/legacy_format.h"
#include "model/pickle.h"
#include "model/zip_archive.h"

namespace cnp::model {
namespace {

using pickle::Kind;
using pickle::StorageRef;
using pickle::TensorRef;
using pickle::Unpickled;
using pickle::Value;

constexpr int64_t kMaxElements = int64_t(1) << 40;
constexpr uint64_t kMaxPickleBytes = uint64_t(64) << 20;

// The file (or its first `limit` bytes) in one read of its known size
// (cnp::read_file grows a stream buffer: much slower on a 30 MB checkpoint).
std::string read_whole_file(const std::string& path, size_t limit = SIZE_MAX) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not a file");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!file) throw Error(path + ": cannot open for reading: " + std::strerror(errno));
  std::string data;
  if (std::fseek(file.get(), 0, SEEK_END) == 0) {
    long size = std::ftell(file.get());
    if (size > 0) data.resize(std::min(static_cast<size_t>(size), limit));
    std::rewind(file.get());
  }
  size_t got = std::fread(data.data(), 1, data.size(), file.get());
  if (got != data.size() || std::ferror(file.get()))
    throw Error(path + ": read failed (the file changed or is unreadable)");
  // Files that do not report their size (pipes) are read to the end in blocks.
  char block[65536];
  while (data.size() < limit) {
    size_t n = std::fread(block, 1, std::min(sizeof block, limit - data.size()), file.get());
    if (n == 0) break;
    data.append(block, n);
  }
  return data;
}

// Where the bytes of each root storage come from.
// A storage's declared size: numel elements of its dtype. Its data must hold exactly
// this many bytes; anything else is refused before a byte is inflated or copied.
size_t declared_bytes(const StorageRef& s) {
  const size_t elem = dtype_size(s.dtype);
  if (s.numel < 0 || s.numel > kMaxElements)
    throw Error("storage '" + s.key + "' declares an impossible " + std::to_string(s.numel) +
                " elements");
  return static_cast<size_t>(s.numel) * elem;
}

std::string size_mismatch(const StorageRef& s, uint64_t actual) {
  return "storage '" + s.key + "' holds " + std::to_string(actual) + " bytes but declares " +
         std::to_string(s.numel) + " " + dtype_name(s.dtype) + " elements (" +
         std::to_string(declared_bytes(s)) + " bytes)";
}

class StorageSource {
 public:
  virtual ~StorageSource() = default;
  // All bytes of storage `s.key`: exactly declared_bytes(s), else an Error.
  virtual std::pair<const uint8_t*, size_t> get(const StorageRef& s) = 0;
  // The bytes as a vector the caller may keep (zip: no copy); empty if unsupported.
  virtual std::vector<uint8_t> take(const std::string&) { return {}; }
};

class ZipStorages : public StorageSource {
 public:
  ZipStorages(const zip::Reader& reader, std::string prefix)
      : reader_(reader), prefix_(std::move(prefix)) {}
  std::pair<const uint8_t*, size_t> get(const StorageRef& s) override {
    auto it = cache_.find(s.key);
    if (it == cache_.end()) it = cache_.emplace(s.key, load(s)).first;
    if (it->second.size() != declared_bytes(s)) throw Error(size_mismatch(s, it->second.size()));
    return {it->second.data(), it->second.size()};
  }
  std::vector<uint8_t> take(const std::string& key) override {
    auto it = cache_.find(key);
    if (it == cache_.end()) return {};
    std::vector<uint8_t> out = std::move(it->second);
    cache_.erase(it);
    return out;
  }

 private:
  std::vector<uint8_t> load(const StorageRef& s) {
    std::string name = prefix_ + "data/" + s.key;
    if (!reader_.has(name))
      throw Error("storage '" + s.key + "' is missing (no zip entry " + name + ")");
    // The central directory's size, checked before allocating or inflating anything:
    // a small entry that would inflate far past its declared elements is refused here.
    const uint64_t stated = reader_.size(name);
    if (stated != declared_bytes(s)) throw Error(size_mismatch(s, stated));
    std::vector<uint8_t> bytes(stated);
    reader_.read_into(name, bytes.data(), bytes.size());
    return bytes;
  }
  const zip::Reader& reader_;
  std::string prefix_;
  std::unordered_map<std::string, std::vector<uint8_t>> cache_;
};

class LegacyStorages : public StorageSource {
 public:
  LegacyStorages(const std::string& data,
                 const std::unordered_map<std::string, legacy::Span>& spans)
      : data_(data), spans_(spans) {}
  std::pair<const uint8_t*, size_t> get(const StorageRef& s) override {
    auto it = spans_.find(s.key);
    if (it == spans_.end()) throw Error("storage '" + s.key + "' has no data in the file");
    if (it->second.bytes != declared_bytes(s)) throw Error(size_mismatch(s, it->second.bytes));
    return {reinterpret_cast<const uint8_t*>(data_.data()) + it->second.offset, it->second.bytes};
  }

 private:
  const std::string& data_;
  const std::unordered_map<std::string, legacy::Span>& spans_;
};

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::None:
      return "None";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
    case Kind::BigInt:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::String:
      return "str";
    case Kind::Bytes:
      return "bytes";
    case Kind::List:
      return "list";
    case Kind::Tuple:
      return "tuple";
    case Kind::Dict:
      return "dict";
    case Kind::Set:
      return "set";
    case Kind::Global:
      return "global";
    case Kind::Storage:
      return "storage";
    case Kind::Tensor:
      return "tensor";
  }
  return "value";
}

// Copies the elements a (possibly strided, offset) tensor views out of its storage.
TensorData materialise(const std::string& name, const TensorRef& t, const StorageRef& s,
                       StorageSource& source, bool sole_user, size_t* budget) {
  TensorData out;
  out.dtype = s.dtype;
  out.shape = t.shape;
  const size_t elem = dtype_size(s.dtype);
  int64_t numel = 1;
  for (int64_t d : t.shape) {
    if (d != 0 && numel > kMaxElements / d) throw Error("tensor '" + name + "' is too large");
    numel *= d;
  }
  if (numel == 0) return out;

  const int64_t view_numel = s.view_numel >= 0 ? s.view_numel : s.numel;
  // Largest element index the tensor touches, relative to the view start.
  if (t.offset > kMaxElements) throw Error("tensor '" + name + "' has an impossible offset");
  int64_t last = t.offset;
  for (size_t k = 0; k < t.shape.size(); ++k) {
    if (t.stride[k] != 0 && t.shape[k] - 1 > (kMaxElements - last) / t.stride[k])
      throw Error("tensor '" + name + "' reaches outside its storage");
    last += (t.shape[k] - 1) * t.stride[k];
  }
  if (last >= view_numel)
    throw Error("tensor '" + name + "' reaches outside its storage '" + s.key + "'");
  const size_t nbytes = static_cast<size_t>(numel) * elem;
  if (nbytes > *budget)
    throw Error("tensor '" + name + "' expands to more data than the file can hold");
  *budget -= nbytes;

  bool contiguous = true;
  int64_t expected = 1;
  for (size_t k = t.shape.size(); k-- > 0;) {
    if (t.shape[k] != 1 && t.stride[k] != expected) contiguous = false;
    expected *= t.shape[k];
  }
  const int64_t base = s.view_offset + t.offset;

  std::pair<const uint8_t*, size_t> storage = source.get(s);
  const uint8_t* data = storage.first;
  size_t size = storage.second;
  if (contiguous && base == 0 && nbytes == size && sole_user) {
    out.bytes = source.take(s.key);
    if (out.bytes.size() == nbytes) return out;
    storage = source.get(s);
    data = storage.first;
    size = storage.second;
  }
  out.bytes.resize(nbytes);
  const uint8_t* src = data + static_cast<size_t>(base) * elem;
  if (contiguous) {
    std::memcpy(out.bytes.data(), src, nbytes);
    return out;
  }
  // Odometer over the index space; the innermost dimension is copied in a loop.
  const size_t dims = t.shape.size();
  std::vector<int64_t> index(dims, 0);
  const int64_t inner = dims ? t.shape[dims - 1] : 1;
  const int64_t inner_stride = dims ? t.stride[dims - 1] : 0;
  uint8_t* dst = out.bytes.data();
  for (int64_t done = 0; done < numel; done += inner) {
    int64_t offset = 0;
    for (size_t k = 0; k + 1 < dims; ++k) offset += index[k] * t.stride[k];
    for (int64_t j = 0; j < inner; ++j) {
      std::memcpy(dst, src + static_cast<size_t>(offset + j * inner_stride) * elem, elem);
      dst += elem;
    }
    for (size_t k = dims - 1; k-- > 0;) {
      if (++index[k] < t.shape[k]) break;
      index[k] = 0;
    }
  }
  return out;
}

// Finds the state dict in the unpickled object and materialises its tensors.
void extract(const Unpickled& u, StorageSource& source, size_t file_size, Checkpoint* ck) {
  const Value& root = u.at(u.root);
  if (root.kind != Kind::Dict)
    throw Error(std::string("not a checkpoint: the saved object is a ") + kind_name(root.kind) +
                ", not a dict");
  const Value* state = nullptr;
  for (const char* key : {"network", "state_dict", "model"}) {
    const Value* v = u.dict_get(root, key);
    if (v && v->kind == Kind::Dict) {
      state = v;
      ck->container_key = key;
      break;
    }
  }
  if (!state) {
    bool has_tensor = false;
    for (size_t k = 1; k < root.items.size(); k += 2)
      has_tensor = has_tensor || u.at(root.items[k]).kind == Kind::Tensor;
    if (!has_tensor) {
      std::string keys;
      for (size_t k = 0; k < root.items.size() && keys.size() < 200; k += 2) {
        const Value& key = u.at(root.items[k]);
        keys += (keys.empty() ? "" : ", ") + (key.kind == Kind::String ? key.s : "?");
      }
      throw Error(
          "no state dict found (no 'network', 'state_dict' or 'model' dict and no tensors;"
          " top-level keys: " +
          (keys.empty() ? std::string("none") : keys) + ")");
    }
    state = &root;
    ck->container_key = "";
  }
  const Value* epoch = u.dict_get(root, "epoch");
  if (epoch && epoch->kind == Kind::Int) ck->epoch = epoch->i;

  // Python dict semantics: a repeated key keeps its first position, last value wins.
  std::vector<std::pair<std::string, size_t>> entries;  // name -> tensor index
  std::unordered_map<std::string, size_t> position;
  for (size_t k = 0; k + 1 < state->items.size(); k += 2) {
    const Value& key = u.at(state->items[k]);
    const Value& value = u.at(state->items[k + 1]);
    if (key.kind != Kind::String || value.kind != Kind::Tensor) continue;  // not a weight
    auto [it, fresh] = position.emplace(key.s, entries.size());
    if (fresh)
      entries.emplace_back(key.s, static_cast<size_t>(value.i));
    else
      entries[it->second].second = static_cast<size_t>(value.i);
  }
  std::unordered_map<std::string, int> users;  // storage key -> tensors using it
  for (const auto& e : entries) ++users[u.storages[u.tensors[e.second].storage].key];

  // A file cannot legitimately expand much: cap what materialising may allocate.
  size_t budget = 4 * file_size + (size_t(256) << 20);
  ck->tensors.reserve(entries.size());
  for (const auto& [name, index] : entries) {
    const TensorRef& t = u.tensors[index];
    const StorageRef& s = u.storages[t.storage];
    ck->tensors.emplace_back(name, materialise(name, t, s, source, users[s.key] == 1, &budget));
  }
}

// ('storage', storage_type, key, location, numel)
StorageRef zip_storage_from_pid(const Unpickled& u, const Value& pid) {
  return pickle::storage_ref_from_pid(u, pid, 5);
}

// From the file (storages are read into their tensors' buffers, with no whole-file copy:
// touching fresh memory is the main cost of a load) or from the file's bytes in memory.
void read_zip(const zip::Reader& reader, size_t file_size, Checkpoint* ck) {
  std::string pkl;
  for (const std::string& name : reader.names()) {
    const std::string suffix = "/data.pkl";
    if (name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        name.find('/') == name.size() - suffix.size()) {
      if (!pkl.empty()) throw Error("zip archive holds several data.pkl entries");
      pkl = name;
    }
  }
  if (pkl.empty())
    throw Error("zip archive without a <name>/data.pkl entry (not a PyTorch checkpoint)");
  const std::string prefix = pkl.substr(0, pkl.size() - std::string("data.pkl").size());
  ck->format = "zip";
  ck->archive_name = prefix.substr(0, prefix.size() - 1);
  if (reader.has(prefix + "byteorder")) {
    if (reader.size(prefix + "byteorder") > 16) throw Error("byteorder entry is too large");
    std::string order = reader.read(prefix + "byteorder");
    if (order != "little") throw Error("byteorder '" + order + "' is not supported");
  }
  // The pickle holds structure only (tensor data lives in storages): a huge one is hostile.
  if (reader.size(pkl) > kMaxPickleBytes)
    throw Error(pkl + " would inflate to " + std::to_string(reader.size(pkl)) +
                " bytes (more than a checkpoint pickle may hold, " +
                std::to_string(kMaxPickleBytes) + ")");
  const std::string pickle_bytes = reader.read(pkl);
  Unpickled u;
  try {
    u = pickle::unpickle(reinterpret_cast<const uint8_t*>(pickle_bytes.data()), pickle_bytes.size(),
                         0, zip_storage_from_pid);
  } catch (const Error& e) {
    throw Error(pkl + ": " + e.what());
  }
  ZipStorages storages(reader, prefix);
  extract(u, storages, file_size, ck);
}

void read_legacy(const std::string& data, Checkpoint* ck) {
  ck->format = "legacy";
  legacy::Parsed parsed = legacy::parse(data);
  LegacyStorages storages(data, parsed.storages);
  extract(parsed.object, storages, data.size(), ck);
}

// Both readers: the whole file in `bytes`, or (null) read from `path` as it is needed.
Checkpoint read_from(const std::string& path, const std::string* bytes) {
  const std::string head = bytes ? bytes->substr(0, 4) : read_whole_file(path, 4);
  Checkpoint ck;
  ck.path = path;
  try {
    if (head.empty()) throw Error("empty file (not a PyTorch checkpoint)");
    if (zip::looks_like_zip(head)) {
      if (bytes) {
        read_zip(zip::Reader(*bytes, ""), bytes->size(), &ck);
      } else {
        std::error_code ec;
        size_t file_size = std::filesystem::file_size(path, ec);
        if (ec) throw Error("cannot stat: " + ec.message());
        read_zip(zip::Reader::open_file(path, ""), file_size, &ck);
      }
    } else if (static_cast<uint8_t>(head[0]) == 0x80) {
      if (bytes)
        read_legacy(*bytes, &ck);
      else
        read_legacy(read_whole_file(path), &ck);
    } else
      throw Error("not a PyTorch checkpoint (neither a zip archive nor a pickle)");
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  } catch (const std::bad_alloc&) {
    throw Error(path + ": out of memory while reading the checkpoint");
  } catch (const std::exception& e) {
    throw Error(path + ": cannot read checkpoint: " + e.what());
  }
  return ck;
}

}  // namespace

Checkpoint read_checkpoint(const std::string& path) {
  return read_from(path, nullptr);
}

Checkpoint parse_checkpoint(const std::string& bytes, const std::string& path) {
  return read_from(path, &bytes);
}

std::string read_checkpoint_file(const std::string& path, uint64_t max_bytes) {
  const auto too_large = [&](const std::string& size) {
    return Error(path + ": " + size + " bytes, more than a checkpoint may hold (" +
                 std::to_string(max_bytes) + ")");
  };
  // Regular files are refused by their size, before any allocation; others (pipes, a file
  // that grows while it is read) when the read passes the limit.
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > max_bytes) throw too_large(std::to_string(size));
  std::string data;
  try {
    data =
        read_whole_file(path, static_cast<size_t>(std::min<uint64_t>(max_bytes, SIZE_MAX - 1)) + 1);
  } catch (const std::bad_alloc&) {
    throw Error(path + ": out of memory while reading the checkpoint");
  }
  if (data.size() > max_bytes) throw too_large("more than " + std::to_string(max_bytes));
  return data;
}

}  // namespace cnp::model
