// Ranking metrics under the honest protocol (docs/REFERENCE_NOTES "Evaluation").
//
// Sampled (paper §5.2.2): the target is ranked among 100 negatives drawn uniformly from the items
// the user never interacted with, with a recorded seed; ties count against the target
// (rank = number of negatives scoring >= the target). Full ranking: the target is ranked among
// all items, excluding the user's items seen before the sample time (its history).
// Hit@K = [rank < K], NDCG@K = [rank < K] / log2(rank + 2); averaged over samples.
#ifndef DGSR_TRAINER_METRICS_H_
#define DGSR_TRAINER_METRICS_H_

#include <array>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "common/json.h"
#include "store/temporal_graph.h"

namespace dgsr::trainer {

inline constexpr std::array<int, 3> kCutoffs = {5, 10, 20};

// Whether `score` ranks at or above `target`: anything not strictly below it. Ties count against
// the target, and so does every non-finite score: a NaN target ranks last, a NaN other above it
// (a diverged model scores nothing, instead of everything). Both protocols rank with this.
inline bool CountsAgainst(float score, float target) { return !(score < target); }

// Rank of `target` among `others`: how many count against it.
int64_t PessimisticRank(float target, std::span<const float> others);

// A uniform draw from [0, n), n >= 1, that is the same with every standard library (unlike
// std::uniform_int_distribution, whose algorithm each library chooses): the 64-bit outputs of
// std::mt19937_64 (fixed by the standard) below 2^64 mod n are rejected, the rest taken mod n.
uint64_t UniformBelow(std::mt19937_64& rng, uint64_t n);

// Draws `count` distinct items from [0, num_items) outside `excluded` (sorted): UniformBelow
// draws from an std::mt19937_64 seeded with seed * 0x9E3779B97F4A7C15 + stream, skipping excluded
// and repeated items, so the same arguments give the same negatives anywhere. Returns fewer if not
// enough items exist.
std::vector<store::NodeId> DrawNegatives(int64_t num_items, std::span<const store::NodeId> excluded,
                                         int count, uint64_t seed, uint64_t stream);

// Accumulates Hit@K and NDCG@K, overall and per history-length group (paper Fig. 8).
class RankingMetrics {
 public:
  void Add(int64_t rank, int32_t history);
  int64_t count() const { return count_; }
  double Hit(int k) const;
  double Ndcg(int k) const;
  // Keys "<prefix>hit@5", "<prefix>ndcg@10", ..., "<prefix>n"; values in [0, 1].
  void AppendTo(const std::string& prefix, JsonObject* out) const;
  // Groups: history length 1-4, 5-9, 10-19, 20-49, 50+.
  static constexpr int kGroups = 5;
  static const char* GroupName(int g);
  static int GroupOf(int32_t history);
  const RankingMetrics& Group(int g) const;

 private:
  int64_t count_ = 0;
  std::array<double, kCutoffs.size()> hit_{}, ndcg_{};
  std::vector<RankingMetrics> groups_;
};

}  // namespace dgsr::trainer

#endif  // DGSR_TRAINER_METRICS_H_
