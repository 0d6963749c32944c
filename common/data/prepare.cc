#include "common/data/prepare.h"

#include <filesystem>

#include <absl/strings/str_cat.h>

#include "common/jsonl/read_report.h"
#include "common/data/readers.h"
#include "common/data/synthetic.h"
#include "common/data/transforms.h"
#include "common/files/paths.h"
#include "common/reward/prompt_layout.h"
#include "common/reward/prompt_template.h"
#include "common/tokenizer/bpe_trainer.h"

namespace r1r::data {
namespace fs = std::filesystem;

namespace {

absl::StatusOr<std::vector<PreferenceSample>> ReadSamples(const config::JobSpec& spec, const std::string& dataset_dir,
                                                         jsonl::ReadReport& report) {
  const config::DataSpec& d = spec.data;
  if (d.source == "synthetic") return ReadPlainPairsJsonl(dataset_dir + "/pairs.jsonl", report);
  // A FIFO or device as data.path would block the job runner's only thread.
  if (absl::Status s = files::CheckRegularFile(d.path, kMaxDatasetFileBytes); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("data.path: ", s.message()));
  }
  if (d.source == "pairs_jsonl") return ReadPlainPairsJsonl(d.path, report);
  if (d.source == "mmrlhf_pairs") return ReadMmRlhfPairsJsonl(d.path, report);
  return ReadR1RewardJsonl(d.path, report);
}

}  // namespace

absl::StatusOr<PreparedData> PrepareData(const config::JobSpec& spec, const std::string& work_dir) {
  PreparedData out;
  const config::DataSpec& d = spec.data;
  if (d.source == "synthetic") {
    out.dataset_dir = fs::absolute(fs::path(work_dir) / "data").string();
    if (!fs::exists(fs::path(out.dataset_dir) / "pairs.jsonl")) {
      SynthOptions o;
      o.n = d.synthetic_n;
      o.seed = static_cast<uint64_t>(d.seed);
      o.teacher_mistake_rate = d.teacher_mistake_rate;
      o.image_size = static_cast<int>(d.synthetic_image_size);
      o.max_count = static_cast<int>(d.synthetic_max_count);
      o.max_distractors = static_cast<int>(d.synthetic_max_distractors);
      o.grid = static_cast<int>(d.synthetic_grid);
      auto trace = ParseSynthTrace(d.synthetic_trace);
      if (!trace.ok()) return trace.status();
      o.trace = *trace;
      o.questions.clear();
      for (const std::string& name : d.synthetic_questions) {
        auto kind = ParseSynthQuestion(name);
        if (!kind.ok()) return kind.status();
        o.questions.push_back(*kind);
      }
      if (absl::Status s = WriteSyntheticDataset(o, out.dataset_dir); !s.ok()) return s;
    }
  } else {
    out.dataset_dir = fs::absolute(fs::path(d.path).parent_path()).string();
  }
  jsonl::ReadReport report;
  auto samples = ReadSamples(spec, out.dataset_dir, report);
  if (!samples.ok()) return samples.status();
  out.bad_rows = report.bad_count;
  if (samples->empty()) return absl::FailedPreconditionError(absl::StrCat("no usable rows: ", report.Summary()));

  // Held-out first (before balancing and the difficulty split), by a seeded shuffle.
  const std::vector<size_t> order = ShuffledIndices(samples->size(), static_cast<uint64_t>(d.seed));
  const size_t heldout = static_cast<size_t>(d.heldout_fraction * static_cast<double>(samples->size()));
  std::vector<PreferenceSample> train;
  for (size_t k = 0; k < order.size(); ++k) {
    (k < heldout ? out.heldout : train).push_back((*samples)[order[k]]);
  }
  if (d.balance_labels) BalanceLabels(train, static_cast<uint64_t>(d.seed) + 1);
  DifficultySplit split =
      SplitByDifficulty(train, d.sft_split == "all" ? SftSelection::kAll : SftSelection::kRest,
                              d.rl_split == "all" ? RlSelection::kAll : RlSelection::kHard);
  out.sft = std::move(split.sft);
  out.rl = std::move(split.rl);
  out.report = absl::StrCat(samples->size(), " samples (", report.bad_count, " bad rows skipped): ", out.sft.size(),
                            " SFT, ", out.rl.size(), " RL, ", out.heldout.size(), " held-out");
  return out;
}

absl::Status PrepareTokenizer(const config::JobSpec& spec, const PreparedData& prepared, const std::string& model_dir) {
  const fs::path target = fs::path(model_dir) / "tokenizer.json";
  if (fs::exists(target)) return absl::OkStatus();
  std::error_code ec;
  fs::create_directories(model_dir, ec);
  if (spec.tokenizer.train_vocab_size > 0) {
    auto style = reward::ParsePromptStyle(spec.data.prompt_style);
    if (!style.ok()) return style.status();
    std::vector<std::string> corpus;
    for (const auto* set : {&prepared.sft, &prepared.rl, &prepared.heldout}) {
      for (const auto& s : *set) {
        corpus.push_back(reward::RenderComparisonPrompt(s.question, s.response1, s.response2, *style));
        if (s.reasoning) corpus.push_back(*s.reasoning);
      }
    }
    tokenizer::BpeTrainerOptions o;
    o.vocab_size = static_cast<int32_t>(spec.tokenizer.train_vocab_size);
    return tokenizer::TrainBpeTokenizerFile(corpus, o, target.string());
  }
  const std::string source = !spec.tokenizer.path.empty() ? spec.tokenizer.path : spec.model.path + "/tokenizer.json";
  if (absl::Status s = files::CheckRegularFile(source, kMaxTokenizerFileBytes); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("tokenizer: ", s.message()));
  }
  fs::copy_file(source, target, fs::copy_options::overwrite_existing, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat("cannot copy tokenizer from ", source, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status WritePromptLayout(const config::JobSpec& spec, const std::string& model_dir) {
  auto placement = reward::ParseImagePlacement(spec.data.image_placement);
  if (!placement.ok()) return absl::InvalidArgumentError(absl::StrCat("data.", placement.status().message()));
  auto style = reward::ParsePromptStyle(spec.data.prompt_style);
  if (!style.ok()) return absl::InvalidArgumentError(absl::StrCat("data.prompt_style: ", style.status().message()));
  return reward::WritePromptLayout({*placement, *style}, model_dir);
}

}  // namespace r1r::data
