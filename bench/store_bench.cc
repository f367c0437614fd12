#include "bench/store_bench.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "store/graph_store.h"
#include "store/import.h"
#include "store/internal/rocksdb_util.h"

ABSL_FLAG(std::string, store_bench_dataset, "",
          "dataset file (default: $DGSR_SHARED_DATA or ../shared/data, "
          "ml-1m-first2999users/ratings.dat)");
ABSL_FLAG(std::string, store_bench_format, "ml-dat", "format of --store_bench_dataset (see dgsr import)");
ABSL_FLAG(std::string, store_bench_dir, "", "scratch directory (default: a new one under /tmp)");
ABSL_FLAG(double, store_bench_seconds, 1.0, "time budget per ingest measurement");
ABSL_FLAG(int, store_bench_repeats, 3,
          "runs per ingest configuration, raw and store alternating; the best of each is reported "
          "(damps interference from other processes on a small machine)");
ABSL_FLAG(int, store_bench_queries, 1000000, "n-most-recent queries to time");
ABSL_FLAG(int, store_bench_n, 50, "n of the n-most-recent queries");

namespace dgsr::bench {
namespace {

using Clock = std::chrono::steady_clock;
using store::Durability;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string DefaultDataset() {
  const char* env = std::getenv("DGSR_SHARED_DATA");
  const std::string dir = env != nullptr ? env : DGSR_SHARED_DATA_DIR;
  return dir + "/ml-1m-first2999users/ratings.dat";
}

struct Rate {
  int64_t events = 0;
  double seconds = 0;
  double per_s() const { return seconds > 0 ? events / seconds : 0; }
};

// Ingests `events` from the start in batches of `batch` into a fresh store until the time budget
// or the data runs out.
absl::StatusOr<Rate> MeasureIngest(const std::vector<store::Event>& events, Durability mode,
                                   size_t batch, double budget_s, const std::string& dir) {
  std::filesystem::remove_all(dir);
  store::GraphStoreOptions o;
  o.path = dir;
  o.durability = mode;
  auto opened = store::GraphStore::Open(o);
  if (!opened.ok()) return opened.status();
  std::unique_ptr<store::GraphStore> db = std::move(*opened);
  Rate rate;
  const auto start = Clock::now();
  for (size_t begin = 0; begin < events.size(); begin += batch) {
    const size_t n = std::min(batch, events.size() - begin);
    auto r = db->Ingest(std::span(events).subspan(begin, n));
    if (!r.ok()) return r.status();
    rate.events += r->accepted;
    if (Seconds(start, Clock::now()) > budget_s) break;
  }
  rate.seconds = Seconds(start, Clock::now());
  return rate;
}

// Raw RocksDB: WriteBatch of `batch` puts (16-byte sequential key, 24-byte value), same options.
absl::StatusOr<Rate> MeasureRaw(int64_t max_puts, Durability mode, size_t batch, double budget_s,
                                const std::string& dir) {
  std::filesystem::remove_all(dir);
  store::GraphStoreOptions so;
  so.path = dir;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(store::internal::MakeRocksOptions(so), dir, &raw);
  if (!s.ok()) return store::internal::FromRocks(s, "open raw rocksdb");
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions wo;
  wo.sync = mode == Durability::kSync;
  Rate rate;
  std::string key(16, '\0');
  char value[24];
  std::memset(value, 'v', sizeof(value));
  const auto start = Clock::now();
  for (int64_t done = 0; done < max_puts;) {
    rocksdb::WriteBatch wb;
    for (size_t j = 0; j < batch && done < max_puts; ++j, ++done) {
      // Sequential keys (db_bench fillseq), like the store's event log: a fair baseline.
      for (int b = 0; b < 8; ++b) key[b] = static_cast<char>(static_cast<uint64_t>(done) >> (56 - 8 * b));
      wb.Put(key, rocksdb::Slice(value, sizeof(value)));
    }
    s = db->Write(wo, &wb);
    if (!s.ok()) return store::internal::FromRocks(s, "raw write");
    rate.events = done;
    if (Seconds(start, Clock::now()) > budget_s) break;
  }
  rate.seconds = Seconds(start, Clock::now());
  db->Close().PermitUncheckedError();
  return rate;
}

double Percentile(std::vector<double>* v, double p) {
  if (v->empty()) return 0;
  const size_t k = std::min(v->size() - 1, static_cast<size_t>(p * (v->size() - 1) + 0.5));
  std::nth_element(v->begin(), v->begin() + k, v->end());
  return (*v)[k];
}

struct Latency {
  double p50_us = 0, p99_us = 0, p999_us = 0, mean_us = 0;
};

// Times `queries` RecentItems/RecentUsers calls (alternating) strictly before the time of a
// random logged event of that user/item, each on its own.
Latency MeasureQueries(const store::TemporalGraph& graph, const std::vector<store::Interaction>& log,
                       int queries, int n) {
  std::vector<double> ns;
  ns.reserve(queries);
  std::vector<store::NodeId> ids(n);
  std::vector<store::Timestamp> times(n);
  std::mt19937_64 rng(1);
  auto view = graph.Read();
  int64_t sink = 0;
  for (int q = 0; q < queries; ++q) {
    const store::Interaction& x = log[rng() % log.size()];
    const store::TimeWindow window{store::kMinTime, x.time};
    const auto t0 = Clock::now();
    const int got = q % 2 == 0 ? view.RecentItems(x.user, window, n, ids.data(), times.data())
                               : view.RecentUsers(x.item, window, n, ids.data(), times.data());
    const auto t1 = Clock::now();
    sink += got;
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  Latency l;
  double total = 0;
  for (double v : ns) total += v;
  l.mean_us = total / ns.size() / 1000;
  l.p50_us = Percentile(&ns, 0.50) / 1000;
  l.p99_us = Percentile(&ns, 0.99) / 1000;
  l.p999_us = Percentile(&ns, 0.999) / 1000;
  if (sink < 0) std::printf("impossible\n");
  return l;
}

// Median of the clock's own overhead (two now() calls), to read small latencies honestly.
double ClockOverheadUs() {
  std::vector<double> ns;
  for (int k = 0; k < 100000; ++k) {
    const auto t0 = Clock::now();
    const auto t1 = Clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  return Percentile(&ns, 0.5) / 1000;
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "dgsr bench store: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int RunStoreBench(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "dgsr bench store: unexpected argument '%s'\n", args[0].c_str());
    return 2;
  }
  std::string dataset = absl::GetFlag(FLAGS_store_bench_dataset);
  if (dataset.empty()) dataset = DefaultDataset();
  auto format = store::ParseImportFormat(absl::GetFlag(FLAGS_store_bench_format));
  if (!format.ok()) return Fail(format.status());
  std::string dir = absl::GetFlag(FLAGS_store_bench_dir);
  const bool own_dir = dir.empty();
  if (own_dir) dir = absl::StrCat(std::filesystem::temp_directory_path().string(), "/dgsr-bench-store-", getpid());
  std::filesystem::create_directories(dir);
  const double budget = absl::GetFlag(FLAGS_store_bench_seconds);

  // The dataset as events (external ids, no event ids: the raw baseline has no dedup either).
  store::ImportOptions io;
  io.format = *format;
  io.kcore = 0;
  io.time_refinement = store::TimeRefinement::kNone;
  io.show_progress = false;
  store::ImportStats stats;
  auto raw_events = store::ReadDataset(dataset, io, &stats);
  if (!raw_events.ok()) return Fail(raw_events.status());
  std::vector<store::Event> events, events_with_ids;
  for (auto& e : *raw_events) {
    events.push_back({e.user, e.item, e.time, ""});
    events_with_ids.push_back({std::move(e.user), std::move(e.item), e.time, std::move(e.event_id)});
  }
  std::printf("dataset %s: %zu events, %lld users, %lld items\n", dataset.c_str(), events.size(),
              static_cast<long long>(stats.users), static_cast<long long>(stats.items));

  // 1. Ingest vs raw RocksDB.
  std::string json_ingest;
  double headline[4] = {0, 0, 0, 0};  // ingest nosync, raw nosync, ingest sync, raw sync (b1000)
  std::printf("\n%-13s %6s %16s %16s %7s\n", "mode", "batch", "ingest ev/s", "rocksdb puts/s",
              "ratio");
  for (Durability mode : {Durability::kGroupCommit, Durability::kSync}) {
    const char* name = mode == Durability::kSync ? "sync" : "nosync";
    for (size_t batch : {size_t{1}, size_t{64}, size_t{1000}}) {
      absl::StatusOr<Rate> raw, ingest;
      for (int rep = 0; rep < std::max(1, absl::GetFlag(FLAGS_store_bench_repeats)); ++rep) {
        auto r = MeasureRaw(static_cast<int64_t>(events.size()), mode, batch, budget, dir + "/raw");
        if (!r.ok()) return Fail(r.status());
        auto i = MeasureIngest(events, mode, batch, budget, dir + "/ingest");
        if (!i.ok()) return Fail(i.status());
        if (!raw.ok() || r->per_s() > raw->per_s()) raw = r;
        if (!ingest.ok() || i->per_s() > ingest->per_s()) ingest = i;
      }
      const double ratio = raw->per_s() > 0 ? ingest->per_s() / raw->per_s() : 0;
      std::printf("%-13s %6zu %16.0f %16.0f %7.2f\n",
                  mode == Durability::kSync ? "sync" : "group_commit", batch, ingest->per_s(),
                  raw->per_s(), ratio);
      absl::StrAppendFormat(&json_ingest,
                            "\"ingest_events_per_s_%s_b%d\":%.0f,\"rocksdb_puts_per_s_%s_b%d\":%.0f,"
                            "\"ingest_ratio_%s_b%d\":%.3f,",
                            name, batch, ingest->per_s(), name, batch, raw->per_s(), name, batch,
                            ratio);
      if (batch == 1000) {
        headline[mode == Durability::kSync ? 2 : 0] = ingest->per_s();
        headline[mode == Durability::kSync ? 3 : 1] = raw->per_s();
      }
    }
  }
  auto with_ids = MeasureIngest(events_with_ids, Durability::kGroupCommit, 1000, budget, dir + "/ids");
  if (!with_ids.ok()) return Fail(with_ids.status());
  std::printf("%-13s %6d %16.0f   (with client event ids: one point lookup per event)\n",
              "group_commit", 1000, with_ids->per_s());

  // 2. Import the whole dataset, then reopen (first open replays the WAL; later ones read SSTs).
  const std::string store_dir = dir + "/store";
  std::filesystem::remove_all(store_dir);
  double import_s = 0;
  {
    store::GraphStoreOptions o;
    o.path = store_dir;
    o.durability = Durability::kGroupCommit;
    auto db = store::GraphStore::Open(o);
    if (!db.ok()) return Fail(db.status());
    const auto t0 = Clock::now();
    for (size_t begin = 0; begin < events.size(); begin += 10000) {
      auto r = (*db)->Ingest(std::span(events).subspan(begin, std::min<size_t>(10000, events.size() - begin)));
      if (!r.ok()) return Fail(r.status());
    }
    if (absl::Status s = (*db)->Sync(); !s.ok()) return Fail(s);
    import_s = Seconds(t0, Clock::now());
  }
  std::vector<double> reopen;
  std::unique_ptr<store::GraphStore> db;
  for (int k = 0; k < 4; ++k) {
    db.reset();
    store::GraphStoreOptions o;
    o.path = store_dir;
    const auto t0 = Clock::now();
    auto opened = store::GraphStore::Open(o);
    reopen.push_back(Seconds(t0, Clock::now()));
    if (!opened.ok()) return Fail(opened.status());
    db = std::move(*opened);
  }
  const double reopen_first_s = reopen[0];
  std::vector<double> later(reopen.begin() + 1, reopen.end());
  const double reopen_s = Percentile(&later, 0.5);
  const double reopen_worst_s = std::max(reopen_first_s, *std::max_element(later.begin(), later.end()));
  std::printf("\nimport (10k batches, group commit) %.3f s; reopen: first %.3f s (WAL replay), then "
              "median %.3f s (%s)\n",
              import_s, reopen_first_s, reopen_s,
              absl::StrJoin(later, ", ", [](std::string* out, double v) {
                absl::StrAppendFormat(out, "%.3f", v);
              }).c_str());

  // 3. Memory and query latency on the rebuilt index.
  const store::TemporalGraph& graph = db->graph();
  const int64_t interactions = graph.Read().num_interactions();
  const double bytes_per_interaction = static_cast<double>(graph.MemoryBytes()) / interactions;
  auto log = db->AllInteractions();
  if (!log.ok()) return Fail(log.status());
  const int n = absl::GetFlag(FLAGS_store_bench_n);
  const double overhead_us = ClockOverheadUs();
  const Latency latency = MeasureQueries(graph, *log, absl::GetFlag(FLAGS_store_bench_queries), n);
  std::printf("index: %lld interactions, %.2f bytes/interaction (both directions, times included)\n",
              static_cast<long long>(interactions), bytes_per_interaction);
  std::printf("recent neighbours (n=%d, before a random event's time): p50 %.3f us, p99 %.3f us, "
              "p99.9 %.3f us, mean %.3f us (clock overhead %.3f us included)\n",
              n, latency.p50_us, latency.p99_us, latency.p999_us, latency.mean_us, overhead_us);

  // The same queries on a graph grown by Ingest (tails + merges), as in a live server.
  double live_p99 = 0, live_bytes = 0;
  {
    store::GraphStoreOptions o;
    o.path = dir + "/live";
    std::filesystem::remove_all(o.path);  // A graph built by Add(), not by reopen's Build().
    o.durability = Durability::kGroupCommit;
    auto grown = store::GraphStore::Open(o);
    if (!grown.ok()) return Fail(grown.status());
    for (size_t begin = 0; begin < events.size(); begin += 1000) {
      auto r = (*grown)->Ingest(std::span(events).subspan(begin, std::min<size_t>(1000, events.size() - begin)));
      if (!r.ok()) return Fail(r.status());
    }
    auto grown_log = (*grown)->AllInteractions();
    if (!grown_log.ok()) return Fail(grown_log.status());
    live_p99 = MeasureQueries((*grown)->graph(), *grown_log, absl::GetFlag(FLAGS_store_bench_queries) / 4, n).p99_us;
    live_bytes = static_cast<double>((*grown)->graph().MemoryBytes()) /
                 static_cast<double>(grown_log->size());
  }
  std::printf("graph grown by Ingest (batches of 1000): p99 %.3f us, %.2f bytes/interaction\n", live_p99,
              live_bytes);
  db.reset();
  if (own_dir) std::filesystem::remove_all(dir);

  std::printf(
      "{\"bench\":\"store\",\"dataset\":\"%s\",\"events\":%zu,"
      "\"ingest_events_per_s_nosync\":%.0f,\"rocksdb_puts_per_s_nosync\":%.0f,"
      "\"ingest_ratio_nosync\":%.3f,\"ingest_events_per_s_sync\":%.0f,"
      "\"rocksdb_puts_per_s_sync\":%.0f,\"ingest_ratio_sync\":%.3f,%s"
      "\"ingest_events_per_s_nosync_b1000_event_ids\":%.0f,"
      "\"bytes_per_interaction\":%.2f,\"bytes_per_interaction_grown\":%.2f,"
      "\"recent_neighbors_n\":%d,\"recent_neighbors_p50_us\":%.3f,\"recent_neighbors_p99_us\":%.3f,"
      "\"recent_neighbors_p999_us\":%.3f,\"recent_neighbors_p99_us_grown\":%.3f,"
      "\"clock_overhead_us\":%.3f,\"import_s\":%.3f,\"reopen_s\":%.3f,\"reopen_first_s\":%.3f,"
      "\"reopen_worst_s\":%.3f}\n",
      std::filesystem::path(dataset).parent_path().filename().string().c_str(), events.size(),
      headline[0], headline[1], headline[1] > 0 ? headline[0] / headline[1] : 0, headline[2],
      headline[3], headline[3] > 0 ? headline[2] / headline[3] : 0, json_ingest.c_str(),
      with_ids->per_s(), bytes_per_interaction, live_bytes, n, latency.p50_us, latency.p99_us,
      latency.p999_us, live_p99, overhead_us, import_s, reopen_s, reopen_first_s, reopen_worst_s);
  return 0;
}

}  // namespace dgsr::bench
