#include "tools/cli/compare_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include <absl/strings/str_cat.h>
#include <nlohmann/json.hpp>

#include "common/config/flags.h"
#include "common/rpc/status.h"
#include "tools/cli/cli_context.h"
#include "tools/cli/reward_client.h"
#include "tools/cli/table.h"

namespace r1r::cli {

int CompareCommand(int argc, char** argv) {
  config::Flags f;
  AddClientFlags(f, "127.0.0.1:50056");
  f.Value("timeout", "600", "seconds per call (generation on a CPU is slow)")
      .Value("image", "", "PNG or JPEG file, sent inline (omit for a text-only question)")
      .Value("question", "", "the question both responses answer")
      .Value("response1", "", "first candidate response")
      .Value("response2", "", "second candidate response")
      .Value("votes", "1", "K samples for voting@K (1 = one greedy answer)")
      .Value("temperature", "1.0", "sampling temperature when K > 1")
      .Value("seed", "0", "sampling seed (sample k uses seed + k)")
      .Value("max-new-tokens", "0", "generation budget per sample (0 = the server's default)")
      .Switch("help", "print this help");
  const std::string usage =
      "r1r compare [--image PATH] --question Q --response1 A --response2 B [--votes K] [--temperature T] "
      "[--target host:port] [--json]";
  if (std::optional<int> stop = ParseVerbFlags(f, argc, argv, usage)) return *stop;
  if (f.Get("question").empty() || f.Get("response1").empty() || f.Get("response2").empty()) {
    std::fprintf(stderr, "--question, --response1 and --response2 are required\nusage: %s\n%s", usage.c_str(),
                 f.Help().c_str());
    return kExitUsage;
  }
  auto votes = f.GetInt("votes");
  auto temperature = f.GetDouble("temperature");
  auto seed = f.GetInt("seed");
  auto max_new = f.GetInt("max-new-tokens");
  for (const absl::Status& s : {votes.status(), temperature.status(), seed.status(), max_new.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return kExitUsage;
    }
  }
  v1::CompareRequest req;
  req.set_question(f.Get("question"));
  req.set_response1(f.Get("response1"));
  req.set_response2(f.Get("response2"));
  req.set_votes(static_cast<int32_t>(*votes));
  req.set_temperature(static_cast<float>(*temperature));
  req.set_seed(static_cast<uint64_t>(*seed));
  req.set_max_new_tokens(static_cast<int32_t>(*max_new));
  if (!f.Get("image").empty()) {
    auto bytes = ReadFileBytes(f.Get("image"));
    if (!bytes.ok()) return Fail(bytes.status());
    req.mutable_image()->set_png_or_jpeg(*std::move(bytes));
  }
  auto ctx = MakeContext(f);
  if (!ctx.ok()) return Fail(ctx.status());
  auto stub = v1::RewardModel::NewStub(ctx->channel);
  auto resp = CallCompare(*stub, ctx->options, req);
  if (!resp.ok()) return Fail(resp.status());
  const std::string first_reasoning = resp->reasoning_size() > 0 ? resp->reasoning(0) : "";
  if (ctx->json) {
    nlohmann::json j = {{"choice", resp->choice()},
                        {"votes_for_1", resp->votes_for_1()},
                        {"votes_for_2", resp->votes_for_2()},
                        {"unparsed", resp->unparsed()},
                        {"samples", resp->reasoning_size()},
                        {"policy_version", resp->policy_version()},
                        {"seconds", resp->seconds()},
                        {"reasoning", first_reasoning}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return kExitOk;
  }
  Table t({"CHOICE", "VOTES 1", "VOTES 2", "UNPARSED", "POLICY", "SECONDS"});
  t.Add({resp->choice() == 0 ? "none" : absl::StrCat("Response ", resp->choice()), absl::StrCat(resp->votes_for_1()),
         absl::StrCat(resp->votes_for_2()), absl::StrCat(resp->unparsed()), absl::StrCat(resp->policy_version()),
         absl::StrCat(resp->seconds())});
  std::printf("%s\nreasoning (sample 1 of %d):\n%s\n", t.Render().c_str(), resp->reasoning_size(),
              first_reasoning.c_str());
  return kExitOk;
}

int RankCommand(int argc, char** argv) {
  config::Flags f;
  AddClientFlags(f, "127.0.0.1:50056");
  f.Value("timeout", "600", "seconds per call (generation on a CPU is slow)")
      .Value("image", "", "PNG or JPEG file, sent inline (omit for a text-only question)")
      .Value("question", "", "the question every response answers")
      .Value("votes", "1", "K samples per pair for voting@K (1 = one greedy answer)")
      .Value("temperature", "1.0", "sampling temperature when K > 1")
      .Value("seed", "0", "sampling seed")
      .Switch("help", "print this help");
  const std::string usage =
      "r1r rank --question Q [--image PATH] [--votes K] [--target host:port] [--json] RESPONSE RESPONSE [...]";
  if (std::optional<int> stop = ParseVerbFlags(f, argc, argv, usage)) return *stop;
  const std::vector<std::string>& responses = f.positionals();
  if (f.Get("question").empty() || responses.size() < 2 || responses.size() > 16) {
    std::fprintf(stderr, "--question and 2..16 responses are required\nusage: %s\n%s", usage.c_str(),
                 f.Help().c_str());
    return kExitUsage;
  }
  auto votes = f.GetInt("votes");
  auto temperature = f.GetDouble("temperature");
  auto seed = f.GetInt("seed");
  for (const absl::Status& s : {votes.status(), temperature.status(), seed.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return kExitUsage;
    }
  }
  v1::RankRequest req;
  req.set_question(f.Get("question"));
  for (const std::string& r : responses) req.add_responses(r);
  req.set_votes(static_cast<int32_t>(*votes));
  req.set_temperature(static_cast<float>(*temperature));
  req.set_seed(static_cast<uint64_t>(*seed));
  if (!f.Get("image").empty()) {
    auto bytes = ReadFileBytes(f.Get("image"));
    if (!bytes.ok()) return Fail(bytes.status());
    req.mutable_image()->set_png_or_jpeg(*std::move(bytes));
  }
  auto ctx = MakeContext(f);
  if (!ctx.ok()) return Fail(ctx.status());
  auto stub = v1::RewardModel::NewStub(ctx->channel);
  v1::RankResponse resp;
  const grpc::Status st = rpc::CallWithRetry(ctx->options, rpc::RetryPolicy{}, [&](grpc::ClientContext& c) {
    return stub->Rank(&c, req, &resp);
  });
  if (!st.ok()) return Fail(rpc::FromGrpc(st));
  if (ctx->json) {
    nlohmann::json j = {{"order", std::vector<int>(resp.order().begin(), resp.order().end())},
                        {"wins", std::vector<int>(resp.wins().begin(), resp.wins().end())},
                        {"best", resp.best()}};
    std::printf("%s\n", j.dump().c_str());
    return kExitOk;
  }
  Table t({"RANK", "RESPONSE", "WINS"});
  for (int i = 0; i < resp.order_size(); ++i) {
    const int index = resp.order(i);
    const std::string wins = index >= 0 && index < resp.wins_size() ? absl::StrCat(resp.wins(index)) : "?";
    t.Add({absl::StrCat(i + 1), absl::StrCat(index + 1), wins});
  }
  std::printf("%s", t.Render().c_str());
  return kExitOk;
}

}  // namespace r1r::cli
