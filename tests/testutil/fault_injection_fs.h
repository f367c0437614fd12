// A fault-injecting RocksDB FileSystem for store tests (Debian ships RocksDB's public headers
// only, not its test utilities). It wraps a real file system and, for WAL files (*.log):
//   - fails Append (write) and/or Sync/Fsync calls on demand;
//   - tracks how many bytes of each WAL file were synced, and after Freeze() silently drops
//     every later write and sync, so that DropUnsyncedWalData() can then cut each WAL back to
//     what was synced: the state a power cut would leave (LevelDB's fault-injection test idea).
//
// Usage:
//   auto fs = std::make_shared<FaultInjectionFileSystem>(rocksdb::FileSystem::Default());
//   std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
//   options.env = env.get();
//   fs->fail_wal_syncs = true;   // the next WAL fsync returns an IOError
//
// Thread-safe.
#ifndef DGSR_TESTS_TESTUTIL_FAULT_INJECTION_FS_H_
#define DGSR_TESTS_TESTUTIL_FAULT_INJECTION_FS_H_

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "rocksdb/file_system.h"

namespace dgsr::testing {

class FaultInjectionFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultInjectionFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base)
      : rocksdb::FileSystemWrapper(base) {}
  const char* Name() const override { return "FaultInjectionFileSystem"; }

  std::atomic<bool> fail_wal_appends{false};
  std::atomic<bool> fail_wal_syncs{false};
  std::atomic<int> injected_failures{0};

  // From now on WAL writes and syncs "succeed" without reaching the disk.
  void Freeze() { frozen_ = true; }

  // Truncates every WAL file written through this file system to its last synced size. Call
  // after the DB is closed (or the process state is otherwise abandoned).
  void DropUnsyncedWalData() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, synced] : synced_) {
      std::error_code ec;
      if (std::filesystem::exists(name, ec)) std::filesystem::resize_file(name, synced, ec);
    }
  }

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewWritableFile(fname, opts, result, dbg);
    if (s.ok() && IsWal(fname)) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        synced_[fname] = 0;
      }
      *result = std::make_unique<File>(std::move(*result), this, fname);
    }
    return s;
  }

 private:
  static bool IsWal(const std::string& name) {
    return name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0;
  }

  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile>&& base, FaultInjectionFileSystem* fs,
         std::string name)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(base)), fs_(fs), name_(std::move(name)) {}

    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->frozen_) return rocksdb::IOStatus::OK();
      if (fs_->fail_wal_appends) return Injected("write");
      written_ += data.size();
      return target()->Append(data, options, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo&,
                             rocksdb::IODebugContext* dbg) override {
      return Append(data, options, dbg);
    }
    rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override {
      if (fs_->frozen_) return rocksdb::IOStatus::OK();
      return target()->Truncate(size, options, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
      return DoSync([&] { return target()->Sync(options, dbg); });
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      return DoSync([&] { return target()->Fsync(options, dbg); });
    }
    rocksdb::IOStatus RangeSync(uint64_t, uint64_t, const rocksdb::IOOptions&,
                                rocksdb::IODebugContext*) override {
      return rocksdb::IOStatus::OK();  // A partial sync promises nothing; do not count it.
    }

   private:
    rocksdb::IOStatus Injected(const char* what) {
      ++fs_->injected_failures;
      return rocksdb::IOStatus::IOError(std::string("injected ") + what + " failure on " + name_);
    }
    template <typename F>
    rocksdb::IOStatus DoSync(F sync) {
      if (fs_->frozen_) return rocksdb::IOStatus::OK();
      if (fs_->fail_wal_syncs) return Injected("sync");
      const uint64_t covered = written_;
      rocksdb::IOStatus s = target()->Flush(rocksdb::IOOptions(), nullptr);
      if (s.ok()) s = sync();
      if (s.ok()) {
        std::lock_guard<std::mutex> lock(fs_->mu_);
        fs_->synced_[name_] = covered;
      }
      return s;
    }

    FaultInjectionFileSystem* fs_;
    const std::string name_;
    std::atomic<uint64_t> written_{0};
  };

  std::atomic<bool> frozen_{false};
  std::mutex mu_;
  std::map<std::string, uint64_t> synced_;
};

}  // namespace dgsr::testing

#endif  // DGSR_TESTS_TESTUTIL_FAULT_INJECTION_FS_H_
