// The learner's data-parallel rank group as a command protocol: rank 0 takes the training calls and
// replays each one to ranks 1..N-1 (a one-byte command tag and a serialized request, broadcast over
// the process group) before running it; the other ranks follow, running the same command on their
// share of the batch. Every rank agrees on a command's outcome, so one rank's bad input fails the call
// on all of them instead of leaving the others waiting in a collective. While rank 0 sits idle, a
// heartbeat keeps the followers' wait (a collective) under the group's timeout. Bytes only: the
// learner service serializes its requests, so this stays free of gRPC and Protobuf.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include <absl/status/status.h>
#include <absl/synchronization/mutex.h>
#include <absl/synchronization/notification.h>
#include <absl/time/clock.h>
#include <absl/time/time.h>

#include "common/dist/process_group.h"

namespace r1r::train {

// What a follower did with one command (the handler logs a failure). Following ends when `end_following`
// (a message rank 0 could not have sent) or when the result says the group broke (UNAVAILABLE).
struct CommandOutcome {
  absl::Status result;
  bool end_following = false;
};
// Runs one of the learner's commands on a follower: its tag and its serialized request.
using CommandHandler = std::function<CommandOutcome(char command, const std::string& body)>;

class RankGroup {
 public:
  // Tags the group itself uses; the learner's own commands must use others.
  static constexpr char kStop = 'Q';
  static constexpr char kHeartbeat = 'H';

  // `group` null or of size 1: alone, every call is a no-op that succeeds. `on_lost` (rank 0) is
  // called when a collective fails: c10d cannot re-admit a rank, so the process must restart.
  RankGroup(dist::ProcessGroup* group, std::function<void(const absl::Status&)> on_lost);
  ~RankGroup();

  bool grouped() const { return group_ != nullptr && group_->world_size() > 1; }
  bool is_follower() const { return group_ != nullptr && group_->rank() > 0; }

  // Rank 0 holds this from sending a command until the command's last collective, so that a
  // heartbeat never falls between them. Take it after the service's own mutex.
  absl::Mutex* command_mutex() ABSL_LOCK_RETURNED(command_mu_) { return &command_mu_; }
  // Rank 0: sends `command` and `body` to the other ranks.
  absl::Status Replicate(char command, const std::string& body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(command_mu_);
  // Every rank: fails on all ranks when any rank's `local` failed (alone: returns `local`).
  absl::Status Agree(const absl::Status& local);
  // Rank 0: calls on_lost when `result` says the group broke (UNAVAILABLE in a group).
  void ReportIfLost(const absl::Status& result);

  // Ranks > 0: runs rank 0's commands until rank 0 says stop (OK), the group breaks, or a message
  // is bad (the error).
  absl::Status Follow(const CommandHandler& handle);
  bool following() const { return following_.load(); }
  // Rank 0: when no command went out for `idle`, sends a no-op. A failed heartbeat calls on_lost.
  absl::Status HeartbeatIfIdle(absl::Duration idle);
  // Rank 0, after its server drained: tells the other ranks to stop following.
  absl::Status StopFollowers();

  // The two threads of a grouped learner. Rank 0: a heartbeat every `every` of idleness, checked
  // twice per interval (keep `every` under half the group's timeout).
  void StartHeartbeat(absl::Duration every);
  // Ranks > 0: Follow on a thread, then `done` with how following ended.
  void StartFollowing(CommandHandler handle, std::function<void(const absl::Status&)> done);
  // After the server drained: stops the heartbeat, tells the followers to stop (rank 0, unless the
  // group is `lost`: no one is left to tell) and joins the follower thread.
  struct Stopped {
    absl::Status stop_followers;  // how telling the followers went
    // The follower is still blocked in a collective (the process was stopped by a signal): c10d
    // cannot abort it, so the caller must leave this object, the process group and whatever the
    // handler uses to process exit.
    bool follower_left_running = false;
  };
  Stopped Shutdown(bool lost);

 private:
  dist::ProcessGroup* const group_;
  const std::function<void(const absl::Status&)> on_lost_;
  absl::Mutex command_mu_;
  absl::Time last_command_ ABSL_GUARDED_BY(command_mu_) = absl::Now();  // when the ranks last heard from rank 0
  std::atomic<bool> following_{false};
  absl::Notification stop_heartbeat_;
  std::thread heartbeat_;
  std::thread follower_;
};

}  // namespace r1r::train
