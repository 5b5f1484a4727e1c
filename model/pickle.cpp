// Hand-written, restricted unpickler for PyTorch checkpoints.
//
// Why hand-written: LibTorch 1.13's torch::pickle_load aborts on ordinary
// checkpoints (the state_dict OrderedDict carries a `_metadata` attribute set
// with BUILD), there is no pickle library among the allowed Debian packages, and
// a general unpickler executes arbitrary callables. This one only builds data
// (None, bool, int, float, str, bytes, list, tuple, dict, set, storages and
// tensors) from an allowlist of globals; any other global is refused by name
// before anything could run. It is iterative (no recursion), keeps values in an
// arena (no deep destructor chains, cycles are harmless) and checks every length
// against the bytes actually present.
#include "model/pickle.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "common/error.h"

namespace cnp::model::pickle {
namespace {

// Longest text line (GLOBAL names, text INT/FLOAT) we accept; real ones are short.
constexpr size_t kMaxLine = 4096;
// Longest integer (LONG1/LONG4) we keep: Python ints in checkpoints are small;
// the legacy magic number is 10 bytes.
constexpr size_t kMaxLongBytes = 64;
// Most values one pickle may build. A checkpoint needs about 50 per tensor
// (~50k for variant L with its optimizer state); the cap bounds the arena
// (~100 bytes a value) for a hostile pickle made of one-byte opcodes.
constexpr size_t kMaxValues = size_t(2) << 20;

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

class Reader {
 public:
  Reader(const uint8_t* data, size_t size, size_t begin, const PersistentLoad& persistent_load)
      : data_(data), size_(size), pos_(begin), persistent_load_(persistent_load) {}

  Unpickled run();

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("pickle at byte " + std::to_string(op_pos_) + ": " + what);
  }
  void need(size_t n) const {
    if (n > size_ - pos_) fail("truncated (needs " + std::to_string(n) + " more bytes)");
  }
  uint8_t u8() {
    need(1);
    return data_[pos_++];
  }
  uint64_t le(size_t n) {
    need(n);
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(data_[pos_ + k]) << (8 * k);
    pos_ += n;
    return v;
  }
  std::string bytes(uint64_t n) {
    if (n > size_ - pos_) fail("truncated (a length field says " + std::to_string(n) + " bytes)");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  std::string line() {
    size_t limit = std::min(size_ - pos_, kMaxLine);
    const void* nl = std::memchr(data_ + pos_, '\n', limit);
    if (!nl) fail("unterminated or overlong text line");
    size_t len = static_cast<const uint8_t*>(nl) - (data_ + pos_);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len + 1;
    return s;
  }

  ValueId make(Value v) {
    if (out_.values.size() >= kMaxValues) fail("pickle builds too many values");
    out_.values.push_back(std::move(v));
    return static_cast<ValueId>(out_.values.size() - 1);
  }
  ValueId make_kind(Kind kind) {
    Value v;
    v.kind = kind;
    return make(std::move(v));
  }
  ValueId make_int(int64_t i) {
    Value v;
    v.kind = Kind::Int;
    v.i = i;
    return make(std::move(v));
  }
  ValueId make_str(Kind kind, std::string s) {
    Value v;
    v.kind = kind;
    v.s = std::move(s);
    return make(std::move(v));
  }
  void push(ValueId id) { stack_.push_back(id); }
  ValueId pop() {
    if (stack_.size() <= floor()) fail("stack underflow");
    ValueId id = stack_.back();
    stack_.pop_back();
    return id;
  }
  ValueId top() {
    if (stack_.size() <= floor()) fail("stack underflow");
    return stack_.back();
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  std::vector<ValueId> pop_mark() {
    if (marks_.empty()) fail("MARK expected");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValueId> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  Value& val(ValueId id) { return out_.values[id]; }

  int64_t parse_decimal(const std::string& text) {
    std::string t = text;
    if (!t.empty() && t.back() == 'L') t.pop_back();
    if (t.empty()) fail("empty integer");
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(t.c_str(), &end, 10);
    if (errno != 0 || *end != '\0') fail("bad or too large integer '" + t + "'");
    return v;
  }
  ValueId make_long(const std::string& le_bytes) {
    size_t n = le_bytes.size();
    if (n == 0) return make_int(0);
    if (n > kMaxLongBytes) fail("integer of " + std::to_string(n) + " bytes is too large");
    if (n <= 8) {
      uint64_t v = 0;
      for (size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(uint8_t(le_bytes[k])) << (8 * k);
      if (n < 8 && (uint8_t(le_bytes[n - 1]) & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign
      return make_int(static_cast<int64_t>(v));
    }
    return make_str(Kind::BigInt, le_bytes);
  }

  // Copies made by OrderedDict(list) and _codecs.encode are charged here, so a
  // small pickle cannot amplify itself into huge memory through the memo.
  void charge(size_t n) {
    copied_ += n;
    if (copied_ > 8 * size_ + (1u << 20)) fail("pickle builds too much data for its size");
  }

  void memo_put(uint64_t key) { memo_[key] = top(); }
  void memo_get(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail("memo entry " + std::to_string(key) + " missing");
    push(it->second);
  }

  void global(const std::string& module, const std::string& name);
  void reduce(ValueId fn, ValueId args);
  void append_to(ValueId target, const std::vector<ValueId>& items);
  void setitems(ValueId target, const std::vector<ValueId>& kv);
  int64_t int_arg(const Value& v, const char* what) {
    if (v.kind != Kind::Int) fail(std::string(what) + " is not an integer");
    return v.i;
  }
  std::vector<int64_t> int_tuple(const Value& v, const char* what) {
    if (v.kind != Kind::Tuple && v.kind != Kind::List) fail(std::string(what) + " is not a tuple");
    std::vector<int64_t> out;
    for (ValueId id : v.items) out.push_back(int_arg(val(id), what));
    return out;
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_;
  size_t op_pos_ = 0;
  const PersistentLoad& persistent_load_;
  Unpickled out_;
  std::vector<ValueId> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValueId> memo_;
  size_t copied_ = 0;
};

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
      Value v;
      v.kind = Kind::Tensor;
      v.i = static_cast<int64_t>(out_.tensors.size() - 1);
      push(make(std::move(v)));
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

Unpickled Reader::run() {
  for (;;) {
    op_pos_ = pos_;
    if (pos_ >= size_) fail("truncated (no STOP opcode)");
    uint8_t op = data_[pos_++];
    switch (op) {
      case 0x80:  // PROTO
        if (u8() > 5) fail("unsupported pickle protocol");
        break;
      case 0x95:  // FRAME: a hint only
        le(8);
        break;
      case '.': {  // STOP
        if (stack_.size() != 1 || !marks_.empty()) fail("malformed pickle (stack at STOP)");
        out_.root = stack_.back();
        out_.end = pos_;
        return std::move(out_);
      }
      case '(':
        marks_.push_back(stack_.size());
        break;
      case '0':
        pop();
        break;
      case '1':
        pop_mark();
        break;
      case '2':
        push(top());
        break;
      case 'N':
        push(make_kind(Kind::None));
        break;
      case 0x88:
      case 0x89: {
        Value v;
        v.kind = Kind::Bool;
        v.i = op == 0x88;
        push(make(std::move(v)));
        break;
      }
      case 'I': {
        std::string t = line();
        if (t == "00" || t == "01") {
          Value v;
          v.kind = Kind::Bool;
          v.i = t == "01";
          push(make(std::move(v)));
        } else {
          push(make_int(parse_decimal(t)));
        }
        break;
      }
      case 'L':
        push(make_int(parse_decimal(line())));
        break;
      case 'J':
        push(make_int(static_cast<int32_t>(static_cast<uint32_t>(le(4)))));
        break;
      case 'K':
        push(make_int(static_cast<int64_t>(le(1))));
        break;
      case 'M':
        push(make_int(static_cast<int64_t>(le(2))));
        break;
      case 0x8a:  // LONG1
        push(make_long(bytes(le(1))));
        break;
      case 0x8b:  // LONG4
        push(make_long(bytes(le(4))));
        break;
      case 'F': {
        std::string t = line();
        errno = 0;
        char* end = nullptr;
        double d = std::strtod(t.c_str(), &end);
        if (t.empty() || *end != '\0') fail("bad float '" + t + "'");
        Value v;
        v.kind = Kind::Float;
        v.f = d;
        push(make(std::move(v)));
        break;
      }
      case 'G': {
        uint64_t bits = 0;
        need(8);
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | data_[pos_ + k];  // big-endian
        pos_ += 8;
        Value v;
        v.kind = Kind::Float;
        std::memcpy(&v.f, &bits, 8);
        push(make(std::move(v)));
        break;
      }
      case 'S': {  // Python 2 str repr; only the escape-free form is accepted
        std::string t = line();
        if (t.size() < 2 || (t.front() != '\'' && t.front() != '"') || t.back() != t.front() ||
            t.find('\\') != std::string::npos)
          fail("unsupported STRING literal");
        push(make_str(Kind::String, t.substr(1, t.size() - 2)));
        break;
      }
      case 'T':
        push(make_str(Kind::String, bytes(le(4))));
        break;
      case 'U':
        push(make_str(Kind::String, bytes(le(1))));
        break;
      case 'X':
        push(make_str(Kind::String, bytes(le(4))));
        break;
      case 0x8c:
        push(make_str(Kind::String, bytes(le(1))));
        break;
      case 0x8d:
        push(make_str(Kind::String, bytes(le(8))));
        break;
      case 'B':
        push(make_str(Kind::Bytes, bytes(le(4))));
        break;
      case 'C':
        push(make_str(Kind::Bytes, bytes(le(1))));
        break;
      case 0x8e:
      case 0x96:
        push(make_str(Kind::Bytes, bytes(le(8))));
        break;
      case ']':
        push(make_kind(Kind::List));
        break;
      case 'l': {
        std::vector<ValueId> items = pop_mark();
        ValueId id = make_kind(Kind::List);
        val(id).items = std::move(items);
        push(id);
        break;
      }
      case 'a': {
        ValueId item = pop();
        append_to(top(), {item});
        break;
      }
      case 'e': {
        std::vector<ValueId> items = pop_mark();
        append_to(top(), items);
        break;
      }
      case ')':
        push(make_kind(Kind::Tuple));
        break;
      case 't': {
        std::vector<ValueId> items = pop_mark();
        ValueId id = make_kind(Kind::Tuple);
        val(id).items = std::move(items);
        push(id);
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {
        size_t n = op - 0x84;
        if (stack_.size() < floor() + n) fail("stack underflow");
        std::vector<ValueId> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        ValueId id = make_kind(Kind::Tuple);
        val(id).items = std::move(items);
        push(id);
        break;
      }
      case '}':
        push(make_kind(Kind::Dict));
        break;
      case 'd': {
        std::vector<ValueId> kv = pop_mark();
        ValueId id = make_kind(Kind::Dict);
        setitems(id, kv);
        push(id);
        break;
      }
      case 's': {
        ValueId v = pop();
        ValueId k = pop();
        setitems(top(), {k, v});
        break;
      }
      case 'u': {
        std::vector<ValueId> kv = pop_mark();
        setitems(top(), kv);
        break;
      }
      case 0x8f:
        push(make_kind(Kind::Set));
        break;
      case 0x90: {
        std::vector<ValueId> items = pop_mark();
        append_to(top(), items);
        break;
      }
      case 0x91: {
        std::vector<ValueId> items = pop_mark();
        ValueId id = make_kind(Kind::Set);
        val(id).items = std::move(items);
        push(id);
        break;
      }
      case 'g':
        memo_get(static_cast<uint64_t>(parse_decimal(line())));
        break;
      case 'h':
        memo_get(le(1));
        break;
      case 'j':
        memo_get(le(4));
        break;
      case 'p':
        memo_put(static_cast<uint64_t>(parse_decimal(line())));
        break;
      case 'q':
        memo_put(le(1));
        break;
      case 'r':
        memo_put(le(4));
        break;
      case 0x94:  // MEMOIZE
        memo_put(memo_.size());
        break;
      case 'c': {
        std::string module = line();
        std::string name = line();
        global(module, name);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        ValueId name = pop();
        ValueId module = pop();
        if (val(name).kind != Kind::String || val(module).kind != Kind::String)
          fail("STACK_GLOBAL needs two strings");
        global(val(module).s, val(name).s);
        break;
      }
      case 'i': {  // INST: names a class inline; refuse it like any other global
        std::string module = line();
        std::string name = line();
        throw Error("refusing to unpickle global '" + module + "." + name + "'");
      }
      case 'R': {
        ValueId args = pop();
        ValueId fn = pop();
        reduce(fn, args);
        break;
      }
      case 0x81: {  // NEWOBJ cls args: same restricted calls as REDUCE
        ValueId args = pop();
        ValueId cls = pop();
        if (val(cls).kind != Kind::Global || val(cls).global != Global::OrderedDict)
          fail("NEWOBJ of a class other than OrderedDict");
        reduce(cls, args);
        break;
      }
      case 'b': {  // BUILD: state is data (e.g. OrderedDict._metadata); it is dropped
        pop();
        top();
        break;
      }
      case 'Q': {
        ValueId pid = pop();
        StorageRef ref = persistent_load_(out_, val(pid));
        out_.storages.push_back(std::move(ref));
        Value v;
        v.kind = Kind::Storage;
        v.i = static_cast<int64_t>(out_.storages.size() - 1);
        push(make(std::move(v)));
        break;
      }
      case 'P':
        fail("text persistent ids (PERSID) are not supported");
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unsupported pickle opcode ") + hex);
      }
    }
  }
}

}  // namespace

const Value* Unpickled::dict_get(const Value& dict, const std::string& key) const {
  if (dict.kind != Kind::Dict) return nullptr;
  const Value* found = nullptr;
  for (size_t k = 0; k + 1 < dict.items.size(); k += 2) {
    const Value& kv = values[dict.items[k]];
    if (kv.kind == Kind::String && kv.s == key) found = &values[dict.items[k + 1]];
  }
  return found;
}

Unpickled unpickle(const uint8_t* data, size_t size, size_t begin,
                   const PersistentLoad& persistent_load) {
  if (begin > size) throw Error("pickle starts past the end of the data");
  Reader reader(data, size, begin, persistent_load);
  return reader.run();
}

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

Writer::Writer(std::string* out) : out_(out) {}
void Writer::put_u32(uint32_t v) {
  for (int k = 0; k < 4; ++k) out_->push_back(static_cast<char>((v >> (8 * k)) & 0xFF));
}
void Writer::proto() {
  out_->append("\x80\x02", 2);
}
void Writer::stop() {
  out_->push_back('.');
}
void Writer::mark() {
  out_->push_back('(');
}
void Writer::none() {
  out_->push_back('N');
}
void Writer::boolean(bool value) {
  out_->push_back(static_cast<char>(value ? 0x88 : 0x89));
}
void Writer::integer(int64_t value) {
  if (value >= INT32_MIN && value <= INT32_MAX) {
    out_->push_back('J');
    put_u32(static_cast<uint32_t>(static_cast<int32_t>(value)));
  } else {
    out_->push_back(static_cast<char>(0x8a));  // LONG1, 8 bytes two's complement
    out_->push_back(8);
    for (int k = 0; k < 8; ++k)
      out_->push_back(static_cast<char>((static_cast<uint64_t>(value) >> (8 * k)) & 0xFF));
  }
}
void Writer::unicode(const std::string& utf8) {
  out_->push_back('X');
  put_u32(static_cast<uint32_t>(utf8.size()));
  out_->append(utf8);
}
void Writer::global(const std::string& module, const std::string& name) {
  out_->push_back('c');
  out_->append(module);
  out_->push_back('\n');
  out_->append(name);
  out_->push_back('\n');
}
void Writer::empty_tuple() {
  out_->push_back(')');
}
void Writer::tuple() {
  out_->push_back('t');
}
void Writer::empty_dict() {
  out_->push_back('}');
}
void Writer::setitems() {
  out_->push_back('u');
}
void Writer::reduce() {
  out_->push_back('R');
}
void Writer::binpersid() {
  out_->push_back('Q');
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
