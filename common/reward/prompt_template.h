// The paper's Table 1 prompt (identical to make_conv_rm in the released code), byte-exact, and its
// inverse so the R1-Reward JSONL rows (which only hold the filled prompt) give back both responses.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace r1r::reward {

// kR1Reward: the paper's Table 1 prompt. kCompact: the same fields and output format in a few words,
// for small models trained from scratch (the CPU demo), where Table 1's ~180 instruction tokens
// would be most of every sequence and carry nothing the model can learn from.
enum class PromptStyle { kR1Reward, kCompact };
absl::StatusOr<PromptStyle> ParsePromptStyle(std::string_view name);  // r1reward | compact
const char* PromptStyleName(PromptStyle style);

// Renders the template with {question}, {answer1}, {answer2} substituted verbatim.
std::string RenderComparisonPrompt(std::string_view question, std::string_view response1,
                                   std::string_view response2, PromptStyle style = PromptStyle::kR1Reward);

struct ComparisonPromptFields {
  std::string question;
  std::string response1;
  std::string response2;
};

// Recovers the three fields from a prompt made by RenderComparisonPrompt.
absl::StatusOr<ComparisonPromptFields> ParseComparisonPrompt(std::string_view prompt);

}  // namespace r1r::reward
