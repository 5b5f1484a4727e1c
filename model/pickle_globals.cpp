// The globals a checkpoint pickle may name, what calling them builds, and the storage
// types and persistent ids of PyTorch's formats. Everything else is refused by name.
#include "model/pickle_reader.h"

namespace cnp::model::pickle {
namespace {

struct GlobalSpec {
  const char* module;
  const char* name;
  Global global;
};

constexpr GlobalSpec kAllowed[] = {
    {"collections", "OrderedDict", Global::OrderedDict},
    {"torch._utils", "_rebuild_tensor_v2", Global::RebuildTensorV2},
    {"torch._utils", "_rebuild_tensor", Global::RebuildTensor},
    {"torch._utils", "_rebuild_parameter", Global::RebuildParameter},
    {"torch._utils", "_rebuild_parameter_with_state", Global::RebuildParameterWithState},
    {"_codecs", "encode", Global::CodecsEncode},
};

struct StorageSpec {
  const char* name;
  DType dtype;
};

constexpr StorageSpec kStorages[] = {
    {"FloatStorage", DType::Float32},     {"HalfStorage", DType::Float16},
    {"BFloat16Storage", DType::BFloat16}, {"DoubleStorage", DType::Float64},
    {"LongStorage", DType::Int64},        {"IntStorage", DType::Int32},
    {"ShortStorage", DType::Int16},       {"CharStorage", DType::Int8},
    {"ByteStorage", DType::UInt8},        {"BoolStorage", DType::Bool},
};

}  // namespace

namespace detail {

void Reader::global(const std::string& module, const std::string& name) {
  for (const auto& spec : kAllowed) {
    if (module == spec.module && name == spec.name) {
      Value v;
      v.kind = Kind::Global;
      v.global = spec.global;
      v.s = module + "." + name;
      push(make(std::move(v)));
      return;
    }
  }
  if (module == "torch") {
    for (const auto& spec : kStorages) {
      if (name == spec.name) {
        Value v;
        v.kind = Kind::Global;
        v.global = Global::StorageType;
        v.dtype = spec.dtype;
        v.s = module + "." + name;
        push(make(std::move(v)));
        return;
      }
    }
  }
  // Never resolved, never called: only data may come out of a checkpoint.
  throw Error("refusing to unpickle global '" + module + "." + name + "'");
}

void Reader::append_to(ValueId target, const std::vector<ValueId>& items) {
  Value& t = val(target);
  if (t.kind != Kind::List && t.kind != Kind::Set) fail("APPEND to a non-list");
  t.items.insert(t.items.end(), items.begin(), items.end());
}

void Reader::setitems(ValueId target, const std::vector<ValueId>& kv) {
  if (kv.size() % 2 != 0) fail("SETITEMS with an odd number of items");
  Value& t = val(target);
  if (t.kind != Kind::Dict) fail("SETITEM on a non-dict");
  t.items.insert(t.items.end(), kv.begin(), kv.end());
}

void Reader::reduce(ValueId fn, ValueId args_id) {
  const Value& f = val(fn);
  if (f.kind != Kind::Global) fail("REDUCE on a value that is not an allowed global");
  if (val(args_id).kind != Kind::Tuple) fail("REDUCE arguments are not a tuple");
  std::vector<ValueId> args = val(args_id).items;  // copy: make() may reallocate
  switch (f.global) {
    case Global::OrderedDict: {
      ValueId d = make_kind(Kind::Dict);
      if (args.size() > 1) fail("OrderedDict() with more than one argument");
      if (args.size() == 1) {
        charge(val(args[0]).items.size());
        std::vector<ValueId> pairs = val(args[0]).items;
        Kind k = val(args[0]).kind;
        if (k != Kind::List && k != Kind::Tuple) fail("OrderedDict() argument is not a list");
        std::vector<ValueId> kv;
        for (ValueId p : pairs) {
          const Value& pv = val(p);
          if ((pv.kind != Kind::Tuple && pv.kind != Kind::List) || pv.items.size() != 2)
            fail("OrderedDict() item is not a pair");
          kv.push_back(pv.items[0]);
          kv.push_back(pv.items[1]);
        }
        setitems(d, kv);
      }
      push(d);
      return;
    }
    case Global::RebuildTensorV2:
    case Global::RebuildTensor: {
      if (args.size() < 4) fail("_rebuild_tensor with fewer than 4 arguments");
      const Value& storage = val(args[0]);
      if (storage.kind != Kind::Storage) fail("_rebuild_tensor without a storage");
      TensorRef t;
      t.storage = static_cast<size_t>(storage.i);
      t.offset = int_arg(val(args[1]), "storage offset");
      t.shape = int_tuple(val(args[2]), "tensor size");
      t.stride = int_tuple(val(args[3]), "tensor stride");
      if (t.offset < 0) fail("negative storage offset");
      if (t.shape.size() != t.stride.size()) fail("tensor size and stride differ in length");
      if (t.shape.size() > 64) fail("tensor with more than 64 dimensions");
      for (size_t k = 0; k < t.shape.size(); ++k)
        if (t.shape[k] < 0 || t.stride[k] < 0) fail("negative tensor size or stride");
      out_.tensors.push_back(std::move(t));
      push(make_ref(Kind::Tensor, out_.tensors.size() - 1));
      return;
    }
    case Global::RebuildParameter:
    case Global::RebuildParameterWithState:
      if (args.empty() || val(args[0]).kind != Kind::Tensor)
        fail("_rebuild_parameter without a tensor");
      push(args[0]);
      return;
    case Global::CodecsEncode: {
      // Protocol 2 writes bytes b as _codecs.encode(b.decode('latin1'), 'latin1').
      if (args.size() != 2 || val(args[0]).kind != Kind::String ||
          val(args[1]).kind != Kind::String)
        fail("unsupported _codecs.encode call");
      const std::string& enc = val(args[1]).s;
      if (enc != "latin1" && enc != "latin-1") fail("unsupported encoding '" + enc + "'");
      const std::string& u = val(args[0]).s;
      charge(u.size());
      std::string out;
      for (size_t k = 0; k < u.size(); ++k) {
        uint8_t c = uint8_t(u[k]);
        if (c < 0x80) {
          out.push_back(char(c));
        } else if ((c == 0xC2 || c == 0xC3) && k + 1 < u.size()) {
          out.push_back(char(((c & 0x03) << 6) | (uint8_t(u[k + 1]) & 0x3F)));
          ++k;
        } else {
          fail("string is not latin-1");
        }
      }
      push(make_str(Kind::Bytes, std::move(out)));
      return;
    }
    case Global::StorageType:
      fail("calling " + f.s + " is not supported");
  }
  fail("unsupported REDUCE");
}

}  // namespace detail

const char* storage_type_name(DType dtype) {
  for (const auto& spec : kStorages)
    if (spec.dtype == dtype) return spec.name;
  return "FloatStorage";
}

bool dtype_from_storage_type(const std::string& name, DType* dtype) {
  for (const auto& spec : kStorages) {
    if (name == spec.name) {
      *dtype = spec.dtype;
      return true;
    }
  }
  return false;
}

StorageRef storage_ref_from_pid(const Unpickled& u, const Value& pid, size_t items) {
  if (pid.kind != Kind::Tuple || pid.items.empty()) throw Error("malformed persistent id");
  const Value& tag = u.at(pid.items[0]);
  if (tag.kind != Kind::String) throw Error("malformed persistent id");
  if (tag.s != "storage") throw Error("unsupported persistent id '" + tag.s + "'");
  if (pid.items.size() != items) throw Error("malformed storage persistent id");
  const Value& type = u.at(pid.items[1]);
  const Value& key = u.at(pid.items[2]);
  const Value& location = u.at(pid.items[3]);
  const Value& numel = u.at(pid.items[4]);
  if (type.kind != Kind::Global || type.global != Global::StorageType || key.kind != Kind::String ||
      location.kind != Kind::String || numel.kind != Kind::Int || numel.i < 0)
    throw Error("malformed storage persistent id");
  StorageRef ref;
  ref.key = key.s;
  ref.dtype = type.dtype;
  ref.numel = numel.i;
  ref.location = location.s;
  return ref;
}

}  // namespace cnp::model::pickle
