#include "common/config/memory_plan.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <nlohmann/json.hpp>

namespace r1r::config {
namespace {

constexpr double kGiB = 1024.0 * 1024 * 1024;
constexpr double kCudaContext = 1.0 * kGiB;  // CUDA context, cuBLAS/cuDNN workspaces (measured ~0.6-1 GiB)

std::string Gib(double bytes) { return absl::StrFormat("%.1f GiB", bytes / kGiB); }

double Num(const nlohmann::json& j, const char* key, double fallback) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

void CountParams(ModelShape& m) {
  const double H = m.hidden, q = m.hidden, kv = m.kv_heads * (m.hidden / m.heads), I = m.intermediate;
  const double layer = (H * q + q) + 2 * (H * kv + kv) + q * H + 3 * H * I + 2 * H;
  m.text_params = m.vocab * H * (m.tied ? 1 : 2) + m.layers * layer + H;
  const double Hv = m.v_hidden, Iv = m.v_intermediate, merged = Hv * m.v_merge * m.v_merge;
  const double block = (Hv * 3 * Hv + 3 * Hv) + (Hv * Hv + Hv) + (3 * Hv * Iv + 2 * Iv + Hv) + 2 * Hv;
  m.vision_params = Hv * 3 * m.v_temporal * m.v_patch * m.v_patch + m.v_depth * block + Hv +
                    (merged * merged + merged) + (merged * m.v_out + m.v_out);
}

bool PublishedShape(const std::string& path, ModelShape& m) {
  const PublishedQwen25Vl* k = FindPublishedQwen25Vl(path);
  if (k == nullptr) return false;
  m.hidden = k->hidden, m.layers = k->layers, m.heads = k->heads, m.kv_heads = k->kv_heads;
  m.intermediate = k->intermediate;
  m.tied = k->tied;
  m.vocab = k->tied ? 151936 : 152064;
  m.v_hidden = 1280, m.v_depth = 32, m.v_intermediate = 3420, m.v_heads = 16, m.v_out = k->hidden;
  return true;
}

// Bytes kept for backward per text token of one decoder layer (b: activation dtype bytes; S: keys per
// query, the sequence length).
double TextLayerBytes(const ModelShape& m, double b, double S, bool fused) {
  const double H = m.hidden, q = m.hidden, kv = m.kv_heads * (m.hidden / m.heads), I = m.intermediate;
  const double rep = m.heads / m.kv_heads;
  // RMSNorm: an fp32 view of the input (a copy in bf16), rsqrt, the normalised value and the output.
  const double norm = b == 4 ? 3 * H * 4 + 4 : 4 * H + 4 + 2 * H * b;
  const double qkv = (3 * q + 3 * kv + kv) * b;  // q, rotate_half(q), rotated q (folded copy); k likewise; v
  const double attention = fused ? q * b + m.heads * 4 + rep * S                 // output, log-sum-exp, mask
                                 : m.heads * S * (4 + (b == 4 ? 0 : b)) + rep * S;  // softmax (+ its cast), mask
  return 2 * norm + qkv + attention + q * b /* o_proj input */ + 4 * I * b /* SwiGLU */;
}

// Bytes kept per image patch of one vision block (seg: keys per query in its attention segment).
double VisionBlockBytes(const ModelShape& m, double b, double seg, bool fused) {
  const double Hv = m.v_hidden, Iv = m.v_intermediate;
  const double norm = b == 4 ? 3 * Hv * 4 + 4 : 4 * Hv + 4 + 2 * Hv * b;
  // q and k rotate in fp32: bf16 keeps fp32 q, k and their rotate_half (16 Hv) and the gathered q, k, v;
  // fp32 keeps the qkv output, rotate_half of q and k, and the gathered q, k, v.
  const double qkv = b == 4 ? 12 * Hv + 8 * Hv + 12 * Hv : 16 * Hv + 3 * Hv * b;
  const double attention = fused ? Hv * b + m.v_heads * 4 : m.v_heads * seg * (4 + (b == 4 ? 0 : b));
  return 2 * norm + qkv + attention + Hv * b /* proj input */ + 4 * Iv * b /* gated MLP */;
}

}  // namespace

const PublishedQwen25Vl* FindPublishedQwen25Vl(const std::string& model_path) {
  static const PublishedQwen25Vl kPublished[] = {{"-3B", 2048, 36, 16, 2, 11008, true},
                                                 {"-7B", 3584, 28, 28, 4, 18944, false},
                                                 {"-32B", 5120, 64, 40, 8, 27648, false},
                                                 {"-72B", 8192, 80, 64, 8, 29568, false}};
  for (const PublishedQwen25Vl& k : kPublished) {
    if (model_path.find(k.tag) != std::string::npos) return &k;
  }
  return nullptr;
}

ModelShape ReadModelShape(const JobSpec& spec) {
  ModelShape m;
  if (spec.model.init == "tiny") {
    const TinyModelSpec& t = spec.model.tiny;
    m.vocab = spec.tokenizer.train_vocab_size > 0 ? spec.tokenizer.train_vocab_size : 1024;
    m.hidden = t.hidden_size, m.layers = t.num_layers, m.heads = t.num_heads, m.kv_heads = t.num_kv_heads;
    m.intermediate = t.intermediate_size, m.tied = true;
    m.v_hidden = t.vision_hidden_size, m.v_depth = t.vision_depth, m.v_heads = t.vision_heads;
    m.v_intermediate = 2 * t.vision_hidden_size, m.v_out = t.hidden_size, m.v_full_blocks = 1;
    m.known = m.hidden > 0 && m.heads > 0 && m.kv_heads > 0;
    if (m.known) CountParams(m);
    return m;
  }
  std::ifstream in(spec.model.path + "/config.json");
  nlohmann::json j = in ? nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false) : nlohmann::json();
  if (!in || j.is_discarded() || !j.is_object()) {
    if (!PublishedShape(spec.model.path, m)) {
      m.problem = "config.json not readable here";
      return m;
    }
    m.from_published = true;
  } else {
    const nlohmann::json& text = j.contains("text_config") && j["text_config"].is_object() ? j["text_config"] : j;
    m.hidden = Num(text, "hidden_size", 0), m.heads = Num(text, "num_attention_heads", 0);
    m.layers = Num(text, "num_hidden_layers", 0), m.kv_heads = Num(text, "num_key_value_heads", m.heads);
    m.intermediate = Num(text, "intermediate_size", 0), m.vocab = Num(text, "vocab_size", 0);
    const auto tie = j.find("tie_word_embeddings");
    m.tied = tie != j.end() && tie->is_boolean() && tie->get<bool>();
    const nlohmann::json v = j.contains("vision_config") ? j["vision_config"] : nlohmann::json::object();
    m.v_hidden = Num(v, "hidden_size", 0), m.v_depth = Num(v, "depth", 0), m.v_heads = Num(v, "num_heads", 16);
    m.v_intermediate = Num(v, "intermediate_size", 0), m.v_out = Num(v, "out_hidden_size", m.hidden);
    m.v_patch = Num(v, "patch_size", 14), m.v_merge = Num(v, "spatial_merge_size", 2);
    m.v_temporal = Num(v, "temporal_patch_size", 2), m.v_window = Num(v, "window_size", 112);
    if (v.contains("fullatt_block_indexes") && v["fullatt_block_indexes"].is_array()) {
      m.v_full_blocks = static_cast<double>(v["fullatt_block_indexes"].size());
    }
  }
  if (m.hidden <= 0 || m.heads <= 0 || m.kv_heads <= 0 || m.layers <= 0 || m.v_heads <= 0) {
    m.problem = "config.json: no usable hidden_size / num_attention_heads / num_hidden_layers";
    return m;
  }
  m.known = true;
  CountParams(m);
  return m;
}

LearnerMemory PlanLearnerMemory(const ModelShape& shape, const LearnerPlanOptions& o, double gpu_memory_bytes) {
  ModelShape m = shape;
  if (m.text_params <= 0) CountParams(m);
  LearnerMemory plan;
  plan.options = o;
  plan.gpu_memory_bytes = gpu_memory_bytes;
  const double b = o.mixed ? 2 : 4;
  const double P = m.text_params + m.vision_params;
  const double trainable = o.freeze_vision ? m.text_params : P;
  const double W = std::max(1, o.world_size);
  const double shards = o.zero_stage >= 1 ? W : 1;
  const double weights = P * b;
  // Gradients that persist through the step: the fp32 accumulator (a shard of it in stage 2). In fp32
  // stages 0-1 the parameters' .grad are views into it; otherwise backward produces model-dtype .grad
  // that live only until the micro-batch's AccumulateGradients (counted in the workspace below).
  const double gradients = trainable * 4 / (o.zero_stage == 2 ? W : 1);
  const double transient_grads = (o.mixed || o.zero_stage == 2) ? trainable * b : 0;
  // fp32 master (bf16_mixed only: in fp32 the weights are the master) and the two fp32 moments.
  const double optimizer = trainable * (o.mixed ? 12 : 8) / shards;

  // Activations of one micro-batch.
  const double S = o.text_tokens + o.image_tokens;  // sequence length
  const double tokens = o.sequences * S;
  const double patches = o.sequences * o.image_tokens * m.v_merge * m.v_merge;
  const double layer = TextLayerBytes(m, b, S, o.fused_attention);
  double text = 0;
  const double head = (b == 4 ? 3 * m.hidden * 4 : 4 * m.hidden + 2 * m.hidden * b) * tokens +  // final norm
                      o.sequences * o.response_tokens * m.hidden * b;                           // scored hidden
  if (o.checkpointing) {
    text = m.layers * m.hidden * b * tokens + layer * tokens;  // layer inputs + one layer live in backward
  } else {
    text = m.layers * layer * tokens;
  }
  text += tokens * S;  // the boolean attention mask shared by the layers
  double vision = 0;
  if (!o.freeze_vision && patches > 0) {
    const double window = std::pow(m.v_window / m.v_patch, 2);  // patches per window
    const double per_image = o.image_tokens * m.v_merge * m.v_merge;
    const double full = std::min(m.v_full_blocks, m.v_depth);
    const double windowed_block = VisionBlockBytes(m, b, std::min(window, per_image), o.fused_attention);
    const double full_block = VisionBlockBytes(m, b, per_image, o.fused_attention);
    const double merger = (b == 4 ? 3 * m.v_hidden * 4 : 4 * m.v_hidden + 2 * m.v_hidden * b) + 2 * m.v_hidden * b;
    const double input = 3 * m.v_temporal * m.v_patch * m.v_patch * b;  // pixels cast to the model dtype
    if (o.checkpointing) {
      vision = (m.v_depth * m.v_hidden * b + std::max(windowed_block, full_block) + merger + input) * patches;
    } else {
      vision = ((m.v_depth - full) * windowed_block + full * full_block + merger + input) * patches;
    }
  }
  const double activations = text + head + vision;
  // Workspace: whichever phase peaks above the persistent state.
  // - backward, first node: all activations, the lm-head chunk (fp32 logits, log-probs, their gradient)
  //   and the output projection's fp32 gradient;
  // - backward, last node: the model-dtype .grad of every trainable parameter (bf16_mixed, stage 2);
  // - after backward: the collectives' buckets, Gloo/NCCL's flat all-gather buffer and the shard copy;
  // - the AdamW step's two fp32 temporaries over the shard.
  const double chunk = std::min(o.logits_chunk, std::max(1.0, o.sequences * o.response_tokens));
  // (the output projection's gradient: an fp32 accumulator plus each chunk's product, cast to fp32)
  const double head_backward = 3 * chunk * m.vocab * 4 + m.vocab * m.hidden * (b == 4 ? 8 : 10);
  double comm = 0;
  if (W > 1) comm = 2 * o.bucket_bytes + (o.zero_stage >= 1 ? P * b + P / W * b : 0);
  const double step = 2 * std::min(trainable / shards, double{1 << 26}) * 4;  // ShardedAdamW's chunked step
  const double peak = std::max({activations + head_backward, transient_grads, comm, step});
  double workspace = peak - activations;
  if (o.cuda) workspace += kCudaContext;
  plan.terms = {{"weights", weights}, {"gradients", gradients}, {"optimizer", optimizer},
                {"activations", activations}, {"workspace", workspace}};
  if (o.reference) plan.terms.push_back({"reference", weights});
  for (const auto& t : plan.terms) plan.per_gpu_bytes += t.second;
  plan.checked = o.cuda;
  plan.fits = !plan.checked || plan.per_gpu_bytes <= gpu_memory_bytes;
  return plan;
}

LearnerPlanOptions LearnerPlanOptionsFromSpec(const JobSpec& spec) {
  LearnerPlanOptions o;
  const LearnerSpec& l = spec.learner;
  o.world_size = static_cast<int>(l.world_size);
  o.zero_stage = static_cast<int>(l.zero_stage);
  o.mixed = l.precision == "bf16_mixed" || (l.precision.empty() && spec.model.dtype == "bfloat16");
  o.checkpointing = spec.model.gradient_checkpointing;
  o.freeze_vision = spec.model.freeze_vision;
  o.cuda = spec.model.device == "cuda";
  o.fused_attention = o.cuda;  // CUDA builds use LibTorch >= 2 (SDPA); Debian's CPU LibTorch is 1.13
  o.reference = spec.rl.enabled && spec.rl.kl_coef > 0;
  const double image = spec.data.max_pixels / (28.0 * 28.0);  // merged tokens of the largest image
  double response = 0;
  if (spec.sft.enabled) response = std::max<double>(response, spec.sft.max_response_tokens);
  if (spec.rl.enabled) response = std::max<double>(response, spec.rl.max_new_tokens);
  o.image_tokens = std::floor(image);
  o.response_tokens = response;
  o.text_tokens = static_cast<double>(l.prompt_text_tokens) + response;
  const double seq = o.text_tokens + o.image_tokens;
  double sequences = l.micro_batch > 0 ? static_cast<double>(l.micro_batch) : 8;  // the learner's default
  if (l.micro_batch_tokens > 0) sequences = std::min(sequences, std::max(1.0, std::floor(l.micro_batch_tokens / seq)));
  o.sequences = sequences;
  return o;
}

namespace {

std::string Largest(const LearnerMemory& plan) {
  auto terms = plan.terms;
  std::sort(terms.begin(), terms.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return absl::StrCat(terms[0].first, " ", Gib(terms[0].second), ", ", terms[1].first, " ", Gib(terms[1].second));
}

// The first knob, in order of cost, that makes the plan fit.
std::string Advice(const ModelShape& m, const LearnerPlanOptions& o, double device) {
  auto fits = [&](const LearnerPlanOptions& x) { return PlanLearnerMemory(m, x, device).fits; };
  LearnerPlanOptions x = o;
  if (!x.checkpointing) {
    x.checkpointing = true;
    if (fits(x)) return "set model.gradient_checkpointing: true";
  }
  if (!x.mixed) {
    x.mixed = true;
    if (fits(x)) return absl::StrCat(o.checkpointing ? "" : "set model.gradient_checkpointing: true and ",
                                     "learner.precision: bf16_mixed");
  }
  for (int z = std::max(1, o.zero_stage); z <= 2; ++z) {
    x.zero_stage = z;
    if (z > o.zero_stage && fits(x)) return absl::StrCat("set learner.zero_stage: ", z, " (with the settings above)");
  }
  x.zero_stage = 2;
  if (x.sequences > 1) {
    LearnerPlanOptions one = x;
    one.sequences = 1;
    if (fits(one)) return "set learner.micro_batch: 1 (with checkpointing, bf16_mixed and zero_stage 2)";
  }
  for (const double sequences : {x.sequences, 1.0}) {
    x.sequences = sequences;
    for (int w = std::max(2, o.world_size * 2); w <= 1024; w *= 2) {
      x.world_size = w;
      if (fits(x)) {
        return absl::StrCat("use learner.world_size: ", w, " GPUs (--dist-world-size) with zero_stage 2, bf16_mixed, "
                            "checkpointing", sequences < o.sequences ? " and micro_batch 1" : "");
      }
    }
  }
  return "no setting of this learner fits this model on one such GPU";
}

}  // namespace

LearnerMemory PlanLearner(const JobSpec& spec) {
  const ModelShape m = ReadModelShape(spec);
  LearnerMemory plan;
  plan.gpu_memory_bytes = spec.resources.gpu_memory_gib * kGiB;
  if (!m.known) return plan;
  plan = PlanLearnerMemory(m, LearnerPlanOptionsFromSpec(spec), spec.resources.gpu_memory_gib * kGiB);
  if (!plan.fits) plan.advice = Advice(m, plan.options, plan.gpu_memory_bytes);
  return plan;
}

std::string DescribeLearnerMemory(const LearnerMemory& plan) {
  if (plan.terms.empty()) return "learner memory: unknown (model shape not readable here)\n";
  const LearnerPlanOptions& o = plan.options;
  std::string out = absl::StrFormat(
      "learner memory per GPU (%s, zero_stage %d, %d rank(s), checkpointing %s, micro-batch %g x %g tokens incl. "
      "%g image tokens): %s\n",
      o.mixed ? "bf16_mixed" : "fp32", o.zero_stage, o.world_size, o.checkpointing ? "on" : "off", o.sequences,
      o.text_tokens + o.image_tokens, o.image_tokens, Gib(plan.per_gpu_bytes));
  for (const auto& [name, bytes] : plan.terms) absl::StrAppend(&out, "  ", name, ": ", Gib(bytes), "\n");
  if (!plan.checked) {
    absl::StrAppend(&out, "  device: cpu (not checked against a GPU)\n");
  } else {
    absl::StrAppend(&out, "  device: ", Gib(plan.gpu_memory_bytes), " per GPU (resources.gpu_memory_gib)\n",
                    "  verdict: ", plan.fits ? "fits" : "DOES NOT FIT", "\n");
    if (!plan.fits) absl::StrAppend(&out, "  largest: ", Largest(plan), "; to fit: ", plan.advice, "\n");
  }
  return out;
}

std::string PlanJson(const JobSpec& spec, const std::string& plan_text) {
  const LearnerMemory plan = PlanLearner(spec);
  nlohmann::json terms = nlohmann::json::object();
  for (const auto& [name, bytes] : plan.terms) terms[name] = static_cast<int64_t>(bytes);
  const LearnerPlanOptions& o = plan.options;
  nlohmann::json learner = {{"per_gpu_bytes", static_cast<int64_t>(plan.per_gpu_bytes)},
                            {"gpu_memory_bytes", static_cast<int64_t>(plan.gpu_memory_bytes)},
                            {"fits", plan.fits},
                            {"checked", plan.checked},
                            {"known", !plan.terms.empty()},
                            {"terms", terms},
                            {"world_size", o.world_size},
                            {"zero_stage", o.zero_stage},
                            {"precision", o.mixed ? "bf16_mixed" : "fp32"},
                            {"gradient_checkpointing", o.checkpointing},
                            {"micro_batch_sequences", o.sequences},
                            {"sequence_tokens", o.text_tokens + o.image_tokens},
                            {"image_tokens", o.image_tokens}};
  if (!plan.advice.empty()) learner["advice"] = plan.advice;
  nlohmann::json j = {{"name", spec.name}, {"memory", {{"learner", learner}}}, {"plan", plan_text}};
  return j.dump();
}

absl::Status CheckLearnerFits(const JobSpec& spec) {
  const LearnerMemory plan = PlanLearner(spec);
  if (plan.fits) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "the learner needs ", Gib(plan.per_gpu_bytes), " per GPU but resources.gpu_memory_gib is ",
      Gib(plan.gpu_memory_bytes), " (largest terms: ", Largest(plan), "); to fit: ", plan.advice));
}

}  // namespace r1r::config
