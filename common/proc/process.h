// Child processes of r1r services: spawn a binary, wait for its "R1R_READY ... port=N
// metrics_port=M" line, send signals, reap. Used by `r1r demo` and the integration tests.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/time/time.h>

namespace r1r::proc {

class Process {
 public:
  // Starts `binary` (a path) with `args`; stdout is read for the ready line, stderr (and stdout
  // after the ready line is read, as the pipe is drained) goes to `log_path`.
  static absl::StatusOr<Process> Start(const std::string& binary, const std::vector<std::string>& args,
                                       const std::string& log_path, absl::Duration ready_timeout = absl::Seconds(30));
  Process() = default;  // no process; assign a started one
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  ~Process();  // SIGKILL if still running

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits for exit; returns the exit status (128+signal when killed), or -1 on timeout.
  int Wait(absl::Duration timeout);

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
  int metrics_port_ = 0;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
};
// Runs a command line through /bin/sh; stderr is appended to stdout when `merge_stderr`.
CommandResult RunCommand(const std::string& command_line, bool merge_stderr = false);

}  // namespace r1r::proc
