// What the actor accepts: the checks of a GenerateRolloutsRequest (INVALID_ARGUMENT naming the field),
// the sampling parameters and seed of each prompt, a prompt's wire form, and the learners a weight
// pull may go to.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <absl/status/status.h>

#include "common/model/generate.h"
#include "common/train/wire_prompt.h"
#include "r1r/v1/actor.pb.h"

namespace r1r::actor {

absl::Status CheckGenerateRequest(const v1::GenerateRolloutsRequest& req);

// A request seed gives each prompt its own stream (seed, index); seed 0 ties it to the prompt id,
// so the same prompt samples the same response on any actor and in any batch. Never 0.
uint64_t PromptSeed(uint64_t request_seed, int index, const std::string& prompt_id);

// The request's sampling for prompt `index` (its seed from PromptSeed).
model::SamplingParams SamplingFor(const v1::SamplingParams& sampling, int index, const std::string& prompt_id);

// Views into `p`; its prompt_token_ids when given, else the preference's texts.
train::WirePrompt WirePromptOf(const v1::Prompt& p);

// Whether `target` (host:port) is one of `allowed` ("host:port", or "host:*" for any port).
bool IsAllowedTarget(const std::string& target, const std::vector<std::string>& allowed);

}  // namespace r1r::actor
