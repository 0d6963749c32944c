#include "tests/unit/train/tiny_world.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "common/files/remove_tree.h"
#include "tests/support/tiny_model_dir.h"

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
  test_support::TinyModelDirOptions o;
  o.synthetic_items = 16;
  o.seed = 1;  // the data (hence the tokenizer) these tests were written against
  o.weights_seed = 7;
  o.tiny.hidden_size = 32;
  o.tiny.intermediate_size = 64;
  o.tiny.num_layers = 2;
  o.tiny.num_heads = 4;
  o.tiny.num_kv_heads = 2;
  o.tiny.vision_depth = 2;
  o.tiny.vision_hidden_size = 32;
  o.tiny.vision_heads = 2;
  o.tiny.vision_intermediate_size = 64;
  o.tiny.tie_word_embeddings = true;
  o.min_pixels = 56 * 56;
  o.max_pixels = 64 * 64;
  auto made = test_support::MakeTinyModelDir(w.root, o);
  Die(made.status(), "tiny model directory");
  w.model_dir = made->model_dir;
  w.data_dir = made->data_dir;
  w.items = std::move(made->items);
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
