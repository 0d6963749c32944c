#include "services/orchestrator/spec_paths.h"

#include <absl/strings/str_cat.h>

#include "common/data/prepare.h"

namespace r1r::orchestrator {

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

}  // namespace r1r::orchestrator
