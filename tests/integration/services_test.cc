// Real processes on loopback with ephemeral ports: every binary serves health and /metrics and
// stops cleanly on SIGTERM; jobs survive kill -9 of the orchestrator; the CLI's exit codes hold.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files/remove_tree.h"
#include "tests/integration/http_get.h"
#include "tests/integration/process.h"
#include "tests/integration/prometheus_text.h"

namespace r1r::testing {
namespace {

using ::testing::HasSubstr;

std::string TempDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/services_" + name;
  EXPECT_TRUE(r1r::files::RemoveTree(dir).ok()) << dir;
  std::filesystem::create_directories(dir);
  return dir;
}

std::vector<std::string> Args(const std::string& service, const std::string& dir) {
  std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"};
  if (service == "orchestrator") {
    args.push_back("--state-dir");
    args.push_back(dir + "/state");
  }
  return args;
}

Process StartService(const std::string& service, const std::string& dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = Args(service, dir);
  args.insert(args.end(), extra.begin(), extra.end());
  auto p = Process::Start(BinDir() + "/r1r-" + service, args, dir + "/" + service + ".log");
  EXPECT_TRUE(p.ok()) << p.status();
  return std::move(*p);
}

std::string Cli(const std::string& args) { return CliPath() + " " + args; }

constexpr char kJob[] = R"(name: survive
model: {init: tiny}
data: {source: synthetic, synthetic_n: 20}
judge: {backend: rule}
)";

TEST(services, EveryBinaryAnswersHealthServesMetricsAndStopsOnSigterm) {
  const std::string dir = TempDir("all");
  for (const std::string service : {"orchestrator", "actor", "judge", "reward", "learner", "serve"}) {
    SCOPED_TRACE(service);
    Process p = StartService(service, dir);
    const CommandResult health = RunCommand(Cli("health --target 127.0.0.1:" + std::to_string(p.port())));
    EXPECT_EQ(health.exit_code, 0) << health.out;
    EXPECT_THAT(health.out, HasSubstr("SERVING"));

    auto body = HttpGet(p.metrics_port(), "/metrics");
    ASSERT_TRUE(body.ok()) << body.status();
    auto samples = ParsePrometheusText(*body);
    ASSERT_TRUE(samples.ok()) << samples.status() << "\n" << *body;
    auto up = samples->find("r1r_up{service=\"" + service + "\"}");
    ASSERT_NE(up, samples->end()) << *body;
    EXPECT_EQ(up->second, 1.0);
    auto rss = samples->find("process_resident_memory_bytes{service=\"" + service + "\"}");
    ASSERT_NE(rss, samples->end());
    EXPECT_GT(rss->second, 1e6);

    p.Signal(SIGTERM);
    EXPECT_EQ(p.Wait(absl::Seconds(20)), 0) << "did not stop cleanly on SIGTERM";
  }
}

TEST(services, SubmittedJobSurvivesKill9AndRestart) {
  const std::string dir = TempDir("kill9");
  std::ofstream(dir + "/job.yaml") << kJob;
  std::string id;
  {
    Process orch = StartService("orchestrator", dir);
    const std::string target = " --target 127.0.0.1:" + std::to_string(orch.port());
    CommandResult submit = RunCommand(Cli("submit " + dir + "/job.yaml" + target));
    ASSERT_EQ(submit.exit_code, 0) << submit.out;
    id = submit.out.substr(0, submit.out.find('\n'));
    ASSERT_EQ(id.size(), 26u) << submit.out;
    orch.Signal(SIGKILL);
    EXPECT_EQ(orch.Wait(absl::Seconds(10)), 128 + SIGKILL);
  }
  Process orch = StartService("orchestrator", dir);
  const std::string target = " --target 127.0.0.1:" + std::to_string(orch.port());
  CommandResult status = RunCommand(Cli("status " + id + " --json" + target));
  ASSERT_EQ(status.exit_code, 0) << status.out;
  EXPECT_THAT(status.out, HasSubstr("\"id\":\"" + id + "\""));
  EXPECT_THAT(status.out, HasSubstr("\"name\":\"survive\""));
  EXPECT_THAT(status.out, HasSubstr("\"state\":\"JOB_STATE_QUEUED\""));
  CommandResult list = RunCommand(Cli("list" + target));
  EXPECT_THAT(list.out, HasSubstr(id));
  EXPECT_EQ(RunCommand(Cli("status job-20200101-000000-000000" + target)).exit_code, 4);
}

TEST(services, DataSynthWritesTheAskedQuestionKinds) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("r1r_synth_cli_" + std::to_string(::getpid()))).string();
  EXPECT_TRUE(r1r::files::RemoveTree(dir).ok()) << dir;
  const CommandResult ok = RunCommand(
      Cli("data synth --out " + dir + " --n 20 --seed 4 --questions all --grid 2 --max-count 3 --trace tally"), true);
  ASSERT_EQ(ok.exit_code, 0) << ok.out;
  std::ifstream pairs(dir + "/pairs.jsonl");
  std::string line;
  int rows = 0;
  while (std::getline(pairs, line)) {
    ++rows;
    EXPECT_THAT(line, HasSubstr("How many shapes are in the image?"));
    EXPECT_THAT(line, HasSubstr("in the image one by one: 1"));  // the tally trace
  }
  EXPECT_EQ(rows, 20);
  std::ifstream manifest(dir + "/manifest.json");
  std::stringstream manifest_text;
  manifest_text << manifest.rdbuf();
  EXPECT_THAT(manifest_text.str(), HasSubstr("\"grid\": 2"));
  EXPECT_THAT(manifest_text.str(), HasSubstr("\"max_count\": 3"));
  const CommandResult crowded =
      RunCommand(Cli("data synth --out " + dir + "3 --n 2 --grid 2 --max-count 4 --questions colour"), true);
  EXPECT_NE(crowded.exit_code, 0);  // 4 counted shapes and up to 4 others do not fit in 4 cells
  EXPECT_THAT(crowded.out, HasSubstr("max_count + max_distractors <= grid * grid"));
  const CommandResult bad = RunCommand(Cli("data synth --out " + dir + "2 --n 2 --questions size"), true);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.out, HasSubstr("must be colour_shape, colour or all, got 'size'"));
  r1r::files::RemoveTree(dir).IgnoreError();
  r1r::files::RemoveTree(dir + "2").IgnoreError();
  r1r::files::RemoveTree(dir + "3").IgnoreError();
}

TEST(services, CliExitCodesForAuthAndBadSpecs) {
  const std::string dir = TempDir("auth");
  std::ofstream(dir + "/token") << "t0ken\n";
  std::ofstream(dir + "/bad.yaml") << kJob << "rl: {eps_clip: 1.5}\n";
  Process orch = StartService("orchestrator", dir, {"--auth-token-file", dir + "/token"});
  const std::string target = " --target 127.0.0.1:" + std::to_string(orch.port());
  CommandResult no_token = RunCommand("env -u R1R_AUTH_TOKEN " + Cli("list" + target), true);
  EXPECT_EQ(no_token.exit_code, 6) << no_token.out;
  EXPECT_THAT(no_token.out, HasSubstr("missing 'authorization"));
  EXPECT_EQ(RunCommand("R1R_AUTH_TOKEN=wrong " + Cli("list" + target)).exit_code, 6);
  EXPECT_EQ(RunCommand("R1R_AUTH_TOKEN=t0ken " + Cli("list" + target)).exit_code, 0);
  EXPECT_EQ(RunCommand(Cli("list --token-file " + dir + "/token" + target)).exit_code, 0);
  EXPECT_EQ(RunCommand("env -u R1R_AUTH_TOKEN " + Cli("health" + target)).exit_code, 0);
  CommandResult bad = RunCommand(Cli("submit " + dir + "/bad.yaml --token-file " + dir + "/token" + target), true);
  EXPECT_EQ(bad.exit_code, 5) << bad.out;
  EXPECT_THAT(bad.out, HasSubstr("rl.eps_clip: must be in (0, 1), got 1.5"));
  EXPECT_EQ(RunCommand(Cli("frobnicate")).exit_code, 2);
  EXPECT_EQ(RunCommand(Cli("list --target 127.0.0.1:1 --timeout 1")).exit_code, 3);
}

TEST(services, CudaGraphsOnACpuDeviceAreRefusedByName) {
  const std::string dir = TempDir("cuda_graphs");
  const std::string listen = " --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --cuda-graphs";
  CommandResult actor = RunCommand(BinDir() + "/r1r-actor" + listen, true);
  EXPECT_NE(actor.exit_code, 0) << actor.out;
  EXPECT_THAT(actor.out, HasSubstr("--cuda-graphs needs --device cuda (it is cpu)"));
  CommandResult serve = RunCommand(BinDir() + "/r1r-serve" + listen + " --model-dir " + dir, true);
  EXPECT_NE(serve.exit_code, 0) << serve.out;
  EXPECT_THAT(serve.out, HasSubstr("--cuda-graphs needs --device cuda (it is cpu)"));
}

}  // namespace
}  // namespace r1r::testing
