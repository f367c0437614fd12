// GraphStore: the durable system of record for interaction events (paper §4.1: each event
// (u, i, t) is an edge of the continuous-time dynamic graph), on RocksDB, with the in-memory
// TemporalGraph index that the sampler, trainer and server read.
//
// What it keeps:
//   - an append-only event log: (dense user, dense item, time) in acceptance order;
//   - dense 32-bit ids, users and items separately, assigned on first sight in acceptance order
//     and persisted both ways (external -> dense, dense -> external);
//   - client event ids (optional), so that a retried batch adds nothing;
//   - metadata: a random store id, and for snapshots the snapshot id.
// Open() rebuilds the TemporalGraph from the log with TemporalGraph::Build.
//
// Usage:
//   GraphStoreOptions options;
//   options.path = "/var/lib/dgsr/store";
//   options.durability = Durability::kGroupCommit;
//   ASSIGN_OR_RETURN(std::unique_ptr<GraphStore> store, GraphStore::Open(options));
//   ASSIGN_OR_RETURN(IngestResult r, store->Ingest(events));
//   auto view = store->graph().Read();
//   RETURN_IF_ERROR(store->CreateSnapshot("/var/lib/dgsr/snapshots/42"));
//   // In the trainer (another process):
//   ASSIGN_OR_RETURN(auto snapshot, GraphStore::OpenReadOnly("/var/lib/dgsr/snapshots/42"));
//   ASSIGN_OR_RETURN(std::vector<Interaction> log, snapshot->AllInteractions());
//
// Time: Event::time is seconds since the Unix epoch (UTC), valid in [kMinEventTime,
// kMaxEventTime]. Order-only datasets use the position in the user's sequence (store/import.h).
//
// Thread-safety: GraphStore is thread-safe. Ingest() calls are serialized internally (one
// writer at a time); graph(), the id lookups, info(), AllInteractions() and CreateSnapshot()
// may run concurrently with Ingest() from any number of threads. See TemporalGraph for the
// reader contract of graph().
//
// Status codes: InvalidArgument for bad events or batches (nothing written); FailedPrecondition
// for Ingest on a read-only store; NotFound when OpenReadOnly's directory holds no store;
// Internal / DataLoss for RocksDB I/O errors and corruption. After an I/O error the store is
// fail-stop: every later Ingest returns that error, reopen to recover.
#ifndef DGSR_STORE_GRAPH_STORE_H_
#define DGSR_STORE_GRAPH_STORE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "store/temporal_graph.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class Env;
}  // namespace rocksdb

namespace dgsr::store {

// Valid Event::time range: 0 (1970-01-01) .. 9999-12-31T23:59:59Z.
inline constexpr Timestamp kMinEventTime = 0;
inline constexpr Timestamp kMaxEventTime = 253402300799;

struct Event {
  std::string user;      // External user id, 1..max_id_bytes bytes (any bytes).
  std::string item;      // External item id, 1..max_id_bytes bytes.
  Timestamp time = 0;    // Unix seconds, in [kMinEventTime, kMaxEventTime].
  std::string event_id;  // Optional client id (<= max_id_bytes); empty = no idempotency.
};

struct IngestResult {
  int64_t accepted = 0;    // Events appended to the log.
  int64_t duplicates = 0;  // Events skipped: their event_id was already stored (or repeated).
  int64_t new_users = 0;   // Dense user ids created by this call.
  int64_t new_items = 0;
};

enum class Durability {
  // Ingest returns after the batch is in the WAL and the WAL is fsynced: an acknowledged event
  // survives a process crash and an OS crash or power loss.
  kSync,
  // Ingest returns after the batch is written to the WAL (write(2), no fsync): an acknowledged
  // event survives a process crash at once, and an OS crash or power loss once the background
  // thread's next WAL fsync completes, which starts at most group_commit_interval after the
  // acknowledgement. Sync() forces that fsync now. The fsync runs under the ingest lock (RocksDB
  // must not sync a WAL after a failed write), so Ingest calls wait while it runs.
  kGroupCommit,
};

struct GraphStoreOptions {
  // Directory of the RocksDB database. Required.
  std::string path;
  // Create an empty store (and missing parent directories) if `path` holds none.
  bool create_if_missing = true;

  Durability durability = Durability::kSync;
  // kGroupCommit: the longest time between an acknowledgement and the WAL fsync covering it.
  absl::Duration group_commit_interval = absl::Milliseconds(10);

  // Limits checked by Ingest (InvalidArgument, nothing written, when exceeded).
  size_t max_batch_events = 100000;
  size_t max_id_bytes = 256;

  // Time source for metadata (creation time). Null = Clock::Real().
  Clock* clock = nullptr;
  // RocksDB environment (file system, threads); tests pass a fault-injecting one. Null = the
  // default Env. Not owned; must outlive the store.
  rocksdb::Env* env = nullptr;

  // Parameters that affect performance.
  size_t write_buffer_bytes = 64 << 20;  // RocksDB memtable size.
};

// Identity and size of a store, as of the call.
struct StoreInfo {
  std::string store_id;     // Random, fixed at creation; a snapshot keeps its source's id.
  std::string snapshot_id;  // Set for stores opened from a snapshot directory; else empty.
  int64_t created_unix_s = 0;
  int64_t num_events = 0;
  NodeId num_users = 0;
  NodeId num_items = 0;
  Timestamp max_time = kMinTime;  // kMinTime when there are no events.
  bool read_only = false;
};

class GraphStore {
 public:
  // Opens (or creates) the store at options.path and rebuilds the in-memory graph.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GraphStore>> Open(
      const GraphStoreOptions& options);
  // Opens a snapshot (CreateSnapshot's directory) read-only: Ingest returns FailedPrecondition.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GraphStore>> OpenReadOnly(
      const std::string& snapshot_dir, rocksdb::Env* env = nullptr);

  // Stops the group-commit thread, fsyncs the WAL and closes the database.
  ~GraphStore();
  GraphStore(const GraphStore&) = delete;
  GraphStore& operator=(const GraphStore&) = delete;

  // Appends the events atomically (one RocksDB WriteBatch) and adds them to graph().
  // Validates the whole batch first: InvalidArgument and nothing written if any event has an
  // empty or over-long id, an over-long event_id, a time out of range, or if the batch has
  // more than max_batch_events events. Events whose event_id is already stored, or repeats one
  // earlier in the batch, are skipped and counted as duplicates. Returns when the batch is as
  // durable as options.durability promises. On an I/O error the batch may or may not have
  // reached the log: retry with event ids to be exactly-once.
  [[nodiscard]] absl::StatusOr<IngestResult> Ingest(std::span<const Event> events);

  // kGroupCommit: fsyncs the WAL now. kSync: no-op. Returns the sticky I/O error if any.
  [[nodiscard]] absl::Status Sync();

  // The in-memory time-ordered adjacency (dense ids).
  const TemporalGraph& graph() const { return *graph_; }

  // Id mappings. Unknown ids give nullopt / NotFound.
  std::optional<NodeId> UserId(std::string_view external) const;
  std::optional<NodeId> ItemId(std::string_view external) const;
  [[nodiscard]] absl::StatusOr<std::string> ExternalUserId(NodeId user) const;
  [[nodiscard]] absl::StatusOr<std::string> ExternalItemId(NodeId item) const;

  // The whole log, dense ids, in acceptance order (read from RocksDB, consistent point in time).
  [[nodiscard]] absl::StatusOr<std::vector<Interaction>> AllInteractions() const;

  // Writes a consistent point-in-time copy (a RocksDB checkpoint: hard links where possible)
  // into `dir`, which must not exist. Open it with OpenReadOnly; its info().snapshot_id is new.
  // `contents` (optional) receives the copy's info as OpenReadOnly will report it (counts as of
  // the copy, the new snapshot_id), without reading the copy back.
  [[nodiscard]] absl::Status CreateSnapshot(const std::string& dir, StoreInfo* contents = nullptr);

  StoreInfo info() const;

 private:
  struct IdSpace;  // One direction of the id mapping (users or items).

  GraphStore(const GraphStoreOptions& options, bool read_only);
  [[nodiscard]] absl::Status OpenDb();
  [[nodiscard]] absl::Status Load();
  void GroupCommitLoop();
  [[nodiscard]] absl::Status Fail(absl::Status status);  // Records a sticky error.

  const GraphStoreOptions options_;
  const bool read_only_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // {default, log}; destroyed before db_.
  rocksdb::ColumnFamilyHandle* log_cf_ = nullptr;
  std::unique_ptr<TemporalGraph> graph_;
  std::unique_ptr<IdSpace> users_;
  std::unique_ptr<IdSpace> items_;

  absl::Mutex ingest_mu_;  // Serializes Ingest, Sync and CreateSnapshot's metadata write.
  uint64_t next_seq_ ABSL_GUARDED_BY(ingest_mu_) = 0;

  mutable absl::Mutex info_mu_;
  StoreInfo info_ ABSL_GUARDED_BY(info_mu_);
  absl::Status sticky_error_ ABSL_GUARDED_BY(info_mu_);

  absl::Mutex commit_mu_;
  bool stop_ ABSL_GUARDED_BY(commit_mu_) = false;
  std::atomic<bool> wal_dirty_{false};
  std::thread committer_;
};

}  // namespace dgsr::store

#endif  // DGSR_STORE_GRAPH_STORE_H_
