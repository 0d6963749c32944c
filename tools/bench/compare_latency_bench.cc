// compare_latency_bench: Compare latency p50/p99 at 1 and 8 concurrent clients against an in-process
// r1r-serve (real gRPC on loopback, the dynamic batcher, a tiny random model unless --model-dir is given).
//
//   compare_latency_bench [--model-dir DIR] [--requests 24] [--votes 1] [--max-new-tokens 32]
//                         [--max-batch 8] [--batch-window-ms 5] [--clients 1,8] [--continuous 1]
// --continuous 0: the static batches of before (jobs arriving within the window run together to the end).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include <absl/strings/str_split.h>

#include <prometheus/registry.h>

#include "common/config/flags.h"
#include "common/files/remove_tree.h"
#include "common/rpc/client.h"
#include "common/rpc/server.h"
#include "r1r/v1/serve.grpc.pb.h"
#include "services/serve/serve_service.h"
#include "tests/support/tiny_model_dir.h"

namespace {

// (batches, sequences) generated so far, from the server's r1r_serve_batch_size histogram.
std::pair<double, double> BatchTotals(prometheus::Registry& registry) {
  for (const auto& family : registry.Collect()) {
    if (family.name != "r1r_serve_batch_size" || family.metric.empty()) continue;
    const auto& h = family.metric.front().histogram;
    return {static_cast<double>(h.sample_count), h.sample_sum};
  }
  return {0, 0};
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace

int main(int argc, char** argv) {
  r1r::config::Flags f;
  f.Value("model-dir", "", "a servable model directory (default: build a tiny random one in a temp folder)")
      .Value("requests", "64", "Compare requests per concurrency level")
      .Value("votes", "1", "K per request")
      .Value("max-new-tokens", "32", "generation budget per sample")
      .Value("max-batch", "8", "server --max-batch")
      .Value("batch-window-ms", "5", "server --batch-window-ms")
      .Value("clients", "1,8", "concurrency levels")
      .Value("continuous", "1", "1: continuous batching; 0: static batches within the window");
  if (absl::Status s = f.Parse(argc, argv); !s.ok()) {
    std::fprintf(stderr, "%s\n%s", std::string(s.message()).c_str(), f.Help().c_str());
    return 2;
  }
  const int requests = static_cast<int>(f.GetInt("requests").value_or(64));
  const int votes = static_cast<int>(f.GetInt("votes").value_or(1));

  std::string model_dir = f.Get("model-dir");
  std::string image_path;
  std::string scratch;  // removed at the end when we built the model
  if (model_dir.empty()) {
    const std::string root =
        (std::filesystem::temp_directory_path() / ("r1r_compare_latency_bench_" + std::to_string(getpid()))).string();
    scratch = root;
    r1r::files::RemoveTree(root).IgnoreError();
    auto tiny = r1r::test_support::MakeTinyModelDir(root);
    if (!tiny.ok()) {
      std::fprintf(stderr, "tiny model: %s\n", std::string(tiny.status().message()).c_str());
      return 1;
    }
    model_dir = tiny->model_dir;
    image_path = tiny->image_paths.at(0);
  }

  r1r::serve::ServeOptions o;
  o.model_dir = model_dir;
  o.batching.max_batch = static_cast<int>(f.GetInt("max-batch").value_or(8));
  o.batching.window = absl::Milliseconds(f.GetInt("batch-window-ms").value_or(5));
  o.batching.continuous = f.GetInt("continuous").value_or(1) != 0;
  o.default_max_new_tokens = static_cast<int>(f.GetInt("max-new-tokens").value_or(32));
  r1r::rpc::ServerOptions so;
  so.service_name = "serve";
  so.listen = "127.0.0.1:0";
  r1r::rpc::Server server(so);
  auto service = r1r::serve::RewardModelServiceImpl::Create(o, &server.metrics());
  if (!service.ok()) {
    std::fprintf(stderr, "%s\n", std::string(service.status().message()).c_str());
    return 1;
  }
  server.AddService(service->get());
  if (absl::Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }

  r1r::v1::CompareRequest base;
  base.set_question("How many red circles are in the image?");
  base.set_response1("There are 2 red circles.");
  base.set_response2("There are 3 red circles.");
  base.set_votes(votes);
  base.set_temperature(1.0f);
  if (!image_path.empty()) {
    std::ifstream in(image_path, std::ios::binary);
    base.mutable_image()->set_png_or_jpeg(std::string(std::istreambuf_iterator<char>(in), {}));
  }
  r1r::rpc::ClientOptions co;
  co.target = "127.0.0.1:" + std::to_string(server.port());
  co.timeout = absl::Seconds(600);

  std::printf("compare_latency_bench: model %s, votes %d, max_new_tokens %d, max_batch %d, window %lld ms, %d requests "
              "per level, torch threads default\n\n",
              model_dir.c_str(), votes, o.default_max_new_tokens, o.batching.max_batch,
              static_cast<long long>(absl::ToInt64Milliseconds(o.batching.window)), requests);
  std::printf("%-8s %-9s %-10s %-10s %-10s %-10s %-12s %-7s\n", "CLIENTS", "REQUESTS", "P50 ms", "P99 ms", "MEAN ms",
              "REQ/S", "SEQ/BATCH", "ERRORS");
  // Warm-up: one request (allocations, first-call costs).
  {
    auto stub = r1r::v1::RewardModel::NewStub(*r1r::rpc::MakeChannel(co));
    grpc::ClientContext ctx;
    r1r::rpc::PrepareContext(ctx, co);
    r1r::v1::CompareResponse resp;
    (void)stub->Compare(&ctx, base, &resp);
  }
  const std::vector<std::string> levels = absl::StrSplit(f.Get("clients"), ',', absl::SkipEmpty());
  for (const std::string& level : levels) {
    const int clients = std::max(1, std::atoi(level.c_str()));
    std::vector<double> latencies_ms;
    std::mutex mu;
    std::atomic<int> next{0}, errors{0};
    const auto [batches0, sequences0] = BatchTotals(server.metrics().registry());
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&] {
        auto stub = r1r::v1::RewardModel::NewStub(*r1r::rpc::MakeChannel(co));
        for (int i = next++; i < requests; i = next++) {
          r1r::v1::CompareRequest req = base;
          req.set_seed(static_cast<uint64_t>(i) * 101);
          grpc::ClientContext ctx;
          r1r::rpc::PrepareContext(ctx, co);
          r1r::v1::CompareResponse resp;
          const auto t0 = std::chrono::steady_clock::now();
          const grpc::Status s = stub->Compare(&ctx, req, &resp);
          const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
          if (!s.ok()) {
            ++errors;
            continue;
          }
          std::lock_guard<std::mutex> lock(mu);
          latencies_ms.push_back(ms);
        }
      });
    }
    for (auto& t : threads) t.join();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double mean = 0;
    for (double v : latencies_ms) mean += v;
    mean = latencies_ms.empty() ? 0 : mean / static_cast<double>(latencies_ms.size());
    const auto [batches1, sequences1] = BatchTotals(server.metrics().registry());
    const double per_batch = batches1 > batches0 ? (sequences1 - sequences0) / (batches1 - batches0) : 0.0;
    std::printf("%-8d %-9zu %-10.1f %-10.1f %-10.1f %-10.2f %-12.2f %-7d\n", clients, latencies_ms.size(),
                Percentile(latencies_ms, 0.5), Percentile(latencies_ms, 0.99), mean,
                static_cast<double>(latencies_ms.size()) / wall, per_batch, errors.load());
  }
  (*service)->Stop();
  if (!scratch.empty()) r1r::files::RemoveTree(scratch).IgnoreError();
  return 0;
}
