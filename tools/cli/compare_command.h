#pragma once

namespace r1r::cli {

// `r1r compare --image PATH --question Q --response1 A --response2 B [--votes K] [--temperature T]
// [--seed S] [--target host:port] [--json]`: asks r1r-serve which response is better and prints the
// choice, the votes and the first sample's reasoning.
int CompareCommand(int argc, char** argv);

// `r1r rank --question Q [--image PATH] [--votes K] RESPONSE RESPONSE [...]`: asks r1r-serve to order
// 2..16 responses (pairwise comparisons) and prints the order, best first, with each one's wins.
int RankCommand(int argc, char** argv);

}  // namespace r1r::cli
