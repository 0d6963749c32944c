// Request-size limits, shared by the services that enforce them and the clients that split work to fit.
#pragma once

namespace r1r::rpc {

inline constexpr int kMaxPromptsPerGenerate = 1024;    // r1r-actor GenerateRollouts
inline constexpr int kMaxTrajectoriesPerScore = 4096;  // r1r-reward ScoreTrajectories

}  // namespace r1r::rpc
