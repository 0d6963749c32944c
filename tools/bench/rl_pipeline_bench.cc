// The advantage + loss pipeline of one rollout (returns, global moments, whitening [+ 3-sigma filter],
// [pre-clipped] PPO loss with diagnostics, backward) on CPU: StableReinforce against plain Reinforce++,
// interleaved repetitions, median process-CPU times, overhead ratio (target <= 1.05) and tokens/s (per CPU
// second of the process).
//
//   rl_pipeline_bench [--seqs 256] [--tokens 1024] [--reps 15] [--threads N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/rl/advantage.h"
#include "common/rl/config.h"
#include "common/rl/loss.h"

namespace {

using r1r::rl::Algorithm;

struct Inputs {
  torch::Tensor reward, mask, logp_old, logp_init;
  int64_t valid_tokens = 0;
};

Inputs MakeInputs(int64_t seqs, int64_t tokens) {
  torch::manual_seed(0);
  Inputs in;
  in.reward = torch::randint(0, 5, {seqs}, torch::kFloat32) * 0.5f;  // {0, 0.5, ..., 2}
  const torch::Tensor lengths = torch::randint(tokens / 4, tokens + 1, {seqs, 1});
  in.mask = torch::arange(tokens).unsqueeze(0) < lengths;
  in.logp_old = -torch::rand({seqs, tokens}) * 3.0f;
  in.logp_init = in.logp_old + torch::randn({seqs, tokens}) * 0.05f;
  in.valid_tokens = in.mask.sum().item<int64_t>();
  return in;
}

// CPU time of this process (all its threads): on a machine shared with other jobs, being preempted does
// not count, which wall time would.
double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Timing {
  double wall = 0.0;
  double cpu = 0.0;
};

Timing RunOnce(const Inputs& in, const r1r::rl::RlAlgorithmConfig& config) {
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = ProcessCpuSeconds();
  const r1r::rl::RolloutBatch batch{in.reward, in.mask, in.logp_old, {}};
  const torch::Tensor returns = r1r::rl::ComputeReturns(batch, config.advantage);
  const r1r::rl::MaskedMoments moments = r1r::rl::ComputeMaskedMoments(returns, in.mask);
  const r1r::rl::WhitenedAdvantages adv = r1r::rl::FinalizeAdvantages(returns, in.mask, moments, config.advantage);
  torch::Tensor logp = in.logp_init.clone().set_requires_grad(true);
  const r1r::rl::PolicyLossResult loss = r1r::rl::PolicyLoss(logp, in.logp_old, adv.advantages, in.mask, config.loss);
  loss.loss.backward();
  const double checksum = logp.grad().sum().item<double>();  // forces the backward to finish
  (void)checksum;
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
          ProcessCpuSeconds() - cpu_start};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

int64_t Flag(int argc, char** argv, const char* name, int64_t fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::atoll(argv[i + 1]);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t seqs = Flag(argc, argv, "--seqs", 256);
  const int64_t tokens = Flag(argc, argv, "--tokens", 1024);
  const int64_t reps = Flag(argc, argv, "--reps", 15);
  const int64_t threads = Flag(argc, argv, "--threads", 0);
  if (threads > 0) at::set_num_threads(static_cast<int>(threads));
  const Inputs in = MakeInputs(seqs, tokens);

  // The first is the baseline and the last the target; the middle ones split the overhead into its parts.
  const std::vector<Algorithm> algorithms = {Algorithm::kReinforcePlusPlus, Algorithm::kStableReinforceNoFilter,
                                             Algorithm::kStableReinforceNoPreClip, Algorithm::kStableReinforce};
  std::vector<std::vector<double>> times(algorithms.size()), wall(algorithms.size());
  for (int warm = 0; warm < 2; ++warm) {
    for (Algorithm a : algorithms) RunOnce(in, r1r::rl::ConfigFor(a));
  }
  for (int64_t r = 0; r < reps; ++r) {
    // Interleave, alternating which goes first, so drift and cache effects hit both equally.
    for (size_t k = 0; k < algorithms.size(); ++k) {
      const size_t i = (static_cast<size_t>(r) + k) % algorithms.size();
      const Timing t = RunOnce(in, r1r::rl::ConfigFor(algorithms[i]));
      times[i].push_back(t.cpu);
      wall[i].push_back(t.wall);
    }
  }

  std::printf("rl_pipeline_bench: %lld sequences x %lld tokens (%lld valid), %lld interleaved reps, %d torch threads\n",
              static_cast<long long>(seqs), static_cast<long long>(tokens), static_cast<long long>(in.valid_tokens),
              static_cast<long long>(reps), at::get_num_threads());
  std::printf("%-28s %10s %10s %12s %16s %8s\n", "algorithm", "cpu_med_ms", "cpu_min_ms", "wall_med_ms",
              "valid_tokens/s", "ratio");
  const double baseline = Median(times[0]);
  for (size_t i = 0; i < algorithms.size(); ++i) {
    const double median = Median(times[i]);
    std::printf("%-28s %10.2f %10.2f %12.2f %16.3e %8.3f\n",
                std::string(r1r::rl::AlgorithmName(algorithms[i])).c_str(), median * 1e3,
                *std::min_element(times[i].begin(), times[i].end()) * 1e3, Median(wall[i]) * 1e3,
                static_cast<double>(in.valid_tokens) / median, median / baseline);
  }
  // Headline: the median over repetitions of the per-repetition ratio; each pair ran back to back, so load
  // from other processes on a shared machine mostly cancels. The ratio of medians and of minima for reference.
  std::vector<double> paired;
  for (size_t r = 0; r < times[0].size(); ++r) paired.push_back(times.back()[r] / times[0][r]);
  const double ratio = Median(paired);
  std::printf("ratio of medians %.3f, ratio of minima %.3f\n", Median(times.back()) / baseline,
              *std::min_element(times.back().begin(), times.back().end()) /
                  *std::min_element(times[0].begin(), times[0].end()));
  std::printf("overhead ratio stable_reinforce / reinforce_pp (median of paired ratios) = %.3f (target <= 1.05): %s\n",
              ratio, ratio <= 1.05 ? "ok" : "ABOVE TARGET");
  return 0;
}
