// What the learner accepts before it takes a lock: the size, range and consistency checks of each
// training request, and the wire prompt of a request's preference. INVALID_ARGUMENT naming the field.
#pragma once

#include <absl/status/status.h>
#include <absl/types/span.h>

#include "common/train/wire_prompt.h"
#include "r1r/v1/learner.pb.h"

namespace r1r::learner {

absl::Status CheckInitRequest(const v1::InitRequest& req);
absl::Status CheckSftStepRequest(const v1::SftStepRequest& req);
absl::Status CheckExperienceBatch(const v1::ExperienceBatch& req);
absl::Status CheckSaveCheckpointRequest(const v1::SaveCheckpointRequest& req);

// Views into `p` (and `token_ids`); empty ids render the prompt from the texts.
train::WirePrompt WirePromptOf(const v1::PreferencePrompt& p, absl::Span<const int32_t> token_ids = {});

}  // namespace r1r::learner
