#pragma once
// The AVX512_BF16 GEMM behind inference_kernels.h's gemm_bias_bf16 (same contract); call
// only where compiled() is true and the CPU has the instructions.
#include <cstdint>

namespace cnp::model::kernels::bf16 {
bool compiled();
int64_t packed_size(int64_t n, int64_t k);
void pack_weights(const float* w, int64_t n, int64_t k, uint16_t* packed);
void gemm_bias(const float* a, int64_t k, const uint16_t* packed, int64_t n, const float* bias,
               float* out, const float* residual, bool relu, int64_t row_begin, int64_t row_end);
// Whether gemm_bias runs on AMX tiles (CPU and kernel permitting; allow_amx(false) forces
// VDPBF16PS, for testing that path on AMX machines too).
bool uses_amx();
void allow_amx(bool allow);
}  // namespace cnp::model::kernels::bf16
