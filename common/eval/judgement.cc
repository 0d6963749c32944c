#include "common/eval/judgement.h"

#include "common/reward/rewards.h"

namespace r1r::eval {

std::optional<int> ParseChoice(std::string_view model_output, bool fallback_last_digit) {
  if (const std::optional<std::string> tagged = reward::ExtractTaggedAnswer(model_output)) {
    if (*tagged == "1") return 1;
    if (*tagged == "2") return 2;
  }
  if (!fallback_last_digit) return std::nullopt;
  const size_t last = model_output.find_last_of("12");
  if (last == std::string_view::npos) return std::nullopt;
  return model_output[last] - '0';
}

Outcome OutcomeFor(std::optional<int> choice, int preferred_position) {
  if (!choice.has_value()) return Outcome::kUnparsed;
  return *choice == preferred_position ? Outcome::kCorrect : Outcome::kWrong;
}

reward::OrderedPair OrderForJudging(std::string chosen, std::string rejected, bool randomize, uint64_t seed,
                                    uint64_t sample_index) {
  const bool swap = randomize && reward::SwapForItem(seed, sample_index);
  return reward::PlaceResponses(std::move(chosen), std::move(rejected), swap);
}

Outcome MajorityVote(std::span<const Outcome> samples) {
  int64_t correct = 0, wrong = 0;
  for (Outcome o : samples) {
    correct += o == Outcome::kCorrect ? 1 : 0;
    wrong += o == Outcome::kWrong ? 1 : 0;
  }
  const int64_t k = static_cast<int64_t>(samples.size());
  if (2 * correct > k) return Outcome::kCorrect;
  if (2 * wrong > k) return Outcome::kWrong;
  return Outcome::kUnparsed;
}

bool AnyCorrect(std::span<const Outcome> samples) {
  for (Outcome o : samples) {
    if (o == Outcome::kCorrect) return true;
  }
  return false;
}

}  // namespace r1r::eval
