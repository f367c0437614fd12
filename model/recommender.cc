#include "model/recommender.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace dgsr::model {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

bool Better(const ScoredItem& a, const ScoredItem& b) {
  return a.score != b.score ? a.score > b.score : a.item < b.item;
}

// The k best of `items` by score (descending; ties: smaller id), skipping masked items. With
// `items` empty, the scores are the whole catalogue 0 .. n-1.
std::vector<ScoredItem> TopK(const float* scores, int64_t n, std::span<const store::NodeId> items, int k,
                             const std::vector<uint8_t>& masked) {
  std::vector<ScoredItem> best;
  best.reserve(k + 1);
  auto masked_out = [&](store::NodeId item) { return item < masked.size() && masked[item]; };
  // A bounded min-heap of the k best seen so far: O(n log k), no copy of the catalogue.
  auto consider = [&](store::NodeId item, float score) {
    if (masked_out(item)) return;
    const ScoredItem candidate{item, score};
    if (static_cast<int>(best.size()) < k) {
      best.push_back(candidate);
      std::push_heap(best.begin(), best.end(), Better);
    } else if (Better(candidate, best.front())) {
      std::pop_heap(best.begin(), best.end(), Better);
      best.back() = candidate;
      std::push_heap(best.begin(), best.end(), Better);
    }
  };
  if (items.empty()) {
    for (int64_t i = 0; i < n; ++i) consider(static_cast<store::NodeId>(i), scores[i]);
  } else {
    for (size_t c = 0; c < items.size(); ++c) consider(items[c], scores[c]);
  }
  std::sort_heap(best.begin(), best.end(), Better);
  return best;
}

}  // namespace

absl::StatusOr<std::vector<std::vector<ScoredItem>>> Recommender::Recommend(
    const store::TemporalGraph& graph, std::span<const RecommendRequest> requests,
    RecommendTimings* timings) const {
  if (requests.empty()) return absl::InvalidArgumentError("no recommendation requests");
  for (const auto& r : requests) {
    if (r.k < 1 || r.k > kMaxK) {
      return absl::InvalidArgumentError(absl::StrCat("k must be in [1, ", kMaxK, "], got ", r.k));
    }
  }
  RecommendTimings local_timings;
  if (timings == nullptr) timings = &local_timings;
  auto start = std::chrono::steady_clock::now();

  // Stage 1, under the read lock: the model's inputs and each user's seen items.
  std::vector<ScoringQuery> queries;
  queries.reserve(requests.size());
  for (const auto& r : requests) queries.push_back({r.user, r.as_of});
  std::unique_ptr<PreparedInputs> inputs;
  std::vector<std::vector<store::NodeId>> seen(requests.size());
  {
    const store::TemporalGraph::ReadView view = graph.Read();
    inputs = model_->Prepare(view, queries);
    for (size_t s = 0; s < requests.size(); ++s) {
      const RecommendRequest& r = requests[s];
      if (!r.exclude_seen) continue;
      seen[s].resize(view.UserDegree(r.user, r.as_of));
      seen[s].resize(view.RecentItems(r.user, {store::kMinTime, r.as_of}, static_cast<int>(seen[s].size()),
                                      seen[s].data(), nullptr));
    }
  }
  timings->sample = SecondsSince(start);

  // Stage 2, no lock: representations, then scores (whole catalogue, or candidates only).
  start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(torch::Tensor rep, model_->Represent(*inputs));
  std::vector<int64_t> full_rows;
  for (size_t s = 0; s < requests.size(); ++s) {
    if (requests[s].candidates.empty()) full_rows.push_back(static_cast<int64_t>(s));
  }
  torch::Tensor full_scores;  // [full_rows, num_items] on CPU
  if (!full_rows.empty()) {
    torch::Tensor rows = rep;
    if (full_rows.size() != requests.size()) {
      rows = rep.index_select(0, torch::tensor(full_rows, torch::kLong).to(rep.device()));
    }
    ASSIGN_OR_RETURN(torch::Tensor scores, model_->ScoreAll(rows));
    full_scores = scores.to(torch::kCPU).contiguous();
  }
  std::vector<torch::Tensor> candidate_scores(requests.size());
  for (size_t s = 0; s < requests.size(); ++s) {
    const auto& cands = requests[s].candidates;
    if (cands.empty()) continue;
    std::vector<int64_t> ids(cands.begin(), cands.end());
    torch::Tensor items = torch::tensor(ids, torch::kLong).view({1, -1});
    ASSIGN_OR_RETURN(torch::Tensor scores,
                     model_->ScoreItems(rep.narrow(0, static_cast<int64_t>(s), 1), items));
    candidate_scores[s] = scores.to(torch::kCPU).to(torch::kFloat).contiguous();
  }
  timings->forward = SecondsSince(start);

  // Stage 3: masks and top-K.
  start = std::chrono::steady_clock::now();
  const int64_t catalogue = model_->num_items();
  std::vector<std::vector<ScoredItem>> out(requests.size());
  // One mask over every id a list can contain: the catalogue, and candidates beyond it (items
  // created after training, which can still be seen or denied).
  size_t mask_size = static_cast<size_t>(catalogue);
  for (const auto& r : requests) {
    for (store::NodeId c : r.candidates) mask_size = std::max<size_t>(mask_size, static_cast<size_t>(c) + 1);
  }
  std::vector<uint8_t> masked(mask_size, 0);
  int64_t full_row = 0;
  for (size_t s = 0; s < requests.size(); ++s) {
    const RecommendRequest& r = requests[s];
    auto set_mask = [&](uint8_t value) {
      for (store::NodeId i : seen[s]) if (i < masked.size()) masked[i] = value;
      for (store::NodeId i : r.excluded) if (i < masked.size()) masked[i] = value;
    };
    set_mask(1);
    if (r.candidates.empty()) {
      out[s] = TopK(full_scores.data_ptr<float>() + full_row * catalogue, catalogue, {}, r.k, masked);
      ++full_row;
    } else {
      out[s] = TopK(candidate_scores[s].data_ptr<float>(), 0, r.candidates, r.k, masked);
    }
    set_mask(0);
  }
  timings->top_k = SecondsSince(start);
  return out;
}

}  // namespace dgsr::model
