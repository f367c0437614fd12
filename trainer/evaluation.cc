#include "trainer/evaluation.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/progress.h"
#include "common/status_macros.h"

namespace dgsr::trainer {

std::span<const Sample> PartSamples(const Split& split, SplitPart part, int64_t limit) {
  const std::vector<Sample>& all = part == SplitPart::kValid ? split.valid : split.test;
  size_t n = limit > 0 ? std::min<size_t>(all.size(), limit) : all.size();
  return std::span<const Sample>(all.data(), n);
}

const store::TemporalGraph& PartGraph(const Split& split, SplitPart part) {
  return part == SplitPart::kValid ? *split.valid_graph : *split.full_graph;
}

namespace {

// Ranks each sample's target from a row of scores over all items.
void RankRows(const Split& split, std::span<const Sample> samples, size_t first_index,
              const float* scores, int64_t num_scored, const store::TemporalGraph::ReadView& view,
              const EvalOptions& options, EvalResult* result, std::vector<uint8_t>* mask) {
  std::vector<float> negative_scores;
  std::vector<store::NodeId> history;
  for (size_t s = 0; s < samples.size(); ++s) {
    const Sample& sample = samples[s];
    const float* row = scores + s * num_scored;
    const float target = sample.target < num_scored ? row[sample.target] : 0.0f;
    auto negatives = DrawNegatives(split.num_items, split.user_items[sample.user], options.negatives,
                                   options.seed, first_index + s);
    negative_scores.clear();
    for (store::NodeId n : negatives) negative_scores.push_back(n < num_scored ? row[n] : 0.0f);
    result->sampled.Add(PessimisticRank(target, negative_scores), sample.history);
    if (!options.full_ranking) continue;
    history.resize(sample.history);
    int h = view.RecentItems(sample.user, {store::kMinTime, sample.before, sample.ties},
                             static_cast<int>(history.size()), history.data(), nullptr);
    for (int k = 0; k < h; ++k) (*mask)[history[k]] = 1;
    int64_t rank = 0;
    for (int64_t i = 0; i < num_scored; ++i) {
      rank += (!(*mask)[i] && i != sample.target && CountsAgainst(row[i], target)) ? 1 : 0;
    }
    // Items newer than the model score 0 and count against the target as in the sampled path.
    if (num_scored < split.num_items && CountsAgainst(0.0f, target)) {
      for (int64_t i = num_scored; i < split.num_items; ++i) rank += (!(*mask)[i] && i != sample.target) ? 1 : 0;
    }
    for (int k = 0; k < h; ++k) (*mask)[history[k]] = 0;
    result->full.Add(rank, sample.history);
  }
}

}  // namespace

JsonObject EvalResult::ToJson(const std::string& prefix) const {
  JsonObject j;
  sampled.AppendTo(prefix, &j);
  full.AppendTo(prefix + "full_", &j);
  return j;
}

absl::StatusOr<EvalResult> EvaluateWith(const Split& split, SplitPart part, const EvalOptions& options,
                                        const BatchScorer& scorer) {
  const absl::Time start = absl::Now();
  std::span<const Sample> samples = PartSamples(split, part, options.max_samples);
  auto view = PartGraph(split, part).Read();
  EvalResult result;
  std::vector<uint8_t> mask(split.num_items, 0);
  std::vector<float> scores;
  std::unique_ptr<ProgressBar> bar;
  if (options.show_progress) {
    bar = std::make_unique<ProgressBar>(part == SplitPart::kValid ? "validate" : "test",
                                        static_cast<int64_t>(samples.size()), "samples");
  }
  for (size_t begin = 0; begin < samples.size(); begin += options.batch_size) {
    auto chunk = samples.subspan(begin, std::min<size_t>(options.batch_size, samples.size() - begin));
    RETURN_IF_ERROR(scorer(chunk, view, &scores));
    const size_t width = scores.size() / chunk.size();
    if (width == 0 || width * chunk.size() != scores.size() || width > static_cast<size_t>(split.num_items)) {
      return absl::InternalError(absl::StrCat("scorer returned ", scores.size(), " scores for ", chunk.size(),
                                              " samples over ", split.num_items, " items"));
    }
    RankRows(split, chunk, begin, scores.data(), static_cast<int64_t>(width), view, options, &result, &mask);
    if (bar) bar->Add(static_cast<int64_t>(chunk.size()));
  }
  if (bar) bar->Finish();
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return result;
}

EvalResult EvaluatePopularity(const Split& split, SplitPart part, const EvalOptions& options) {
  const absl::Time start = absl::Now();
  std::span<const Sample> samples = PartSamples(split, part, options.max_samples);
  auto train_view = split.train_graph->Read();
  std::vector<float> popularity(split.num_items);
  for (int64_t i = 0; i < split.num_items; ++i) {
    popularity[i] = static_cast<float>(train_view.ItemDegree(static_cast<store::NodeId>(i), store::kMaxTime));
  }
  EvalResult result;
  std::vector<uint8_t> mask(split.num_items, 0);
  auto view = PartGraph(split, part).Read();
  std::vector<float> rows;
  for (size_t s = 0; s < samples.size(); ++s) {
    RankRows(split, samples.subspan(s, 1), s, popularity.data(), split.num_items, view, options, &result, &mask);
  }
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return result;
}

}  // namespace dgsr::trainer
