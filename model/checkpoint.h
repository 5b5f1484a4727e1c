#pragma once
// Reading (and, for synthetic data, writing) PyTorch checkpoints without LibTorch.
// Torch-free on purpose: the reader is testable alone and cheap to include.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cnp::model {

enum class DType { Float32, Float16, BFloat16, Float64, Int64, Int32, Int16, Int8, UInt8, Bool };

const char* dtype_name(DType dtype);  // "float32", "float16", ...
size_t dtype_size(DType dtype);

// One tensor, materialised contiguous (row-major, little-endian) whatever the
// storage offset and strides in the file were.
struct TensorData {
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // numel() * dtype_size(dtype)

  int64_t numel() const;
  // Values converted to float32 / float64 (any dtype).
  std::vector<float> to_float() const;
  std::vector<double> to_double() const;
};

using NamedTensors = std::vector<std::pair<std::string, TensorData>>;  // file order

struct Checkpoint {
  std::string path;
  std::string format;         // "zip" | "legacy"
  std::string archive_name;   // zip: the inner folder (e.g. "snapshot_83.pth"); legacy: ""
  std::string container_key;  // "network" | "state_dict" | "model" | "" (bare state_dict)
  std::optional<int64_t> epoch;
  NamedTensors tensors;  // the state dict only; optimizer state is skipped

  const TensorData* find(const std::string& name) const;
  int64_t total_elements() const;
};

// Throws cnp::Error with a one-line message naming the file and the problem.
Checkpoint read_checkpoint(const std::string& path);

// The same from the file's bytes already in memory (to hash and parse one read of the file):
// for a file holding `bytes`, read_checkpoint(path) and parse_checkpoint(bytes, path) give the
// same checkpoint or the same error. `path` names the file in the checkpoint and in errors.
Checkpoint parse_checkpoint(const std::string& bytes, const std::string& path);

// The bytes of a checkpoint file, for parse_checkpoint. Files larger than max_bytes are
// refused before anything is allocated for them (a PyTorch checkpoint of the largest variant
// is ~35 MB, ~100 MB with optimizer state). Throws cnp::Error with a one-line message naming
// the file and the problem, the same as read_checkpoint's where the file cannot be read.
constexpr uint64_t kMaxCheckpointFileBytes = uint64_t(4) << 30;
std::string read_checkpoint_file(const std::string& path,
                                 uint64_t max_bytes = kMaxCheckpointFileBytes);

// Writes a checkpoint in PyTorch's zip format, loadable by torch.load:
// {'epoch': epoch, container_key: OrderedDict(tensors)} (no 'epoch' entry when
// epoch is empty; a bare OrderedDict when container_key is ""); archive_name is the
// inner folder. Each tensor's bytes must match its shape and dtype. Used by
// `cnp synth` and tests. Written atomically.
void write_checkpoint_zip(const std::string& path, const NamedTensors& tensors,
                          std::optional<int64_t> epoch, const std::string& archive_name = "archive",
                          const std::string& container_key = "network");

}  // namespace cnp::model
