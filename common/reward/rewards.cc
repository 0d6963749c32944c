#include "common/reward/rewards.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_replace.h"

namespace r1r::reward {
namespace {

size_t CountOccurrences(std::string_view text, std::string_view needle) {
  size_t count = 0;
  for (size_t pos = text.find(needle); pos != std::string_view::npos; pos = text.find(needle, pos + 1)) ++count;
  return count;
}

std::string_view Trim(std::string_view s) {
  const absl::string_view t = absl::StripAsciiWhitespace(absl::string_view(s.data(), s.size()));
  return std::string_view(t.data(), t.size());
}

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";
constexpr std::string_view kAnswerOpen = "<answer>";
constexpr std::string_view kAnswerClose = "</answer>";

}  // namespace

std::string ExtractAssistantResponse(std::string_view decoded_sequence) {
  constexpr std::string_view kAssistant = "<|im_start|>assistant\n";
  const size_t at = decoded_sequence.find(kAssistant);
  const std::string_view tail = at == std::string_view::npos ? decoded_sequence
                                                             : decoded_sequence.substr(at + kAssistant.size());
  std::string response = absl::StrReplaceAll(absl::string_view(tail.data(), tail.size()),
                                             {{"<|im_end|>", ""},
                                              {"<|endoftext|>", ""},
                                              {"<｜end▁of▁sentence｜>", ""}});
  return std::string(Trim(response));
}

double FormatReward(std::string_view response) {
  if (CountOccurrences(response, kThinkOpen) != 1 || CountOccurrences(response, kAnswerOpen) != 1) return 0.0;
  std::string_view s = response;
  if (s.ends_with('\n')) s.remove_suffix(1);  // Python's `$` also matches before a final newline
  if (!s.starts_with(kThinkOpen) || !s.ends_with(kAnswerClose)) return 0.0;
  // With exactly one "<answer>", the regex's "</think><answer>" must sit right before it.
  const size_t answer = s.find(kAnswerOpen);
  if (answer < kThinkOpen.size() + kThinkClose.size()) return 0.0;
  if (s.substr(answer - kThinkClose.size(), kThinkClose.size()) != kThinkClose) return 0.0;
  if (answer + kAnswerOpen.size() > s.size() - kAnswerClose.size()) return 0.0;
  return 1.0;
}

std::optional<std::string> ExtractTaggedAnswer(std::string_view text) {
  const size_t open = text.find(kAnswerOpen);
  if (open == std::string_view::npos) return std::nullopt;
  const size_t begin = open + kAnswerOpen.size();
  const size_t close = text.find(kAnswerClose, begin);
  if (close == std::string_view::npos) return std::nullopt;
  return std::string(Trim(text.substr(begin, close - begin)));
}

std::string NormalizeLabel(std::string_view label) {
  if (std::optional<std::string> inner = ExtractTaggedAnswer(label)) return *inner;
  return std::string(Trim(label));
}

double ResultReward(std::string_view response, std::string_view label) {
  const std::optional<std::string> answer = ExtractTaggedAnswer(response);
  return answer.has_value() && *answer == NormalizeLabel(label) ? 1.0 : 0.0;
}

double TotalReward(double format, double result, double consistency, const RewardWeights& weights) {
  return weights.format * format + result * (1.0 + weights.consistency * consistency);
}

RewardBreakdown ComputeReward(std::string_view response, std::string_view label, Consistency consistency,
                              const RewardWeights& weights) {
  RewardBreakdown b;
  b.format = FormatReward(response);
  b.result = ResultReward(response, label);
  b.consistency = static_cast<double>(static_cast<int>(consistency));
  b.total = TotalReward(b.format, b.result, b.consistency, weights);
  return b;
}

}  // namespace r1r::reward
