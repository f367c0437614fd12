// Snapshots: point-in-time copies of the live store for the trainer, in one directory, with
// retention. Each snapshot is <dir>/<unix microseconds>, a RocksDB checkpoint that
// GraphStore::OpenReadOnly (and `dgsr train --snapshot=`) opens while the server keeps running.
//
//   Snapshots snapshots(&store, {.dir = "/var/lib/dgsr/store.snapshots", .keep = 3});
//   ASSIGN_OR_RETURN(SnapshotTaken s, snapshots.Take());   // s.path, s.contents, s.removed
//
// Retention deletes the oldest snapshots beyond `keep` after each new one (never the new one);
// keep at least 2 so that a trainer reading the previous snapshot is not pulled from under it.
// Thread-safe (snapshots are taken one at a time).
#ifndef DGSR_SERVER_SNAPSHOTS_H_
#define DGSR_SERVER_SNAPSHOTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "store/graph_store.h"

namespace dgsr::server {

struct SnapshotOptions {
  std::string dir;  // required
  int keep = 3;     // snapshots kept, >= 1
};

struct SnapshotTaken {
  std::string path;
  store::StoreInfo contents;          // what the snapshot holds, its snapshot_id included
  std::vector<std::string> removed;   // deleted by retention
};

class Snapshots {
 public:
  Snapshots(store::GraphStore* store, SnapshotOptions options) : store_(store), options_(std::move(options)) {}

  // Internal on I/O errors (nothing is deleted then).
  [[nodiscard]] absl::StatusOr<SnapshotTaken> Take();

 private:
  store::GraphStore* store_;
  const SnapshotOptions options_;
  absl::Mutex mu_;
};

}  // namespace dgsr::server

#endif  // DGSR_SERVER_SNAPSHOTS_H_
