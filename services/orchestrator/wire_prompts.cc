#include "services/orchestrator/wire_prompts.h"

#include <absl/strings/str_cat.h>

namespace r1r::orchestrator {

v1::PreferencePrompt ToPreference(const data::PreferenceSample& s) {
  v1::PreferencePrompt p;
  p.mutable_sample()->set_sample_id(s.id);
  p.mutable_sample()->set_image_path(s.image_path);
  p.set_question(s.question);
  p.set_response1(s.response1);
  p.set_response2(s.response2);
  p.set_label(s.label);
  return p;
}

std::vector<v1::Prompt> MakePrompts(const std::vector<data::PreferenceSample>& set, const std::vector<size_t>& idx,
                                    const std::string& prefix, int copies) {
  std::vector<v1::Prompt> out;
  // Batch position first: a batch that crosses an epoch boundary may hold a sample twice.
  for (size_t pos = 0; pos < idx.size(); ++pos) {
    const size_t i = idx[pos];
    for (int k = 0; k < copies; ++k) {
      v1::Prompt p;
      p.set_prompt_id(absl::StrCat(prefix, "-", pos, "-", i, "-", k));
      *p.mutable_preference() = ToPreference(set[i]);
      out.push_back(std::move(p));
    }
  }
  return out;
}

}  // namespace r1r::orchestrator
