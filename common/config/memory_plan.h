// The learner's device memory per GPU, term by term, for `r1r submit --dry-run` and SubmitJob: weights,
// gradients and optimizer state (by learner.precision, learner.zero_stage and learner.world_size),
// activations (micro-batch tokens, image tokens, model.gradient_checkpointing) and workspace, against
// resources.gpu_memory_gib. A spec that does not fit is refused, naming its largest terms and the knob
// that would make it fit.
//
// The activation terms count the tensors this implementation (common/model) keeps for backward, per
// token and layer: RMSNorm (an fp32 copy of its input, the normalised bf16 value, its output), q/k/v
// with their rotary intermediates, the attention probabilities (explicit attention on LibTorch 1.13 /
// CPU: softmax output per head and key; fused SDPA on CUDA: the output, log-sum-exp and the boolean
// mask), the o_proj input and the four SwiGLU intermediates. With checkpointing a layer keeps its input
// only and one layer is live again during backward. The workspace term is whatever the peak phase adds
// on top of the persistent state and the activations: the lm-head chunk and the output projection's
// gradient at the start of backward, the model-dtype gradients at its end (bf16_mixed, stage 2), or the
// collectives' buffers after it. tools/bench/learner_memory_bench measures all of them on the CPU.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <absl/status/status.h>

#include "common/config/job_spec.h"

namespace r1r::config {

// A published Qwen2.5-VL-Instruct's text sizes (its vision tower is the same in every size), matched by a
// tag in the model path ("-7B"), for planning before the weights are on this machine. nullptr: none.
struct PublishedQwen25Vl {
  const char* tag;
  int hidden, layers, heads, kv_heads, intermediate;
  bool tied;
};
const PublishedQwen25Vl* FindPublishedQwen25Vl(const std::string& model_path);

// What the plan needs of a Qwen2.5-VL: from <model.path>/config.json, the tiny spec, or the published
// config matched by name ("-7B").
struct ModelShape {
  double vocab = 0, hidden = 0, layers = 0, heads = 0, kv_heads = 0, intermediate = 0;
  bool tied = false;
  double v_hidden = 0, v_depth = 0, v_intermediate = 0, v_heads = 0, v_out = 0;
  double v_patch = 14, v_merge = 2, v_temporal = 2, v_window = 112, v_full_blocks = 4;
  double text_params = 0, vision_params = 0;
  bool known = false;
  bool from_published = false;
  std::string problem;  // why not known
};
ModelShape ReadModelShape(const JobSpec& spec);

struct LearnerPlanOptions {
  int world_size = 1;
  int zero_stage = 0;
  bool mixed = false;           // bf16 weights + fp32 master (bf16_mixed); false: fp32 weights
  bool checkpointing = false;
  bool freeze_vision = false;
  bool fused_attention = true;  // CUDA LibTorch >= 2 (SDPA); false: explicit attention (CPU 1.13)
  bool cuda = true;             // adds the CUDA context and library workspaces
  bool reference = false;       // a frozen KL reference model on the learner
  double sequences = 1;         // per micro-batch
  double text_tokens = 0;       // per sequence: prompt text + response
  double image_tokens = 0;      // per sequence: merged image tokens (patches = 4x)
  double response_tokens = 0;   // per sequence (the scored part)
  double logits_chunk = 1024;   // ComputeTokenLogProbs chunk
  double bucket_bytes = 32 << 20;
};

struct LearnerMemory {
  // weights, gradients, optimizer, activations, workspace (and reference when present), in bytes.
  std::vector<std::pair<std::string, double>> terms;
  double per_gpu_bytes = 0;
  double gpu_memory_bytes = 0;
  bool fits = true;
  bool checked = false;  // against a device (model.device cuda); a CPU learner is not refused
  LearnerPlanOptions options;
  std::string advice;    // when it does not fit: the knob that would make it fit
};

// The terms for explicit options (the bench plans its own runs with this).
LearnerMemory PlanLearnerMemory(const ModelShape& shape, const LearnerPlanOptions& options, double gpu_memory_bytes);
// The options a spec implies.
LearnerPlanOptions LearnerPlanOptionsFromSpec(const JobSpec& spec);
// Plan of a spec (unknown model: no terms, fits, not checked), with advice when it does not fit.
LearnerMemory PlanLearner(const JobSpec& spec);

// Human-readable lines for DescribePlan (per GPU: terms, device, verdict, advice).
std::string DescribeLearnerMemory(const LearnerMemory& plan);
// One line of JSON: {"name", "memory": {"learner": {per_gpu_bytes, gpu_memory_bytes, fits, checked,
// terms: {...}, world_size, zero_stage, precision, gradient_checkpointing, ...}}, "plan": text}.
std::string PlanJson(const JobSpec& spec, const std::string& plan_text);
// RESOURCE_EXHAUSTED naming the largest terms and the knob when the learner does not fit its GPU.
absl::Status CheckLearnerFits(const JobSpec& spec);

}  // namespace r1r::config
