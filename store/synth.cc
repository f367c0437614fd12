#include "store/synth.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace dgsr::store {
namespace {

// SplitMix64: tiny, fast, identical everywhere (std:: distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  uint64_t Below(uint64_t n) { return Next() % n; }

 private:
  uint64_t state_;
};

// Samples an index from cumulative weights.
size_t SampleCdf(const std::vector<double>& cdf, double u) {
  return std::min<size_t>(std::upper_bound(cdf.begin(), cdf.end(), u * cdf.back()) - cdf.begin(),
                          cdf.size() - 1);
}

}  // namespace

std::vector<Event> GenerateSynthetic(const SynthOptions& o) {
  Rng rng(o.seed * 0x2545F4914F6CDD1Dull + 7);
  const int items = std::max(2, o.num_items);
  // Popularity: item k has weight 1/(k+1)^s (item 0 the most popular).
  std::vector<double> cdf(items);
  double total = 0;
  for (int k = 0; k < items; ++k) cdf[k] = total += std::pow(k + 1.0, -o.zipf_exponent);
  // Topics: item k belongs to a random topic; per-topic item lists for topic picks.
  const int topics = std::max(1, o.num_topics);
  std::vector<std::vector<int>> topic_items(topics);
  std::vector<int> topic_of(items);
  for (int k = 0; k < items; ++k) {
    topic_of[k] = static_cast<int>(rng.Below(topics));
    topic_items[topic_of[k]].push_back(k);
  }
  // Successors: popularity-weighted, mostly within the item's topic.
  std::vector<std::vector<int>> successors(items);
  for (int k = 0; k < items; ++k) {
    while (static_cast<int>(successors[k].size()) < o.successors_per_item) {
      int s;
      if (rng.Uniform() < 0.7 && topic_items[topic_of[k]].size() > 1) {
        const auto& pool = topic_items[topic_of[k]];
        s = pool[rng.Below(pool.size())];
      } else {
        s = static_cast<int>(SampleCdf(cdf, rng.Uniform()));
      }
      if (s != k) successors[k].push_back(s);
    }
  }

  std::vector<Event> events;
  for (int u = 0; u < o.num_users; ++u) {
    const int mean = std::max(1, o.events_per_user);
    const int count = std::min(items - 1, mean / 2 + static_cast<int>(rng.Below(mean + 1)));
    Timestamp t = o.start_time + static_cast<Timestamp>(rng.Below(30 * 86400));
    int topic = static_cast<int>(rng.Below(topics));
    int prev = -1;
    absl::flat_hash_set<int> seen;
    for (int k = 0; k < std::max(1, count); ++k) {
      if (rng.Uniform() < o.drift_prob) topic = static_cast<int>(rng.Below(topics));
      int item = -1;
      for (int attempt = 0; attempt < 20 && (item < 0 || seen.contains(item)); ++attempt) {
        const double p = rng.Uniform();
        if (prev >= 0 && p < o.transition_prob) {
          item = successors[prev][rng.Below(successors[prev].size())];
        } else if (rng.Uniform() < o.topic_prob) {
          item = topic_items[topic].empty()
                     ? static_cast<int>(SampleCdf(cdf, rng.Uniform()))
                     : topic_items[topic][rng.Below(topic_items[topic].size())];
        } else {
          item = static_cast<int>(SampleCdf(cdf, rng.Uniform()));
        }
      }
      if (seen.contains(item)) {  // Rare: fall back to the first unseen item.
        for (item = 0; seen.contains(item); ++item) {
        }
      }
      seen.insert(item);
      prev = item;
      const double gap = -std::log(1.0 - rng.Uniform()) * static_cast<double>(o.mean_gap_s);
      t += 1 + static_cast<Timestamp>(gap);
      events.push_back({absl::StrCat("u", u), absl::StrCat("i", item), t,
                        absl::StrCat("synth:", o.seed, ":", u, ":", k)});
    }
  }
  std::vector<size_t> order(events.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return events[a].time < events[b].time; });
  std::vector<Event> sorted;
  sorted.reserve(events.size());
  for (size_t k : order) sorted.push_back(std::move(events[k]));
  return sorted;
}

}  // namespace dgsr::store
