#include <limits>
#include <string>

#include "common/error.h"
#include "pipeline/gather.h"

namespace cnp::pipeline {
namespace {

// MPI counts are int: a pass of a few ten thousand samples is far below that, but
// say so clearly instead of overflowing.
std::vector<int> to_int_counts(const std::vector<int64_t>& counts, std::vector<int>& displs) {
  std::vector<int> out(counts.size());
  displs.assign(counts.size(), 0);
  int64_t offset = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (offset + counts[i] > std::numeric_limits<int>::max()) {
      throw Error("gather: " + std::to_string(offset + counts[i]) +
                  " values exceed MPI's int count; split the pass");
    }
    out[i] = static_cast<int>(counts[i]);
    displs[i] = static_cast<int>(offset);
    offset += counts[i];
  }
  return out;
}

template <typename T>
void gatherv(MPI_Comm comm, const T* local, const std::vector<int64_t>& counts, T* root_out,
             MPI_Datatype type) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::vector<int> displs;
  const std::vector<int> int_counts = to_int_counts(counts, displs);
  // MPI wants a non-const send buffer in old bindings; an empty block still needs a pointer.
  T dummy{};
  MPI_Gatherv(int_counts[rank] ? const_cast<T*>(local) : &dummy, int_counts[rank], type, root_out,
              int_counts.data(), displs.data(), type, 0, comm);
}

class MpiFloatGather : public FloatGather {
 public:
  explicit MpiFloatGather(MPI_Comm comm) : comm_(comm) {}
  void gather(const float* local, const std::vector<int64_t>& counts, float* root_out) override {
    gatherv(comm_, local, counts, root_out, MPI_FLOAT);
  }
  const char* name() const override { return "mpi"; }

 private:
  MPI_Comm comm_;
};

}  // namespace

std::unique_ptr<FloatGather> make_mpi_gather(MPI_Comm comm) {
  return std::make_unique<MpiFloatGather>(comm);
}

void gather_bytes(MPI_Comm comm, const uint8_t* local, const std::vector<int64_t>& counts,
                  uint8_t* root_out) {
  gatherv(comm, local, counts, root_out, MPI_UINT8_T);
}

}  // namespace cnp::pipeline
