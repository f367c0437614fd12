// The trainer: split hygiene, metric arithmetic, negatives, a real learning test on the
// synthetic generator, export/reload, and exact resume.
#include "trainer/trainer.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "common/file_util.h"
#include "model/recommender.h"
#include "model/sampler.h"
#include "store/graph_store.h"
#include "tests/testutil/synth_store.h"
#include "tests/testutil/temp_dir.h"
#include "trainer/adam.h"
#include "model/model_dir.h"
#include "trainer/export.h"
#include "trainer/loss.h"
#include "trainer/run_state.h"

#include <torch/torch.h>

namespace dgsr::trainer {
namespace {

using store::Interaction;
using store::NodeId;

using testing::SynthStore;

TEST(SplitTest, ValidationAndTestNeverReachTraining) {
  std::vector<Interaction> edges;
  // user 0: 6 items; user 1: 3 items; user 2: 2 items; user 3: 1 item.
  for (int j = 0; j < 6; ++j) edges.push_back({0, static_cast<NodeId>(j), 10 + j});
  for (int j = 0; j < 3; ++j) edges.push_back({1, static_cast<NodeId>(j + 1), 20 + j});
  edges.push_back({2, 4, 5});
  edges.push_back({2, 5, 30});
  edges.push_back({3, 0, 40});
  auto graph = store::TemporalGraph::Build(edges, 4, 6);
  auto split = BuildSplit(*graph);
  ASSERT_TRUE(split.ok()) << split.status();
  // Test: last item of users with >= 2 items; validation: second-to-last with >= 3.
  ASSERT_EQ(split->test.size(), 3u);
  ASSERT_EQ(split->valid.size(), 2u);
  EXPECT_EQ(split->test[0].target, 5u);
  EXPECT_EQ(split->valid[0].target, 4u);
  // Training predicts i_1 .. i_{k-2}: user 0 -> items 1, 2, 3; user 1 -> none.
  std::vector<NodeId> train_targets;
  for (const Sample& s : split->train) {
    EXPECT_EQ(s.user, 0u);
    train_targets.push_back(s.target);
  }
  EXPECT_EQ(train_targets, (std::vector<NodeId>{1, 2, 3}));
  // No validation or test interaction is visible in the training graph, and no test
  // interaction in the validation graph.
  auto train = split->train_graph->Read();
  auto valid = split->valid_graph->Read();
  for (const Sample& s : split->test) {
    EXPECT_EQ(train.UserDegree(s.user, store::kMaxTime), valid.UserDegree(s.user, store::kMaxTime) - (s.history >= 2 ? 1 : 0));
    std::vector<NodeId> items;
    std::vector<store::Timestamp> times;
    valid.UserSequence(s.user, &items, &times);
    EXPECT_TRUE(std::find(times.begin(), times.end(), s.before) == times.end()) << "test edge visible to validation";
    train.UserSequence(s.user, &items, &times);
    EXPECT_TRUE(std::find(times.begin(), times.end(), s.before) == times.end()) << "test edge visible to training";
  }
  for (const Sample& s : split->valid) {
    std::vector<NodeId> items;
    std::vector<store::Timestamp> times;
    train.UserSequence(s.user, &items, &times);
    EXPECT_TRUE(std::find(times.begin(), times.end(), s.before) == times.end()) << "validation edge visible to training";
  }
  // The single-interaction user gives no sample (documented skip) but stays in the graph.
  for (const auto* part : {&split->train, &split->valid, &split->test}) {
    for (const Sample& s : *part) EXPECT_NE(s.user, 3u);
  }
}

EvalOptions QuietOptions() {
  EvalOptions o;
  o.show_progress = false;
  return o;
}

// Scores the target 0.5, every other item of the sample's user 1.0 (it beats the target if drawn
// as a negative or left unmasked by full ranking), everything else 0.
BatchScorer OwnItemsAboveTheTarget(const Split& split) {
  return [&split](std::span<const Sample> chunk, const store::TemporalGraph::ReadView&, std::vector<float>* scores) {
    const int64_t width = split.num_items;
    scores->assign(chunk.size() * width, 0.0f);
    for (size_t k = 0; k < chunk.size(); ++k) {
      for (NodeId i : split.user_items[chunk[k].user]) (*scores)[k * width + i] = 1.0f;
      (*scores)[k * width + chunk[k].target] = 0.5f;
    }
    return absl::OkStatus();
  };
}

// Same-time events: each sample counts the user's own earlier events of its time (ties), and
// other users' events of that time change nothing in the user's samples.
TEST(SplitTest, TiedEventsKeepTheUsersOrderAndCountAsItsOwnHistory) {
  // User 0: 0@5, then 1, 2, 3 on day 10, then 4, 5 on day 12. User 1 shares days 10 and 12.
  std::vector<Interaction> edges{{0, 0, 5},  {0, 1, 10}, {1, 6, 10}, {0, 2, 10}, {1, 7, 10},
                                 {0, 3, 10}, {0, 4, 12}, {1, 8, 12}, {0, 5, 12}};
  auto graph = store::TemporalGraph::Build(edges, 2, 9);
  auto split = BuildSplit(*graph);
  ASSERT_TRUE(split.ok()) << split.status();
  auto key = [](const Sample& s) {
    return std::vector<int64_t>{s.user, s.before, s.target, s.history, s.ties};
  };
  std::vector<std::vector<int64_t>> train, valid, test;
  for (const Sample& s : split->train) train.push_back(key(s));
  for (const Sample& s : split->valid) valid.push_back(key(s));
  for (const Sample& s : split->test) test.push_back(key(s));
  EXPECT_EQ(train, (std::vector<std::vector<int64_t>>{{0, 10, 1, 1, 0}, {0, 10, 2, 2, 1}, {0, 10, 3, 3, 2}}));
  EXPECT_EQ(valid, (std::vector<std::vector<int64_t>>{{0, 12, 4, 4, 0}, {1, 10, 7, 1, 1}}));
  EXPECT_EQ(test, (std::vector<std::vector<int64_t>>{{0, 12, 5, 5, 1}, {1, 12, 8, 2, 0}}));
  // Each sample's own history in the graph it reads is exactly its `history` earlier items.
  for (const auto& [part, samples] : {std::pair{SplitPart::kValid, &split->valid}, {SplitPart::kTest, &split->test}}) {
    auto view = PartGraph(*split, part).Read();
    for (const Sample& s : *samples) {
      NodeId items[16];
      const int n = view.RecentItems(s.user, {store::kMinTime, s.before, s.ties}, 16, items, nullptr);
      EXPECT_EQ(n, s.history) << "user " << s.user;
      std::vector<NodeId> sequence;
      std::vector<store::Timestamp> times;
      view.UserSequence(s.user, &sequence, &times);
      EXPECT_EQ(std::vector<NodeId>(items, items + n), std::vector<NodeId>(sequence.begin(), sequence.begin() + s.history));
    }
  }
}

// Order-only data (times are positions 1..len): each user's history is cut at its position, and
// every other user's training edges are visible, never a validation or test edge.
TEST(SplitTest, OrderOnlyDataSeesOtherUsersTrainingEdgesAndNoHeldOutOne) {
  // User 0: items 0 1 2 | 3 (valid) | 4 (test). User 1: 2 0 | 5 | 6. User 2: 0 | 3 (test).
  std::vector<Interaction> edges{{0, 0, 1}, {0, 1, 2}, {0, 2, 3}, {0, 3, 4}, {0, 4, 5}, {1, 2, 1},
                                 {1, 0, 2}, {1, 5, 3}, {1, 6, 4}, {2, 0, 1},  {2, 3, 2}};
  auto graph = store::TemporalGraph::Build(edges, 3, 7);
  auto split = BuildSplit(*graph, CrossUserTime::kAuto);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->cross_user_time, CrossUserTime::kOrderOnly);
  for (const auto* part : {&split->train, &split->valid, &split->test}) {
    for (const Sample& s : *part) EXPECT_EQ(s.others_before, kValidationTime) << "user " << s.user;
  }
  ASSERT_EQ(split->test.size(), 3u);
  const Sample& u2_test = split->test[2];
  EXPECT_EQ(u2_test.user, 2);
  EXPECT_EQ(u2_test.before, kTestTime);
  EXPECT_EQ(u2_test.target, 3);
  EXPECT_EQ(split->valid[0].before, kValidationTime);
  EXPECT_EQ(split->train[0].before, 2);  // user 0's item 1, at its position

  // The items user 2's test sub-graph reaches, in both modes.
  auto reached = [](const Split& sp, const Sample& s) {
    model::DgsrConfig c;
    c.num_users = sp.num_users;
    c.num_items = sp.num_items;
    c.sampler_order = 2;
    c.max_neighbors = 10;
    model::SubgraphSampler sampler(c, model::SubgraphSampler::Mode::kFull);
    model::SampleRequest req{s.user, s.before, s.ties, s.others_before};
    model::Blocks b;
    auto view = sp.full_graph->Read();
    sampler.SampleBatch(view, std::span(&req, 1), &b);
    return std::set<NodeId>(b.item_ids.begin(), b.item_ids.end());
  };
  // Order-only: every other user's training edges (items 0, 1, 2 through item 0's users); never
  // user 0's validation item 3 (the very target), user 1's 5, or any test item.
  EXPECT_EQ(reached(*split, u2_test), (std::set<NodeId>{0, 1, 2}));
  // A training sample of user 0 at position 2 (target 2): its own later items stay hidden even
  // though other users' edges to them are visible.
  const Sample& u0_second = split->train[1];
  ASSERT_EQ(u0_second.target, 2);
  EXPECT_EQ(reached(*split, u0_second), (std::set<NodeId>{0, 1, 2}));
  auto u0_view = split->train_graph->Read();
  model::DgsrConfig c;
  c.num_users = split->num_users;
  c.num_items = split->num_items;
  model::SubgraphSampler sampler(c, model::SubgraphSampler::Mode::kFull);
  model::SampleRequest req{u0_second.user, u0_second.before, u0_second.ties, u0_second.others_before};
  model::Blocks b;
  sampler.SampleBatch(u0_view, std::span(&req, 1), &b);
  for (size_t r = 0; r < b.item_len.size(); ++r) {
    for (int64_t k = 0; k < b.item_len[r]; ++k) {
      if (b.user_ids[b.item_nbr[r * b.item_width + k]] == 0) {
        EXPECT_LT(b.item_ids[r], 2) << "user 0's own edge to a later item " << b.item_ids[r];
      }
    }
  }

  // Compared by position instead (timestamps): user 2's test sample sees only what other users
  // did at position 1, so user 1 (item 0 at its position 2) and with it items 1 and 2 are out of
  // reach.
  auto by_position = BuildSplit(*graph, CrossUserTime::kTimestamps);
  ASSERT_TRUE(by_position.ok());
  EXPECT_EQ(by_position->cross_user_time, CrossUserTime::kTimestamps);
  EXPECT_FALSE(by_position->test[2].others_before.has_value());
  EXPECT_EQ(reached(*by_position, by_position->test[2]), (std::set<NodeId>{0}));

  // Real times (not 1..len) stay timestamps under auto; names parse both ways.
  std::vector<Interaction> timed{{0, 0, 100}, {0, 1, 200}, {0, 2, 300}, {1, 0, 150}, {1, 1, 250}};
  auto auto_timed = BuildSplit(*store::TemporalGraph::Build(timed, 2, 3), CrossUserTime::kAuto);
  ASSERT_TRUE(auto_timed.ok());
  EXPECT_EQ(auto_timed->cross_user_time, CrossUserTime::kTimestamps);
  for (auto mode : {CrossUserTime::kAuto, CrossUserTime::kTimestamps, CrossUserTime::kOrderOnly}) {
    EXPECT_EQ(*ParseCrossUserTime(CrossUserTimeName(mode)), mode);
  }
  EXPECT_EQ(ParseCrossUserTime("positions").status().code(), absl::StatusCode::kInvalidArgument);
}

// The evaluation's full ranking hides the user's own earlier items of the same day too.
TEST(EvaluationTest, FullRankingHidesTheUsersOwnTiedHistory) {
  std::vector<Interaction> edges{{0, 0, 5}, {0, 1, 10}, {0, 2, 10}, {1, 3, 10}, {1, 4, 10}, {1, 5, 10}};
  auto split = BuildSplit(*store::TemporalGraph::Build(edges, 2, 6));
  ASSERT_TRUE(split.ok()) << split.status();
  auto r = EvaluateWith(*split, SplitPart::kTest, QuietOptions(), OwnItemsAboveTheTarget(*split));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->full.count(), 2);
  // Both test targets are the user's last event of its day: every other own item is history.
  EXPECT_DOUBLE_EQ(r->full.Ndcg(5), 1.0);
}

TEST(SplitTest, EmptyOrSingletonDatasetsAreRejectedClearly) {
  auto empty = store::TemporalGraph::Build({}, 0, 0);
  EXPECT_EQ(BuildSplit(*empty).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<Interaction> one{{0, 0, 1}, {1, 1, 2}};
  auto singletons = store::TemporalGraph::Build(one, 2, 2);
  auto s = BuildSplit(*singletons);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("at least 2 interactions"), std::string::npos);
}

TEST(MetricsTest, HandComputedRanksWithTiesCountingAgainstTheTarget) {
  std::vector<float> others{0.5f, 0.9f, 0.5f, 0.1f};
  EXPECT_EQ(PessimisticRank(0.5f, others), 3);  // two ties and one higher
  EXPECT_EQ(PessimisticRank(1.0f, others), 0);
  EXPECT_EQ(PessimisticRank(0.0f, others), 4);
  // Non-finite scores count against the target: a diverged model must not score perfectly.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(PessimisticRank(nan, others), 4);
  std::vector<float> with_nan{0.1f, nan};
  EXPECT_EQ(PessimisticRank(0.5f, with_nan), 1);
  RankingMetrics m;
  m.Add(0, 3);
  m.Add(3, 7);
  m.Add(10, 12);
  m.Add(25, 60);
  EXPECT_DOUBLE_EQ(m.Hit(5), 0.5);
  EXPECT_DOUBLE_EQ(m.Hit(10), 0.5);
  EXPECT_DOUBLE_EQ(m.Hit(20), 0.75);
  EXPECT_DOUBLE_EQ(m.Ndcg(10), (1.0 + 1.0 / std::log2(5.0)) / 4);
  EXPECT_DOUBLE_EQ(m.Ndcg(20), (1.0 + 1.0 / std::log2(5.0) + 1.0 / std::log2(12.0)) / 4);
  EXPECT_EQ(m.Group(RankingMetrics::GroupOf(3)).count(), 1);
  EXPECT_DOUBLE_EQ(m.Group(RankingMetrics::GroupOf(60)).Hit(20), 0.0);
}

TEST(MetricsTest, NegativesAreDistinctDeterministicAndNeverTheUsersOwnItems) {
  std::vector<NodeId> own{0, 3, 4, 7, 9};
  for (uint64_t stream = 0; stream < 200; ++stream) {
    auto neg = DrawNegatives(12, own, 5, 7, stream);
    ASSERT_EQ(neg.size(), 5u);
    std::set<NodeId> uniq(neg.begin(), neg.end());
    EXPECT_EQ(uniq.size(), 5u);
    for (NodeId n : neg) EXPECT_FALSE(std::binary_search(own.begin(), own.end(), n));
    EXPECT_EQ(neg, DrawNegatives(12, own, 5, 7, stream));
  }
  EXPECT_EQ(DrawNegatives(12, own, 100, 7, 0).size(), 7u);  // only 7 items are not the user's
}

TEST(MetricsTest, NegativesAreTheSameWithEveryStandardLibrary) {
  // UniformBelow uses only std::mt19937_64's outputs, which the standard fixes (its 10000th output
  // from the default seed is 9981545732273789042), and integer arithmetic: these values hold with
  // any library. (std::uniform_int_distribution, used before, may differ between libraries.)
  std::mt19937_64 check;
  check.discard(9999);
  ASSERT_EQ(check(), 9981545732273789042ull);
  EXPECT_EQ(DrawNegatives(12101, {}, 5, 2024, 0), (std::vector<NodeId>{625, 2958, 5102, 7428, 8944}));
  // Uniform: 70,000 draws below 7 land within 3% of 10,000 each; a power of two and n = 1 too.
  std::mt19937_64 rng(1);
  std::vector<int> counts(7);
  for (int k = 0; k < 70000; ++k) ++counts[UniformBelow(rng, 7)];
  for (int c : counts) EXPECT_NEAR(c, 10000, 300);
  for (int k = 0; k < 100; ++k) {
    EXPECT_LT(UniformBelow(rng, 8), 8u);
    EXPECT_EQ(UniformBelow(rng, 1), 0u);
  }
}

// The split of two users with disjoint items: 0 owns items 0-5, 1 owns items 6-11 (times
// increasing).
absl::StatusOr<Split> DisjointUsersSplit() {
  std::vector<Interaction> edges;
  for (int j = 0; j < 6; ++j) {
    edges.push_back({0, static_cast<NodeId>(j), 10 + j});
    edges.push_back({1, static_cast<NodeId>(6 + j), 10 + j});
  }
  return BuildSplit(*store::TemporalGraph::Build(edges, 2, 12));
}

// The harness, not only DrawNegatives: each sample's negatives avoid *its own* user's items (the
// authors' code drew them for another user), and full ranking hides only the items before t.
TEST(EvaluationTest, NegativesAvoidTheSamplesOwnUserAndFullRankingHidesOnlyItsPast) {
  auto split = DisjointUsersSplit();
  ASSERT_TRUE(split.ok()) << split.status();
  const BatchScorer scorer = OwnItemsAboveTheTarget(*split);
  for (SplitPart part : {SplitPart::kValid, SplitPart::kTest}) {
    auto r = EvaluateWith(*split, part, QuietOptions(), scorer);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->sampled.count(), 2);
    // Only the 6 other user's items are available as negatives; all score 0: rank 0.
    EXPECT_DOUBLE_EQ(r->sampled.Ndcg(5), 1.0);
    // Full ranking: test targets are the last item (every other own item is history): rank 0.
    // Validation targets have the test item after them, unmasked and scoring 1.0: rank 1.
    EXPECT_DOUBLE_EQ(r->full.Ndcg(5), part == SplitPart::kTest ? 1.0 : 1.0 / std::log2(3.0));
  }
}

TEST(EvaluationTest, AModelOlderThanTheSnapshotScoresItsNewItemsZero) {
  auto split = DisjointUsersSplit();
  ASSERT_TRUE(split.ok()) << split.status();
  // A model that knows items 0-9 only: target -0.5, other known items -1; items 10 and 11 get the
  // harness's 0 and beat user 0's target. User 1's targets (10, 11) are unknown: 0, above all.
  auto scorer = [&](std::span<const Sample> chunk, const store::TemporalGraph::ReadView&,
                    std::vector<float>* scores) {
    scores->assign(chunk.size() * 10, -1.0f);
    for (size_t k = 0; k < chunk.size(); ++k) {
      if (chunk[k].target < 10) (*scores)[k * 10 + chunk[k].target] = -0.5f;
    }
    return absl::OkStatus();
  };
  auto r = EvaluateWith(*split, SplitPart::kTest, QuietOptions(), scorer);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_DOUBLE_EQ(r->sampled.Ndcg(5), (1.0 / std::log2(4.0) + 1.0) / 2);  // ranks 2 and 0
  // Full ranking counts the unknown items the same way: 10 and 11 beat user 0's target (rank 2);
  // user 1's target 11 ties nothing but its own history (item 10, masked): rank 0.
  EXPECT_DOUBLE_EQ(r->full.Ndcg(5), (1.0 / std::log2(4.0) + 1.0) / 2);
  // A row width that does not divide, or more columns than items, is an error, not a misread.
  for (auto [per_row, extra] : {std::pair<size_t, size_t>{12, 1}, {13, 0}}) {
    BatchScorer bad = [=](std::span<const Sample> chunk, const store::TemporalGraph::ReadView&,
                          std::vector<float>* scores) {
      scores->assign(chunk.size() * per_row + extra, 0.0f);
      return absl::OkStatus();
    };
    EXPECT_EQ(EvaluateWith(*split, SplitPart::kTest, QuietOptions(), bad).status().code(),
              absl::StatusCode::kInternal) << per_row << " columns + " << extra;
  }
}

TEST(FusedAdamTest, MatchesLibtorchAdamWithWeightDecay) {
  torch::manual_seed(3);
  torch::Tensor a = torch::randn({300, 7}).set_requires_grad(true), b = a.detach().clone().set_requires_grad(true);
  torch::optim::Adam reference({b}, torch::optim::AdamOptions(0.01).weight_decay(1e-3));
  AdamOptions options;
  options.lr = 0.01;
  options.weight_decay = 1e-3;
  FusedAdam fused({a}, options);
  for (int step = 0; step < 6; ++step) {
    if (step == 3) {  // a decayed learning rate (trainer lr_decay) takes effect like libtorch's
      fused.set_lr(0.003);
      static_cast<torch::optim::AdamOptions&>(reference.param_groups()[0].options()).lr(0.003);
    }
    torch::Tensor target = torch::randn({300, 7});
    ((a - target).pow(2).sum()).backward();
    fused.Step();
    reference.zero_grad();
    ((b - target).pow(2).sum()).backward();
    reference.step();
    EXPECT_FALSE(a.grad().defined());  // gradients are cleared, not zeroed
  }
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-5);
}

TEST(FusedAdamTest, SparseRowGradientsUpdateLikeTheirDenseEquivalent) {
  // The fused network's embedding rows come with sparse gradients (rows repeated, some untouched);
  // weight decay still moves every row, exactly as libtorch's Adam on the dense gradient.
  torch::manual_seed(5);
  torch::Tensor a = torch::randn({40, 6}).set_requires_grad(true), b = a.detach().clone().set_requires_grad(true);
  torch::optim::Adam reference({b}, torch::optim::AdamOptions(0.01).weight_decay(1e-2));
  AdamOptions options;
  options.lr = 0.01;
  options.weight_decay = 1e-2;
  FusedAdam fused({a}, options);
  for (int step = 0; step < 5; ++step) {
    torch::Tensor ids = torch::randint(0, 20, {30}, torch::kInt64);  // rows 20..39 never read
    torch::Tensor target = torch::randn({30, 6});
    (torch::embedding(a, ids, -1, false, /*sparse=*/true) - target).pow(2).sum().backward();
    ASSERT_TRUE(a.grad().is_sparse());
    fused.Step();
    reference.zero_grad();
    (b.index_select(0, ids) - target).pow(2).sum().backward();
    reference.step();
  }
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-5);
}

TEST(SoftmaxCrossEntropyTest, MatchesLibtorchInValueAndGradient) {
  torch::manual_seed(9);
  torch::Tensor logits = (5 * torch::randn({7, 300}, torch::kDouble)).set_requires_grad(true);
  torch::Tensor reference = logits.detach().clone().set_requires_grad(true);
  torch::Tensor targets = torch::randint(0, 300, {7}, torch::kInt64);
  torch::Tensor loss = SoftmaxCrossEntropy(logits, targets);
  torch::Tensor expected = torch::nn::functional::cross_entropy(reference, targets);
  EXPECT_NEAR(loss.item<double>(), expected.item<double>(), 1e-12);
  (3 * loss).backward();  // a non-unit upstream gradient
  (3 * expected).backward();
  EXPECT_LT((logits.grad() - reference.grad()).abs().max().item<double>(), 1e-12);
  EXPECT_THROW(SoftmaxCrossEntropy(logits, torch::tensor({0, 1, 2, 3, 4, 5, 300}, torch::kInt64)), c10::Error);
  EXPECT_THROW(SoftmaxCrossEntropy(logits, torch::tensor({0, 1}, torch::kInt64)), c10::Error);
}

model::DgsrConfig SmallConfig(const Split& split) {
  model::DgsrConfig c = model::DgsrConfig::Paper();
  c.num_users = split.num_users;
  c.num_items = split.num_items;
  c.dim = 16;
  c.layers = 1;
  c.max_neighbors = 10;
  c.sampler_order = 1;
  c.learning_rate = 0.01;
  c.batch_size = 64;
  return c;
}

TEST(TrainerTest, LearnsTheSyntheticTransitionsFarBetterThanPopularity) {
  testing::TempDir dir;
  auto store = SynthStore(dir, 300, 150, 30);
  auto split = BuildSplit(store->graph());
  ASSERT_TRUE(split.ok());
  TrainOptions opt;
  opt.epochs = 3;
  opt.torch_threads = 2;
  opt.eval.full_ranking = true;
  auto result = Train(SmallConfig(*split), *split, opt);
  ASSERT_TRUE(result.ok()) << result.status();
  EvalResult pop = EvaluatePopularity(*split, SplitPart::kTest, opt.eval);
  const double dgsr = result->test.sampled.Ndcg(10), popularity = pop.sampled.Ndcg(10);
  EXPECT_GT(dgsr, popularity + 0.10) << "DGSR NDCG@10 " << dgsr << " vs popularity " << popularity;
  EXPECT_EQ(result->test.sampled.count(), static_cast<int64_t>(split->test.size()));
}

// Data-parallel steps (train_threads): the same update as the whole batch up to float rounding,
// with slices cut by work or by count, and repeatable bit for bit at a given thread count,
// dropout included.
TEST(TrainerTest, DataParallelStepsMatchTheWholeBatchAndRepeatExactly) {
  testing::TempDir dir;
  auto store = SynthStore(dir, 80, 50, 15);
  auto split = BuildSplit(store->graph());
  ASSERT_TRUE(split.ok());
  model::DgsrConfig config = SmallConfig(*split);
  config.learning_rate = 0.001;
  TrainOptions opt;
  opt.epochs = 1;
  opt.torch_threads = 1;
  opt.max_train_samples = 5 * config.batch_size;
  opt.eval.full_ranking = false;
  auto train = [&](const model::DgsrConfig& c, int threads) {
    opt.train_threads = threads;
    auto result = Train(c, *split, opt);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? std::move(result->network) : nullptr;
  };
  auto whole = train(config, 1), sliced = train(config, 2), three = train(config, 3);
  opt.balance_slices = false;  // contiguous slices of equal count: the same update
  auto contiguous = train(config, 2);
  opt.balance_slices = true;
  ASSERT_TRUE(whole && sliced && three && contiguous);
  auto pw = whole->Parameters(), ps = sliced->Parameters(), p3 = three->Parameters();
  auto pc2 = contiguous->Parameters();
  auto initial = model::DgsrNetwork::Create(config, opt.seed);
  ASSERT_TRUE(initial.ok());
  auto p0 = (*initial)->Parameters();
  double moved = 0;
  for (size_t k = 0; k < pw.size(); ++k) {
    EXPECT_LT((pw[k] - ps[k]).abs().max().item<double>(), 1e-5) << "parameter " << k;
    EXPECT_LT((pw[k] - p3[k]).abs().max().item<double>(), 1e-5) << "parameter " << k;
    EXPECT_LT((pw[k] - pc2[k]).abs().max().item<double>(), 1e-5) << "parameter " << k;
    moved = std::max(moved, (pw[k] - p0[k]).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-3) << "training did not move the parameters: the comparison above is empty";
  // With dropout, two runs at 2 threads agree, and differ from 1 thread (other masks).
  config.feat_dropout = config.attn_dropout = 0.2;
  auto a = train(config, 2), b = train(config, 2), c = train(config, 1);
  ASSERT_TRUE(a && b && c);
  auto pa = a->Parameters(), pb = b->Parameters(), pc = c->Parameters();
  bool differs = false;
  for (size_t k = 0; k < pa.size(); ++k) {
    // Bit-identical: every thread that runs the network applies the same graph executor
    // setting (model/torch_runtime.h); libtorch keeps it per thread.
    EXPECT_TRUE(torch::equal(pa[k], pb[k])) << "parameter " << k;
    differs = differs || !torch::equal(pa[k], pc[k]);
  }
  EXPECT_TRUE(differs);
}

TEST(TrainerTest, ExportedVersionReloadsWithIdenticalScores) {
  testing::TempDir dir;
  auto store = SynthStore(dir, 60, 40, 12);
  auto split = BuildSplit(store->graph());
  ASSERT_TRUE(split.ok());
  TrainOptions opt;
  opt.epochs = 1;
  opt.eval.full_ranking = false;
  auto result = Train(SmallConfig(*split), *split, opt);
  ASSERT_TRUE(result.ok()) << result.status();
  JsonObject meta;
  meta.Set("test_ndcg@10", result->test.sampled.Ndcg(10));
  auto v1 = ExportModel(dir.Sub("models"), *result->network, meta);
  ASSERT_TRUE(v1.ok()) << v1.status();
  auto v2 = ExportModel(dir.Sub("models"), *result->network, meta);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(*v1, dir.Sub("models") + "/1");
  EXPECT_EQ(*model::LatestVersionDir(dir.Sub("models")), dir.Sub("models") + "/2");
  auto loaded = model::DgsrNetwork::Load(*v1 + "/model.pt", torch::kCPU);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->metadata().GetNumber("version"), 1);
  auto a = Evaluate(*result->network, *split, SplitPart::kTest, opt.eval);
  auto b = Evaluate(**loaded, *split, SplitPart::kTest, opt.eval);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->sampled.Ndcg(10), b->sampled.Ndcg(10));
  EXPECT_EQ(a->sampled.Hit(20), b->sampled.Hit(20));
  // And raw scores, through the serving path: the same top-20 with bit-identical scores.
  std::vector<model::RecommendRequest> requests;
  for (NodeId u = 0; u < 20; ++u) {
    model::RecommendRequest r;
    r.user = u;
    r.k = 20;
    requests.push_back(r);
  }
  auto unowned = [](model::DgsrNetwork* net) {
    return model::WrapNetwork(std::shared_ptr<model::DgsrNetwork>(net, [](model::DgsrNetwork*) {}));
  };
  auto trained = unowned(result->network.get());
  auto reloaded = unowned(loaded->get());
  auto ra = model::Recommender(trained.get()).Recommend(*split->full_graph, requests);
  auto rb = model::Recommender(reloaded.get()).Recommend(*split->full_graph, requests);
  ASSERT_TRUE(ra.ok() && rb.ok());
  for (size_t r = 0; r < requests.size(); ++r) {
    ASSERT_EQ((*ra)[r].size(), (*rb)[r].size());
    for (size_t k = 0; k < (*ra)[r].size(); ++k) {
      EXPECT_EQ((*ra)[r][k].item, (*rb)[r][k].item);
      EXPECT_EQ((*ra)[r][k].score, (*rb)[r][k].score) << "user " << r << " rank " << k;
    }
  }
}

TEST(ExportTest, ConcurrentExportersNeverShareOrOverwriteAVersion) {
  // Two exporters (threads here; the flock serializes processes the same way) publish 6 versions
  // each into one directory at once: 12 distinct complete versions, each holding its own writer's
  // file and the metadata version that matches its directory name.
  dgsr::testing::TempDir dir;
  const std::string models = dir.Sub("models");
  std::vector<std::thread> exporters;
  std::atomic<int> failures{0};
  for (int t = 0; t < 2; ++t) {
    exporters.emplace_back([&, t] {
      for (int n = 0; n < 6; ++n) {
        JsonObject meta;
        meta.Set("writer", t).Set("n", n);
        auto published = ExportArtifact(models, meta, [&](const std::string& path, const JsonObject& m) {
          return WriteFileAtomic(path, absl::StrCat("writer ", t, " export ", n, " version ", *m.GetNumber("version")));
        });
        if (!published.ok()) ++failures;
      }
    });
  }
  for (auto& e : exporters) e.join();
  EXPECT_EQ(failures, 0);
  std::vector<int64_t> versions = model::ListVersions(models);
  ASSERT_EQ(versions.size(), 12u);
  for (int64_t v = 1; v <= 12; ++v) {
    EXPECT_EQ(versions[v - 1], v);
    auto contents = ReadFile(absl::StrCat(models, "/", v, "/model.pt"));
    ASSERT_TRUE(contents.ok());
    EXPECT_TRUE(absl::EndsWith(*contents, absl::StrCat(" version ", v))) << *contents;
    auto meta = ReadFile(absl::StrCat(models, "/", v, "/metadata.json"));
    ASSERT_TRUE(meta.ok());
    EXPECT_EQ(JsonObject::Parse(*meta)->GetNumber("version"), v);
  }
}

// The two saved networks hold bit-identical parameters.
void ExpectBitIdenticalModels(const std::string& path_a, const std::string& path_b) {
  auto a = model::DgsrNetwork::Load(path_a, torch::kCPU);
  auto b = model::DgsrNetwork::Load(path_b, torch::kCPU);
  ASSERT_TRUE(a.ok() && b.ok());
  auto pa = (*a)->Parameters(), pb = (*b)->Parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t k = 0; k < pa.size(); ++k) {
    EXPECT_TRUE(torch::equal(pa[k], pb[k])) << "parameter " << k << " max diff " << (pa[k] - pb[k]).abs().max().item<double>();
  }
}

TEST(TrainerTest, ResumingFromACheckpointContinuesIdentically) {
  testing::TempDir dir;
  auto store = SynthStore(dir, 80, 50, 15);
  auto split = BuildSplit(store->graph());
  ASSERT_TRUE(split.ok());
  model::DgsrConfig config = SmallConfig(*split);
  config.feat_dropout = 0.2;  // dropout must resume identically too
  config.layer_map = true;
  TrainOptions opt;
  opt.torch_threads = 1;
  opt.eval.full_ranking = false;
  opt.patience = 100;
  opt.lr_decay = 0.5;  // a rate decayed before the resume must survive it (state.json lr_scale)
  config.learning_rate = 0.1;  // high enough that validation stalls (checked below)
  opt.epochs = 5;
  opt.checkpoint_dir = dir.Sub("straight");
  ASSERT_TRUE(Train(config, *split, opt).ok());
  opt.checkpoint_dir = dir.Sub("resumed");
  opt.epochs = 3;
  ASSERT_TRUE(Train(config, *split, opt).ok());
  auto state = LoadRunState(opt.checkpoint_dir);
  ASSERT_TRUE(state.ok());
  EXPECT_LT(state->lr_scale, 1.0) << "no epoch before the resume stalled; the decay was not exercised";
  opt.epochs = 5;
  ASSERT_TRUE(Train(config, *split, opt).ok());
  ExpectBitIdenticalModels(dir.Sub("straight/last.pt"), dir.Sub("resumed/last.pt"));
  // Resuming with another model config is refused, not silently continued with the old one.
  config.feat_dropout = 0.3;
  opt.epochs = 6;
  absl::Status refused = Train(config, *split, opt).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  EXPECT_NE(refused.message().find("feat_dropout"), std::string::npos) << refused;
}

// Events of `users` new users on `items` new items, after everything in the store.
void AddNewUsersAndItems(store::GraphStore& store, int users, int items) {
  std::vector<store::Event> events;
  store::Timestamp t = store.info().max_time + 1;
  for (int u = 0; u < users; ++u) {
    for (int k = 0; k < 6; ++k) {
      events.push_back({absl::StrCat("new_user_", u), absl::StrCat("new_item_", (u + k) % items), t++, ""});
    }
  }
  ASSERT_TRUE(store.Ingest(events).ok());
}

TEST(TrainerTest, AWarmStartBeginsWhereTheOlderModelStoodOnTheGrownSnapshot) {
  testing::TempDir dir;
  auto store = SynthStore(dir, 150, 80, 20);
  auto old_split = BuildSplit(store->graph());
  ASSERT_TRUE(old_split.ok());
  TrainOptions opt;
  opt.epochs = 3;
  opt.torch_threads = 1;
  opt.eval.full_ranking = false;
  auto old_run = Train(SmallConfig(*old_split), *old_split, opt);
  ASSERT_TRUE(old_run.ok()) << old_run.status();

  AddNewUsersAndItems(*store, 12, 5);
  auto split = BuildSplit(store->graph());
  ASSERT_TRUE(split.ok());
  ASSERT_EQ(split->num_users, old_split->num_users + 12);
  ASSERT_EQ(split->num_items, old_split->num_items + 5);
  auto old_now = Evaluate(*old_run->network, *split, SplitPart::kValid, opt.eval);
  ASSERT_TRUE(old_now.ok()) << old_now.status();

  // One tiny step: a warm start scores like the older model, a fresh start like chance.
  model::DgsrConfig config = SmallConfig(*split);
  config.learning_rate = 1e-9;  // the learning rate may differ from the older model's
  opt.epochs = 1;
  opt.max_train_samples = 64;
  opt.warm_start = old_run->network.get();
  auto warm = Train(config, *split, opt);
  ASSERT_TRUE(warm.ok()) << warm.status();
  opt.warm_start = nullptr;
  auto fresh = Train(config, *split, opt);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  const double w = warm->valid.sampled.Ndcg(10), o = old_now->sampled.Ndcg(10), f = fresh->valid.sampled.Ndcg(10);
  EXPECT_NEAR(w, o, 0.03) << "warm " << w << " older model " << o;
  EXPECT_GT(w, f + 0.1) << "warm " << w << " fresh " << f;

  // The older model's architecture is kept: other model settings are refused, naming the field.
  opt.warm_start = old_run->network.get();
  model::DgsrConfig other = config;
  other.feat_dropout = 0.3;
  absl::Status refused = Train(other, *split, opt).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  EXPECT_NE(refused.message().find("feat_dropout"), std::string::npos) << refused;
}

TEST(TrainerTest, DivergedTrainingStopsWithAClearError) {
  testing::TempDir dir;
  auto store = SynthStore(dir, 60, 40, 12);
  auto split = BuildSplit(store->graph());
  ASSERT_TRUE(split.ok());
  model::DgsrConfig config = SmallConfig(*split);
  config.learning_rate = 1e30;  // Adam moves every weight by ~1e30 per step: scores overflow
  TrainOptions opt;
  opt.epochs = 2;
  opt.eval.full_ranking = false;
  opt.eval.show_progress = false;
  auto result = Train(config, *split, opt);
  ASSERT_FALSE(result.ok()) << "training at lr 1e30 did not diverge; validation NDCG@10 "
                            << result->valid.sampled.Ndcg(10);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(result.status().message().find("training diverged"), std::string::npos) << result.status();
}

TEST(TrainerTest, LearningRateDecaysAfterEachEpochWithoutImprovement) {
  testing::TempDir dir;
  auto store = SynthStore(dir, 80, 50, 15);
  auto split = BuildSplit(store->graph());
  ASSERT_TRUE(split.ok());
  model::DgsrConfig config = SmallConfig(*split);
  config.learning_rate = 0.05;  // high enough that validation stalls within a few epochs
  TrainOptions opt;
  opt.torch_threads = 1;
  opt.eval.full_ranking = false;
  opt.patience = 100;
  opt.lr_decay = 0.5;
  opt.epochs = 6;
  opt.log_path = dir.Sub("metrics.jsonl");
  ASSERT_TRUE(Train(config, *split, opt).ok());
  std::ifstream log(opt.log_path);
  std::string text;
  double expected_lr = config.learning_rate;
  int epochs = 0, stalled = 0;
  while (std::getline(log, text)) {
    auto line = JsonObject::Parse(text);
    ASSERT_TRUE(line.ok()) << text;
    EXPECT_NEAR(*line->GetNumber("lr"), expected_lr, 1e-12) << "epoch " << epochs + 1;
    if (!*line->GetBool("improved")) {
      expected_lr *= opt.lr_decay;
      ++stalled;
    }
    ++epochs;
  }
  EXPECT_EQ(epochs, 6);
  EXPECT_GT(stalled, 0) << "no epoch stalled, so the decay was not exercised; raise the learning rate";
  opt.lr_decay = 0;
  EXPECT_EQ(Train(config, *split, opt).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TrainerTest, WarmupRaisesTheRateLinearlyThenHoldsIt) {
  EXPECT_DOUBLE_EQ(WarmupFactor(0, 4), 0.25);
  EXPECT_DOUBLE_EQ(WarmupFactor(1, 4), 0.5);
  EXPECT_DOUBLE_EQ(WarmupFactor(3, 4), 1.0);
  EXPECT_DOUBLE_EQ(WarmupFactor(1000, 4), 1.0);
  EXPECT_DOUBLE_EQ(WarmupFactor(0, 0), 1.0);
}

// The modern preset's options (residual + LayerNorm, feed-forward sub-layer, output table,
// warm-up) train the synthetic transitions far better than popularity; the warm-up is wired to the
// optimiser (a very long one barely moves the weights) and a run resumed in the middle of its
// warm-up continues bit for bit.
TEST(TrainerTest, ModernOptionsLearnWarmUpAndResumeIdentically) {
  testing::TempDir dir;
  auto store = SynthStore(dir, 300, 150, 30);
  auto split = BuildSplit(store->graph());
  ASSERT_TRUE(split.ok());
  model::DgsrConfig config = SmallConfig(*split);
  config.residual_norm = config.ffn = config.output_embedding = true;
  config.feat_dropout = 0.1;
  const int64_t steps_per_epoch = (static_cast<int64_t>(split->train.size()) + config.batch_size - 1) / config.batch_size;
  config.warmup_steps = static_cast<int>(steps_per_epoch + steps_per_epoch / 2);  // ends inside epoch 2
  TrainOptions opt;
  opt.torch_threads = 1;
  opt.eval.full_ranking = false;
  opt.patience = 100;
  opt.epochs = 3;
  opt.checkpoint_dir = dir.Sub("straight");
  opt.log_path = dir.Sub("straight.jsonl");
  auto straight = Train(config, *split, opt);
  ASSERT_TRUE(straight.ok()) << straight.status();
  opt.log_path.clear();
  // The warm-up counts steps over the run, not per epoch: epoch 1 ends at 2/3 of the rate.
  std::ifstream log(dir.Sub("straight.jsonl"));
  std::vector<double> rates;
  for (std::string line; std::getline(log, line);) rates.push_back(*JsonObject::Parse(line)->GetNumber("lr"));
  ASSERT_EQ(rates.size(), 3u);
  EXPECT_NEAR(rates[0], config.learning_rate * steps_per_epoch / config.warmup_steps, 1e-12);
  EXPECT_NEAR(rates[1], config.learning_rate, 1e-12);
  EXPECT_NEAR(rates[2], config.learning_rate, 1e-12);
  EvalResult pop = EvaluatePopularity(*split, SplitPart::kTest, opt.eval);
  EXPECT_GT(straight->test.sampled.Ndcg(10), pop.sampled.Ndcg(10) + 0.10);
  opt.checkpoint_dir = dir.Sub("resumed");
  opt.epochs = 1;
  ASSERT_TRUE(Train(config, *split, opt).ok());
  opt.epochs = 3;
  ASSERT_TRUE(Train(config, *split, opt).ok());
  ExpectBitIdenticalModels(dir.Sub("straight/last.pt"), dir.Sub("resumed/last.pt"));
  // Five steps at 1/10^6 of the rate move the weights far less than five at the full rate.
  auto moved = [&](int warmup) {
    model::DgsrConfig c = config;
    c.warmup_steps = warmup;
    TrainOptions o;
    o.torch_threads = 1;
    o.epochs = 1;
    o.max_train_samples = 5 * c.batch_size;
    o.eval.full_ranking = false;
    auto r = Train(c, *split, o);
    EXPECT_TRUE(r.ok()) << r.status();
    auto initial = model::DgsrNetwork::Create(c, o.seed);
    double most = 0;
    auto p = r->network->Parameters(), p0 = (*initial)->Parameters();
    for (size_t k = 0; k < p.size(); ++k) most = std::max(most, (p[k] - p0[k]).abs().max().item<double>());
    return most;
  };
  const double full = moved(0), warming = moved(1000000);
  EXPECT_GT(full, 1e-3);
  EXPECT_LT(warming, full / 100) << full;
}

}  // namespace
}  // namespace dgsr::trainer
