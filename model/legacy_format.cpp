// Hand-written: no Debian library reads PyTorch's legacy stream, and it is only
// a few pickles (parsed by the restricted unpickler) plus length-prefixed blobs.
#include "model/legacy_format.h"

#include <cstring>

#include "common/error.h"

namespace cnp::model::legacy {
namespace {

using pickle::Kind;
using pickle::StorageRef;
using pickle::Unpickled;
using pickle::Value;

// 0x1950a86a20f9469cfc6c as Python's LONG1 writes it (little-endian).
const std::string kMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
constexpr int64_t kProtocolVersion = 1001;

StorageRef no_persistent_ids(const Unpickled&, const Value&) {
  throw Error("unexpected persistent id in a legacy header pickle");
}

// ('storage', storage_type, root_key, location, numel, view_metadata)
StorageRef storage_from_pid(const Unpickled& u, const Value& pid) {
  StorageRef ref = pickle::storage_ref_from_pid(u, pid, 6);
  const Value& view = u.at(pid.items[5]);
  if (view.kind == Kind::Tuple) {
    // (view_key, offset, view_size): the tensor's storage is a slice of the root.
    if (view.items.size() != 3 || u.at(view.items[1]).kind != Kind::Int ||
        u.at(view.items[2]).kind != Kind::Int)
      throw Error("malformed storage view metadata");
    ref.view_offset = u.at(view.items[1]).i;
    ref.view_numel = u.at(view.items[2]).i;
    if (ref.view_offset < 0 || ref.view_numel < 0 || ref.view_offset > ref.numel ||
        ref.view_numel > ref.numel - ref.view_offset)
      throw Error("storage view outside its storage '" + ref.key + "'");
  } else if (view.kind != Kind::None) {
    throw Error("malformed storage view metadata");
  }
  return ref;
}

}  // namespace

Parsed parse(const std::string& data) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
  const size_t size = data.size();

  Unpickled magic = pickle::unpickle(bytes, size, 0, no_persistent_ids);
  const Value& m = magic.at(magic.root);
  if (m.kind != Kind::BigInt || m.s != kMagic)
    throw Error("not a PyTorch checkpoint (a pickle without the legacy magic number)");

  Unpickled version = pickle::unpickle(bytes, size, magic.end, no_persistent_ids);
  const Value& v = version.at(version.root);
  if (v.kind != Kind::Int || v.i != kProtocolVersion)
    throw Error("unsupported legacy protocol version");

  Unpickled sys_info = pickle::unpickle(bytes, size, version.end, no_persistent_ids);
  const Value* little = sys_info.dict_get(sys_info.at(sys_info.root), "little_endian");
  if (little && little->kind == Kind::Bool && little->i == 0)
    throw Error("big-endian legacy checkpoints are not supported");

  Parsed out;
  out.object = pickle::unpickle(bytes, size, sys_info.end, storage_from_pid);
  Unpickled keys = pickle::unpickle(bytes, size, out.object.end, no_persistent_ids);
  const Value& key_list = keys.at(keys.root);
  if (key_list.kind != Kind::List) throw Error("malformed legacy storage key list");

  std::unordered_map<std::string, size_t> element_size;
  for (const StorageRef& ref : out.object.storages) element_size[ref.key] = dtype_size(ref.dtype);

  size_t pos = keys.end;
  for (pickle::ValueId id : key_list.items) {
    const Value& key = keys.at(id);
    if (key.kind != Kind::String) throw Error("malformed legacy storage key list");
    auto it = element_size.find(key.s);
    if (it == element_size.end()) throw Error("storage '" + key.s + "' is never referenced");
    if (size - pos < 8) throw Error("truncated before the data of storage '" + key.s + "'");
    int64_t count;
    std::memcpy(&count, bytes + pos, 8);
    pos += 8;
    if (count < 0 || static_cast<uint64_t>(count) > (size - pos) / it->second)
      throw Error("truncated data of storage '" + key.s + "' (" + std::to_string(count) +
                  " elements stated)");
    Span span{pos, static_cast<size_t>(count) * it->second};
    pos += span.bytes;
    if (!out.storages.emplace(key.s, span).second)
      throw Error("storage '" + key.s + "' listed twice");
  }
  return out;
}

}  // namespace cnp::model::legacy
