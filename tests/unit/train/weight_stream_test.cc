// Both ends of the weight stream in one process: a round trip, and each way a stream can be wrong
// (a flipped byte, a lost chunk, no trailer, a trailer that lies, a huge shape, NaN weights, an old
// version) gives an error that says what is wrong.
#include "common/train/weight_stream.h"

#include <torch/torch.h>

#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace r1r::train {
namespace {

using ::testing::HasSubstr;

// A chunk kept after the sender's callback returned (its bytes copied).
struct StoredChunk {
  WeightChunkView view;
  std::string bytes;
};

std::vector<StoredChunk> Send(const model::TensorMap& tensors, int64_t version, int chunk_bytes) {
  std::vector<StoredChunk> out;
  auto sent = SendWeights(tensors, version, chunk_bytes, [&](const WeightChunkView& v) {
    StoredChunk c{v, std::string(v.data == nullptr ? "" : std::string(v.data, v.size))};
    out.push_back(std::move(c));
    return absl::OkStatus();
  });
  EXPECT_TRUE(sent.ok()) << sent.status();
  return out;
}

WeightStreamReceiver Receive(std::vector<StoredChunk>& chunks, int64_t min_version = 0) {
  WeightStreamReceiver r(min_version);
  for (StoredChunk& c : chunks) {
    c.view.data = c.bytes.data();
    c.view.size = c.bytes.size();
    r.Add(c.view);
  }
  return r;
}

model::TensorMap Weights() {
  torch::manual_seed(3);
  return {{"a.weight", torch::randn({7, 9})}, {"b.bias", torch::randn({40}).to(torch::kBFloat16)}};
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(train, WeightStreamRoundTripsTensorsInManyChunks) {
  const model::TensorMap in = Weights();
  auto chunks = Send(in, 5, /*chunk_bytes=*/16);
  // 7*9*4 = 252 bytes in 16 (16 chunks), 40*2 = 80 bytes in 5, and the trailer.
  ASSERT_EQ(chunks.size(), 16u + 5u + 1u);
  EXPECT_TRUE(chunks.back().view.end_of_stream);
  EXPECT_EQ(chunks.back().view.total_bytes, 252 + 80);
  EXPECT_TRUE(chunks[15].view.last_chunk_of_tensor);
  EXPECT_FALSE(chunks[14].view.last_chunk_of_tensor);
  WeightStreamReceiver r = Receive(chunks);
  EXPECT_EQ(r.version(), 5);
  EXPECT_EQ(r.bytes(), 252 + 80);
  auto out = r.Finish();
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 2u);
  for (const auto& [name, t] : in) {
    ASSERT_TRUE(out->count(name)) << name;
    EXPECT_EQ(out->at(name).scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(out->at(name), t)) << name;
  }
}

TEST(train, WeightStreamFlippedByteIsACrcMismatch) {
  auto chunks = Send(Weights(), 1, 16);
  chunks[3].bytes[5] ^= 0x01;
  auto out = Receive(chunks).Finish();
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Message(out.status()), HasSubstr("crc32c mismatch"));
}

TEST(train, WeightStreamWithoutTrailerIsRefused) {
  auto chunks = Send(Weights(), 1, 16);
  chunks.pop_back();
  auto out = Receive(chunks).Finish();
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Message(out.status()), HasSubstr("without its trailer"));
}

TEST(train, WeightStreamMissingChunkIsRefused) {
  auto chunks = Send(Weights(), 1, 16);
  chunks.erase(chunks.begin() + 2);  // the tensor's next chunk starts at the wrong offset
  auto out = Receive(chunks).Finish();
  EXPECT_FALSE(out.ok());
  EXPECT_THAT(Message(out.status()), HasSubstr("a.weight"));
}

TEST(train, WeightStreamTrailerWithWrongByteCountIsRefused) {
  auto chunks = Send(Weights(), 1, 16);
  chunks.back().view.total_bytes += 4;
  auto out = Receive(chunks).Finish();
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Message(out.status()), HasSubstr("332 bytes received, trailer says 336"));
}

TEST(train, WeightStreamHeaderWithHugeShapeIsRefusedBeforeAllocating) {
  WeightStreamReceiver r(0);
  WeightChunkView v;
  v.tensor_name = "huge";
  v.dtype = "F32";
  v.shape = {int64_t{1} << 40, 1 << 20};  // overflows int64 when multiplied naively
  r.Add(v);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Message(r.status()), HasSubstr("declares a shape over"));
  // Four bytes per F32 element: 2^31 + 1 of them is just over the 8 GiB limit.
  WeightStreamReceiver f32(0);
  v.shape = {(kMaxStreamedTensorBytes / 4) + 1};
  f32.Add(v);
  EXPECT_THAT(Message(f32.status()), HasSubstr("declares a shape over"));
  WeightStreamReceiver negative(0);
  v.shape = {-1, 4};
  negative.Add(v);
  EXPECT_THAT(Message(negative.status()), HasSubstr("declares a shape over"));
}

TEST(train, WeightStreamWithNanWeightsIsRefused) {
  model::TensorMap in = Weights();
  in["a.weight"][2][3] = std::numeric_limits<float>::quiet_NaN();
  auto chunks = Send(in, 1, 64);
  auto out = Receive(chunks).Finish();  // the CRC matches: the sender sent NaN
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Message(out.status()), HasSubstr("tensor a.weight holds NaN"));
}

TEST(train, WeightStreamOlderThanAskedIsAPreconditionFailure) {
  auto chunks = Send(Weights(), 2, 64);
  auto out = Receive(chunks, /*min_version=*/3).Finish();
  EXPECT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(out.status()), HasSubstr("learner sent version 2"));
}

TEST(train, WeightStreamSenderStopsAtTheFirstSinkError) {
  int calls = 0;
  auto sent = SendWeights(Weights(), 1, 16, [&](const WeightChunkView&) {
    return ++calls == 3 ? absl::UnavailableError("weight stream broken") : absl::OkStatus();
  });
  EXPECT_EQ(sent.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(calls, 3);
}

TEST(train, WeightChunkBytesTakesZeroAsTheDefaultAndBoundsTheRest) {
  EXPECT_EQ(*WeightChunkBytes(0), kDefaultWeightChunkBytes);
  EXPECT_EQ(*WeightChunkBytes(kMaxWeightChunkBytes), kMaxWeightChunkBytes);
  for (int64_t bad : {int64_t{1000}, int64_t{kMaxWeightChunkBytes} + 1, int64_t{-1}}) {
    auto s = WeightChunkBytes(bad);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(Message(s.status()), HasSubstr("chunk_bytes")) << bad;
  }
}

}  // namespace
}  // namespace r1r::train
