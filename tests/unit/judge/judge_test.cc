#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <thread>

#include <gtest/gtest.h>

#include "common/judge/openai_backend.h"
#include "common/judge/rate_limiter.h"
#include "common/judge/referee_backend.h"

namespace r1r::judge {
namespace {

// A one-connection-at-a-time HTTP server on loopback that answers from a script of
// (status, body) pairs and records the request bodies it saw.
class ScriptedHttpServer {
 public:
  explicit ScriptedHttpServer(std::deque<std::pair<int, std::string>> script) : script_(std::move(script)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedHttpServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  int requests() const { return requests_; }
  std::string last_body() const { return last_body_; }

 private:
  void Serve() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[8192];
      // Read headers, then Content-Length bytes of body.
      size_t header_end = std::string::npos, need = 0;
      while (true) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
        if (header_end == std::string::npos && (header_end = req.find("\r\n\r\n")) != std::string::npos) {
          auto cl = req.find("Content-Length: ");
          need = cl == std::string::npos ? 0 : std::stoul(req.substr(cl + 16));
        }
        if (header_end != std::string::npos && req.size() >= header_end + 4 + need) break;
      }
      ++requests_;
      last_body_ = header_end == std::string::npos ? "" : req.substr(header_end + 4);
      auto [status, body] = script_.empty() ? std::make_pair(500, std::string("{}")) : script_.front();
      if (!script_.empty()) script_.pop_front();
      const std::string resp = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
                               "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      (void)!write(c, resp.data(), resp.size());
      close(c);
    }
  }

  std::deque<std::pair<int, std::string>> script_;
  int fd_ = -1, port_ = 0;
  std::atomic<int> requests_{0};
  std::string last_body_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string Reply(const std::string& content) {
  return R"({"choices":[{"message":{"role":"assistant","content":")" + content + R"("}}]})";
}

const std::string kConsistent =
    "<think>Response 1 names the right count.\nSo response 1 is better.</think><answer>1</answer>";
const std::string kInconsistent =
    "<think>Response 1 miscounts.\nTherefore response 2 is better.</think><answer>1</answer>";

TEST(judge, RuleBackendComparesReasoningWithAnswer) {
  auto rule = MakeRuleBackend();
  auto v = rule->Assess({kConsistent, kInconsistent, "<answer>2</answer>"});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)[0].consistency, reward::Consistency::kConsistent);
  EXPECT_EQ((*v)[1].consistency, reward::Consistency::kInconsistent);
  EXPECT_EQ((*v)[2].consistency, reward::Consistency::kInconsistent);  // no reasoning: unclear conclusion
}

TEST(judge, OpenAiAsksAgainUntilAReplyParses) {
  ScriptedHttpServer server({{200, Reply("I am not sure")}, {200, Reply("Output: 1")}});
  OpenAiOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1";
  o.model = "qwen2.5-vl-7b";
  o.concurrency = 1;
  auto v = MakeOpenAiBackend(o)->Assess({kConsistent});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ((*v)[0].consistency, reward::Consistency::kConsistent);
  EXPECT_EQ((*v)[0].attempts, 2);
  EXPECT_NE(server.last_body().find("\"temperature\":0.1"), std::string::npos) << server.last_body();
  EXPECT_NE(server.last_body().find("strict judge"), std::string::npos);
}

TEST(judge, OpenAiRetriesServerErrorsAndResolvesTheModel) {
  ScriptedHttpServer server({{503, "{}"}, {200, R"({"data":[{"id":"served-model"}]})"}, {429, "{}"}, {200, Reply("0")}});
  OpenAiOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1";
  o.concurrency = 1;
  auto v = MakeOpenAiBackend(o)->Assess({kInconsistent});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ((*v)[0].consistency, reward::Consistency::kInconsistent);
  EXPECT_EQ(server.requests(), 4);
  EXPECT_NE(server.last_body().find("served-model"), std::string::npos);
}

TEST(judge, OpenAiUnreachableIsAnErrorNotAVerdict) {
  OpenAiOptions o;
  o.base_url = "http://127.0.0.1:1/v1";
  o.model = "m";
  o.transport_retries = 1;
  auto v = MakeOpenAiBackend(o)->Assess({kConsistent});
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kUnavailable);
}

TEST(judge, RateLimiterSpacesRequests) {
  RateLimiter limiter(20);  // burst of 20, then one per 50 ms
  const absl::Time start = absl::Now();
  for (int i = 0; i < 25; ++i) limiter.Acquire();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
}

}  // namespace
}  // namespace r1r::judge
