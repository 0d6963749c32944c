// Weight-sync throughput on loopback: a real r1r-learner holding a ~690 MB model (fp32, Qwen2.5-VL
// architecture) streams it (1) to a bare client that only receives the chunks and (2) to a real
// r1r-actor that verifies the CRC32C and loads the weights into its model: a table of GB/s per path
// and chunk size (target >= 1 GB/s). Then broadcast_vs_stream (issue #17): the new weights of one SFT
// step reach 2 real actors (checked and loaded on both) over the gRPC stream (2 actors pulling at
// once) and over the weight sync group (Gloo broadcast, common/dist/sync_group.h); the broadcast's
// time counts the learner's snapshot copy (from its metrics) plus step-return to both actors loaded,
// after two warm-up syncs (the stream gets one). Each broadcast row splits the time from the services'
// metrics: snapshot, learner send, actor receive and, within it, the actor's per-bucket CRC32C +
// finite check. Target: >= 2x (docs/experiments.md, "Weight sync", has the runs). The last line is
// one JSON object.
//
//   weight_sync_bench [--bin-dir build/services] [--work DIR] [--repeats 3] [--bucket-mb 64] [--json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <absl/strings/str_cat.h>
#include <nlohmann/json.hpp>

#include "common/config/flags.h"
#include "common/files/remove_tree.h"
#include "common/proc/process.h"
#include "common/rpc/client.h"
#include "common/tokenizer/bpe_trainer.h"
#include "r1r/v1/actor.grpc.pb.h"
#include "r1r/v1/learner.grpc.pb.h"
#include "tests/integration/http_get.h"
#include "tests/unit/dist/free_port.h"

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

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The value of one unlabelled-by-us series (`name{service=...}`) in a Prometheus text page; -1 if absent.
double MetricValue(const std::string& page, const std::string& name) {
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + "{", 0) == 0 || line.rfind(name + " ", 0) == 0) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

// The sum of a histogram (`name`_sum) on a process's /metrics page; -1 when unreadable.
double HistogramSum(const r1r::proc::Process& p, const std::string& name) {
  auto page = r1r::testing::HttpGet(p.metrics_port(), "/metrics");
  return page.ok() ? MetricValue(*page, name + "_sum") : -1;
}

struct Actor {
  r1r::proc::Process process;
  std::unique_ptr<r1r::v1::RolloutActor::Stub> stub;
};

// Two actors, with the sync group's flags when `store` is not empty.
std::optional<std::vector<Actor>> StartActors(const std::string& bin_dir, const std::string& work,
                                              const std::string& store, int64_t bucket_mb,
                                              const r1r::rpc::ClientOptions& base) {
  std::vector<Actor> actors;
  for (int i = 0; i < 2; ++i) {
    std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                                     "--actor-id", absl::StrCat("bench-actor-", i), "--work-root", work};
    if (!store.empty()) {
      for (const std::string& a : {std::string("--weight-sync-store"), store, std::string("--weight-sync-bucket-mb"),
                                   std::to_string(bucket_mb)}) {
        args.push_back(a);
      }
    }
    auto p = r1r::proc::Process::Start(bin_dir + "/r1r-actor", args,
                                       absl::StrCat(work, "/actor-", store.empty() ? "stream" : "broadcast", i, ".log"));
    if (!p.ok()) {
      std::fprintf(stderr, "cannot start actor %d: %s\n", i, std::string(p.status().message()).c_str());
      return std::nullopt;
    }
    r1r::rpc::ClientOptions o = base;
    o.target = Addr(*p);
    Actor a{std::move(*p), r1r::v1::RolloutActor::NewStub(*r1r::rpc::MakeChannel(o))};
    actors.push_back(std::move(a));
  }
  return actors;
}

// LoadWeights on every actor at once; the seconds until the last returns, or -1 on an error.
double LoadAll(std::vector<Actor>& actors, const r1r::rpc::ClientOptions& base, const std::string& learner,
               int64_t version, const std::string& model_dir, std::vector<std::string>* sources, int64_t* bytes) {
  std::vector<grpc::Status> status(actors.size());
  std::vector<r1r::v1::LoadWeightsResponse> resp(actors.size());
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (size_t i = 0; i < actors.size(); ++i) {
    threads.emplace_back([&, i] {
      grpc::ClientContext ctx;
      r1r::rpc::PrepareContext(ctx, base);
      r1r::v1::LoadWeightsRequest req;
      req.set_learner_target(learner);
      req.set_version(version);
      req.set_model_dir(model_dir);
      status[i] = actors[i].stub->LoadWeights(&ctx, req, &resp[i]);
    });
  }
  for (auto& t : threads) t.join();
  const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
  sources->clear();
  *bytes = 0;
  for (size_t i = 0; i < actors.size(); ++i) {
    if (!status[i].ok()) {
      std::fprintf(stderr, "LoadWeights on actor %zu: %s\n", i, status[i].error_message().c_str());
      return -1;
    }
    sources->push_back(resp[i].source());
    *bytes += resp[i].bytes();
  }
  return sec;
}

}  // namespace

int main(int argc, char** argv) {
  r1r::config::Flags f;
  f.Value("bin-dir", std::string(R1R_BINARY_DIR) + "/services", "folder of the r1r-* binaries")
      .Value("work", "/tmp/r1r-weight-sync-bench", "scratch folder (about 1 GB)")
      .Value("repeats", "3", "measurements per row")
      .Value("bucket-mb", "64", "MiB per broadcast call of the sync group")
      .Switch("json", "end with one JSON line");
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
  const int64_t bucket_mb = f.GetIntInRange("bucket-mb", 1, 2048).value_or(64);
  // The learner hosts the sync group's store; actors without --weight-sync-store only pull the stream.
  const std::string store = absl::StrCat("127.0.0.1:", r1r::dist::testing::FreeLoopbackPort());
  auto learner = r1r::proc::Process::Start(
      f.Get("bin-dir") + "/r1r-learner",
      {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--work-root", work, "--weight-sync-store", store,
       "--weight-sync-bucket-mb", std::to_string(bucket_mb)},
      work + "/learner.log");
  auto actor = r1r::proc::Process::Start(f.Get("bin-dir") + "/r1r-actor",
                                         {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--work-root", work},
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
  init.set_total_steps(100);
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
  *actor = r1r::proc::Process();  // SIGKILL: its memory is needed below

  // broadcast_vs_stream: the same version to 2 actors, loaded and checked on both.
  std::vector<std::string> sources;
  int64_t bytes = 0;
  std::vector<double> stream_sec, broadcast_sec;
  {
    auto actors = StartActors(f.Get("bin-dir"), work, "", bucket_mb, ao);
    if (!actors) return 1;
    // The first load builds each actor's model: not part of a sync.
    if (LoadAll(*actors, ao, Addr(*learner), state.policy_version(), state.model_dir(), &sources, &bytes) < 0) return 1;
    for (int r = 0; r < repeats; ++r) {
      const double sec = LoadAll(*actors, ao, Addr(*learner), state.policy_version(), state.model_dir(), &sources, &bytes);
      if (sec < 0) return 1;
      stream_sec.push_back(sec);
      std::printf("%-34s %10s %12lld %10.2f  (%.3f s)\n", "stream -> 2 actors (verify + load)", "4096 KiB",
                  static_cast<long long>(bytes), bytes / sec / 1e9, sec);
    }
  }
  auto actors = StartActors(f.Get("bin-dir"), work, store, bucket_mb, ao);
  if (!actors) return 1;
  // Each measured sync: an SFT step makes a new version, which the learner snapshots and broadcasts.
  r1r::v1::SftStepRequest step;
  auto* example = step.add_examples();
  example->mutable_preference()->set_question("How many red circles are in the image?");
  example->mutable_preference()->set_response1("Three.");
  example->mutable_preference()->set_response2("Two.");
  example->mutable_preference()->set_label(1);
  example->set_target_text("<think>x</think><answer>1</answer>");
  int fallbacks = 0;
  std::vector<std::vector<double>> parts(5);  // snapshot, send, receive, check, after step
  // Two warm-up syncs, as the stream had one: the first admits the actors to the group (they load it
  // over the stream and build their models), the second fills their receive buffers for the first time.
  constexpr int kWarmUp = 2;
  // Where a sync's time goes: the learner's snapshot copy (the step's pause) and broadcast (group
  // check, manifest, buckets), each actor's receive (announcement to verified) and, within it, the
  // checksum and finite check of the buckets (overlapped with receiving); the rest of "after step" is
  // LoadWeights' GetState, waiting and the copy into the model.
  std::printf("%-34s %10s %12s %10s  %s\n", "", "bucket", "", "",
              "(total = snapshot + after step | learner send, "
              "actor receive, actor check: max of 2)");
  for (int r = 0; r < kWarmUp + repeats; ++r) {
    auto sums = [&](const std::string& learner_metric, const std::string& actor_metric) {
      std::vector<double> v = {HistogramSum(*learner, learner_metric)};
      for (const Actor& a : *actors) v.push_back(HistogramSum(a.process, actor_metric));
      return v;
    };
    const std::vector<double> before =
        sums("r1r_learner_weight_snapshot_seconds", "r1r_actor_weight_broadcast_seconds");
    const std::vector<double> before2 =
        sums("r1r_learner_weight_broadcast_seconds", "r1r_actor_weight_broadcast_check_seconds");
    grpc::ClientContext ctx;
    r1r::rpc::PrepareContext(ctx, lo);
    r1r::v1::StepMetrics m;
    if (grpc::Status s = learner_stub->SftStep(&ctx, step, &m); !s.ok()) {
      std::fprintf(stderr, "SftStep: %s\n", s.error_message().c_str());
      return 1;
    }
    const double after_step = LoadAll(*actors, ao, Addr(*learner), m.policy_version(), state.model_dir(), &sources, &bytes);
    if (after_step < 0) return 1;
    const std::vector<double> after = sums("r1r_learner_weight_snapshot_seconds", "r1r_actor_weight_broadcast_seconds");
    const std::vector<double> after2 =
        sums("r1r_learner_weight_broadcast_seconds", "r1r_actor_weight_broadcast_check_seconds");
    const double snapshot = std::max(0.0, after[0] - before[0]);
    const double send = std::max(0.0, after2[0] - before2[0]);
    double receive = 0, check = 0;
    for (size_t i = 1; i < after.size(); ++i) {
      receive = std::max(receive, after[i] - before[i]);
      check = std::max(check, after2[i] - before2[i]);
    }
    const double sec = snapshot + after_step;
    const bool broadcast = std::all_of(sources.begin(), sources.end(), [](const std::string& s) { return s == "broadcast"; });
    std::printf("%-34s %7lld MiB %12lld %10.2f  (%.3f s = %.3f + %.3f | send %.3f, receive %.3f, check %.3f)%s\n",
                r < kWarmUp ? "broadcast -> 2 actors (warm-up)" : "broadcast -> 2 actors (verify+load)",
                static_cast<long long>(bucket_mb), static_cast<long long>(bytes), bytes / sec / 1e9, sec, snapshot,
                after_step, send, receive, check, broadcast ? "" : "  [fell back to the stream]");
    if (r < kWarmUp) continue;
    if (!broadcast) ++fallbacks;
    broadcast_sec.push_back(sec);
    parts[0].push_back(snapshot);
    parts[1].push_back(send);
    parts[2].push_back(receive);
    parts[3].push_back(check);
    parts[4].push_back(after_step);
  }
  const double speedup = Median(stream_sec) / std::max(1e-9, Median(broadcast_sec));
  std::printf("broadcast_vs_stream: %.2fx (stream %.3f s, broadcast %.3f s, medians of %d; target >= 2x)\n", speedup,
              Median(stream_sec), Median(broadcast_sec), repeats);
  if (f.Has("json")) {
    nlohmann::json j = {{"broadcast_vs_stream", speedup},
                        {"stream_seconds", Median(stream_sec)},
                        {"broadcast_seconds", Median(broadcast_sec)},
                        {"bytes_per_actor", bytes / 2},
                        {"actors", 2},
                        {"bucket_mb", bucket_mb},
                        {"broadcast_fallbacks", fallbacks},
                        {"broadcast_parts_seconds",
                         {{"snapshot", Median(parts[0])},
                          {"learner_send", Median(parts[1])},
                          {"actor_receive", Median(parts[2])},
                          {"actor_check", Median(parts[3])},
                          {"after_step", Median(parts[4])}}}};
    std::printf("%s\n", j.dump().c_str());
  }
  return fallbacks == 0 ? 0 : 1;
}
