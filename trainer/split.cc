#include "trainer/split.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace dgsr::trainer {

namespace {

// True when every user's times are 1, 2, ..., its length: positions, not times.
bool TimesArePositions(const store::TemporalGraph::ReadView& view) {
  std::vector<store::NodeId> items;
  std::vector<store::Timestamp> times;
  bool any = false;
  for (store::NodeId u = 0; u < view.num_users(); ++u) {
    view.UserSequence(u, &items, &times);
    for (size_t j = 0; j < times.size(); ++j) {
      if (times[j] != static_cast<store::Timestamp>(j + 1)) return false;
    }
    any = any || !times.empty();
  }
  return any;
}

}  // namespace

absl::StatusOr<CrossUserTime> ParseCrossUserTime(std::string_view name) {
  if (name == "auto") return CrossUserTime::kAuto;
  if (name == "timestamps") return CrossUserTime::kTimestamps;
  if (name == "order_only") return CrossUserTime::kOrderOnly;
  return absl::InvalidArgumentError(absl::StrCat("unknown cross-user time '", absl::string_view(name.data(), name.size()),
                                                 "' (auto, timestamps or order_only)"));
}

std::string_view CrossUserTimeName(CrossUserTime mode) {
  switch (mode) {
    case CrossUserTime::kTimestamps: return "timestamps";
    case CrossUserTime::kOrderOnly: return "order_only";
    case CrossUserTime::kAuto: return "auto";
  }
  return "auto";
}

absl::StatusOr<Split> BuildSplit(const store::TemporalGraph& graph, CrossUserTime cross_user_time) {
  Split split;
  auto view = graph.Read();
  if (cross_user_time == CrossUserTime::kAuto) {
    cross_user_time = TimesArePositions(view) ? CrossUserTime::kOrderOnly : CrossUserTime::kTimestamps;
  }
  const bool order_only = cross_user_time == CrossUserTime::kOrderOnly;
  split.cross_user_time = cross_user_time;
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
    const bool has_valid = len >= 3, has_test = len >= 2;
    if (order_only) {
      // Held-out edges move past every training edge (their order within the user is kept).
      if (has_test) times[len - 1] = kTestTime;
      if (has_valid) times[len - 2] = kValidationTime;
    }
    for (int64_t j = 0; j < len; ++j) {
      store::Interaction e{u, items[j], times[j]};
      all_edges.push_back(e);
      if (j < len - 1 || len < 2) valid_edges.push_back(e);
      if (j < len - 2 || len < 2 || (len == 2 && j == 0)) train_edges.push_back(e);
    }
    auto sample = [&](int64_t j) {
      int64_t first_tied = j;
      while (first_tied > 0 && times[first_tied - 1] == times[j]) --first_tied;
      Sample s{u, times[j], items[j], static_cast<int32_t>(j), static_cast<int32_t>(j - first_tied)};
      if (order_only) s.others_before = kValidationTime;  // Every other user's training edges.
      return s;
    };
    if (has_test) split.test.push_back(sample(len - 1));
    if (has_valid) split.valid.push_back(sample(len - 2));
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
