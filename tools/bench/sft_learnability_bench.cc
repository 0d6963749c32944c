// sft_learnability_bench: how well a tiny Qwen2.5-VL learns the synthetic counting task by SFT alone, in
// process (no services), for sizing configs/demo.yaml. Generates the dataset, trains the BPE, creates the
// tiny model, runs SFT epochs and after each prints held-out greedy accuracy, format rate, how often the
// stated count is the true one, and the wall seconds. Flags are --key=value (see kFlags below); --show=N
// prints the first N held-out generations, --grad_probe=1 only prints where one batch's gradient goes,
// --eval_every=K also evaluates every K steps inside an epoch (rows "@K"), --probe=1 prints after each
// epoch whether the image changes the trace's log-prob (PrintImageProbe), --feature_probe=1 only prints
// whether the count is linearly readable from the untrained image features (PrintFeatureProbe).
// Run two at once with OPENBLAS_NUM_THREADS=1 --threads=1; alone, --threads=1 and OpenBLAS's default.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/str_split.h"
#include "common/data/synthetic.h"
#include "common/eval/judgement.h"
#include "common/files/remove_tree.h"
#include "common/reward/prompt_layout.h"
#include "common/reward/prompt_template.h"
#include "common/tokenizer/bpe_trainer.h"
#include "common/train/policy.h"
#include "common/train/sequence_batch.h"
#include "common/train/trainer.h"
#include "tools/bench/bench_flags.h"

namespace fs = std::filesystem;
using namespace r1r;

namespace {

std::map<std::string, std::string> kFlags = {
    // data
    {"n", "2400"}, {"heldout", "120"}, {"image_size", "64"}, {"min_pixels", "3136"}, {"max_pixels", "6272"},
    {"max_count", "4"}, {"distractors", "1"}, {"mistakes", "0.1"}, {"questions", "colour_shape"}, {"grid", "4"},
    {"trace", "count"}, {"prompt_style", "r1reward"}, {"placement", "after_text"}, {"vocab", "640"},
    // model
    {"hidden", "128"}, {"layers", "3"}, {"heads", "4"}, {"kv_heads", "2"}, {"inter", "384"}, {"vhidden", "64"},
    {"vdepth", "2"}, {"vheads", "2"}, {"rope_theta", "1000000"},
    // training and running
    {"epochs", "1"}, {"batch", "8"}, {"lr", "0.0015"}, {"warmup", "0.03"}, {"min_lr", "0.1"}, {"seed", "7"},
    {"threads", "2"}, {"device", "cpu"}, {"show", "0"}, {"grad_probe", "0"}, {"probe", "0"}, {"freeze_vision", "0"},
    {"eval_every", "0"}, {"feature_probe", "0"}};

double F(const char* k) { return std::stod(kFlags.at(k)); }
int64_t I(const char* k) { return std::stoll(kFlags.at(k)); }

using bench::Must;

struct EvalResult {
  double accuracy = 0, format = 0, count_right = 0;
};

EvalResult Evaluate(train::Policy& policy, const std::vector<data::SyntheticItem>& items,
                    const std::vector<train::EncodedPrompt>& prompts) {
  torch::NoGradGuard no_grad;
  policy.model().eval();
  EvalResult r;
  const std::regex count_re("I find (\\d+)");
  for (size_t first = 0; first < items.size(); first += 16) {
    std::vector<const train::EncodedPrompt*> batch;
    std::vector<model::SamplingParams> sampling;
    for (size_t i = first; i < std::min(items.size(), first + 16); ++i) {
      batch.push_back(&prompts[i]);
      model::SamplingParams p;
      p.temperature = 0;
      p.max_new_tokens = 96;
      p.stop_token_ids = {policy.end_of_turn_id()};
      sampling.push_back(p);
    }
    auto out = Must(policy.Generate(batch, sampling), "Generate");
    for (size_t k = 0; k < out.size(); ++k) {
      const auto& item = items[first + k];
      const std::string text = policy.Decode(out[k].token_ids);
      const auto choice = eval::ParseChoice(text, /*fallback_last_digit=*/false);
      if (static_cast<int64_t>(first + k) < I("show")) {
        std::printf("--- true %d, label %d, %s | %s\n%s\n", item.true_count, item.sample.label,
                    item.sample.response1.c_str(), item.sample.response2.c_str(), text.c_str());
      }
      r.format += choice.has_value() ? 1 : 0;
      r.accuracy += choice == item.sample.label ? 1 : 0;
      std::smatch m;
      if (std::regex_search(text, m, count_re) && std::stoi(m[1]) == item.true_count) r.count_right += 1;
    }
  }
  const double n = static_cast<double>(items.size());
  r.accuracy /= n;
  r.format /= n;
  r.count_right /= n;
  return r;
}

// Gradient norms of one SFT batch for the vision tower, the embeddings and the first attention
// projection: shows whether the image path gets any training signal at all.
void PrintGradientNorms(train::Policy& policy, const std::vector<train::SftItem>& items) {
  std::vector<const train::EncodedPrompt*> prompts;
  std::vector<std::vector<int64_t>> targets;
  for (const auto& it : items) {
    prompts.push_back(&it.prompt);
    targets.push_back(it.target_ids);
  }
  auto batch = Must(train::BuildSequenceBatch(prompts, targets, policy.pad_id()), "BuildSequenceBatch");
  auto logp = Must(policy.ResponseLogProbs(batch), "ResponseLogProbs");
  (-(logp * batch.response_mask).sum()).backward();
  for (const auto& p : policy.model().named_parameters()) {
    const std::string& name = p.key();
    if (!p.value().grad().defined()) {
      std::printf("no gradient: %s\n", name.c_str());
    } else if (name.find("visual") != std::string::npos || name.find("embed") != std::string::npos ||
               name.find("layers.0.self_attn.q") != std::string::npos) {
      std::printf("%-60s |w| %.4f |g| %.3e\n", name.c_str(), p.value().norm().item<double>(),
                  p.value().grad().norm().item<double>());
    }
  }
}

// Does the image reach the answer? The teacher trace's log-prob with its own image against the same
// text with another item's image (swapped pixel values), and how far apart the images' features are.
void PrintImageProbe(train::Policy& policy, const std::vector<train::SftItem>& items) {
  torch::NoGradGuard no_grad;
  policy.model().eval();
  double own = 0, swapped = 0, feature_gap = 0, feature_norm = 0;
  const size_t n = std::min<size_t>(items.size(), 16);
  for (size_t i = 0; i < n; ++i) {
    const train::SftItem& a = items[i];
    const train::SftItem& b = items[(i + 1) % n];
    train::EncodedPrompt with_other = a.prompt;
    with_other.pixel_values = b.prompt.pixel_values;
    with_other.image_grid_thw = b.prompt.image_grid_thw;
    for (const train::EncodedPrompt* prompt : {&a.prompt, static_cast<const train::EncodedPrompt*>(&with_other)}) {
      auto batch = Must(train::BuildSequenceBatch({prompt}, {a.target_ids}, policy.pad_id()), "batch");
      const double lp = Must(policy.ResponseLogProbs(batch), "logprobs").sum().item<double>();
      (prompt == &a.prompt ? own : swapped) += lp;
    }
    auto fa = Must(policy.model().EncodeImages(a.prompt.pixel_values, a.prompt.image_grid_thw), "EncodeImages");
    auto fb = Must(policy.model().EncodeImages(b.prompt.pixel_values, b.prompt.image_grid_thw), "EncodeImages");
    feature_gap += (fa - fb).norm().item<double>();
    feature_norm += fa.norm().item<double>();
  }
  std::printf("image probe: trace log-prob own image %.3f, another image %.3f (per item); image features |a-b|/|a| %.3f\n",
              own / static_cast<double>(n), swapped / static_cast<double>(n), feature_gap / feature_norm);
}

// Whether the count is linearly readable from the image features the LLM receives: a logistic
// regression (one shape against more) on the per-image mean and max of the image tokens, trained on
// the SFT items, scored on the held-out ones. Near 1.0 means the features carry the count and the
// language model has to learn to look at them.
void PrintFeatureProbe(train::Policy& policy, const std::vector<data::SyntheticItem>& items,
                       const std::vector<train::EncodedPrompt>& prompts, size_t heldout) {
  std::vector<torch::Tensor> rows;
  std::vector<float> labels;
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < items.size(); ++i) {
      auto f = Must(policy.model().EncodeImages(prompts[i].pixel_values, prompts[i].image_grid_thw), "EncodeImages");
      f = f.to(torch::kFloat).reshape({-1, f.size(-1)});
      rows.push_back(torch::cat({f.mean(0), std::get<0>(f.max(0)), f.norm(2, 1).mean().reshape({1})}));
      labels.push_back(items[i].true_count == 1 ? 0.f : 1.f);
    }
  }
  auto x = torch::stack(rows);
  x = (x - x.mean(0)) / (x.std(0) + 1e-6);
  auto y = torch::tensor(labels);
  const int64_t n_train = x.size(0) - static_cast<int64_t>(heldout);
  auto w = torch::zeros({x.size(1)}, torch::requires_grad());
  auto b = torch::zeros({1}, torch::requires_grad());
  torch::optim::Adam adam({w, b}, torch::optim::AdamOptions(0.01));
  for (int step = 0; step < 500; ++step) {
    adam.zero_grad();
    auto logits = x.narrow(0, 0, n_train).matmul(w) + b;
    auto loss = torch::binary_cross_entropy_with_logits(logits, y.narrow(0, 0, n_train)) + 1e-3 * w.pow(2).sum();
    loss.backward();
    adam.step();
  }
  torch::NoGradGuard no_grad;
  auto acc = [&](int64_t from, int64_t len) {
    auto pred = (x.narrow(0, from, len).matmul(w) + b).gt(0).to(torch::kFloat);
    return pred.eq(y.narrow(0, from, len)).to(torch::kFloat).mean().item<double>();
  };
  std::printf("feature probe (one shape or more, from mean/max image features): train %.3f, held-out %.3f\n",
              acc(0, n_train), acc(n_train, static_cast<int64_t>(heldout)));
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const size_t eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos || !kFlags.count(a.substr(2, eq - 2))) {
      std::cerr << "unknown flag " << a << "\n";
      return 2;
    }
    kFlags[a.substr(2, eq - 2)] = a.substr(eq + 1);
  }
  if (I("heldout") < 1 || I("n") - I("heldout") < I("batch") || I("batch") < 1) {
    std::cerr << "need 1 <= heldout and 1 <= batch <= n - heldout\n";
    return 2;
  }
  torch::set_num_threads(static_cast<int>(I("threads")));
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };

  const fs::path root = fs::temp_directory_path() / ("r1r_learnability_" + std::to_string(::getpid()));
  fs::create_directories(root / "model");
  data::SynthOptions o;
  o.n = I("n");
  o.seed = static_cast<uint64_t>(I("seed"));
  o.image_size = static_cast<int>(I("image_size"));
  o.max_count = static_cast<int>(I("max_count"));
  o.max_distractors = static_cast<int>(I("distractors"));
  o.teacher_mistake_rate = F("mistakes");
  o.grid = static_cast<int>(I("grid"));
  o.trace = Must(data::ParseSynthTrace(kFlags["trace"]), "--trace");
  o.questions.clear();
  for (absl::string_view name : absl::StrSplit(kFlags["questions"], ',')) {
    o.questions.push_back(Must(data::ParseSynthQuestion(std::string(name)), "--questions"));
  }
  Must(data::WriteSyntheticDataset(o, (root / "data").string()), "dataset");
  const reward::PromptStyle prompt_style = Must(reward::ParsePromptStyle(kFlags["prompt_style"]), "--prompt_style");
  std::vector<data::SyntheticItem> items;
  std::vector<std::string> corpus;
  for (int64_t i = 0; i < o.n; ++i) {
    items.push_back(data::GenerateSyntheticItem(o, i));
    const auto& s = items.back().sample;
    corpus.push_back(reward::RenderComparisonPrompt(s.question, s.response1, s.response2, prompt_style));
    corpus.push_back(s.reasoning.value_or(""));
  }
  tokenizer::BpeTrainerOptions bpe;
  bpe.vocab_size = static_cast<int32_t>(I("vocab"));
  Must(tokenizer::TrainBpeTokenizerFile(corpus, bpe, (root / "model/tokenizer.json").string()), "tokenizer");
  reward::PromptLayout layout;
  layout.style = prompt_style;
  layout.placement = Must(reward::ParseImagePlacement(kFlags["placement"]), "--placement");
  Must(reward::WritePromptLayout(layout, (root / "model").string()), "prompt layout");
  model::TinyConfigOptions tiny;
  tiny.hidden_size = I("hidden");
  tiny.num_layers = I("layers");
  tiny.num_heads = I("heads");
  tiny.num_kv_heads = I("kv_heads");
  tiny.intermediate_size = I("inter");
  tiny.vision_hidden_size = I("vhidden");
  tiny.vision_depth = I("vdepth");
  tiny.vision_heads = I("vheads");
  tiny.vision_intermediate_size = 2 * tiny.vision_hidden_size;
  tiny.tie_word_embeddings = true;
  tiny.rope_theta = F("rope_theta");
  vision::ImageProcessorOptions image;
  image.min_pixels = I("min_pixels");
  image.max_pixels = I("max_pixels");
  const model::ModelOptions model_options = Must(train::ParseModelOptions("float32", kFlags["device"]), "--device");
  auto policy =
      Must(train::Policy::CreateTiny((root / "model").string(), tiny, image, model_options, 7), "CreateTiny");

  policy->SetVisionTrainable(I("freeze_vision") == 0);
  // Encode everything once; the last `heldout` items are held out.
  const size_t heldout = static_cast<size_t>(I("heldout"));
  std::vector<train::EncodedPrompt> prompts;
  std::vector<train::SftItem> sft;
  for (const auto& item : items) {
    const auto& s = item.sample;
    train::PromptInput in{s.question, s.response1, s.response2, (root / "data" / s.image_path).string()};
    prompts.push_back(Must(policy->encoder().Encode(in), "Encode"));
    train::SftItem si;
    si.prompt = prompts.back();
    si.target_ids = Must(policy->encoder().EncodeText(s.reasoning.value_or("")), "EncodeText");
    si.target_ids.push_back(policy->end_of_turn_id());
    sft.push_back(std::move(si));
  }
  const std::vector<data::SyntheticItem> eval_items(items.end() - static_cast<int64_t>(heldout), items.end());
  const std::vector<train::EncodedPrompt> eval_prompts(prompts.end() - static_cast<int64_t>(heldout), prompts.end());
  sft.resize(sft.size() - heldout);

  const int64_t batch = I("batch"), epochs = I("epochs");
  const int64_t steps_per_epoch = static_cast<int64_t>(sft.size()) / batch;
  train::OptimizerOptions opt;
  opt.lr = F("lr");
  opt.warmup_ratio = F("warmup");
  opt.min_lr_ratio = F("min_lr");
  opt.weight_decay = 0;
  opt.total_steps = steps_per_epoch * epochs;
  opt.micro_batch = batch;
  train::Trainer trainer(policy.get(), nullptr, opt);
  std::printf("params %lld, image tokens %lld, prompt tokens %zu, setup %.1f s\n",
              static_cast<long long>(policy->parameter_count()),
              static_cast<long long>(prompts[0].pixel_values.size(0) / 4),  // 2x2 patches merge into one token
              prompts[0].ids.size(), elapsed());
  if (I("probe") > 0) PrintImageProbe(*policy, std::vector<train::SftItem>(sft.end() - 16, sft.end()));
  if (I("feature_probe") > 0) {
    PrintFeatureProbe(*policy, items, prompts, heldout);
    return 0;
  }
  if (I("grad_probe") > 0) {
    PrintGradientNorms(*policy, std::vector<train::SftItem>(sft.begin(), sft.begin() + batch));
    return 0;
  }
  std::printf("%6s %8s %9s %7s %8s %9s\n", "epoch", "loss", "accuracy", "format", "count_ok", "seconds");
  const EvalResult before = Evaluate(*policy, eval_items, eval_prompts);
  std::printf("%6d %8s %9.3f %7.3f %8.3f %9.1f\n", 0, "-", before.accuracy, before.format, before.count_right,
              elapsed());
  std::mt19937_64 rng(static_cast<uint64_t>(I("seed")));
  std::vector<size_t> order(sft.size());
  std::iota(order.begin(), order.end(), 0);
  for (int64_t e = 1; e <= epochs; ++e) {
    std::shuffle(order.begin(), order.end(), rng);
    double loss = 0;
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      std::vector<train::SftItem> step;
      for (int64_t k = 0; k < batch; ++k) step.push_back(sft[order[static_cast<size_t>(s * batch + k)]]);
      loss += Must(trainer.SftStep(step), "SftStep").loss;
      if (I("eval_every") > 0 && (s + 1) % I("eval_every") == 0 && s + 1 < steps_per_epoch) {
        const EvalResult r = Evaluate(*policy, eval_items, eval_prompts);
        std::printf("%6s %8.4f %9.3f %7.3f %8.3f %9.1f\n", ("@" + std::to_string(s + 1)).c_str(),
                    loss / static_cast<double>(s + 1), r.accuracy, r.format, r.count_right, elapsed());
        std::fflush(stdout);
      }
    }
    const EvalResult r = Evaluate(*policy, eval_items, eval_prompts);
    std::printf("%6lld %8.4f %9.3f %7.3f %8.3f %9.1f\n", static_cast<long long>(e),
                loss / static_cast<double>(steps_per_epoch), r.accuracy, r.format, r.count_right, elapsed());
    if (I("probe") > 0) PrintImageProbe(*policy, std::vector<train::SftItem>(sft.end() - 16, sft.end()));
    std::fflush(stdout);
  }
  r1r::files::RemoveTree(root).IgnoreError();
  return 0;
}
