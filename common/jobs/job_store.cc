#include "common/jobs/job_store.h"

#include <filesystem>
#include <sstream>

#include <absl/strings/str_cat.h>
#include <google/protobuf/util/json_util.h>

#include "common/files/paths.h"
#include "common/jobs/atomic_file.h"
#include "common/jobs/job_id.h"
#include "common/tokenizer/utf8.h"

namespace r1r::jobs {
namespace fs = std::filesystem;
using google::protobuf::util::JsonStringToMessage;
using google::protobuf::util::MessageToJsonString;

namespace {
constexpr uint64_t kMaxRecordBytes = 64 << 20;
constexpr uint64_t kMaxEventLogBytes = 1ULL << 30;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// Records written by a newer version may carry fields this one does not know: they load.
absl::Status FromJson(const std::string& text, google::protobuf::Message* m) {
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;
  const auto s = JsonStringToMessage(text, m, opts);
  return s.ok() ? absl::OkStatus() : absl::DataLossError(std::string(s.message()));
}

// proto3 strings must hold UTF-8, else serialising the record (and every ListJobs) fails: a
// message built from outside text (an exception, a file name) has its bad bytes replaced.
void MakeUtf8(std::string* text) {
  if (!tokenizer::IsValidUtf8(*text)) *text = tokenizer::Utf8Lossy(*text);
}

void MakeUtf8(v1::Job& job) {
  MakeUtf8(job.mutable_name());
  MakeUtf8(job.mutable_error());
  MakeUtf8(job.mutable_work_dir());
}

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

absl::Status JobStore::Quarantine(const std::string& path, const std::string& why) {
  const fs::path aside = fs::path(dir_).parent_path() / "quarantine";
  std::error_code ec;
  fs::create_directories(aside, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", aside.string(), ": ", ec.message()));
  const fs::path name = fs::path(path).filename();
  const fs::path target = aside / absl::StrCat(name.string(), ".", NowMs());
  fs::rename(path, target, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot move corrupt job record ", path, " aside: ", ec.message()));
  // Its event log goes with it (the events of a record that cannot be read describe nothing served).
  const std::string stem = name.string().substr(0, name.string().size() - 5);
  const fs::path events = fs::path(dir_) / (stem + ".events.jsonl");
  if (fs::exists(events, ec)) fs::rename(events, aside / absl::StrCat(stem, ".events.jsonl.", NowMs()), ec);
  quarantined_.push_back(absl::StrCat(path, " -> ", target.string(), ": ", why));
  return absl::OkStatus();
}

absl::Status JobStore::Load() {
  absl::MutexLock lock(&mu_);
  std::error_code ec;
  std::vector<fs::path> records;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 6 || name.substr(name.size() - 5) != ".json") continue;
    records.push_back(entry.path());
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", dir_, ": ", ec.message()));
  for (const fs::path& path : records) {
    // One corrupt record (truncated, empty, not a job, another tool's file) is moved aside so that
    // every other job is still served.
    auto text = files::ReadRegularFile(path.string(), kMaxRecordBytes);
    v1::Job job;
    absl::Status parsed = text.ok() ? FromJson(*text, &job) : text.status();
    const std::string stem = path.filename().string().substr(0, path.filename().string().size() - 5);
    if (parsed.ok() && (!IsValidJobId(job.id()) || job.id() != stem)) {
      parsed = absl::DataLossError(absl::StrCat("id '", job.id().substr(0, 64), "' does not match the file name"));
    }
    if (parsed.ok() && !tokenizer::IsValidUtf8(job.spec_yaml())) parsed = absl::DataLossError("spec_yaml is not UTF-8");
    if (!parsed.ok()) {
      if (absl::Status s = Quarantine(path.string(), std::string(parsed.message())); !s.ok()) return s;
      continue;
    }
    MakeUtf8(job);
    std::vector<v1::JobEvent>& events = events_[job.id()];
    if (auto log = files::ReadRegularFile(EventsPath(job.id()), kMaxEventLogBytes); log.ok()) {
      std::istringstream lines(*log);
      for (std::string line; std::getline(lines, line);) {
        v1::JobEvent ev;
        // A torn last line (crash mid-append) is skipped; the record itself is authoritative.
        if (!line.empty() && FromJson(line, &ev).ok()) {
          MakeUtf8(ev.mutable_message());
          events.push_back(ev);
        }
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
  MakeUtf8(ev.mutable_message());
  if (progress) *ev.mutable_progress() = *progress;
  if (absl::Status s = AppendLineDurably(EventsPath(job.id()), ToJson(ev)); !s.ok()) return s;
  events.push_back(ev);
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> JobStore::Create(const std::string& name, const std::string& spec_yaml,
                                         const std::vector<v1::Phase>& phases, const std::string& work_dir_root) {
  if (!tokenizer::IsValidUtf8(spec_yaml) || !tokenizer::IsValidUtf8(name) || !tokenizer::IsValidUtf8(work_dir_root)) {
    return absl::InvalidArgumentError("job spec: name, work_dir and the spec text must be valid UTF-8");
  }
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
  MakeUtf8(updated);
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
