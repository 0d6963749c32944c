// libFuzzer: the actor's end of the weight stream (train::WeightStreamReceiver) on an arbitrary sequence
// of chunks, as a hostile or broken learner could send them. The input is read as a list of chunks;
// one flag bit asks the harness to fill in the trailer's true CRC and byte count, so the fuzzer also
// reaches the paths behind a matching trailer (assembly, the finite check).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/train/weight_codec.h"
#include "common/train/weight_stream.h"

namespace {

// Tensors the receiver would allocate are kept small, so a run measures parsing, not the allocator;
// shapes that declare more are still sent when they overflow or exceed the receiver's own limit.
constexpr int64_t kMaxAllocatedBytes = int64_t{16} << 20;

int64_t DeclaredBytes(const std::vector<int64_t>& shape) {
  __int128 n = 4;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    n *= d;
    if (n > (__int128{1} << 62)) return -1;
  }
  return static_cast<int64_t>(n);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  r1r::train::WeightStreamReceiver receiver(in.ConsumeIntegralInRange<int64_t>(0, 3));
  uint32_t crc = 0;
  int64_t total = 0;
  static const char* kDtypes[] = {"F32", "BF16", "F16", "F64", "I8", ""};
  static const char* kNames[] = {"a", "b", "model.embed_tokens.weight", ""};
  while (in.remaining_bytes() > 0) {
    r1r::train::WeightChunkView c;
    const uint8_t flags = in.ConsumeIntegral<uint8_t>();
    c.end_of_stream = flags & 1;
    c.last_chunk_of_tensor = flags & 2;
    c.version = in.ConsumeIntegralInRange<int64_t>(-1, 5);
    c.tensor_name = kNames[in.ConsumeIntegralInRange<int>(0, 3)];
    c.dtype = kDtypes[in.ConsumeIntegralInRange<int>(0, 5)];
    const int dims = in.ConsumeIntegralInRange<int>(0, 4);
    for (int i = 0; i < dims; ++i) {
      c.shape.push_back((flags & 4) ? in.ConsumeIntegral<int64_t>() : in.ConsumeIntegralInRange<int64_t>(0, 64));
    }
    const int64_t declared = DeclaredBytes(c.shape);
    if (declared > kMaxAllocatedBytes && declared <= r1r::train::kMaxStreamedTensorBytes) continue;
    c.offset = (flags & 8) ? in.ConsumeIntegral<int64_t>() : in.ConsumeIntegralInRange<int64_t>(0, 4096);
    const std::string bytes = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<size_t>(0, 4096));
    c.data = bytes.data();
    c.size = bytes.size();
    if (c.end_of_stream) {
      c.crc32c = (flags & 16) ? crc : in.ConsumeIntegral<uint32_t>();
      c.total_bytes = (flags & 16) ? total : in.ConsumeIntegral<int64_t>();
    } else {
      crc = r1r::train::Crc32c(crc, c.data, c.size);
      total += static_cast<int64_t>(c.size);
    }
    receiver.Add(c);
  }
  auto tensors = receiver.Finish();
  // A stream that is accepted holds exactly the bytes that were counted.
  if (tensors.ok()) {
    int64_t held = 0;
    for (const auto& [name, t] : *tensors) held += static_cast<int64_t>(t.nbytes());
    if (held != receiver.bytes()) std::abort();
  }
  return 0;
}
