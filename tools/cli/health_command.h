#pragma once

namespace r1r::cli {

// `r1r health [--target host:port ...]`: checks the standard gRPC health service; exit 0 when
// every target reports SERVING.
int HealthCommand(int argc, char** argv);

}  // namespace r1r::cli
