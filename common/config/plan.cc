#include "common/config/plan.h"

#include "common/config/memory_plan.h"

#include <fstream>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <nlohmann/json.hpp>

namespace r1r::config {
namespace {

double TextParams(double vocab, double h, double layers, double heads, double kv_heads, double inter, bool tied) {
  const double head_dim = h / heads;
  const double attn = h * h * 2 + 2 * h * kv_heads * head_dim + h + 2 * kv_heads * head_dim;  // q,o + k,v (+bias)
  const double mlp = 3 * h * inter;
  return vocab * h * (tied ? 1 : 2) + layers * (attn + mlp + 2 * h) + h;
}

double VisionParams(double h, double depth, double inter, double out_hidden) {
  const double patch = 3 * 2 * 14 * 14 * h;
  const double block = 4 * h * h + 3 * h * inter + 2 * h;
  const double merger = (4 * h) * (4 * h) + (4 * h) * out_hidden;
  return patch + depth * block + merger;
}

// A published Qwen2.5-VL's config.json, for planning before the weights are on this machine.
nlohmann::json KnownConfig(const std::string& path) {
  const PublishedQwen25Vl* k = FindPublishedQwen25Vl(path);
  if (k == nullptr) return nullptr;
  return {{"hidden_size", k->hidden}, {"num_hidden_layers", k->layers}, {"num_attention_heads", k->heads},
          {"num_key_value_heads", k->kv_heads}, {"intermediate_size", k->intermediate},
          {"vocab_size", k->tied ? 151936 : 152064}, {"tie_word_embeddings", k->tied},
          {"vision_config", {{"hidden_size", 1280}, {"depth", 32}, {"intermediate_size", 3420}, {"out_hidden_size", k->hidden}}}};
}

double Num(const nlohmann::json& j, const char* key, double fallback) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

std::string Gib(double bytes) { return absl::StrFormat("%.1f GiB", bytes / (1024.0 * 1024 * 1024)); }

}  // namespace

ModelSize EstimateModelSize(const JobSpec& spec) {
  ModelSize m;
  if (spec.model.init == "tiny") {
    const TinyModelSpec& t = spec.model.tiny;
    const double vocab = spec.tokenizer.train_vocab_size > 0 ? spec.tokenizer.train_vocab_size : 1024;
    m.parameters = TextParams(vocab, t.hidden_size, t.num_layers, t.num_heads, t.num_kv_heads, t.intermediate_size, true) +
                   VisionParams(t.vision_hidden_size, t.vision_depth, 4 * t.vision_hidden_size, t.hidden_size);
    m.hidden_size = t.hidden_size;
    m.num_layers = t.num_layers;
    m.num_kv_heads = t.num_kv_heads;
    m.head_dim = static_cast<double>(t.hidden_size) / t.num_heads;
    m.known = true;
    return m;
  }
  std::ifstream in(spec.model.path + "/config.json");
  nlohmann::json j = in ? nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false) : nlohmann::json();
  if (!in || j.is_discarded()) {
    j = KnownConfig(spec.model.path);
    if (j.is_null()) return m;
    m.from_published_config = true;
  }
  const nlohmann::json& text = j.contains("text_config") ? j["text_config"] : j;
  const double h = Num(text, "hidden_size", 0), heads = Num(text, "num_attention_heads", 0);
  if (h == 0 || heads == 0) return m;
  m.hidden_size = h;
  m.num_layers = Num(text, "num_hidden_layers", 0);
  m.num_kv_heads = Num(text, "num_key_value_heads", heads);
  m.head_dim = h / heads;
  // Checked, not j.value(): a string here ("yes") threw out of the dry run and aborted the orchestrator.
  const auto tie = j.find("tie_word_embeddings");
  if (tie != j.end() && !tie->is_null() && !tie->is_boolean()) {
    m.problem = "config.json: field 'tie_word_embeddings' must be true or false";
    return m;
  }
  const bool tied = tie != j.end() && tie->is_boolean() && tie->get<bool>();
  m.parameters = TextParams(Num(text, "vocab_size", 0), h, m.num_layers, heads, m.num_kv_heads,
                            Num(text, "intermediate_size", 0), tied);
  if (j.contains("vision_config")) {
    const auto& v = j["vision_config"];
    m.parameters += VisionParams(Num(v, "hidden_size", 0), Num(v, "depth", 0), Num(v, "intermediate_size", 0),
                                 Num(v, "out_hidden_size", h));
  }
  m.known = true;
  return m;
}

std::string DescribePlan(const JobSpec& spec) {
  std::string out = absl::StrCat("job '", spec.name, "'\n");
  absl::StrAppend(&out, "phases: data_prep", spec.sft.enabled ? " -> sft" : "", spec.rl.enabled ? " -> rl" : "",
                  " -> eval -> publish\n");
  absl::StrAppend(&out, "data: ", spec.data.source, spec.data.path.empty() ? "" : absl::StrCat(" ", spec.data.path),
                  ", held-out ", spec.data.heldout_fraction * 100, "%, SFT on ", spec.data.sft_split,
                  " / RL on ", spec.data.rl_split, " items, pixels [", spec.data.min_pixels, ", ",
                  spec.data.max_pixels, "]\n");
  if (spec.sft.enabled) {
    absl::StrAppendFormat(&out, "sft: %d epoch(s), batch %d, lr %g\n", spec.sft.epochs, spec.sft.batch_size,
                          spec.sft.optim.lr);
  }
  if (spec.rl.enabled) {
    const RlSpec& r = spec.rl;
    absl::StrAppendFormat(&out,
                          "rl: %s, rollout %d / train %d, epochs %d, lr %g, eps %g, pre-clip [%g, %g], filter %s, loss %s, "
                          "beta %g (%s), gamma %g, T %g, max new tokens %d, reward %g*format + result*(1 + %g*consistency)\n",
                          r.algorithm, r.rollout_batch_size, r.train_batch_size, r.epochs, r.optim.lr, r.eps_clip,
                          r.preclip_min, r.preclip_max, r.adv_filter, r.loss_aggregation, r.kl_coef, r.kl_estimator, r.gamma,
                          r.temperature, r.max_new_tokens, r.format_weight, r.consistency_weight);
  }
  absl::StrAppend(&out, "processes: orchestrator, learner, ", spec.rl.num_actors, " actor(s), reward, judge (",
                  spec.judge.backend, "), serve\n");
  const ModelSize m = EstimateModelSize(spec);
  if (!m.known) {
    absl::StrAppend(&out, "memory: unknown (", spec.model.path, "/",
                    m.problem.empty() ? "config.json not readable here" : m.problem, ")\n");
    return out;
  }
  const double p = m.parameters;
  const double weight_bytes = spec.model.dtype == "bfloat16" ? 2 : 4;
  // KV cache per token: 2 (k, v) x layers x kv_heads x head_dim x dtype bytes.
  const double kv_per_token = 2 * m.num_layers * m.num_kv_heads * m.head_dim * weight_bytes;
  const double rollout_tokens = static_cast<double>(spec.rl.rollout_batch_size) /
                                std::max<int64_t>(1, spec.rl.num_actors) *
                                (spec.rl.max_new_tokens + 2048);  // + a typical prompt with an image
  const double actor = p * weight_bytes + kv_per_token * rollout_tokens;
  absl::StrAppendFormat(&out, "model: %.3g parameters, %s%s\n", p, spec.model.dtype,
                        m.from_published_config ? " (published Qwen2.5-VL config; config.json not readable here)" : "");
  const LearnerMemory learner_plan = PlanLearner(spec);
  absl::StrAppend(&out, "memory per role: learner ", Gib(learner_plan.per_gpu_bytes), " per GPU (below)", "; actor ",
                  Gib(actor), " (weights + KV cache ", Gib(kv_per_token * rollout_tokens), ")",
                  "; serve ", Gib(p * weight_bytes + kv_per_token * 8 * 4096), "\n");
  absl::StrAppend(&out, DescribeLearnerMemory(learner_plan));
  return out;
}

}  // namespace r1r::config
