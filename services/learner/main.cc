// r1r-learner: SFT and StableReinforce steps, checkpoints, and the weights stream actors pull.
// With --dist-world-size N, start N of them (ranks 0..N-1, same --dist-master): rank 0 takes the
// training calls and the others follow it, each training on its share of every batch.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <limits>
#include <memory>

#include <absl/strings/numbers.h>
#include <absl/time/time.h>
#include <absl/strings/str_cat.h>
#include <spdlog/spdlog.h>

#include "common/dist/process_group.h"
#include "common/files/paths.h"
#include "common/rpc/service_main.h"
#include "services/learner/learner_service.h"
#include "services/learner/weight_publisher.h"

namespace {

absl::StatusOr<r1r::dist::GroupOptions> GroupOptionsFromFlags(const r1r::config::Flags& f) {
  r1r::dist::GroupOptions o;
  auto world = f.GetInt("dist-world-size");
  if (!world.ok()) return world.status();
  char hostname[256] = {};
  if (::gethostname(hostname, sizeof(hostname) - 1) != 0) hostname[0] = '\0';
  auto rank = r1r::dist::ParseRank(f.Get("dist-rank"), hostname);
  if (!rank.ok()) return rank.status();
  auto timeout = f.GetInt("dist-timeout-seconds");
  if (!timeout.ok()) return timeout.status();
  auto backend = r1r::dist::ParseBackend(f.Get("dist-backend"));
  if (!backend.ok()) return backend.status();
  const std::string master = f.Get("dist-master");
  const size_t colon = master.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(master.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("--dist-master must be host:port, got '", master, "'"));
  }
  o.world_size = static_cast<int>(*world);
  o.rank = *rank;
  o.backend = *backend;
  o.master_host = master.substr(0, colon);
  o.master_port = port;
  o.timeout = std::chrono::seconds(*timeout);
  if (absl::Status s = r1r::dist::Validate(o); !s.ok()) return s;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<r1r::dist::ProcessGroup> group;
  std::unique_ptr<r1r::learner::WeightPublisher> publisher;  // outlives the service, which uses it
  std::unique_ptr<r1r::learner::LearnerServiceImpl> service;
  std::atomic<bool> group_lost{false};
  r1r::rpc::ServiceMain m;
  m.name = "learner";
  m.default_listen = "127.0.0.1:50052";
  m.default_metrics = "127.0.0.1:9102";
  m.declare_flags = [](r1r::config::Flags& f) {
    f.Value("micro-batch", "8", "sequences per forward/backward pass (memory knob)")
        .Value("micro-batch-tokens", "0", "padded tokens per forward/backward pass, 0 = no cap (memory knob)")
        .Value("image-cache-mb", "1024", "processed-image LRU cache in MiB of pixel values (host memory bound)")
        .Value("dist-world-size", "1", "data-parallel learner ranks")
        .Value("dist-rank", "0", "this learner's rank (rank 0 takes the training calls), or 'hostname' for a StatefulSet pod's ordinal")
        .Value("dist-master", "127.0.0.1:29500", "host:port of rank 0's rendezvous store")
        .Value("dist-backend", "gloo", "gloo (CPU) or nccl (CUDA)")
        .Value("dist-timeout-seconds", "600", "how long a rank waits for the others in a collective")
        .Value("work-root", ".", "Init.work_dir must lie under this directory (default: the working directory)")
        .Value("export-root", "", "SaveCheckpoint.export_dir must lie under this directory (default: --work-root)")
        .Value("data-root", "", "images and model.path must lie under these comma-separated directories or --work-root "
                                "(default: $R1R_DATA_ROOT, else the working directory)")
        .Value("weight-sync-store", "",
               "host:port of the weight sync group's store, hosted by rank 0 on that port; host is the name actors "
               "reach it by (docs/operations.md). Empty: actors only pull the gRPC stream")
        .Value("weight-sync-backend", "gloo", "weight sync group backend: gloo (CPU) or nccl (CUDA weights)")
        .Value("weight-sync-bucket-mb", "64", "MiB per broadcast call of the weight sync group (1..2048)")
        .Value("weight-sync-group-timeout-seconds", "30",
               "how long forming the weight sync group and each broadcast wait for the slowest actor (1..3600)");
  };
  m.setup = [&](const r1r::config::Flags& f, r1r::rpc::Server& server) -> absl::Status {
    r1r::learner::LearnerOptions o;
    constexpr int64_t kNoLimit = std::numeric_limits<int64_t>::max();
    auto micro = f.GetIntInRange("micro-batch", 1, kNoLimit);
    if (!micro.ok()) return micro.status();
    o.micro_batch = *micro;
    auto tokens = f.GetIntInRange("micro-batch-tokens", 0, kNoLimit);
    if (!tokens.ok()) return tokens.status();
    o.micro_batch_tokens = *tokens;
    auto cache_mb = f.GetIntInRange("image-cache-mb", 0, kNoLimit >> 20);  // in bytes it must fit
    if (!cache_mb.ok()) return cache_mb.status();
    o.image_cache_bytes = *cache_mb << 20;
    const std::string export_root = f.Get("export-root").empty() ? f.Get("work-root") : f.Get("export-root");
    auto work_roots = r1r::files::Roots::Make({{"work-root", f.Get("work-root")}});
    if (!work_roots.ok()) return work_roots.status();
    auto export_roots = r1r::files::Roots::Make({{"export-root", export_root}});
    if (!export_roots.ok()) return export_roots.status();
    auto read_dirs = r1r::files::RootFlag("data-root", f.Get("data-root"), "R1R_DATA_ROOT", ".");
    read_dirs.emplace_back("work-root", f.Get("work-root"));
    auto read_roots = r1r::files::Roots::Make(read_dirs);
    if (!read_roots.ok()) return read_roots.status();
    o.work_roots = *work_roots;
    o.export_roots = *export_roots;
    o.read_roots = *read_roots;
    auto dist_options = GroupOptionsFromFlags(f);
    if (!dist_options.ok()) return dist_options.status();
    if (dist_options->world_size > 1) {
      spdlog::info("rank {} of {}: joining {}:{}", dist_options->rank, dist_options->world_size,
                   dist_options->master_host, dist_options->master_port);
      auto created = r1r::dist::ProcessGroup::Create(*dist_options);
      if (!created.ok()) return created.status();
      group = std::move(*created);
      o.group = group.get();
      o.on_group_lost = [&group_lost](const absl::Status& s) {
        if (group_lost.exchange(true)) return;
        spdlog::error("the learner ranks lost each other ({}); stopping so that all ranks restart together",
                      s.ToString());
        ::kill(::getpid(), SIGTERM);
      };
    }
    auto sync = r1r::learner::ParseWeightSyncFlags(f);
    if (!sync.ok()) return sync.status();
    if (sync->has_value() && (!group || group->rank() == 0)) {
      auto started = r1r::learner::WeightPublisher::Start(**sync, server.metrics());
      if (!started.ok()) return started.status();
      publisher = std::move(*started);
      o.weight_publisher = publisher.get();
    }
    service = std::make_unique<r1r::learner::LearnerServiceImpl>(o, &server.metrics());
    server.AddService(service.get());
    if (group) {
      // The other ranks wait for rank 0's next command inside a collective, which times out after
      // --dist-timeout-seconds: between jobs rank 0 keeps them company with a no-op now and then,
      // so the gap between two commands stays under half the timeout. When following ends (rank 0
      // stopped or is gone), a follower stops too, through its SIGTERM path.
      service->StartRankThreads(absl::FromChrono(dist_options->timeout) / 4, [](const absl::Status& s) {
        if (s.ok()) {
          spdlog::info("rank 0 stopped; stopping");
        } else {
          spdlog::error("following rank 0 ended: {}", s.ToString());
        }
        ::kill(::getpid(), SIGTERM);
      });
    }
    return absl::OkStatus();
  };
  const int code = r1r::rpc::RunServiceMain(m, argc, argv);
  if (service) {
    const auto stopped = service->rank_group().Shutdown(/*lost=*/group_lost);  // a lost group has no one to tell
    if (!stopped.stop_followers.ok()) spdlog::warn("stopping the other ranks: {}", stopped.stop_followers.ToString());
    if (stopped.follower_left_running) {
      // Stopped by a signal while waiting in a collective: c10d cannot abort it, so the thread and the
      // state it uses are left to process exit.
      (void)service.release();
      (void)group.release();
    }
  }
  return group_lost ? 1 : code;
}
