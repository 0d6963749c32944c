#include "common/model/positions.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace r1r::model {

int64_t CountImages(const std::vector<int64_t>& ids, const ModelConfig& config) {
  int64_t n = 0;
  for (size_t i = 0; i + 1 < ids.size(); ++i) {
    if (ids[i] == config.vision_start_token_id && ids[i + 1] == config.image_token_id) ++n;
  }
  return n;
}

absl::StatusOr<RopeIndex> ComputeRopeIndex(const std::vector<int64_t>& ids, const std::vector<GridThw>& images,
                                           const ModelConfig& config, int64_t padded_length) {
  const int64_t merge = config.vision.spatial_merge_size;
  const int64_t n_images = CountImages(ids, config);
  if (n_images != static_cast<int64_t>(images.size())) {
    return absl::InvalidArgumentError(absl::StrCat("sequence has ", n_images,
                                                   " images (<|vision_start|><|image_pad|>) but ", images.size(),
                                                   " image grids were given"));
  }
  RopeIndex out;
  for (auto& s : out.positions) s.reserve(ids.size());
  auto push = [&out](int64_t t, int64_t h, int64_t w) {
    out.positions[0].push_back(t);
    out.positions[1].push_back(h);
    out.positions[2].push_back(w);
  };
  const int64_t len = static_cast<int64_t>(ids.size());
  int64_t st = 0;
  int64_t next_pos = 0;  // last_max + 1
  for (const GridThw& g : images) {
    int64_t ed = st;
    while (ed < len && ids[ed] != config.image_token_id) ++ed;
    const int64_t t = g[0], lh = g[1] / merge, lw = g[2] / merge;
    if (t <= 0 || g[1] % merge != 0 || g[2] % merge != 0) {
      return absl::InvalidArgumentError(absl::StrCat("image grid (", t, ",", g[1], ",", g[2],
                                                     ") is not a positive multiple of the merge size ", merge));
    }
    const int64_t n_tokens = t * lh * lw;
    for (int64_t k = 0; k < n_tokens; ++k) {
      if (ed + k >= len || ids[ed + k] != config.image_token_id) {
        return absl::InvalidArgumentError(absl::StrCat("image at token ", ed, " needs ", n_tokens,
                                                       " consecutive <|image_pad|> tokens (grid ", t, "x", g[1], "x",
                                                       g[2], ") but the run is shorter"));
      }
    }
    for (int64_t i = st; i < ed; ++i) {
      const int64_t p = next_pos + (i - st);
      push(p, p, p);
    }
    const int64_t base = next_pos + (ed - st);
    // Images: the temporal stream stays at base (second_per_grid_t = 0 for still images).
    for (int64_t tt = 0; tt < t; ++tt)
      for (int64_t i = 0; i < lh; ++i)
        for (int64_t j = 0; j < lw; ++j) push(base, base + i, base + j);
    next_pos = base + std::max(lh, lw);
    st = ed + n_tokens;
  }
  for (int64_t i = st; i < len; ++i) {
    const int64_t p = next_pos + (i - st);
    push(p, p, p);
  }
  int64_t max_pos = -1;
  for (const auto& s : out.positions)
    for (int64_t p : s) max_pos = std::max(max_pos, p);
  out.rope_delta = max_pos + 1 - padded_length;
  return out;
}

WindowIndex ComputeWindowIndex(const std::vector<GridThw>& grids, const VisionConfig& vision) {
  const int64_t merge = vision.spatial_merge_size;
  const int64_t unit = merge * merge;
  const int64_t win = vision.merge_window_cells();
  WindowIndex out;
  out.cu_window_seqlens.push_back(0);
  int64_t offset = 0;
  for (const GridThw& g : grids) {
    const int64_t t = g[0], lh = g[1] / merge, lw = g[2] / merge;
    // (win - x % win) % win avoids HF's all-padding windows; they would be removed by the
    // unique-consecutive step anyway, so the result is identical.
    const int64_t nwh = (lh + win - 1) / win, nww = (lw + win - 1) / win;
    for (int64_t tt = 0; tt < t; ++tt) {
      for (int64_t wh = 0; wh < nwh; ++wh) {
        for (int64_t ww = 0; ww < nww; ++ww) {
          int64_t count = 0;
          for (int64_t i = wh * win; i < std::min(lh, (wh + 1) * win); ++i) {
            for (int64_t j = ww * win; j < std::min(lw, (ww + 1) * win); ++j) {
              out.window_index.push_back(offset + (tt * lh + i) * lw + j);
              ++count;
            }
          }
          const int64_t end = out.cu_window_seqlens.back() + count * unit;
          if (end != out.cu_window_seqlens.back()) out.cu_window_seqlens.push_back(end);
        }
      }
    }
    offset += t * lh * lw;
  }
  return out;
}

std::vector<int64_t> ComputeFullAttentionSeqlens(const std::vector<GridThw>& grids) {
  std::vector<int64_t> cu = {0};
  for (const GridThw& g : grids)
    for (int64_t tt = 0; tt < g[0]; ++tt) cu.push_back(cu.back() + g[1] * g[2]);
  return cu;
}

PatchCoordinates ComputePatchCoordinates(const std::vector<GridThw>& grids, int64_t merge) {
  PatchCoordinates out;
  for (const GridThw& g : grids) {
    for (int64_t tt = 0; tt < g[0]; ++tt)
      for (int64_t bh = 0; bh < g[1] / merge; ++bh)
        for (int64_t bw = 0; bw < g[2] / merge; ++bw)
          for (int64_t mh = 0; mh < merge; ++mh)
            for (int64_t mw = 0; mw < merge; ++mw) {
              out.rows.push_back(bh * merge + mh);
              out.cols.push_back(bw * merge + mw);
            }
  }
  return out;
}

}  // namespace r1r::model
