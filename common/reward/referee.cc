#include "common/reward/referee.h"

#include <algorithm>
#include <array>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_replace.h"

namespace r1r::reward {
namespace {

absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string_view Trim(std::string_view s) {
  const absl::string_view t = absl::StripAsciiWhitespace(Absl(s));
  return std::string_view(t.data(), t.size());
}

// Python int(): optional surrounding whitespace, optional sign, decimal digits.
std::optional<int64_t> PythonInt(std::string_view s) {
  int64_t value = 0;
  if (absl::SimpleAtoi(Absl(Trim(s)), &value)) return value;
  return std::nullopt;
}

constexpr std::string_view kRefereeHead =
    "\nYou are a strict judge with one task: Determine if the Model's Response  exactly matches the model' "
    "Answer.\n\n# Rules:\n1. Output 1 when model's response and answer have the same meaning.\n2. Output 0 when "
    "the model answer and response mismatch:\n   - Ambiguous conclusion without clear choice\n   - Choice "
    "direction opposite to answer\n   - Approving both answers equally\n\n\n######### Model's Response "
    "#########\n ";
constexpr std::string_view kRefereeMiddle = " \n\n\n######### Model's Answer#########\n ";
constexpr std::string_view kRefereeTail = "\n\n\nOutput: \n";

bool IsSentenceBreak(char c) { return c == '.' || c == ';' || c == '\n' || c == '!' || c == '?'; }

// A whole-word occurrence ("tie" but not "properties").
bool ContainsWord(std::string_view text, std::string_view word) {
  for (size_t at = text.find(word); at != std::string_view::npos; at = text.find(word, at + 1)) {
    const bool left = at == 0 || !absl::ascii_isalpha(static_cast<unsigned char>(text[at - 1]));
    const size_t end = at + word.size();
    const bool right = end == text.size() || !absl::ascii_isalpha(static_cast<unsigned char>(text[end]));
    if (left && right) return true;
  }
  return false;
}

}  // namespace

std::string ReasoningTail(std::string_view response) {
  const size_t answer = response.find("<answer>");
  const std::string_view reasoning = Trim(response.substr(0, answer));
  const std::vector<absl::string_view> lines = absl::StrSplit(Absl(reasoning), '\n');
  const size_t first = lines.size() > 3 ? lines.size() - 3 : 0;
  return absl::StrJoin(lines.begin() + static_cast<std::ptrdiff_t>(first), lines.end(), ";");
}

std::string StatedAnswerPhrase(std::string_view response) {
  const std::optional<std::string> answer = ExtractTaggedAnswer(response);
  if (!answer.has_value()) return std::string(response);
  const std::optional<int64_t> choice = PythonInt(*answer);
  if (!choice.has_value()) return *answer;
  if (*choice == 1) return "response 1 is better";
  if (*choice == 2) return "response 2 is better";
  return "two response are the same";
}

std::string RenderRefereePrompt(std::string_view response) {
  return absl::StrCat(Absl(kRefereeHead), ReasoningTail(response), Absl(kRefereeMiddle),
                      StatedAnswerPhrase(response), Absl(kRefereeTail));
}

std::optional<Consistency> ParseRefereeReply(std::string_view reply) {
  const std::string cleaned = absl::StrReplaceAll(Absl(reply), {{"output:", ""}});
  const std::string_view ans = Trim(cleaned);
  if (ans == "1") return Consistency::kConsistent;
  if (ans == "0") return Consistency::kInconsistent;
  if (ans.find('0') != std::string_view::npos) return Consistency::kInconsistent;
  if (ans.find('1') != std::string_view::npos) return Consistency::kConsistent;
  return std::nullopt;
}

Consistency VerdictFromReplies(const std::vector<std::string>& replies) {
  const size_t n = std::min<size_t>(replies.size(), kRefereeMaxAttempts);
  for (size_t i = 0; i < n; ++i) {
    if (std::optional<Consistency> v = ParseRefereeReply(replies[i])) return *v;
  }
  return Consistency::kUnknown;
}

std::optional<int> PreferredResponseInReasoning(std::string_view reasoning) {
  const std::string text = absl::AsciiStrToLower(Absl(reasoning));
  size_t keyword = std::string::npos;
  for (std::string_view word : {"better", "prefer"}) {
    const size_t at = text.rfind(word);
    if (at != std::string::npos && (keyword == std::string::npos || at > keyword)) keyword = at;
  }
  if (keyword == std::string::npos) return std::nullopt;
  size_t begin = keyword;
  while (begin > 0 && !IsSentenceBreak(text[begin - 1])) --begin;
  size_t end = keyword;
  while (end < text.size() && !IsSentenceBreak(text[end])) ++end;
  const std::string_view sentence = std::string_view(text).substr(begin, end - begin);
  for (std::string_view tie : {"both", "neither", "tie", "equally"}) {
    if (ContainsWord(sentence, tie)) return std::nullopt;
  }
  const size_t kw = keyword - begin;
  std::optional<int> before, after;
  constexpr std::string_view kMention = "response ";
  for (size_t at = sentence.find(kMention); at != std::string_view::npos; at = sentence.find(kMention, at + 1)) {
    const size_t digit = at + kMention.size();
    if (digit >= sentence.size() || (sentence[digit] != '1' && sentence[digit] != '2')) continue;
    const int n = sentence[digit] - '0';
    if (at < kw) {
      before = n;
    } else if (!after.has_value()) {
      after = n;
    }
  }
  return before.has_value() ? before : after;
}

Consistency RuleRefereeVerdict(std::string_view response) {
  const std::optional<int> preferred = PreferredResponseInReasoning(ReasoningTail(response));
  const std::string stated = StatedAnswerPhrase(response);
  if (!preferred.has_value()) return Consistency::kInconsistent;
  const std::string expected = absl::StrCat("response ", *preferred, " is better");
  return stated == expected ? Consistency::kConsistent : Consistency::kInconsistent;
}

}  // namespace r1r::reward
