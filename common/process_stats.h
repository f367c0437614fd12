// A process's CPU time, memory, thread count and start time, read from Linux's /proc: for the
// server's process_* metrics (prometheus-cpp 1.0.1 has no process collector) and for benchmarks
// that measure another process's CPU use.
#ifndef DGSR_COMMON_PROCESS_STATS_H_
#define DGSR_COMMON_PROCESS_STATS_H_

#include <sys/types.h>

#include <optional>

namespace dgsr {

struct ProcessStats {
  double cpu_seconds = 0;        // user + system
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double threads = 0;
  double start_time_unix_s = 0;
};

// Stats of process `pid` (0: this process); nullopt if /proc cannot be read (no such process).
std::optional<ProcessStats> ReadProcessStats(pid_t pid = 0);

}  // namespace dgsr

#endif  // DGSR_COMMON_PROCESS_STATS_H_
