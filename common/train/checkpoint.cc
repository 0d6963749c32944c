#include "common/train/checkpoint.h"

#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>

#include <algorithm>

#include "common/dist/process_group.h"
#include "common/files/remove_tree.h"
#include "common/model/safetensors.h"
#include "common/model/weights.h"

namespace r1r::train {
namespace fs = std::filesystem;

namespace {

absl::Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  return out ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", path));
}

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Model files (everything but weights) come from the policy's own directory.
absl::Status CopyModelFiles(const std::string& from, const std::string& to) {
  for (const char* name : {"config.json", "tokenizer.json", "preprocessor_config.json", "tokenizer_config.json",
                           "generation_config.json", "r1r_prompt.json"}) {
    std::error_code ec;
    if (fs::exists(fs::path(from) / name)) {
      fs::copy_file(fs::path(from) / name, fs::path(to) / name, fs::copy_options::overwrite_existing, ec);
      if (ec) return absl::InternalError(absl::StrCat("copy ", name, ": ", ec.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status WriteDirAtomically(const std::string& dir, const std::function<absl::Status(const std::string&)>& fill) {
  const std::string tmp = absl::StrCat(dir, ".tmp.", getpid());
  if (absl::Status s = files::RemoveTree(tmp); !s.ok()) return s;
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", tmp, ": ", ec.message()));
  if (absl::Status s = fill(tmp); !s.ok()) {
    files::RemoveTree(tmp).IgnoreError();  // the fill's error is the one to report
    return s;
  }
  // An existing folder moves aside first and goes last: a crash never leaves `dir` half deleted.
  const std::string old = absl::StrCat(dir, ".old.", getpid());
  if (absl::Status s = files::RemoveTree(old); !s.ok()) return s;
  if (fs::exists(dir)) fs::rename(dir, old, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", dir, " -> ", old, ": ", ec.message()));
  fs::rename(tmp, dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", tmp, " -> ", dir, ": ", ec.message()));
  return files::RemoveTree(old);
}

}  // namespace

absl::Status ExportModelDir(Policy& policy, const std::string& dir, const std::string& state_json) {
  return WriteDirAtomically(dir, [&](const std::string& tmp) -> absl::Status {
    if (absl::Status s = CopyModelFiles(policy.model_dir(), tmp); !s.ok()) return s;
    {
      torch::NoGradGuard no_grad;
      if (absl::Status s = model::SaveCheckpoint(policy.model(), tmp); !s.ok()) return s;
    }
    return state_json.empty() ? absl::OkStatus() : WriteText(tmp + "/state.json", state_json);
  });
}

absl::StatusOr<std::string> SaveTrainingCheckpoint(const std::string& root, int64_t step, Policy& policy,
                                                   Trainer* trainer, const std::string& state_json) {
  const std::string dir = (fs::path(root) / absl::StrCat("step-", step)).string();
  std::error_code ec;
  fs::create_directories(root, ec);
  dist::ProcessGroup* group = trainer ? trainer->process_group() : nullptr;
  const bool sharded = trainer && trainer->optimizer_state_is_sharded();
  const int rank = group ? group->rank() : 0;
  // Sharded: every rank writes its optimizer shard into a staging folder first.
  const std::string staging = dir + ".shards";
  if (sharded) {
    if (rank == 0) {
      if (absl::Status s = files::RemoveTree(staging); !s.ok()) return s;
      fs::create_directories(staging, ec);
      if (ec) return absl::InternalError(absl::StrCat("mkdir ", staging, ": ", ec.message()));
    }
    if (absl::Status s = group->Barrier(); !s.ok()) return s;
    absl::Status wrote = trainer->SaveOptimizerState(staging);
    auto failed = group->SumOverRanks(wrote.ok() ? 0 : 1);  // every rank learns whether all shards are there
    if (!failed.ok()) return failed.status();
    if (!wrote.ok()) return wrote;
    if (*failed > 0) return absl::InternalError(absl::StrCat(*failed, " rank(s) could not write their optimizer shard"));
    if (rank != 0) return dir;
  }
  absl::Status s = WriteDirAtomically(dir, [&](const std::string& tmp) -> absl::Status {
    if (absl::Status s = CopyModelFiles(policy.model_dir(), tmp); !s.ok()) return s;
    {
      torch::NoGradGuard no_grad;
      if (absl::Status s = model::SaveCheckpoint(policy.model(), tmp); !s.ok()) return s;
    }
    if (sharded) {
      fs::rename(fs::path(staging) / "optimizer", fs::path(tmp) / "optimizer", ec);
      if (ec) return absl::InternalError(absl::StrCat("moving optimizer shards: ", ec.message()));
    } else if (trainer) {
      if (absl::Status s = trainer->SaveOptimizerState(tmp); !s.ok()) return s;
    }
    return WriteText(tmp + "/state.json", state_json);
  });
  if (sharded) files::RemoveTree(staging).IgnoreError();  // the shards moved, or the checkpoint failed anyway
  if (!s.ok()) return s;
  // LATEST is replaced atomically too, so a crash leaves the previous pointer intact.
  const std::string latest_tmp = (fs::path(root) / "LATEST.tmp").string();
  if (absl::Status w = WriteText(latest_tmp, fs::path(dir).filename().string()); !w.ok()) return w;
  fs::rename(latest_tmp, fs::path(root) / "LATEST", ec);
  if (ec) return absl::InternalError(absl::StrCat("updating LATEST: ", ec.message()));
  return dir;
}

absl::StatusOr<std::string> LatestCheckpoint(const std::string& root) {
  auto name = ReadText((fs::path(root) / "LATEST").string());
  if (!name.ok()) return absl::NotFoundError(absl::StrCat("no checkpoint under ", root));
  const std::string dir = (fs::path(root) / *name).string();
  if (!fs::exists(fs::path(dir) / "state.json")) {
    return absl::DataLossError(absl::StrCat("LATEST points at an incomplete checkpoint ", dir));
  }
  return dir;
}

absl::StatusOr<std::string> LoadTrainingCheckpoint(const std::string& dir, Policy& policy, Trainer* trainer) {
  auto tensors = model::ReadCheckpointTensors(dir);
  if (!tensors.ok()) return tensors.status();
  {
    torch::NoGradGuard no_grad;
    if (absl::Status s = model::LoadWeights(policy.model(), *tensors); !s.ok()) return s;
  }
  if (trainer && (fs::exists(dir + "/optimizer.pt") || fs::exists(dir + "/optimizer/layout.json"))) {
    if (absl::Status s = trainer->LoadOptimizerState(dir); !s.ok()) return s;
  }
  return ReadText(dir + "/state.json");
}

absl::StatusOr<std::vector<std::string>> PruneCheckpoints(const std::string& root, int64_t keep,
                                                          const std::string& protect) {
  std::vector<std::string> deleted;
  if (keep <= 0) return deleted;
  std::vector<std::pair<int64_t, fs::path>> steps;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    int64_t step = 0;
    if (name.rfind("step-", 0) != 0 || !entry.is_directory() || !absl::SimpleAtoi(name.substr(5), &step)) continue;
    steps.emplace_back(step, entry.path());
  }
  if (ec) return absl::InternalError(absl::StrCat("listing ", root, ": ", ec.message()));
  std::sort(steps.begin(), steps.end());
  auto latest = ReadText((fs::path(root) / "LATEST").string());
  const std::string resume = latest.ok() ? (fs::path(root) / *latest).string() : "";
  auto same = [](const fs::path& a, const std::string& b) {
    if (b.empty()) return false;
    std::error_code e;
    return fs::equivalent(a, b, e);
  };
  int64_t excess = static_cast<int64_t>(steps.size()) - keep;
  for (const auto& [step, path] : steps) {
    if (excess <= 0) break;
    if (same(path, resume) || same(path, protect)) continue;  // what a resume loads is never deleted
    if (absl::Status s = files::RemoveTree(path.string()); !s.ok()) return s;
    deleted.push_back(path.string());
    --excess;
  }
  return deleted;
}

}  // namespace r1r::train
