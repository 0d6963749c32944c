// The orchestrator's durable state: one JSON record per job (atomically replaced on every change)
// and an append-only event log per job, under <state_dir>/jobs/. After a restart every job is
// listed again with its state; jobs that were RUNNING go back to QUEUED so they resume. A record
// that cannot be read is moved aside (quarantined) and the others are served; records written by a
// newer version load (unknown fields are ignored).
#pragma once

#include <map>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/synchronization/mutex.h>
#include <absl/time/time.h>

#include "r1r/v1/jobs.pb.h"

namespace r1r::jobs {

class JobStore {
 public:
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& state_dir);

  // Creates a QUEUED job with one QUEUED PhaseProgress per phase in `phases`.
  absl::StatusOr<v1::Job> Create(const std::string& name, const std::string& spec_yaml,
                                 const std::vector<v1::Phase>& phases, const std::string& work_dir_root);
  absl::StatusOr<v1::Job> Get(const std::string& id) const;
  // Newest first; `filter` UNSPECIFIED = all.
  std::vector<v1::Job> List(v1::JobState filter, int limit) const;
  // Applies `mutate`, persists, and appends an event with `message` (and the job's new state).
  absl::StatusOr<v1::Job> Update(const std::string& id, const std::function<void(v1::Job&)>& mutate,
                                 const std::string& message, v1::Phase phase = v1::PHASE_UNSPECIFIED);
  // Events with seq > after_seq; waits up to `timeout` for new ones when there are none.
  absl::StatusOr<std::vector<v1::JobEvent>> EventsAfter(const std::string& id, int64_t after_seq,
                                                        absl::Duration timeout) const;
  // The oldest QUEUED job, if any.
  std::optional<std::string> NextQueued() const;

  static bool IsTerminal(v1::JobState s);

  // Records that could not be read at Open (truncated, empty, not a job record) and were moved to
  // <state_dir>/quarantine/ instead of stopping the store: "path -> new path: why", one per record.
  std::vector<std::string> quarantined() const {
    absl::MutexLock lock(&mu_);
    return quarantined_;
  }

 private:
  explicit JobStore(std::string dir) : dir_(std::move(dir)) {}
  absl::Status Load();
  absl::Status Persist(const v1::Job& job) const;
  absl::Status Quarantine(const std::string& path, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AppendEvent(v1::Job& job, const std::string& message, v1::Phase phase,
                           const v1::PhaseProgress* progress) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string RecordPath(const std::string& id) const;
  std::string EventsPath(const std::string& id) const;

  std::string dir_;
  mutable absl::Mutex mu_;
  std::map<std::string, v1::Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<v1::JobEvent>> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> quarantined_ ABSL_GUARDED_BY(mu_);
};

}  // namespace r1r::jobs
