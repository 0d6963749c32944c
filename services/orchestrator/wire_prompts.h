// The prepared samples as the wire's prompts, for the actors (generation) and the learner (SFT).
#pragma once

#include <string>
#include <vector>

#include "common/data/sample.h"
#include "r1r/v1/common.pb.h"

namespace r1r::orchestrator {

v1::PreferencePrompt ToPreference(const data::PreferenceSample& s);

// The samples `set[idx[...]]`, each `copies` times, with ids "<prefix>-<batch position>-<index>-<copy>".
std::vector<v1::Prompt> MakePrompts(const std::vector<data::PreferenceSample>& set, const std::vector<size_t>& idx,
                                    const std::string& prefix, int copies = 1);

}  // namespace r1r::orchestrator
