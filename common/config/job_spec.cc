#include "common/config/job_spec.h"

#include <algorithm>

#include "common/config/yaml_reader.h"

namespace r1r::config {
namespace {

void ReadOptim(YamlReader& y, OptimSpec& o) {
  y.Read("lr", &o.lr);
  y.Read("warmup_ratio", &o.warmup_ratio);
  y.Read("min_lr_ratio", &o.min_lr_ratio);
  y.Read("weight_decay", &o.weight_decay);
  y.Read("adam_betas", &o.adam_betas);
  y.Read("grad_clip", &o.grad_clip);
  y.CheckRange("lr", o.lr, 0, 1, /*lo_open=*/true);
  y.CheckRange("warmup_ratio", o.warmup_ratio, 0, 1);
  y.CheckRange("min_lr_ratio", o.min_lr_ratio, 0, 1);
  y.CheckRange("weight_decay", o.weight_decay, 0, 1);
  y.CheckRange("grad_clip", o.grad_clip, 0, 1e6, true);
  if (o.adam_betas.size() != 2) {
    y.Error("adam_betas", "must be a list of two numbers [beta1, beta2]");
  } else {
    y.CheckRange("adam_betas", o.adam_betas[0], 0, 1, false, true);
    y.CheckRange("adam_betas", o.adam_betas[1], 0, 1, false, true);
  }
}

void ReadModel(YamlReader& y, ModelSpec& m) {
  y.Read("init", &m.init);
  y.Read("path", &m.path);
  y.Read("dtype", &m.dtype);
  y.Read("freeze_vision", &m.freeze_vision);
  y.Read("gradient_checkpointing", &m.gradient_checkpointing);
  y.Read("device", &m.device);
  y.Section("tiny", [&](YamlReader& t) {
    TinyModelSpec& s = m.tiny;
    t.Read("hidden_size", &s.hidden_size);
    t.Read("num_layers", &s.num_layers);
    t.Read("num_heads", &s.num_heads);
    t.Read("num_kv_heads", &s.num_kv_heads);
    t.Read("intermediate_size", &s.intermediate_size);
    t.Read("vision_hidden_size", &s.vision_hidden_size);
    t.Read("vision_depth", &s.vision_depth);
    t.Read("vision_heads", &s.vision_heads);
    t.Read("rope_theta", &s.rope_theta);
    t.CheckRange("rope_theta", s.rope_theta, 1.0, 1e9);
    // Ranges first: the divisibility checks below divide by these, so they only run on checked values.
    const bool hidden_ok = t.CheckRange("hidden_size", s.hidden_size, 8, 65536);
    t.CheckRange("num_layers", s.num_layers, 1, 512);
    const bool heads_ok = t.CheckRange("num_heads", s.num_heads, 1, 1024);
    const bool kv_ok = t.CheckRange("num_kv_heads", s.num_kv_heads, 1, 1024);
    t.CheckRange("intermediate_size", s.intermediate_size, 1, 1 << 20);
    const bool vhidden_ok = t.CheckRange("vision_hidden_size", s.vision_hidden_size, 4, 65536);
    const bool vheads_ok = t.CheckRange("vision_heads", s.vision_heads, 1, 1024);
    t.CheckRange("vision_depth", s.vision_depth, 1, 128);
    if (heads_ok && kv_ok && s.num_heads % s.num_kv_heads != 0) t.Error("num_kv_heads", "must divide num_heads");
    if (hidden_ok && heads_ok) {
      // The model's checks (config.json: head_dim) would otherwise report these after the job started.
      if (s.hidden_size % s.num_heads != 0) {
        t.Error("num_heads", "must divide hidden_size");
      } else if ((s.hidden_size / s.num_heads) % 2 != 0) {
        t.Error("num_heads", "must leave an even head size hidden_size / num_heads (rotary halves)");
      }
    }
    if (vhidden_ok && vheads_ok &&
        (s.vision_hidden_size % s.vision_heads != 0 || (s.vision_hidden_size / s.vision_heads) % 4 != 0)) {
      t.Error("vision_heads", "must divide vision_hidden_size into heads of a multiple of 4 (2-D rotary)");
    }
  });
  y.CheckOneOf("init", m.init, {"path", "tiny"});
  y.CheckOneOf("dtype", m.dtype, {"float32", "bfloat16"});
  y.CheckOneOf("device", m.device, {"cpu", "cuda"});
  if (m.init == "path" && m.path.empty()) y.Error("path", "is required when model.init is 'path'");
}

void ReadData(YamlReader& y, DataSpec& d) {
  y.Read("source", &d.source);
  y.Read("path", &d.path);
  y.Read("image_root", &d.image_root);
  y.Read("synthetic_n", &d.synthetic_n);
  y.Read("seed", &d.seed);
  y.Read("teacher_mistake_rate", &d.teacher_mistake_rate);
  y.Read("synthetic_image_size", &d.synthetic_image_size);
  y.Read("synthetic_max_count", &d.synthetic_max_count);
  y.Read("synthetic_max_distractors", &d.synthetic_max_distractors);
  y.Read("synthetic_grid", &d.synthetic_grid);
  y.Read("synthetic_trace", &d.synthetic_trace);
  y.Read("synthetic_questions", &d.synthetic_questions);
  if (d.synthetic_questions.empty()) y.Error("synthetic_questions", "must name at least one kind");
  for (const std::string& q : d.synthetic_questions) {
    if (q != "colour_shape" && q != "colour" && q != "all") {
      y.Error("synthetic_questions", "each must be colour_shape, colour or all, got '" + q + "'");
    }
  }
  y.Read("heldout_fraction", &d.heldout_fraction);
  y.Read("balance_labels", &d.balance_labels);
  y.Read("image_placement", &d.image_placement);
  y.Read("prompt_style", &d.prompt_style);
  y.Read("sft_split", &d.sft_split);
  y.Read("rl_split", &d.rl_split);
  y.Read("min_pixels", &d.min_pixels);
  y.Read("max_pixels", &d.max_pixels);
  y.Read("max_prompt_tokens", &d.max_prompt_tokens);
  y.CheckOneOf("source", d.source, {"r1reward_jsonl", "pairs_jsonl", "mmrlhf_pairs", "synthetic"});
  if (d.source == "synthetic") {
    y.CheckRange("synthetic_n", static_cast<double>(d.synthetic_n), 1, 10'000'000);
  } else if (d.path.empty()) {
    y.Error("path", "is required unless data.source is 'synthetic'");
  }
  y.CheckRange("teacher_mistake_rate", d.teacher_mistake_rate, 0, 1);
  y.CheckRange("synthetic_image_size", static_cast<double>(d.synthetic_image_size), 56, 112);
  const bool count_ok = y.CheckRange("synthetic_max_count", static_cast<double>(d.synthetic_max_count), 1, 9);
  const bool distractors_ok =
      y.CheckRange("synthetic_max_distractors", static_cast<double>(d.synthetic_max_distractors), 0, 15);
  const bool grid_ok = y.CheckRange("synthetic_grid", static_cast<double>(d.synthetic_grid), 2, 4);
  const bool only_all = std::all_of(d.synthetic_questions.begin(), d.synthetic_questions.end(),
                                    [](const std::string& q) { return q == "all"; });  // no distractors then
  if (count_ok && distractors_ok && grid_ok &&
      d.synthetic_max_count + (only_all ? 0 : d.synthetic_max_distractors) > d.synthetic_grid * d.synthetic_grid) {
    y.Error("synthetic_max_count", "plus synthetic_max_distractors must fit in synthetic_grid^2 cells");
  }
  y.CheckOneOf("synthetic_trace", d.synthetic_trace, {"count", "tally", "list"});
  y.CheckRange("heldout_fraction", d.heldout_fraction, 0, 1, false, true);
  y.CheckOneOf("sft_split", d.sft_split, {"rest", "all"});
  y.CheckOneOf("rl_split", d.rl_split, {"hard", "all"});
  y.CheckOneOf("image_placement", d.image_placement, {"after_text", "before_text"});
  y.CheckOneOf("prompt_style", d.prompt_style, {"r1reward", "compact"});
  y.CheckRange("min_pixels", static_cast<double>(d.min_pixels), 28 * 28, 1e9);
  // Upper bound: Qwen2.5-VL's processor default (16384 patches of 28x28); more would not be resized down.
  if (y.CheckRange("max_pixels", static_cast<double>(d.max_pixels), 28 * 28, 16384 * 28 * 28) &&
      d.max_pixels < d.min_pixels) {
    y.Error("max_pixels", "must be >= data.min_pixels");
  }
  y.CheckRange("max_prompt_tokens", static_cast<double>(d.max_prompt_tokens), 16, 1 << 20);
}

void ReadSft(YamlReader& y, SftSpec& s) {
  y.Read("enabled", &s.enabled);
  y.Read("epochs", &s.epochs);
  y.Read("batch_size", &s.batch_size);
  y.Read("max_response_tokens", &s.max_response_tokens);
  y.Section("optim", [&](YamlReader& o) { ReadOptim(o, s.optim); });
  y.CheckRange("epochs", static_cast<double>(s.epochs), 0, 1000);
  y.CheckRange("batch_size", static_cast<double>(s.batch_size), 1, 65536);
  y.CheckRange("max_response_tokens", static_cast<double>(s.max_response_tokens), 1, 32768);
}

void ReadRl(YamlReader& y, RlSpec& r) {
  y.Read("enabled", &r.enabled);
  y.Read("algorithm", &r.algorithm);
  y.Read("steps", &r.steps);
  y.Read("epochs", &r.epochs);
  y.Read("rollout_batch_size", &r.rollout_batch_size);
  y.Read("train_batch_size", &r.train_batch_size);
  y.Read("ppo_epochs", &r.ppo_epochs);
  y.Read("samples_per_prompt", &r.samples_per_prompt);
  y.Read("eps_clip", &r.eps_clip);
  y.Read("eps_clip_high", &r.eps_clip_high);
  y.Read("preclip_min", &r.preclip_min);
  y.Read("preclip_max", &r.preclip_max);
  y.Read("adv_filter", &r.adv_filter);
  y.Read("loss_aggregation", &r.loss_aggregation);
  y.Read("kl_coef", &r.kl_coef);
  y.Read("kl_estimator", &r.kl_estimator);
  y.Read("gamma", &r.gamma);
  y.Read("temperature", &r.temperature);
  y.Read("top_p", &r.top_p);
  y.Read("top_k", &r.top_k);
  y.Read("max_new_tokens", &r.max_new_tokens);
  y.Read("format_weight", &r.format_weight);
  y.Read("consistency_weight", &r.consistency_weight);
  y.Read("num_actors", &r.num_actors);
  y.Read("checkpoint_every", &r.checkpoint_every);
  y.Read("keep_checkpoints", &r.keep_checkpoints);
  y.Read("off_policy_steps", &r.off_policy_steps);
  y.Section("optim", [&](YamlReader& o) { ReadOptim(o, r.optim); });
  y.CheckOneOf("algorithm", r.algorithm,
               {"stable_reinforce", "reinforce_pp", "no_preclip", "no_filter", "grpo", "rloo"});
  y.CheckRange("steps", static_cast<double>(r.steps), 0, 1e9);
  y.CheckRange("epochs", static_cast<double>(r.epochs), 0, 1000);
  const bool rollout_ok = y.CheckRange("rollout_batch_size", static_cast<double>(r.rollout_batch_size), 1, 65536);
  const bool train_ok = y.CheckRange("train_batch_size", static_cast<double>(r.train_batch_size), 1, 65536);
  if (rollout_ok && train_ok && r.rollout_batch_size % r.train_batch_size != 0) {
    y.Error("train_batch_size", "must divide rl.rollout_batch_size");
  }
  y.CheckRange("ppo_epochs", static_cast<double>(r.ppo_epochs), 1, 100);
  y.CheckRange("off_policy_steps", static_cast<double>(r.off_policy_steps), 0, 1);
  y.CheckRange("samples_per_prompt", static_cast<double>(r.samples_per_prompt), 1, 256);
  if ((r.algorithm == "grpo" || r.algorithm == "rloo") && r.samples_per_prompt < 2) {
    y.Error("samples_per_prompt", "must be >= 2 for group baselines (grpo, rloo)");
  }
  y.CheckRange("eps_clip", r.eps_clip, 0, 1, true, true);
  y.CheckRange("eps_clip_high", r.eps_clip_high, 0, 10);
  y.CheckRange("preclip_min", r.preclip_min, 0, 1, true, true);
  y.CheckRange("preclip_max", r.preclip_max, 1, 1e30, true);
  y.CheckOneOf("adv_filter", r.adv_filter, {"sigma3", "code_mean3", "none"});
  y.CheckOneOf("loss_aggregation", r.loss_aggregation, {"sequence_mean", "token_mean"});
  y.CheckRange("kl_coef", r.kl_coef, 0, 100);
  y.CheckOneOf("kl_estimator", r.kl_estimator, {"k1", "k2", "k3"});
  y.CheckRange("gamma", r.gamma, 0, 1);
  y.CheckRange("temperature", r.temperature, 0, 10);
  y.CheckRange("top_p", r.top_p, 0, 1, true);
  y.CheckRange("top_k", static_cast<double>(r.top_k), -1, 1 << 20);  // -1 and 0: no top-k
  y.CheckRange("max_new_tokens", static_cast<double>(r.max_new_tokens), 1, 32768);
  y.CheckRange("format_weight", r.format_weight, 0, 100);
  y.CheckRange("consistency_weight", r.consistency_weight, 0, 100);
  y.CheckRange("num_actors", static_cast<double>(r.num_actors), 1, 1024);
  y.CheckRange("checkpoint_every", static_cast<double>(r.checkpoint_every), 1, 1e9);
  y.CheckRange("keep_checkpoints", static_cast<double>(r.keep_checkpoints), 0, 1e6);
}

void ReadLearner(YamlReader& y, LearnerSpec& l) {
  y.Read("precision", &l.precision);
  y.Read("zero_stage", &l.zero_stage);
  l.world_size_given = y.Has("world_size");
  y.Read("world_size", &l.world_size);
  y.Read("micro_batch", &l.micro_batch);
  y.Read("micro_batch_tokens", &l.micro_batch_tokens);
  y.Read("prompt_text_tokens", &l.prompt_text_tokens);
  y.Read("pack_sequences", &l.pack_sequences);
  y.Read("overlap_grad_reduce", &l.overlap_grad_reduce);
  if (!l.precision.empty()) y.CheckOneOf("precision", l.precision, {"fp32", "bf16_mixed"});
  y.CheckRange("zero_stage", static_cast<double>(l.zero_stage), 0, 2);
  y.CheckRange("world_size", static_cast<double>(l.world_size), 1, 4096);
  y.CheckRange("micro_batch", static_cast<double>(l.micro_batch), 0, 65536);
  y.CheckRange("micro_batch_tokens", static_cast<double>(l.micro_batch_tokens), 0, 1 << 24);
  y.CheckRange("prompt_text_tokens", static_cast<double>(l.prompt_text_tokens), 0, 1 << 20);
}

void ReadJudge(YamlReader& y, JudgeSpec& j) {
  y.Read("backend", &j.backend);
  y.Read("endpoint", &j.endpoint);
  y.Read("model_name", &j.model_name);
  y.Read("temperature", &j.temperature);
  y.Read("max_tokens", &j.max_tokens);
  y.Read("timeout_seconds", &j.timeout_seconds);
  y.Read("retries", &j.retries);
  y.Read("rate_limit_qps", &j.rate_limit_qps);
  y.CheckOneOf("backend", j.backend, {"rule", "model", "openai"});
  if (j.backend != "rule" && j.endpoint.empty()) {
    y.Error("endpoint", "is required for the 'model' (a model directory) and 'openai' (a URL) backends");
  }
  y.CheckRange("temperature", j.temperature, 0, 10);
  y.CheckRange("max_tokens", static_cast<double>(j.max_tokens), 1, 65536);
  y.CheckRange("timeout_seconds", j.timeout_seconds, 0, 3600, true);
  y.CheckRange("retries", static_cast<double>(j.retries), 0, 100);
  y.CheckRange("rate_limit_qps", j.rate_limit_qps, 0, 1e6);
}

void ReadEval(YamlReader& y, EvalSpec& e) {
  y.Read("votes", &e.votes);
  y.Read("vote_temperature", &e.vote_temperature);
  y.Read("benchmarks", &e.benchmarks);
  y.Read("benchmark_data", &e.benchmark_data);
  y.Read("benchmark_images", &e.benchmark_images);
  y.CheckRange("votes", static_cast<double>(e.votes), 1, 64);
  y.CheckRange("vote_temperature", e.vote_temperature, 0, 10);
  for (const auto& b : e.benchmarks) {
    y.CheckOneOf("benchmarks", b, {"vl-rewardbench", "multimodal-rewardbench", "mm-rlhf-rewardbench"});
  }
  if (!e.benchmarks.empty() && e.benchmark_data.empty()) {
    y.Error("benchmark_data", "is required when eval.benchmarks is set");
  }
}

}  // namespace

absl::StatusOr<JobSpec> ParseJobSpec(const std::string& yaml_text) {
  JobSpec spec;
  YamlReader y = YamlReader::Parse(yaml_text);
  y.Read("name", &spec.name);
  y.Read("work_dir", &spec.work_dir);
  y.Section("model", [&](YamlReader& s) { ReadModel(s, spec.model); });
  y.Section("tokenizer", [&](YamlReader& s) {
    s.Read("path", &spec.tokenizer.path);
    s.Read("train_vocab_size", &spec.tokenizer.train_vocab_size);
    s.CheckRange("train_vocab_size", static_cast<double>(spec.tokenizer.train_vocab_size), 0, 1 << 20);
  });
  y.Section("data", [&](YamlReader& s) { ReadData(s, spec.data); });
  y.Section("sft", [&](YamlReader& s) { ReadSft(s, spec.sft); });
  y.Section("rl", [&](YamlReader& s) { ReadRl(s, spec.rl); });
  y.Section("learner", [&](YamlReader& s) { ReadLearner(s, spec.learner); });
  y.Section("resources", [&](YamlReader& s) {
    s.Read("gpu_memory_gib", &spec.resources.gpu_memory_gib);
    s.CheckRange("gpu_memory_gib", spec.resources.gpu_memory_gib, 0, 1e6, /*lo_open=*/true);
  });
  y.Section("judge", [&](YamlReader& s) { ReadJudge(s, spec.judge); });
  y.Section("eval", [&](YamlReader& s) { ReadEval(s, spec.eval); });
  if (spec.name.empty()) {
    y.Error("name", "is required");
  } else if (spec.name.size() > 128) {
    y.Error("name", "must be at most 128 characters");
  }
  if (!y.Has("model")) y.Error("model", "is required");
  if (!y.Has("data")) y.Error("data", "is required");
  if (absl::Status s = y.Finish(); !s.ok()) return s;
  if (spec.learner.precision.empty()) spec.learner.precision = spec.model.dtype == "bfloat16" ? "bf16_mixed" : "fp32";
  return spec;
}

}  // namespace r1r::config
