// A job's YAML spec as typed structs. Defaults are the R1-Reward paper's settings (written out in
// configs/paper_7b.yaml) unless a field says otherwise; the CPU demo (configs/demo.yaml) overrides sizes.
#pragma once

#include <string>
#include <vector>

#include <absl/status/statusor.h>

namespace r1r::config {

struct TinyModelSpec {
  int64_t hidden_size = 64;
  int64_t num_layers = 2;
  int64_t num_heads = 4;
  int64_t num_kv_heads = 2;
  int64_t intermediate_size = 128;
  int64_t vision_hidden_size = 32;
  int64_t vision_depth = 2;
  int64_t vision_heads = 2;
  double rope_theta = 1000000.0;
};

struct ModelSpec {
  std::string init = "path";          // "path": a Hugging Face directory; "tiny": random weights
  std::string path;                   // model directory (config.json, safetensors, tokenizer.json)
  TinyModelSpec tiny;
  std::string dtype = "bfloat16";     // float32 | bfloat16
  std::string device = "cuda";        // cpu | cuda
  // Train the language model and keep the vision tower (and merger) as loaded. Common practice when
  // fine-tuning a VLM, and what a model trained from scratch needs: its tower otherwise collapses to
  // one output for every image before the language model has learned to read it (docs/experiments.md, "How the demo got there").
  bool freeze_vision = false;
  // Activation checkpointing of the decoder layers and vision blocks in the learner's training
  // forwards (SFT and the RL log-prob pass with grad): keeps layer inputs only, recomputes in backward.
  bool gradient_checkpointing = false;
};

struct TokenizerSpec {
  std::string path;                   // tokenizer.json; empty = <model.path>/tokenizer.json
  int64_t train_vocab_size = 0;       // > 0: train a byte-level BPE of this size on the data
};

struct DataSpec {
  std::string source = "r1reward_jsonl";  // r1reward_jsonl | pairs_jsonl | mmrlhf_pairs | synthetic
  std::string path;                       // file (jsonl) or directory; not used for synthetic
  std::string image_root;                 // relative image paths resolve against this
  int64_t synthetic_n = 0;
  int64_t seed = 1;
  double teacher_mistake_rate = 0.1;      // synthetic: share of wrong teacher traces
  int64_t synthetic_image_size = 64;      // synthetic: square image side in pixels
  int64_t synthetic_max_count = 4;        // synthetic: the asked-for shape appears 1..max_count times
  int64_t synthetic_max_distractors = 4;  // synthetic: other shapes per image, 0..max
  int64_t synthetic_grid = 4;             // synthetic: shapes sit in distinct cells of a grid x grid layout
  std::string synthetic_trace = "count";  // synthetic: the teacher's counting trace, count | tally | list
  // synthetic: what questions count, each item drawing one: colour_shape | colour | all
  std::vector<std::string> synthetic_questions = {"colour_shape"};
  double heldout_fraction = 0.1;
  bool balance_labels = true;
  // Where the image goes in the user turn. R1-Reward trains with [text, image] (its README's data
  // example) and evaluates with [image, text]; a model is served the way it was trained.
  std::string image_placement = "after_text";  // after_text | before_text
  std::string prompt_style = "r1reward";       // r1reward (the paper's Table 1) | compact (small models)
  std::string sft_split = "rest";         // rest | all
  std::string rl_split = "hard";          // hard (the paper's) | all
  int64_t min_pixels = 4 * 28 * 28;
  int64_t max_pixels = 640 * 28 * 28;
  int64_t max_prompt_tokens = 20480;
};

struct OptimSpec {
  double lr = 1e-6;
  double warmup_ratio = 0.03;
  double min_lr_ratio = 0.1;
  double weight_decay = 0.0;
  std::vector<double> adam_betas = {0.9, 0.95};
  double grad_clip = 1.0;
};

struct SftSpec {
  bool enabled = true;
  int64_t epochs = 1;
  int64_t batch_size = 256;
  int64_t max_response_tokens = 1024;
  OptimSpec optim{.lr = 1e-5};
};

struct RlSpec {
  bool enabled = true;
  std::string algorithm = "stable_reinforce";  // stable_reinforce | reinforce_pp | no_preclip | no_filter | grpo | rloo
  int64_t steps = 0;                  // 0 = epochs over the RL set
  int64_t epochs = 5;                 // passes over the RL set (paper: 5)
  int64_t rollout_batch_size = 256;
  int64_t train_batch_size = 128;
  int64_t ppo_epochs = 1;             // minibatch epochs per rollout
  int64_t samples_per_prompt = 1;
  double eps_clip = 0.2;
  double eps_clip_high = 0.0;         // 0 = same as eps_clip
  double preclip_min = 1e-3;          // δmin
  double preclip_max = 1e3;           // δmax
  std::string adv_filter = "sigma3";  // sigma3 | code_mean3 | none
  // sequence_mean: token mean per sequence, then the mean over sequences (the paper, its released
  // code); token_mean: one mean over every token of the minibatch (OpenRLHF HEAD, Dr. GRPO).
  std::string loss_aggregation = "sequence_mean";
  double kl_coef = 0.0;               // β (paper 0; released script 1e-3)
  std::string kl_estimator = "k1";    // k1 | k2 | k3
  double gamma = 1.0;
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = -1;
  int64_t max_new_tokens = 1024;
  double format_weight = 0.5;
  double consistency_weight = 0.5;
  int64_t num_actors = 1;
  int64_t checkpoint_every = 25;
  int64_t keep_checkpoints = 0;       // > 0: keep only the newest K (never the one a resume needs)
  // 0: on-policy (generate, score, train, sync). 1: the actors generate step t+1 with the weights of
  // step t while the learner trains step t; the learner's ratio is then taken against the actors'
  // behaviour log-probs (importance correction for the one-step lag).
  int64_t off_policy_steps = 0;
  OptimSpec optim;
};

// How the learner trains: precision, optimizer sharding, micro-batches, ranks (memory knobs; the
// step does not depend on them beyond rounding).
struct LearnerSpec {
  // fp32: the learner holds float32 weights (the master) and fp32 AdamW state. bf16_mixed: bf16
  // weights for forward/backward, fp32 master weights, fp32 moments and fp32 gradient accumulation.
  // Empty in YAML: fp32 for a float32 model.dtype, bf16_mixed for bfloat16 (resolved by ParseJobSpec).
  std::string precision;
  int64_t zero_stage = 0;            // 0 | 1 (shard master + moments) | 2 (also gradients)
  int64_t world_size = 1;            // data-parallel learner ranks (--dist-world-size) the plan assumes
  bool world_size_given = false;     // the YAML names world_size: the learner then checks its --dist-world-size
  int64_t micro_batch = 0;           // sequences per forward/backward; 0 = the learner's --micro-batch
  int64_t micro_batch_tokens = 0;    // padded tokens per forward/backward; 0 = the learner's flag
  // SFT: pack several samples into one row up to micro_batch_tokens (block-diagonal attention, per-sample
  // positions; the loss is unchanged) instead of padding each to the widest. Default false.
  bool pack_sequences = false;
  // ZeRO-2 on several ranks: reduce each gradient bucket while the backward pass still runs (false:
  // after it). The same sums either way; on a GPU the reduction hides behind compute, on CPU cores
  // shared with the backward pass it does not (docs/experiments.md).
  bool overlap_grad_reduce = true;
  int64_t prompt_text_tokens = 1024; // plan: text tokens of a prompt besides its image tokens
};

struct ResourcesSpec {
  double gpu_memory_gib = 80;        // device memory per GPU the plan checks against
};

struct JudgeSpec {
  std::string backend = "openai";     // rule | model | openai
  std::string endpoint;               // openai: base URL; model: model directory
  std::string model_name;             // openai: model id; empty = first listed
  double temperature = 0.1;
  int64_t max_tokens = 4096;
  double timeout_seconds = 60;
  int64_t retries = 3;
  double rate_limit_qps = 0;          // 0 = unlimited
};

struct EvalSpec {
  int64_t votes = 5;                  // voting@K on the held-out set
  double vote_temperature = 1.0;
  std::vector<std::string> benchmarks;  // vl-rewardbench | multimodal-rewardbench | mm-rlhf-rewardbench
  std::string benchmark_data;
  std::string benchmark_images;
};

struct JobSpec {
  std::string name;
  std::string work_dir;               // empty = <orchestrator state dir>/jobs/<id>
  ModelSpec model;
  TokenizerSpec tokenizer;
  DataSpec data;
  SftSpec sft;
  RlSpec rl;
  LearnerSpec learner;
  ResourcesSpec resources;
  JudgeSpec judge;
  EvalSpec eval;
};

// Parses and validates; errors name every bad field ("rl.eps_clip: must be in (0, 1), got 1.5").
absl::StatusOr<JobSpec> ParseJobSpec(const std::string& yaml_text);

}  // namespace r1r::config
