#include "trainer/metrics.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"

namespace dgsr::trainer {

int64_t PessimisticRank(float target, std::span<const float> others) {
  int64_t rank = 0;
  for (float s : others) rank += CountsAgainst(s, target) ? 1 : 0;
  return rank;
}

uint64_t UniformBelow(std::mt19937_64& rng, uint64_t n) {
  // 2^64 mod n: the draws below it are the incomplete last block of n values, so rejecting them
  // leaves every residue equally likely.
  const uint64_t threshold = (0 - n) % n;
  for (;;) {
    const uint64_t x = rng();
    if (x >= threshold) return x % n;
  }
}

std::vector<store::NodeId> DrawNegatives(int64_t num_items, std::span<const store::NodeId> excluded,
                                         int count, uint64_t seed, uint64_t stream) {
  std::vector<store::NodeId> out;
  const int64_t available = num_items - static_cast<int64_t>(excluded.size());
  if (available <= 0) return out;
  count = static_cast<int>(std::min<int64_t>(count, available));
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + stream);
  out.reserve(count);
  while (static_cast<int>(out.size()) < count) {
    auto item = static_cast<store::NodeId>(UniformBelow(rng, static_cast<uint64_t>(num_items)));
    if (std::binary_search(excluded.begin(), excluded.end(), item)) continue;
    if (std::find(out.begin(), out.end(), item) != out.end()) continue;
    out.push_back(item);
  }
  return out;
}

void RankingMetrics::Add(int64_t rank, int32_t history) {
  ++count_;
  for (size_t c = 0; c < kCutoffs.size(); ++c) {
    if (rank < kCutoffs[c]) {
      hit_[c] += 1;
      ndcg_[c] += 1.0 / std::log2(static_cast<double>(rank) + 2.0);
    }
  }
  if (history >= 0) {
    if (groups_.empty()) groups_.resize(kGroups);
    groups_[GroupOf(history)].Add(rank, -1);
  }
}

static int CutoffIndex(int k) {
  for (size_t c = 0; c < kCutoffs.size(); ++c) if (kCutoffs[c] == k) return static_cast<int>(c);
  return -1;
}

double RankingMetrics::Hit(int k) const {
  int c = CutoffIndex(k);
  return count_ == 0 || c < 0 ? 0.0 : hit_[c] / count_;
}

double RankingMetrics::Ndcg(int k) const {
  int c = CutoffIndex(k);
  return count_ == 0 || c < 0 ? 0.0 : ndcg_[c] / count_;
}

void RankingMetrics::AppendTo(const std::string& prefix, JsonObject* out) const {
  for (int k : kCutoffs) {
    out->Set(absl::StrCat(prefix, "hit@", k), Hit(k));
    out->Set(absl::StrCat(prefix, "ndcg@", k), Ndcg(k));
  }
  out->Set(absl::StrCat(prefix, "n"), count_);
}

const char* RankingMetrics::GroupName(int g) {
  static const char* kNames[kGroups] = {"1-4", "5-9", "10-19", "20-49", "50+"};
  return kNames[g];
}

int RankingMetrics::GroupOf(int32_t history) {
  if (history < 5) return 0;
  if (history < 10) return 1;
  if (history < 20) return 2;
  if (history < 50) return 3;
  return 4;
}

const RankingMetrics& RankingMetrics::Group(int g) const {
  static const RankingMetrics kEmpty;
  return groups_.empty() ? kEmpty : groups_[g];
}

}  // namespace dgsr::trainer
