#include "server/popularity.h"

#include <algorithm>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/time/clock.h"

namespace dgsr::server {

PopularityFallback::PopularityFallback(const store::TemporalGraph* graph, const PopularityOptions& options)
    : graph_(graph), options_(options) {}

std::vector<PopularityFallback::Ranked> PopularityFallback::Rank(const store::TemporalGraph::ReadView& view,
                                                                 store::Timestamp as_of) const {
  // The newest time in the graph stands in for "now" when as_of is open-ended.
  store::Timestamp end = as_of;
  if (end == store::kMaxTime) {
    end = store::kMinTime;
    for (store::NodeId i = 0; i < view.num_items(); ++i) {
      store::Timestamp t;
      if (view.RecentUsers(i, {store::kMinTime, store::kMaxTime}, 1, nullptr, &t) == 1) end = std::max(end, t);
    }
    if (end == store::kMinTime) return {};
    end += 1;  // include the newest edge
  }
  const store::Timestamp begin =
      end > std::numeric_limits<store::Timestamp>::min() + options_.window ? end - options_.window : store::kMinTime;
  std::vector<Ranked> ranked;
  for (store::NodeId i = 0; i < view.num_items(); ++i) {
    const int64_t total = view.ItemDegree(i, end);
    if (total == 0) continue;
    ranked.push_back({total - view.ItemDegree(i, begin), total, i});
  }
  std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    if (a.recent != b.recent) return a.recent > b.recent;
    if (a.total != b.total) return a.total > b.total;
    return a.item < b.item;
  });
  return ranked;
}

std::vector<model::ScoredItem> PopularityFallback::Recommend(const model::RecommendRequest& r) {
  std::shared_ptr<const std::vector<Ranked>> ranking;
  absl::flat_hash_set<store::NodeId> masked(r.excluded.begin(), r.excluded.end());
  {
    auto view = graph_->Read();
    if (r.exclude_seen) {
      std::vector<store::NodeId> seen(view.UserDegree(r.user, r.as_of));
      seen.resize(view.RecentItems(r.user, {store::kMinTime, r.as_of}, static_cast<int>(seen.size()), seen.data(), nullptr));
      masked.insert(seen.begin(), seen.end());
    }
    if (r.as_of == store::kMaxTime) {
      absl::MutexLock lock(&mu_);
      const absl::Time now = absl::Now();
      if (now_ == nullptr || (view.num_interactions() != now_interactions_ &&
                              now - now_built_at_ >= options_.refresh_interval)) {
        now_ = std::make_shared<const std::vector<Ranked>>(Rank(view, store::kMaxTime));
        now_interactions_ = view.num_interactions();
        now_built_at_ = now;
      }
      ranking = now_;
    } else {
      ranking = std::make_shared<const std::vector<Ranked>>(Rank(view, r.as_of));
    }
  }
  std::vector<model::ScoredItem> out;
  if (!r.candidates.empty()) {
    absl::flat_hash_set<store::NodeId> allowed(r.candidates.begin(), r.candidates.end());
    for (const Ranked& x : *ranking) {
      if (static_cast<int>(out.size()) >= r.k) break;
      if (allowed.contains(x.item) && !masked.contains(x.item)) out.push_back({x.item, static_cast<float>(x.recent)});
    }
    return out;
  }
  for (const Ranked& x : *ranking) {
    if (static_cast<int>(out.size()) >= r.k) break;
    if (!masked.contains(x.item)) out.push_back({x.item, static_cast<float>(x.recent)});
  }
  return out;
}

}  // namespace dgsr::server
