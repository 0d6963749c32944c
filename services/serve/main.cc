// r1r-serve: the live reward-model endpoint of a published checkpoint (RewardModel: Compare, Rank).
#include <memory>

#include "common/files/paths.h"
#include "common/obs/log.h"
#include "common/rpc/auth.h"
#include "common/rpc/service_main.h"
#include "services/serve/serve_service.h"

namespace {

// Without --model-dir the process still serves health and /metrics (a pod waiting for its first
// checkpoint) but refuses every comparison.
class NoModelService final : public r1r::v1::RewardModel::Service {
 public:
  grpc::Status Compare(grpc::ServerContext* ctx, const r1r::v1::CompareRequest*, r1r::v1::CompareResponse*) override {
    return Refuse(ctx);
  }
  grpc::Status Rank(grpc::ServerContext* ctx, const r1r::v1::RankRequest*, r1r::v1::RankResponse*) override {
    return Refuse(ctx);
  }
  grpc::Status Reload(grpc::ServerContext* ctx, const r1r::v1::ReloadRequest*, r1r::v1::ReloadResponse*) override {
    return Refuse(ctx);
  }

 private:
  static grpc::Status Refuse(grpc::ServerContext* ctx) {
    if (auto s = r1r::rpc::Authorize(ctx); !s.ok()) return s;
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "no model loaded: start r1r-serve with --model-dir <published checkpoint>");
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<r1r::serve::RewardModelServiceImpl> service;
  std::unique_ptr<NoModelService> no_model;
  r1r::rpc::ServiceMain m;
  m.name = "serve";
  m.default_listen = "127.0.0.1:50056";
  m.default_metrics = "127.0.0.1:9106";
  m.declare_flags = [](r1r::config::Flags& f) {
    f.Value("model-dir", "", "published checkpoint: config.json, tokenizer.json, preprocessor_config.json, *.safetensors")
        .Value("device", "cpu", "cpu | cuda | cuda:N")
        .Switch("cuda-graphs", "replay decode steps from CUDA graphs (with --device cuda; docs/operations.md)")
        .Value("dtype", "float32", "float32 | bfloat16")
        .Value("max-batch", "8", "sequences generated together at most")
        .Value("batch-window-ms", "5", "how long the oldest waiting request waits for others to batch with")
        .Value("max-new-tokens", "512", "default generation budget per sample (requests may ask for up to 4096)")
        .Value("max-prompt-tokens", "16384", "longest chat-templated prompt accepted")
        .Value("reload-poll-seconds", "0",
               "re-read --model-dir's state.json this often and swap in a higher policy version (0 = only the "
               "Reload RPC)")
        .Value("data-root", "", "requests' image.path must lie under these comma-separated directories "
                                "(default: $R1R_DATA_ROOT, else the working directory)");
  };
  m.setup = [&](const r1r::config::Flags& f, r1r::rpc::Server& server) -> absl::Status {
    if (f.Get("model-dir").empty()) {
      spdlog::warn("no --model-dir: serving health only; Compare and Rank answer FAILED_PRECONDITION");
      no_model = std::make_unique<NoModelService>();
      server.AddService(no_model.get());
      return absl::OkStatus();
    }
    r1r::serve::ServeOptions o;
    o.model_dir = f.Get("model-dir");
    auto model = r1r::train::ParseModelOptions(f.Get("dtype"), f.Get("device"));
    if (!model.ok()) return model.status();
    o.model = *model;
    o.cuda_graphs = f.Has("cuda-graphs");
    if (o.cuda_graphs && !o.model.device.is_cuda()) {
      return absl::InvalidArgumentError("--cuda-graphs needs --device cuda (it is " + f.Get("device") + ")");
    }
    const auto max_batch = f.GetIntInRange("max-batch", 1, 1024);
    const auto poll_seconds = f.GetIntInRange("reload-poll-seconds", 0, 86400);
    const auto window_ms = f.GetIntInRange("batch-window-ms", 0, 10000);
    const auto max_new = f.GetIntInRange("max-new-tokens", 1, o.limits.max_new_tokens);
    const auto max_prompt = f.GetIntInRange("max-prompt-tokens", 16, 1 << 20);
    for (const absl::Status& s :
         {max_batch.status(), poll_seconds.status(), window_ms.status(), max_new.status(), max_prompt.status()}) {
      if (!s.ok()) return s;
    }
    o.batching.max_batch = static_cast<int>(*max_batch);
    o.batching.window = absl::Milliseconds(*window_ms);
    o.default_max_new_tokens = static_cast<int>(*max_new);
    o.max_prompt_tokens = *max_prompt;
    o.reload_poll = absl::Seconds(*poll_seconds);
    auto image_roots = r1r::files::Roots::Make(r1r::files::RootFlag("data-root", f.Get("data-root"), "R1R_DATA_ROOT", "."));
    if (!image_roots.ok()) return image_roots.status();
    o.limits.image_roots = *image_roots;
    auto created = r1r::serve::RewardModelServiceImpl::Create(o, &server.metrics());
    if (!created.ok()) return created.status();
    service = *std::move(created);
    spdlog::info("serving {} (policy version {}) on {} {}, max batch {}, window {} ms", o.model_dir,
                 service->policy_version(), f.Get("device"), f.Get("dtype"), *max_batch, *window_ms);
    server.AddService(service.get());
    return absl::OkStatus();
  };
  return r1r::rpc::RunServiceMain(m, argc, argv);
}
