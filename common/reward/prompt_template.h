// The paper's Table 1 prompt (identical to make_conv_rm in the released code), byte-exact, and its
// inverse so the R1-Reward JSONL rows (which only hold the filled prompt) give back both responses.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace r1r::reward {

// Renders the Table 1 template with {question}, {answer1}, {answer2} substituted verbatim.
std::string RenderComparisonPrompt(std::string_view question, std::string_view response1,
                                   std::string_view response2);

struct ComparisonPromptFields {
  std::string question;
  std::string response1;
  std::string response2;
};

// Recovers the three fields from a prompt made by RenderComparisonPrompt.
absl::StatusOr<ComparisonPromptFields> ParseComparisonPrompt(std::string_view prompt);

}  // namespace r1r::reward
