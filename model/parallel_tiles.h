#pragma once
// Work split for the optimized network's CPU kernels. Internal to model/.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <utility>

namespace cnp::model {

namespace detail {

// Runs body(begin, end) for each part t of `parts`, [begin, end) = range(t), handed out to
// at::get_num_threads() threads one part at a time (OpenMP dynamic schedule, the pool LibTorch
// uses too). Dynamic rather than at::parallel_for's one equal block per thread: on a shared
// machine a thread that loses its core takes fewer parts instead of holding up the whole
// layer. Serial inside another parallel region. `body` must not throw.
template <class Range, class F>
void for_each_part(int64_t parts, const Range& range, const F& body) {
  if (parts <= 0) return;
  const int64_t threads =
      at::in_parallel_region() ? 1 : std::min<int64_t>(at::get_num_threads(), parts);
  if (threads <= 1) {
    // Part by part on one thread too: the fused path's tile intermediates must stay in cache
    // (one call over a whole stage 0 streamed its 25 MB hidden layer through memory and ran
    // its 1x1 convs at about half speed).
    for (int64_t t = 0; t < parts; ++t) {
      const auto [begin, end] = range(t);
      body(begin, end);
    }
    return;
  }
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t t = 0; t < parts; ++t) {
    const auto [begin, end] = range(t);
    body(begin, end);
  }
}

}  // namespace detail

// body(begin, end) over [0, count) in tiles of `grain` (the last one shorter), in parallel.
template <class F>
void parallel_tiles(int64_t count, int64_t grain, const F& body) {
  if (count <= 0) return;
  detail::for_each_part((count + grain - 1) / grain,
                        [&](int64_t t) {
                          return std::pair<int64_t, int64_t>(t * grain,
                                                             std::min(count, (t + 1) * grain));
                        },
                        body);
}

// body(begin, end) over [0, count) in `parts` parts whose sizes differ by at most one, in
// parallel. With a multiple of the thread count as `parts` every thread gets the same work to
// within a part's row, where tiles of a fixed size leave one thread a short last tile to wait
// on the other (at batch 8 on 2 threads, 22 tiles of 6 rows over 128: 3% of a layer).
template <class F>
void parallel_parts(int64_t count, int64_t parts, const F& body) {
  parts = std::min(parts, count);
  detail::for_each_part(
      parts,
      [&](int64_t t) {
        return std::pair<int64_t, int64_t>(t * count / parts, (t + 1) * count / parts);
      },
      body);
}

// The number of parts for `count` items in parts of about `size` on `threads` threads: a
// multiple of the thread count, for parallel_parts.
inline int64_t balanced_parts(int64_t count, int64_t size, int64_t threads) {
  const int64_t parts = (count + size - 1) / size;
  threads = std::max<int64_t>(1, threads);
  return (parts + threads - 1) / threads * threads;
}

}  // namespace cnp::model
