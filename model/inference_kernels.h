#pragma once
// Torch-free CPU kernels of the optimized inference path, on raw NHWC float32 buffers.
// Each works on a range of independent items so that the caller can split the work
// over threads (at::parallel_for in the model, a plain loop in the CUDA test).
#include <cstdint>

namespace cnp::model::kernels {

// Depthwise KxK convolution, stride 1, zero padding K/2, NHWC: out[n,y,x,c] =
// bias[c] + sum_k weight[ky,kx,c] * in[n, y+ky-K/2, x+kx-K/2, c], optionally followed by
// ReLU. Computes output rows [row_begin, row_end) of the n*height rows; `out` points at the
// output of row row_begin (so that a caller can compute a few rows into a small buffer).
void depthwise_conv_nhwc(const float* in, const float* weight /* K*K*C */, const float* bias,
                         float* out, int64_t height, int64_t width, int64_t channels, int kernel,
                         bool relu, int64_t row_begin, int64_t row_end);

// Image rows per tile where a depthwise conv and the 1x1 convs after it run fused, one tile at a
// time (OptimizedNetwork::fused_rows): ~96 pixels (8 of the AVX-512 GEMM's 12-row blocks), fewer
// where that would leave fewer than 8 tiles per thread to balance. `rows` = images x height.
int64_t fused_tile_rows(int64_t rows, int64_t width, int threads);

// Soft-argmax of a channels-last heatmap: logits[n, y, x, j * depth + d] for a height x
// width grid. With upsample2x, the volume is first upsampled bilinearly to 2*height x
// 2*width (align_corners=True, what nn.UpsamplingBilinear2d does), on the fly. For each
// (sample, joint) item in [item_begin, item_end) (item = sample * joints + joint) writes
// the expected (x, y, z) voxel index of softmax over the whole depth x H x W volume to
// out[item * 3 + 0..2]. Never materialises the volume: one output row at a time, with a
// running maximum (rescaling the sums when it grows), so logits of any size are safe.
void soft_argmax_nhwc(const float* logits, int64_t joints, int64_t depth, int64_t height,
                      int64_t width, bool upsample2x, float* out, int64_t item_begin,
                      int64_t item_end);

// 1x1 convolution on channels-last rows with a fused epilogue, for rows [row_begin,
// row_end) of the (rows, k) matrix a: out[m, n] = act(a[m, :] . w[n, :] + bias[n]
// (+ residual[m, n] unless residual is null)), act = ReLU when relu. The residual is laid out
// as out (n floats a row) and may be out itself. w (n, k) is packed
// once by pack_gemm_weights into gemm_packed_size(n, k) floats. Hand-written because the
// OpenBLAS that Debian's LibTorch calls may pick a pre-AVX kernel on CPUs it does not
// know, and to fuse bias, ReLU and residual into the GEMM's single pass over the output.
// Available only where gemm_available() (the AVX2 build on an AVX2 CPU).
bool gemm_available();
int64_t gemm_packed_size(int64_t n, int64_t k);
void pack_gemm_weights(const float* w, int64_t n, int64_t k, float* packed);
void gemm_bias(const float* a, int64_t k, const float* packed, int64_t n, const float* bias,
               float* out, const float* residual, bool relu, int64_t row_begin, int64_t row_end);

// The same GEMM with bf16 inputs and fp32 accumulation (precision bf16 on CPU): a (fp32) is
// rounded to bf16 on the fly, w (n, k) packed once by pack_gemm_weights_bf16 into
// gemm_bf16_packed_size(n, k) 16-bit values. Available only where gemm_bf16_available()
// (a CPU with AVX512_BF16).
bool gemm_bf16_available();
int64_t gemm_bf16_packed_size(int64_t n, int64_t k);
void pack_gemm_weights_bf16(const float* w, int64_t n, int64_t k, uint16_t* packed);
void gemm_bias_bf16(const float* a, int64_t k, const uint16_t* packed, int64_t n, const float* bias,
                    float* out, const float* residual, bool relu, int64_t row_begin,
                    int64_t row_end);
// "amx" or "avx512_bf16": what gemm_bias_bf16 runs on here.
const char* gemm_bf16_isa();

// Which instruction set the kernels dispatch to on this CPU: "avx512", "avx2" or "generic", the
// best the CPU and the build have, capped by the environment variable CNP_CPU_ISA (avx512, avx2
// or generic), which lets the AVX2 and generic kernels be tested and measured on an AVX-512 CPU.
const char* kernel_isa();
// Throws cnp::Error when CNP_CPU_ISA is set to anything else (the kernels then ignore it).
void check_isa_setting();

}  // namespace cnp::model::kernels
