// A minimal HTTP/1.x server for Prometheus scrapes: GET /metrics returns the text exposition
// format of the registered collectables. (prometheus-cpp's civetweb-based Exposer cannot start its
// worker thread in processes that load Debian's LibTorch, so r1r serves /metrics itself.)
// Each connection has a deadline for the whole exchange and the number open is capped (the oldest
// makes room), so neither a slow client nor idle connections keep a scrape from being answered.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <absl/status/statusor.h>
#include <prometheus/collectable.h>

namespace r1r::obs {

class HttpExposer {
 public:
  // Binds "host:port" (port 0 picks a free one) and starts serving.
  static absl::StatusOr<std::unique_ptr<HttpExposer>> Start(const std::string& listen);
  ~HttpExposer();

  void Register(std::shared_ptr<prometheus::Collectable> collectable);
  int port() const { return port_; }

 private:
  HttpExposer(int fd, int port);
  void Serve();
  std::string Render();

  int fd_;
  int port_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  std::thread thread_;
};

}  // namespace r1r::obs
