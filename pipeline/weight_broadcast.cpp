// The packed form is our own (a few length-prefixed fields): it only ever travels between the
// ranks of one sweep, built and read by this file, so no general serialisation library is needed.
#include "pipeline/weight_broadcast.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "common/error.h"

namespace cnp::pipeline {
namespace {

constexpr char kMagic[8] = {'c', 'n', 'p', 'w', 'g', 't', 's', '1'};

class Writer {
 public:
  void raw(const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    out.insert(out.end(), p, p + size);
  }
  void i64(int64_t value) { raw(&value, sizeof value); }
  void str(const std::string& text) {
    i64(static_cast<int64_t>(text.size()));
    raw(text.data(), text.size());
  }
  std::vector<uint8_t> out;
};

class Reader {
 public:
  explicit Reader(const std::vector<uint8_t>& bytes) : bytes_(bytes) {}
  const uint8_t* take(uint64_t size) {
    if (size > bytes_.size() - pos_) throw Error("packed checkpoint is truncated");
    const uint8_t* p = bytes_.data() + pos_;
    pos_ += size;
    return p;
  }
  int64_t i64() {
    int64_t value;
    std::memcpy(&value, take(sizeof value), sizeof value);
    return value;
  }
  uint64_t length() {
    const int64_t value = i64();
    if (value < 0) throw Error("packed checkpoint has a negative length");
    return static_cast<uint64_t>(value);
  }
  std::string str() {
    const uint64_t size = length();
    const uint8_t* p = take(size);
    return std::string(reinterpret_cast<const char*>(p), size);
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  const std::vector<uint8_t>& bytes_;
  size_t pos_ = 0;
};

class MpiByteBroadcast : public ByteBroadcast {
 public:
  explicit MpiByteBroadcast(MPI_Comm comm) : comm_(comm) {}
  void broadcast(std::vector<uint8_t>& bytes) override {
    // MPI counts are ints: move 1 GiB at a time.
    constexpr size_t kChunk = size_t{1} << 30;
    for (size_t offset = 0; offset < bytes.size(); offset += kChunk) {
      const int count = static_cast<int>(std::min(kChunk, bytes.size() - offset));
      MPI_Bcast(bytes.data() + offset, count, MPI_BYTE, 0, comm_);
    }
  }
  const char* name() const override { return "mpi"; }

 private:
  MPI_Comm comm_;
};

}  // namespace

std::unique_ptr<ByteBroadcast> make_mpi_broadcast(MPI_Comm comm) {
  return std::make_unique<MpiByteBroadcast>(comm);
}

std::vector<uint8_t> pack_checkpoint(const model::Checkpoint& ck) {
  Writer w;
  w.raw(kMagic, sizeof kMagic);
  w.str(ck.path);
  w.str(ck.format);
  w.str(ck.archive_name);
  w.str(ck.container_key);
  w.i64(ck.epoch ? 1 : 0);
  w.i64(ck.epoch.value_or(0));
  w.i64(static_cast<int64_t>(ck.tensors.size()));
  for (const auto& [name, tensor] : ck.tensors) {
    w.str(name);
    w.i64(static_cast<int64_t>(tensor.dtype));
    w.i64(static_cast<int64_t>(tensor.shape.size()));
    for (int64_t d : tensor.shape) w.i64(d);
    w.i64(static_cast<int64_t>(tensor.bytes.size()));
    w.raw(tensor.bytes.data(), tensor.bytes.size());
  }
  return std::move(w.out);
}

model::Checkpoint unpack_checkpoint(const std::vector<uint8_t>& bytes) {
  Reader r(bytes);
  if (std::memcmp(r.take(sizeof kMagic), kMagic, sizeof kMagic) != 0)
    throw Error("not a packed checkpoint");
  model::Checkpoint ck;
  ck.path = r.str();
  ck.format = r.str();
  ck.archive_name = r.str();
  ck.container_key = r.str();
  const bool has_epoch = r.i64() != 0;
  const int64_t epoch = r.i64();
  if (has_epoch) ck.epoch = epoch;
  const uint64_t count = r.length();
  for (uint64_t i = 0; i < count; ++i) {
    std::string name = r.str();
    model::TensorData tensor;
    const int64_t dtype = r.i64();
    if (dtype < 0 || dtype > static_cast<int64_t>(model::DType::Bool))
      throw Error("packed checkpoint: bad dtype for " + name);
    tensor.dtype = static_cast<model::DType>(dtype);
    const uint64_t rank = r.length();
    if (rank > 16) throw Error("packed checkpoint: bad shape for " + name);
    for (uint64_t d = 0; d < rank; ++d) tensor.shape.push_back(r.i64());
    const uint64_t size = r.length();
    const uint8_t* data = r.take(size);
    tensor.bytes.assign(data, data + size);
    if (tensor.numel() < 0 ||
        static_cast<uint64_t>(tensor.numel()) * model::dtype_size(tensor.dtype) != size)
      throw Error("packed checkpoint: " + name + " holds the wrong number of bytes");
    ck.tensors.emplace_back(std::move(name), std::move(tensor));
  }
  if (!r.done()) throw Error("packed checkpoint has trailing bytes");
  return ck;
}

PreparedCheckpoint prepare_checkpoint(const std::string& path,
                                      std::shared_ptr<const model::Checkpoint> have, bool pack) {
  PreparedCheckpoint out;
  try {
    if (!have) have = std::make_shared<const model::Checkpoint>(model::read_checkpoint(path));
    if (pack) out.packed = pack_checkpoint(*have);
    out.checkpoint = std::move(have);
  } catch (const std::bad_alloc&) {
    out = PreparedCheckpoint();
    out.error = path + ": out of memory while reading the checkpoint";
  } catch (const std::exception& e) {
    out = PreparedCheckpoint();
    out.error = e.what();
    if (out.error.empty()) out.error = path + ": cannot read the checkpoint";
  }
  return out;
}

std::shared_ptr<const model::Checkpoint> broadcast_prepared(MPI_Comm comm, ByteBroadcast& transport,
                                                            PreparedCheckpoint prepared,
                                                            std::vector<uint8_t>* packed) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  std::string& error = prepared.error;
  std::vector<uint8_t>& bytes = prepared.packed;
  // Rank 0's outcome first (size, or its error), so every rank agrees before the payload.
  int64_t header[2] = {error.empty() ? static_cast<int64_t>(bytes.size()) : -1,
                       static_cast<int64_t>(error.size())};
  MPI_Bcast(header, 2, MPI_INT64_T, 0, comm);
  if (header[0] < 0) {
    error.resize(static_cast<size_t>(header[1]));
    MPI_Bcast(error.data(), static_cast<int>(header[1]), MPI_CHAR, 0, comm);
    throw Error(error);
  }
  if (size == 1) return prepared.checkpoint;
  bytes.resize(static_cast<size_t>(header[0]));
  transport.broadcast(bytes);
  if (rank == 0) return prepared.checkpoint;
  if (packed) {
    *packed = std::move(bytes);
    return nullptr;
  }
  return std::make_shared<const model::Checkpoint>(unpack_checkpoint(bytes));
}

std::shared_ptr<const model::Checkpoint> broadcast_checkpoint(
    MPI_Comm comm, ByteBroadcast& transport, const std::string& path,
    std::shared_ptr<const model::Checkpoint> have) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  PreparedCheckpoint prepared;
  if (rank == 0) prepared = prepare_checkpoint(path, std::move(have), size > 1);
  return broadcast_prepared(comm, transport, std::move(prepared));
}

}  // namespace cnp::pipeline
