#include "common/eval/judgement.h"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "common/reward/rewards.h"

namespace r1r::eval {
namespace {

// The zero of every Unicode Nd block (each is ten consecutive digits): CPython's float() maps any of
// them to an ASCII digit (_PyUnicode_TransformDecimalAndSpaceToASCII). Generated with Python 3.11's
// unicodedata (660 Nd code points = 66 blocks).
constexpr std::array<char32_t, 66> kDigitZeros = {
    0x30,    0x660,   0x6f0,   0x7c0,   0x966,   0x9e6,   0xa66,   0xae6,   0xb66,   0xbe6,   0xc66,
    0xce6,   0xd66,   0xde6,   0xe50,   0xed0,   0xf20,   0x1040,  0x1090,  0x17e0,  0x1810,  0x1946,
    0x19d0,  0x1a80,  0x1a90,  0x1b50,  0x1bb0,  0x1c40,  0x1c50,  0xa620,  0xa8d0,  0xa900,  0xa9d0,
    0xa9f0,  0xaa50,  0xabf0,  0xff10,  0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0,
    0x11450, 0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60,
    0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0};

// str.isspace() in Python 3.11.
bool IsPythonSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

// One code point from well-formed UTF-8; nullopt on malformed input (a Python str never holds that).
std::optional<char32_t> NextCodePoint(std::string_view s, size_t& pos) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  int len = 0;
  char32_t cp = 0;
  if (b0 < 0x80) {
    len = 1, cp = b0;
  } else if (b0 >= 0xc2 && b0 < 0xe0) {
    len = 2, cp = b0 & 0x1f;
  } else if (b0 >= 0xe0 && b0 < 0xf0) {
    len = 3, cp = b0 & 0x0f;
  } else if (b0 >= 0xf0 && b0 < 0xf5) {
    len = 4, cp = b0 & 0x07;
  } else {
    return std::nullopt;
  }
  if (pos + static_cast<size_t>(len) > s.size()) return std::nullopt;
  for (int i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[pos + static_cast<size_t>(i)]);
    if ((b & 0xc0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3f);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
    return std::nullopt;
  }
  pos += static_cast<size_t>(len);
  return cp;
}

// digitpart: digit (["_"] digit)*, as in Python's float literal grammar. Advances `pos` past it.
bool ConsumeDigits(std::string_view s, size_t& pos, std::string& out) {
  if (pos >= s.size() || !absl::ascii_isdigit(static_cast<unsigned char>(s[pos]))) return false;
  while (pos < s.size()) {
    if (absl::ascii_isdigit(static_cast<unsigned char>(s[pos]))) {
      out += s[pos++];
    } else if (s[pos] == '_' && pos + 1 < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[pos + 1]))) {
      ++pos;
    } else {
      break;
    }
  }
  return true;
}

}  // namespace

std::optional<double> ParsePythonFloat(std::string_view text) {
  // Unicode digits become ASCII digits, Unicode spaces become ' '; any other non-ASCII character fails.
  std::string ascii;
  for (size_t pos = 0; pos < text.size();) {
    const std::optional<char32_t> cp = NextCodePoint(text, pos);
    if (!cp.has_value()) return std::nullopt;
    if (IsPythonSpace(*cp)) {
      ascii += ' ';
      continue;
    }
    if (*cp < 0x80) {
      ascii += static_cast<char>(*cp);
      continue;
    }
    bool digit = false;
    for (char32_t zero : kDigitZeros) {
      if (*cp >= zero && *cp < zero + 10) {
        ascii += static_cast<char>('0' + (*cp - zero));
        digit = true;
        break;
      }
    }
    if (!digit) return std::nullopt;
  }
  std::string_view s = ascii;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  std::string lower(s);
  for (char& c : lower) c = absl::ascii_tolower(static_cast<unsigned char>(c));
  if (lower == "inf" || lower == "infinity") return negative ? -HUGE_VAL : HUGE_VAL;
  if (lower == "nan") return std::numeric_limits<double>::quiet_NaN();
  // [digitpart] ["." [digitpart]] [("e"|"E") ["+"|"-"] digitpart], at least one digit before the exponent.
  std::string number;
  size_t pos = 0;
  const bool int_part = ConsumeDigits(s, pos, number);
  bool frac_part = false;
  if (pos < s.size() && s[pos] == '.') {
    number += s[pos++];
    frac_part = ConsumeDigits(s, pos, number);
  }
  if (!int_part && !frac_part) return std::nullopt;
  if (pos < s.size() && (s[pos] == 'e' || s[pos] == 'E')) {
    number += s[pos++];
    if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) number += s[pos++];
    if (!ConsumeDigits(s, pos, number)) return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  double value = 0.0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (end != number.data() + number.size()) return std::nullopt;
  if (ec == std::errc::result_out_of_range) {
    // Python rounds overflow to inf and underflow to 0; only "is it 1 or 2" matters to the callers, and
    // neither can be out of range.
    value = number.find("e-") != std::string::npos || number.find("E-") != std::string::npos ? 0.0 : HUGE_VAL;
  }
  return negative ? -value : value;
}

std::optional<int> ParseChoice(std::string_view model_output, bool fallback_last_digit) {
  // R1-Reward's scorers: re.search(r"<answer>(.*?)</answer>", DOTALL), then float(content.strip()) == 1.
  // A tag whose content is not a number is unparsed; the text fallback applies only without a tag.
  if (const std::optional<std::string> tagged = reward::ExtractTaggedAnswer(model_output)) {
    const std::optional<double> value = ParsePythonFloat(*tagged);
    if (!value.has_value()) return std::nullopt;
    if (*value == 1.0) return 1;
    if (*value == 2.0) return 2;
    return 0;  // a number naming neither response: a wrong choice
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

ChoiceVotes MajorityChoice(std::span<const std::optional<int>> choices) {
  ChoiceVotes v;
  for (const std::optional<int>& c : choices) {
    if (c == 1) {
      ++v.votes_for_1;
    } else if (c == 2) {
      ++v.votes_for_2;
    } else {
      ++v.unparsed;
    }
  }
  const int64_t k = static_cast<int64_t>(choices.size());
  if (2 * int64_t{v.votes_for_1} > k) v.choice = 1;
  if (2 * int64_t{v.votes_for_2} > k) v.choice = 2;
  return v;
}

Outcome MajorityVote(std::span<const Outcome> samples) {
  // Correct is counted as position 1 and wrong as position 2, so both callers share MajorityChoice's rule.
  std::vector<std::optional<int>> as_choices;
  as_choices.reserve(samples.size());
  for (Outcome o : samples) {
    as_choices.push_back(o == Outcome::kCorrect ? std::optional<int>(1)
                         : o == Outcome::kWrong ? std::optional<int>(2)
                                                : std::nullopt);
  }
  switch (MajorityChoice(as_choices).choice) {
    case 1: return Outcome::kCorrect;
    case 2: return Outcome::kWrong;
    default: return Outcome::kUnparsed;
  }
}

bool AnyCorrect(std::span<const Outcome> samples) {
  for (Outcome o : samples) {
    if (o == Outcome::kCorrect) return true;
  }
  return false;
}

}  // namespace r1r::eval
