#include "tests/unit/train/tiny_world.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "common/files/remove_tree.h"
#include "common/reward/prompt_template.h"
#include "common/tokenizer/bpe_trainer.h"

namespace r1r::train::testing {
namespace fs = std::filesystem;
namespace {

void Die(const absl::Status& s, const char* what) {
  if (s.ok()) return;
  std::cerr << "tiny world: " << what << ": " << s << "\n";
  std::abort();
}

TinyWorld Build() {
  TinyWorld w;
  w.root = (fs::temp_directory_path() / ("r1r_train_test_" + std::to_string(::getpid()))).string();
  Die(files::RemoveTree(w.root), "clearing its folder");
  w.model_dir = w.root + "/model";
  w.data_dir = w.root + "/data";
  fs::create_directories(w.model_dir);
  data::SynthOptions o;
  o.n = 16;
  o.image_size = 56;
  Die(data::WriteSyntheticDataset(o, w.data_dir), "dataset");
  std::vector<std::string> corpus;
  for (int64_t i = 0; i < o.n; ++i) {
    w.items.push_back(data::GenerateSyntheticItem(o, i));
    const auto& s = w.items.back().sample;
    corpus.push_back(reward::RenderComparisonPrompt(s.question, s.response1, s.response2));
    corpus.push_back(s.reasoning.value_or(""));
  }
  tokenizer::BpeTrainerOptions bpe;
  bpe.vocab_size = 400;
  Die(tokenizer::TrainBpeTokenizerFile(corpus, bpe, w.model_dir + "/tokenizer.json"), "tokenizer");
  model::TinyConfigOptions tiny;
  tiny.hidden_size = 32;
  tiny.intermediate_size = 64;
  tiny.num_layers = 2;
  tiny.num_heads = 4;
  tiny.num_kv_heads = 2;
  tiny.vision_depth = 2;
  tiny.vision_hidden_size = 32;
  tiny.vision_heads = 2;
  tiny.vision_intermediate_size = 64;
  tiny.tie_word_embeddings = true;
  vision::ImageProcessorOptions image;
  image.min_pixels = 56 * 56;
  image.max_pixels = 64 * 64;
  auto policy = Policy::CreateTiny(w.model_dir, tiny, image, model::ModelOptions{}, /*seed=*/7);
  Die(policy.status(), "CreateTiny");
  return w;
}

}  // namespace

const TinyWorld& World() {
  static const TinyWorld* world = new TinyWorld(Build());
  return *world;
}

std::unique_ptr<Policy> LoadPolicy() {
  auto p = Policy::Load(World().model_dir, model::ModelOptions{});
  Die(p.status(), "Policy::Load");
  return std::move(*p);
}

std::vector<SftItem> MakeSftItems(Policy& policy, int first, int n) {
  std::vector<SftItem> out;
  for (int i = first; i < first + n; ++i) {
    const auto& s = World().items.at(static_cast<size_t>(i)).sample;
    PromptInput in{s.question, s.response1, s.response2, World().data_dir + "/" + s.image_path};
    auto prompt = policy.encoder().Encode(in);
    Die(prompt.status(), "Encode");
    auto target = policy.encoder().EncodeText(s.reasoning.value_or("<answer>1</answer>"));
    Die(target.status(), "EncodeText");
    SftItem item;
    item.prompt = std::move(*prompt);
    item.target_ids = std::move(*target);
    item.target_ids.push_back(policy.end_of_turn_id());
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace r1r::train::testing
