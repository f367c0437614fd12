#include "store/internal/rocksdb_util.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"

namespace dgsr::store::internal {

rocksdb::Options MakeRocksOptions(const GraphStoreOptions& options) {
  rocksdb::Options o;
  o.create_if_missing = options.create_if_missing;
  if (options.env != nullptr) o.env = options.env;
  o.write_buffer_size = options.write_buffer_bytes;
  o.compression = rocksdb::kNoCompression;  // 16-byte values; compression buys nothing.
  o.max_background_jobs = 2;
  rocksdb::BlockBasedTableOptions table;
  // Event-id lookups on ingest are mostly misses; a bloom filter keeps them off the disk.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return o;
}

absl::Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(absl::string_view(context.data(), context.size()),
                                     ": rocksdb: ", s.ToString());
  switch (s.code()) {
    case rocksdb::Status::kNotFound: return absl::NotFoundError(message);
    case rocksdb::Status::kCorruption: return absl::DataLossError(message);
    case rocksdb::Status::kInvalidArgument: return absl::InvalidArgumentError(message);
    case rocksdb::Status::kNotSupported: return absl::UnimplementedError(message);
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTryAgain:
    case rocksdb::Status::kTimedOut: return absl::UnavailableError(message);
    case rocksdb::Status::kAborted: return absl::AbortedError(message);
    default: return absl::InternalError(message);  // IOError, Incomplete, ...
  }
}

void AppendBigEndian64(uint64_t v, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
void AppendBigEndian32(uint32_t v, std::string* out) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
uint64_t ReadBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int k = 0; k < 8; ++k) v = (v << 8) | static_cast<unsigned char>(p[k]);
  return v;
}
uint32_t ReadBigEndian32(const char* p) {
  uint32_t v = 0;
  for (int k = 0; k < 4; ++k) v = (v << 8) | static_cast<unsigned char>(p[k]);
  return v;
}

void EncodeEventKey(uint64_t seq, char out[kEventKeyBytes]) {
  for (int k = 0; k < 8; ++k) out[k] = static_cast<char>(seq >> (56 - 8 * k));
}

rocksdb::Status OpenDb(const GraphStoreOptions& options, bool read_only, rocksdb::DB** db,
                       std::vector<rocksdb::ColumnFamilyHandle*>* handles) {
  rocksdb::Options o = MakeRocksOptions(options);
  o.create_missing_column_families = options.create_if_missing;
  const rocksdb::ColumnFamilyOptions cf(o);
  const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, cf}, {kLogColumnFamily, cf}};
  const rocksdb::DBOptions db_options(o);
  return read_only ? rocksdb::DB::OpenForReadOnly(db_options, options.path, families, handles, db)
                   : rocksdb::DB::Open(db_options, options.path, families, handles, db);
}

// Little-endian hosts only (x86-64, aarch64), like RocksDB's own fixed encodings here.
void EncodeEventValue(NodeId user, NodeId item, Timestamp time, char out[kEventValueBytes]) {
  std::memcpy(out, &user, 4);
  std::memcpy(out + 4, &item, 4);
  std::memcpy(out + 8, &time, 8);
}

Interaction DecodeEventValue(const char* p) {
  Interaction x;
  std::memcpy(&x.user, p, 4);
  std::memcpy(&x.item, p + 4, 4);
  std::memcpy(&x.time, p + 8, 8);
  return x;
}

}  // namespace dgsr::store::internal
