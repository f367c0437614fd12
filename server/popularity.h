// PopularityFallback: what a user the model cannot speak for gets — a user the store has never
// seen, or one with no interaction before the as-of time. Items are ranked by how many
// interactions they had in the `window` before the as-of time ("recent popularity" in the live
// graph), then by all-time interactions before the as-of time, then by the smaller item id; the
// score returned is the recent count. Candidate allow-lists, deny-lists and seen-item exclusion
// apply exactly as for the model.
//
// For as-of "now" the ranking is cached and rebuilt when the graph has changed and the cached
// one is older than `refresh_interval`; other as-of times rank on the fly (one binary search per
// item and window end). Order-only datasets (time = position) have no calendar: there the window
// is in positions, and the default window (7 days of seconds) covers every position, so the
// ranking is all-time popularity.
//
// Thread-safe.
#ifndef DGSR_SERVER_POPULARITY_H_
#define DGSR_SERVER_POPULARITY_H_

#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/recommender.h"
#include "store/temporal_graph.h"

namespace dgsr::server {

struct PopularityOptions {
  store::Timestamp window = 7 * 24 * 3600;  // in the graph's time unit (seconds for real time)
  absl::Duration refresh_interval = absl::Seconds(1);
};

class PopularityFallback {
 public:
  PopularityFallback(const store::TemporalGraph* graph, const PopularityOptions& options);

  // The top request.k items for `request` (user, as_of, exclude_seen, candidates, excluded).
  std::vector<model::ScoredItem> Recommend(const model::RecommendRequest& request);

 private:
  struct Ranked {
    int64_t recent;
    int64_t total;
    store::NodeId item;
  };
  // Items by popularity as of `as_of` (descending). Reads the graph under its own view.
  std::vector<Ranked> Rank(const store::TemporalGraph::ReadView& view, store::Timestamp as_of) const;

  const store::TemporalGraph* graph_;
  const PopularityOptions options_;
  absl::Mutex mu_;
  std::shared_ptr<const std::vector<Ranked>> now_ ABSL_GUARDED_BY(mu_);
  int64_t now_interactions_ ABSL_GUARDED_BY(mu_) = -1;
  absl::Time now_built_at_ ABSL_GUARDED_BY(mu_);
};

}  // namespace dgsr::server

#endif  // DGSR_SERVER_POPULARITY_H_
