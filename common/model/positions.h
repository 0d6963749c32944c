// Position bookkeeping of Qwen2.5-VL that does not need tensors: the 3-stream M-RoPE position ids of
// a prompt with images (HF `get_rope_index`), and the vision tower's window permutation
// (HF `get_window_index`) and per-patch 2-D rotary coordinates. Plain integers, so they are cheap to
// test against the worked examples of the reference and to reuse in data preparation.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model/config.h"

namespace r1r::model {

// One image's patch grid as in image_grid_thw: (t, h, w) in patches (before the 2x2 merge).
using GridThw = std::array<int64_t, 3>;

struct RopeIndex {
  // positions[s][i] for stream s in {t, h, w}, token i of the (unpadded) sequence.
  std::array<std::vector<int64_t>, 3> positions;
  // max position + 1 - padded_length: decode step at cache position c uses c + rope_delta.
  int64_t rope_delta = 0;
};

// M-RoPE positions of one sequence of real tokens (no padding). `images` are the grids of the
// images of this sequence, in order; each image must be a <|vision_start|> followed by exactly
// t*h*w/merge^2 <|image_pad|> tokens. `padded_length` is the row length including padding (the
// rope_delta is relative to it, as in HF); pass ids.size() when there is none.
absl::StatusOr<RopeIndex> ComputeRopeIndex(const std::vector<int64_t>& ids, const std::vector<GridThw>& images,
                                           const ModelConfig& config, int64_t padded_length);

// Number of images a sequence holds (<|vision_start|> directly followed by <|image_pad|>).
int64_t CountImages(const std::vector<int64_t>& ids, const ModelConfig& config);

struct WindowIndex {
  // Merged-cell permutation: new position k holds old merged cell window_index[k].
  std::vector<int64_t> window_index;
  // Cumulative patch (unmerged) boundaries of the windows, starting with 0, duplicates removed.
  std::vector<int64_t> cu_window_seqlens;
};
// HF get_window_index for a batch of images (cells of later images are offset by earlier ones).
WindowIndex ComputeWindowIndex(const std::vector<GridThw>& grids, const VisionConfig& vision);

// Cumulative patch boundaries for the full-attention blocks: one segment per image and temporal slice.
std::vector<int64_t> ComputeFullAttentionSeqlens(const std::vector<GridThw>& grids);

// (row, col) of each patch in pixel_values row order (merge-group-major), in the unmerged grid.
struct PatchCoordinates {
  std::vector<int64_t> rows;
  std::vector<int64_t> cols;
};
PatchCoordinates ComputePatchCoordinates(const std::vector<GridThw>& grids, int64_t spatial_merge_size);

}  // namespace r1r::model
