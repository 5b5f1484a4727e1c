// The unpickler's opcode loop (pickle_reader.h says why it is hand-written).
#include <cstdio>

#include "model/pickle_reader.h"

namespace cnp::model::pickle {
namespace detail {

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
        push(make_ref(Kind::Storage, out_.storages.size() - 1));
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

}  // namespace detail

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
  detail::Reader reader(data, size, begin, persistent_load);
  return reader.run();
}

}  // namespace cnp::model::pickle
