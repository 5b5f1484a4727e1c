#pragma once
// The kernels of inference_kernels.h written once over a small vector abstraction V
// (ScalarLanes here, Avx2Lanes in inference_kernels_avx2.cpp). Included by exactly two
// translation units, each inside its own namespace (CNP_KERNEL_NS), so that the AVX2
// instantiations can never be merged with the generic ones at link time. No standard
// library templates are instantiated here for the same reason.
#include <cmath>
#include <cstdint>
#include <cstdlib>

#ifndef CNP_KERNEL_NS
#error "define CNP_KERNEL_NS before including inference_kernels_impl.h"
#endif

namespace cnp::model::kernels::CNP_KERNEL_NS {
namespace {

struct ScalarLanes {
  using T = float;
  static constexpr int width = 1;
  static T load(const float* p) { return *p; }
  static void store(float* p, T v) { *p = v; }
  static T set1(float x) { return x; }
  static T add(T a, T b) { return a + b; }
  static T sub(T a, T b) { return a - b; }
  static T mul(T a, T b) { return a * b; }
  static T fmadd(T a, T b, T c) { return a * b + c; }
  static T max(T a, T b) { return a > b ? a : b; }
  static T exp(T x) { return std::exp(x); }
  static float hsum(T v) { return v; }
  static float hmax(T v) { return v; }
};

inline int64_t imin(int64_t a, int64_t b) {
  return a < b ? a : b;
}
inline int64_t imax(int64_t a, int64_t b) {
  return a > b ? a : b;
}

// A malloc'd float buffer (no std::vector: see the top of this file).
struct FloatBuffer {
  explicit FloatBuffer(int64_t n)
      : data(static_cast<float*>(std::aligned_alloc(64, ((n * 4 + 63) / 64) * 64))) {}
  ~FloatBuffer() { std::free(data); }
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
  float* data;
};

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

// Bilinear source index pair and weight of output index `i` (align_corners=True), in
// float like PyTorch's CPU kernel.
inline void source_of(int64_t i, int64_t in_size, int64_t out_size, int64_t& i0, int64_t& i1,
                      float& frac) {
  const float scale =
      out_size > 1 ? static_cast<float>(in_size - 1) / static_cast<float>(out_size - 1) : 0.0f;
  const float real = scale * static_cast<float>(i);
  i0 = imin(static_cast<int64_t>(real), in_size - 1);
  i1 = i0 + (i0 < in_size - 1 ? 1 : 0);
  frac = real - static_cast<float>(i0);
}

// The running sums of one (sample, joint) item, relative to running_max.
struct SoftArgmaxState {
  double total = 0, sum_x = 0, sum_y = 0;
  double* sum_z = nullptr;  // depth values
  float running_max = -INFINITY;
  bool not_finite = false;  // a NaN or +infinite logit: the coordinates are NaN
};

// Where output pixel ox of a row upsampled 2x comes from: the two input columns' offsets in the
// vertically interpolated row and their weights (x_sources).
struct XSource {
  int64_t left, right;
  float w_left, w_right;
};

// The states of a call's items (new[]: no standard library templates here, see the top).
struct SoftArgmaxScratch {
  SoftArgmaxScratch(int64_t items, int64_t depth, int64_t width)
      : states(new SoftArgmaxState[items]),
        sum_z(new double[items * depth]),
        x_sources(new XSource[2 * width]) {}
  ~SoftArgmaxScratch() {
    delete[] states;
    delete[] sum_z;
    delete[] x_sources;
  }
  SoftArgmaxScratch(const SoftArgmaxScratch&) = delete;
  SoftArgmaxScratch& operator=(const SoftArgmaxScratch&) = delete;
  SoftArgmaxState* states;
  double* sum_z;
  XSource* x_sources;  // where upsampled: the output row's pixels' sources (x_sources)
};

// The pixels of an output row where they are the logits themselves: `stride` floats apart.
template <class V>
struct PlainRow {
  struct Pixel {
    const float* p;
    typename V::T load(int64_t offset) const { return V::load(p + offset); }
  };
  const float* values;
  int64_t stride;
  Pixel at(int64_t ox) const { return {values + ox * stride}; }
};

// The table for input rows `width` wide, `depth` floats per pixel (2 * width entries). Computed
// per pixel and group of depth vectors instead, the sources made the decoder slower than it was
// with the interpolated row stored (A/B pairs: 1.01-1.05x against 1.12-1.24x with the table).
inline void x_sources(int64_t width, int64_t depth, XSource* sources) {
  for (int64_t ox = 0; ox < 2 * width; ++ox) {
    int64_t x0, x1;
    float fx;
    source_of(ox, width, 2 * width, x0, x1, fx);
    sources[ox] = XSource{x0 * depth, x1 * depth, 1.0f - fx, fx};
  }
}

// The pixels of an output row upsampled 2x on the fly from `vertical` (the input row already
// interpolated to this output row, width x depth): bilinear in x as PyTorch computes it.
template <class V>
struct UpsampledRow {
  struct Pixel {
    const float* left;
    const float* right;
    typename V::T w_left, w_right;
    typename V::T load(int64_t offset) const {
      return V::fmadd(w_left, V::load(left + offset), V::mul(w_right, V::load(right + offset)));
    }
  };
  const float* vertical;
  const XSource* sources;
  Pixel at(int64_t ox) const {
    const XSource& x = sources[ox];
    return {vertical + x.left, vertical + x.right, V::set1(x.w_left), V::set1(x.w_right)};
  }
};

// Depth vectors [d, d + G) of one output row of `out_w` pixels: stores each vector's sum of
// exp(value - shift) over the row to row_z and adds the sums, and the sums weighted by the
// pixel's x, to vsum and vsum_x. G vectors at once: their exps are independent chains of ~15
// operations, too few to overlap with one vector alone (G = 4: the decoder 1.07-1.10x).
template <class V, int G, class Row>
inline void exp_sums(const Row& row, int64_t d, int64_t out_w, typename V::T shift,
                     typename V::T& vsum, typename V::T& vsum_x, float* row_z) {
  using T = typename V::T;
  const T one = V::set1(1.0f);
  T z_part[G], x_part[G], position = V::set1(0.0f);
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g) z_part[g] = x_part[g] = V::set1(0.0f);
  for (int64_t ox = 0; ox < out_w; ++ox) {
    const auto pixel = row.at(ox);
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      const T e = V::exp(V::sub(pixel.load(d + g * V::width), shift));
      z_part[g] = V::add(z_part[g], e);
      x_part[g] = V::fmadd(position, e, x_part[g]);
    }
    position = V::add(position, one);
  }
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g) {
    vsum = V::add(vsum, z_part[g]);
    vsum_x = V::add(vsum_x, x_part[g]);
    V::store(row_z + d + g * V::width, z_part[g]);
  }
}

// Adds the row's exps to vsum, vsum_x and row_z (exp_sums over all of `depth`).
template <class V, class Row>
void row_exp_sums(const Row& row, int64_t depth, int64_t out_w, typename V::T shift,
                  typename V::T& vsum, typename V::T& vsum_x, float* row_z) {
  int64_t d = 0;
  for (; d + 4 * V::width <= depth; d += 4 * V::width)
    exp_sums<V, 4>(row, d, out_w, shift, vsum, vsum_x, row_z);
  for (; d + 2 * V::width <= depth; d += 2 * V::width)
    exp_sums<V, 2>(row, d, out_w, shift, vsum, vsum_x, row_z);
  for (; d < depth; d += V::width) exp_sums<V, 1>(row, d, out_w, shift, vsum, vsum_x, row_z);
}

// Adds output row `oy` of one item (`depth` a multiple of V::width) to its state.
//
// The softmax's shift is the running maximum of the values the row is interpolated from: a
// bilinear value is a convex combination of them, so it lies at or below that maximum (to a
// rounding), and the interpolated row never needs storing: it is computed where exp reads it.
template <class V>
void soft_argmax_row(const float* sample, int64_t channels, int64_t depth, int64_t height,
                     int64_t width, bool upsample, int64_t oy, SoftArgmaxState& state,
                     float* vertical, const XSource* sources, float* row_z) {
  // The maximum of the values the row comes from, in one pass (computing them where upsampled).
  //
  // 0 * max(0, x) is NaN exactly when x is NaN or +infinite (max returns its second operand
  // when one is NaN). The vector max and the clamped vector exp would otherwise turn NaN
  // logits (NaN weights) into finite coordinates; they must be NaN, as the plain softmax
  // gives, so the sweep refuses the job. A -infinite logit is a probability of 0, as there.
  // (Where the x interpolation multiplies a -infinite value by a weight of 0, the NaN it makes,
  // as PyTorch's does, flows through V::exp into the sums.)
  typename V::T vmax = V::set1(-INFINITY), vbad = V::set1(0.0f);
  const typename V::T zero = V::set1(0.0f);
  auto track = [&](typename V::T x) {
    vmax = V::max(vmax, x);
    vbad = V::fmadd(zero, V::max(zero, x), vbad);
  };
  const float* row_values = sample + oy * width * channels;
  if (upsample) {
    int64_t y0, y1;
    float fy;
    source_of(oy, height, 2 * height, y0, y1, fy);
    const typename V::T wy0 = V::set1(1.0f - fy), wy1 = V::set1(fy);
    const float* r0 = sample + y0 * width * channels;
    const float* r1 = sample + y1 * width * channels;
    for (int64_t x = 0; x < width; ++x)
      for (int64_t d = 0; d < depth; d += V::width) {
        const typename V::T v = V::fmadd(wy0, V::load(r0 + x * channels + d),
                                         V::mul(wy1, V::load(r1 + x * channels + d)));
        V::store(vertical + x * depth + d, v);
        track(v);
      }
  } else {
    for (int64_t x = 0; x < width; ++x)
      for (int64_t d = 0; d < depth; d += V::width) track(V::load(row_values + x * channels + d));
  }
  if (!std::isfinite(V::hsum(vbad))) {
    state.not_finite = true;
    return;
  }
  const float row_max = V::hmax(vmax);
  if (row_max > state.running_max) {
    // Sums so far were relative to the old maximum.
    const double rescale = std::exp(static_cast<double>(state.running_max) - row_max);
    state.total *= rescale;
    state.sum_x *= rescale;
    state.sum_y *= rescale;
    for (int64_t d = 0; d < depth; ++d) state.sum_z[d] *= rescale;
    state.running_max = row_max;
  }

  const typename V::T shift = V::set1(state.running_max);
  typename V::T vsum = V::set1(0.0f), vsum_x = V::set1(0.0f);
  if (upsample)
    row_exp_sums<V>(UpsampledRow<V>{vertical, sources}, depth, 2 * width, shift, vsum, vsum_x,
                    row_z);
  else
    row_exp_sums<V>(PlainRow<V>{row_values, channels}, depth, width, shift, vsum, vsum_x, row_z);
  const double row_total = V::hsum(vsum);
  state.total += row_total;
  state.sum_x += V::hsum(vsum_x);
  state.sum_y += static_cast<double>(oy) * row_total;
  for (int64_t d = 0; d < depth; ++d) state.sum_z[d] += row_z[d];
}

// Items [item_begin, item_end), item = sample * joints + joint. The items of one sample go row
// by row together: a row of logits holds every joint's depth vectors side by side, so it is
// read from memory once, in order, instead of once per joint in 256-byte pieces a pixel's
// channels apart (where the hardware prefetcher does not follow). Each item sees the same
// operations in the same order as alone.
template <class V>
void soft_argmax_items(const float* logits, int64_t joints, int64_t depth, int64_t height,
                       int64_t width, bool upsample, float* out, int64_t item_begin,
                       int64_t item_end) {
  const int64_t channels = joints * depth;
  const int64_t out_h = upsample ? 2 * height : height;
  FloatBuffer vertical(width * depth), row_z(depth);
  SoftArgmaxScratch scratch(imin(joints, item_end - item_begin), depth, width);
  if (upsample) x_sources(width, depth, scratch.x_sources);
  SoftArgmaxState* states = scratch.states;
  for (int64_t first = item_begin; first < item_end;) {
    const int64_t sample = first / joints;
    const int64_t last = imin(item_end, (sample + 1) * joints);  // this sample's items
    const float* base = logits + sample * height * width * channels;
    for (int64_t i = 0; i < last - first; ++i) {
      states[i] = SoftArgmaxState{};
      states[i].sum_z = scratch.sum_z + i * depth;
      for (int64_t d = 0; d < depth; ++d) states[i].sum_z[d] = 0;
    }
    for (int64_t oy = 0; oy < out_h; ++oy)
      for (int64_t item = first; item < last; ++item) {
        SoftArgmaxState& state = states[item - first];
        if (state.not_finite) continue;
        soft_argmax_row<V>(base + (item % joints) * depth, channels, depth, height, width, upsample,
                           oy, state, vertical.data, scratch.x_sources, row_z.data);
      }
    for (int64_t item = first; item < last; ++item) {
      const SoftArgmaxState& state = states[item - first];
      float* o = out + item * 3;
      if (state.not_finite) {
        o[0] = o[1] = o[2] = NAN;
        continue;
      }
      double z = 0;
      for (int64_t d = 0; d < depth; ++d) z += static_cast<double>(d) * state.sum_z[d];
      o[0] = static_cast<float>(state.sum_x / state.total);
      o[1] = static_cast<float>(state.sum_y / state.total);
      o[2] = static_cast<float>(z / state.total);
    }
    first = last;
  }
}

// GEMM with a fused epilogue for 1x1 convs on channels-last rows: out[m, n] =
// act(a[m, :] . w[n, :] + bias[n] (+ out[m, n])). w is pre-packed in panels of
// kPanel(V) = 2 vectors of output channels: packed[panel][k][kPanel], zero-padded.
template <class V>
constexpr int64_t panel_width() {
  return 2 * V::width;
}

template <class V>
void pack_panels(const float* w, int64_t n, int64_t k, float* packed) {
  constexpr int64_t P = panel_width<V>();
  const int64_t panels = (n + P - 1) / P;
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t j = 0; j < P; ++j) {
        const int64_t col = p * P + j;
        packed[(p * k + kk) * P + j] = col < n ? w[col * k + kk] : 0.0f;
      }
}

// ROWS (<= 6) rows of a times one panel: 2 * ROWS accumulators held in registers.
template <class V, int ROWS>
inline void gemm_micro(const float* a, int64_t lda, const float* panel, int64_t k,
                       const float* bias, float* out, int64_t ldo, int64_t cols,
                       const float* residual, bool relu) {
  // Every loop over the rows is unrolled, so the accumulators live in registers only. GCC
  // otherwise also kept them in a stack array, zeroed it with two `rep stos` per call and spilled
  // them there for the epilogue: the AVX2 kernel's first 1x1 conv of S's stage 0 (k = 48) ran
  // 1.23-1.32x slower that way, stage 1's 1.12-1.19x, larger k less (A/B pairs, one thread).
  typename V::T acc0[ROWS], acc1[ROWS];
#pragma GCC unroll 6
  for (int r = 0; r < ROWS; ++r) acc0[r] = acc1[r] = V::set1(0.0f);
  for (int64_t kk = 0; kk < k; ++kk) {
    // The panel's row 32 steps ahead into L1, as the AVX-512 kernel does (see there): with
    // AVX2 S's stage-3 1x1 convs ran 1.02-1.05x, the others within 1% (A/B pairs).
    __builtin_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(panel) +
                                                     sizeof(float) * (kk + 32) * 2 * V::width),
                       0, 3);
    const typename V::T b0 = V::load(panel + kk * 2 * V::width);
    const typename V::T b1 = V::load(panel + kk * 2 * V::width + V::width);
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; ++r) {
      const typename V::T x = V::set1(a[r * lda + kk]);
      acc0[r] = V::fmadd(x, b0, acc0[r]);
      acc1[r] = V::fmadd(x, b1, acc1[r]);
    }
  }
  if (cols == 2 * V::width) {
    const typename V::T bias0 = V::load(bias), bias1 = V::load(bias + V::width);
    const typename V::T zero = V::set1(0.0f);
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; ++r) {
      float* o = out + r * ldo;
      typename V::T v0 = V::add(acc0[r], bias0), v1 = V::add(acc1[r], bias1);
      if (residual) {
        const float* res = residual + r * ldo;
        v0 = V::add(v0, V::load(res));
        v1 = V::add(v1, V::load(res + V::width));
      }
      if (relu) {
        v0 = V::max(zero, v0);  // NaN-preserving ReLU (see the depthwise kernel)
        v1 = V::max(zero, v1);
      }
      V::store(o, v0);
      V::store(o + V::width, v1);
    }
    return;
  }
  float tile[2 * V::width];
#pragma GCC unroll 6
  for (int r = 0; r < ROWS; ++r) {
    V::store(tile, acc0[r]);
    V::store(tile + V::width, acc1[r]);
    float* o = out + r * ldo;
    const float* res = residual ? residual + r * ldo : nullptr;
    for (int64_t j = 0; j < cols; ++j) {
      float v = tile[j] + bias[j] + (res ? res[j] : 0.0f);
      o[j] = relu && v < 0.0f ? 0.0f : v;
    }
  }
}

template <class V>
void gemm_rows(const float* a, int64_t k, const float* packed, int64_t n, const float* bias,
               float* out, const float* residual, bool relu, int64_t row_begin, int64_t row_end) {
  constexpr int64_t P = panel_width<V>();
  constexpr int64_t kRows = 6, kBlock = 48;  // a block of rows stays in cache over all panels
  const int64_t panels = (n + P - 1) / P;
  for (int64_t block = row_begin; block < row_end; block += kBlock) {
    const int64_t block_end = imin(block + kBlock, row_end);
    for (int64_t p = 0; p < panels; ++p) {
      const float* panel = packed + p * k * P;
      const int64_t col = p * P, cols = imin(P, n - col);
      int64_t m = block;
      for (; m + kRows <= block_end; m += kRows)
        gemm_micro<V, kRows>(a + m * k, k, panel, k, bias + col, out + m * n + col, n, cols,
                             residual ? residual + m * n + col : nullptr, relu);
      const float* ar = a + m * k;
      float* o = out + m * n + col;
      // The last 1..kRows-1 rows of the block, with a micro-kernel of exactly that height.
      using Micro = void (*)(const float*, int64_t, const float*, int64_t, const float*, float*,
                             int64_t, int64_t, const float*, bool);
      static constexpr Micro kTail[kRows] = {nullptr,          gemm_micro<V, 1>, gemm_micro<V, 2>,
                                             gemm_micro<V, 3>, gemm_micro<V, 4>, gemm_micro<V, 5>};
      if (block_end > m)
        kTail[block_end - m](ar, k, panel, k, bias + col, o, n, cols,
                             residual ? residual + m * n + col : nullptr, relu);
    }
  }
}

}  // namespace
}  // namespace cnp::model::kernels::CNP_KERNEL_NS
