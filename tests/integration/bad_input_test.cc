// The bad-input corpus (tests/fixtures/bad_inputs) against the real binaries: each input is refused
// with the code it names and within seconds, the process goes on serving (no crash, no hang), and
// nothing outside the service's roots is read, replaced or deleted.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files/remove_tree.h"
#include "common/rpc/client.h"
#include "r1r/v1/actor.grpc.pb.h"
#include "r1r/v1/jobs.grpc.pb.h"
#include "r1r/v1/judge.grpc.pb.h"
#include "r1r/v1/reward.grpc.pb.h"
#include "tests/integration/http_get.h"
#include "tests/integration/process.h"
#include "tests/integration/prometheus_text.h"

namespace r1r::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kFixtures[] = R1R_BAD_INPUTS_DIR;

std::string Fresh(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/bad_input_" + name;
  EXPECT_TRUE(r1r::files::RemoveTree(dir).ok()) << dir;
  fs::create_directories(dir);
  return fs::canonical(dir).string();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

grpc::StatusCode CodeNamed(const std::string& name) {
  static const std::map<std::string, grpc::StatusCode> kCodes = {
      {"INVALID_ARGUMENT", grpc::StatusCode::INVALID_ARGUMENT},
      {"PERMISSION_DENIED", grpc::StatusCode::PERMISSION_DENIED},
      {"FAILED_PRECONDITION", grpc::StatusCode::FAILED_PRECONDITION},
      {"NOT_FOUND", grpc::StatusCode::NOT_FOUND},
      {"DATA_LOSS", grpc::StatusCode::DATA_LOSS},
      {"INTERNAL", grpc::StatusCode::INTERNAL}};
  auto it = kCodes.find(name);
  EXPECT_NE(it, kCodes.end()) << name;
  return it == kCodes.end() ? grpc::StatusCode::UNKNOWN : it->second;
}

Process Start(const std::string& service, const std::string& dir, std::vector<std::string> extra) {
  std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto p = Process::Start(BinDir() + "/r1r-" + service, args, dir + "/" + service + ".log");
  EXPECT_TRUE(p.ok()) << p.status();
  return std::move(*p);
}

// Still running (not exited, not killed by a signal).
bool Alive(const Process& p) { return ::waitpid(p.pid(), nullptr, WNOHANG) == 0; }

rpc::ClientOptions Client(int port) {
  rpc::ClientOptions o;
  o.target = "127.0.0.1:" + std::to_string(port);
  o.timeout = absl::Seconds(20);  // a hang shows up as DEADLINE_EXCEEDED, not as a stuck test
  return o;
}

// The orchestrator's roots under `root`: data/ (with a FIFO, a link out to /etc and a file that must
// survive), work/ and state/.
struct Roots {
  std::string root, data, work, state, sentinel;
};

Roots MakeRoots(const std::string& name) {
  Roots r;
  r.root = Fresh(name);
  r.data = r.root + "/data";
  r.work = r.root + "/work";
  r.state = r.root + "/state";
  fs::create_directories(r.data);
  fs::create_directories(r.work);
  EXPECT_EQ(::mkfifo((r.data + "/fifo.jsonl").c_str(), 0600), 0);
  fs::create_directory_symlink("/etc", r.data + "/escape");
  r.sentinel = r.root + "/precious.txt";
  std::ofstream(r.sentinel) << "not the service's";
  return r;
}

std::string Expand(const std::string& text, const Roots& r) {
  return Replace(Replace(text, "@DATA@", r.data), "@WORK@", r.work);
}

// The orchestrator still answers, and lists only the jobs it accepted.
void ExpectServing(v1::JobService::Stub& stub, const rpc::ClientOptions& c, int jobs) {
  grpc::ClientContext ctx;
  rpc::PrepareContext(ctx, c);
  v1::ListJobsResponse list;
  const grpc::Status s = stub.ListJobs(&ctx, v1::ListJobsRequest(), &list);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(list.jobs_size(), jobs);
}

TEST(bad_input, OrchestratorRefusesEverySpecAndSpecPathOfTheCorpus) {
  const Roots r = MakeRoots("specs");
  Process orch = Start("orchestrator", r.root,
                       {"--state-dir", r.state, "--work-root", r.work, "--data-root", r.data});
  const rpc::ClientOptions c = Client(orch.port());
  auto stub = v1::JobService::NewStub(*rpc::MakeChannel(c));
  int cases = 0;
  auto submit = [&](const v1::SubmitJobRequest& req, grpc::StatusCode want, const std::string& what) {
    SCOPED_TRACE(what);
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, c);
    v1::SubmitJobResponse resp;
    const auto start = std::chrono::steady_clock::now();
    const grpc::Status s = stub->SubmitJob(&ctx, req, &resp);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(s.error_code(), want) << s.error_message();
    EXPECT_LT(seconds, 5.0);                                       // no hang
    EXPECT_THAT(s.error_message(), Not(HasSubstr("root:x:0:0")));  // /etc/passwd is never echoed
    EXPECT_THAT(resp.job().spec_yaml(), Not(HasSubstr("root:x:0:0")));
    EXPECT_TRUE(Alive(orch)) << "the orchestrator died on " << what;
    ++cases;
  };
  for (const auto& entry : fs::directory_iterator(std::string(kFixtures) + "/specs")) {
    const std::string text = ReadAll(entry.path().string());
    std::smatch m;
    ASSERT_TRUE(std::regex_search(text, m, std::regex("# expect: ([A-Z_]+)"))) << entry.path();
    // As the request's text (where protobuf may refuse first: "expect-inline"), then as a file the
    // orchestrator reads from its data root.
    std::smatch inline_m;
    const bool has_inline = std::regex_search(text, inline_m, std::regex("# expect-inline: ([A-Z_]+)"));
    const std::string name = entry.path().filename().string();
    const std::string copy = r.data + "/" + name;
    std::ofstream(copy, std::ios::binary) << Expand(text, r);
    for (bool dry_run : {false, true}) {
      v1::SubmitJobRequest req;
      req.set_spec_yaml(Expand(text, r));
      req.set_dry_run(dry_run);
      submit(req, CodeNamed(has_inline ? inline_m[1].str() : m[1].str()), name + (dry_run ? " (dry run)" : ""));
      v1::SubmitJobRequest by_path;
      by_path.set_spec_path(copy);
      by_path.set_dry_run(dry_run);
      submit(by_path, CodeNamed(m[1]), name + " as spec_path" + (dry_run ? " (dry run)" : ""));
    }
  }
  std::istringstream lines(ReadAll(std::string(kFixtures) + "/spec_paths.txt"));
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const std::string code = line.substr(0, line.find(' '));
    v1::SubmitJobRequest req;
    req.set_spec_path(Expand(line.substr(line.find(' ') + 1), r));
    req.set_dry_run(true);
    submit(req, CodeNamed(code), "spec_path " + req.spec_path());
  }
  EXPECT_GE(cases, 48);
  ExpectServing(*stub, c, 0);
  EXPECT_EQ(ReadAll(r.sentinel), "not the service's");
  EXPECT_FALSE(fs::exists("/tmp/r1r-escape"));
}

TEST(bad_input, OrchestratorQuarantinesCorruptRecordsAndServesTheRest) {
  const Roots r = MakeRoots("records");
  std::string good;
  {
    Process orch = Start("orchestrator", r.root, {"--state-dir", r.state, "--data-root", r.data});
    const rpc::ClientOptions c = Client(orch.port());
    auto stub = v1::JobService::NewStub(*rpc::MakeChannel(c));
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, c);
    v1::SubmitJobRequest req;
    req.set_spec_yaml("name: good\nmodel: {init: tiny}\ndata: {source: synthetic, synthetic_n: 20}\njudge: {backend: rule}\n");
    v1::SubmitJobResponse resp;
    ASSERT_TRUE(stub->SubmitJob(&ctx, req, &resp).ok());
    good = resp.job().id();
    orch.Signal(SIGTERM);
    EXPECT_EQ(orch.Wait(absl::Seconds(20)), 0);
  }
  int corrupt = 0, served = 1;
  for (const auto& entry : fs::directory_iterator(std::string(kFixtures) + "/records")) {
    const std::string name = entry.path().filename().string();
    std::string id;
    if (name.rfind("corrupt-", 0) == 0) {
      id = "job-20260101-000000-00000" + std::to_string(++corrupt);
    } else {
      std::smatch m;
      const std::string text = ReadAll(entry.path().string());
      ASSERT_TRUE(std::regex_search(text, m, std::regex("\"id\":\"(job-[0-9a-f-]+)\""))) << name;
      id = m[1];
      ++served;
    }
    fs::copy_file(entry.path(), r.state + "/jobs/" + id + ".json");
  }
  ASSERT_GE(corrupt, 5);
  Process orch = Start("orchestrator", r.root, {"--state-dir", r.state, "--data-root", r.data});
  const rpc::ClientOptions c = Client(orch.port());
  auto stub = v1::JobService::NewStub(*rpc::MakeChannel(c));
  ExpectServing(*stub, c, served);
  grpc::ClientContext ctx;
  rpc::PrepareContext(ctx, c);
  v1::GetJobRequest get;
  get.set_id(good);
  v1::Job job;
  EXPECT_TRUE(stub->GetJob(&ctx, get, &job).ok());
  EXPECT_EQ(job.name(), "good");
  auto body = HttpGet(orch.metrics_port(), "/metrics");
  ASSERT_TRUE(body.ok()) << body.status();
  auto samples = ParsePrometheusText(*body);
  ASSERT_TRUE(samples.ok()) << samples.status();
  auto q = samples->find("r1r_orchestrator_quarantined_records_total{service=\"orchestrator\"}");
  ASSERT_NE(q, samples->end()) << *body;
  EXPECT_EQ(q->second, corrupt);
  EXPECT_EQ(std::distance(fs::directory_iterator(r.state + "/quarantine"), {}), corrupt);
}

TEST(bad_input, ActorAndRewardRefuseBadRequests) {
  const Roots r = MakeRoots("actor_reward");
  Process actor = Start("actor", r.root, {"--work-root", r.work, "--data-root", r.data});
  auto actor_stub = v1::RolloutActor::NewStub(*rpc::MakeChannel(Client(actor.port())));
  struct Load {
    std::string target, model_dir;
    grpc::StatusCode want;
  };
  for (const Load& l : {Load{"10.255.255.1:50052", r.work + "/job/model", grpc::StatusCode::PERMISSION_DENIED},
                        Load{"attacker.example:443", r.work + "/job/model", grpc::StatusCode::PERMISSION_DENIED},
                        Load{"127.0.0.1:1", "/etc", grpc::StatusCode::PERMISSION_DENIED},
                        Load{"127.0.0.1:1", r.data + "/escape", grpc::StatusCode::PERMISSION_DENIED}}) {
    SCOPED_TRACE(l.target + " " + l.model_dir);
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(actor.port()));
    v1::LoadWeightsRequest req;
    req.set_learner_target(l.target);
    req.set_model_dir(l.model_dir);
    v1::LoadWeightsResponse resp;
    const grpc::Status s = actor_stub->LoadWeights(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), l.want) << s.error_message();
  }
  EXPECT_TRUE(Alive(actor));

  Process reward = Start("reward", r.root, {"--judge-target", "127.0.0.1:1"});
  auto reward_stub = v1::RewardAggregator::NewStub(*rpc::MakeChannel(Client(reward.port())));
  for (float w : {std::numeric_limits<float>::infinity(), 3e38f, std::nanf(""), -1.0f}) {
    SCOPED_TRACE(w);
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(reward.port()));
    v1::ScoreTrajectoriesRequest req;
    auto* t = req.add_trajectories();
    t->mutable_preference()->set_label(1);
    t->set_response_text("<think>x</think><answer>1</answer>");
    req.mutable_weights()->set_use_explicit(true);
    req.mutable_weights()->set_format_weight(w);
    req.mutable_weights()->set_consistency_weight(0.5f);
    v1::ScoreTrajectoriesResponse resp;
    const grpc::Status s = reward_stub->ScoreTrajectories(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  }
  EXPECT_TRUE(Alive(reward));
}

// The referee: empty, oversized and malformed batches are refused naming the field, and it goes on.
TEST(bad_input, JudgeRefusesMalformedBatchesAndGoesOn) {
  const Roots r = MakeRoots("judge");
  Process judge = Start("judge", r.root, {"--backend", "rule"});
  const rpc::ClientOptions c = Client(judge.port());
  auto stub = v1::Judge::NewStub(*rpc::MakeChannel(c));
  auto call = [&](const v1::JudgeBatchRequest& req, v1::JudgeBatchResponse* resp) {
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, c);
    return stub->JudgeBatch(&ctx, req, resp);
  };
  struct Case {
    std::string what, field;
    v1::JudgeBatchRequest req;
  };
  std::vector<Case> cases;
  cases.push_back({"no items", "items", {}});
  cases.push_back({"1025 items", "items", {}});
  for (int i = 0; i < 1025; ++i) cases.back().req.add_items()->set_response("<answer>1</answer>");
  cases.push_back({"long id", "items[0].item_id", {}});
  cases.back().req.add_items()->set_item_id(std::string(257, 'i'));
  cases.back().req.mutable_items(0)->set_response("x");
  cases.push_back({"empty response", "items[0].response", {}});
  cases.back().req.add_items()->set_item_id("a");
  cases.push_back({"response over 64 KiB", "items[1].response", {}});
  cases.back().req.add_items()->set_response("ok");
  cases.back().req.add_items()->set_response(std::string((64 << 10) + 1, 'r'));
  for (const Case& k : cases) {
    SCOPED_TRACE(k.what);
    v1::JudgeBatchResponse resp;
    const grpc::Status s = call(k.req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(k.field));
  }
  // Hostile but well-formed text is judged, not refused: tags nested, unbalanced, or 60 KiB of them.
  v1::JudgeBatchRequest odd;
  odd.add_items()->set_response("<think><think></think><answer><answer>2</answer>");
  std::string many;
  while (many.size() < (60 << 10)) many += "<answer>";
  odd.add_items()->set_response(many);
  v1::JudgeBatchResponse resp;
  const grpc::Status s = call(odd, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.verdicts_size(), 2);
  EXPECT_TRUE(Alive(judge));
}

// The CLI reads the files it is given as regular files of bounded size: a FIFO or a device as the spec
// of `r1r submit` (or the image of `r1r compare`) is refused at once instead of blocking or reading
// without end. `timeout` turns a hang into exit code 124.
TEST(bad_input, CliRefusesFifoAndDeviceAsSpecOrImage) {
  const Roots r = MakeRoots("cli");
  const std::string fifo = r.data + "/fifo.jsonl";
  for (const std::string& spec : {fifo, std::string("/dev/zero"), r.data}) {
    SCOPED_TRACE(spec);
    const CommandResult submit = RunCommand("timeout 20 " + CliPath() + " submit " + spec + " --dry-run", true);
    EXPECT_EQ(submit.exit_code, 5) << submit.out;
    EXPECT_THAT(submit.out, HasSubstr("not a"));  // "not a regular file" / "a directory, not a file"
  }
  const CommandResult compare = RunCommand("timeout 20 " + CliPath() +
                                               " compare --target 127.0.0.1:1 --question q --response1 a --response2 b"
                                               " --image " + fifo, true);
  EXPECT_NE(compare.exit_code, 124) << compare.out;
  EXPECT_THAT(compare.out, HasSubstr("FIFO"));
}

}  // namespace
}  // namespace r1r::testing
