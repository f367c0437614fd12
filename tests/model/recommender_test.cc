// The serving path: ScoringModel over both networks, and Recommender's top-K, masks and candidates,
// checked against the networks' own scores.
#include "model/recommender.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <random>

#include "model/dgsr_network.h"
#include "model/sasrec_network.h"
#include "tests/testutil/temp_dir.h"

namespace dgsr::model {
namespace {

using store::Interaction;
using store::NodeId;

std::vector<Interaction> RandomEdges(uint32_t seed, NodeId users, NodeId items, int n) {
  std::mt19937 rng(seed);
  std::vector<Interaction> e;
  for (int k = 0; k < n; ++k) {
    e.push_back({static_cast<NodeId>(rng() % users), static_cast<NodeId>(rng() % items),
                 static_cast<store::Timestamp>(rng() % 1000)});
  }
  return e;
}

DgsrConfig TinyDgsr() {
  DgsrConfig c = DgsrConfig::Inductive();
  c.num_users = 12;
  c.num_items = 9;
  c.dim = 4;
  c.max_neighbors = 4;
  c.sampler_order = 2;
  return c;
}

SasRecConfig TinySasRec() {
  SasRecConfig c;
  c.num_items = 9;
  c.max_len = 5;
  c.hidden = 8;
  c.blocks = 1;
  c.heads = 2;
  return c;
}

// Both networks behind the one interface.
std::vector<std::unique_ptr<ScoringModel>> BothModels() {
  std::vector<std::unique_ptr<ScoringModel>> models;
  models.push_back(WrapNetwork(std::shared_ptr<DgsrNetwork>(std::move(*DgsrNetwork::Create(TinyDgsr(), 4)))));
  models.push_back(WrapNetwork(std::shared_ptr<SasRecNetwork>(std::move(*SasRecNetwork::Create(TinySasRec(), 4)))));
  return models;
}

// The model's scores over the whole catalogue for one user as of a time (and its own first `ties`
// events at that time).
std::vector<float> AllScores(const ScoringModel& model, const store::TemporalGraph& graph, NodeId user,
                             store::Timestamp as_of, int32_t ties = 0) {
  std::unique_ptr<PreparedInputs> in;
  {
    auto view = graph.Read();
    std::vector<ScoringQuery> q{{user, as_of, ties}};
    in = model.Prepare(view, q);
  }
  auto rep = model.Represent(*in);
  EXPECT_TRUE(rep.ok()) << rep.status();
  auto scores = model.ScoreAll(*rep);
  EXPECT_TRUE(scores.ok()) << scores.status();
  torch::Tensor row = scores->to(torch::kCPU).contiguous()[0];
  return std::vector<float>(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
}

TEST(RecommenderTest, TopKMasksSeenAndExcludedItemsAndScoresOnlyCandidates) {
  auto graph = store::TemporalGraph::Build(RandomEdges(8, 12, 9, 80), 12, 9);
  for (const auto& model : BothModels()) {
    SCOPED_TRACE(std::string(NetworkName(model->network())));
    Recommender rec(model.get());
    RecommendRequest all;
    all.user = 2;
    all.as_of = 700;
    all.k = 4;
    RecommendRequest with_seen = all;
    with_seen.exclude_seen = false;
    with_seen.k = 9;
    RecommendRequest cand = all;
    cand.candidates = {1, 3, 5, 7, 100};  // 100: unknown to the model, scores 0
    cand.exclude_seen = false;
    cand.k = 3;
    RecommendRequest deny = with_seen;
    deny.excluded = {0, 1, 2, 3};
    std::vector<RecommendRequest> reqs{all, with_seen, cand, deny};
    RecommendTimings timings;
    auto lists = rec.Recommend(*graph, reqs, &timings);
    ASSERT_TRUE(lists.ok()) << lists.status();
    EXPECT_GT(timings.forward, 0);

    const std::vector<float> scores = AllScores(*model, *graph, 2, 700);
    std::vector<NodeId> seen(64);
    {
      auto view = graph->Read();
      seen.resize(view.RecentItems(2, {store::kMinTime, 700}, 64, seen.data(), nullptr));
    }
    ASSERT_FALSE(seen.empty());
    std::vector<std::pair<float, NodeId>> ranked;
    for (NodeId i = 0; i < 9; ++i) {
      if (std::find(seen.begin(), seen.end(), i) == seen.end()) ranked.push_back({scores[i], i});
    }
    std::sort(ranked.begin(), ranked.end(),
              [](auto& a, auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    ASSERT_EQ((*lists)[0].size(), std::min<size_t>(4, ranked.size()));
    for (size_t k = 0; k < (*lists)[0].size(); ++k) {
      EXPECT_EQ((*lists)[0][k].item, ranked[k].second);
      EXPECT_FLOAT_EQ((*lists)[0][k].score, ranked[k].first);
    }
    EXPECT_EQ((*lists)[1].size(), 9u);  // seen items included
    // Candidates: only they are returned, each with the score the full catalogue gives it.
    ASSERT_EQ((*lists)[2].size(), 3u);
    for (const auto& s : (*lists)[2]) {
      ASSERT_TRUE(std::find(cand.candidates.begin(), cand.candidates.end(), s.item) != cand.candidates.end());
      EXPECT_NEAR(s.score, s.item < 9 ? scores[s.item] : 0.0f, 1e-5);
    }
    EXPECT_GE((*lists)[2][0].score, (*lists)[2][1].score);
    // The deny-list removes exactly its items.
    EXPECT_EQ((*lists)[3].size(), 5u);
    for (const auto& s : (*lists)[3]) EXPECT_GE(s.item, 4u);

    RecommendRequest bad = all;
    bad.k = 0;
    EXPECT_EQ(rec.Recommend(*graph, std::span(&bad, 1)).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(rec.Recommend(*graph, {}).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(RecommenderTest, UnknownUsersAndNewItemsAreHandledAsDocumented) {
  // The graph has grown past the models' id spaces: user 20 and item 15 arrived after training.
  auto edges = RandomEdges(9, 12, 9, 80);
  edges.push_back({20, 3, 5});
  edges.push_back({20, 15, 6});
  edges.push_back({1, 15, 7});
  auto graph = store::TemporalGraph::Build(edges, 21, 16);
  for (const auto& model : BothModels()) {
    SCOPED_TRACE(std::string(NetworkName(model->network())));
    Recommender rec(model.get());
    RecommendRequest r;
    r.user = 20;
    r.k = 20;
    r.exclude_seen = false;
    auto lists = rec.Recommend(*graph, std::span(&r, 1));
    ASSERT_TRUE(lists.ok()) << lists.status();
    EXPECT_EQ((*lists)[0].size(), 9u);  // only items the model knows
    for (const auto& s : (*lists)[0]) EXPECT_LT(s.item, 9u);
    r.candidates = {15, 3};
    lists = rec.Recommend(*graph, std::span(&r, 1));
    ASSERT_TRUE(lists.ok()) << lists.status();
    ASSERT_EQ((*lists)[0].size(), 2u);
    for (const auto& s : (*lists)[0]) {
      if (s.item == 15) {
        EXPECT_EQ(s.score, 0.0f);
      }
    }
    // A new item the user has seen is masked even though the model cannot score it.
    r.exclude_seen = true;
    lists = rec.Recommend(*graph, std::span(&r, 1));
    ASSERT_TRUE(lists.ok());
    EXPECT_TRUE((*lists)[0].empty());
  }
}

// Same-day events: the user's own earlier ones are its history, other users' ones reach no score.
TEST(ScoringModelTest, OtherUsersTiedEventsNeverReachAScoreAndTheUsersOwnDo) {
  // User 0's day 10: items 2 and 3, then the predicted event (ties = 2).
  const std::vector<Interaction> base{{0, 0, 1}, {0, 1, 2}, {1, 1, 1}, {1, 4, 3}, {0, 2, 10}, {0, 3, 10}};
  auto with = [&](std::vector<Interaction> extra) {
    std::vector<Interaction> all = base;
    all.insert(all.end(), extra.begin(), extra.end());
    return store::TemporalGraph::Build(all, 12, 9);
  };
  auto plain = with({});
  // User 2 on the same day, on the user's items and on others (one of them could be the target).
  auto tied_others = with({{2, 5, 10}, {2, 2, 10}, {2, 1, 10}, {2, 3, 10}});
  auto earlier_others = with({{2, 5, 9}, {2, 2, 9}, {2, 1, 9}, {2, 3, 9}});
  // The user's own tied events moved strictly earlier: the same history in the same order.
  auto untied = store::TemporalGraph::Build(
      std::vector<Interaction>{{0, 0, 1}, {0, 1, 2}, {1, 1, 1}, {1, 4, 3}, {0, 2, 8}, {0, 3, 9}}, 12, 9);
  for (const auto& model : BothModels()) {
    SCOPED_TRACE(std::string(NetworkName(model->network())));
    const std::vector<float> scores = AllScores(*model, *plain, 0, 10, 2);
    EXPECT_EQ(AllScores(*model, *tied_others, 0, 10, 2), scores);
    EXPECT_EQ(AllScores(*model, *untied, 0, 10), scores);
    EXPECT_NE(AllScores(*model, *plain, 0, 10, 0), scores);  // Without its own tied history.
    if (model->network() == NetworkKind::kDgsr) {
      // The same edges one day earlier are collaborative signal: the score moves.
      EXPECT_NE(AllScores(*model, *earlier_others, 0, 10, 2), scores);
    }
  }
}

TEST(ScoringModelTest, LoadsEitherArtifactAndNamesItsNetwork) {
  dgsr::testing::TempDir dir;
  auto dgsr = DgsrNetwork::Create(TinyDgsr(), 1);
  auto sasrec = SasRecNetwork::Create(TinySasRec(), 1);
  ASSERT_TRUE(dgsr.ok() && sasrec.ok());
  ASSERT_TRUE((*dgsr)->Save(dir.Sub("d.pt"), JsonObject()).ok());
  ASSERT_TRUE((*sasrec)->Save(dir.Sub("s.pt"), JsonObject()).ok());
  EXPECT_EQ(*ArtifactNetwork(dir.Sub("d.pt")), NetworkKind::kDgsr);
  EXPECT_EQ(*ArtifactNetwork(dir.Sub("s.pt")), NetworkKind::kSasRec);
  auto d = LoadScoringModel(dir.Sub("d.pt"), torch::kCPU);
  auto s = LoadScoringModel(dir.Sub("s.pt"), torch::kCPU);
  ASSERT_TRUE(d.ok() && s.ok()) << d.status() << s.status();
  EXPECT_EQ((*d)->num_items(), 9);
  EXPECT_EQ((*s)->network(), NetworkKind::kSasRec);
  EXPECT_EQ(LoadScoringModel(dir.Sub("missing.pt"), torch::kCPU).status().code(), absl::StatusCode::kNotFound);
  std::ofstream(dir.Sub("garbage.pt")) << "not a model";
  EXPECT_EQ(LoadScoringModel(dir.Sub("garbage.pt"), torch::kCPU).status().code(), absl::StatusCode::kDataLoss);
  // A TorchScript archive of another kind.
  torch::jit::Module other("other");
  other.save(dir.Sub("other.pt"));
  EXPECT_EQ(LoadScoringModel(dir.Sub("other.pt"), torch::kCPU).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dgsr::model
