// One logging facade for the whole project: structured, one line per record, to stderr.
//
//   DGSR_LOG(INFO) << "store opened" << Kv("events", n) << Kv("path", dir);
//   -> 2026-11-27T01:48:26.123Z INFO store.cc:42 store opened events=512 path=/data/db
//
// Thread-safe: each record is formatted in its own buffer and written with one write(2).
// The minimum level comes from SetMinLogLevel() or the DGSR_LOG_LEVEL environment variable
// (DEBUG, INFO, WARN, ERROR); default INFO.
#ifndef DGSR_COMMON_LOGGING_H_
#define DGSR_COMMON_LOGGING_H_

#include <sstream>
#include <string>
#include <string_view>

namespace dgsr {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetMinLogLevel(LogLevel level);
bool LogLevelEnabled(LogLevel level);

// A key=value field. Values with spaces are quoted.
struct Kv {
  template <typename T>
  Kv(std::string_view key, const T& value) : key(key) {
    std::ostringstream os;
    os << value;
    this->value = os.str();
  }
  std::string_view key;
  std::string value;
};

namespace internal {
class LogRecord {
 public:
  LogRecord(LogLevel level, const char* file, int line);
  ~LogRecord();  // Writes the record.
  LogRecord(const LogRecord&) = delete;
  LogRecord& operator=(const LogRecord&) = delete;

  template <typename T>
  LogRecord& operator<<(const T& value) {
    stream_ << value;
    return *this;
  }
  LogRecord& operator<<(const Kv& kv);

 private:
  std::ostringstream stream_;
};
}  // namespace internal
}  // namespace dgsr

#define DGSR_LOG_LEVEL_DEBUG ::dgsr::LogLevel::kDebug
#define DGSR_LOG_LEVEL_INFO ::dgsr::LogLevel::kInfo
#define DGSR_LOG_LEVEL_WARN ::dgsr::LogLevel::kWarn
#define DGSR_LOG_LEVEL_ERROR ::dgsr::LogLevel::kError

#define DGSR_LOG(level)                                         \
  if (!::dgsr::LogLevelEnabled(DGSR_LOG_LEVEL_##level)) {       \
  } else                                                        \
    ::dgsr::internal::LogRecord(DGSR_LOG_LEVEL_##level, __FILE__, __LINE__)

#endif  // DGSR_COMMON_LOGGING_H_
