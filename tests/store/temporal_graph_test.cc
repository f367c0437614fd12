#include "store/temporal_graph.h"

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace dgsr::store {
namespace {

// Brute-force reference: the edge log in insertion order.
struct Edge {
  NodeId id;
  Timestamp time;
  bool operator==(const Edge&) const = default;
};

// Neighbours of `node` from the first `prefix` log entries, stable-sorted by time.
std::vector<Edge> Neighbours(const std::vector<Interaction>& log, size_t prefix, bool by_user,
                             NodeId node) {
  std::vector<Edge> out;
  for (size_t k = 0; k < prefix; ++k) {
    const Interaction& x = log[k];
    if ((by_user ? x.user : x.item) == node) out.push_back({by_user ? x.item : x.user, x.time});
  }
  std::stable_sort(out.begin(), out.end(), [](const Edge& a, const Edge& b) { return a.time < b.time; });
  return out;
}

std::vector<Edge> ExpectedRecent(const std::vector<Edge>& all, TimeWindow w, int n) {
  std::vector<Edge> in;
  int tied = 0;  // Edges at w.end taken so far: the first w.ties of them are in the window.
  for (const Edge& e : all) {
    if (e.time >= w.begin && (e.time < w.end || (e.time == w.end && tied++ < w.ties))) in.push_back(e);
  }
  if (n < 0) n = 0;
  if (in.size() > static_cast<size_t>(n)) in.erase(in.begin(), in.end() - n);
  return in;
}

std::vector<Edge> ActualRecent(const TemporalGraph::ReadView& view, bool by_user, NodeId node,
                               TimeWindow w, int n) {
  std::vector<NodeId> ids(std::max(n, 0) + 1, 12345);
  std::vector<Timestamp> times(std::max(n, 0) + 1, -777);
  int got = by_user ? view.RecentItems(node, w, n, ids.data(), times.data())
                    : view.RecentUsers(node, w, n, ids.data(), times.data());
  EXPECT_GE(got, 0);
  EXPECT_LE(got, std::max(n, 0));
  // Nothing past the returned count is touched.
  EXPECT_EQ(ids[got], 12345u);
  EXPECT_EQ(times[got], -777);
  std::vector<Edge> out;
  for (int k = 0; k < got; ++k) out.push_back({ids[k], times[k]});
  return out;
}

Timestamp RandomTime(std::mt19937_64& rng, Timestamp lo, Timestamp hi) {
  return std::uniform_int_distribution<Timestamp>(lo, hi)(rng);
}

TimeWindow RandomWindow(std::mt19937_64& rng, Timestamp lo, Timestamp hi) {
  TimeWindow w;
  switch (rng() % 4) {
    case 0: break;  // Unbounded.
    case 1: w.end = RandomTime(rng, lo - 1, hi + 1); break;
    case 2: w.begin = RandomTime(rng, lo - 1, hi + 1); break;
    default:
      w.begin = RandomTime(rng, lo - 1, hi + 1);
      w.end = RandomTime(rng, lo - 1, hi + 1);  // May be empty or inverted.
  }
  if (rng() % 3 == 0) w.ties = static_cast<int32_t>(rng() % 5);  // A user's own tied events.
  return w;
}

// Checks every query on `view` against the first `prefix` log entries.
void CheckAgainstBruteForce(const TemporalGraph::ReadView& view,
                            const std::vector<Interaction>& log, size_t prefix, NodeId num_users,
                            NodeId num_items, std::mt19937_64& rng, int queries, Timestamp lo,
                            Timestamp hi) {
  ASSERT_EQ(view.num_interactions(), static_cast<int64_t>(prefix));
  for (int q = 0; q < queries; ++q) {
    const bool by_user = rng() % 2 == 0;
    // Includes ids past the end: unknown nodes have no neighbours.
    const NodeId node = static_cast<NodeId>(rng() % ((by_user ? num_users : num_items) + 2));
    const std::vector<Edge> all = Neighbours(log, prefix, by_user, node);
    const TimeWindow w = RandomWindow(rng, lo, hi);
    const int n = static_cast<int>(rng() % 40) - 2;
    const std::vector<Edge> got = ActualRecent(view, by_user, node, w, n);
    ASSERT_EQ(got, ExpectedRecent(all, w, n))
        << (by_user ? "user " : "item ") << node << " window [" << w.begin << "," << w.end
        << ") ties=" << w.ties << " n=" << n;
    for (const Edge& e : got) ASSERT_LE(e.time, w.end);  // The time bound: strict unless tied.
    if (w.ties == 0) {
      for (const Edge& e : got) ASSERT_LT(e.time, w.end);
    }

    const Timestamp before = RandomTime(rng, lo - 1, hi + 1);
    const int64_t degree = std::count_if(all.begin(), all.end(),
                                         [&](const Edge& e) { return e.time < before; });
    ASSERT_EQ(by_user ? view.UserDegree(node, before) : view.ItemDegree(node, before), degree);

    if (by_user) {
      std::vector<NodeId> items = {99};
      std::vector<Timestamp> times = {99};
      view.UserSequence(node, &items, &times);
      ASSERT_EQ(items.size(), all.size());
      for (size_t k = 0; k < all.size(); ++k) {
        ASSERT_EQ(items[k], all[k].id);
        ASSERT_EQ(times[k], all[k].time);
      }
    }
  }
}

std::vector<Interaction> RandomLog(std::mt19937_64& rng, size_t count, NodeId users, NodeId items,
                                   Timestamp lo, Timestamp hi) {
  std::vector<Interaction> log(count);
  for (Interaction& x : log) {
    x = {static_cast<NodeId>(rng() % users), static_cast<NodeId>(rng() % items),
         RandomTime(rng, lo, hi)};
  }
  return log;
}

TEST(TemporalGraphTest, BuildThenAddMatchesBruteForceOnRandomGraphs) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 60; ++round) {
    const NodeId users = 1 + rng() % 30, items = 1 + rng() % 30;
    const Timestamp lo = -5 + static_cast<Timestamp>(rng() % 10), hi = lo + 1 + rng() % 40;
    const size_t count = rng() % 600;
    const std::vector<Interaction> log = RandomLog(rng, count, users, items, lo, hi);
    const size_t built = rng() % (count + 1);
    auto graph = TemporalGraph::Build(std::span(log).first(built), users / 2, items / 2);
    {
      auto view = graph->Read();
      CheckAgainstBruteForce(view, log, built, users, items, rng, 50, lo, hi);
    }
    size_t added = built;
    while (added < count) {
      const size_t batch = std::min<size_t>(1 + rng() % 50, count - added);
      graph->Add(std::span(log).subspan(added, batch));
      added += batch;
      auto view = graph->Read();
      CheckAgainstBruteForce(view, log, added, users, items, rng, 20, lo, hi);
    }
  }
}

TEST(TemporalGraphTest, ManySmallAddsTriggerMergesAndStayExact) {
  std::mt19937_64 rng(7);
  const NodeId users = 200, items = 150;
  const std::vector<Interaction> log = RandomLog(rng, 30000, users, items, 0, 5000);
  auto graph = TemporalGraph::Build(std::span(log).first(2000), users, items);
  size_t added = 2000;
  while (added < log.size()) {
    const size_t batch = std::min<size_t>(1 + rng() % 300, log.size() - added);
    graph->Add(std::span(log).subspan(added, batch));
    added += batch;
    if (rng() % 8 == 0) {
      auto view = graph->Read();
      CheckAgainstBruteForce(view, log, added, users, items, rng, 10, 0, 5000);
    }
  }
  auto view = graph->Read();
  CheckAgainstBruteForce(view, log, added, users, items, rng, 300, 0, 5000);
}

TEST(TemporalGraphTest, StrictTimeBoundNeverReturnsEdgesAtOrAfterEnd) {
  std::vector<Interaction> log = {{0, 0, 10}, {0, 1, 10}, {0, 2, 11}, {0, 3, 9}};
  auto graph = TemporalGraph::Build(log, 1, 4);
  graph->Add(std::vector<Interaction>{{0, 4, 10}});
  auto view = graph->Read();
  NodeId ids[8];
  Timestamp times[8];
  EXPECT_EQ(view.RecentItems(0, {kMinTime, 9}, 8, ids, times), 0);
  ASSERT_EQ(view.RecentItems(0, {kMinTime, 10}, 8, ids, times), 1);
  EXPECT_EQ(ids[0], 3u);
  ASSERT_EQ(view.RecentItems(0, {kMinTime, 11}, 8, ids, times), 4);
  EXPECT_EQ(times[3], 10);
  EXPECT_EQ(view.UserDegree(0, 10), 1);
  EXPECT_EQ(view.UserDegree(0, 11), 4);
  // The lower bound is inclusive.
  ASSERT_EQ(view.RecentItems(0, {10, 11}, 8, ids, times), 3);
  EXPECT_EQ(ids[0], 0u);
}

TEST(TemporalGraphTest, TiesKeepInsertionOrderAcrossBuildAndAdd) {
  std::vector<Interaction> log = {{0, 5, 3}, {0, 6, 3}, {0, 7, 3}};
  auto graph = TemporalGraph::Build(log, 1, 10);
  graph->Add(std::vector<Interaction>{{0, 8, 3}, {0, 1, 2}});
  graph->Add(std::vector<Interaction>{{0, 9, 3}});
  auto view = graph->Read();
  std::vector<NodeId> items;
  std::vector<Timestamp> times;
  view.UserSequence(0, &items, &times);
  EXPECT_EQ(items, (std::vector<NodeId>{1, 5, 6, 7, 8, 9}));
  NodeId recent[2];
  ASSERT_EQ(view.RecentItems(0, {}, 2, recent, nullptr), 2);
  EXPECT_EQ(recent[0], 8u);
  EXPECT_EQ(recent[1], 9u);
}

TEST(TemporalGraphTest, TiesInTheWindowAreTheFirstOnesAddedAcrossBuildAndAdd) {
  // User 0's events at time 3 in sequence order: 5, 6 (built), 7 (added later); 9 at time 4.
  auto graph = TemporalGraph::Build(std::vector<Interaction>{{0, 5, 3}, {0, 6, 3}, {0, 1, 2}}, 1, 10);
  graph->Add(std::vector<Interaction>{{0, 7, 3}, {0, 9, 4}});
  auto view = graph->Read();
  NodeId ids[8];
  auto recent = [&](TimeWindow w, int n) {
    return std::vector<NodeId>(ids, ids + view.RecentItems(0, w, n, ids, nullptr));
  };
  EXPECT_EQ(recent({kMinTime, 3, 0}, 8), (std::vector<NodeId>{1}));
  EXPECT_EQ(recent({kMinTime, 3, 1}, 8), (std::vector<NodeId>{1, 5}));
  EXPECT_EQ(recent({kMinTime, 3, 2}, 8), (std::vector<NodeId>{1, 5, 6}));
  EXPECT_EQ(recent({kMinTime, 3, 3}, 8), (std::vector<NodeId>{1, 5, 6, 7}));  // CSR, then tail
  EXPECT_EQ(recent({kMinTime, 3, 9}, 8), (std::vector<NodeId>{1, 5, 6, 7}));  // no more at 3
  EXPECT_EQ(recent({kMinTime, 3, 3}, 2), (std::vector<NodeId>{6, 7}));        // the newest n
  EXPECT_EQ(recent({3, 3, 2}, 8), (std::vector<NodeId>{5, 6}));               // only the ties
  EXPECT_EQ(recent({3, 3, 0}, 8), (std::vector<NodeId>{}));
  EXPECT_EQ(recent({kMinTime, 4, 1}, 8), (std::vector<NodeId>{1, 5, 6, 7, 9}));
}

TEST(TemporalGraphTest, LateEdgeIsInsertedInOrderAndGrowsNodeCounts) {
  auto graph = TemporalGraph::Build(std::vector<Interaction>{{0, 0, 100}, {0, 1, 200}}, 1, 2);
  graph->Add(std::vector<Interaction>{{0, 2, 150}, {3, 4, 50}, {0, 3, 50}});
  auto view = graph->Read();
  EXPECT_EQ(view.num_users(), 4u);
  EXPECT_EQ(view.num_items(), 5u);
  EXPECT_EQ(view.num_interactions(), 5);
  std::vector<NodeId> items;
  std::vector<Timestamp> times;
  view.UserSequence(0, &items, &times);
  EXPECT_EQ(items, (std::vector<NodeId>{3, 0, 2, 1}));
  EXPECT_EQ(times, (std::vector<Timestamp>{50, 100, 150, 200}));
  NodeId users[4];
  ASSERT_EQ(view.RecentUsers(4, {}, 4, users, nullptr), 1);
  EXPECT_EQ(users[0], 3u);
  EXPECT_EQ(view.RecentItems(2, {}, 4, nullptr, nullptr), 0);  // Known user, no edges.
}

TEST(TemporalGraphTest, MovedViewReleasesTheLockOnce) {
  TemporalGraph graph;
  {
    auto view = graph.Read();
    TemporalGraph::ReadView moved(std::move(view));
    EXPECT_EQ(moved.num_interactions(), 0);
  }
  graph.Add(std::vector<Interaction>{{0, 0, 1}});  // Would deadlock if a lock leaked.
  EXPECT_EQ(graph.Read().num_interactions(), 1);
}

TEST(TemporalGraphTest, BuiltIndexStaysUnder32BytesPerInteraction) {
  std::mt19937_64 rng(3);
  const std::vector<Interaction> log = RandomLog(rng, 500000, 3000, 3600, 0, 1 << 30);
  auto graph = TemporalGraph::Build(log, 3000, 3600);
  const double per = static_cast<double>(graph->MemoryBytes()) / log.size();
  EXPECT_LE(per, 32.0);
  EXPECT_GE(per, 24.0);  // Ids (4 B) and times (8 B) in both directions, nothing lost.
}

// One writer adds batches while readers check that each view equals the brute force over the
// prefix of the log that it shows (batches are applied atomically and in order).
TEST(TemporalGraphTest, ConcurrentReadersWithOneWriterSeeConsistentPrefixes) {
  std::mt19937_64 rng(11);
  const NodeId users = 40, items = 30;
  const std::vector<Interaction> log = RandomLog(rng, 12000, users, items, 0, 3000);
  std::vector<size_t> boundaries = {1000};
  while (boundaries.back() < log.size()) {
    boundaries.push_back(std::min(log.size(), boundaries.back() + 1 + rng() % 200));
  }
  auto graph = TemporalGraph::Build(std::span(log).first(1000), users, items);
  std::atomic<bool> done{false};
  std::atomic<int> failures{0}, checks{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937_64 local(100 + r);
      while (!done.load()) {
        auto view = graph->Read();
        const size_t prefix = static_cast<size_t>(view.num_interactions());
        if (!std::binary_search(boundaries.begin(), boundaries.end(), prefix)) ++failures;
        for (int q = 0; q < 5; ++q) {
          const bool by_user = local() % 2 == 0;
          const NodeId node = static_cast<NodeId>(local() % (by_user ? users : items));
          const TimeWindow w = RandomWindow(local, 0, 3000);
          const int n = 1 + static_cast<int>(local() % 20);
          NodeId ids[20];
          Timestamp times[20];
          const int got = by_user ? view.RecentItems(node, w, n, ids, times)
                                  : view.RecentUsers(node, w, n, ids, times);
          std::vector<Edge> actual;
          for (int k = 0; k < got; ++k) actual.push_back({ids[k], times[k]});
          if (actual != ExpectedRecent(Neighbours(log, prefix, by_user, node), w, n)) ++failures;
          ++checks;
        }
      }
    });
  }
  for (size_t b = 1; b < boundaries.size(); ++b) {
    graph->Add(std::span(log).subspan(boundaries[b - 1], boundaries[b] - boundaries[b - 1]));
  }
  // Let the readers see the final state too.
  while (checks.load() < 300) std::this_thread::yield();
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(graph->Read().num_interactions(), static_cast<int64_t>(log.size()));
}

}  // namespace
}  // namespace dgsr::store
