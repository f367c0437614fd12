#include "bench/dataset.h"

#include <cstdlib>
#include <filesystem>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "store/import.h"

namespace dgsr::bench {

absl::StatusOr<BenchDatasetFile> FindBenchDataset(const std::string& name) {
  const char* env = std::getenv("DGSR_SHARED_DATA");
  const std::string root = env != nullptr ? env : DGSR_SHARED_DATA_DIR;
  struct Known {
    const char* name;
    const char* file;
    store::ImportFormat format;
    int kcore;
  };
  static const Known kKnown[] = {
      {"amazon-games-sasrec", "Video.txt", store::ImportFormat::kSasRec, 0},
      {"amazon-cds-hgn", "CDs_item_sequences.txt", store::ImportFormat::kHgn, 0},
      {"ml-1m-first2999users", "ratings.dat", store::ImportFormat::kMovieLensDat, 5},
      {"amazon-beauty-5core-ticoserec", "Beauty_interactions.tsv", store::ImportFormat::kUserItemTime, 5},
      {"ml-100k", "u.data", store::ImportFormat::kMovieLensUData, 5},
  };
  for (const Known& k : kKnown) {
    if (name != k.name) continue;
    BenchDatasetFile file;
    file.path = absl::StrCat(root, "/", k.name, "/", k.file);
    if (!std::filesystem::exists(file.path)) return absl::NotFoundError(absl::StrCat("dataset not found: ", file.path));
    file.import.format = k.format;
    file.import.kcore = k.kcore;
    file.import.show_progress = false;
    return file;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown dataset '", name, "'"));
}

absl::StatusOr<BenchDataset> LoadBenchDataset(const std::string& name) {
  ASSIGN_OR_RETURN(BenchDatasetFile file, FindBenchDataset(name));
  store::ImportStats stats;
  ASSIGN_OR_RETURN(auto raw, store::ReadDataset(file.path, file.import, &stats));
  absl::flat_hash_map<std::string, store::NodeId> users, items;
  std::vector<store::Interaction> edges;
  edges.reserve(raw.size());
  for (const auto& r : raw) {
    auto u = users.try_emplace(r.user, static_cast<store::NodeId>(users.size())).first->second;
    auto i = items.try_emplace(r.item, static_cast<store::NodeId>(items.size())).first->second;
    edges.push_back({u, i, r.time});
  }
  BenchDataset d;
  d.name = name;
  d.users = static_cast<int64_t>(users.size());
  d.items = static_cast<int64_t>(items.size());
  d.interactions = static_cast<int64_t>(edges.size());
  d.graph = store::TemporalGraph::Build(edges, static_cast<store::NodeId>(d.users), static_cast<store::NodeId>(d.items));
  return d;
}

}  // namespace dgsr::bench
