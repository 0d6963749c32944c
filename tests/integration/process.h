// Integration tests spawn the real binaries of this build.
#pragma once

#include <string>

#include "common/proc/process.h"

namespace r1r::testing {

using proc::CommandResult;
using proc::Process;
using proc::RunCommand;

inline std::string BinDir() { return std::string(R1R_BINARY_DIR) + "/services"; }
inline std::string CliPath() { return std::string(R1R_BINARY_DIR) + "/tools/cli/r1r"; }

}  // namespace r1r::testing
