#include "common/jobs/job_store.h"

#include <filesystem>
#include <sstream>

#include <absl/strings/str_cat.h>
#include <google/protobuf/util/json_util.h>

#include "common/jobs/atomic_file.h"
#include "common/jobs/job_id.h"

namespace r1r::jobs {
namespace fs = std::filesystem;
using google::protobuf::util::JsonStringToMessage;
using google::protobuf::util::MessageToJsonString;

namespace {
int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  (void)MessageToJsonString(m, &out, opts);
  return out;
}
}  // namespace

bool JobStore::IsTerminal(v1::JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED || s == v1::JOB_STATE_CANCELLED;
}

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& state_dir) {
  std::error_code ec;
  fs::create_directories(fs::path(state_dir) / "jobs", ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create state dir '", state_dir, "': ", ec.message()));
  std::unique_ptr<JobStore> store(new JobStore((fs::path(state_dir) / "jobs").string()));
  if (absl::Status s = store->Load(); !s.ok()) return s;
  return store;
}

std::string JobStore::RecordPath(const std::string& id) const { return (fs::path(dir_) / (id + ".json")).string(); }
std::string JobStore::EventsPath(const std::string& id) const {
  return (fs::path(dir_) / (id + ".events.jsonl")).string();
}

absl::Status JobStore::Load() {
  absl::MutexLock lock(&mu_);
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 6 || name.substr(name.size() - 5) != ".json") continue;
    auto text = ReadFileToString(entry.path().string());
    if (!text.ok()) return text.status();
    v1::Job job;
    if (!JsonStringToMessage(*text, &job).ok() || !IsValidJobId(job.id())) {
      return absl::DataLossError(absl::StrCat("corrupt job record '", entry.path().string(), "'"));
    }
    std::vector<v1::JobEvent>& events = events_[job.id()];
    if (auto log = ReadFileToString(EventsPath(job.id())); log.ok()) {
      std::istringstream lines(*log);
      for (std::string line; std::getline(lines, line);) {
        v1::JobEvent ev;
        // A torn last line (crash mid-append) is skipped; the record itself is authoritative.
        if (!line.empty() && JsonStringToMessage(line, &ev).ok()) events.push_back(ev);
      }
    }
    jobs_[job.id()] = job;
    if (job.state() == v1::JOB_STATE_RUNNING) {
      v1::Job& j = jobs_[job.id()];
      j.set_state(v1::JOB_STATE_QUEUED);
      j.set_updated_unix_ms(NowMs());
      if (absl::Status s = AppendEvent(j, "orchestrator restarted; the job resumes from its last checkpoint",
                                       v1::PHASE_UNSPECIFIED, nullptr);
          !s.ok())
        return s;
      if (absl::Status s = Persist(j); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status JobStore::Persist(const v1::Job& job) const { return WriteFileAtomically(RecordPath(job.id()), ToJson(job)); }

absl::Status JobStore::AppendEvent(v1::Job& job, const std::string& message, v1::Phase phase,
                                   const v1::PhaseProgress* progress) {
  std::vector<v1::JobEvent>& events = events_[job.id()];
  v1::JobEvent ev;
  ev.set_job_id(job.id());
  ev.set_seq(events.empty() ? 1 : events.back().seq() + 1);
  ev.set_unix_ms(NowMs());
  ev.set_state(job.state());
  ev.set_phase(phase);
  ev.set_message(message);
  if (progress) *ev.mutable_progress() = *progress;
  if (absl::Status s = AppendLineDurably(EventsPath(job.id()), ToJson(ev)); !s.ok()) return s;
  events.push_back(ev);
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> JobStore::Create(const std::string& name, const std::string& spec_yaml,
                                         const std::vector<v1::Phase>& phases, const std::string& work_dir_root) {
  absl::MutexLock lock(&mu_);
  v1::Job job;
  do {
    job.set_id(NewJobId(absl::Now()));
  } while (jobs_.count(job.id()));
  job.set_name(name);
  job.set_state(v1::JOB_STATE_QUEUED);
  job.set_spec_yaml(spec_yaml);
  job.set_created_unix_ms(NowMs());
  job.set_updated_unix_ms(job.created_unix_ms());
  job.set_work_dir((fs::path(work_dir_root) / job.id()).string());
  for (v1::Phase p : phases) {
    v1::PhaseProgress* pp = job.add_phases();
    pp->set_phase(p);
    pp->set_state(v1::JOB_STATE_QUEUED);
  }
  if (absl::Status s = Persist(job); !s.ok()) return s;
  if (absl::Status s = AppendEvent(job, "job accepted", v1::PHASE_UNSPECIFIED, nullptr); !s.ok()) return s;
  jobs_[job.id()] = job;
  return job;
}

absl::StatusOr<v1::Job> JobStore::Get(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job with id '", id, "'"));
  return it->second;
}

std::vector<v1::Job> JobStore::List(v1::JobState filter, int limit) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Job> out;
  for (auto it = jobs_.rbegin(); it != jobs_.rend() && static_cast<int>(out.size()) < limit; ++it) {
    if (filter == v1::JOB_STATE_UNSPECIFIED || it->second.state() == filter) out.push_back(it->second);
  }
  return out;
}

absl::StatusOr<v1::Job> JobStore::Update(const std::string& id, const std::function<void(v1::Job&)>& mutate,
                                         const std::string& message, v1::Phase phase) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job with id '", id, "'"));
  v1::Job updated = it->second;
  mutate(updated);
  updated.set_updated_unix_ms(NowMs());
  if (absl::Status s = Persist(updated); !s.ok()) return s;
  const v1::PhaseProgress* progress = nullptr;
  for (const auto& p : updated.phases()) {
    if (p.phase() == phase) progress = &p;
  }
  if (absl::Status s = AppendEvent(updated, message, phase, progress); !s.ok()) return s;
  it->second = updated;
  return updated;
}

absl::StatusOr<std::vector<v1::JobEvent>> JobStore::EventsAfter(const std::string& id, int64_t after_seq,
                                                                absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  if (!jobs_.count(id)) return absl::NotFoundError(absl::StrCat("no job with id '", id, "'"));
  auto has_new = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    auto it = events_.find(id);
    return it != events_.end() && !it->second.empty() && it->second.back().seq() > after_seq;
  };
  mu_.AwaitWithTimeout(absl::Condition(&has_new), timeout);
  std::vector<v1::JobEvent> out;
  if (auto it = events_.find(id); it != events_.end()) {
    for (const auto& ev : it->second) {
      if (ev.seq() > after_seq) out.push_back(ev);
    }
  }
  return out;
}

std::optional<std::string> JobStore::NextQueued() const {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, job] : jobs_) {
    if (job.state() == v1::JOB_STATE_QUEUED) return id;
  }
  return std::nullopt;
}

}  // namespace r1r::jobs
