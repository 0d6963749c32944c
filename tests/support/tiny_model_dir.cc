#include "tests/support/tiny_model_dir.h"

#include <filesystem>

#include <absl/strings/str_cat.h>

#include "common/model/model.h"
#include "common/reward/prompt_template.h"
#include "common/tokenizer/bpe_trainer.h"
#include "common/train/policy.h"

namespace r1r::test_support {

namespace fs = std::filesystem;

absl::StatusOr<TinyModelDir> MakeTinyDataAndTokenizer(const std::string& data_dir, const std::string& model_dir,
                                                      const TinyModelDirOptions& options) {
  TinyModelDir out;
  out.model_dir = model_dir;
  out.data_dir = data_dir;
  std::error_code ec;
  fs::create_directories(out.model_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", out.model_dir, ": ", ec.message()));

  data::SynthOptions synth;
  synth.n = options.synthetic_items;
  synth.seed = options.seed;
  synth.image_size = options.image_size;
  if (absl::Status s = data::WriteSyntheticDataset(synth, out.data_dir); !s.ok()) return s;

  std::vector<std::string> corpus;
  for (int64_t i = 0; i < synth.n; ++i) {
    out.items.push_back(data::GenerateSyntheticItem(synth, i));
    const data::PreferenceSample& s = out.items.back().sample;
    corpus.push_back(reward::RenderComparisonPrompt(s.question, s.response1, s.response2));
    if (s.reasoning) corpus.push_back(*s.reasoning);
    out.image_paths.push_back((fs::absolute(fs::path(out.data_dir) / s.image_path)).string());
  }
  tokenizer::BpeTrainerOptions bpe;
  bpe.vocab_size = options.vocab_size;
  if (absl::Status s = tokenizer::TrainBpeTokenizerFile(corpus, bpe, out.model_dir + "/tokenizer.json"); !s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<TinyModelDir> MakeTinyModelDir(const std::string& root, const TinyModelDirOptions& options) {
  auto out = MakeTinyDataAndTokenizer((fs::path(root) / "data").string(), (fs::path(root) / "model").string(),
                                      options);
  if (!out.ok()) return out.status();
  vision::ImageProcessorOptions image;
  image.min_pixels = options.min_pixels;
  image.max_pixels = options.max_pixels;
  auto policy = train::Policy::CreateTiny(out->model_dir, options.tiny, image, model::ModelOptions{},
                                          options.weights_seed != 0 ? options.weights_seed : options.seed);
  if (!policy.ok()) return policy.status();
  return out;
}

}  // namespace r1r::test_support
