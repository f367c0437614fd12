// Private to store/: RocksDB option defaults, status conversion and the on-disk key layout.
//
// Layout. Column family "log" holds only the event log, so that its keys are pure appends (the
// memtable insert stays O(1), as for db_bench fillseq):
//   seq (8 bytes, big-endian)           -> user (4, LE) + item (4, LE) + time (8, LE)
// The default column family holds the rest (one-byte prefixes):
//   'i' + client event id               -> seq (8, BE)                                  idempotency
//   'u' + external user id              -> dense user (4, LE)
//   'U' + dense user (4, BE)            -> external user id
//   'v' / 'V'                           -> the same for items
//   'm' + name                          -> metadata (store_id, created, last_snapshot_id, format)
#ifndef DGSR_STORE_INTERNAL_ROCKSDB_UTIL_H_
#define DGSR_STORE_INTERNAL_ROCKSDB_UTIL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/status.h"
#include "store/graph_store.h"

namespace dgsr::store::internal {

inline constexpr char kLogColumnFamily[] = "log";
inline constexpr char kEventIdPrefix = 'i';
inline constexpr char kUserPrefix = 'u';
inline constexpr char kUserReversePrefix = 'U';
inline constexpr char kItemPrefix = 'v';
inline constexpr char kItemReversePrefix = 'V';
inline constexpr char kMetaPrefix = 'm';
inline constexpr size_t kEventValueBytes = 16;

// The RocksDB options every store (and the raw-RocksDB baseline of `dgsr bench store`) uses.
rocksdb::Options MakeRocksOptions(const GraphStoreOptions& options);

// Opens the database at options.path with both column families (creating them if allowed);
// `handles` gets {default, log}. The caller destroys the handles before closing the DB.
rocksdb::Status OpenDb(const GraphStoreOptions& options, bool read_only, rocksdb::DB** db,
                       std::vector<rocksdb::ColumnFamilyHandle*>* handles);

// RocksDB status -> absl::Status, with `context` prepended to the message.
absl::Status FromRocks(const rocksdb::Status& s, std::string_view context);

void AppendBigEndian64(uint64_t v, std::string* out);
void AppendBigEndian32(uint32_t v, std::string* out);
uint64_t ReadBigEndian64(const char* p);
uint32_t ReadBigEndian32(const char* p);

inline constexpr size_t kEventKeyBytes = 8;
void EncodeEventKey(uint64_t seq, char out[kEventKeyBytes]);
void EncodeEventValue(NodeId user, NodeId item, Timestamp time, char out[kEventValueBytes]);
Interaction DecodeEventValue(const char* p);

}  // namespace dgsr::store::internal

#endif  // DGSR_STORE_INTERNAL_ROCKSDB_UTIL_H_
