#include "common/obs/http_exposer.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>

#include <absl/strings/str_cat.h>
#include <prometheus/text_serializer.h>

namespace r1r::obs {
namespace {

constexpr size_t kMaxRequestBytes = 16 << 10;
// Per connection: the whole exchange (request in, response out) must finish within this.
constexpr std::chrono::seconds kConnectionDeadline{5};
// Open connections at most; the oldest is closed to admit a new one.
constexpr size_t kMaxConnections = 32;

}  // namespace

absl::StatusOr<std::unique_ptr<HttpExposer>> HttpExposer::Start(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError(absl::StrCat("'", listen, "' is not host:port"));
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.empty()) host = "0.0.0.0";
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resolve '", listen, "': ", gai_strerror(rc)));
  }
  // Non-blocking: Serve accepts every pending connection and then returns to poll.
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const bool ok = fd >= 0 && bind(fd, res->ai_addr, res->ai_addrlen) == 0 && ::listen(fd, 64) == 0;
  freeaddrinfo(res);
  if (!ok) {
    const std::string err = std::strerror(errno);
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat("cannot serve /metrics on '", listen, "': ", err));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  const int bound_port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                                     : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  std::unique_ptr<HttpExposer> e(new HttpExposer(fd, bound_port));
  e->thread_ = std::thread([raw = e.get()] { raw->Serve(); });
  return e;
}

HttpExposer::HttpExposer(int fd, int port) : fd_(fd), port_(port) {}

HttpExposer::~HttpExposer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  close(fd_);
}

void HttpExposer::Register(std::shared_ptr<prometheus::Collectable> collectable) {
  std::lock_guard<std::mutex> lock(mu_);
  collectables_.push_back(std::move(collectable));
}

namespace {

// One open scrape connection: the request read so far, then the response being written.
struct Connection {
  int fd = -1;
  std::chrono::steady_clock::time_point deadline;
  std::string request;
  std::string response;
  size_t sent = 0;
};

// Returns the response for a complete (or abandoned) request.
std::string Respond(const std::string& request, const std::function<std::string()>& render) {
  const bool is_get = request.rfind("GET ", 0) == 0;
  const auto path_end = request.find(' ', 4);
  const std::string path = is_get && path_end != std::string::npos ? request.substr(4, path_end - 4) : "";
  if (path != "/metrics" && path.rfind("/metrics?", 0) != 0) {
    return "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n";
  }
  const std::string body = render();
  return absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n",
                      "Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
}

}  // namespace

// One thread serves every connection with poll(2), none of them blocking: a client that sends its
// request slowly (or not at all) or does not read the response holds only its own slot, for at most
// kConnectionDeadline; with kMaxConnections open, the oldest is closed to admit a new one. So a
// scrape always gets an answer.
void HttpExposer::Serve() {
  using SteadyClock = std::chrono::steady_clock;
  std::vector<Connection> conns;
  auto close_at = [&](size_t i) {
    close(conns[i].fd);
    conns.erase(conns.begin() + static_cast<std::ptrdiff_t>(i));
  };
  while (!stop_) {
    std::vector<pollfd> fds;
    fds.push_back({fd_, POLLIN, 0});
    for (const Connection& c : conns) fds.push_back({c.fd, static_cast<short>(c.response.empty() ? POLLIN : POLLOUT), 0});
    if (poll(fds.data(), fds.size(), 200) < 0 && errno != EINTR) continue;
    const auto now = SteadyClock::now();
    // Existing connections first (fds[1..] match conns before any is added or removed).
    std::vector<bool> done(conns.size(), false);
    for (size_t i = 0; i < conns.size(); ++i) {
      Connection& c = conns[i];
      const short ev = fds[i + 1].revents;
      if (c.response.empty() && (ev & (POLLIN | POLLHUP | POLLERR))) {
        char buf[2048];
        const ssize_t n = recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) c.request.append(buf, static_cast<size_t>(n));
        const bool complete = c.request.find("\r\n\r\n") != std::string::npos || c.request.size() >= kMaxRequestBytes;
        if (n == 0 || complete) {
          c.response = Respond(c.request, [this] { return Render(); });
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          done[i] = true;
        }
      } else if (!c.response.empty() && (ev & (POLLOUT | POLLHUP | POLLERR))) {
        const ssize_t n = send(c.fd, c.response.data() + c.sent, c.response.size() - c.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) c.sent += static_cast<size_t>(n);
        if (c.sent == c.response.size() || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
          done[i] = true;
        }
      }
      if (now >= c.deadline) done[i] = true;  // slowloris, or a client that does not read
    }
    for (size_t i = conns.size(); i-- > 0;) {
      if (done[i]) close_at(i);
    }
    if (fds[0].revents & POLLIN) {
      while (true) {
        const int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (client < 0) break;
        if (conns.size() >= kMaxConnections) {  // the oldest still sending its request makes room
          size_t victim = 0;
          while (victim + 1 < conns.size() && !conns[victim].response.empty()) ++victim;
          close_at(victim);
        }
        Connection c;
        c.fd = client;
        c.deadline = SteadyClock::now() + kConnectionDeadline;
        conns.push_back(std::move(c));
      }
    }
  }
  for (size_t i = conns.size(); i-- > 0;) close_at(i);
}

std::string HttpExposer::Render() {
  std::vector<prometheus::MetricFamily> families;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : collectables_) {
      auto f = c->Collect();
      families.insert(families.end(), std::make_move_iterator(f.begin()), std::make_move_iterator(f.end()));
    }
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace r1r::obs
