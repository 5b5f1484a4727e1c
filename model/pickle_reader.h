#pragma once
// The unpickler's state machine, shared by the files that implement it: pickle_reader.cpp
// (the opcode loop) and pickle_globals.cpp (the allowlisted globals and what calling them
// builds). Internal to cnp_model: callers use pickle.h.
//
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
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "model/pickle.h"

namespace cnp::model::pickle::detail {

// Longest text line (GLOBAL names, text INT/FLOAT) we accept; real ones are short.
constexpr size_t kMaxLine = 4096;
// Longest integer (LONG1/LONG4) we keep: Python ints in checkpoints are small;
// the legacy magic number is 10 bytes.
constexpr size_t kMaxLongBytes = 64;
// Most values one pickle may build. A checkpoint needs about 50 per tensor
// (~50k for variant L with its optimizer state); the cap bounds the arena
// (~100 bytes a value) for a hostile pickle made of one-byte opcodes.
constexpr size_t kMaxValues = size_t(2) << 20;

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
  // A Storage or Tensor value: the index of what it refers to in out_.storages/tensors.
  ValueId make_ref(Kind kind, size_t index) {
    Value v;
    v.kind = kind;
    v.i = static_cast<int64_t>(index);
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

}  // namespace cnp::model::pickle::detail
