// r1r-judge: the consistency referee (--backend rule | openai | model).
#include <memory>

#include "common/judge/model_backend.h"
#include "common/judge/openai_backend.h"
#include "common/rpc/service_main.h"
#include "services/judge/judge_service.h"

int main(int argc, char** argv) {
  std::unique_ptr<r1r::judge::JudgeServiceImpl> service;
  r1r::rpc::ServiceMain m;
  m.name = "judge";
  m.default_listen = "127.0.0.1:50055";
  m.default_metrics = "127.0.0.1:9105";
  m.declare_flags = [](r1r::config::Flags& f) {
    f.Value("backend", "rule", "rule | openai | model")
        .Value("endpoint", "", "openai: base URL such as http://vllm:8000/v1; model: the model directory")
        .Value("model-name", "", "openai: model id (default: the first listed)")
        .Value("api-key-env", "OPENAI_API_KEY", "openai: environment variable holding the API key")
        .Value("temperature", "0.1", "sampling temperature of the referee")
        .Value("max-tokens", "4096", "referee reply budget")
        .Value("timeout-seconds", "60", "per request")
        .Value("retries", "3", "transport retries per request")
        .Value("rate-limit-qps", "0", "requests per second to the endpoint (0 = unlimited)")
        .Value("concurrency", "8", "requests in flight")
        .Value("device", "cpu", "model: cpu | cuda")
        .Value("dtype", "float32", "model: float32 | bfloat16")
        .Value("batch", "8", "model: responses per generation batch");
  };
  m.setup = [&](const r1r::config::Flags& f, r1r::rpc::Server& server) -> absl::Status {
    std::unique_ptr<r1r::judge::RefereeBackend> backend;
    const std::string& kind = f.Get("backend");
    if (kind == "rule") {
      backend = r1r::judge::MakeRuleBackend();
    } else if (kind == "openai") {
      r1r::judge::OpenAiOptions o;
      o.base_url = f.Get("endpoint");
      if (o.base_url.empty()) return absl::InvalidArgumentError("--endpoint is required for --backend openai");
      o.model = f.Get("model-name");
      if (const char* key = std::getenv(f.Get("api-key-env").c_str())) o.api_key = key;
      auto temperature = f.GetDouble("temperature");
      auto max_tokens = f.GetIntInRange("max-tokens", 1, 1 << 20);
      auto timeout = f.GetDouble("timeout-seconds");
      auto retries = f.GetIntInRange("retries", 0, 100);
      auto qps = f.GetDouble("rate-limit-qps");
      auto concurrency = f.GetIntInRange("concurrency", 1, 1024);
      for (const absl::Status& s : {temperature.status(), max_tokens.status(), timeout.status(), retries.status(),
                                    qps.status(), concurrency.status()}) {
        if (!s.ok()) return s;
      }
      o.temperature = *temperature;
      o.max_tokens = static_cast<int>(*max_tokens);
      o.timeout = absl::Seconds(*timeout);
      o.transport_retries = static_cast<int>(*retries);
      o.rate_limit_qps = *qps;
      o.concurrency = static_cast<int>(*concurrency);
      backend = r1r::judge::MakeOpenAiBackend(o);
    } else if (kind == "model") {
      r1r::judge::ModelBackendOptions o;
      o.model_dir = f.Get("endpoint");
      o.device = f.Get("device");
      o.dtype = f.Get("dtype");
      auto temperature = f.GetDouble("temperature");
      auto max_tokens = f.GetIntInRange("max-tokens", 1, 1 << 20);
      auto batch = f.GetIntInRange("batch", 1, 1024);
      for (const absl::Status& s : {temperature.status(), max_tokens.status(), batch.status()}) {
        if (!s.ok()) return s;
      }
      o.temperature = *temperature;
      o.max_tokens = static_cast<int>(std::min<int64_t>(*max_tokens, 4096));
      o.batch_size = static_cast<int>(*batch);
      auto model = r1r::judge::MakeModelBackend(o);
      if (!model.ok()) return model.status();
      backend = std::move(*model);
    } else {
      return absl::InvalidArgumentError("--backend must be rule, openai or model, got '" + kind + "'");
    }
    service = std::make_unique<r1r::judge::JudgeServiceImpl>(std::move(backend), &server.metrics());
    server.AddService(service.get());
    return absl::OkStatus();
  };
  return r1r::rpc::RunServiceMain(m, argc, argv);
}
