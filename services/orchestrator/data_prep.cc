#include "services/orchestrator/data_prep.h"

#include <filesystem>
#include <fstream>

#include <absl/strings/str_cat.h>
#include <nlohmann/json.hpp>

#include "common/data/prepare.h"

namespace r1r::orchestrator {
namespace fs = std::filesystem;

absl::Status ConfineSpecPaths(const SpecRoots& roots, config::JobSpec& spec) {
  struct Named {
    std::string* path;
    const char* field;
    const files::Roots* roots;
    uint64_t max_file_bytes;  // 0: a directory
  };
  const bool reads_data = spec.data.source != "synthetic";
  const bool reads_model = spec.model.init == "path" || spec.tokenizer.train_vocab_size == 0;
  for (const Named& n : {Named{&spec.data.path, "data.path", &roots.data, data::kMaxDatasetFileBytes},
                         Named{&spec.tokenizer.path, "tokenizer.path", &roots.data, data::kMaxTokenizerFileBytes},
                         Named{&spec.model.path, "model.path", &roots.data, 0},
                         Named{&spec.work_dir, "work_dir", &roots.work, 0}}) {
    if (n.path->empty()) continue;
    if (n.path == &spec.data.path && !reads_data) continue;
    if (n.path == &spec.model.path && !reads_model) continue;
    auto confined = n.roots->Confine(*n.path, n.field);
    if (!confined.ok()) return confined.status();
    if (n.max_file_bytes > 0) {
      if (absl::Status s = files::CheckRegularFile(*confined, n.max_file_bytes); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat(n.field, ": ", s.message()));
      }
    }
    *n.path = *confined;
  }
  return absl::OkStatus();
}

absl::Status WritePromptLayout(const config::JobSpec& spec, const std::string& model_dir) {
  std::error_code ec;
  fs::create_directories(model_dir, ec);
  std::ofstream out(fs::path(model_dir) / "r1r_prompt.json");
  out << nlohmann::json{{"image_placement", spec.data.image_placement}, {"prompt_style", spec.data.prompt_style}}.dump()
      << "\n";
  out.close();
  return out ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", model_dir, "/r1r_prompt.json"));
}

}  // namespace r1r::orchestrator
