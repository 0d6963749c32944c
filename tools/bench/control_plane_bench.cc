// Control-plane share of an RL step: the part of each step's wall time not spent in model compute
// (learner forward/backward/optimizer as the learner reports it, and generation as the orchestrator
// times the actors' GenerateRollouts calls). Reads a job's event log, e.g. after `r1r demo`:
//
//   control_plane_bench r1r-demo/state/jobs/<job id>.events.jsonl
//
// Prints one row per RL step and the median share. Target: <= 5%. Generation is timed around the
// RPC, so its own RPC overhead counts as model time here: the share is a lower bound.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

// Proto3 JSON writes int64 as a string.
long long Int(const nlohmann::json& j) {
  if (j.is_string()) return std::stoll(j.get<std::string>());
  return j.is_number() ? j.get<long long>() : 0;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: control_plane_bench JOB.events.jsonl\n");
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  std::printf("%5s %9s %9s %9s %9s %9s %9s %8s\n", "step", "step_s", "gen_s", "learn_s", "compute", "reward_s",
              "sync_s", "share");
  std::vector<double> shares;
  for (std::string line; std::getline(in, line);) {
    auto ev = nlohmann::json::parse(line, nullptr, false);
    if (ev.is_discarded() || !ev.contains("progress") || ev.value("phase", "") != "PHASE_RL") continue;
    // Step events only: the phase's closing event repeats the last step's progress.
    if (ev["progress"].value("state", "") != "JOB_STATE_RUNNING") continue;
    const auto& m = ev["progress"]["metrics"];
    if (!m.contains("step_seconds") || !m.contains("learner_compute_seconds")) continue;
    const double step = m["step_seconds"], gen = m["generation_seconds"], learn = m["learner_seconds"];
    const double compute = m["learner_compute_seconds"], reward = m["reward_seconds"], sync = m["weight_sync_seconds"];
    const double share = step > 0 ? (step - gen - compute) / step : 0;
    shares.push_back(share);
    std::printf("%5lld %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %7.2f%%\n",
                Int(ev["progress"].contains("step") ? ev["progress"]["step"] : nlohmann::json()), step, gen, learn, compute, reward, sync,
                100 * share);
  }
  if (shares.empty()) {
    std::fprintf(stderr, "no RL steps with timings in %s\n", argv[1]);
    return 1;
  }
  std::sort(shares.begin(), shares.end());
  std::printf("median control-plane share over %zu steps: %.2f%% (target <= 5%%)\n", shares.size(),
              100 * shares[shares.size() / 2]);
  return 0;
}
