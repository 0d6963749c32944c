// SHA-256 of files, for the image content hashes of SampleRef (images are read from the shared
// dataset by path; the hash catches a dataset that changed under a running job).
#pragma once

#include <string>
#include <string_view>

#include <absl/status/statusor.h>

namespace r1r::train {

// Lower-case hex digest of `data`.
std::string Sha256Hex(std::string_view data);

// Lower-case hex digest of a file's content.
absl::StatusOr<std::string> Sha256HexOfFile(const std::string& path);

}  // namespace r1r::train
