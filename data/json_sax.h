#pragma once
// The base of the streaming (SAX) readers of large JSON files in h36m_files.cpp: it counts
// container depth, turns every scalar into a Scalar and reports malformed JSON as a one-line
// cnp::Error naming the file. Internal to data/.
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "common/error.h"

// Its own namespace: "Scalar" is too general a name for all of cnp::data.
namespace cnp::data::sax {

// Generic SAX base: counts container depth, turns every scalar into a Scalar and
// reports malformed JSON as a one-line cnp::Error naming the file.
struct Scalar {
  enum Kind { Null, Bool, Int, Float, String } kind = Null;
  int64_t i = 0;
  double d = 0;
  std::string s;
  bool exact_int = false;  // i holds the value exactly (an integral number within int64)
  bool is_number() const { return kind == Int || kind == Float; }
};

class SaxBase : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit SaxBase(std::string path) : path_(std::move(path)) {}
  bool null() override { return emit(Scalar{}); }
  bool boolean(bool v) override {
    Scalar s;
    s.kind = Scalar::Bool;
    s.i = v;
    s.d = v;
    return emit(std::move(s));
  }
  bool number_integer(number_integer_t v) override { return integer(v); }
  bool number_unsigned(number_unsigned_t v) override {
    if (v <= static_cast<number_unsigned_t>(INT64_MAX)) return integer(static_cast<int64_t>(v));
    Scalar s;  // beyond int64: usable only as a float
    s.kind = Scalar::Float;
    s.d = static_cast<double>(v);
    return emit(std::move(s));
  }
  bool number_float(number_float_t v, const string_t&) override {
    Scalar s;
    s.kind = Scalar::Float;
    s.d = v;
    // 100.0 is the integer 100; 1e35 or 2.5 is no integer (and casting 1e35 is undefined).
    if (v >= -9.2e18 && v <= 9.2e18 && v == std::floor(v)) {
      s.i = static_cast<int64_t>(v);
      s.exact_int = true;
    }
    return emit(std::move(s));
  }
  bool string(string_t& v) override {
    Scalar s;
    s.kind = Scalar::String;
    s.s = std::move(v);
    return emit(std::move(s));
  }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    ++depth_;
    return on_start(true);
  }
  bool end_object() override {
    on_end(true);
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    ++depth_;
    return on_start(false);
  }
  bool end_array() override {
    on_end(false);
    --depth_;
    return true;
  }
  bool key(string_t& k) override { return on_key(k); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    std::string what = ex.what();
    // nlohmann prefixes "[json.exception.parse_error.101] parse error at line 1, column 5: ".
    auto pos = what.find("] ");
    if (pos != std::string::npos) what = what.substr(pos + 2);
    throw Error(path_ + ": malformed JSON at byte " + std::to_string(position) + ": " + what);
  }

  void parse_text(const std::string& text) {
    nlohmann::json::sax_parse(text, this, nlohmann::json::input_format_t::json, true, false);
  }

 protected:
  virtual bool emit(Scalar&& value) = 0;
  virtual bool on_start(bool is_object) = 0;
  virtual void on_end(bool is_object) = 0;
  virtual bool on_key(const std::string& key) = 0;
  bool integer(int64_t v) {
    Scalar s;
    s.kind = Scalar::Int;
    s.i = v;
    s.d = static_cast<double>(v);
    s.exact_int = true;
    return emit(std::move(s));
  }

  std::string path_;
  int depth_ = 0;
};

}  // namespace cnp::data::sax
