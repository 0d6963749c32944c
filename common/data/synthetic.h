// The synthetic multimodal preference task (the CPU demo's data): small drawn scenes of coloured shapes,
// "How many <colour> <shape>s are in the image?", one response with the true count and one with a
// plausible wrong count (for any pair of stated counts either is true half of the time, so only the
// image tells), a teacher reasoning trace for SFT that says which response is better, teacher
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

// How the teacher's trace gets to the count. kCount: "I find 3" at once. kTally: "1, 2, 3. I find 3".
// kList: "1 red circle, 2 blue square, 3 yellow triangle. I find 3": the counted shapes named in palette
// then shape order, so each step is a lookup of one kind of shape in the image (not a sum over it), the
// vision tower learns colours and kinds from every shape, and the count is a copy of the last number.
enum class SynthTrace { kCount, kTally, kList };
absl::StatusOr<SynthTrace> ParseSynthTrace(const std::string& name);  // count | tally | list
const char* SynthTraceName(SynthTrace trace);

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
  SynthTrace trace = SynthTrace::kCount;
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
