#pragma once

#include <string>

#include <absl/time/time.h>

namespace r1r::jobs {

// "job-20261126-114332-3fa9c1": sortable by creation time, unique with a random suffix.
std::string NewJobId(absl::Time now);
// True for ids of that shape (guards file names built from client input).
bool IsValidJobId(const std::string& id);

}  // namespace r1r::jobs
