// libFuzzer: every JSONL (and JSON-array) reader on the same arbitrary file: the training-data readers
// (R1-Reward, MM-RLHF pairs, plain pairs) and the benchmark readers. Bad rows are counted, never thrown.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "common/data/readers.h"
#include "common/eval/mm_rlhf_bench.h"
#include "common/eval/multimodal_rewardbench.h"
#include "common/eval/vl_rewardbench.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/r1r_fuzz_rows_" + std::to_string(getpid()) + ".jsonl";
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  } else {
    return 0;
  }
  using namespace r1r;
  {
    jsonl::ReadReport r;
    (void)data::ReadR1RewardJsonl(path, r);
  }
  {
    jsonl::ReadReport r;
    (void)data::ReadMmRlhfPairsJsonl(path, r);
  }
  {
    jsonl::ReadReport r;
    (void)data::ReadPlainPairsJsonl(path, r);
  }
  {
    jsonl::ReadReport r;
    (void)eval::ReadVlRewardBench(path, r);
  }
  {
    jsonl::ReadReport r;
    (void)eval::ReadMmRlhfRewardBench(path, r);
  }
  {
    jsonl::ReadReport r;
    auto lines = eval::ReadMmrbAnswerFile(path, r);
    if (lines.ok()) {
      for (const auto& line : *lines) (void)eval::OfficialVerdictOutcome(line);
    }
  }
  {
    jsonl::ReadReport r;
    (void)eval::ReadMultimodalRewardBench(path, r);
    (void)r.Summary();
  }
  return 0;
}
