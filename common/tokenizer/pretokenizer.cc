#include "common/tokenizer/pretokenizer.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/regex.h>
#include <unicode/utext.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace r1r::tokenizer {

std::string ToIcuPattern(std::string_view onig_pattern) {
  std::string out;
  out.reserve(onig_pattern.size() + 64);
  for (size_t i = 0; i < onig_pattern.size(); ++i) {
    const char c = onig_pattern[i];
    if (c == '\\' && i + 1 < onig_pattern.size()) {
      const char next = onig_pattern[++i];
      if (next == 's') {
        out += "\\p{White_Space}";
      } else if (next == 'S') {
        out += "\\P{White_Space}";
      } else {
        out += c;
        out += next;
      }
    } else {
      out += c;
    }
  }
  return out;
}

RegexSplitter::RegexSplitter(std::unique_ptr<icu::RegexPattern> pattern) : pattern_(std::move(pattern)) {}
RegexSplitter::~RegexSplitter() = default;

absl::StatusOr<std::unique_ptr<RegexSplitter>> RegexSplitter::Create(std::string_view onig_pattern) {
  const std::string icu_pattern = ToIcuPattern(onig_pattern);
  UErrorCode status = U_ZERO_ERROR;
  UParseError parse_error;
  std::unique_ptr<icu::RegexPattern> pattern(icu::RegexPattern::compile(
      icu::UnicodeString::fromUTF8(icu_pattern), 0, parse_error, status));
  if (U_FAILURE(status)) {
    return absl::InvalidArgumentError(absl::StrCat("pre-tokenizer regex does not compile with ICU (",
                                                   u_errorName(status), " at offset ", parse_error.offset,
                                                   "): ", std::string(onig_pattern)));
  }
  return std::unique_ptr<RegexSplitter>(new RegexSplitter(std::move(pattern)));
}

void RegexSplitter::Split(std::string_view text, size_t base,
                          std::vector<std::pair<size_t, size_t>>* pieces) const {
  if (text.empty()) return;
  UErrorCode status = U_ZERO_ERROR;
  // A UTF-8 UText lets ICU match without converting to UTF-16; native indices are byte offsets.
  UText utext = UTEXT_INITIALIZER;
  utext_openUTF8(&utext, text.data(), static_cast<int64_t>(text.size()), &status);
  std::unique_ptr<icu::RegexMatcher> matcher(pattern_->matcher(status));
  if (U_FAILURE(status)) {  // only on allocation failure: keep the text whole
    utext_close(&utext);
    pieces->emplace_back(base, base + text.size());
    return;
  }
  matcher->reset(&utext);
  size_t last = 0;
  while (matcher->find(status) && U_SUCCESS(status)) {
    const auto start = static_cast<size_t>(matcher->start64(status));
    const auto end = static_cast<size_t>(matcher->end64(status));
    if (start > last) pieces->emplace_back(base + last, base + start);  // gap (Isolated keeps it)
    if (end > start) pieces->emplace_back(base + start, base + end);
    last = end;
  }
  if (last < text.size()) pieces->emplace_back(base + last, base + text.size());
  matcher.reset();
  utext_close(&utext);
}

absl::StatusOr<std::string> NormalizeNfc(std::string_view text) {
  bool ascii = true;
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return std::string(text);
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) return absl::InternalError(absl::StrCat("ICU NFC unavailable: ", u_errorName(status)));
  const icu::StringPiece piece(text.data(), static_cast<int32_t>(text.size()));
  if (nfc->isNormalizedUTF8(piece, status) && U_SUCCESS(status)) return std::string(text);
  status = U_ZERO_ERROR;
  std::string out;
  icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(text.size()));
  nfc->normalizeUTF8(0, piece, sink, nullptr, status);
  if (U_FAILURE(status)) return absl::InvalidArgumentError(absl::StrCat("NFC normalisation failed: ", u_errorName(status)));
  return out;
}

}  // namespace r1r::tokenizer
