#include "common/train/rank_group.h"

#include <utility>

#include <absl/strings/str_cat.h>

namespace r1r::train {

RankGroup::RankGroup(dist::ProcessGroup* group, std::function<void(const absl::Status&)> on_lost)
    : group_(group), on_lost_(std::move(on_lost)) {}

RankGroup::~RankGroup() {
  // Without a Shutdown (a failed start-up): the threads must not outlive what they use.
  if (!stop_heartbeat_.HasBeenNotified()) stop_heartbeat_.Notify();
  if (heartbeat_.joinable()) heartbeat_.join();
  if (follower_.joinable()) follower_.detach();
}

absl::Status RankGroup::Replicate(char command, const std::string& body) {
  if (!grouped()) return absl::OkStatus();
  last_command_ = absl::Now();
  std::string message(1, command);
  message += body;
  return group_->BroadcastBytes(&message, 0);
}

absl::Status RankGroup::Agree(const absl::Status& local) {
  if (!grouped()) return local;
  auto failed = group_->SumOverRanks(local.ok() ? 0 : 1);
  if (!failed.ok()) return failed.status();
  if (!local.ok()) return local;
  if (*failed > 0) {
    return absl::InternalError(
        absl::StrCat(*failed, " of ", group_->world_size(), " learner ranks failed this call; their logs say why"));
  }
  return absl::OkStatus();
}

void RankGroup::ReportIfLost(const absl::Status& result) {
  if (grouped() && absl::IsUnavailable(result) && on_lost_) on_lost_(result);
}

absl::Status RankGroup::Follow(const CommandHandler& handle) {
  following_ = true;
  struct Done {
    std::atomic<bool>* flag;
    ~Done() { *flag = false; }
  } done{&following_};
  while (true) {
    std::string message;
    if (absl::Status s = group_->BroadcastBytes(&message, 0); !s.ok()) return s;
    if (message.empty()) return absl::DataLossError("empty command from rank 0");
    const char command = message[0];
    if (command == kStop) return absl::OkStatus();
    if (command == kHeartbeat) continue;
    const CommandOutcome outcome = handle(command, message.substr(1));
    if (outcome.end_following) return outcome.result;
    // A broken group (rank 0 gone, a timeout) ends following; a failed step does not.
    if (absl::IsUnavailable(outcome.result)) return outcome.result;
  }
}

absl::Status RankGroup::HeartbeatIfIdle(absl::Duration idle) {
  if (!grouped() || is_follower()) return absl::OkStatus();
  absl::MutexLock lock(&command_mu_);  // not the service's mutex: rank 0's own work goes on meanwhile
  if (absl::Now() - last_command_ < idle) return absl::OkStatus();
  absl::Status s = Replicate(kHeartbeat, "");
  if (!s.ok() && on_lost_) on_lost_(s);
  return s;
}

absl::Status RankGroup::StopFollowers() {
  if (!grouped() || is_follower()) return absl::OkStatus();
  std::string message(1, kStop);
  return group_->BroadcastBytes(&message, 0);
}

void RankGroup::StartHeartbeat(absl::Duration every) {
  heartbeat_ = std::thread([this, every] {
    while (!stop_heartbeat_.WaitForNotificationWithTimeout(every / 2)) {
      if (!HeartbeatIfIdle(every).ok()) return;  // on_lost has begun the shutdown
    }
  });
}

void RankGroup::StartFollowing(CommandHandler handle, std::function<void(const absl::Status&)> done) {
  follower_ = std::thread([this, handle = std::move(handle), done = std::move(done)] { done(Follow(handle)); });
}

RankGroup::Stopped RankGroup::Shutdown(bool lost) {
  Stopped out;
  if (!stop_heartbeat_.HasBeenNotified()) stop_heartbeat_.Notify();
  if (heartbeat_.joinable()) heartbeat_.join();  // before StopFollowers: one broadcast at a time
  if (!lost) out.stop_followers = StopFollowers();
  if (!follower_.joinable()) return out;
  if (following()) {
    follower_.detach();
    out.follower_left_running = true;
    return out;
  }
  follower_.join();
  return out;
}

}  // namespace r1r::train
