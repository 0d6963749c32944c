// Deleting a directory tree without std::filesystem::remove_all.
//
// Why: PyTorch's wheels (the LibTorch of the CUDA image and of the GPU machines) export their own copy of
// std::filesystem from libtorch.so, and the dynamic linker binds the calls of every binary linked to it
// there. Its remove_all jumps to address 0 on a non-empty directory (seen on an H100 with torch
// 2.11.0+cu130, 2026-11-27). This uses nftw(3) from the C library instead.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace r1r::files {

// Removes `path` and, when it is a directory, everything under it. Symbolic links are removed, never
// followed (also when `path` names one with a trailing '/'). A path that does not exist is not an
// error, as with std::filesystem::remove_all (nor is one running through a file, "file/child"). The
// first failure (a permission, a busy mount) stops the walk and is returned with the path that could
// not be removed.
absl::Status RemoveTree(const std::string& path);

}  // namespace r1r::files
