// The leave-one-out split of paper §5.1, built from a store snapshot's graph.
//
// For a user's time-ordered sequence (i_0 .. i_k) with times (t_0 .. t_k), every prefix predicts
// the next item: sample j (1 <= j <= k) predicts i_j from the graph as it stood just before t_j,
// with the user's own earlier events of time t_j (ties, kept in sequence order) in its history.
// For order-only data "as it stood" is read differently across users (CrossUserTime below).
//   test:       j = k      (the last item; users with >= 2 interactions)
//   validation: j = k - 1  (the second-to-last; users with >= 3 interactions)
//   training:   1 <= j <= k - 2
// Strictness (stricter than the authors' code, see docs/REFERENCE_NOTES): the validation target
// is never a training target, and no validation or test interaction is even visible to training:
// training samples read `train_graph` (every interaction except the validation and test ones),
// validation samples read `valid_graph` (all but the test ones), test samples the whole graph.
#ifndef DGSR_TRAINER_SPLIT_H_
#define DGSR_TRAINER_SPLIT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "store/temporal_graph.h"

namespace dgsr::trainer {

struct Sample {
  store::NodeId user;
  store::Timestamp before;  // t_j: the sample sees only edges strictly before it (other users':
                            // before others_before when that is set),
  store::NodeId target;     // i_j
  int32_t history;          // j: number of the user's items before the target
  int32_t ties = 0;         // and the user's own i_k (k < j) with t_k == t_j (its sequence order;
                            // other users' events at t_j stay hidden: model/sampler.h)
  // Order-only splits: other users' edges are visible before this time instead (every training
  // edge; model::SampleRequest::others_before). Unset: `before`.
  std::optional<store::Timestamp> others_before = std::nullopt;
};

// What "before t" means across users.
enum class CrossUserTime {
  // Times are real (Unix seconds): another user's edge is visible to a sample iff it happened
  // strictly before the sample's time.
  kTimestamps,
  // Times are positions in each user's sequence (the order-only formats of store/import.h:
  // Games, CDs), which mean nothing across users. The user's own history is cut at its position;
  // every other user contributes its training edges, whatever their positions, and never a
  // validation or test edge: exactly the data SASRec+ trains on. In the split's graphs a
  // validation edge's time becomes kValidationTime and a test edge's kTestTime.
  kOrderOnly,
  // kOrderOnly when every user's times are exactly 1, 2, ..., its length (what the importer
  // writes for order-only formats), else kTimestamps.
  kAuto,
};
inline constexpr store::Timestamp kValidationTime = store::Timestamp{1} << 50;
inline constexpr store::Timestamp kTestTime = kValidationTime + 1;

struct Split {
  CrossUserTime cross_user_time = CrossUserTime::kTimestamps;  // Never kAuto: what was chosen.
  int64_t num_users = 0;
  int64_t num_items = 0;
  int64_t num_interactions = 0;
  std::vector<Sample> train, valid, test;
  std::unique_ptr<store::TemporalGraph> train_graph, valid_graph, full_graph;
  // Every item each user ever interacted with, sorted (negatives are drawn outside this set).
  std::vector<std::vector<store::NodeId>> user_items;
};

// InvalidArgument if the graph has no user with at least 2 interactions (nothing to test).
// Users with a single interaction are kept in the graph but give no sample (documented skip).
[[nodiscard]] absl::StatusOr<Split> BuildSplit(const store::TemporalGraph& graph,
                                               CrossUserTime cross_user_time = CrossUserTime::kAuto);

// "auto", "timestamps", "order_only"; InvalidArgument otherwise. And back.
[[nodiscard]] absl::StatusOr<CrossUserTime> ParseCrossUserTime(std::string_view name);
std::string_view CrossUserTimeName(CrossUserTime mode);

}  // namespace dgsr::trainer

#endif  // DGSR_TRAINER_SPLIT_H_
