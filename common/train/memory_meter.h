// Exact CPU memory accounting for LibTorch: a counting wrapper around the default CPU allocator, so
// tests and benches can read the bytes tensors hold now and at peak (activations kept for backward,
// optimizer state) without guessing from the process RSS.
#pragma once

#include <cstdint>

namespace r1r::train {

// Installs the counting allocator for CPU tensors (idempotent). Tensors allocated before are not
// counted while they live, nor subtracted when they are freed.
void InstallCpuMemoryMeter();
int64_t CpuBytesInUse();
int64_t CpuPeakBytes();
// Starts a new peak from the bytes in use now.
void ResetCpuPeakBytes();

}  // namespace r1r::train
