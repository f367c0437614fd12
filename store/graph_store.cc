#include "store/graph_store.h"

#include <cstring>
#include <filesystem>
#include <random>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"
#include "store/internal/rocksdb_util.h"

namespace dgsr::store {

using internal::FromRocks;

namespace {

constexpr char kMetaStoreId[] = "mstore_id";
constexpr char kMetaCreated[] = "mcreated_unix_s";
constexpr char kMetaLastSnapshotId[] = "mlast_snapshot_id";
constexpr char kMetaFormat[] = "mformat";
constexpr char kFormatVersion[] = "1";

std::string RandomId() {
  std::random_device rd;
  return absl::StrFormat("%08x%08x%08x%08x", rd(), rd(), rd(), rd());
}

rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

absl::Status CheckId(absl::string_view what, const std::string& id, size_t max_bytes,
                     bool optional, size_t index) {
  if (id.empty() && !optional) {
    return absl::InvalidArgumentError(absl::StrCat("event ", index, ": empty ", what));
  }
  if (id.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("event ", index, ": ", what, " has ", id.size(),
                                                   " bytes, limit ", max_bytes));
  }
  return absl::OkStatus();
}

}  // namespace

// External <-> dense ids of one kind. Only the (serialized) ingest path mutates it, so that path
// reads without a lock; other threads read under mu.
struct GraphStore::IdSpace {
  IdSpace(char forward, char reverse) : forward_prefix(forward), reverse_prefix(reverse) {}

  const char forward_prefix;
  const char reverse_prefix;
  mutable absl::Mutex mu;
  absl::flat_hash_map<std::string, NodeId> ids;
  std::vector<std::string> names;

  // Ids created by the Ingest call in progress; published by Commit() after the write.
  absl::flat_hash_map<absl::string_view, NodeId> pending;
  std::vector<absl::string_view> pending_names;

  NodeId Resolve(absl::string_view name, rocksdb::WriteBatch* batch) {
    auto it = ids.find(name);
    if (it != ids.end()) return it->second;
    auto [pit, inserted] =
        pending.try_emplace(name, static_cast<NodeId>(names.size() + pending_names.size()));
    if (inserted) {
      pending_names.push_back(name);
      std::string key(1, forward_prefix);
      key.append(name.data(), name.size());
      char dense[4];
      std::memcpy(dense, &pit->second, 4);
      batch->Put(key, rocksdb::Slice(dense, 4));
      std::string reverse(1, reverse_prefix);
      internal::AppendBigEndian32(pit->second, &reverse);
      batch->Put(reverse, ToSlice(name));
    }
    return pit->second;
  }
  void Commit() {
    if (!pending_names.empty()) {
      absl::MutexLock lock(&mu);
      for (absl::string_view name : pending_names) {
        ids.emplace(std::string(name), static_cast<NodeId>(names.size()));
        names.emplace_back(name);
      }
    }
    Abandon();
  }
  void Abandon() {
    pending.clear();
    pending_names.clear();
  }
  NodeId size() const {
    absl::MutexLock lock(&mu);
    return static_cast<NodeId>(names.size());
  }
};

GraphStore::GraphStore(const GraphStoreOptions& options, bool read_only)
    : options_(options),
      read_only_(read_only),
      users_(std::make_unique<IdSpace>(internal::kUserPrefix, internal::kUserReversePrefix)),
      items_(std::make_unique<IdSpace>(internal::kItemPrefix, internal::kItemReversePrefix)) {}

absl::StatusOr<std::unique_ptr<GraphStore>> GraphStore::Open(const GraphStoreOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("GraphStoreOptions.path is empty");
  // RocksDB creates only the last path component.
  if (options.create_if_missing && options.env == nullptr) RETURN_IF_ERROR(MakeDirs(options.path));
  std::unique_ptr<GraphStore> store(new GraphStore(options, /*read_only=*/false));
  RETURN_IF_ERROR(store->OpenDb());
  rocksdb::DB* db = store->db_.get();

  std::string value;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), kMetaStoreId, &value);
  if (s.IsNotFound()) {
    Clock* clock = options.clock != nullptr ? options.clock : Clock::Real();
    rocksdb::WriteBatch batch;
    batch.Put(kMetaStoreId, RandomId());
    batch.Put(kMetaCreated, absl::StrCat(absl::ToUnixSeconds(clock->Now())));
    batch.Put(kMetaFormat, kFormatVersion);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    RETURN_IF_ERROR(FromRocks(db->Write(wo, &batch), "write store metadata"));
  } else {
    RETURN_IF_ERROR(FromRocks(s, "read store metadata"));
  }
  RETURN_IF_ERROR(store->Load());
  if (options.durability == Durability::kGroupCommit) {
    store->committer_ = std::thread([raw = store.get()] { raw->GroupCommitLoop(); });
  }
  return store;
}

absl::StatusOr<std::unique_ptr<GraphStore>> GraphStore::OpenReadOnly(
    const std::string& snapshot_dir, rocksdb::Env* env) {
  if (!std::filesystem::exists(snapshot_dir + "/CURRENT")) {
    return absl::NotFoundError(absl::StrCat("no store at ", snapshot_dir));
  }
  GraphStoreOptions options;
  options.path = snapshot_dir;
  options.create_if_missing = false;
  options.env = env;
  std::unique_ptr<GraphStore> store(new GraphStore(options, /*read_only=*/true));
  RETURN_IF_ERROR(store->OpenDb());
  RETURN_IF_ERROR(store->Load());
  return store;
}

absl::Status GraphStore::OpenDb() {
  rocksdb::DB* db = nullptr;
  RETURN_IF_ERROR(FromRocks(internal::OpenDb(options_, read_only_, &db, &handles_),
                            absl::StrCat(read_only_ ? "open read-only " : "open ", options_.path)));
  db_.reset(db);
  log_cf_ = handles_[1];
  return absl::OkStatus();
}

absl::Status GraphStore::Load() {
  rocksdb::DB* db = db_.get();
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  ro.readahead_size = 4 << 20;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  StoreInfo info;
  info.read_only = read_only_;

  for (IdSpace* space : {users_.get(), items_.get()}) {
    const char prefix = space->reverse_prefix;
    for (it->Seek(rocksdb::Slice(&prefix, 1)); it->Valid() && it->key()[0] == prefix; it->Next()) {
      if (it->key().size() != 5 ||
          internal::ReadBigEndian32(it->key().data() + 1) != space->names.size()) {
        return absl::DataLossError(absl::StrCat("id mapping '", std::string(1, prefix),
                                                "' is not dense at ", space->names.size()));
      }
      space->names.push_back(it->value().ToString());
      space->ids.emplace(space->names.back(), static_cast<NodeId>(space->names.size() - 1));
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scan id mapping"));
  }

  std::vector<Interaction> log;
  it.reset(db->NewIterator(ro, log_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != internal::kEventKeyBytes ||
        it->value().size() != internal::kEventValueBytes) {
      return absl::DataLossError("malformed event record");
    }
    log.push_back(internal::DecodeEventValue(it->value().data()));
    const Interaction& x = log.back();
    if (x.user >= users_->names.size() || x.item >= items_->names.size()) {
      return absl::DataLossError("event refers to an unknown dense id");
    }
    info.max_time = std::max(info.max_time, x.time);
    next_seq_ = internal::ReadBigEndian64(it->key().data()) + 1;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan event log"));

  auto meta = [&](const char* key) -> std::string {
    std::string value;
    return db->Get(rocksdb::ReadOptions(), key, &value).ok() ? value : std::string();
  };
  info.store_id = meta(kMetaStoreId);
  if (read_only_) info.snapshot_id = meta(kMetaLastSnapshotId);
  int64_t created = 0;
  if (absl::SimpleAtoi(meta(kMetaCreated), &created)) info.created_unix_s = created;
  info.num_events = static_cast<int64_t>(log.size());

  graph_ = TemporalGraph::Build(log, static_cast<NodeId>(users_->names.size()),
                                static_cast<NodeId>(items_->names.size()));
  absl::MutexLock lock(&info_mu_);
  info_ = std::move(info);
  return absl::OkStatus();
}

GraphStore::~GraphStore() {
  if (committer_.joinable()) {
    {
      absl::MutexLock lock(&commit_mu_);
      stop_ = true;
    }
    committer_.join();
  }
  if (db_ != nullptr) {
    bool failed;
    {
      absl::MutexLock lock(&info_mu_);
      failed = !sticky_error_.ok();
    }
    // After a failed write RocksDB's WAL writer must not be synced again (it asserts).
    if (!read_only_ && !failed && options_.durability == Durability::kGroupCommit) {
      rocksdb::Status s = db_->SyncWAL();
      if (!s.ok()) {
        DGSR_LOG(ERROR) << "WAL sync at close failed" << Kv("error", s.ToString());
      }
    }
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    db_->Close().PermitUncheckedError();
  }
}

absl::Status GraphStore::Fail(absl::Status status) {
  absl::MutexLock lock(&info_mu_);
  if (sticky_error_.ok()) {
    sticky_error_ = status;
    DGSR_LOG(ERROR) << "graph store is now fail-stop" << Kv("error", status.ToString());
  }
  return status;
}

absl::StatusOr<IngestResult> GraphStore::Ingest(std::span<const Event> events) {
  if (read_only_) return absl::FailedPreconditionError("Ingest on a read-only store (snapshot)");
  if (events.size() > options_.max_batch_events) {
    return absl::InvalidArgumentError(absl::StrCat("batch of ", events.size(),
                                                   " events exceeds the limit of ",
                                                   options_.max_batch_events));
  }
  bool any_event_id = false;
  for (size_t k = 0; k < events.size(); ++k) {
    const Event& e = events[k];
    RETURN_IF_ERROR(CheckId("user id", e.user, options_.max_id_bytes, false, k));
    RETURN_IF_ERROR(CheckId("item id", e.item, options_.max_id_bytes, false, k));
    RETURN_IF_ERROR(CheckId("event id", e.event_id, options_.max_id_bytes, true, k));
    if (e.time < kMinEventTime || e.time > kMaxEventTime) {
      return absl::InvalidArgumentError(absl::StrCat("event ", k, ": time ", e.time,
                                                     " outside [", kMinEventTime, ", ",
                                                     kMaxEventTime, "] (Unix seconds)"));
    }
    any_event_id |= !e.event_id.empty();
  }

  absl::MutexLock lock(&ingest_mu_);
  {
    absl::MutexLock info_lock(&info_mu_);
    if (!sticky_error_.ok()) return sticky_error_;
  }
  IngestResult result;
  rocksdb::WriteBatch batch;
  std::vector<Interaction> added;
  added.reserve(events.size());
  absl::flat_hash_set<absl::string_view> ids_in_batch;
  uint64_t seq = next_seq_;
  Timestamp max_time = kMinTime;
  std::string key, value;
  for (const Event& e : events) {
    if (any_event_id && !e.event_id.empty()) {
      if (!ids_in_batch.insert(e.event_id).second) {
        ++result.duplicates;
        continue;
      }
      key.assign(1, internal::kEventIdPrefix);
      key.append(e.event_id);
      rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &value);
      if (s.ok()) {
        ++result.duplicates;
        continue;
      }
      if (!s.IsNotFound()) {
        users_->Abandon();
        items_->Abandon();
        return FromRocks(s, "event id lookup");
      }
      value.clear();
      internal::AppendBigEndian64(seq, &value);
      batch.Put(key, value);
    }
    const Interaction x{users_->Resolve(e.user, &batch), items_->Resolve(e.item, &batch), e.time};
    char encoded[internal::kEventValueBytes];
    internal::EncodeEventValue(x.user, x.item, x.time, encoded);
    char event_key[internal::kEventKeyBytes];
    internal::EncodeEventKey(seq++, event_key);
    batch.Put(log_cf_, rocksdb::Slice(event_key, sizeof(event_key)),
              rocksdb::Slice(encoded, sizeof(encoded)));
    added.push_back(x);
    max_time = std::max(max_time, x.time);
  }
  result.accepted = static_cast<int64_t>(added.size());
  result.new_users = static_cast<int64_t>(users_->pending_names.size());
  result.new_items = static_cast<int64_t>(items_->pending_names.size());
  if (added.empty()) return result;

  rocksdb::WriteOptions wo;
  wo.sync = options_.durability == Durability::kSync;
  rocksdb::Status s = db_->Write(wo, &batch);
  if (!s.ok()) {
    users_->Abandon();
    items_->Abandon();
    return Fail(FromRocks(s, "write event batch"));
  }
  wal_dirty_.store(true, std::memory_order_relaxed);
  next_seq_ = seq;
  users_->Commit();
  items_->Commit();
  graph_->Add(added);
  absl::MutexLock info_lock(&info_mu_);
  info_.num_events += result.accepted;
  info_.max_time = std::max(info_.max_time, max_time);
  return result;
}

absl::Status GraphStore::Sync() {
  if (read_only_ || options_.durability == Durability::kSync) return absl::OkStatus();
  {
    absl::MutexLock lock(&info_mu_);
    if (!sticky_error_.ok()) return sticky_error_;
  }
  // Serialized with Ingest so that a sync never follows a failed write (see ~GraphStore).
  absl::MutexLock lock(&ingest_mu_);
  {
    absl::MutexLock info_lock(&info_mu_);
    if (!sticky_error_.ok()) return sticky_error_;
  }
  wal_dirty_.store(false);
  rocksdb::Status s = db_->SyncWAL();
  if (!s.ok()) return Fail(FromRocks(s, "WAL sync"));
  return absl::OkStatus();
}

void GraphStore::GroupCommitLoop() {
  absl::MutexLock lock(&commit_mu_);
  while (!stop_) {
    commit_mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.group_commit_interval);
    if (stop_) break;
    if (!wal_dirty_.exchange(false)) continue;
    commit_mu_.Unlock();
    (void)Sync();  // Records a failure as the sticky error that Ingest reports.
    commit_mu_.Lock();
  }
}

std::optional<NodeId> GraphStore::UserId(std::string_view external) const {
  absl::MutexLock lock(&users_->mu);
  auto it = users_->ids.find(absl::string_view(external.data(), external.size()));
  if (it == users_->ids.end()) return std::nullopt;
  return it->second;
}

std::optional<NodeId> GraphStore::ItemId(std::string_view external) const {
  absl::MutexLock lock(&items_->mu);
  auto it = items_->ids.find(absl::string_view(external.data(), external.size()));
  if (it == items_->ids.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::string> GraphStore::ExternalUserId(NodeId user) const {
  absl::MutexLock lock(&users_->mu);
  if (user >= users_->names.size()) return absl::NotFoundError(absl::StrCat("no user ", user));
  return users_->names[user];
}

absl::StatusOr<std::string> GraphStore::ExternalItemId(NodeId item) const {
  absl::MutexLock lock(&items_->mu);
  if (item >= items_->names.size()) return absl::NotFoundError(absl::StrCat("no item ", item));
  return items_->names[item];
}

absl::StatusOr<std::vector<Interaction>> GraphStore::AllInteractions() const {
  std::vector<Interaction> log;
  log.reserve(info().num_events);
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  ro.readahead_size = 4 << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, log_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->value().size() != internal::kEventValueBytes) {
      return absl::DataLossError("malformed event record");
    }
    log.push_back(internal::DecodeEventValue(it->value().data()));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan event log"));
  return log;
}

absl::Status GraphStore::CreateSnapshot(const std::string& dir, StoreInfo* contents) {
  if (read_only_) return absl::FailedPreconditionError("CreateSnapshot on a read-only store");
  absl::MutexLock lock(&ingest_mu_);  // no Ingest runs until the checkpoint is taken
  rocksdb::WriteOptions wo;
  wo.sync = true;
  const std::string snapshot_id = RandomId();
  RETURN_IF_ERROR(FromRocks(db_->Put(wo, kMetaLastSnapshotId, snapshot_id), "write snapshot id"));
  if (contents != nullptr) {
    *contents = info();
    contents->snapshot_id = snapshot_id;
    contents->read_only = true;
  }
  rocksdb::Checkpoint* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // log_size_for_flush = 0: flush memtables first, so the copy is SST files plus a short WAL.
  return FromRocks(checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0),
                   absl::StrCat("checkpoint into ", dir));
}

StoreInfo GraphStore::info() const {
  StoreInfo info;
  {
    absl::MutexLock lock(&info_mu_);
    info = info_;
  }
  info.num_users = users_->size();
  info.num_items = items_->size();
  return info;
}

}  // namespace dgsr::store
