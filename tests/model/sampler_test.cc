// SubgraphSampler against a brute-force reference built straight from the interaction list.
#include "model/sampler.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "gtest/gtest.h"

namespace dgsr::model {
namespace {

using store::Interaction;
using store::NodeId;
using store::Timestamp;
using store::TimeWindow;

struct RandomGraph {
  std::vector<Interaction> edges;
  NodeId users, items;
};

RandomGraph MakeGraph(uint32_t seed, NodeId users, NodeId items, int edges, Timestamp max_time) {
  std::mt19937 rng(seed);
  RandomGraph g{{}, users, items};
  std::uniform_int_distribution<NodeId> u(0, users - 1), i(0, items - 1);
  std::uniform_int_distribution<Timestamp> t(0, max_time);  // Small range: many ties.
  for (int k = 0; k < edges; ++k) g.edges.push_back({u(rng), i(rng), t(rng)});
  return g;
}

// The n most recent neighbours in `window`, oldest first; ties keep insertion order.
std::vector<std::pair<NodeId, Timestamp>> Recent(const RandomGraph& g, bool of_user, NodeId node,
                                                 TimeWindow w, int n) {
  std::vector<std::pair<NodeId, Timestamp>> all;
  for (const Interaction& e : g.edges) {
    if ((of_user ? e.user : e.item) != node) continue;
    if (e.time < w.begin || e.time >= w.end) continue;
    all.emplace_back(of_user ? e.item : e.user, e.time);
  }
  std::stable_sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.second < b.second; });
  if (static_cast<int>(all.size()) > n) all.erase(all.begin(), all.end() - n);
  return all;
}

struct Reference {
  std::map<NodeId, int> user_hop, item_hop;
  std::map<NodeId, std::vector<NodeId>> user_list, item_list;  // expanded nodes only
};

// The graph a request sees: the anchor's edges strictly before its time and its own first `ties`
// edges at that time (in insertion order); every other user's edges strictly before
// others_before (the request's time unless set).
RandomGraph Visible(const RandomGraph& g, const SampleRequest& req) {
  RandomGraph out{{}, g.users, g.items};
  int ties = req.ties;
  const Timestamp others_end = req.others_before.value_or(req.before);
  for (const Interaction& e : g.edges) {
    const bool visible = e.user == req.user
                             ? e.time < req.before || (e.time == req.before && ties-- > 0)
                             : e.time < others_end;
    if (visible) out.edges.push_back(e);
  }
  return out;
}

// Literal reading of the sampler's documented definition.
Reference Bfs(const RandomGraph& all, const DgsrConfig& c, const SampleRequest& req, int horizon) {
  const RandomGraph g = Visible(all, req);
  const NodeId user = req.user;
  Reference ref;
  TimeWindow w, anchor_w;  // Everything in `g` is visible...
  if (c.sampler_variant == SamplerVariant::kAuthors) {
    // ...from the time of the anchor's (n+1)-th most recent edge on, in the authors' variant; for
    // everyone when other users share the anchor's clock (no others_before), else for the
    // anchor's own list only.
    auto seq = Recent(g, true, user, w, c.max_neighbors + 1);
    if (!seq.empty()) anchor_w.begin = seq.front().second;
    if (!req.others_before) w = anchor_w;
  }
  ref.user_hop[user] = 0;
  std::vector<NodeId> frontier{user};
  std::set<NodeId> dropped;
  for (int hop = 0; hop < horizon && !frontier.empty(); ++hop) {
    const bool from_users = hop % 2 == 0;
    std::vector<NodeId> next;
    std::map<NodeId, Timestamp> latest;
    for (NodeId x : frontier) {
      if (from_users && dropped.count(x)) continue;
      auto list = Recent(g, from_users, x, hop == 0 ? anchor_w : w, c.max_neighbors);
      auto& out = from_users ? ref.user_list[x] : ref.item_list[x];
      auto& hops = from_users ? ref.item_hop : ref.user_hop;
      for (auto [y, t] : list) {
        out.push_back(y);
        if (!hops.count(y)) {
          hops[y] = hop + 1;
          next.push_back(y);
        }
        if (hops[y] == hop + 1) latest[y] = std::max(latest.count(y) ? latest[y] : store::kMinTime, t);
      }
    }
    if (!from_users && c.sampler_variant == SamplerVariant::kAuthors &&
        static_cast<int>(next.size()) > c.max_neighbors) {
      std::vector<std::pair<Timestamp, NodeId>> ranked;
      for (NodeId y : next) ranked.emplace_back(latest[y], y);
      std::sort(ranked.begin(), ranked.end(), [](auto& a, auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
      });
      for (size_t k = c.max_neighbors; k < ranked.size(); ++k) dropped.insert(ranked[k].second);
    }
    frontier = next;
  }
  return ref;
}

void ExpectMatches(const RandomGraph& g, const DgsrConfig& c, SubgraphSampler::Mode mode,
                   const SampleRequest& req, const Blocks& b) {
  const int max_hop = 2 * c.sampler_order - 1;
  const int horizon = mode == SubgraphSampler::Mode::kFull ? max_hop : std::min(c.BlockDepth(), max_hop);
  Reference ref = Bfs(g, c, req, horizon);
  ASSERT_EQ(b.num_anchors, 1);
  ASSERT_EQ(b.user_ids[0], req.user);
  std::set<NodeId> users(b.user_ids.begin(), b.user_ids.end()), items(b.item_ids.begin(), b.item_ids.end());
  ASSERT_EQ(users.size(), b.user_ids.size()) << "a user appears twice";
  ASSERT_EQ(items.size(), b.item_ids.size()) << "an item appears twice";
  std::set<NodeId> ref_users, ref_items;
  for (auto& [u, h] : ref.user_hop) ref_users.insert(u);
  for (auto& [i, h] : ref.item_hop) ref_items.insert(i);
  EXPECT_EQ(users, ref_users);
  EXPECT_EQ(items, ref_items);
  for (size_t r = 0; r < b.user_len.size(); ++r) {
    std::vector<NodeId> got;
    for (int64_t k = 0; k < b.user_len[r]; ++k) got.push_back(b.item_ids[b.user_nbr[r * b.user_width + k]]);
    auto it = ref.user_list.find(b.user_ids[r]);
    EXPECT_EQ(got, it == ref.user_list.end() ? std::vector<NodeId>{} : it->second) << "user row " << r;
  }
  for (size_t r = 0; r < b.item_len.size(); ++r) {
    std::vector<NodeId> got;
    for (int64_t k = 0; k < b.item_len[r]; ++k) got.push_back(b.user_ids[b.item_nbr[r * b.item_width + k]]);
    auto it = ref.item_list.find(b.item_ids[r]);
    EXPECT_EQ(got, it == ref.item_list.end() ? std::vector<NodeId>{} : it->second) << "item row " << r;
  }
  // Every destination row the network reads has a neighbour list row.
  if (mode == SubgraphSampler::Mode::kPruned) {
    for (auto& [u, h] : ref.user_hop) {
      if (h <= c.BlockDepth() - 1) {
        auto pos = std::find(b.user_ids.begin(), b.user_ids.end(), u) - b.user_ids.begin();
        EXPECT_LT(pos, static_cast<int64_t>(b.user_len.size()));
      }
    }
  }
}

struct Case {
  SamplerVariant variant;
  int order;
  int neighbors;
  int layers;
  bool last_item;
};

class SamplerReferenceTest : public ::testing::TestWithParam<Case> {};

TEST_P(SamplerReferenceTest, MatchesBruteForceInBothModes) {
  const Case& k = GetParam();
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    RandomGraph g = MakeGraph(seed, 40, 30, 600, seed == 3 ? 12 : 100);  // seed 3: ties everywhere
    auto graph = store::TemporalGraph::Build(g.edges, g.users, g.items);
    auto view = graph->Read();
    DgsrConfig c;
    c.num_users = g.users;
    c.num_items = g.items;
    c.sampler_variant = k.variant;
    c.sampler_order = k.order;
    c.max_neighbors = k.neighbors;
    c.layers = k.layers;
    c.last_item = k.last_item;
    for (auto mode : {SubgraphSampler::Mode::kPruned, SubgraphSampler::Mode::kFull}) {
      SubgraphSampler sampler(c, mode);
      std::mt19937 rng(seed);
      for (int q = 0; q < 25; ++q) {
        SampleRequest req{static_cast<NodeId>(rng() % g.users), static_cast<Timestamp>(rng() % 110)};
        if (q % 2 == 1) {
          // At the time of one of the user's edges, with some of its tied edges as history.
          std::vector<Timestamp> own;
          for (const Interaction& e : g.edges) {
            if (e.user == req.user) own.push_back(e.time);
          }
          if (!own.empty()) req.before = own[rng() % own.size()];
          req.ties = static_cast<int32_t>(rng() % (1 + std::count(own.begin(), own.end(), req.before)));
        }
        if (q % 3 == 2) {
          // Order-only data: other users' edges up to another time, later (the anchor's own later
          // edges stay hidden, its tied history not) or earlier (its own edges in between stay
          // visible), or the same time on another clock.
          const auto shift = rng() % 2 ? static_cast<Timestamp>(rng() % 7) - 3 : static_cast<Timestamp>(rng() % 60) - 20;
          req.others_before = req.before + shift;
        }
        Blocks b;
        sampler.SampleBatch(view, std::span(&req, 1), &b);
        ExpectMatches(g, c, mode, req, b);
        if (HasFailure()) return;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Variants, SamplerReferenceTest,
    ::testing::Values(Case{SamplerVariant::kPaper, 1, 5, 2, false}, Case{SamplerVariant::kPaper, 2, 5, 2, false},
                      Case{SamplerVariant::kPaper, 3, 4, 3, true}, Case{SamplerVariant::kPaper, 4, 3, 4, false},
                      Case{SamplerVariant::kAuthors, 1, 5, 2, true}, Case{SamplerVariant::kAuthors, 2, 3, 3, false},
                      Case{SamplerVariant::kAuthors, 3, 4, 2, false}, Case{SamplerVariant::kAuthors, 4, 2, 4, true}));

// The network reads only nodes within L hops, and a node's neighbour list is its n most recent
// neighbours whatever m is; so every m that reaches hop L (2m - 1 >= L) gives the network the same
// blocks. This is why m (the paper's 4, our default 3) is not a quality lever for L <= 3.
TEST(SamplerTest, OrdersThatReachTheLayerDepthGiveIdenticalBlocks) {
  RandomGraph g = MakeGraph(11, 40, 30, 700, 60);
  auto graph = store::TemporalGraph::Build(g.edges, g.users, g.items);
  auto view = graph->Read();
  std::vector<SampleRequest> reqs;
  for (NodeId u = 0; u < 40; u += 3) reqs.push_back({u, static_cast<Timestamp>(20 + u)});
  for (SamplerVariant variant : {SamplerVariant::kPaper, SamplerVariant::kAuthors}) {
    for (int layers : {2, 3}) {
      std::vector<Blocks> by_order;
      for (int order : {2, 3, 4}) {
        DgsrConfig c;
        c.num_users = g.users;
        c.num_items = g.items;
        c.sampler_variant = variant;
        c.max_neighbors = 4;
        c.layers = layers;
        c.sampler_order = order;
        SubgraphSampler sampler(c, SubgraphSampler::Mode::kPruned);
        sampler.SampleBatch(view, reqs, &by_order.emplace_back());
      }
      for (size_t k = 1; k < by_order.size(); ++k) {
        const Blocks& a = by_order[0];
        const Blocks& b = by_order[k];
        SCOPED_TRACE(::testing::Message() << "variant " << static_cast<int>(variant) << " L=" << layers
                                          << " m=" << k + 2 << " vs m=2");
        EXPECT_GT(a.num_edges(), 0);
        EXPECT_EQ(a.user_ids, b.user_ids);
        EXPECT_EQ(a.item_ids, b.item_ids);
        EXPECT_EQ(a.user_nbr, b.user_nbr);
        EXPECT_EQ(a.user_len, b.user_len);
        EXPECT_EQ(a.item_nbr, b.item_nbr);
        EXPECT_EQ(a.item_len, b.item_len);
        EXPECT_EQ(a.layer_users, b.layer_users);
        EXPECT_EQ(a.layer_items, b.layer_items);
      }
    }
  }
}

TEST(SamplerTest, NothingAtOrAfterTheRequestTimeIsVisible) {
  // Edges at exactly t must be hidden: the user's interaction at t is what we predict.
  std::vector<Interaction> edges{{0, 0, 10}, {0, 1, 20}, {1, 1, 5}, {1, 2, 20}, {1, 0, 30}};
  auto graph = store::TemporalGraph::Build(edges, 2, 3);
  auto view = graph->Read();
  DgsrConfig c;
  c.num_users = 2;
  c.num_items = 3;
  c.sampler_order = 3;
  SubgraphSampler sampler(c, SubgraphSampler::Mode::kFull);
  SampleRequest req{0, 20};
  Blocks b;
  sampler.SampleBatch(view, std::span(&req, 1), &b);
  EXPECT_EQ(b.item_ids, (std::vector<int64_t>{0}));  // item 1 (t=20) is not visible
  EXPECT_EQ(b.user_ids, (std::vector<int64_t>{0}));  // user 1 touched item 0 only at t=30
  EXPECT_EQ(b.last_item, (std::vector<int64_t>{0}));
}

// Events of the same day: the anchor's own earlier ones are history (in its list and in those
// items' lists); other users' events of that day are hidden, even the one that took the target.
TEST(SamplerTest, TiedEventsOfOtherUsersAreHiddenAndTheAnchorsOwnAreKept) {
  std::vector<Interaction> edges{
      {0, 0, 5},  {1, 4, 3},  {1, 1, 4},                // before day 10
      {0, 1, 10}, {1, 2, 10}, {0, 2, 10}, {1, 3, 10},   // day 10: users 0 and 1, interleaved
      {0, 3, 10}};                                       // user 0's third event of day 10: target
  auto graph = store::TemporalGraph::Build(edges, 2, 5);
  auto view = graph->Read();
  DgsrConfig c;
  c.num_users = 2;
  c.num_items = 5;
  c.sampler_order = 2;
  c.max_neighbors = 2;
  SubgraphSampler sampler(c, SubgraphSampler::Mode::kFull);
  auto neighbours = [](const Blocks& b, bool user_row, int64_t row) {
    std::vector<int64_t> out;
    const int64_t width = user_row ? b.user_width : b.item_width;
    const int64_t len = user_row ? b.user_len[row] : b.item_len[row];
    for (int64_t k = 0; k < len; ++k) {
      const int64_t r = (user_row ? b.user_nbr : b.item_nbr)[row * width + k];
      out.push_back(user_row ? b.item_ids[r] : b.user_ids[r]);
    }
    return out;
  };
  auto row_of = [](const std::vector<int64_t>& ids, int64_t id) {
    return std::find(ids.begin(), ids.end(), id) - ids.begin();
  };

  SampleRequest req{0, 10, 2};  // Predict item 3 after items 1 and 2 of the same day.
  Blocks b;
  sampler.SampleBatch(view, std::span(&req, 1), &b);
  EXPECT_EQ(neighbours(b, true, 0), (std::vector<int64_t>{1, 2}));  // n = 2 most recent: both tied
  // Item 2: user 1 took it on day 10 too; only the anchor's edge is visible.
  EXPECT_EQ(neighbours(b, false, row_of(b.item_ids, 2)), (std::vector<int64_t>{0}));
  // Item 1: user 1's day-4 edge is visible, then the anchor's tied one.
  EXPECT_EQ(neighbours(b, false, row_of(b.item_ids, 1)), (std::vector<int64_t>{1, 0}));
  // User 1 (hop 2) shows its history before day 10 only: not items 2 or 3 (the target).
  ASSERT_LT(row_of(b.user_ids, 1), static_cast<int64_t>(b.user_len.size()));
  EXPECT_EQ(neighbours(b, true, row_of(b.user_ids, 1)), (std::vector<int64_t>{4, 1}));
  EXPECT_EQ(std::count(b.item_ids.begin(), b.item_ids.end(), 3), 0);
  EXPECT_EQ(b.item_ids[b.last_item[0]], 2);

  req.ties = 0;  // The first event of the day: nothing of day 10 at all.
  sampler.SampleBatch(view, std::span(&req, 1), &b);
  EXPECT_EQ(b.item_ids, (std::vector<int64_t>{0}));
  EXPECT_EQ(b.user_ids, (std::vector<int64_t>{0}));
}

TEST(SamplerTest, BatchRowsAreOrderedByHopWithNestedLayerPrefixes) {
  RandomGraph g = MakeGraph(9, 30, 20, 400, 50);
  auto graph = store::TemporalGraph::Build(g.edges, g.users, g.items);
  auto view = graph->Read();
  DgsrConfig c;
  c.num_users = g.users;
  c.num_items = g.items;
  c.layers = 3;
  c.max_neighbors = 4;
  SubgraphSampler sampler(c, SubgraphSampler::Mode::kPruned);
  std::vector<SampleRequest> reqs{{1, 40}, {2, 45}, {3, 50}, {1, 20}};
  Blocks b;
  sampler.SampleBatch(view, reqs, &b);
  ASSERT_EQ(b.num_anchors, 4);
  for (int s = 0; s < 4; ++s) EXPECT_EQ(b.user_ids[s], reqs[s].user);
  ASSERT_EQ(b.layer_users.size(), 3u);
  EXPECT_EQ(b.layer_users[0], static_cast<int64_t>(b.user_len.size()));
  EXPECT_EQ(b.layer_items[0], static_cast<int64_t>(b.item_len.size()));
  for (int l = 1; l < 3; ++l) {
    EXPECT_LE(b.layer_users[l], b.layer_users[l - 1]);
    EXPECT_LE(b.layer_items[l], b.layer_items[l - 1]);
  }
  EXPECT_EQ(b.layer_users[2], 4);  // Last layer: the anchors only.
  EXPECT_EQ(b.layer_items[2], 0);
}

}  // namespace
}  // namespace dgsr::model
