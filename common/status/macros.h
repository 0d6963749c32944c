// The one early-return helper for absl::Status, so files stop defining their own.
#pragma once

#include <absl/status/status.h>

// Evaluates `expr` (an absl::Status) once and returns it from the enclosing function when it is not OK.
#define R1R_RETURN_IF_ERROR(expr)                 \
  do {                                            \
    ::absl::Status r1r_status_ = (expr);          \
    if (!r1r_status_.ok()) return r1r_status_;    \
  } while (0)
