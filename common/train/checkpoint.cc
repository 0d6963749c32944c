#include "common/train/checkpoint.h"

#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <absl/strings/str_cat.h>

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
                                                   torch::optim::Optimizer* optimizer, const std::string& state_json) {
  const std::string dir = (fs::path(root) / absl::StrCat("step-", step)).string();
  std::error_code ec;
  fs::create_directories(root, ec);
  absl::Status s = WriteDirAtomically(dir, [&](const std::string& tmp) -> absl::Status {
    if (absl::Status s = CopyModelFiles(policy.model_dir(), tmp); !s.ok()) return s;
    {
      torch::NoGradGuard no_grad;
      if (absl::Status s = model::SaveCheckpoint(policy.model(), tmp); !s.ok()) return s;
    }
    if (optimizer) {
      try {
        torch::save(*optimizer, tmp + "/optimizer.pt");
      } catch (const c10::Error& e) {
        return absl::InternalError(absl::StrCat("saving optimizer state: ", e.what_without_backtrace()));
      }
    }
    return WriteText(tmp + "/state.json", state_json);
  });
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

absl::StatusOr<std::string> LoadTrainingCheckpoint(const std::string& dir, Policy& policy,
                                                   torch::optim::Optimizer* optimizer) {
  auto tensors = model::ReadCheckpointTensors(dir);
  if (!tensors.ok()) return tensors.status();
  {
    torch::NoGradGuard no_grad;
    if (absl::Status s = model::LoadWeights(policy.model(), *tensors); !s.ok()) return s;
  }
  if (optimizer && fs::exists(dir + "/optimizer.pt")) {
    if (absl::Status s = LoadOptimizerState(dir, *optimizer); !s.ok()) return s;
  }
  return ReadText(dir + "/state.json");
}

absl::Status LoadOptimizerState(const std::string& dir, torch::optim::Optimizer& optimizer) {
  if (!fs::exists(dir + "/optimizer.pt")) return absl::NotFoundError(absl::StrCat("no optimizer.pt in ", dir));
  try {
    torch::load(optimizer, dir + "/optimizer.pt");
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("optimizer state in ", dir, ": ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

}  // namespace r1r::train
