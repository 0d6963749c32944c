// Runs a test body on several Gloo ranks, each a thread of this process, rendezvousing on a free
// loopback port.
#pragma once

#include <chrono>
#include <functional>

namespace r1r::dist {
class ProcessGroup;
}

namespace r1r::dist::testing {

// Calls body(rank, group) on `world` ranks and joins them; false when this build has no Gloo backend
// (the caller skips). A rank whose group cannot be created fails the test.
bool OnGlooRanks(int world, std::chrono::milliseconds timeout,
                 const std::function<void(int rank, ProcessGroup* group)>& body);

}  // namespace r1r::dist::testing
