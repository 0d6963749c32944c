#include "common/data/synthetic.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/data/readers.h"
#include "common/data/transforms.h"
#include "common/reward/answer_order.h"

namespace r1r::data {
namespace {

struct Colour {
  const char* name;
  uint8_t r, g, b;
};
constexpr std::array<Colour, 4> kPalette = {{
    {"red", 220, 40, 40},
    {"green", 40, 170, 60},
    {"blue", 40, 80, 220},
    {"yellow", 230, 190, 30},
}};
constexpr std::array<const char*, 3> kShapeNames = {"circle", "square", "triangle"};
constexpr std::array<double, 3> kTeacherSuccessPerAttempt = {0.9, 0.6, 0.3};  // by difficulty

bool Inside(const DrawnShape& s, int x, int y) {
  const int dx = x - s.cx, dy = y - s.cy, r = s.radius;
  switch (s.kind) {
    case ShapeKind::kCircle:
      return dx * dx + dy * dy <= r * r;
    case ShapeKind::kSquare:
      return std::abs(dx) * 10 <= r * 8 && std::abs(dy) * 10 <= r * 8;
    case ShapeKind::kTriangle:  // apex up: half-width grows from 0 at the top to r at the bottom
      return dy >= -r && dy <= r && 2 * std::abs(dx) <= dy + r;
  }
  return false;
}

void Draw(RgbImage& image, const DrawnShape& s) {
  const Colour& c = kPalette[static_cast<size_t>(s.colour)];
  for (int y = std::max(0, s.cy - s.radius); y <= std::min(image.height - 1, s.cy + s.radius); ++y) {
    for (int x = std::max(0, s.cx - s.radius); x <= std::min(image.width - 1, s.cx + s.radius); ++x) {
      if (!Inside(s, x, y)) continue;
      uint8_t* p = image.At(x, y);
      p[0] = c.r;
      p[1] = c.g;
      p[2] = c.b;
    }
  }
}

// The counted thing: "green triangle", "green shape" or "shape", pluralised with an "s".
std::string Noun(int count, const std::string& what) { return absl::StrCat(what, count == 1 ? "" : "s"); }

std::string CountSentence(int count, const std::string& what) {
  if (count == 0) return absl::StrCat("There are no ", Noun(0, what), " in the image.");
  if (count == 1) return absl::StrCat("There is 1 ", Noun(1, what), " in the image.");
  return absl::StrCat("There are ", count, " ", Noun(count, what), " in the image.");
}

// The teacher's SFT trace, shaped so that each step is a lookup a small transformer learns quickly: the
// question is restated verbatim (the same tokens as in the prompt, so it is a plain copy), both counts are
// read off the responses, and the decision names the response whose count is the one just found (matching
// a token, not comparing two). The conclusion sits in the last line, where the consistency referee looks.
// `counted` names the shapes the teacher counted (teacher_count of them), in the order it lists them.
std::string TeacherTrace(const std::string& question, const std::string& what, const std::vector<std::string>& counted,
                         int count1, int count2, SynthTrace style) {
  const int teacher_count = static_cast<int>(counted.size());
  const int preferred = teacher_count == count1 ? 1 : 2;
  std::string counting = absl::StrCat("Counting the ", what, " in the image, I find ", teacher_count, ".\n");
  if (style != SynthTrace::kCount) {
    std::vector<std::string> steps;
    for (int k = 1; k <= teacher_count; ++k) {
      steps.push_back(style == SynthTrace::kList ? absl::StrCat(k, " ", counted[static_cast<size_t>(k - 1)])
                                                 : absl::StrCat(k));
    }
    counting = absl::StrCat("Counting the ", what, " in the image one by one: ", absl::StrJoin(steps, ", "),
                            ". I find ", teacher_count, ".\n");
  }
  return absl::StrCat("<think>The question asks: ", question, "\n", "Response 1 says ", count1,
                      " and Response 2 says ", count2, ".\n", counting, "My count ", teacher_count,
                      " matches Response ", preferred, ", so Response ", preferred, " is better.</think><answer>",
                      preferred, "</answer>");
}

// "<colour> <kind>" of the counted shapes in palette then shape order; a teacher that miscounts drops the
// last one or names the last one twice.
std::vector<std::string> CountedNames(std::vector<DrawnShape> shapes, int teacher_count) {
  std::sort(shapes.begin(), shapes.end(), [](const DrawnShape& a, const DrawnShape& b) {
    return std::pair(a.colour, static_cast<int>(a.kind)) < std::pair(b.colour, static_cast<int>(b.kind));
  });
  std::vector<std::string> names;
  for (const DrawnShape& s : shapes) {
    names.push_back(absl::StrCat(kPalette[static_cast<size_t>(s.colour)].name, " ",
                                 kShapeNames[static_cast<size_t>(s.kind)]));
  }
  names.resize(static_cast<size_t>(teacher_count), names.empty() ? std::string("shape") : names.back());
  return names;
}

// (true, wrong) counts in 1..max_count: adjacent 80% of the time (plausible mistakes), any other pair
// otherwise, and the true one picked by a coin. max_count 1 leaves no pair: the wrong count is then 2.
std::pair<int, int> StatedCounts(int max_count, SeededRng& rng) {
  if (max_count < 2) return {1, 2};
  int low = 0, high = 0;
  if (rng.Uniform() < 0.8) {
    low = 1 + static_cast<int>(rng.Below(static_cast<uint64_t>(max_count - 1)));
    high = low + 1;
  } else {
    low = 1 + static_cast<int>(rng.Below(static_cast<uint64_t>(max_count)));
    do {
      high = 1 + static_cast<int>(rng.Below(static_cast<uint64_t>(max_count)));
    } while (high == low);
  }
  return rng.Below(2) == 0 ? std::pair<int, int>{low, high} : std::pair<int, int>{high, low};
}

std::vector<std::string> QuestionNames(const std::vector<SynthQuestion>& kinds) {
  std::vector<std::string> names;
  for (SynthQuestion q : kinds) {
    names.push_back(q == SynthQuestion::kColourShape ? "colour_shape" : q == SynthQuestion::kColour ? "colour" : "all");
  }
  return names;
}

}  // namespace

absl::StatusOr<SynthQuestion> ParseSynthQuestion(const std::string& name) {
  if (name == "colour_shape") return SynthQuestion::kColourShape;
  if (name == "colour") return SynthQuestion::kColour;
  if (name == "all") return SynthQuestion::kAll;
  return absl::InvalidArgumentError(absl::StrCat("synthetic question kind must be colour_shape, colour or all, got '",
                                                 name, "'"));
}

absl::StatusOr<SynthTrace> ParseSynthTrace(const std::string& name) {
  if (name == "count") return SynthTrace::kCount;
  if (name == "tally") return SynthTrace::kTally;
  if (name == "list") return SynthTrace::kList;
  return absl::InvalidArgumentError(absl::StrCat("synthetic trace must be count, tally or list, got '", name, "'"));
}

const char* SynthTraceName(SynthTrace trace) {
  switch (trace) {
    case SynthTrace::kTally:
      return "tally";
    case SynthTrace::kList:
      return "list";
    case SynthTrace::kCount:
      break;
  }
  return "count";
}

absl::Status ValidateSynthOptions(const SynthOptions& o) {
  if (o.questions.empty()) return absl::InvalidArgumentError("synthetic: questions must name at least one kind");
  if (o.n < 1) return absl::InvalidArgumentError("synthetic: n must be >= 1");
  if (o.image_size < 56 || o.image_size > 112) return absl::InvalidArgumentError("synthetic: image_size in 56..112");
  if (o.grid < 2 || o.grid > 4) return absl::InvalidArgumentError("synthetic: grid in 2..4");
  // When every shape counts there are no distractors, whatever max_distractors says.
  const bool only_all = std::all_of(o.questions.begin(), o.questions.end(),
                                    [](SynthQuestion q) { return q == SynthQuestion::kAll; });
  if (o.max_count < 1 || o.max_count + (only_all ? 0 : o.max_distractors) > o.grid * o.grid) {
    return absl::InvalidArgumentError("synthetic: need 1 <= max_count and max_count + max_distractors <= grid * grid");
  }
  if (o.max_distractors < 0) return absl::InvalidArgumentError("synthetic: max_distractors must be >= 0");
  if (!(o.teacher_mistake_rate >= 0.0 && o.teacher_mistake_rate <= 1.0)) {
    return absl::InvalidArgumentError("synthetic: teacher_mistake_rate in [0, 1]");
  }
  if (o.teacher_max_attempts < 1) return absl::InvalidArgumentError("synthetic: teacher_max_attempts >= 1");
  return absl::OkStatus();
}

SyntheticItem GenerateSyntheticItem(const SynthOptions& o, int64_t index) {
  SeededRng rng(reward::Mix64(reward::Mix64(o.seed) ^ static_cast<uint64_t>(index)));
  SyntheticItem item;
  // One kind draws nothing, so single-kind datasets stay what they were.
  const SynthQuestion question = o.questions.size() == 1 ? o.questions[0] : o.questions[rng.Below(o.questions.size())];
  const int target_colour = static_cast<int>(rng.Below(kPalette.size()));
  const auto target_kind = static_cast<ShapeKind>(rng.Below(kShapeNames.size()));
  // The two stated counts first, then which of them is true (a coin): whatever pair the responses
  // state, each is the right one half of the time, so the text alone is worth no more than chance and
  // only the image tells. (Drawing the true count first and a wrong one around it leaked: {1, 2} was
  // mostly 1, {4, 5} always 4, and a model that ignored the image reached 0.64.)
  std::tie(item.true_count, item.wrong_count) = StatedCounts(o.max_count, rng);
  const int distractors = static_cast<int>(rng.Below(static_cast<uint64_t>(o.max_distractors) + 1)) *
                          (question == SynthQuestion::kAll ? 0 : 1);  // every shape counts
  auto counted = [&](const DrawnShape& s) {
    switch (question) {
      case SynthQuestion::kColourShape:
        return s.kind == target_kind && s.colour == target_colour;
      case SynthQuestion::kColour:
        return s.colour == target_colour;
      case SynthQuestion::kAll:
        return true;
    }
    return false;
  };

  // Distinct grid cells, then a size and a jitter that keep each shape inside its cell.
  const std::vector<size_t> cells = ShuffledIndices(static_cast<size_t>(o.grid * o.grid), rng.Next());
  const int cell = o.image_size / o.grid;
  int confusers = 0;  // distractors sharing the colour or the shape of the target
  for (int k = 0; k < item.true_count + distractors; ++k) {
    DrawnShape s{};
    if (k < item.true_count && question == SynthQuestion::kColourShape) {
      s.kind = target_kind;
      s.colour = target_colour;
    } else if (k < item.true_count) {  // any kind, and any colour when every shape counts
      s.kind = static_cast<ShapeKind>(rng.Below(kShapeNames.size()));
      s.colour = question == SynthQuestion::kColour ? target_colour : static_cast<int>(rng.Below(kPalette.size()));
    } else {
      do {
        s.kind = static_cast<ShapeKind>(rng.Below(kShapeNames.size()));
        s.colour = static_cast<int>(rng.Below(kPalette.size()));
      } while (counted(s));
      if (s.kind == target_kind || s.colour == target_colour) ++confusers;
    }
    const int min_r = std::max(3, cell / 4), max_r = std::max(min_r, cell * 9 / 20);
    s.radius = min_r + static_cast<int>(rng.Below(static_cast<uint64_t>(max_r - min_r + 1)));
    const int slack = std::max(0, cell / 2 - s.radius - 1);
    const int gx = static_cast<int>(cells[static_cast<size_t>(k)]) % o.grid;
    const int gy = static_cast<int>(cells[static_cast<size_t>(k)]) / o.grid;
    s.cx = gx * cell + cell / 2 + static_cast<int>(rng.Below(2 * slack + 1)) - slack;
    s.cy = gy * cell + cell / 2 + static_cast<int>(rng.Below(2 * slack + 1)) - slack;
    item.shapes.push_back(s);
  }
  item.image = RgbImage(o.image_size, o.image_size, 245, 245, 245);
  for (const DrawnShape& s : item.shapes) Draw(item.image, s);

  // Difficulty follows what the responses state, never which of them is true: the RL split takes the
  // hard items, and a difficulty read off the true count ("3 of 3 is hard") made that split mostly
  // "the higher count is right", which RL then learned instead of counting.
  const int stated_max = std::max(item.true_count, item.wrong_count);
  item.difficulty = (confusers >= 2 || stated_max == o.max_count) ? 2
                    : (confusers == 0 && stated_max <= 2)        ? 0
                                                                 : 1;

  PreferenceSample& s = item.sample;
  const std::string colour = kPalette[static_cast<size_t>(target_colour)].name;
  const std::string shape = kShapeNames[static_cast<size_t>(target_kind)];
  const std::string what = question == SynthQuestion::kColourShape ? absl::StrCat(colour, " ", shape)
                           : question == SynthQuestion::kColour    ? absl::StrCat(colour, " shape")
                                                                   : std::string("shape");
  s.id = absl::StrFormat("synth_%06d", index);
  s.source = "synthetic";
  s.image_path = absl::StrCat("images/", s.id, ".png");
  s.question = absl::StrCat("How many ", Noun(2, what), " are in the image?");
  const reward::OrderedPair pair = reward::PlaceResponses(CountSentence(item.true_count, what),
                                                          CountSentence(item.wrong_count, what), rng.Below(2) == 1);
  s.response1 = pair.response1;
  s.response2 = pair.response2;
  s.label = pair.label;

  // Teacher: attempts until right, with a per-attempt success rate set by the difficulty.
  s.teacher_solved = false;
  for (int attempt = 1; attempt <= o.teacher_max_attempts; ++attempt) {
    if (rng.Uniform() < kTeacherSuccessPerAttempt[static_cast<size_t>(item.difficulty)]) {
      s.teacher_attempts = attempt;
      s.teacher_solved = true;
      break;
    }
  }
  if (!s.teacher_solved) s.teacher_attempts = o.teacher_max_attempts;
  item.teacher_trace_correct = rng.Uniform() >= o.teacher_mistake_rate;
  const int teacher_count = item.teacher_trace_correct ? item.true_count : item.wrong_count;
  const int count1 = pair.swapped ? item.wrong_count : item.true_count;
  const int count2 = pair.swapped ? item.true_count : item.wrong_count;
  std::vector<DrawnShape> counted_shapes;
  for (const DrawnShape& d : item.shapes) {
    if (counted(d)) counted_shapes.push_back(d);
  }
  s.reasoning = TeacherTrace(s.question, Noun(2, what), CountedNames(counted_shapes, teacher_count), count1, count2,
                             o.trace);
  return item;
}

absl::Status WriteSyntheticDataset(const SynthOptions& o, const std::string& out_dir) {
  if (absl::Status s = ValidateSynthOptions(o); !s.ok()) return s;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(out_dir) / "images", ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create ", out_dir, "/images: ", ec.message()));
  std::vector<PreferenceSample> samples;
  samples.reserve(static_cast<size_t>(o.n));
  int64_t hard = 0, wrong_traces = 0, label1 = 0;
  for (int64_t i = 0; i < o.n; ++i) {
    SyntheticItem item = GenerateSyntheticItem(o, i);
    const std::string png = (std::filesystem::path(out_dir) / item.sample.image_path).string();
    if (absl::Status s = WritePng(png, item.image); !s.ok()) return s;
    hard += IsHardForTeacher(item.sample) ? 1 : 0;
    wrong_traces += item.teacher_trace_correct ? 0 : 1;
    label1 += item.sample.label == 1 ? 1 : 0;
    samples.push_back(std::move(item.sample));
  }
  const std::filesystem::path dir(out_dir);
  if (absl::Status s = WriteR1RewardJsonl((dir / "r1reward.jsonl").string(), samples, o.placement); !s.ok()) {
    return s;
  }
  if (absl::Status s = WritePlainPairsJsonl((dir / "pairs.jsonl").string(), samples); !s.ok()) return s;
  const nlohmann::json manifest = {
      {"generator", "r1r synthetic counting task v1"},
      {"n", o.n},
      {"seed", o.seed},
      {"image_size", o.image_size},
      {"max_count", o.max_count},
      {"max_distractors", o.max_distractors},
      {"teacher_mistake_rate", o.teacher_mistake_rate},
      {"teacher_max_attempts", o.teacher_max_attempts},
      {"questions", QuestionNames(o.questions)},
      {"grid", o.grid},
      {"trace", SynthTraceName(o.trace)},
      {"image_placement", o.placement == reward::ImagePlacement::kAfterText ? "after_text" : "before_text"},
      {"label1_count", label1},
      {"rl_hard_count", hard},
      {"wrong_teacher_traces", wrong_traces},
      {"files", {"r1reward.jsonl", "pairs.jsonl", "images/"}},
  };
  std::ofstream out(dir / "manifest.json", std::ios::trunc);
  out << manifest.dump(2) << '\n';
  if (!out) return absl::DataLossError(absl::StrCat("cannot write ", (dir / "manifest.json").string()));
  return absl::OkStatus();
}

}  // namespace r1r::data
