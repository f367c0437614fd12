#include "trainer/split.h"

#include <algorithm>

namespace dgsr::trainer {

absl::StatusOr<Split> BuildSplit(const store::TemporalGraph& graph) {
  Split split;
  auto view = graph.Read();
  split.num_users = view.num_users();
  split.num_items = view.num_items();
  split.num_interactions = view.num_interactions();
  split.user_items.resize(split.num_users);
  std::vector<store::Interaction> train_edges, valid_edges, all_edges;
  train_edges.reserve(split.num_interactions);
  std::vector<store::NodeId> items;
  std::vector<store::Timestamp> times;
  for (store::NodeId u = 0; u < split.num_users; ++u) {
    view.UserSequence(u, &items, &times);
    const int64_t len = static_cast<int64_t>(items.size());
    for (int64_t j = 0; j < len; ++j) {
      store::Interaction e{u, items[j], times[j]};
      all_edges.push_back(e);
      if (j < len - 1 || len < 2) valid_edges.push_back(e);
      if (j < len - 2 || len < 2 || (len == 2 && j == 0)) train_edges.push_back(e);
    }
    auto sample = [&](int64_t j) {
      int64_t first_tied = j;
      while (first_tied > 0 && times[first_tied - 1] == times[j]) --first_tied;
      return Sample{u, times[j], items[j], static_cast<int32_t>(j), static_cast<int32_t>(j - first_tied)};
    };
    if (len >= 2) split.test.push_back(sample(len - 1));
    if (len >= 3) split.valid.push_back(sample(len - 2));
    for (int64_t j = 1; j <= len - 3; ++j) split.train.push_back(sample(j));
    auto& seen = split.user_items[u];
    seen.assign(items.begin(), items.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  }
  if (split.test.empty()) {
    return absl::InvalidArgumentError(
        "dataset has no user with at least 2 interactions: nothing to train or evaluate");
  }
  const auto nu = static_cast<store::NodeId>(split.num_users);
  const auto ni = static_cast<store::NodeId>(split.num_items);
  split.train_graph = store::TemporalGraph::Build(train_edges, nu, ni);
  split.valid_graph = store::TemporalGraph::Build(valid_edges, nu, ni);
  split.full_graph = store::TemporalGraph::Build(all_edges, nu, ni);
  return split;
}

}  // namespace dgsr::trainer
