#include "services/learner/learner_policy.h"

#include <filesystem>

#include <absl/strings/str_cat.h>

#include "common/files/paths.h"
#include "common/train/checkpoint.h"
#include "services/learner/spec_options.h"

namespace r1r::learner {
namespace fs = std::filesystem;

absl::Status LinkModelFiles(const std::string& from, const std::string& to) {
  std::error_code ec;
  if (!fs::is_directory(from)) return absl::InvalidArgumentError(absl::StrCat("model.path: no directory ", from));
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    const std::string name = entry.path().filename().string();
    const fs::path target = fs::path(to) / name;
    if (fs::exists(target)) continue;
    if (!entry.is_regular_file(ec)) continue;  // a FIFO or device named *.json would block the copy
    const bool weights = name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json");
    if (weights) {
      fs::create_symlink(fs::absolute(entry.path()), target, ec);
    } else if (name.ends_with(".json") || name.ends_with(".txt") || name.ends_with(".jinja")) {
      fs::copy_file(entry.path(), target, ec);
    }
    if (ec) return absl::InternalError(absl::StrCat("linking ", name, " into ", to, ": ", ec.message()));
  }
  return ec ? absl::InternalError(absl::StrCat("listing ", from, ": ", ec.message())) : absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<train::Policy>> LoadLearnerPolicy(const config::JobSpec& spec,
                                                                 const std::string& work_dir,
                                                                 int64_t image_cache_bytes) {
  // The learner's weights: float32 (fp32, the master itself) or bfloat16 under an fp32 master (bf16_mixed).
  auto model_options = train::ParseModelOptions(LearnerDtype(spec), spec.model.device);
  if (!model_options.ok()) {
    return absl::Status(model_options.status().code(), absl::StrCat("model: ", model_options.status().message()));
  }
  const std::string model_dir = (fs::path(work_dir) / "model").string();
  std::error_code ec;
  fs::create_directories(model_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", model_dir, ": ", ec.message()));
  const bool configured = fs::exists(fs::path(model_dir) / "config.json");
  absl::StatusOr<std::unique_ptr<train::Policy>> policy;
  if (spec.model.init == "tiny" && !configured) {
    if (!fs::exists(fs::path(model_dir) / "tokenizer.json")) {
      return absl::FailedPreconditionError(
          absl::StrCat("model.init tiny: ", model_dir, "/tokenizer.json is missing (data prep writes it)"));
    }
    policy = train::Policy::CreateTiny(model_dir, TinyOptionsFromSpec(spec.model.tiny),
                                       ImageOptionsFromSpec(spec.data), *model_options,
                                       static_cast<uint64_t>(spec.data.seed));
  } else {
    if (spec.model.init == "path" && !configured) {
      if (absl::Status s = LinkModelFiles(spec.model.path, model_dir); !s.ok()) return s;
    }
    // The spec's pixel limits, not the checkpoint's, for this model and every one published from it.
    if (absl::Status s = train::ApplyPixelLimits(model_dir, spec.data.min_pixels, spec.data.max_pixels); !s.ok()) {
      return s;
    }
    policy = train::Policy::Load(model_dir, *model_options);
  }
  if (!policy.ok()) return policy.status();
  (*policy)->encoder().set_image_cache_limit(image_cache_bytes);
  (*policy)->SetVisionTrainable(!spec.model.freeze_vision);
  return policy;
}

absl::StatusOr<std::unique_ptr<train::Policy>> LoadReferencePolicy(train::Policy& policy,
                                                                   const std::string& work_dir) {
  const std::string dir = (fs::path(work_dir) / "reference").string();
  if (!fs::exists(fs::path(dir) / "config.json")) {
    if (absl::Status s = files::CheckReplaceable(dir, "work_dir/reference"); !s.ok()) return s;
    if (absl::Status s = train::ExportModelDir(policy, dir); !s.ok()) return s;
    if (absl::Status s = files::MarkOwned(dir, "r1r-learner (KL reference)"); !s.ok()) return s;
  }
  auto reference = train::Policy::Load(dir, policy.model().options());
  if (!reference.ok()) return reference.status();
  (*reference)->model().eval();
  for (auto& p : (*reference)->model().parameters()) p.set_requires_grad(false);
  return reference;
}

}  // namespace r1r::learner
