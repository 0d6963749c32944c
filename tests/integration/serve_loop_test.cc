// r1r-serve as a real process over a tiny random model: concurrent clients, input validation at the
// gRPC edge, Rank, /metrics, `r1r compare`, and `r1r eval` on small fixtures in each benchmark's schema
// (rows and PNGs written here; one image missing on purpose).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/data/png_io.h"
#include "common/files/remove_tree.h"
#include "common/rpc/client.h"
#include "r1r/v1/serve.grpc.pb.h"
#include "tests/integration/http_get.h"
#include "tests/integration/process.h"
#include "tests/support/tiny_model_dir.h"

namespace r1r::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

std::string Dir(const std::string& name) {
  // Per process: ctest may run these tests in parallel.
  const std::string dir = ::testing::TempDir() + "/serve_loop_" + name + "_" + std::to_string(getpid());
  EXPECT_TRUE(r1r::files::RemoveTree(dir).ok()) << dir;
  std::filesystem::create_directories(dir);
  return dir;
}

// One tiny model per test process, removed at exit.
struct ModelHolder {
  std::string root = Dir("model");
  test_support::TinyModelDir dir;
  ModelHolder() {
    auto made = test_support::MakeTinyModelDir(root);
    EXPECT_TRUE(made.ok()) << made.status();
    if (made.ok()) dir = *made;
  }
  ~ModelHolder() {
    r1r::files::RemoveTree(root).IgnoreError();
  }
};

const test_support::TinyModelDir& Model() {
  static ModelHolder holder;
  return holder.dir;
}

Process StartServe(const std::string& dir) {
  auto p = Process::Start(BinDir() + "/r1r-serve",
                          {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--model-dir",
                           Model().model_dir, "--max-batch", "8", "--batch-window-ms", "20", "--max-new-tokens", "16",
                           "--data-root", Model().data_dir},
                          dir + "/serve.log", absl::Seconds(120));
  EXPECT_TRUE(p.ok()) << p.status();
  return std::move(*p);
}

rpc::ClientOptions Client(int port) {
  rpc::ClientOptions o;
  o.target = "127.0.0.1:" + std::to_string(port);
  o.timeout = absl::Seconds(120);
  return o;
}

v1::CompareRequest Request(const std::string& question, int votes, uint64_t seed) {
  v1::CompareRequest r;
  r.set_question(question);
  r.set_response1("There are 2 red circles.");
  r.set_response2("There are 3 red circles.");
  r.set_votes(votes);
  r.set_seed(seed);
  return r;
}

grpc::Status Compare(const rpc::ClientOptions& o, const v1::CompareRequest& req, v1::CompareResponse* resp) {
  auto stub = v1::RewardModel::NewStub(*rpc::MakeChannel(o));
  grpc::ClientContext ctx;
  rpc::PrepareContext(ctx, o);
  return stub->Compare(&ctx, req, resp);
}

std::string Cli(const std::string& args) { return CliPath() + " " + args; }

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// The last line of the CLI's stdout as JSON.
json LastJsonLine(const std::string& out) {
  std::string text = out;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const size_t nl = text.rfind('\n');
  return json::parse(nl == std::string::npos ? text : text.substr(nl + 1), nullptr, false);
}

TEST(loop, ServeAnswersConcurrentClientsAndRejectsBadInput) {
  const std::string dir = Dir("concurrent");
  Process serve = StartServe(dir);
  const rpc::ClientOptions o = Client(serve.port());

  // Eight clients at once, each with its own channel.
  std::vector<std::thread> clients;
  std::vector<grpc::Status> status(8);
  std::vector<v1::CompareResponse> answers(8);
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] { status[c] = Compare(o, Request("How many red circles?", 2, 100 + c), &answers[c]); });
  }
  for (auto& t : clients) t.join();
  for (int c = 0; c < 8; ++c) {
    SCOPED_TRACE(c);
    ASSERT_TRUE(status[c].ok()) << status[c].error_message();
    EXPECT_EQ(answers[c].reasoning_size(), 2);
    EXPECT_EQ(answers[c].votes_for_1() + answers[c].votes_for_2() + answers[c].unparsed(), 2);
  }

  struct Bad {
    v1::CompareRequest req;
    std::string field;
    grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT;
  };
  std::vector<Bad> bad;
  bad.push_back({Request(std::string((16 << 10) + 1, 'q'), 1, 0), "question"});
  bad.push_back({Request("q", 33, 0), "votes"});
  bad.push_back({Request("q", 1, 0), "image.png_or_jpeg"});
  bad.back().req.mutable_image()->set_png_or_jpeg("\x89PNG\r\n\x1a\ngarbage");
  bad.push_back({Request("q", 1, 0), "image.path"});
  bad.back().req.mutable_image()->set_path(Model().data_dir + "/missing.png");
  // Outside --data-root: refused before the server looks, whether the file exists or not.
  for (const std::string& outside : {dir + "/missing.png", std::string("/etc/passwd")}) {
    bad.push_back({Request("q", 1, 0), "image.path", grpc::StatusCode::PERMISSION_DENIED});
    bad.back().req.mutable_image()->set_path(outside);
  }
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.field);
    v1::CompareResponse resp;
    const grpc::Status s = Compare(o, b.req, &resp);
    EXPECT_EQ(s.error_code(), b.code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(b.field));
  }

  // Rank over three responses with the server reading the image by path.
  {
    auto stub = v1::RewardModel::NewStub(*rpc::MakeChannel(o));
    v1::RankRequest req;
    req.set_question("How many red circles?");
    for (const char* r : {"One.", "Two.", "Three."}) req.add_responses(r);
    req.mutable_image()->set_path(Model().image_paths.at(0));
    v1::RankResponse resp;
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, o);
    const grpc::Status s = stub->Rank(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.order_size(), 3);
    EXPECT_EQ(resp.best(), resp.order(0));
  }

  auto body = HttpGet(serve.metrics_port(), "/metrics");
  ASSERT_TRUE(body.ok()) << body.status();
  for (const char* metric : {"r1r_serve_compare_seconds_count", "r1r_serve_batch_size_count", "r1r_serve_queue_depth_sequences",
                             "r1r_serve_generated_tokens_total", "r1r_serve_tokens_per_second", "r1r_serve_rank_seconds_count",
                             "outcome=\"invalid\"", "outcome=\"ok\""}) {
    EXPECT_THAT(*body, HasSubstr(metric));
  }

  // The CLI against the endpoint: table and JSON.
  const std::string target = "--target 127.0.0.1:" + std::to_string(serve.port());
  const std::string args = target + " --image " + Model().image_paths.at(1) +
                           " --question 'How many blue squares?' --response1 'One.' --response2 'Two.'";
  CommandResult text = RunCommand(Cli("compare " + args));
  EXPECT_EQ(text.exit_code, 0) << text.out;
  EXPECT_THAT(text.out, HasSubstr("CHOICE"));
  EXPECT_THAT(text.out, HasSubstr("reasoning (sample 1 of 1)"));
  CommandResult js = RunCommand(Cli("compare " + args + " --votes 3 --seed 5 --json"));
  ASSERT_EQ(js.exit_code, 0) << js.out;
  const json j = LastJsonLine(js.out);
  ASSERT_TRUE(j.is_object()) << js.out;
  EXPECT_EQ(j["samples"], 3);
  EXPECT_EQ(j["votes_for_1"].get<int>() + j["votes_for_2"].get<int>() + j["unparsed"].get<int>(), 3);
  EXPECT_TRUE(j.contains("choice") && j.contains("reasoning") && j.contains("policy_version"));
  CommandResult rejected = RunCommand(Cli("compare " + args + " --votes 40"));
  EXPECT_EQ(rejected.exit_code, 5) << rejected.out;  // INVALID_ARGUMENT -> rejected

  // `r1r reload`: a newer published copy is swapped in; going back needs --allow-older.
  const std::string newer = dir + "/published";
  std::filesystem::copy(Model().model_dir, newer, std::filesystem::copy_options::recursive);
  std::ofstream(newer + "/state.json") << R"({"policy_version": 4})";
  CommandResult reloaded = RunCommand(Cli("reload " + target + " --model-dir " + newer + " --json"));
  ASSERT_EQ(reloaded.exit_code, 0) << reloaded.out;
  const json r = LastJsonLine(reloaded.out);
  EXPECT_EQ(r["previous_version"], 0);
  EXPECT_EQ(r["policy_version"], 4);
  const json now = LastJsonLine(RunCommand(Cli("compare " + args + " --json")).out);
  EXPECT_EQ(now["policy_version"], 4);
  EXPECT_EQ(RunCommand(Cli("reload " + target + " --model-dir " + Model().model_dir)).exit_code, 5);
  CommandResult back = RunCommand(Cli("reload " + target + " --model-dir " + Model().model_dir + " --allow-older"));
  EXPECT_EQ(back.exit_code, 0) << back.out;
  EXPECT_THAT(back.out, HasSubstr("TO VERSION"));

  serve.Signal(SIGTERM);
  EXPECT_EQ(serve.Wait(absl::Seconds(30)), 0);
  r1r::files::RemoveTree(dir).IgnoreError();
}

// Fixture rows in the three benchmarks' schemas; images/ has a.png, b.png and c.png, "gone.png" is missing.
void WriteFixtures(const std::string& dir) {
  std::filesystem::create_directories(dir + "/images/short");
  ASSERT_TRUE(data::WritePng(dir + "/images/a.png", data::RgbImage(40, 40, 220, 30, 30)).ok());
  ASSERT_TRUE(data::WritePng(dir + "/images/b.png", data::RgbImage(48, 32, 30, 30, 220)).ok());
  ASSERT_TRUE(data::WritePng(dir + "/images/short/c.png", data::RgbImage(32, 48, 30, 220, 30)).ok());
  auto vl = [](const std::string& id, const std::string& image, int better) {
    return json{{"id", id},
                {"image_path", image},
                {"query", "How many red circles are there?"},
                {"response", json::array({"There are two.", "There are five."})},
                {"human_ranking", better == 0 ? json{0, 1} : json{1, 0}}}
        .dump();
  };
  std::ofstream(dir + "/vlrb.jsonl") << vl("RLAIF-V-1", "a.png", 0) << "\n"
                                     << vl("hallucination_pair-2", "b.png", 0) << "\n"
                                     << vl("mathverse_3", "a.png", 1) << "\n"
                                     << vl("wildvision-battle_4", "b.png", 0) << "\n"
                                     << vl("mmmu-pro_5", "gone.png", 0) << "\n"
                                     << vl("vlfeedback_6", "short/c.png", 0) << "\n";
  json mmrb = json::array();
  for (const auto& [id, image, category, better] :
       std::vector<std::tuple<std::string, std::string, std::string, std::string>>{
           {"nocaps_1", "a.png", "open_generation/correctness_task", "Output1"},
           {"math_2", "b.png", "reasoning", "Output2"},
           {"pairs_3", "gone.png", "safety", "Output1"},
           {"vqa_4", "short/c.png", "vqa", "Output2"}}) {
    mmrb.push_back({{"ID", id}, {"Text", "Describe the image."}, {"Image", image}, {"Output1", "A red shape."},
                    {"Output2", "A blue shape."}, {"Better", better}, {"Category", category}});
  }
  std::ofstream(dir + "/mmrb.json") << mmrb.dump(2);
  auto mm = [](const std::string& id, const std::string& key, const std::string& media) {
    return json{{"id", id}, {key, media}, {"prompt", "Is the shape red?"}, {"chosen", "Yes."}, {"rejected", "No."}}.dump();
  };
  std::ofstream(dir + "/mmrlhf.jsonl") << mm("q1", "image", "short/c.png") << "\n"
                                       << mm("q1", "image", "short/c.png") << "\n"
                                       << mm("q2", "image", "mcq/gone.png") << "\n"
                                       << mm("q3", "video", "video/clip") << "\n"
                                       << mm("q4", "image", "long_a.png") << "\n";
  std::filesystem::copy_file(dir + "/images/a.png", dir + "/images/long_a.png");
}

TEST(loop, EvalCliScoresEachBenchmarkAgainstALiveServe) {
  const std::string dir = Dir("eval");
  WriteFixtures(dir);
  Process serve = StartServe(dir);
  const std::string common = " --images " + dir + "/images --target 127.0.0.1:" + std::to_string(serve.port()) +
                             " --concurrency 3 --seed 3";

  CommandResult vl = RunCommand(Cli("eval --benchmark vl-rewardbench --data " + dir + "/vlrb.jsonl" + common + " --json"));
  ASSERT_EQ(vl.exit_code, 0) << vl.out;
  json j = LastJsonLine(vl.out);
  ASSERT_TRUE(j.is_object()) << vl.out;
  EXPECT_EQ(j["rows"], 6);
  EXPECT_EQ(j["judged"], 5);
  EXPECT_EQ(j["missing_images"], 1);
  for (const char* key : {"overall_accuracy", "macro_accuracy", "official", "official_unparsed_wrong", "r1reward"}) {
    EXPECT_TRUE(j["metrics"].contains(key)) << key << " in " << j.dump();
  }
  // Count-as-wrong keeps every judged row in the denominator.
  EXPECT_EQ(j["metrics"]["official_unparsed_wrong"]["total"], 5);
  for (const char* category : {"general", "hallucination", "reasoning"}) {
    EXPECT_TRUE(j["metrics"]["official"]["categories"].contains(category)) << category;
  }

  CommandResult table = RunCommand(Cli("eval --benchmark vl-rewardbench --data " + dir + "/vlrb.jsonl" + common +
                                       " --votes 3 --limit 4"));
  ASSERT_EQ(table.exit_code, 0) << table.out;
  EXPECT_THAT(table.out, HasSubstr("4 rows, 4 judged, 0 missing images"));
  EXPECT_THAT(table.out, HasSubstr("macro"));
  EXPECT_THAT(table.out, HasSubstr("ACCURACY"));
  EXPECT_THAT(table.out, HasSubstr("any@3"));

  CommandResult mmrb = RunCommand(Cli("eval --benchmark multimodal-rewardbench --data " + dir + "/mmrb.json" + common + " --json"));
  ASSERT_EQ(mmrb.exit_code, 0) << mmrb.out;
  j = LastJsonLine(mmrb.out);
  EXPECT_EQ(j["judged"], 3);
  EXPECT_EQ(j["missing_images"], 1);
  EXPECT_TRUE(j["metrics"].contains("overall_accuracy"));
  EXPECT_TRUE(j["metrics"]["coin_flip"]["buckets"].contains("reasoning/math")) << j.dump();
  EXPECT_TRUE(j["metrics"].contains("ties_wrong"));

  CommandResult mm = RunCommand(Cli("eval --benchmark mm-rlhf-rewardbench --data " + dir + "/mmrlhf.jsonl" + common + " --json"));
  ASSERT_EQ(mm.exit_code, 0) << mm.out;
  j = LastJsonLine(mm.out);
  EXPECT_EQ(j["judged"], 3);
  EXPECT_EQ(j["missing_images"], 1);
  EXPECT_EQ(j["skipped_video"], 1);
  EXPECT_EQ(j["metrics"]["pairs"], 3);
  EXPECT_EQ(j["metrics"]["ids"], 2);  // q1 (two pairs) and q4
  EXPECT_TRUE(j["metrics"].contains("acc") && j["metrics"].contains("acc_plus"));
  EXPECT_TRUE(j["metrics"]["categories"].contains("short"));
  EXPECT_TRUE(j["metrics"]["categories"].contains("long"));

  EXPECT_EQ(RunCommand(Cli("eval --benchmark vl-rewardbench" + common)).exit_code, 2);  // no --data
  EXPECT_EQ(RunCommand(Cli("eval --benchmark nope --data " + dir + "/vlrb.jsonl" + common)).exit_code, 2);

  serve.Signal(SIGTERM);
  EXPECT_EQ(serve.Wait(absl::Seconds(30)), 0);
  r1r::files::RemoveTree(dir).IgnoreError();
}

}  // namespace
}  // namespace r1r::testing
