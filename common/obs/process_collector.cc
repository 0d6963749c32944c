#include "common/obs/process_collector.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include <prometheus/metric_family.h>

namespace r1r::obs {
namespace {

struct ProcStat {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double start_time_seconds = 0;
};

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> value;
      return value;
    }
  }
  return 0;
}

ProcStat ReadProcStat() {
  ProcStat s;
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  // Fields after the parenthesised command name, which may contain spaces.
  auto close = line.rfind(')');
  if (close == std::string::npos) return s;
  std::istringstream fields(line.substr(close + 2));
  std::vector<std::string> f;
  for (std::string tok; fields >> tok;) f.push_back(tok);
  // f[0] is field 3 (state); utime=14, stime=15, starttime=22, vsize=23, rss=24.
  auto field = [&](int n) { return n - 3 < static_cast<int>(f.size()) ? std::stod(f[n - 3]) : 0.0; };
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  s.cpu_seconds = (field(14) + field(15)) / ticks;
  s.start_time_seconds = BootTimeSeconds() + field(22) / ticks;
  s.virtual_bytes = field(23);
  s.resident_bytes = field(24) * static_cast<double>(sysconf(_SC_PAGESIZE));
  return s;
}

double OpenFds() {
  double n = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir) != nullptr) ++n;
    closedir(dir);
    n -= 2;  // "." and ".."
  }
  return n;
}

class ProcessCollector : public prometheus::Collectable {
 public:
  explicit ProcessCollector(std::string service) : service_(std::move(service)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    const ProcStat s = ReadProcStat();
    return {
        Family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
               prometheus::MetricType::Counter, s.cpu_seconds),
        Family("process_resident_memory_bytes", "Resident memory size in bytes.",
               prometheus::MetricType::Gauge, s.resident_bytes),
        Family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
               prometheus::MetricType::Gauge, s.virtual_bytes),
        Family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
               prometheus::MetricType::Gauge, s.start_time_seconds),
        Family("process_open_fds", "Number of open file descriptors.",
               prometheus::MetricType::Gauge, OpenFds()),
    };
  }

 private:
  prometheus::MetricFamily Family(const std::string& name, const std::string& help,
                                  prometheus::MetricType type, double value) const {
    prometheus::ClientMetric m;
    m.label.push_back({"service", service_});
    if (type == prometheus::MetricType::Counter) {
      m.counter.value = value;
    } else {
      m.gauge.value = value;
    }
    return {name, help, type, {m}};
  }

  std::string service_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> MakeProcessCollector(const std::string& service) {
  return std::make_shared<ProcessCollector>(service);
}

}  // namespace r1r::obs
