// bf16 GEMM for CPUs with AVX512_BF16, on AMX tiles where the CPU and the kernel allow them.
// Hand-written because Debian's LibTorch 1.13 has no bf16 GEMM that uses these instructions
// (its CPU bf16 network is several times slower than fp32). VDPBF16PS alone (2 bf16 products
// into each fp32 lane) measured no faster than the fp32 FMA kernel on a Xeon that has both,
// so AMX's TDPBF16PS does the work where present. CMake compiles this file alone with
// -mavx512bf16 -mamx-bf16; inference_kernels.cpp calls it only after checking the CPU. Inputs
// are rounded to bf16 (nearest even), products are exact in fp32 and accumulate in fp32;
// bias, residual and ReLU are applied in fp32.
#include "model/inference_kernels_bf16.h"
#include "model/inference_kernels_avx512_store.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(__AVX512BF16__) && defined(__AVX512F__) && defined(__AMX_BF16__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace cnp::model::kernels::bf16 {
namespace {

constexpr int64_t kPanel = 32;      // output columns per packed panel (2 vectors of 16)
constexpr int64_t kPairAlign = 16;  // pairs per AMX tile row block: k padded to 32 in the packing

inline int64_t padded_pairs(int64_t k) {
  return ((k + 1) / 2 + kPairAlign - 1) / kPairAlign * kPairAlign;
}

inline int64_t imin(int64_t a, int64_t b) {
  return a < b ? a : b;
}

// fp32 -> bf16, round to nearest even; NaN stays a (quiet) NaN.
inline uint16_t to_bf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

using avx512_store::lanes;

// ROWS x (16 * NV) outputs over `pairs` k-pairs. a: bf16 rows of lda elements (pairs
// adjacent, so one 32-bit broadcast feeds a pair); panel: [pair][32 columns][2].
template <int ROWS, int NV>
void micro(const uint16_t* a, int64_t lda, const uint16_t* panel, int64_t pairs, const float* bias,
           float* out, int64_t ldo, int64_t cols, const float* residual, bool relu) {
  __m512 acc[ROWS][NV];
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    __m512bh b[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      b[v] = (__m512bh)_mm512_loadu_si512(panel + (p * kPanel + v * 16) * 2);
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; ++r) {
      int32_t pair;
      std::memcpy(&pair, a + r * lda + 2 * p, sizeof pair);
      const __m512bh x = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], x, b[v]);
    }
  }
  avx512_store::store_tile<ROWS, NV>(acc, bias, out, ldo, cols, residual, relu);
}

using Micro = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, const float*, float*,
                       int64_t, int64_t, const float*, bool);
template <int NV>
constexpr Micro kMicro[13] = {nullptr,      micro<1, NV>, micro<2, NV>,  micro<3, NV>,
                              micro<4, NV>, micro<5, NV>, micro<6, NV>,  micro<7, NV>,
                              micro<8, NV>, micro<9, NV>, micro<10, NV>, micro<11, NV>,
                              micro<12, NV>};

// The block's rows as bf16, k zero-padded. One buffer per thread, grown as needed.
struct RowBuffer {
  uint16_t* data = nullptr;
  int64_t capacity = 0;
  ~RowBuffer() { std::free(data); }
  uint16_t* get(int64_t elements) {
    if (elements > capacity) {
      std::free(data);
      capacity = elements;
      data = static_cast<uint16_t*>(std::aligned_alloc(64, ((elements * 2 + 63) / 64) * 64));
    }
    return data;
  }
};

// Rows of a as bf16, k_even apart, zero-padded from k to k_even.
void convert_rows(const float* a, int64_t k, int64_t k_even, int64_t rows, uint16_t* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = a + r * k;
    uint16_t* dst = out + r * k_even;
    int64_t kk = 0;
    for (; kk + 32 <= k; kk += 32) {
      const __m512bh v =
          _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + kk + 16), _mm512_loadu_ps(src + kk));
      _mm512_storeu_si512(dst + kk, (__m512i)v);
    }
    for (; kk < k; ++kk) dst[kk] = to_bf16(src[kk]);
    for (; kk < k_even; ++kk) dst[kk] = 0;
  }
}

// AMX (Sapphire Rapids and later): TDPBF16PS multiplies a 16 x 32 bf16 tile of A by a
// 32 x 16 one of B into 16 x 16 fp32, 8192 multiply-adds per instruction (VDPBF16PS: 32).
// Linux hands out the 8 KB tile state only on request (arch_prctl, once per process); each
// thread loads its tile configuration before use and releases it after.
bool amx_ready() {
  static const bool ready = [] {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool tile = edx & (1u << 24), bf16 = edx & (1u << 22);
    if (!tile || !bf16) return false;
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ready;
}

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// tmm0-3: C (2 x 2 tiles of 16 x 16 fp32), tmm4-5: A (16 rows x 32 bf16), tmm6-7: B (16
// pairs x 16 columns x 2): every tile 16 rows of 64 bytes.
void configure_tiles() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.colsb[t] = 64;
    config.rows[t] = 16;
  }
  _tile_loadconfig(&config);
}

// One block of rows (bf16, k_pad apart) times every panel, 32 x 32 outputs at a time through
// a scratch tile; the epilogue as in micro().
void amx_block(const uint16_t* rows_bf16, int64_t block_rows, int64_t k_pad, const uint16_t* packed,
               int64_t n, const float* bias, float* out, const float* residual, bool relu) {
  alignas(64) float scratch[32 * 32];
  const int64_t panels = (n + kPanel - 1) / kPanel, pairs = k_pad / 2;
  // The tile loads are asm without a memory operand: make the converted rows visible.
  __asm__ volatile("" ::: "memory");
  for (int64_t m = 0; m < block_rows; m += 32) {
    const uint16_t* a0 = rows_bf16 + m * k_pad;
    // Rows past the block are read (the buffer holds kBlock rows) but never stored.
    const uint16_t* a1 = a0 + 16 * k_pad;
    const int64_t rows = imin(32, block_rows - m);
    for (int64_t p = 0; p < panels; ++p) {
      const uint16_t* panel = packed + p * pairs * kPanel * 2;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int64_t kb = 0; kb < k_pad; kb += 32) {
        _tile_loadd(4, a0 + kb, k_pad * 2);
        _tile_loadd(5, a1 + kb, k_pad * 2);
        _tile_loadd(6, panel + kb / 2 * kPanel * 2, kPanel * 4);
        _tile_loadd(7, panel + kb / 2 * kPanel * 2 + 32, kPanel * 4);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
      _tile_stored(0, scratch, 128);
      _tile_stored(1, scratch + 16, 128);
      _tile_stored(2, scratch + 16 * 32, 128);
      _tile_stored(3, scratch + 16 * 32 + 16, 128);
      const int64_t col = p * kPanel, cols = imin(kPanel, n - col);
      const __mmask16 mask0 = lanes(cols), mask1 = lanes(cols - 16);
      const __m512 bias0 = _mm512_maskz_loadu_ps(mask0, bias + col);
      const __m512 bias1 = _mm512_maskz_loadu_ps(mask1, bias + col + 16);
      for (int64_t r = 0; r < rows; ++r) {
        float* o = out + (m + r) * n + col;
        const float* res = residual ? residual + (m + r) * n + col : nullptr;
        avx512_store::store_output(o, _mm512_add_ps(_mm512_load_ps(scratch + r * 32), bias0), mask0,
                                   res, relu);
        avx512_store::store_output(o + 16,
                                   _mm512_add_ps(_mm512_load_ps(scratch + r * 32 + 16), bias1),
                                   mask1, res ? res + 16 : nullptr, relu);
      }
    }
  }
}

}  // namespace

bool compiled() {
  return true;
}

namespace {
std::atomic<bool> amx_allowed{true};
}

bool uses_amx() {
  return amx_allowed.load(std::memory_order_relaxed) && amx_ready();
}

void allow_amx(bool allow) {
  amx_allowed.store(allow, std::memory_order_relaxed);
}

int64_t packed_size(int64_t n, int64_t k) {
  return (n + kPanel - 1) / kPanel * kPanel * 2 * padded_pairs(k);
}

// Panels of 32 columns, [pair][column][2]: a pair of k values side by side for VDPBF16PS's
// 32-bit lanes, which is also AMX's VNNI layout for B (a tile row = 16 columns of one pair).
// k is zero-padded to a multiple of 32 for the AMX tiles.
void pack_weights(const float* w, int64_t n, int64_t k, uint16_t* packed) {
  const int64_t pairs = padded_pairs(k), panels = (n + kPanel - 1) / kPanel;
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t q = 0; q < pairs; ++q)
      for (int64_t j = 0; j < kPanel; ++j)
        for (int64_t e = 0; e < 2; ++e) {
          const int64_t col = p * kPanel + j, kk = 2 * q + e;
          packed[((p * pairs + q) * kPanel + j) * 2 + e] =
              col < n && kk < k ? to_bf16(w[col * k + kk]) : uint16_t{0};
        }
}

void gemm_bias(const float* a, int64_t k, const uint16_t* packed, int64_t n, const float* bias,
               float* out, const float* residual, bool relu, int64_t row_begin, int64_t row_end) {
  constexpr int64_t kRows = 12, kBlock = 96;
  thread_local RowBuffer buffer;
  const int64_t pairs = padded_pairs(k), k_pad = 2 * pairs;
  const int64_t panels = (n + kPanel - 1) / kPanel;
  uint16_t* rows_bf16 = buffer.get(kBlock * k_pad);
  const bool amx = uses_amx();
  if (amx) configure_tiles();
  for (int64_t block = row_begin; block < row_end; block += kBlock) {
    const int64_t block_rows = imin(kBlock, row_end - block);
    convert_rows(a + block * k, k, k_pad, block_rows, rows_bf16);
    if (amx) {
      amx_block(rows_bf16, block_rows, k_pad, packed, n, bias, out + block * n,
                residual ? residual + block * n : nullptr, relu);
      continue;
    }
    for (int64_t p = 0; p < panels; ++p) {
      const uint16_t* panel = packed + p * pairs * kPanel * 2;
      const int64_t col = p * kPanel, cols = imin(kPanel, n - col);
      const Micro* table = cols > 16 ? kMicro<2> : kMicro<1>;
      for (int64_t m = 0; m < block_rows; m += kRows) {
        const int64_t rows = imin(kRows, block_rows - m);
        table[rows](rows_bf16 + m * k_pad, k_pad, panel, (k + 1) / 2, bias + col,
                    out + (block + m) * n + col, n, cols,
                    residual ? residual + (block + m) * n + col : nullptr, relu);
      }
    }
  }
  if (amx) _tile_release();
}

}  // namespace cnp::model::kernels::bf16

#else  // no AVX512_BF16 compiler support: the dispatcher never calls these
// Defined by qualified name, so that a signature that drifts from the header is a compile error
// (tests/model's model_kernel_fallbacks compiles this branch on x86 too).
namespace cnp::model::kernels {
bool bf16::compiled() {
  return false;
}
int64_t bf16::packed_size(int64_t, int64_t) {
  return 0;
}
void bf16::pack_weights(const float*, int64_t, int64_t, uint16_t*) {}
void bf16::gemm_bias(const float*, int64_t, const uint16_t*, int64_t, const float*, float*,
                     const float*, bool, int64_t, int64_t) {}
bool bf16::uses_amx() {
  return false;
}
void bf16::allow_amx(bool) {}
}  // namespace cnp::model::kernels

#endif
