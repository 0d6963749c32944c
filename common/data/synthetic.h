// The synthetic multimodal preference task (the CPU demo's data): small drawn scenes of coloured shapes,
// "How many <colour> <shape>s are in the image?", one response with the true count and one with a
// plausible wrong count, a teacher reasoning trace for SFT that says which response is better, teacher
// attempts tied to difficulty, and a controllable rate of wrong teacher traces (so SFT alone has a ceiling
// below 100% and RL has room). Seeded: item i depends only on (seed, i, options).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/data/png_io.h"
#include "common/data/sample.h"
#include "common/reward/chat.h"

namespace r1r::data {

// What a question counts: shapes of one colour and kind ("How many green triangles …"), shapes of one
// colour ("How many green shapes …"), or every shape ("How many shapes …"). The last needs no reading of
// the question, only of the image, and is the one a model trained from scratch learns first.
enum class SynthQuestion { kColourShape, kColour, kAll };
absl::StatusOr<SynthQuestion> ParseSynthQuestion(const std::string& name);  // colour_shape | colour | all

struct SynthOptions {
  int64_t n = 256;
  uint64_t seed = 1;
  int image_size = 64;      // square images, 56..112 pixels: a tiny VLM trains on them on 2 CPU cores
  int max_count = 4;        // the asked-for shape appears 1..max_count times
  int max_distractors = 4;  // other shapes, 0..max_distractors
  double teacher_mistake_rate = 0.1;  // fraction of SFT traces that reason to the wrong response
  int teacher_max_attempts = 3;
  reward::ImagePlacement placement = reward::ImagePlacement::kAfterText;
  std::vector<SynthQuestion> questions = {SynthQuestion::kColourShape};  // each item draws one kind
  int grid = 4;        // shapes sit in distinct cells of a grid x grid layout (2..4)
  bool tally = false;  // the trace counts one by one ("1, 2, 3") before it states the count
};

enum class ShapeKind { kCircle, kSquare, kTriangle };

struct DrawnShape {
  ShapeKind kind;
  int colour;  // index into the palette
  int cx, cy, radius;
};

struct SyntheticItem {
  PreferenceSample sample;  // image_path is "images/<id>.png", relative to the dataset folder
  std::vector<DrawnShape> shapes;
  RgbImage image;
  int true_count = 0;
  int wrong_count = 0;
  int difficulty = 0;  // 0 easy, 1 medium, 2 hard
  bool teacher_trace_correct = true;
};

absl::Status ValidateSynthOptions(const SynthOptions& options);

// Item `index` of the dataset (pure function of the options and the index).
SyntheticItem GenerateSyntheticItem(const SynthOptions& options, int64_t index);

// Writes out_dir/images/*.png, out_dir/r1reward.jsonl (R1-Reward RL layout), out_dir/pairs.jsonl (plain pairs
// with teacher attempts and reasoning traces) and out_dir/manifest.json.
absl::Status WriteSyntheticDataset(const SynthOptions& options, const std::string& out_dir);

}  // namespace r1r::data
