#pragma once
// Soft-argmax decoding of heatmap logits (integral regression, REFERENCE.md §3): the
// plain tensor-op reference and the fused decoder. Internal to model/ (LibTorch types).
#include <torch/torch.h>

namespace cnp::model {

// Softmax over all D*H*W voxels of each joint, then the expected voxel index along each
// axis, with plain tensor ops (in float64). logits: (N, J*D, H, W), any layout ->
// (N, J, 3) float32.
torch::Tensor soft_argmax_reference(const torch::Tensor& logits, int64_t joints, int64_t depth);

// The same result from channels-last logits (N, H, W, J*D) (contiguous), upsampled 2x
// bilinearly (align_corners=True) first when `upsample2x`, without materialising the
// upsampled or the softmax volume. CPU: the vectorised kernel, parallel over (sample,
// joint); CUDA: the CUDA kernel where it was compiled, else the reference ops.
// Returns (N, J, 3) float32 on the logits' device.
torch::Tensor fused_soft_argmax(const torch::Tensor& logits_nhwc, int64_t joints, int64_t depth,
                                bool upsample2x);

// Whether fused_soft_argmax has its CUDA kernel in this build.
bool fused_soft_argmax_has_cuda();

}  // namespace cnp::model
