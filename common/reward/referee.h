// The consistency referee (reference §4): what it is shown (the last 3 lines of the reasoning and the
// stated answer), the verbatim prompt, the reply parser, and a deterministic rule referee that stands
// in for the Qwen2.5-VL judge in tests and the CPU demo.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/reward/rewards.h"

namespace r1r::reward {

inline constexpr int kRefereeMaxAttempts = 3;

// response.split("<answer>")[0].strip(), its last 3 lines joined with ';' (the <think> tags stay).
std::string ReasoningTail(std::string_view response);

// The stated answer as the referee reads it: "response 1 is better", "response 2 is better",
// "two response are the same" (another integer), the raw tag content (not an integer), or the whole
// response (no tag).
std::string StatedAnswerPhrase(std::string_view response);

// The verbatim referee prompt for a policy response.
std::string RenderRefereePrompt(std::string_view response);

// One referee reply: "1" -> consistent, "0" -> inconsistent (exact match first, then substring, "0"
// winning); nullopt means "ask again".
std::optional<Consistency> ParseRefereeReply(std::string_view reply);

// The verdict over successive replies (at most kRefereeMaxAttempts used): the first that parses, else kUnknown.
Consistency VerdictFromReplies(const std::vector<std::string>& replies);

// Which response the reasoning text prefers: the sentence around the last "better"/"prefer", and in it the
// last "response N" before that word (else the first after it). nullopt when unclear or when the sentence
// calls it a tie ("both", "neither", "tie", "equally").
std::optional<int> PreferredResponseInReasoning(std::string_view reasoning);

// Deterministic referee on the same input the model referee gets (reasoning tail + stated answer):
// consistent when the preferred response equals the stated answer, inconsistent otherwise (an unclear
// conclusion is inconsistent, as rule 2 of the prompt says).
Consistency RuleRefereeVerdict(std::string_view response);

}  // namespace r1r::reward
