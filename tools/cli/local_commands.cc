#include "tools/cli/local_commands.h"

#include <cstdio>
#include <iostream>
#include <string>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>

#include "common/config/flags.h"
#include "common/data/readers.h"
#include "common/data/synthetic.h"
#include "common/tokenizer/tokenize_cli.h"
#include "tools/cli/cli_context.h"

namespace r1r::cli {
namespace {

int Usage(const std::string& usage, const config::Flags& flags) {
  std::fprintf(stderr, "usage: %s\n%s", usage.c_str(), flags.Help().c_str());
  return kExitUsage;
}

int Synth(int argc, char** argv) {
  config::Flags f;
  f.Value("out", "", "output folder (images/, r1reward.jsonl, pairs.jsonl)")
      .Value("n", "1000", "number of samples")
      .Value("seed", "1", "random seed")
      .Value("mistake-rate", "0.1", "share of teacher traces that reason to the wrong response")
      .Value("image-size", "64", "square image side in pixels (56..112)")
      .Value("questions", "colour_shape", "what questions count, comma-separated: colour_shape, colour, all")
      .Value("max-count", "4", "the counted shapes appear 1..max-count times")
      .Value("distractors", "4", "other shapes per image, 0..distractors (none when every shape counts)")
      .Value("grid", "4", "shapes sit in distinct cells of a grid x grid layout (2..4)")
      .Value("trace", "count", "the teacher's counting trace: count | tally | list");
  const std::string usage = "r1r data synth --out DIR --n N --seed S";
  if (!f.Parse(argc, argv, 3).ok() || f.Get("out").empty()) return Usage(usage, f);
  auto n = f.GetInt("n");
  auto seed = f.GetInt("seed");
  auto rate = f.GetDouble("mistake-rate");
  auto size = f.GetInt("image-size");
  auto max_count = f.GetInt("max-count");
  auto distractors = f.GetInt("distractors");
  auto grid = f.GetInt("grid");
  if (!n.ok() || !seed.ok() || !rate.ok() || !size.ok() || !max_count.ok() || !distractors.ok() || !grid.ok()) {
    return Usage(usage, f);
  }
  auto trace = data::ParseSynthTrace(f.Get("trace"));
  if (!trace.ok()) return Fail(trace.status());
  data::SynthOptions o;
  o.n = *n;
  o.seed = static_cast<uint64_t>(*seed);
  o.teacher_mistake_rate = *rate;
  o.image_size = static_cast<int>(*size);
  o.max_count = static_cast<int>(*max_count);
  o.max_distractors = static_cast<int>(*distractors);
  o.grid = static_cast<int>(*grid);
  o.trace = *trace;
  o.questions.clear();
  for (absl::string_view name : absl::StrSplit(f.Get("questions"), ',')) {
    auto kind = data::ParseSynthQuestion(std::string(name));
    if (!kind.ok()) return Fail(kind.status());
    o.questions.push_back(*kind);
  }
  if (absl::Status s = data::WriteSyntheticDataset(o, f.Get("out")); !s.ok()) return Fail(s);
  std::printf("wrote %lld samples to %s\n", static_cast<long long>(o.n), f.Get("out").c_str());
  return kExitOk;
}

int Check(int argc, char** argv) {
  config::Flags f;
  f.Value("format", "r1reward", "r1reward | pairs | mmrlhf").Switch("json", "JSON output");
  const std::string usage = "r1r data check --format r1reward|pairs|mmrlhf FILE";
  if (!f.Parse(argc, argv, 3).ok() || f.positionals().size() != 1) return Usage(usage, f);
  const std::string& path = f.positionals()[0];
  jsonl::ReadReport report;
  absl::StatusOr<std::vector<data::PreferenceSample>> rows;
  if (f.Get("format") == "r1reward") {
    rows = data::ReadR1RewardJsonl(path, report);
  } else if (f.Get("format") == "pairs") {
    rows = data::ReadPlainPairsJsonl(path, report);
  } else if (f.Get("format") == "mmrlhf") {
    rows = data::ReadMmRlhfPairsJsonl(path, report);
  } else {
    return Usage(usage, f);
  }
  if (!rows.ok()) return Fail(rows.status());
  if (f.Has("json")) {
    std::printf("{\"rows\":%lld,\"ok\":%lld,\"bad\":%lld}\n", static_cast<long long>(report.rows_seen),
                static_cast<long long>(report.rows_ok), static_cast<long long>(report.bad_count));
  } else {
    std::printf("%s\n", report.Summary().c_str());
  }
  return report.bad_count == 0 ? kExitOk : kExitFailure;
}

}  // namespace

int DataCommand(int argc, char** argv) {
  const std::string sub = argc > 2 ? argv[2] : "";
  if (sub == "synth") return Synth(argc, argv);
  if (sub == "check") return Check(argc, argv);
  std::fprintf(stderr, "usage: r1r data synth|check ...\n");
  return kExitUsage;
}

int TokenizeCommand(int argc, char** argv) {
  config::Flags f;
  f.Value("tokenizer", "", "path to tokenizer.json").Switch("decode", "ids -> text instead of text -> ids");
  if (!f.Parse(argc, argv, 2).ok() || f.Get("tokenizer").empty()) {
    return Usage("r1r tokenize --tokenizer tokenizer.json [--decode] < in.jsonl", f);
  }
  if (absl::Status s = tokenizer::RunTokenizeCli(f.Get("tokenizer"), f.Has("decode"), std::cin, std::cout); !s.ok()) {
    return Fail(s);
  }
  return kExitOk;
}

}  // namespace r1r::cli
