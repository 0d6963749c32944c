#include "common/tokenizer/added_tokens.h"

#include <algorithm>

namespace r1r::tokenizer {

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) {
  for (const AddedToken& t : tokens) {
    if (t.content.empty()) continue;
    by_first_byte_[static_cast<uint8_t>(t.content[0])].push_back({t.content, t.id});
  }
  for (auto& list : by_first_byte_) {
    std::stable_sort(list.begin(), list.end(),
                     [](const Candidate& a, const Candidate& b) { return a.content.size() > b.content.size(); });
  }
}

std::vector<Segment> AddedTokenMatcher::Split(std::string_view text) const {
  std::vector<Segment> segments;
  size_t plain_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const auto& candidates = by_first_byte_[static_cast<uint8_t>(text[pos])];
    const Candidate* hit = nullptr;
    for (const Candidate& c : candidates) {
      if (text.compare(pos, c.content.size(), c.content) == 0) {
        hit = &c;
        break;
      }
    }
    if (hit == nullptr) {
      ++pos;
      continue;
    }
    if (pos > plain_start) segments.push_back({text.substr(plain_start, pos - plain_start), -1});
    segments.push_back({text.substr(pos, hit->content.size()), hit->id});
    pos += hit->content.size();
    plain_start = pos;
  }
  if (plain_start < text.size()) segments.push_back({text.substr(plain_start), -1});
  return segments;
}

}  // namespace r1r::tokenizer
