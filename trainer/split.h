// The leave-one-out split of paper §5.1, built from a store snapshot's graph.
//
// For a user's time-ordered sequence (i_0 .. i_k) with times (t_0 .. t_k), every prefix predicts
// the next item: sample j (1 <= j <= k) predicts i_j from the graph as it stood just before t_j,
// with the user's own earlier events of time t_j (ties, kept in sequence order) in its history.
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
#include <vector>

#include "absl/status/statusor.h"
#include "store/temporal_graph.h"

namespace dgsr::trainer {

struct Sample {
  store::NodeId user;
  store::Timestamp before;  // t_j: the sample sees only edges strictly before it,
  store::NodeId target;     // i_j
  int32_t history;          // j: number of the user's items before the target
  int32_t ties = 0;         // and the user's own i_k (k < j) with t_k == t_j (its sequence order;
                            // other users' events at t_j stay hidden: model/sampler.h)
};

struct Split {
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
[[nodiscard]] absl::StatusOr<Split> BuildSplit(const store::TemporalGraph& graph);

}  // namespace dgsr::trainer

#endif  // DGSR_TRAINER_SPLIT_H_
