// libFuzzer: ParseJobSpec on arbitrary YAML (SubmitJob, r1r submit --dry-run). An accepted spec is
// described by the plan (model.path is cleared first: the fuzzer must not read files).
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config/job_spec.h"
#include "common/config/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto spec = r1r::config::ParseJobSpec(std::string(reinterpret_cast<const char*>(data), size));
  if (spec.ok()) {
    spec->model.path = "/nonexistent";
    (void)r1r::config::DescribePlan(*spec);
  }
  return 0;
}
