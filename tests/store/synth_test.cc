#include "store/synth.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"

namespace dgsr::store {
namespace {

SynthOptions Small(uint64_t seed) {
  SynthOptions o;
  o.num_users = 500;
  o.num_items = 400;
  o.events_per_user = 30;
  o.seed = seed;
  return o;
}

TEST(SynthTest, DeterministicBySeed) {
  const auto a = GenerateSynthetic(Small(1));
  const auto b = GenerateSynthetic(Small(1));
  const auto c = GenerateSynthetic(Small(2));
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    ASSERT_EQ(a[k].user, b[k].user);
    ASSERT_EQ(a[k].item, b[k].item);
    ASSERT_EQ(a[k].time, b[k].time);
  }
  size_t same = 0;
  for (size_t k = 0; k < std::min(a.size(), c.size()); ++k) same += a[k].item == c[k].item;
  EXPECT_LT(same, a.size() / 5);
}

TEST(SynthTest, TimesIncreaseAndUsersNeverRepeatAnItem) {
  const auto events = GenerateSynthetic(Small(3));
  std::map<std::string, Timestamp> last;
  std::map<std::string, std::vector<std::string>> seen;
  for (size_t k = 0; k < events.size(); ++k) {
    const Event& e = events[k];
    if (k > 0) {
      ASSERT_GE(e.time, events[k - 1].time);
    }
    auto it = last.find(e.user);
    if (it != last.end()) {
      ASSERT_GT(e.time, it->second);
    }
    last[e.user] = e.time;
    auto& items = seen[e.user];
    ASSERT_EQ(std::find(items.begin(), items.end(), e.item), items.end());
    items.push_back(e.item);
    ASSERT_GE(e.time, kMinEventTime);
    ASSERT_FALSE(e.event_id.empty());
  }
  EXPECT_EQ(last.size(), 500u);
}

TEST(SynthTest, PopularityIsSkewed) {
  const auto events = GenerateSynthetic(Small(4));
  absl::flat_hash_map<std::string, int> count;
  for (const Event& e : events) ++count[e.item];
  std::vector<int> c;
  for (const auto& [item, n] : count) c.push_back(n);
  std::sort(c.rbegin(), c.rend());
  int64_t top = 0, total = 0;
  for (size_t k = 0; k < c.size(); ++k) {
    total += c[k];
    if (k < c.size() / 10) top += c[k];
  }
  EXPECT_GT(static_cast<double>(top) / total, 0.3);  // Uniform would give 0.1.
}

// A first-order "most frequent successor" model, trained on all but each user's last event,
// must beat most-popular by a wide margin at HR@10 on the last event.
TEST(SynthTest, SequentialSignalBeatsPopularity) {
  const auto events = GenerateSynthetic(Small(5));
  std::map<std::string, std::vector<std::string>> seq;
  for (const Event& e : events) seq[e.user].push_back(e.item);
  absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, int>> next;
  absl::flat_hash_map<std::string, int> pop;
  for (const auto& [user, items] : seq) {
    for (size_t k = 0; k + 1 < items.size(); ++k) {
      ++pop[items[k]];
      if (k + 2 < items.size()) ++next[items[k]][items[k + 1]];
    }
  }
  auto top10 = [](const absl::flat_hash_map<std::string, int>& counts) {
    std::vector<std::pair<int, std::string>> v;
    for (const auto& [item, n] : counts) v.push_back({-n, item});
    std::sort(v.begin(), v.end());
    std::vector<std::string> out;
    for (size_t k = 0; k < v.size() && k < 10; ++k) out.push_back(v[k].second);
    return out;
  };
  const std::vector<std::string> popular = top10(pop);
  int hit_pop = 0, hit_seq = 0, n = 0;
  for (const auto& [user, items] : seq) {
    if (items.size() < 2) continue;
    ++n;
    const std::string& target = items.back();
    hit_pop += std::count(popular.begin(), popular.end(), target);
    const std::vector<std::string> s = top10(next[items[items.size() - 2]]);
    hit_seq += std::count(s.begin(), s.end(), target);
  }
  EXPECT_GT(hit_seq, 2 * hit_pop) << "seq " << hit_seq << " pop " << hit_pop << " of " << n;
}

}  // namespace
}  // namespace dgsr::store
