#include "common/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace dgsr {
namespace {

LogLevel LevelFromEnv() {
  const char* env = std::getenv("DGSR_LOG_LEVEL");
  if (env == nullptr) return LogLevel::kInfo;
  if (std::strcmp(env, "DEBUG") == 0) return LogLevel::kDebug;
  if (std::strcmp(env, "WARN") == 0) return LogLevel::kWarn;
  if (std::strcmp(env, "ERROR") == 0) return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<int>& MinLevel() {
  static std::atomic<int> level{static_cast<int>(LevelFromEnv())};
  return level;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kError: return "ERROR";
  }
  return "?";
}

}  // namespace

void SetMinLogLevel(LogLevel level) { MinLevel().store(static_cast<int>(level)); }

bool LogLevelEnabled(LogLevel level) {
  return static_cast<int>(level) >= MinLevel().load(std::memory_order_relaxed);
}

namespace internal {

LogRecord::LogRecord(LogLevel level, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  stream_ << absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()) << ' '
          << LevelName(level) << ' ' << (base ? base + 1 : file) << ':' << line << ' ';
}

LogRecord::~LogRecord() {
  stream_ << '\n';
  const std::string line = stream_.str();
  // One write(2) per record keeps concurrent records from interleaving.
  ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
}

LogRecord& LogRecord::operator<<(const Kv& kv) {
  stream_ << ' ' << kv.key << '=';
  if (kv.value.find(' ') != std::string::npos) {
    stream_ << '"' << kv.value << '"';
  } else {
    stream_ << kv.value;
  }
  return *this;
}

}  // namespace internal
}  // namespace dgsr
