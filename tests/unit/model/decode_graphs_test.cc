// Decode steps in fixed shapes (GenerateOptions::cuda_graphs): on CPU the windowed steps run eagerly
// and must return what the ordinary steps return; on a CUDA machine the captured graphs must too.
#include <vector>

#include <torch/cuda.h>

#include "common/model/decode_graphs.h"
#include "common/model/generate.h"
#include "tests/unit/model/generation_util.h"
#include "tests/unit/model/test_util.h"

namespace r1r::model {
namespace {

using namespace testing;  // NOLINT

TEST(model, DecodeWindowShapes) {
  EXPECT_EQ(DecodeGraphs::WindowRows(1, 16), 1);
  EXPECT_EQ(DecodeGraphs::WindowRows(3, 16), 4);
  EXPECT_EQ(DecodeGraphs::WindowRows(9, 16), 16);
  EXPECT_EQ(DecodeGraphs::WindowRows(9, 12), 12);  // never more than the slots
  // The span covers the new token at position `length`.
  EXPECT_EQ(DecodeGraphs::WindowSpan(0, 256, 1000), 256);
  EXPECT_EQ(DecodeGraphs::WindowSpan(255, 256, 1000), 256);
  EXPECT_EQ(DecodeGraphs::WindowSpan(256, 256, 1000), 512);
  EXPECT_EQ(DecodeGraphs::WindowSpan(900, 256, 1000), 1000);
}

TEST(model, DecodeWindowRejectsShapesThatDoNotHoldTheActiveRows) {
  const ModelConfig c = MakeTinyConfig();
  KvCache cache(c, 4, 16, at::kFloat, at::kCPU);
  cache.EnableSlots();
  cache.set_active_rows(3);
  const at::Tensor two = torch::arange(2, torch::kLong), four = torch::arange(4, torch::kLong);
  EXPECT_THROW(cache.SetDecodeWindow(2, 8, two), c10::Error);    // fewer rows than active
  EXPECT_THROW(cache.SetDecodeWindow(4, 17, four), c10::Error);  // span past the capacity
  EXPECT_THROW(cache.SetDecodeWindow(4, 8, two), c10::Error);    // index of the wrong size
  cache.SetDecodeWindow(4, 8, four);
  EXPECT_EQ(cache.batch(), 4);
  EXPECT_EQ(cache.attend_span(), 8);
  EXPECT_EQ(cache.row_lengths().size(0), 4);
  cache.SetDecodeWindow(0, 0, at::Tensor());
  EXPECT_EQ(cache.batch(), 3);
  EXPECT_EQ(cache.attend_span(), 1);
}

// A slot freed when full (length = capacity) must not make a later window write past the cache.
TEST(model, DecodeWindowFreedSlotsWriteInsideTheCache) {
  const ModelConfig c = MakeTinyConfig();
  KvCache prompt(c, 1, 8, at::kFloat, at::kCPU);
  KvCache cache(c, 2, 8, at::kFloat, at::kCPU);
  cache.EnableSlots();
  cache.set_active_rows(2);
  cache.LoadRow(1, prompt, 0, 0, 8, 0);
  EXPECT_EQ(cache.row_length(1), 8);
  cache.set_active_rows(1);  // slot 1's request left
  EXPECT_EQ(cache.row_length(1), 0);
  EXPECT_EQ(cache.row_lengths().size(0), 1);
  EXPECT_NO_THROW(cache.SetDecodeWindow(2, 8, torch::arange(2, torch::kLong)));
  EXPECT_EQ(cache.row_lengths()[1].item<int64_t>(), 0);
}

TEST(model, DecodeWindowBelongsToOneAllocation) {
  const ModelConfig c = MakeTinyConfig();
  KvCache cache(c, 2, 8, at::kFloat, at::kCPU);
  const uint64_t first = cache.allocation_id();
  cache.EnableSlots();  // new length tensors: a graph captured before would read freed memory
  const uint64_t slots = cache.allocation_id();
  EXPECT_NE(slots, first);
  cache.set_rope_deltas(torch::zeros({2}, torch::kLong));
  EXPECT_NE(cache.allocation_id(), slots);
  EXPECT_NE(cache.Grown(c, 4, 8).allocation_id(), cache.allocation_id());
}

// Every request kind, rows joining and leaving, windows of 1..8 rows and spans switching every 4
// positions: the same tokens and log-probs as the ordinary decode steps.
TEST(model, FixedShapeDecodeStepsReturnWhatOrdinaryStepsReturn) {
  auto model = MakeTinyModel();
  const std::vector<GenerationRequest> requests = RaggedRequests(model->config());
  for (int64_t rows : {0, 1, 3, 5}) {
    const auto ordinary = MustGenerate(*model, requests, {.max_batch_rows = rows});
    for (int64_t span_step : {4, 256}) {
      GenerationStats stats;
      GenerateOptions o{.max_batch_rows = rows, .stats = &stats};
      o.cuda_graphs = true;
      o.cuda_graph_span_step = span_step;
      ExpectSame(MustGenerate(*model, requests, o), ordinary, span_step == 4 ? "span step 4" : "span step 256");
      EXPECT_GT(stats.decode_graph_shapes, span_step == 4 ? 4 : 0) << rows << " rows";
      EXPECT_EQ(stats.decode_graphs_captured, 0) << "nothing is captured on CPU";
    }
  }
}

// The engine keeps its windows while requests arrive between steps and the cache grows.
TEST(model, FixedShapeDecodeStepsSurviveTheCacheGrowing) {
  auto model = MakeTinyModel();
  const std::vector<GenerationRequest> requests = RaggedRequests(model->config());
  std::vector<GenerationResult> alone;
  for (const auto& r : requests) alone.push_back(MustGenerate(*model, {r}, {})[0]);
  GenerateOptions o{.max_batch_rows = 8};
  o.cuda_graphs = true;
  o.cuda_graph_span_step = 8;
  GenerationEngine engine(*model, o);
  engine.Reserve(1, 8);  // too small: grows as requests join
  std::vector<GenerationResult> got(requests.size());
  size_t added = 0, done = 0;
  while (done < requests.size()) {
    if (added < requests.size()) {
      auto id = engine.Add(requests[added++]);
      ASSERT_TRUE(id.ok()) << id.status();
    }
    auto finished = engine.Step();
    ASSERT_TRUE(finished.ok()) << finished.status();
    for (auto& [id, r] : *finished) {
      got[static_cast<size_t>(id)] = r;
      ++done;
    }
  }
  ExpectSame(got, alone, "requests arriving one per step");
}

TEST(model, CudaGraphDecodeEqualsEagerDecode) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this LibTorch build/machine";
  auto model = Qwen2_5_VL::Create(MakeTinyConfig(), {at::kFloat, at::Device(at::kCUDA, 0)}, 7);
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<GenerationRequest> requests = RaggedRequests((*model)->config());
  for (auto& r : requests) r.sampling = {.temperature = 0.0, .max_new_tokens = 12};
  const auto eager = MustGenerate(**model, requests, {.max_batch_rows = 5});
  GenerationStats stats;
  GenerateOptions o{.max_batch_rows = 5, .stats = &stats};
  o.cuda_graphs = true;
  o.cuda_graph_span_step = 16;
  const auto graphs = MustGenerate(**model, requests, o);
  ASSERT_EQ(graphs.size(), eager.size());
  for (size_t i = 0; i < eager.size(); ++i) EXPECT_EQ(graphs[i].token_ids, eager[i].token_ids) << "request " << i;
  EXPECT_GT(stats.decode_graph_shapes, 1);
  EXPECT_EQ(stats.decode_graphs_captured, stats.decode_graph_shapes);
}

}  // namespace
}  // namespace r1r::model
