#pragma once
// The fused decoder (upsample, softmax, soft-argmax), written once over the lanes V. Only for
// inference_kernels_impl.h, which includes it in the namespace of one instruction set
// (CNP_KERNEL_NS) after the lanes and helpers that every part uses.
#ifndef CNP_KERNEL_NS
#error "include inference_kernels_impl.h, not inference_kernels_impl_soft_argmax.h"
#endif

namespace cnp::model::kernels::CNP_KERNEL_NS {
namespace {

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

// The states of a call's items (new[]: no standard library templates here; see
// inference_kernels_impl.h).
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

}  // namespace
}  // namespace cnp::model::kernels::CNP_KERNEL_NS
