// Voting over sampled judgements and best-of-N from pairwise verdicts.
#pragma once

#include <string>
#include <vector>

#include "common/eval/judgement.h"

namespace r1r::serve {

// Parses each sample with the R1-Reward rule (eval::ParseChoice: the first <answer> tag read as a number,
// or the last '1' or '2' in the text when there is no tag) and applies r1r's one voting rule,
// eval::MajorityChoice: a strict majority of all K samples, ties and mostly-unparsed votes left at choice 0.
eval::ChoiceVotes TallyVotes(const std::vector<std::string>& sample_texts);

// One comparison of responses `first` (shown as Response 1) and `second` (Response 2).
struct PairVerdict {
  int first = 0;
  int second = 0;
  int choice = 0;  // 1, 2 or 0 (no verdict: nobody wins)
};

struct Ranking {
  std::vector<int> order;  // indices, best first (more wins first, then lower index)
  std::vector<int> wins;   // per response
  int best = 0;
};

Ranking RankFromVerdicts(int num_responses, const std::vector<PairVerdict>& verdicts);

// Every ordered pair (i, j), i != j: each unordered pair in both positions, to cancel position bias.
std::vector<std::pair<int, int>> AllOrderedPairs(int num_responses);

}  // namespace r1r::serve
