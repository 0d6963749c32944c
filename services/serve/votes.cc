#include "services/serve/votes.h"

#include <algorithm>
#include <numeric>
#include <optional>

namespace r1r::serve {

eval::ChoiceVotes TallyVotes(const std::vector<std::string>& sample_texts) {
  std::vector<std::optional<int>> choices;
  choices.reserve(sample_texts.size());
  for (const std::string& text : sample_texts) choices.push_back(eval::ParseChoice(text, /*fallback_last_digit=*/true));
  return eval::MajorityChoice(choices);
}

Ranking RankFromVerdicts(int num_responses, const std::vector<PairVerdict>& verdicts) {
  Ranking r;
  r.wins.assign(static_cast<size_t>(std::max(0, num_responses)), 0);
  for (const PairVerdict& v : verdicts) {
    const int winner = v.choice == 1 ? v.first : v.choice == 2 ? v.second : -1;
    if (winner >= 0 && winner < num_responses) ++r.wins[static_cast<size_t>(winner)];
  }
  r.order.resize(r.wins.size());
  std::iota(r.order.begin(), r.order.end(), 0);
  std::stable_sort(r.order.begin(), r.order.end(),
                   [&](int a, int b) { return r.wins[static_cast<size_t>(a)] > r.wins[static_cast<size_t>(b)]; });
  r.best = r.order.empty() ? 0 : r.order.front();
  return r;
}

std::vector<std::pair<int, int>> AllOrderedPairs(int num_responses) {
  std::vector<std::pair<int, int>> pairs;
  for (int i = 0; i < num_responses; ++i) {
    for (int j = i + 1; j < num_responses; ++j) {
      pairs.emplace_back(i, j);
      pairs.emplace_back(j, i);
    }
  }
  return pairs;
}

}  // namespace r1r::serve
