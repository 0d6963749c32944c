// A synthetic item as the wire's PreferencePrompt (what the orchestrator sends the learner and actors),
// shared by the integration tests that drive those two processes directly.
#pragma once

#include <string>

#include "common/data/synthetic.h"
#include "r1r/v1/common.pb.h"

namespace r1r::testing {

inline void FillPreference(const std::string& data_dir, const data::SyntheticItem& item, v1::PreferencePrompt* p) {
  p->mutable_sample()->set_dataset(data_dir);
  p->mutable_sample()->set_sample_id(item.sample.id);
  p->mutable_sample()->set_image_path(item.sample.image_path);
  p->set_question(item.sample.question);
  p->set_response1(item.sample.response1);
  p->set_response2(item.sample.response2);
  p->set_label(item.sample.label);
}

}  // namespace r1r::testing
