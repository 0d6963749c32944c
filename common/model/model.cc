// Top-level Qwen2.5-VL: embedding merge of image features, position ids, masks, KV cache.
#include "common/model/model.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>

#include "absl/strings/str_cat.h"
#include "common/model/modules.h"
#include "common/model/positions.h"

namespace r1r::model {

// ---- KvCache ----

namespace {
uint64_t NextAllocationId() {
  static std::atomic<uint64_t> next{1};
  return next++;
}
}  // namespace

KvCache::KvCache(const ModelConfig& config, int64_t batch, int64_t capacity, at::ScalarType dtype, at::Device device)
    : batch_(batch), capacity_(capacity), allocation_id_(NextAllocationId()) {
  auto options = torch::TensorOptions().dtype(dtype).device(device);
  const TextConfig& t = config.text;
  for (int64_t i = 0; i < t.num_hidden_layers; ++i) {
    keys_.push_back(torch::zeros({batch, t.num_key_value_heads, capacity, t.head_dim}, options));
    values_.push_back(torch::zeros({batch, t.num_key_value_heads, capacity, t.head_dim}, options));
  }
}

int64_t KvCache::length() const {
  if (!slots_) return length_;
  int64_t longest = 0;
  for (int64_t r = 0; r < active_; ++r) longest = std::max(longest, row_lengths_[r]);
  return longest;
}

std::pair<at::Tensor, at::Tensor> KvCache::Append(int64_t layer, const at::Tensor& k, const at::Tensor& v) {
  const int64_t n = k.size(2);
  if (slots_) {
    const int64_t rows = batch(), end = attend_span();
    TORCH_CHECK(n == 1 && k.size(0) == rows, "a slot cache takes one new token per row of the step");
    if (window_rows_ == 0 &&
        (!append_rows_.defined() || append_rows_.size(0) != rows || append_rows_.device() != k.device())) {
      append_rows_ = torch::arange(rows, torch::dtype(torch::kLong).device(k.device()));  // once per batch size
    }
    const at::Tensor& index = window_rows_ > 0 ? window_row_index_ : append_rows_;
    at::Tensor at_length = row_lengths();
    using torch::indexing::Slice;
    keys_[layer].index_put_({index, Slice(), at_length}, k.select(2, 0));
    values_[layer].index_put_({index, Slice(), at_length}, v.select(2, 0));
    return {keys_[layer].narrow(0, 0, rows).narrow(2, 0, end), values_[layer].narrow(0, 0, rows).narrow(2, 0, end)};
  }
  keys_[layer].narrow(2, length_, n).copy_(k);
  values_[layer].narrow(2, length_, n).copy_(v);
  return {keys_[layer].narrow(2, 0, length_ + n), values_[layer].narrow(2, 0, length_ + n)};
}

void KvCache::Advance(int64_t n) {
  if (!slots_) {
    length_ += n;
    return;
  }
  for (int64_t r = 0; r < active_; ++r) row_lengths_[r] += n;
  row_lengths_device_.narrow(0, 0, active_).add_(n);
}

void KvCache::KeepRows(const at::Tensor& rows) {
  TORCH_CHECK(!slots_, "KeepRows is for uniform caches; slots leave by MoveRow");
  for (size_t i = 0; i < keys_.size(); ++i) {
    keys_[i] = keys_[i].index_select(0, rows);
    values_[i] = values_[i].index_select(0, rows);
  }
  if (rope_deltas_.defined()) rope_deltas_ = rope_deltas_.index_select(0, rows);
  batch_ = rows.size(0);
}

at::Tensor KvCache::rope_deltas() const {
  if (slots_ && rope_deltas_.defined()) return rope_deltas_.narrow(0, 0, batch());
  return rope_deltas_;
}

void KvCache::EnableSlots() {
  slots_ = true;
  active_ = 0;
  length_ = 0;
  const at::Device device = keys_.empty() ? at::Device(at::kCPU) : keys_[0].device();
  row_lengths_.assign(batch_, 0);
  row_lengths_device_ = torch::zeros({batch_}, torch::dtype(torch::kLong).device(device));
  rope_deltas_ = torch::zeros({batch_}, torch::dtype(torch::kLong).device(device));
  allocation_id_ = NextAllocationId();  // new length and delta tensors
}

at::Tensor KvCache::row_lengths() const { return row_lengths_device_.narrow(0, 0, batch()); }

void KvCache::set_active_rows(int64_t n) {
  if (slots_ && n < active_) {
    std::fill(row_lengths_.begin() + n, row_lengths_.begin() + active_, 0);
    row_lengths_device_.narrow(0, n, active_ - n).zero_();
  }
  active_ = n;
}

void KvCache::set_rope_deltas(at::Tensor deltas) {
  rope_deltas_ = std::move(deltas);
  allocation_id_ = NextAllocationId();  // a graph may have read the tensor this one replaces
}

void KvCache::SetDecodeWindow(int64_t rows, int64_t span, at::Tensor row_index) {
  TORCH_CHECK(rows == 0 || (slots_ && active_ <= rows && rows <= batch_ && length() < span && span <= capacity_ &&
                            row_index.defined() && row_index.numel() == rows),
              "decode window of ", rows, " rows over ", span, " positions: the cache has ", batch_, " slots (",
              active_, " active, longest ", length(), ") of ", capacity_);
  // The free slots in the window write their row at their own length: it must lie inside the cache.
  for (int64_t r = active_; r < rows; ++r) {
    TORCH_CHECK(row_lengths_[r] < capacity_, "decode window: free slot ", r, " has length ", row_lengths_[r],
                " of ", capacity_);
  }
  window_rows_ = rows;
  window_span_ = rows > 0 ? span : 0;
  window_row_index_ = rows > 0 ? std::move(row_index) : at::Tensor();
}

void KvCache::LoadRow(int64_t dst_row, const KvCache& src, int64_t src_row, int64_t src_offset, int64_t n,
                      int64_t rope_delta) {
  TORCH_CHECK(slots_ && dst_row < batch_ && n <= capacity_ && src.keys_.size() == keys_.size(),
              "LoadRow: slot ", dst_row, " of ", batch_, ", ", n, " tokens of ", capacity_);
  for (size_t i = 0; i < keys_.size(); ++i) {
    keys_[i][dst_row].narrow(1, 0, n).copy_(src.keys_[i][src_row].narrow(1, src_offset, n));
    values_[i][dst_row].narrow(1, 0, n).copy_(src.values_[i][src_row].narrow(1, src_offset, n));
  }
  row_lengths_[dst_row] = n;
  row_lengths_device_[dst_row].fill_(n);
  rope_deltas_[dst_row].fill_(rope_delta);
}

void KvCache::LoadRows(int64_t dst_start, const KvCache& src, const at::Tensor& src_rows, int64_t n,
                        const std::vector<int64_t>& rope_deltas) {
  const int64_t count = src_rows.size(0);
  TORCH_CHECK(slots_ && dst_start + count <= batch_ && n <= capacity_ && src.keys_.size() == keys_.size() &&
                  static_cast<int64_t>(rope_deltas.size()) == count,
              "LoadRows: slots [", dst_start, ", ", dst_start + count, ") of ", batch_);
  for (size_t i = 0; i < keys_.size(); ++i) {
    keys_[i].narrow(0, dst_start, count).narrow(2, 0, n).copy_(src.keys_[i].index_select(0, src_rows).narrow(2, 0, n));
    values_[i].narrow(0, dst_start, count).narrow(2, 0, n).copy_(src.values_[i].index_select(0, src_rows).narrow(2, 0, n));
  }
  for (int64_t r = 0; r < count; ++r) row_lengths_[dst_start + r] = n;
  row_lengths_device_.narrow(0, dst_start, count).fill_(n);
  rope_deltas_.narrow(0, dst_start, count).copy_(torch::tensor(rope_deltas, torch::kLong).to(rope_deltas_.device()));
}

void KvCache::MoveRow(int64_t from, int64_t to) {
  TORCH_CHECK(slots_ && from < batch_ && to < batch_, "MoveRow outside the slots");
  if (from == to) return;
  const int64_t n = row_lengths_[from];
  for (size_t i = 0; i < keys_.size(); ++i) {
    keys_[i][to].narrow(1, 0, n).copy_(keys_[i][from].narrow(1, 0, n));
    values_[i][to].narrow(1, 0, n).copy_(values_[i][from].narrow(1, 0, n));
  }
  row_lengths_[to] = n;
  row_lengths_device_[to].copy_(row_lengths_device_[from]);
  rope_deltas_[to].copy_(rope_deltas_[from]);
}

KvCache KvCache::Grown(const ModelConfig& config, int64_t batch, int64_t capacity) const {
  const at::Tensor& like = keys_.at(0);
  KvCache grown(config, std::max(batch, batch_), std::max(capacity, capacity_), like.scalar_type(), like.device());
  grown.EnableSlots();
  for (int64_t r = 0; r < active_; ++r) {
    const int64_t n = row_lengths_[r];
    for (size_t i = 0; i < keys_.size(); ++i) {
      grown.keys_[i][r].narrow(1, 0, n).copy_(keys_[i][r].narrow(1, 0, n));
      grown.values_[i][r].narrow(1, 0, n).copy_(values_[i][r].narrow(1, 0, n));
    }
    grown.row_lengths_[r] = n;
  }
  grown.row_lengths_device_.narrow(0, 0, active_).copy_(row_lengths_device_.narrow(0, 0, active_));
  grown.rope_deltas_.narrow(0, 0, active_).copy_(rope_deltas_.narrow(0, 0, active_));
  grown.active_ = active_;
  return grown;
}

int64_t KvCache::bytes() const {
  int64_t total = 0;
  for (size_t i = 0; i < keys_.size(); ++i) {
    total += (keys_[i].numel() + values_[i].numel()) * static_cast<int64_t>(keys_[i].element_size());
  }
  return total;
}

int64_t KvCache::BytesPerToken(const ModelConfig& config, at::ScalarType dtype) {
  const TextConfig& t = config.text;
  return 2 * t.num_hidden_layers * t.num_key_value_heads * t.head_dim *
         static_cast<int64_t>(c10::elementSize(dtype));
}

// ---- Qwen2_5_VL ----

Qwen2_5_VL::Qwen2_5_VL(const ModelConfig& config, const ModelOptions& options, uint64_t seed, bool random_init)
    : config_(config) {
  ParamInit init{at::make_generator<at::CPUGeneratorImpl>(seed), random_init,
                 torch::TensorOptions().dtype(options.dtype).device(options.device)};
  // Vision first, text second: the order only fixes which random numbers each tensor gets.
  vision_ = register_module("visual", std::make_shared<VisionModel>(config.vision, init));
  text_ = register_module("model", std::make_shared<TextModel>(config.text, init));
  if (!config.text.tie_word_embeddings) {
    lm_head_ = register_module("lm_head",
                               std::make_shared<LinearParams>(config.text.hidden_size, config.text.vocab_size, false, init));
  }
}

absl::StatusOr<std::shared_ptr<Qwen2_5_VL>> Qwen2_5_VL::Create(const ModelConfig& config, const ModelOptions& options,
                                                                uint64_t seed) {
  return CreateImpl(config, options, seed, /*random_init=*/true);
}

absl::StatusOr<std::shared_ptr<Qwen2_5_VL>> Qwen2_5_VL::CreateUninitialized(const ModelConfig& config,
                                                                             const ModelOptions& options) {
  return CreateImpl(config, options, 0, /*random_init=*/false);
}

absl::StatusOr<std::shared_ptr<Qwen2_5_VL>> Qwen2_5_VL::CreateImpl(const ModelConfig& config,
                                                                    const ModelOptions& options, uint64_t seed,
                                                                    bool random_init) {
  absl::Status valid = ValidateModelConfig(config);
  if (!valid.ok()) return valid;
  if (!at::isFloatingType(options.dtype)) {
    return absl::InvalidArgumentError("model dtype must be a floating type (float32 or bfloat16)");
  }
  try {
    return std::shared_ptr<Qwen2_5_VL>(new Qwen2_5_VL(config, options, seed, random_init));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot create the model: ", e.what_without_backtrace()));
  }
}

ModelOptions Qwen2_5_VL::options() const {
  const at::Tensor& w = text_->embed_tokens->weight;
  return ModelOptions{w.scalar_type(), w.device()};
}

at::Tensor Qwen2_5_VL::output_weight() const {
  return lm_head_ ? lm_head_->weight : text_->embed_tokens->weight;
}

at::Tensor Qwen2_5_VL::ComputeLogits(const at::Tensor& hidden) const {
  return torch::matmul(hidden, output_weight().t()).to(torch::kFloat);
}

namespace {

absl::StatusOr<std::vector<GridThw>> ReadGrids(const at::Tensor& grid_thw) {
  std::vector<GridThw> grids;
  if (!grid_thw.defined() || grid_thw.numel() == 0) return grids;
  if (grid_thw.dim() != 2 || grid_thw.size(1) != 3) {
    return absl::InvalidArgumentError("image_grid_thw must have shape [num_images, 3]");
  }
  at::Tensor cpu = grid_thw.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t* p = cpu.data_ptr<int64_t>();
  for (int64_t i = 0; i < cpu.size(0); ++i) {
    if (p[3 * i] <= 0 || p[3 * i + 1] <= 0 || p[3 * i + 2] <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("image_grid_thw row ", i, " has a non-positive entry"));
    }
    grids.push_back({p[3 * i], p[3 * i + 1], p[3 * i + 2]});
  }
  return grids;
}

absl::Status Internal(const char* what, const c10::Error& e) {
  return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
}

// Packed segments checked against [B, L] and completed into a tiling of every row in order: the gaps
// (padding) become segments of their own, marked not real.
struct SegmentTiling {
  std::vector<PackedSegment> tiles;
  std::vector<bool> real;
};

absl::StatusOr<SegmentTiling> TileSegments(std::vector<PackedSegment> segments, int64_t B, int64_t L) {
  for (size_t i = 0; i < segments.size(); ++i) {
    const PackedSegment& s = segments[i];
    if (s.row < 0 || s.row >= B || s.start < 0 || s.length <= 0 || s.start + s.length > L) {
      return absl::InvalidArgumentError(absl::StrCat("segments[", i, "] (row ", s.row, ", start ", s.start, ", length ",
                                                     s.length, ") does not lie inside input_ids [", B, ", ", L, "]"));
    }
  }
  std::stable_sort(segments.begin(), segments.end(), [](const PackedSegment& a, const PackedSegment& b) {
    return a.row != b.row ? a.row < b.row : a.start < b.start;
  });
  SegmentTiling out;
  size_t next = 0;
  for (int64_t row = 0; row < B; ++row) {
    int64_t at = 0;
    for (; next < segments.size() && segments[next].row == row; ++next) {
      const PackedSegment& s = segments[next];
      if (s.start < at) {
        return absl::InvalidArgumentError(absl::StrCat("segments overlap in row ", row, " at column ", s.start));
      }
      if (s.start > at) {
        out.tiles.push_back({row, at, s.start - at});
        out.real.push_back(false);
      }
      out.tiles.push_back(s);
      out.real.push_back(true);
      at = s.start + s.length;
    }
    if (at < L) {
      out.tiles.push_back({row, at, L - at});
      out.real.push_back(false);
    }
  }
  return out;
}

// Rows whose real tokens form one contiguous run (left and/or right padding, as every scoring and
// training batch is built): the column where each run starts. Empty when some row has holes.
std::vector<int64_t> ContiguousRunStarts(const at::Tensor& key_mask) {
  at::Tensor mask = key_mask.to(torch::kCPU, torch::kBool).contiguous();
  const int64_t B = mask.size(0), L = mask.size(1);
  const bool* m = mask.data_ptr<bool>();
  std::vector<int64_t> starts(B, 0);
  for (int64_t b = 0; b < B; ++b) {
    int64_t first = -1, last = -1, count = 0;
    for (int64_t i = 0; i < L; ++i) {
      if (!m[b * L + i]) continue;
      if (first < 0) first = i;
      last = i;
      ++count;
    }
    if (count > 0 && last - first + 1 != count) return {};
    starts[b] = std::max<int64_t>(first, 0);
  }
  return starts;
}

// Column i of row b reads column (i + shift_b) mod L: [B, L] int64 gather indices.
at::Tensor RotationIndex(const std::vector<int64_t>& shifts, int64_t L, at::Device device) {
  at::Tensor shift = torch::tensor(shifts, torch::kLong).to(device).unsqueeze(1);
  return (torch::arange(L, torch::dtype(torch::kLong).device(device)).unsqueeze(0) + shift).remainder(L);
}

}  // namespace

absl::StatusOr<at::Tensor> Qwen2_5_VL::EncodeImages(const at::Tensor& pixel_values, const at::Tensor& image_grid_thw,
                                                     bool checkpoint_blocks) {
  auto grids = ReadGrids(image_grid_thw);
  if (!grids.ok()) return grids.status();
  const VisionConfig& v = config_.vision;
  int64_t patches = 0;
  for (const GridThw& g : *grids) {
    if (g[1] % v.spatial_merge_size != 0 || g[2] % v.spatial_merge_size != 0) {
      return absl::InvalidArgumentError(absl::StrCat("image grid ", g[1], "x", g[2], " is not a multiple of the merge size ",
                                                     v.spatial_merge_size));
    }
    patches += g[0] * g[1] * g[2];
  }
  if (!pixel_values.defined() || pixel_values.dim() != 2 || pixel_values.size(0) != patches ||
      pixel_values.size(1) != v.patch_dim()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pixel_values must be [", patches, ", ", v.patch_dim(), "] for the given image_grid_thw, got ",
                     pixel_values.defined() ? c10::str(pixel_values.sizes()) : std::string("undefined")));
  }
  try {
    return vision_->Forward(pixel_values, *grids, checkpoint_blocks);
  } catch (const c10::Error& e) {
    return Internal("vision tower", e);
  }
}

absl::StatusOr<std::pair<at::Tensor, at::Tensor>> Qwen2_5_VL::ComputePositionIds(const at::Tensor& input_ids,
                                                                                 const at::Tensor& attention_mask,
                                                                                 const at::Tensor& image_grid_thw) const {
  auto grids = ReadGrids(image_grid_thw);
  if (!grids.ok()) return grids.status();
  const int64_t B = input_ids.size(0), L = input_ids.size(1);
  at::Tensor ids = input_ids.to(torch::kCPU, torch::kLong).contiguous();
  at::Tensor mask = attention_mask.defined() ? attention_mask.to(torch::kCPU, torch::kLong).contiguous()
                                             : torch::ones({B, L}, torch::kLong);
  if (mask.size(0) != B || mask.size(1) != L) {
    return absl::InvalidArgumentError("attention_mask must have the shape of input_ids at prefill");
  }
  at::Tensor positions = torch::ones({3, B, L}, torch::kLong);  // HF writes 1 into padding slots
  at::Tensor deltas = torch::zeros({B}, torch::kLong);
  auto pos = positions.accessor<int64_t, 3>();
  const int64_t* id_ptr = ids.data_ptr<int64_t>();
  const int64_t* mask_ptr = mask.data_ptr<int64_t>();
  size_t next_image = 0;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> real;
    std::vector<int64_t> slots;
    for (int64_t i = 0; i < L; ++i) {
      if (mask_ptr[b * L + i] != 0) {
        real.push_back(id_ptr[b * L + i]);
        slots.push_back(i);
      }
    }
    const int64_t n_images = CountImages(real, config_);
    if (next_image + n_images > grids->size()) {
      return absl::InvalidArgumentError(absl::StrCat("row ", b, " needs image ", next_image + n_images,
                                                     " but image_grid_thw has only ", grids->size(), " images"));
    }
    std::vector<GridThw> row_grids(grids->begin() + next_image, grids->begin() + next_image + n_images);
    next_image += n_images;
    auto index = ComputeRopeIndex(real, row_grids, config_, L);
    if (!index.ok()) return absl::InvalidArgumentError(absl::StrCat("row ", b, ": ", index.status().message()));
    for (size_t j = 0; j < slots.size(); ++j)
      for (int s = 0; s < 3; ++s) pos[s][b][slots[j]] = index->positions[s][j];
    deltas[b] = index->rope_delta;
  }
  if (next_image != grids->size()) {
    return absl::InvalidArgumentError(absl::StrCat("image_grid_thw has ", grids->size(), " images but the prompts hold ",
                                                   next_image));
  }
  return std::make_pair(positions, deltas);
}

at::Tensor Qwen2_5_VL::DecodeSlots(const at::Tensor& embeds, KvCache& cache) const {
  // Row r attends to its own [0, length_r] (the new token is written at length_r).
  const int64_t B = embeds.size(0), span = cache.attend_span();
  at::Tensor lengths = cache.row_lengths();
  at::Tensor positions = (lengths + cache.rope_deltas()).view({1, B, 1}).expand({3, B, 1});
  RotaryTables rotary = text_->Rotary(positions, embeds.scalar_type());
  at::Tensor k_pos = torch::arange(0, span, torch::dtype(torch::kLong).device(embeds.device())).unsqueeze(0);
  at::Tensor allowed = k_pos.le(lengths.unsqueeze(1)).view({B, 1, 1, span});
  return text_->Forward(embeds, rotary, {allowed, at::Tensor()}, &cache);
}

at::Tensor Qwen2_5_VL::DecodeSlots(KvCache& cache, const at::Tensor& ids) const {
  return DecodeSlots(torch::embedding(text_->embed_tokens->weight, ids), cache).select(1, 0);
}

absl::StatusOr<ForwardOutput> Qwen2_5_VL::Forward(const ForwardInput& in) {
  if (!in.input_ids.defined() || in.input_ids.dim() != 2) {
    return absl::InvalidArgumentError("input_ids must be [batch, length]");
  }
  const at::Device device = options().device;
  const int64_t B = in.input_ids.size(0), L = in.input_ids.size(1);
  KvCache* cache = in.cache;
  const int64_t past = cache ? cache->length() : 0;
  // A slot cache (continuous batching): one new token per active row, each at its own length.
  const bool slots = cache != nullptr && cache->slots();
  if (slots && (L != 1 || in.attention_mask.defined() || in.position_ids.defined() ||
                (in.pixel_values.defined() && in.pixel_values.numel() > 0))) {
    return absl::InvalidArgumentError("a slot KV cache decodes one token per row, without mask, positions or images");
  }
  if (!in.segments.empty() && (cache != nullptr || in.attention_mask.defined())) {
    return absl::InvalidArgumentError("segments (packed rows) take neither an attention_mask nor a KV cache");
  }
  if (cache != nullptr && (cache->batch() != B || past + L > cache->capacity())) {
    return absl::InvalidArgumentError(absl::StrCat("KV cache holds batch ", cache->batch(), " and ",
                                                   cache->capacity() - past, " free positions; the input needs batch ",
                                                   B, " and ", L));
  }
  if (in.attention_mask.defined() &&
      (in.attention_mask.dim() != 2 || in.attention_mask.size(0) != B || in.attention_mask.size(1) != past + L)) {
    return absl::InvalidArgumentError(
        absl::StrCat("attention_mask must be [", B, ", ", past + L, "] (cached + new tokens)"));
  }
  try {
    at::Tensor ids = in.input_ids.to(device, torch::kLong);
    const int64_t vocab = config_.text.vocab_size;
    // (Slot decoding feeds the sampler's own ids: no check, so no device sync per step.)
    if (!slots && ids.numel() > 0 && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= vocab)) {
      return absl::InvalidArgumentError(absl::StrCat("input_ids must lie in [0, ", vocab, ")"));
    }
    at::Tensor embeds = torch::embedding(text_->embed_tokens->weight, ids);
    if (in.pixel_values.defined() && in.pixel_values.numel() > 0) {
      if (past != 0) return absl::InvalidArgumentError("pixel_values are only accepted at prefill");
      auto image_embeds = EncodeImages(in.pixel_values, in.image_grid_thw, in.checkpoint_layers);
      if (!image_embeds.ok()) return image_embeds.status();
      at::Tensor is_image = ids == config_.image_token_id;
      const int64_t n_slots = is_image.sum().item<int64_t>();
      if (n_slots != image_embeds->size(0)) {
        return absl::InvalidArgumentError(absl::StrCat("the prompts hold ", n_slots, " <|image_pad|> tokens but the images ",
                                                       "produce ", image_embeds->size(0), " embeddings"));
      }
      embeds = embeds.masked_scatter(is_image.unsqueeze(-1).expand_as(embeds), image_embeds->to(embeds.scalar_type()));
    }

    if (!in.segments.empty()) return ForwardPacked(in, ids, embeds);
    if (slots) {
      at::Tensor hidden = DecodeSlots(embeds, *cache);
      cache->Advance(1);
      return ForwardOutput{hidden, cache->rope_deltas()};
    }
    // Without padding the decoder attends causally without a materialised mask (fused kernels).
    bool padded = false;
    if (in.attention_mask.defined()) {
      padded = !in.attention_mask.ne(0).all().item<bool>();
    }
    at::Tensor key_mask = in.attention_mask.defined() ? in.attention_mask.to(device).ne(0)
                                                      : torch::ones({B, past + L}, torch::dtype(torch::kBool).device(device));
    at::Tensor position_ids = in.position_ids;
    at::Tensor rope_deltas;
    if (!position_ids.defined()) {
      if (past == 0) {
        auto computed = ComputePositionIds(ids, key_mask.narrow(1, past, L), in.image_grid_thw);
        if (!computed.ok()) return computed.status();
        position_ids = computed->first;
        rope_deltas = computed->second.to(device);
      } else {
        rope_deltas = cache->rope_deltas().defined() ? cache->rope_deltas() : torch::zeros({B}, torch::kLong).to(device);
        at::Tensor steps = torch::arange(past, past + L, torch::dtype(torch::kLong).device(device));
        position_ids = (steps.unsqueeze(0) + rope_deltas.unsqueeze(1)).unsqueeze(0).expand({3, B, L});
      }
    } else if (position_ids.dim() != 3 || position_ids.size(0) != 3 || position_ids.size(1) != B ||
               position_ids.size(2) != L) {
      return absl::InvalidArgumentError("position_ids must be [3, batch, length]");
    }
    if (!rope_deltas.defined()) {
      rope_deltas = cache && cache->rope_deltas().defined() ? cache->rope_deltas()
                                                            : torch::zeros({B}, torch::kLong).to(device);
    }
    if (cache != nullptr && past == 0) cache->set_rope_deltas(rope_deltas);
    RotaryTables rotary = text_->Rotary(position_ids.to(device), embeds.scalar_type());

    // Padded rows whose real tokens are contiguous (no cache: its slots must keep their columns) are
    // rotated so each run starts at column 0: every padding key then lies after every real query, so
    // plain causal attention gives the real tokens exactly the masked result, and no mask is built.
    if (padded && cache == nullptr) {
      const std::vector<int64_t> starts = ContiguousRunStarts(key_mask);
      if (!starts.empty()) {
        const bool rotate = std::any_of(starts.begin(), starts.end(), [](int64_t s) { return s != 0; });
        if (!rotate) return ForwardOutput{text_->Forward(embeds, rotary, {}, nullptr, in.checkpoint_layers), rope_deltas};
        at::Tensor index = RotationIndex(starts, L, device);
        std::vector<int64_t> back(starts.size());
        for (size_t b = 0; b < starts.size(); ++b) back[b] = L - starts[b];
        at::Tensor inverse = RotationIndex(back, L, device);
        const int64_t H = embeds.size(2);
        at::Tensor rolled = embeds.gather(1, index.unsqueeze(-1).expand({B, L, H}));
        RotaryTables rolled_rotary =
            text_->Rotary(position_ids.to(device).gather(2, index.unsqueeze(0).expand({3, B, L})), embeds.scalar_type());
        at::Tensor hidden = text_->Forward(rolled, rolled_rotary, {}, nullptr, in.checkpoint_layers);
        return ForwardOutput{hidden.gather(1, inverse.unsqueeze(-1).expand({B, L, H})), rope_deltas};
      }
    }
    // Query i (absolute past + i) sees key j when j <= past + i and key j is not padding. Undefined:
    // no padding, so plain causal attention (the decoder then needs no mask at all).
    AttentionLayout layout;
    if (padded) {
      at::Tensor q_pos = torch::arange(past, past + L, torch::dtype(torch::kLong).device(device)).unsqueeze(1);
      at::Tensor k_pos = torch::arange(0, past + L, torch::dtype(torch::kLong).device(device)).unsqueeze(0);
      layout.allowed = k_pos.le(q_pos).unsqueeze(0).logical_and(key_mask.unsqueeze(1)).unsqueeze(1);
    }

    at::Tensor hidden = text_->Forward(embeds, rotary, layout, cache, in.checkpoint_layers);
    if (cache != nullptr) cache->Advance(L);
    return ForwardOutput{hidden, rope_deltas};
  } catch (const c10::Error& e) {
    return Internal("forward", e);
  }
}

absl::StatusOr<ForwardOutput> Qwen2_5_VL::ForwardPacked(const ForwardInput& in, const at::Tensor& ids,
                                                        const at::Tensor& embeds) {
  const at::Device device = options().device;
  const int64_t B = ids.size(0), L = ids.size(1);
  auto tiling = TileSegments(in.segments, B, L);
  if (!tiling.ok()) return tiling.status();
  at::Tensor position_ids = in.position_ids;
  if (!position_ids.defined()) {
    // Each sample's positions as if it were alone (Qwen2.5-VL's get_rope_index restarts per sample);
    // padding keeps HF's 1.
    auto grids = ReadGrids(in.image_grid_thw);
    if (!grids.ok()) return grids.status();
    at::Tensor ids_cpu = ids.to(torch::kCPU).contiguous();
    const int64_t* id_ptr = ids_cpu.data_ptr<int64_t>();
    position_ids = torch::ones({3, B, L}, torch::kLong);
    auto pos = position_ids.accessor<int64_t, 3>();
    size_t next_image = 0;
    for (size_t i = 0; i < tiling->tiles.size(); ++i) {
      const PackedSegment& t = tiling->tiles[i];
      const int64_t* first = id_ptr + t.row * L + t.start;
      std::vector<int64_t> sample(first, first + t.length);
      const auto n_images = static_cast<size_t>(CountImages(sample, config_));
      if (!tiling->real[i]) {
        if (n_images > 0) {
          return absl::InvalidArgumentError(absl::StrCat("row ", t.row, " holds an image in columns [", t.start, ", ",
                                                         t.start + t.length, ") that no segment covers"));
        }
        continue;
      }
      if (next_image + n_images > grids->size()) {
        return absl::InvalidArgumentError(absl::StrCat("the segment at row ", t.row, ", column ", t.start, " needs image ",
                                                       next_image + n_images, " but image_grid_thw has only ",
                                                       grids->size()));
      }
      std::vector<GridThw> own(grids->begin() + static_cast<int64_t>(next_image),
                               grids->begin() + static_cast<int64_t>(next_image + n_images));
      next_image += n_images;
      auto index = ComputeRopeIndex(sample, own, config_, t.length);
      if (!index.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("the segment at row ", t.row, ", column ", t.start, ": ", index.status().message()));
      }
      for (int64_t j = 0; j < t.length; ++j)
        for (int s = 0; s < 3; ++s) pos[s][t.row][t.start + j] = index->positions[s][j];
    }
    if (next_image != grids->size()) {
      return absl::InvalidArgumentError(absl::StrCat("image_grid_thw has ", grids->size(), " images but the segments hold ",
                                                     next_image));
    }
  } else if (position_ids.dim() != 3 || position_ids.size(0) != 3 || position_ids.size(1) != B ||
             position_ids.size(2) != L) {
    return absl::InvalidArgumentError("position_ids must be [3, batch, length]");
  }
  at::Tensor segments = torch::empty({static_cast<int64_t>(tiling->tiles.size()), 3}, torch::kLong);
  auto seg = segments.accessor<int64_t, 2>();
  for (size_t i = 0; i < tiling->tiles.size(); ++i) {
    const auto n = static_cast<int64_t>(i);
    seg[n][0] = tiling->tiles[i].row;
    seg[n][1] = tiling->tiles[i].start;
    seg[n][2] = tiling->tiles[i].length;
  }
  RotaryTables rotary = text_->Rotary(position_ids.to(device), embeds.scalar_type());
  at::Tensor hidden = text_->Forward(embeds, rotary, {at::Tensor(), segments}, nullptr, in.checkpoint_layers);
  return ForwardOutput{hidden, torch::zeros({B}, torch::dtype(torch::kLong).device(device))};
}

}  // namespace r1r::model
