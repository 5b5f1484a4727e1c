#pragma once
// The depthwise KxK convolution kernels, written once over the lanes V. Only for
// inference_kernels_impl.h, which includes it in the namespace of one instruction set
// (CNP_KERNEL_NS) after the lanes and helpers that every part uses.
#ifndef CNP_KERNEL_NS
#error "include inference_kernels_impl.h, not inference_kernels_impl_depthwise.h"
#endif

namespace cnp::model::kernels::CNP_KERNEL_NS {
namespace {

// U vectors of channels starting at `c` of one output pixel; accumulators stay in
// registers over all taps.
template <class V, int U>
inline void depthwise_block(const float* image, const float* weight, const float* bias, float* o,
                            int64_t width, int64_t channels, int kernel, int64_t top, int64_t left,
                            int64_t ky0, int64_t ky1, int64_t kx0, int64_t kx1, bool relu,
                            int64_t c) {
  typename V::T acc[U];
  for (int u = 0; u < U; ++u) acc[u] = V::load(bias + c + u * V::width);
  for (int64_t ky = ky0; ky < ky1; ++ky) {
    const float* irow = image + ((top + ky) * width + left) * channels + c;
    const float* wrow = weight + ky * kernel * channels + c;
    for (int64_t kx = kx0; kx < kx1; ++kx) {
      const float* ip = irow + kx * channels;
      const float* wp = wrow + kx * channels;
      for (int u = 0; u < U; ++u)
        acc[u] = V::fmadd(V::load(wp + u * V::width), V::load(ip + u * V::width), acc[u]);
    }
  }
  for (int u = 0; u < U; ++u) {
    // max(0, x), not max(x, 0): the vector max returns its second operand for a NaN, and a
    // NaN must survive ReLU as it does in LibTorch (NaN weights are then refused, not hidden).
    if (relu) acc[u] = V::max(V::set1(0.0f), acc[u]);
    V::store(o + u * V::width, acc[u]);
  }
}

// Tail: narrower lanes for the channels left over from V's blocks (then scalar).
template <class V, class Tail = ScalarLanes>
void depthwise_conv_rows(const float* in, const float* weight, const float* bias, float* out,
                         int64_t height, int64_t width, int64_t channels, int kernel, bool relu,
                         int64_t row_begin, int64_t row_end) {
  constexpr int kUnroll = 4;
  const int64_t pad = kernel / 2;
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t n = row / height, y = row % height;
    const float* image = in + n * height * width * channels;
    const int64_t ky0 = imax(0, pad - y), ky1 = imin(kernel, height + pad - y);
    for (int64_t x = 0; x < width; ++x) {
      const int64_t kx0 = imax(0, pad - x), kx1 = imin(kernel, width + pad - x);
      float* o = out + ((row - row_begin) * width + x) * channels;
      const int64_t top = y - pad, left = x - pad;
      int64_t c = 0;
      for (; c + kUnroll * V::width <= channels; c += kUnroll * V::width)
        depthwise_block<V, kUnroll>(image, weight, bias, o + c, width, channels, kernel, top, left,
                                    ky0, ky1, kx0, kx1, relu, c);
      for (; c + V::width <= channels; c += V::width)
        depthwise_block<V, 1>(image, weight, bias, o + c, width, channels, kernel, top, left, ky0,
                              ky1, kx0, kx1, relu, c);
      for (; c + Tail::width <= channels; c += Tail::width)
        depthwise_block<Tail, 1>(image, weight, bias, o + c, width, channels, kernel, top, left,
                                 ky0, ky1, kx0, kx1, relu, c);
      for (; c < channels; ++c)
        depthwise_block<ScalarLanes, 1>(image, weight, bias, o + c, width, channels, kernel, top,
                                        left, ky0, ky1, kx0, kx1, relu, c);
    }
  }
}

// Depthwise KxK on strips of U output pixels of one row, V::width channels at a time: the
// row's K weight vectors and the U accumulators stay in registers, and each input pixel is
// loaded once per kernel row for all the outputs it feeds (the per-pixel kernel above reloads
// every weight and input for every output: ~20 GFLOP/s, load-bound, with AVX2 or AVX-512).
// The last group of fewer than V::width channels goes through V's masked loads and stores.
// For the SIMD lanes only (V::Mask, V::mask, V::load_masked, V::store_masked).
// One strip at x, its U + K - 1 input columns x - pad + i. Which of them lie in the zero padding
// is known at compile time for an interior strip (none), the first strip of a row (i < pad), the
// last (i >= U + pad) and a strip that is the whole row (both): their code has no branches. Only
// a row whose width is not a multiple of U has a strip that checks each column at run time (with
// the checks in every strip, the compiler kept them all and spilled registers).
enum StripEdges { kInterior = 0, kLeftEdge = 1, kRightEdge = 2, kCheckedEdges = 4 };
template <class V, int K, int U, bool TAIL, int EDGES>
inline void depthwise_strip(const float* image, const float* weight, typename V::T b,
                            float* out_row, int64_t x, int64_t y, int64_t width, int64_t channels,
                            int64_t ky0, int64_t ky1, bool relu, int64_t c, typename V::Mask mask) {
  using T = typename V::T;
  constexpr int64_t pad = K / 2;
  auto load = [mask](const float* p) {
    if constexpr (TAIL)
      return V::load_masked(mask, p);
    else
      return V::load(p);
  };
  T acc[U];
#pragma GCC unroll 16
  for (int u = 0; u < U; ++u) acc[u] = b;
  // Whether input column i (x - pad + i) lies inside the row; known at compile time except in
  // a checked strip.
  auto inside = [x, width](int i) {
    const int64_t ix = x - pad + i;
    if constexpr ((EDGES & kCheckedEdges) != 0) {
      if (ix < 0 || ix >= width) return false;  // zero padding
    }
    if ((EDGES & kLeftEdge) && i < pad) return false;
    if ((EDGES & kRightEdge) && i >= U + pad) return false;
    return true;
  };
  for (int64_t ky = ky0; ky < ky1; ++ky) {
    const float* irow = image + (y + ky - pad) * width * channels + c;
    T w[K];
    if constexpr (K >= 7) {
      // Column j of the row (weights: kx) as base[j / 3] + (j % 3) * channels: a base register
      // per three columns and base + index * scale addressing. The compiler otherwise kept a
      // pointer per column, 21 in all, and spilled them (the asm keeps it from rebuilding
      // them). Integers for the input's bases: column x - pad may lie before the row, and a
      // pointer outside the buffer may not even be formed (only columns inside are read).
      const float* in_base[(U + K + 1) / 3];
      const float* w_base[(K + 2) / 3];
      const uintptr_t first =
          reinterpret_cast<uintptr_t>(irow) +
          static_cast<uintptr_t>((x - pad) * channels * static_cast<int64_t>(sizeof(float)));
#pragma GCC unroll 16
      for (int j = 0; j < (U + K + 1) / 3; ++j) {
        in_base[j] = reinterpret_cast<const float*>(first + sizeof(float) * 3 * j * channels);
        asm("" : "+r"(in_base[j]));
      }
#pragma GCC unroll 16
      for (int j = 0; j < (K + 2) / 3; ++j) {
        w_base[j] = weight + (ky * K + 3 * j) * channels + c;
        asm("" : "+r"(w_base[j]));
      }
#pragma GCC unroll 16
      for (int kx = 0; kx < K; ++kx) w[kx] = load(w_base[kx / 3] + (kx % 3) * channels);
#pragma GCC unroll 32
      for (int i = 0; i < U + K - 1; ++i) {  // input column x - pad + i feeds u = i - kx
        if (!inside(i)) continue;
        const T v = load(in_base[i / 3] + (i % 3) * channels);
#pragma GCC unroll 16
        for (int kx = 0; kx < K; ++kx) {
          const int u = i - kx;
          if (u >= 0 && u < U) acc[u] = V::fmadd(w[kx], v, acc[u]);
        }
      }
    } else {
      // 3 x 3 needs few enough pointers, and ran up to 10% slower with the bases above.
#pragma GCC unroll 16
      for (int kx = 0; kx < K; ++kx) w[kx] = load(weight + (ky * K + kx) * channels + c);
#pragma GCC unroll 32
      for (int i = 0; i < U + K - 1; ++i) {
        if (!inside(i)) continue;
        const T v = load(irow + (x - pad + i) * channels);
#pragma GCC unroll 16
        for (int kx = 0; kx < K; ++kx) {
          const int u = i - kx;
          if (u >= 0 && u < U) acc[u] = V::fmadd(w[kx], v, acc[u]);
        }
      }
    }
  }
  float* o = out_row + x * channels + c;
  const int64_t valid = imin(U, width - x);
#pragma GCC unroll 16
  for (int u = 0; u < U; ++u) {
    if (u >= valid) break;
    const T v = relu ? V::max(V::set1(0.0f), acc[u]) : acc[u];  // NaN-preserving ReLU
    if constexpr (TAIL)
      V::store_masked(o + u * channels, mask, v);
    else
      V::store(o + u * channels, v);
  }
}

template <class V, int K, int U, bool TAIL>
inline void depthwise_strip_channels(const float* image, const float* weight, const float* bias,
                                     float* out_row, int64_t y, int64_t width, int64_t channels,
                                     int64_t ky0, int64_t ky1, bool relu, int64_t c,
                                     typename V::Mask mask) {
  constexpr int64_t pad = K / 2;
  const typename V::T b = TAIL ? V::load_masked(mask, bias + c) : V::load(bias + c);
  for (int64_t x = 0; x < width; x += U) {
    const bool left_inside = x >= pad, right_inside = x + U + pad <= width;
    if (left_inside && right_inside)
      depthwise_strip<V, K, U, TAIL, kInterior>(image, weight, b, out_row, x, y, width, channels,
                                                ky0, ky1, relu, c, mask);
    else if (x == 0 && right_inside)
      depthwise_strip<V, K, U, TAIL, kLeftEdge>(image, weight, b, out_row, x, y, width, channels,
                                                ky0, ky1, relu, c, mask);
    else if (x + U == width && left_inside)
      depthwise_strip<V, K, U, TAIL, kRightEdge>(image, weight, b, out_row, x, y, width, channels,
                                                 ky0, ky1, relu, c, mask);
    else if (x == 0 && width == U)
      depthwise_strip<V, K, U, TAIL, kLeftEdge | kRightEdge>(image, weight, b, out_row, x, y, width,
                                                             channels, ky0, ky1, relu, c, mask);
    else
      depthwise_strip<V, K, U, TAIL, kCheckedEdges>(image, weight, b, out_row, x, y, width,
                                                    channels, ky0, ky1, relu, c, mask);
  }
}

// The contract of depthwise_conv_nhwc for one kernel size K, with strips of U pixels.
template <class V, int K, int U>
void depthwise_strips(const float* in, const float* weight, const float* bias, float* out,
                      int64_t height, int64_t width, int64_t channels, bool relu, int64_t row_begin,
                      int64_t row_end) {
  constexpr int64_t pad = K / 2;
  const int64_t full = channels / V::width * V::width;
  const typename V::Mask all = V::mask(V::width), tail = V::mask(channels - full);
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t n = row / height, y = row % height;
    const float* image = in + n * height * width * channels;
    float* out_row = out + (row - row_begin) * width * channels;
    const int64_t ky0 = imax(0, pad - y), ky1 = imin(K, height + pad - y);
    for (int64_t c = 0; c < full; c += V::width)
      depthwise_strip_channels<V, K, U, false>(image, weight, bias, out_row, y, width, channels,
                                               ky0, ky1, relu, c, all);
    if (full < channels)
      depthwise_strip_channels<V, K, U, true>(image, weight, bias, out_row, y, width, channels, ky0,
                                              ky1, relu, full, tail);
  }
}

}  // namespace
}  // namespace cnp::model::kernels::CNP_KERNEL_NS
