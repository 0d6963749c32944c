// Voting over sampled judgements and best-of-N from pairwise verdicts.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace r1r::serve {

struct VoteTally {
  int choice = 0;  // 1 or 2; 0 when no sample gave a parsable answer
  int votes_for_1 = 0;
  int votes_for_2 = 0;
  int unparsed = 0;
};

// Parses each sample with the R1-Reward rule (eval::ParseChoice: the first <answer> tag read as a number,
// or the last '1' or '2' in the text when there is no tag) and takes the majority; a tie goes to the first
// sample that parsed.
VoteTally TallyVotes(const std::vector<std::string>& sample_texts);
// Same, from already parsed choices (nullopt = unparsed).
VoteTally TallyChoices(const std::vector<std::optional<int>>& choices);

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
