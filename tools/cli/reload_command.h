#pragma once

namespace r1r::cli {

// `r1r reload [--model-dir DIR] [--allow-older] [--target host:port] [--json]`: makes r1r-serve swap in
// a published checkpoint (by default: re-read the directory it serves) and prints old and new versions.
int ReloadCommand(int argc, char** argv);

}  // namespace r1r::cli
