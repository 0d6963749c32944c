// One judged pair and its aggregation: parsing the model's choice, the outcome against the preferred
// position, seeded order randomisation, voting@K (majority) and any@K, and accuracy tallies.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/reward/answer_order.h"

namespace r1r::eval {

enum class Outcome { kCorrect, kWrong, kUnparsed };

// The model's choice, as R1-Reward's released scorers read it: the first <answer>...</answer>'s content
// parsed as a Python float ("1", " 1.0 ", "１" and "1e0" are 1; "Response 2" is unparsed); a number other
// than 1 or 2 gives 0, a choice that is always wrong. Only when there is no tag at all, and with
// `fallback_last_digit` (the VL-RewardBench and Multimodal RewardBench scripts), the last '1' or '2'
// anywhere in the text. nullopt when nothing parses.
std::optional<int> ParseChoice(std::string_view model_output, bool fallback_last_digit = true);

// Python's float(text): nullopt where float() raises ValueError. Accepts surrounding Unicode whitespace,
// a sign, Unicode decimal digits (full-width and other scripts), '_' between digits, an exponent, and
// inf / infinity / nan in any case.
std::optional<double> ParsePythonFloat(std::string_view text);

// Correct when the choice is the position (1 or 2) of the preferred response.
Outcome OutcomeFor(std::optional<int> choice, int preferred_position);

// The order a judge is shown: chosen first unless the seeded coin for (seed, sample_index) says swap.
// With `randomize` false the chosen response is always Response 1 (what R1-Reward's scripts do).
reward::OrderedPair OrderForJudging(std::string chosen, std::string rejected, bool randomize, uint64_t seed,
                                    uint64_t sample_index);

// The voting rule of r1r, the one rule for voting@K in serve's Compare and Rank, `r1r eval` and the
// orchestrator's eval phase (VL-RewardBench cal.py): a value wins when MORE than half of all K samples hold
// it, unparsed samples included in K. Otherwise there is no majority: a tie (2 of 4 against 2 of 4) or too
// many unparsed samples (2 of 5 for one side, 1 for the other, 2 unparsed) is left unresolved, never broken
// by sample order. With K = 1 the one sample decides when it parsed.

// The votes of K samples for the two positions. choice is 1 or 2 when more than K/2 samples chose it, else 0
// (no majority). A sample counts as unparsed when it is nullopt or names neither position (0, 3, ...).
struct ChoiceVotes {
  int choice = 0;
  int votes_for_1 = 0;
  int votes_for_2 = 0;
  int unparsed = 0;
};
ChoiceVotes MajorityChoice(std::span<const std::optional<int>> choices);

// The same rule over outcomes against the preferred response (whose position may differ per sample):
// kCorrect if more than K/2 are correct, kWrong if more than K/2 are wrong, otherwise kUnparsed.
Outcome MajorityVote(std::span<const Outcome> samples);
// any@K: at least one of the K samples is correct.
bool AnyCorrect(std::span<const Outcome> samples);

struct Tally {
  int64_t correct = 0;
  int64_t total = 0;
  double Accuracy() const { return total > 0 ? static_cast<double>(correct) / static_cast<double>(total) : 0.0; }
  void Add(bool is_correct) {
    ++total;
    correct += is_correct ? 1 : 0;
  }
};

}  // namespace r1r::eval
