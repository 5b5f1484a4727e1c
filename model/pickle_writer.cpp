// Protocol-2 pickle writer primitives, for write_checkpoint_zip.
#include <cstdint>
#include <string>

#include "model/pickle.h"

namespace cnp::model::pickle {

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

}  // namespace cnp::model::pickle
