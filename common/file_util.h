// Small, durable file helpers shared by the trainer (checkpoints, model export) and the CLI.
// All functions return absl::Status; errors name the path and the errno text.
#ifndef DGSR_COMMON_FILE_UTIL_H_
#define DGSR_COMMON_FILE_UTIL_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dgsr {

// Reads a whole file. NotFound if it does not exist.
[[nodiscard]] absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes `contents` to `path` atomically: a temp file in the same directory is written, fsynced,
// renamed over `path`, and the directory is fsynced. A crash leaves either the old or the new file.
[[nodiscard]] absl::Status WriteFileAtomic(const std::string& path, std::string_view contents);

// fsyncs a file written by other code (for example libtorch's serializer), so that its contents
// are durable before it is renamed into place.
[[nodiscard]] absl::Status SyncFile(const std::string& path);

// fsyncs a directory so that renames inside it are durable.
[[nodiscard]] absl::Status SyncDir(const std::string& dir);

// Creates a directory and its parents (like mkdir -p). OK if it already exists.
[[nodiscard]] absl::Status MakeDirs(const std::string& dir);

// An exclusive flock(2) on a lock file (created if missing), held until the object is destroyed
// or the process dies; it excludes other processes and other FileLocks of this process alike.
// Acquire with wait = false answers Unavailable at once when another holder has it.
class FileLock {
 public:
  [[nodiscard]] static absl::StatusOr<FileLock> Acquire(const std::string& path, bool wait);
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace dgsr

#endif  // DGSR_COMMON_FILE_UTIL_H_
