// DType helpers, TensorData conversions and Checkpoint lookups. The float16 to
// float32 conversion is hand-written: C++17 has no half type and it is ten lines.
#include <cstring>

#include "common/error.h"
#include "model/checkpoint.h"

namespace cnp::model {
namespace {

float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1F;
  uint32_t mantissa = h & 0x3FF;
  uint32_t bits;
  if (exponent == 0x1F) {  // inf / nan
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // zero
    bits = sign;
  } else {  // subnormal: renormalise
    int shift = 0;
    while (!(mantissa & 0x400)) {
      mantissa <<= 1;
      ++shift;
    }
    mantissa &= 0x3FF;
    bits = sign | (static_cast<uint32_t>(113 - shift) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

double element_as_double(DType dtype, const uint8_t* p) {
  switch (dtype) {
    case DType::Float32:
      return load<float>(p);
    case DType::Float16:
      return half_to_float(load<uint16_t>(p));
    case DType::BFloat16: {
      uint32_t bits = static_cast<uint32_t>(load<uint16_t>(p)) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    case DType::Float64:
      return load<double>(p);
    case DType::Int64:
      return static_cast<double>(load<int64_t>(p));
    case DType::Int32:
      return load<int32_t>(p);
    case DType::Int16:
      return load<int16_t>(p);
    case DType::Int8:
      return load<int8_t>(p);
    case DType::UInt8:
      return load<uint8_t>(p);
    case DType::Bool:
      return *p != 0 ? 1.0 : 0.0;
  }
  return 0.0;
}

}  // namespace

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return "float32";
    case DType::Float16:
      return "float16";
    case DType::BFloat16:
      return "bfloat16";
    case DType::Float64:
      return "float64";
    case DType::Int64:
      return "int64";
    case DType::Int32:
      return "int32";
    case DType::Int16:
      return "int16";
    case DType::Int8:
      return "int8";
    case DType::UInt8:
      return "uint8";
    case DType::Bool:
      return "bool";
  }
  return "unknown";
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::Float64:
    case DType::Int64:
      return 8;
    case DType::Float32:
    case DType::Int32:
      return 4;
    case DType::Float16:
    case DType::BFloat16:
    case DType::Int16:
      return 2;
    case DType::Int8:
    case DType::UInt8:
    case DType::Bool:
      return 1;
  }
  return 1;
}

int64_t TensorData::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<float> TensorData::to_float() const {
  size_t n = bytes.size() / dtype_size(dtype);
  std::vector<float> out(n);
  if (dtype == DType::Float32) {
    if (n) std::memcpy(out.data(), bytes.data(), n * 4);
    return out;
  }
  for (size_t k = 0; k < n; ++k)
    out[k] = static_cast<float>(element_as_double(dtype, bytes.data() + k * dtype_size(dtype)));
  return out;
}

std::vector<double> TensorData::to_double() const {
  size_t n = bytes.size() / dtype_size(dtype);
  std::vector<double> out(n);
  for (size_t k = 0; k < n; ++k)
    out[k] = element_as_double(dtype, bytes.data() + k * dtype_size(dtype));
  return out;
}

const TensorData* Checkpoint::find(const std::string& name) const {
  for (const auto& [key, tensor] : tensors)
    if (key == name) return &tensor;
  return nullptr;
}

int64_t Checkpoint::total_elements() const {
  int64_t total = 0;
  for (const auto& entry : tensors) total += entry.second.numel();
  return total;
}

}  // namespace cnp::model
