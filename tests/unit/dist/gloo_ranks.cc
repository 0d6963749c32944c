#include "tests/unit/dist/gloo_ranks.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/dist/process_group.h"
#include "tests/unit/dist/free_port.h"

namespace r1r::dist::testing {

bool OnGlooRanks(int world, std::chrono::milliseconds timeout,
                 const std::function<void(int rank, ProcessGroup* group)>& body) {
  const int port = FreeLoopbackPort();
  std::atomic<bool> no_gloo{false};
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      GroupOptions o;
      o.rank = rank;
      o.world_size = world;
      o.master_port = port;
      o.timeout = timeout;
      auto group = ProcessGroup::Create(o);
      if (group.status().code() == absl::StatusCode::kUnimplemented) {
        no_gloo = true;
        return;
      }
      ASSERT_TRUE(group.ok()) << group.status();
      body(rank, group->get());
    });
  }
  for (auto& t : threads) t.join();
  return !no_gloo;
}

}  // namespace r1r::dist::testing
