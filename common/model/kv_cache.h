// Key/value cache of the text decoder for incremental decoding.
//
// Preallocated to a fixed capacity so a decode step writes in place instead of re-concatenating the
// whole history. Stores the *rotated* keys (as HF does), so cached entries never need re-rotation,
// and an entry can be moved to another row (or another cache) without recomputing it.
//
// Two ways to use it:
// - Uniform (static batches): every row has the same length (prompts padded to one width); Forward
//   writes [length, length + n) of every row and Advance moves the shared length.
// - Slots (continuous batching, EnableSlots): rows are slots with their own lengths; row r holds its
//   sequence at [0, row_length(r)). Only the first active_rows() slots take part in a forward, which
//   then feeds exactly one new token per row and writes it at the row's own length. Requests join by
//   LoadRow (the prompt's prefilled entries, possibly the same ones into several slots: one prefill for
//   K samples) and leave by MoveRow (the last active slot fills the hole), so no step copies the cache.
//   A decode window (SetDecodeWindow) fixes a step's shape instead: the first `rows` slots, attending
//   over [0, span), whatever the active rows and their lengths; that is what a CUDA graph replays.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "common/model/config.h"

namespace r1r::model {

class KvCache {
 public:
  // keys/values: per layer [batch, num_key_value_heads, capacity, head_dim].
  KvCache(const ModelConfig& config, int64_t batch, int64_t capacity, at::ScalarType dtype, at::Device device);

  // Rows taking part in a forward (slots: the active ones, or the decode window's rows).
  int64_t batch() const { return slots_ ? (window_rows_ > 0 ? window_rows_ : active_) : batch_; }
  // Uniform: the shared length. Slots: the longest active row.
  int64_t length() const;
  int64_t capacity() const { return capacity_; }

  // Writes k/v ([batch, kv_heads, n, head_dim]) of `layer` at [length, length + n) and returns views of
  // the filled prefix [0, length + n). length() itself moves only on Advance(), once all layers wrote.
  // Slots: n must be 1; row r's entry goes to row_length(r), and the views cover [0, attend_span()).
  std::pair<at::Tensor, at::Tensor> Append(int64_t layer, const at::Tensor& k, const at::Tensor& v);
  void Advance(int64_t n);

  // Keeps only the sequences at `rows` (int64 indices into the current batch, in the new order): a
  // batch whose rows finish early stops paying for them. Uniform mode only (it copies the cache).
  void KeepRows(const at::Tensor& rows);

  // M-RoPE offset per sequence from the prefill ([batch] int64): decode positions are c + delta, with c
  // the cache length (uniform) or the row's own length (slots).
  at::Tensor rope_deltas() const;
  void set_rope_deltas(at::Tensor deltas);

  // ---- slots ----
  // Switches to slots: all `batch` rows are free slots, none active.
  void EnableSlots();
  bool slots() const { return slots_; }
  int64_t num_slots() const { return batch_; }
  int64_t active_rows() const { return active_; }
  // Slots past n that were active become free: their lengths go to 0, so a decode window that
  // includes them writes at position 0 of its own slot.
  void set_active_rows(int64_t n);
  int64_t row_length(int64_t row) const { return row_lengths_[row]; }
  // [batch()] int64 on the cache's device.
  at::Tensor row_lengths() const;
  // Slots: keys a decode step attends over: [0, length() + 1), or the decode window's span.
  int64_t attend_span() const { return window_rows_ > 0 ? window_span_ : length() + 1; }
  // Fixes the shape of the next decode steps: slots [0, rows) take part (active ones first; the
  // others compute a row nobody reads, writing it into their own free slot at its length, 0 once
  // freed) and attend over [0, span) masked to each row's length. row_index: arange(rows) on the
  // cache's device, owned by the caller (a captured graph reads it at its address). Advance still moves
  // only the active rows. rows = 0 clears the window.
  void SetDecodeWindow(int64_t rows, int64_t span, at::Tensor row_index);
  // Changes with every (re)allocation of the cache tensors: a graph captured against them is stale.
  uint64_t allocation_id() const { return allocation_id_; }
  // Copies entries [src_offset, src_offset + n) of row `src_row` of a uniform cache `src` (every layer)
  // into slot `dst_row` at [0, n); the slot then holds a sequence of length n with M-RoPE offset
  // `rope_delta` (decode position = n + rope_delta).
  void LoadRow(int64_t dst_row, const KvCache& src, int64_t src_row, int64_t src_offset, int64_t n,
               int64_t rope_delta);
  // LoadRow for slots [dst_start, dst_start + src_rows.size(0)) from rows `src_rows` of `src` at
  // [0, n), all of length n, in one copy per layer (src_rows: int64 on the cache's device).
  void LoadRows(int64_t dst_start, const KvCache& src, const at::Tensor& src_rows, int64_t n,
                const std::vector<int64_t>& rope_deltas);
  // Moves slot `from` to slot `to` (only its filled prefix is copied).
  void MoveRow(int64_t from, int64_t to);
  // A new cache with room for `batch` slots of `capacity` tokens holding this one's slots.
  KvCache Grown(const ModelConfig& config, int64_t batch, int64_t capacity) const;

  // Bytes the cache holds (keys and values of every layer, at full capacity).
  int64_t bytes() const;

  // Bytes of cache one token of one sequence occupies: 2 (k, v) * layers * kv_heads * head_dim * elem.
  static int64_t BytesPerToken(const ModelConfig& config, at::ScalarType dtype);

 private:
  int64_t batch_;
  int64_t capacity_;
  int64_t length_ = 0;
  std::vector<at::Tensor> keys_;
  std::vector<at::Tensor> values_;
  at::Tensor rope_deltas_;
  // Slots.
  bool slots_ = false;
  int64_t active_ = 0;
  std::vector<int64_t> row_lengths_;
  at::Tensor row_lengths_device_;  // [batch] int64, mirrors row_lengths_
  at::Tensor append_rows_;         // arange(active rows) for Append
  int64_t window_rows_ = 0, window_span_ = 0;
  at::Tensor window_row_index_;
  uint64_t allocation_id_;
};

}  // namespace r1r::model
