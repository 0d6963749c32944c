// The standard process_* metrics (prometheus-cpp has no process collector of its own).
#pragma once

#include <memory>
#include <string>

#include <prometheus/collectable.h>

namespace r1r::obs {

std::shared_ptr<prometheus::Collectable> MakeProcessCollector(const std::string& service);

}  // namespace r1r::obs
