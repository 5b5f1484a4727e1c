#pragma once
// A restricted Python-pickle reader (and the few writer primitives that
// write_checkpoint_zip needs), used for PyTorch checkpoints. See pickle_reader.h for
// why it is hand-written.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/checkpoint.h"

namespace cnp::model::pickle {

// The globals a checkpoint pickle may name. Anything else is refused.
enum class Global {
  OrderedDict,
  RebuildTensorV2,            // torch._utils._rebuild_tensor_v2
  RebuildTensor,              // torch._utils._rebuild_tensor (older writers)
  RebuildParameter,           // torch._utils._rebuild_parameter
  RebuildParameterWithState,  // torch._utils._rebuild_parameter_with_state (torch 2.x)
  CodecsEncode,               // _codecs.encode: how protocol 2 spells bytes objects
  StorageType,                // torch.<X>Storage; the dtype is in Value::dtype
};

enum class Kind : uint8_t {
  None,
  Bool,
  Int,
  BigInt,  // an integer wider than 64 bits: little-endian two's complement bytes in str
  Float,
  String,  // str (UTF-8) and Python 2 str
  Bytes,
  List,
  Tuple,
  Dict,  // items = key0, value0, key1, value1, ... in insertion order
  Set,
  Global,
  Storage,  // a persistent-id storage reference; index into Unpickled::storages
  Tensor,   // index into Unpickled::tensors
};

using ValueId = uint32_t;

struct Value {
  Kind kind = Kind::None;
  Global global = Global::OrderedDict;  // Kind::Global
  DType dtype = DType::Float32;         // Kind::Global with Global::StorageType
  int64_t i = 0;                        // Bool, Int; Storage/Tensor: index
  double f = 0.0;
  std::string s;               // String, Bytes, BigInt bytes, Global: "module.name"
  std::vector<ValueId> items;  // List, Tuple, Set, Dict (key, value pairs)
};

// What a persistent id referred to: a storage (its data is found by key later).
struct StorageRef {
  std::string key;
  DType dtype = DType::Float32;
  int64_t numel = 0;        // in elements of dtype
  std::string location;     // "cpu", "cuda:0", ... (ignored: everything loads on CPU)
  int64_t view_offset = 0;  // legacy view_metadata: element offset into the root storage
  int64_t view_numel = -1;  // legacy view_metadata: elements in the view; -1: whole storage
};

struct TensorRef {
  size_t storage = 0;  // index into Unpickled::storages
  int64_t offset = 0;  // in elements
  std::vector<int64_t> shape;
  std::vector<int64_t> stride;
};

struct Unpickled {
  std::vector<Value> values;  // arena: values refer to each other by ValueId
  std::vector<StorageRef> storages;
  std::vector<TensorRef> tensors;
  ValueId root = 0;
  size_t end = 0;  // offset just past STOP in the input

  const Value& at(ValueId id) const { return values[id]; }
  // Dict lookup by string key (last assignment wins, as in Python); nullptr if absent.
  const Value* dict_get(const Value& dict, const std::string& key) const;
};

// Reads one pickle starting at data[begin]. Persistent ids are resolved by
// `persistent_load`, which receives the pid value and returns a StorageRef
// (it throws cnp::Error for anything else). Throws cnp::Error with a message
// (without the file name; callers add it) for a refused global, a malformed or
// truncated pickle, or an unsupported opcode. Never executes anything.
using PersistentLoad = std::function<StorageRef(const Unpickled&, const Value&)>;
Unpickled unpickle(const uint8_t* data, size_t size, size_t begin,
                   const PersistentLoad& persistent_load);

// The part of a ('storage', storage_type, key, location, numel, ...) persistent id
// that the zip (5 items) and legacy (6 items: + view_metadata) formats share:
// checks the tag, that the tuple has `items` items and the first five fields,
// and fills key, dtype, numel and location. Throws cnp::Error if malformed.
StorageRef storage_ref_from_pid(const Unpickled& u, const Value& pid, size_t items);

// Storage type name ("FloatStorage") for a dtype, and back (false if unknown).
const char* storage_type_name(DType dtype);
bool dtype_from_storage_type(const std::string& name, DType* dtype);

// Minimal protocol-2 writer: appends opcodes to `out`.
class Writer {
 public:
  explicit Writer(std::string* out);
  void proto();
  void stop();
  void mark();
  void none();
  void boolean(bool value);
  void integer(int64_t value);
  void unicode(const std::string& utf8);
  void global(const std::string& module, const std::string& name);
  void empty_tuple();
  void tuple();  // from the last mark
  void empty_dict();
  void setitems();  // from the last mark
  void reduce();
  void binpersid();

 private:
  void put_u32(uint32_t v);
  std::string* out_;
};

}  // namespace cnp::model::pickle
