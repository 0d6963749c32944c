// Rule-based rewards of R1-Reward (reference §4): format, result, consistency and their total.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace r1r::reward {

// The referee's verdict on whether the reasoning supports the stated answer (its value is c).
enum class Consistency : int { kInconsistent = -1, kUnknown = 0, kConsistent = 1 };

struct RewardWeights {
  double format = 0.5;       // wf
  double consistency = 0.5;  // wc
};

struct RewardBreakdown {
  double format = 0.0;       // f in {0, 1}
  double result = 0.0;       // a in {0, 1}
  double consistency = 0.0;  // c in {-1, 0, +1}
  double total = 0.0;
};

// The policy's response inside a full decoded sequence (reference §4): the text after the first
// "<|im_start|>assistant\n" (all of it when absent), with <|im_end|>, <|endoftext|> and
// <｜end▁of▁sentence｜> removed, whitespace-trimmed.
std::string ExtractAssistantResponse(std::string_view decoded_sequence);

// f = 1 iff the response matches ^<think>.*?</think><answer>.*?</answer>$ (DOTALL; like Python's `$`, one
// trailing "\n" is allowed) and holds exactly one "<think>" and one "<answer>".
double FormatReward(std::string_view response);

// The first <answer>...</answer> (DOTALL), whitespace-trimmed; nullopt when there is no such pair.
std::optional<std::string> ExtractTaggedAnswer(std::string_view text);

// A label "<answer>2</answer>" or "2" as the bare choice "2".
std::string NormalizeLabel(std::string_view label);

// a = 1 iff the tagged answer equals the label. A response without the tags scores 0 (the released
// code scored parse failures 1).
double ResultReward(std::string_view response, std::string_view label);

// R = wf * f + a * (1 + wc * c): the only place this formula lives.
double TotalReward(double format, double result, double consistency, const RewardWeights& weights);

RewardBreakdown ComputeReward(std::string_view response, std::string_view label, Consistency consistency,
                              const RewardWeights& weights = {});

}  // namespace r1r::reward
