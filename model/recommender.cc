#include "model/recommender.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace dgsr::model {
namespace {

// The k best of `items` by score (descending; ties: smaller id), skipping masked items.
std::vector<ScoredItem> TopK(const float* scores, std::span<const store::NodeId> items, int64_t catalogue,
                             int k, const std::vector<uint8_t>& masked) {
  std::vector<ScoredItem> all;
  auto consider = [&](store::NodeId item, float score) {
    if (item < masked.size() && masked[item]) return;
    all.push_back({item, score});
  };
  if (items.empty()) {
    for (int64_t i = 0; i < catalogue; ++i) consider(static_cast<store::NodeId>(i), scores[i]);
  } else {
    for (size_t c = 0; c < items.size(); ++c) consider(items[c], scores[c]);
  }
  auto better = [](const ScoredItem& a, const ScoredItem& b) {
    return a.score != b.score ? a.score > b.score : a.item < b.item;
  };
  const size_t keep = std::min<size_t>(k, all.size());
  std::partial_sort(all.begin(), all.begin() + keep, all.end(), better);
  all.resize(keep);
  return all;
}

}  // namespace

absl::StatusOr<std::vector<std::vector<ScoredItem>>> Recommender::Recommend(
    const store::TemporalGraph::ReadView& graph, std::span<const RecommendRequest> requests) const {
  if (requests.empty()) return absl::InvalidArgumentError("no recommendation requests");
  for (const auto& r : requests) {
    if (r.k < 1 || r.k > 10000) return absl::InvalidArgumentError(absl::StrCat("k must be in [1, 10000], got ", r.k));
  }
  const DgsrConfig& config = network_->config();
  std::vector<SampleRequest> samples;
  for (const auto& r : requests) samples.push_back({r.user, r.as_of});
  SubgraphSampler sampler(config, SubgraphSampler::Mode::kPruned);
  Blocks blocks;
  sampler.SampleBatch(graph, samples, &blocks);
  torch::NoGradGuard no_grad;
  auto rep = network_->Represent(ToTensors(blocks, config, network_->device()));
  if (!rep.ok()) return rep.status();
  torch::Tensor all_scores;
  try {
    all_scores = network_->ScoreAll(*rep).to(torch::kCPU).contiguous();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("scoring failed: ", e.what_without_backtrace()));
  }
  std::vector<std::vector<ScoredItem>> out;
  std::vector<uint8_t> masked(config.num_items, 0);
  std::vector<store::NodeId> seen;
  std::vector<float> candidate_scores;
  for (size_t s = 0; s < requests.size(); ++s) {
    const RecommendRequest& r = requests[s];
    const float* row = all_scores.data_ptr<float>() + s * config.num_items;
    seen.clear();
    if (r.exclude_seen) {
      seen.resize(graph.UserDegree(r.user, r.as_of));
      int n = graph.RecentItems(r.user, {store::kMinTime, r.as_of}, static_cast<int>(seen.size()), seen.data(), nullptr);
      seen.resize(n);
      for (store::NodeId i : seen) if (i < masked.size()) masked[i] = 1;
    }
    if (r.candidates.empty()) {
      out.push_back(TopK(row, {}, config.num_items, r.k, masked));
    } else {
      candidate_scores.clear();
      for (store::NodeId c : r.candidates) candidate_scores.push_back(c < config.num_items ? row[c] : 0.0f);
      out.push_back(TopK(candidate_scores.data(), r.candidates, config.num_items, r.k, masked));
    }
    for (store::NodeId i : seen) if (i < masked.size()) masked[i] = 0;
  }
  return out;
}

}  // namespace dgsr::model
