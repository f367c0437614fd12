// `dgsr bench store`: measures the graph store (issue 3) in one run and prints one JSON object on
// the last line. What it measures, on a real dataset (default: ../shared/data/
// ml-1m-first2999users/ratings.dat, 487,650 events):
//   - GraphStore::Ingest events/s per durability mode (group commit = "nosync": no fsync per
//     batch; sync = fsync per batch) and batch size (1, 64, 1000), next to raw RocksDB
//     WriteBatch puts/s (16-byte sequential keys, 24-byte values, like db_bench fillseq) with the same RocksDB
//     options, write options and batch sizes, and the ratio;
//   - n-most-recent query latency (RecentItems / RecentUsers, n = 50, strictly before the time of
//     a random logged event), p50 / p99, each query timed on its own (clock overhead included);
//   - bytes of memory per interaction of the in-memory index (both directions, times included);
//   - reopen time (RocksDB open + log scan + TemporalGraph::Build) of the imported dataset.
// Benchmarks are programs, not tests: nothing here asserts on time.
#ifndef DGSR_BENCH_STORE_BENCH_H_
#define DGSR_BENCH_STORE_BENCH_H_

#include <string>
#include <vector>

namespace dgsr::bench {

// Runs the benchmark with the --store_bench_* flags; returns the process exit code.
int RunStoreBench(const std::vector<std::string>& args);

}  // namespace dgsr::bench

#endif  // DGSR_BENCH_STORE_BENCH_H_
