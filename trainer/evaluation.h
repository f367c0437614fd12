// Evaluation under the honest protocol, shared by DGSR and the baselines (popularity, SASRec+):
// every model is measured on the same samples, graphs, negatives and metrics.
//
// A model plugs in as a BatchScorer: given a batch of samples and the graph they may read, it
// writes one row of scores over all items per sample. Samples of the validation part read the
// split's valid_graph; test samples read the full graph (split.h). EvaluateWith draws each
// sample's negatives (seeded by (eval seed, sample index), so every model sees the same ones) and
// accumulates sampled and full-ranking metrics (metrics.h).
#ifndef DGSR_TRAINER_EVALUATION_H_
#define DGSR_TRAINER_EVALUATION_H_

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/json.h"
#include "trainer/metrics.h"
#include "trainer/split.h"

namespace dgsr::trainer {

enum class SplitPart { kValid, kTest };

struct EvalOptions {
  uint64_t seed = 2024;         // Negatives (recorded with the metrics).
  int negatives = 100;
  int batch_size = 256;
  int64_t max_samples = 0;      // If > 0, evaluate on only the first N samples.
  bool full_ranking = true;     // Also rank against all items (history excluded).
  bool show_progress = true;
};

struct EvalResult {
  RankingMetrics sampled;        // 100 negatives
  RankingMetrics full;           // all items, the user's history before t excluded
  double seconds = 0;
  // "<prefix>hit@10", "<prefix>full_ndcg@10", ...
  JsonObject ToJson(const std::string& prefix) const;
};

// Writes samples.size() x K scores, row-major, for items 0 .. K-1 with 1 <= K <= split.num_items.
// K < num_items when the model predates items of a newer snapshot: those score 0, what the model's
// all-zero embedding row gives an unknown item.
using BatchScorer = std::function<absl::Status(std::span<const Sample> samples,
                                               const store::TemporalGraph::ReadView& graph,
                                               std::vector<float>* scores)>;

// The samples and the graph of one part of the split.
std::span<const Sample> PartSamples(const Split& split, SplitPart part, int64_t limit);
const store::TemporalGraph& PartGraph(const Split& split, SplitPart part);

[[nodiscard]] absl::StatusOr<EvalResult> EvaluateWith(const Split& split, SplitPart part,
                                                      const EvalOptions& options,
                                                      const BatchScorer& scorer);

// Popularity baseline: an item's score is its number of training interactions.
[[nodiscard]] EvalResult EvaluatePopularity(const Split& split, SplitPart part, const EvalOptions& options);

}  // namespace dgsr::trainer

#endif  // DGSR_TRAINER_EVALUATION_H_
