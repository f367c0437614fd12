// Shared by the model-side benchmarks: loads a real dataset from ../shared/data straight into a
// TemporalGraph (no RocksDB), with the same parsing, k-core and time refinement as `dgsr import`.
#ifndef DGSR_BENCH_DATASET_H_
#define DGSR_BENCH_DATASET_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "store/import.h"
#include "store/temporal_graph.h"

namespace dgsr::bench {

struct BenchDataset {
  std::string name;
  std::unique_ptr<store::TemporalGraph> graph;
  int64_t users = 0, items = 0, interactions = 0;
};

// Where a benchmark dataset's file is and how `dgsr import` reads it.
struct BenchDatasetFile {
  std::string path;
  store::ImportOptions import;  // format, k-core; progress off
};

// `name` is a folder of ../shared/data (or $DGSR_SHARED_DATA): amazon-games-sasrec,
// amazon-cds-hgn, ml-1m-first2999users, amazon-beauty-5core-ticoserec, ml-100k. NotFound (with
// the path) when the data is absent; InvalidArgument for another name.
[[nodiscard]] absl::StatusOr<BenchDatasetFile> FindBenchDataset(const std::string& name);

// The same dataset parsed into an in-memory graph.
[[nodiscard]] absl::StatusOr<BenchDataset> LoadBenchDataset(const std::string& name);

}  // namespace dgsr::bench

#endif  // DGSR_BENCH_DATASET_H_
