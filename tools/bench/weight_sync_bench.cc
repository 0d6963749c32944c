// Weight-sync throughput over gRPC on loopback: a real r1r-learner holding a ~690 MB model
// (fp32, Qwen2.5-VL architecture) streams it (1) to a bare client that only receives the chunks and
// (2) to a real r1r-actor that verifies the CRC32C and loads the weights into its model. Prints a
// table of GB/s per path and chunk size. Target: >= 1 GB/s.
//
//   weight_sync_bench [--bin-dir build/services] [--work DIR] [--repeats 3]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <absl/strings/str_cat.h>

#include "common/config/flags.h"
#include "common/files/remove_tree.h"
#include "common/proc/process.h"
#include "common/rpc/client.h"
#include "common/tokenizer/bpe_trainer.h"
#include "r1r/v1/actor.grpc.pb.h"
#include "r1r/v1/learner.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// hidden 1024, 8 layers, vision 2 x 512: about 170 M parameters = 690 MB fp32 (the issue asks for >= 500 MB).
constexpr char kSpec[] = R"(name: weight-sync-bench
model:
  init: tiny
  dtype: float32
  device: cpu
  tiny: {hidden_size: 1024, num_layers: 8, num_heads: 16, num_kv_heads: 4, intermediate_size: 5632,
         vision_hidden_size: 512, vision_depth: 2, vision_heads: 8}
data: {source: synthetic, synthetic_n: 8}
)";

std::string Addr(const r1r::proc::Process& p) { return absl::StrCat("127.0.0.1:", p.port()); }

}  // namespace

int main(int argc, char** argv) {
  r1r::config::Flags f;
  f.Value("bin-dir", std::string(R1R_BINARY_DIR) + "/services", "folder of the r1r-* binaries")
      .Value("work", "/tmp/r1r-weight-sync-bench", "scratch folder (about 1 GB)")
      .Value("repeats", "3", "measurements per row");
  if (!f.Parse(argc, argv).ok()) return 2;
  const std::string work = f.Get("work");
  const int repeats = static_cast<int>(f.GetInt("repeats").value_or(3));
  r1r::files::RemoveTree(work).IgnoreError();
  fs::create_directories(work + "/model");
  // A small trained BPE so the tiny config has a real tokenizer (the vocab is then padded by the config).
  std::vector<std::string> corpus(64, "How many red circles are in the image? Response 1 is better.");
  r1r::tokenizer::BpeTrainerOptions bpe;
  bpe.vocab_size = 300;
  if (auto s = r1r::tokenizer::TrainBpeTokenizerFile(corpus, bpe, work + "/model/tokenizer.json"); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  auto learner = r1r::proc::Process::Start(f.Get("bin-dir") + "/r1r-learner", {"--listen", "127.0.0.1:0"},
                                           work + "/learner.log");
  auto actor = r1r::proc::Process::Start(f.Get("bin-dir") + "/r1r-actor", {"--listen", "127.0.0.1:0"},
                                         work + "/actor.log");
  if (!learner.ok() || !actor.ok()) {
    std::fprintf(stderr, "cannot start learner/actor (see %s)\n", work.c_str());
    return 1;
  }
  r1r::rpc::ClientOptions lo;
  lo.target = Addr(*learner);
  lo.timeout = absl::Minutes(10);
  lo.max_message_bytes = 64 << 20;
  auto learner_stub = r1r::v1::Learner::NewStub(*r1r::rpc::MakeChannel(lo));
  r1r::v1::InitRequest init;
  init.set_job_id("bench");
  init.set_spec_yaml(kSpec);
  init.set_work_dir(work);
  init.set_phase("sft");
  init.set_total_steps(1);
  r1r::v1::LearnerState state;
  {
    grpc::ClientContext ctx;
    r1r::rpc::PrepareContext(ctx, lo);
    grpc::Status s = learner_stub->Init(&ctx, init, &state);
    if (!s.ok()) {
      std::fprintf(stderr, "learner Init: %s\n", s.error_message().c_str());
      return 1;
    }
  }

  std::printf("%-34s %10s %12s %10s\n", "path", "chunk", "bytes", "GB/s");
  for (int chunk_kib : {256, 1024, 4096}) {
    for (int r = 0; r < repeats; ++r) {
      grpc::ClientContext ctx;
      r1r::rpc::PrepareContext(ctx, lo);
      r1r::v1::StreamWeightsRequest req;
      req.set_min_version(state.policy_version());
      req.set_chunk_bytes(chunk_kib << 10);
      const auto t0 = Clock::now();
      auto reader = learner_stub->StreamWeights(&ctx, req);
      r1r::v1::WeightChunk chunk;
      int64_t bytes = 0;
      while (reader->Read(&chunk)) bytes += static_cast<int64_t>(chunk.data().size());
      grpc::Status s = reader->Finish();
      const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
      if (!s.ok()) {
        std::fprintf(stderr, "StreamWeights: %s\n", s.error_message().c_str());
        return 1;
      }
      std::printf("%-34s %7d KiB %12lld %10.2f\n", "learner -> client (receive only)", chunk_kib,
                  static_cast<long long>(bytes), bytes / sec / 1e9);
    }
  }
  r1r::rpc::ClientOptions ao = lo;
  ao.target = Addr(*actor);
  auto actor_stub = r1r::v1::RolloutActor::NewStub(*r1r::rpc::MakeChannel(ao));
  for (int r = 0; r < repeats; ++r) {
    grpc::ClientContext ctx;
    r1r::rpc::PrepareContext(ctx, ao);
    r1r::v1::LoadWeightsRequest req;
    req.set_learner_target(Addr(*learner));
    req.set_version(state.policy_version());
    req.set_model_dir(state.model_dir());
    r1r::v1::LoadWeightsResponse resp;
    const auto t0 = Clock::now();
    grpc::Status s = actor_stub->LoadWeights(&ctx, req, &resp);
    const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!s.ok()) {
      std::fprintf(stderr, "LoadWeights: %s\n", s.error_message().c_str());
      return 1;
    }
    std::printf("%-34s %10s %12lld %10.2f\n", "learner -> actor (verify + load)", "default",
                static_cast<long long>(resp.bytes()), resp.bytes() / sec / 1e9);
  }
  return 0;
}
