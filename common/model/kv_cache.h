// Key/value cache of the text decoder for incremental decoding.
//
// Preallocated to a fixed capacity so a decode step writes in place instead of re-concatenating the
// whole history. Stores the *rotated* keys (as HF does), so cached entries never need re-rotation.
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

  int64_t batch() const { return batch_; }
  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }

  // Writes k/v ([batch, kv_heads, n, head_dim]) of `layer` at [length, length + n) and returns views of
  // the filled prefix [0, length + n). length() itself moves only on Advance(), once all layers wrote.
  std::pair<at::Tensor, at::Tensor> Append(int64_t layer, const at::Tensor& k, const at::Tensor& v);
  void Advance(int64_t n) { length_ += n; }

  // Keeps only the sequences at `rows` (int64 indices into the current batch, in the new order): a
  // batch whose rows finish early stops paying for them.
  void KeepRows(const at::Tensor& rows);

  // M-RoPE offset per sequence from the prefill ([batch] int64): decode positions are c + delta.
  const at::Tensor& rope_deltas() const { return rope_deltas_; }
  void set_rope_deltas(at::Tensor deltas) { rope_deltas_ = std::move(deltas); }

  // Bytes of cache one token of one sequence occupies: 2 (k, v) * layers * kv_heads * head_dim * elem.
  static int64_t BytesPerToken(const ModelConfig& config, at::ScalarType dtype);

 private:
  int64_t batch_;
  int64_t capacity_;
  int64_t length_ = 0;
  std::vector<at::Tensor> keys_;
  std::vector<at::Tensor> values_;
  at::Tensor rope_deltas_;
};

}  // namespace r1r::model
