// Request-size limits, shared by the services that enforce them and the clients that split work to fit.
#pragma once

#include <cstddef>

namespace r1r::rpc {

inline constexpr int kMaxPromptsPerGenerate = 1024;    // r1r-actor GenerateRollouts
inline constexpr int kMaxTrajectoriesPerScore = 4096;  // r1r-reward ScoreTrajectories
inline constexpr int kMaxExamplesPerStep = 4096;       // r1r-learner SftStep examples, RlStep trajectories
// One text field of a request: a question, a response, an SFT target, a reasoning trace.
inline constexpr size_t kMaxTextBytes = 64 << 10;
// Token ids in one prompt or one response, and sampling.max_new_tokens.
inline constexpr int kMaxTokensPerSequence = 32768;
// A path a request names (an image, a model or export directory).
inline constexpr size_t kMaxPathBytes = 4096;
// A job spec (r1r-orchestrator SubmitJob, and the file `r1r submit` reads).
inline constexpr size_t kMaxSpecBytes = 1 << 20;

}  // namespace r1r::rpc
