#include "common/proc/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <regex>

#include <absl/strings/str_cat.h>

namespace r1r::proc {

absl::StatusOr<Process> Process::Start(const std::string& binary, const std::vector<std::string>& args,
                                       const std::string& log_path, absl::Duration ready_timeout) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    int err = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err >= 0) dup2(err, STDERR_FILENO);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  Process p;
  p.pid_ = pid;
  p.stdout_fd_ = out[0];
  std::string buffer;
  const absl::Time deadline = absl::Now() + ready_timeout;
  static const std::regex kReady(R"(R1R_READY service=\S+ port=(\d+) metrics_port=(\d+))");
  while (absl::Now() < deadline) {
    pollfd pfd{p.stdout_fd_, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    char chunk[512];
    ssize_t n = read(p.stdout_fd_, chunk, sizeof(chunk));
    if (n <= 0) break;  // exited
    buffer.append(chunk, static_cast<size_t>(n));
    std::smatch m;
    if (std::regex_search(buffer, m, kReady)) {
      p.port_ = std::stoi(m[1]);
      p.metrics_port_ = std::stoi(m[2]);
      return p;
    }
  }
  return absl::DeadlineExceededError(absl::StrCat(binary, " did not report ready; see ", log_path));
}

Process::Process(Process&& o) noexcept { *this = std::move(o); }

Process& Process::operator=(Process&& o) noexcept {
  std::swap(pid_, o.pid_);
  std::swap(stdout_fd_, o.stdout_fd_);
  port_ = o.port_;
  metrics_port_ = o.metrics_port_;
  return *this;
}

Process::~Process() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

void Process::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

int Process::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (pid_ > 0 && absl::Now() < deadline) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    usleep(20000);
  }
  return -1;
}

CommandResult RunCommand(const std::string& command_line, bool merge_stderr) {
  CommandResult r;
  FILE* f = popen((command_line + (merge_stderr ? " 2>&1" : "")).c_str(), "r");
  if (!f) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) r.out.append(buf, n);
  int status = pclose(f);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace r1r::proc
