// The RewardModel service over a tiny random model, in-process: response structure and vote
// invariants, determinism, batched == unbatched, images inline and by path, Rank, policy version.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files/remove_tree.h"
#include "services/serve/serve_service.h"
#include "services/serve/votes.h"
#include "tests/support/tiny_model_dir.h"

namespace r1r::serve {
namespace {

// One tiny model per test process, removed at exit.
struct TinyHolder {
  std::string root;
  test_support::TinyModelDir dir;
  TinyHolder() : root(::testing::TempDir() + "/serve_model_test_" + std::to_string(getpid())) {
    EXPECT_TRUE(r1r::files::RemoveTree(root).ok()) << root;
    auto made = test_support::MakeTinyModelDir(root);
    EXPECT_TRUE(made.ok()) << made.status();
    if (made.ok()) dir = *made;
  }
  ~TinyHolder() {
    r1r::files::RemoveTree(root).IgnoreError();
  }
};

const test_support::TinyModelDir& Tiny() {
  static TinyHolder holder;
  return holder.dir;
}

std::unique_ptr<RewardModelServiceImpl> Service(int max_batch, absl::Duration window, std::string model_dir = "") {
  ServeOptions o;
  o.model_dir = model_dir.empty() ? Tiny().model_dir : model_dir;
  o.batching = BatcherOptions{.max_batch = max_batch, .window = window};
  o.default_max_new_tokens = 24;
  o.limits.image_roots = *files::Roots::Make({{"data-root", Tiny().data_dir}});  // the tiny images
  auto s = RewardModelServiceImpl::Create(o, nullptr);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

v1::CompareRequest Request(int votes, uint64_t seed, const std::string& question = "How many red circles are there?") {
  v1::CompareRequest r;
  r.set_question(question);
  r.set_response1("There are 2 red circles.");
  r.set_response2("There are 3 red circles.");
  r.set_votes(votes);
  r.set_temperature(1.0f);
  r.set_seed(seed);
  return r;
}

std::vector<std::string> Reasoning(const v1::CompareResponse& r) { return {r.reasoning().begin(), r.reasoning().end()}; }

TEST(serve, CompareReturnsOneSamplePerVoteAndConsistentCounts) {
  auto service = Service(8, absl::Milliseconds(1));
  ASSERT_NE(service, nullptr);
  auto r = service->DoCompare(Request(5, 11));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->reasoning_size(), 5);
  EXPECT_EQ(r->votes_for_1() + r->votes_for_2() + r->unparsed(), 5);
  EXPECT_EQ(r->policy_version(), 0);
  EXPECT_GT(r->seconds(), 0.0);
  // The choice is what the tally of the returned texts says.
  const eval::ChoiceVotes t = TallyVotes(Reasoning(*r));
  EXPECT_EQ(r->choice(), t.choice);
  EXPECT_EQ(r->votes_for_1(), t.votes_for_1);
  EXPECT_EQ(r->unparsed(), t.unparsed);
  // A strict majority of the 5 samples, or none.
  EXPECT_EQ(r->choice(), r->votes_for_1() >= 3 ? 1 : r->votes_for_2() >= 3 ? 2 : 0);
  // Sampled votes differ from each other (different per-sample seeds) on a random model.
  const auto texts = Reasoning(*r);
  EXPECT_GT(std::set<std::string>(texts.begin(), texts.end()).size(), 1u);

  // votes 0 and 1: one greedy sample.
  auto greedy = service->DoCompare(Request(0, 11));
  ASSERT_TRUE(greedy.ok()) << greedy.status();
  EXPECT_EQ(greedy->reasoning_size(), 1);
}

TEST(serve, CompareIsDeterministicInTheSeedAndGreedyIsSeedFree) {
  auto service = Service(8, absl::Milliseconds(1));
  ASSERT_NE(service, nullptr);
  auto a = service->DoCompare(Request(4, 3));
  auto b = service->DoCompare(Request(4, 3));
  auto c = service->DoCompare(Request(4, 4));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(Reasoning(*a), Reasoning(*b));
  EXPECT_NE(Reasoning(*a), Reasoning(*c));
  // Seeds are per sample (seed + k): seed 4's first sample is seed 3's second.
  EXPECT_EQ(a->reasoning(1), c->reasoning(0));
  auto g1 = service->DoCompare(Request(1, 1));
  auto g2 = service->DoCompare(Request(1, 999));
  ASSERT_TRUE(g1.ok() && g2.ok());
  EXPECT_EQ(Reasoning(*g1), Reasoning(*g2));
}

TEST(serve, BatchedResultsEqualUnbatchedOnes) {
  auto unbatched = Service(1, absl::ZeroDuration());
  auto batched = Service(16, absl::Milliseconds(500));
  ASSERT_NE(unbatched, nullptr);
  ASSERT_NE(batched, nullptr);
  const std::vector<v1::CompareRequest> requests = {
      Request(1, 0), Request(3, 5, "Which one?"), Request(2, 9, "How many blue squares are in the image?"),
      Request(1, 0, "Count the triangles.")};
  std::vector<absl::StatusOr<v1::CompareResponse>> together(requests.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < requests.size(); ++i) {
    threads.emplace_back([&, i] { together[i] = batched->DoCompare(requests[i]); });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < requests.size(); ++i) {
    SCOPED_TRACE(i);
    auto alone = unbatched->DoCompare(requests[i]);
    ASSERT_TRUE(alone.ok()) << alone.status();
    ASSERT_TRUE(together[i].ok()) << together[i].status();
    EXPECT_EQ(Reasoning(*alone), Reasoning(*together[i]));
    EXPECT_EQ(alone->choice(), together[i]->choice());
  }
}

TEST(serve, ImagesInlineAndByPathGiveTheSameAnswer) {
  auto service = Service(8, absl::Milliseconds(1));
  ASSERT_NE(service, nullptr);
  ASSERT_FALSE(Tiny().image_paths.empty());
  auto by_path = Request(2, 5);
  by_path.mutable_image()->set_path(Tiny().image_paths[0]);
  auto inline_bytes = Request(2, 5);
  std::ifstream in(Tiny().image_paths[0], std::ios::binary);
  const std::string png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string* bytes = &png;
  ASSERT_GT(bytes->size(), 8u);
  inline_bytes.mutable_image()->set_png_or_jpeg(*bytes);
  auto a = service->DoCompare(by_path);
  auto b = service->DoCompare(inline_bytes);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(Reasoning(*a), Reasoning(*b));
  // The image is part of the prompt: another image (or none) changes the greedy text.
  auto text_only = service->DoCompare(Request(1, 5));
  auto with_image = Request(1, 5);
  with_image.mutable_image()->set_path(Tiny().image_paths[0]);
  auto image_answer = service->DoCompare(with_image);
  ASSERT_TRUE(text_only.ok() && image_answer.ok());
  EXPECT_NE(Reasoning(*text_only), Reasoning(*image_answer));

  auto corrupt = Request(1, 5);
  corrupt.mutable_image()->set_png_or_jpeg(bytes->substr(0, bytes->size() / 2));
  const absl::Status s = service->DoCompare(corrupt).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("image.png_or_jpeg"));
  auto big = Request(33, 5);
  EXPECT_TRUE(absl::IsInvalidArgument(service->DoCompare(big).status()));
}

TEST(serve, RankJudgesEveryPairInBothOrders) {
  auto service = Service(16, absl::Milliseconds(1));
  ASSERT_NE(service, nullptr);
  v1::RankRequest req;
  req.set_question("How many red circles are there?");
  for (const char* r : {"There is 1.", "There are 2.", "There are 3.", "None."}) req.add_responses(r);
  req.set_votes(1);
  auto r = service->DoRank(req);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->order_size(), 4);
  ASSERT_EQ(r->wins_size(), 4);
  EXPECT_THAT(std::vector<int>(r->order().begin(), r->order().end()), ::testing::UnorderedElementsAre(0, 1, 2, 3));
  int wins = 0;
  for (int w : r->wins()) wins += w;
  EXPECT_LE(wins, 12);  // 4 x 3 ordered pairs, each one winner at most
  EXPECT_EQ(r->best(), r->order(0));
  for (int i = 1; i < 4; ++i) EXPECT_GE(r->wins(r->order(i - 1)), r->wins(r->order(i)));
  // Rank is Compare over every ordered pair, aggregated.
  std::vector<PairVerdict> verdicts;
  for (const auto& [a, b] : AllOrderedPairs(4)) {
    v1::CompareRequest pair = Request(1, 0, req.question());
    pair.set_response1(req.responses(a));
    pair.set_response2(req.responses(b));
    auto c = service->DoCompare(pair);
    ASSERT_TRUE(c.ok()) << c.status();
    verdicts.push_back(PairVerdict{a, b, c->choice()});
  }
  const Ranking expected = RankFromVerdicts(4, verdicts);
  EXPECT_EQ(std::vector<int>(r->wins().begin(), r->wins().end()), expected.wins);
  EXPECT_EQ(std::vector<int>(r->order().begin(), r->order().end()), expected.order);
}

TEST(serve, PolicyVersionComesFromStateJson) {
  const std::string dir = ::testing::TempDir() + "/serve_versioned_" + std::to_string(getpid());
  EXPECT_TRUE(r1r::files::RemoveTree(dir).ok()) << dir;
  std::filesystem::copy(Tiny().model_dir, dir, std::filesystem::copy_options::recursive);
  std::ofstream(dir + "/state.json") << R"({"policy_version": 7, "phase": "rl", "step": 12})";
  EXPECT_EQ(*ReadPolicyVersion(dir), 7);
  auto service = Service(4, absl::Milliseconds(1), dir);
  ASSERT_NE(service, nullptr);
  auto r = service->DoCompare(Request(1, 0));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->policy_version(), 7);
  std::ofstream(dir + "/state.json") << "{not json";
  EXPECT_FALSE(ReadPolicyVersion(dir).ok());
  EXPECT_EQ(*ReadPolicyVersion(Tiny().model_dir), 0);
  r1r::files::RemoveTree(dir).IgnoreError();
}

TEST(serve, MissingModelDirFailsToLoadWithThePath) {
  ServeOptions o;
  o.model_dir = ::testing::TempDir() + "/no_such_model";
  auto s = RewardModelServiceImpl::Create(o, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), ::testing::HasSubstr("no_such_model"));
}

// A copy of the shared tiny model (or, with weights_seed, the same vocabulary with other weights) that
// says it is `version`.
std::string VersionedModel(const std::string& name, int64_t version, uint64_t weights_seed = 0) {
  const std::string root = ::testing::TempDir() + "/serve_" + name + "_" + std::to_string(getpid());
  EXPECT_TRUE(r1r::files::RemoveTree(root).ok()) << root;
  std::string dir = root + "/model";
  if (weights_seed == 0) {
    std::filesystem::create_directories(root);
    std::filesystem::copy(Tiny().model_dir, dir, std::filesystem::copy_options::recursive);
  } else {
    auto made = test_support::MakeTinyModelDir(root, {.weights_seed = weights_seed});
    EXPECT_TRUE(made.ok()) << made.status();
  }
  std::ofstream(dir + "/state.json") << R"({"policy_version": )" << version << "}";
  return dir;
}

v1::ReloadRequest ReloadOf(const std::string& dir, bool allow_older = false) {
  v1::ReloadRequest r;
  r.set_model_dir(dir);
  r.set_allow_older(allow_older);
  return r;
}

TEST(serve, ReloadSwapsCheckpointsRefusesBadOnesAndRollsBackOnRequest) {
  const std::string v1_dir = VersionedModel("reload_v1", 1);
  const std::string v2_dir = VersionedModel("reload_v2", 2, /*weights_seed=*/99);
  auto service = Service(4, absl::Milliseconds(1), v1_dir);
  ASSERT_NE(service, nullptr);
  auto before = service->DoCompare(Request(3, 5));
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->policy_version(), 1);

  auto swapped = service->DoReload(ReloadOf(v2_dir));
  ASSERT_TRUE(swapped.ok()) << swapped.status();
  EXPECT_EQ(swapped->previous_version(), 1);
  EXPECT_EQ(swapped->policy_version(), 2);
  EXPECT_EQ(swapped->model_dir(), v2_dir);
  auto after = service->DoCompare(Request(3, 5));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->policy_version(), 2);
  EXPECT_NE(Reasoning(*after), Reasoning(*before)) << "other weights, same seeds: other samples";

  // Older versions only on request; then the first weights answer exactly as before.
  EXPECT_EQ(service->DoReload(ReloadOf(v1_dir)).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(service->DoReload(ReloadOf(v1_dir, /*allow_older=*/true)).ok());
  auto rolled_back = service->DoCompare(Request(3, 5));
  ASSERT_TRUE(rolled_back.ok());
  EXPECT_EQ(Reasoning(*rolled_back), Reasoning(*before));

  // Bad checkpoints are refused and the serving one stays.
  EXPECT_EQ(service->DoReload(ReloadOf(v1_dir + "/missing")).status().code(), absl::StatusCode::kNotFound);
  const std::string broken = VersionedModel("reload_broken", 5);
  std::filesystem::remove(broken + "/model.safetensors");
  EXPECT_FALSE(service->DoReload(ReloadOf(broken)).ok());
  auto other_root = ::testing::TempDir() + "/serve_reload_vocab_" + std::to_string(getpid());
  auto other_vocab = test_support::MakeTinyModelDir(other_root, {.vocab_size = 330});
  ASSERT_TRUE(other_vocab.ok());
  std::ofstream(other_vocab->model_dir + "/state.json") << R"({"policy_version": 9})";
  auto refused = service->DoReload(ReloadOf(other_vocab->model_dir));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  // Same vocabulary size, other merges (a BPE trained on other data): refused too.
  auto other_merges = test_support::MakeTinyModelDir(other_root + "_merges", {.seed = 8});
  ASSERT_TRUE(other_merges.ok());
  std::ofstream(other_merges->model_dir + "/state.json") << R"({"policy_version": 9})";
  EXPECT_EQ(service->DoReload(ReloadOf(other_merges->model_dir)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(service->policy_version(), 1);
  EXPECT_TRUE(service->DoCompare(Request(1, 0)).ok());
}

TEST(serve, RequestsRunningThroughReloadsAllSucceed) {
  const std::string v1_dir = VersionedModel("swap_v1", 1);
  const std::string v2_dir = VersionedModel("swap_v2", 2, /*weights_seed=*/99);
  auto service = Service(4, absl::Milliseconds(2), v1_dir);
  ASSERT_NE(service, nullptr);
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 3; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 4; ++i) {
        auto r = service->DoCompare(Request(2, static_cast<uint64_t>(c * 10 + i)));
        (r.ok() && (r->policy_version() == 1 || r->policy_version() == 2) ? ok : failed)++;
      }
    });
  }
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(service->DoReload(ReloadOf(i % 2 == 0 ? v2_dir : v1_dir, /*allow_older=*/true)).ok());
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 12);
  EXPECT_EQ(failed.load(), 0);
}

TEST(serve, PollingReloadsWhenThePublishedVersionGoesUp) {
  const std::string dir = VersionedModel("poll", 1);
  ServeOptions o;
  o.model_dir = dir;
  o.default_max_new_tokens = 8;
  o.reload_poll = absl::Milliseconds(50);
  auto service = RewardModelServiceImpl::Create(o, nullptr);
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ((*service)->policy_version(), 1);
  // A publish replaces state.json (here by rename, as the orchestrator's atomic export does).
  std::ofstream(dir + "/state.json.tmp") << R"({"policy_version": 3})";
  std::filesystem::rename(dir + "/state.json.tmp", dir + "/state.json");
  for (int i = 0; i < 100 && (*service)->policy_version() != 3; ++i) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ((*service)->policy_version(), 3);
  auto r = (*service)->DoCompare(Request(1, 0));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->policy_version(), 3);
  (*service)->Stop();  // joins the poller
}

}  // namespace
}  // namespace r1r::serve
