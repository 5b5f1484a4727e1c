#pragma once
// Work split for the optimized network's CPU kernels. Internal to model/.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

namespace cnp::model {

// Runs body(begin, end) over [0, count) in tiles of `grain`, handed out to at::get_num_threads()
// threads one tile at a time (OpenMP dynamic schedule, the pool LibTorch uses too). Dynamic
// rather than at::parallel_for's one equal block per thread: on a shared machine a thread that
// loses its core takes fewer tiles instead of holding up the whole layer. Serial inside another
// parallel region. `body` must not throw.
template <class F>
void parallel_tiles(int64_t count, int64_t grain, const F& body) {
  if (count <= 0) return;
  const int64_t tiles = (count + grain - 1) / grain;
  const int64_t threads =
      at::in_parallel_region() ? 1 : std::min<int64_t>(at::get_num_threads(), tiles);
  if (threads <= 1) {
    // Tile by tile on one thread too: the fused path's tile intermediates must stay in cache
    // (one call over a whole stage 0 streamed its 25 MB hidden layer through memory and ran
    // its 1x1 convs at about half speed).
    for (int64_t begin = 0; begin < count; begin += grain)
      body(begin, std::min(count, begin + grain));
    return;
  }
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t t = 0; t < tiles; ++t) body(t * grain, std::min(count, (t + 1) * grain));
}

}  // namespace cnp::model
