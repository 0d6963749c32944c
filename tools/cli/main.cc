// r1r: the command-line client. `r1r <verb> --help` lists a verb's flags.
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>

#include "tools/cli/cli_context.h"
#include "tools/cli/compare_command.h"
#include "tools/cli/reload_command.h"
#include "tools/cli/eval_command.h"
#include "tools/cli/demo_command.h"
#include "tools/cli/health_command.h"
#include "tools/cli/job_commands.h"
#include "tools/cli/local_commands.h"

namespace {

struct Verb {
  std::function<int(int, char**)> run;
  const char* help;
};

const std::map<std::string, Verb>& Verbs() {
  static const std::map<std::string, Verb> verbs = {
      {"submit", {r1r::cli::SubmitCommand, "submit a job spec (YAML); --dry-run prints the plan"}},
      {"list", {r1r::cli::ListCommand, "list jobs"}},
      {"status", {r1r::cli::StatusCommand, "show one job with its phases"}},
      {"cancel", {r1r::cli::CancelCommand, "cancel a job"}},
      {"watch", {r1r::cli::WatchCommand, "stream a job's events until it ends"}},
      {"health", {r1r::cli::HealthCommand, "check the gRPC health of one or more servers"}},
      {"demo", {r1r::cli::DemoCommand, "run the whole system on the CPU demo job and print the results"}},
      {"data", {r1r::cli::DataCommand, "synth: write the synthetic dataset; check: validate a dataset file"}},
      {"tokenize", {r1r::cli::TokenizeCommand, "JSONL text <-> ids with a tokenizer.json"}},
      {"compare", {r1r::cli::CompareCommand, "ask r1r-serve which of two responses is better"}},
      {"rank", {r1r::cli::RankCommand, "ask r1r-serve to order several responses, best first"}},
      {"eval", {r1r::cli::EvalCommand, "score r1r-serve on a reward benchmark (VL-RewardBench, ...)"}},
      {"reload", {r1r::cli::ReloadCommand, "make r1r-serve swap in a newly published checkpoint"}},
  };
  return verbs;
}

int Usage(FILE* out) {
  std::fprintf(out, "usage: r1r <verb> [flags]\n\nverbs:\n");
  for (const auto& [name, verb] : Verbs()) std::fprintf(out, "  %-10s %s\n", name.c_str(), verb.help);
  std::fprintf(out,
               "\nexit codes: 0 ok, 1 failed, 2 usage, 3 unavailable, 4 not found, 5 rejected, "
               "6 unauthenticated, 7 cancelled\n");
  return out == stdout ? 0 : r1r::cli::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage(stderr);
  const std::string verb = argv[1];
  if (verb == "help" || verb == "--help" || verb == "-h") return Usage(stdout);
  auto it = Verbs().find(verb);
  if (it == Verbs().end()) {
    std::fprintf(stderr, "r1r: unknown verb '%s'\n", verb.c_str());
    return Usage(stderr);
  }
  return it->second.run(argc, argv);
}
