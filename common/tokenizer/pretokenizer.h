#pragma once
// Splits normalised text into the pieces BPE runs on, like Hugging Face's
// Split(Regex, behavior=Isolated): every regex match is a piece and so is every gap between
// matches. The regex engine is ICU's; the pattern is the tokenizer.json one with `\s`/`\S`
// rewritten to the Unicode White_Space property, which is exactly Oniguruma's `\s` (what Hugging
// Face uses). ICU's own `\s` agrees in ICU 72 but is documented as [\t\n\f\r\p{Z}], which would
// miss U+000B and U+0085; the rewrite keeps us independent of that.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include <unicode/uversion.h>  // light: declares the versioned icu namespace

U_NAMESPACE_BEGIN
class RegexPattern;
U_NAMESPACE_END

namespace r1r::tokenizer {

// The Qwen2 / Qwen2.5 pre-tokenizer pattern (single-digit \p{N}).
inline constexpr std::string_view kQwenSplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// GPT-2's pattern, used by ByteLevel(use_regex=true).
inline constexpr std::string_view kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Rewrites Oniguruma-style `\s` / `\S` to `\p{White_Space}` / `\P{White_Space}`.
std::string ToIcuPattern(std::string_view onig_pattern);

class RegexSplitter {
 public:
  static absl::StatusOr<std::unique_ptr<RegexSplitter>> Create(std::string_view onig_pattern);
  ~RegexSplitter();

  // Appends [begin, end) byte ranges of the pieces of `text` (valid UTF-8) to `pieces`,
  // offset by `base`. Thread-safe: each call uses its own matcher.
  void Split(std::string_view text, size_t base, std::vector<std::pair<size_t, size_t>>* pieces) const;

 private:
  explicit RegexSplitter(std::unique_ptr<icu::RegexPattern> pattern);
  std::unique_ptr<icu::RegexPattern> pattern_;
};

// NFC normalisation through ICU; ASCII text is returned unchanged without calling ICU.
// Requires valid UTF-8.
absl::StatusOr<std::string> NormalizeNfc(std::string_view text);

}  // namespace r1r::tokenizer
