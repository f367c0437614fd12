// The SASRec+ trainer: a real learning test on the synthetic generator against popularity,
// export/reload with identical metrics, exact resume, the scorer reading the history it is
// given, and clear errors for unusable inputs.
#include "trainer/sasrec_trainer.h"

#include <filesystem>
#include <set>

#include "gtest/gtest.h"
#include "store/graph_store.h"
#include "tests/testutil/synth_store.h"
#include "tests/testutil/temp_dir.h"
#include "model/model_dir.h"
#include "trainer/export.h"

namespace dgsr::trainer {
namespace {

using testing::SynthStore;

model::SasRecConfig SmallConfig(const Split& split) {
  model::SasRecConfig c;
  c.num_items = split.num_items;
  c.max_len = 20;
  c.hidden = 32;
  c.blocks = 2;
  c.heads = 1;
  c.dropout = 0.1;
  c.learning_rate = 0.005;
  c.batch_size = 32;
  return c;
}

TEST(SasRecTrainerTest, TrainsOnExactlyDgsrsTrainingSamples) {
  // Users with 3 .. 30 training items; windows of at most 5 + 1 items.
  testing::TempDir dir;
  auto store = SynthStore(dir, 60, 40, 32);
  auto split = BuildSplit(store->graph());
  ASSERT_TRUE(split.ok());
  std::multiset<std::pair<int64_t, int64_t>> want;  // (previous item, target) per training sample
  auto view = split->train_graph->Read();
  std::vector<store::NodeId> items;
  std::vector<store::Timestamp> times;
  for (int64_t u = 0; u < split->num_users; ++u) {
    view.UserSequence(static_cast<store::NodeId>(u), &items, &times);
    for (size_t j = 1; j < items.size(); ++j) want.insert({items[j - 1], items[j]});
  }
  ASSERT_EQ(want.size(), split->train.size());
  std::multiset<std::pair<int64_t, int64_t>> got;
  size_t longest = 0;
  for (const auto& w : SasRecTrainingSequences(*split, 5)) {
    ASSERT_GE(w.size(), 2u);
    ASSERT_LE(w.size(), 6u);
    longest = std::max(longest, w.size());
    for (size_t j = 1; j < w.size(); ++j) got.insert({w[j - 1], w[j]});
  }
  EXPECT_EQ(got, want) << "every training target once, after its own previous item";
  EXPECT_EQ(longest, 6u);
}

TEST(SasRecTrainerTest, LearnsTheSyntheticTransitionsFarBetterThanPopularity) {
  testing::TempDir dir;
  auto store = SynthStore(dir, 300, 150, 30);
  auto split = BuildSplit(store->graph());
  ASSERT_TRUE(split.ok());
  SasRecTrainOptions opt;
  opt.epochs = 12;
  opt.torch_threads = 1;  // Two OpenMP threads on a shared 2-core machine can crawl.
  opt.eval.show_progress = false;
  auto result = TrainSasRec(SmallConfig(*split), *split, opt);
  ASSERT_TRUE(result.ok()) << result.status();
  EvalResult pop = EvaluatePopularity(*split, SplitPart::kTest, opt.eval);
  const double sasrec = result->test.sampled.Ndcg(10), popularity = pop.sampled.Ndcg(10);
  EXPECT_GT(sasrec, popularity + 0.10) << "SASRec+ NDCG@10 " << sasrec << " vs popularity " << popularity;
  EXPECT_GT(result->test.full.Ndcg(10), pop.full.Ndcg(10) + 0.05)
      << "full ranking: SASRec+ " << result->test.full.Ndcg(10) << " vs popularity " << pop.full.Ndcg(10);
  EXPECT_EQ(result->test.sampled.count(), static_cast<int64_t>(split->test.size()));
  EXPECT_EQ(result->valid.sampled.count(), static_cast<int64_t>(split->valid.size()));
  EXPECT_GE(result->best_epoch, 1);
  EXPECT_GT(result->samples_per_second, 0);
}

TEST(SasRecTrainerTest, AWarmStartBeginsWhereTheOlderModelStoodOnTheGrownSnapshot) {
  testing::TempDir dir;
  auto store = SynthStore(dir, 150, 80, 20);
  auto old_split = BuildSplit(store->graph());
  ASSERT_TRUE(old_split.ok());
  SasRecTrainOptions opt;
  opt.epochs = 6;
  opt.torch_threads = 1;
  opt.eval.full_ranking = false;
  opt.eval.show_progress = false;
  auto old_run = TrainSasRec(SmallConfig(*old_split), *old_split, opt);
  ASSERT_TRUE(old_run.ok()) << old_run.status();

  // New users on new items, after everything in the store.
  std::vector<store::Event> events;
  store::Timestamp t = store->info().max_time + 1;
  for (int u = 0; u < 12; ++u) {
    for (int k = 0; k < 6; ++k) events.push_back({"new_user_" + std::to_string(u), "new_item_" + std::to_string((u + k) % 5), t++, ""});
  }
  ASSERT_TRUE(store->Ingest(events).ok());
  auto split = BuildSplit(store->graph());
  ASSERT_TRUE(split.ok());
  ASSERT_EQ(split->num_items, old_split->num_items + 5);
  auto old_now = EvaluateSasRec(*old_run->network, *split, SplitPart::kValid, opt.eval);
  ASSERT_TRUE(old_now.ok()) << old_now.status();

  model::SasRecConfig config = SmallConfig(*split);
  config.learning_rate = 1e-9;
  opt.epochs = 1;
  opt.max_train_users = 32;
  opt.warm_start = old_run->network.get();
  auto warm = TrainSasRec(config, *split, opt);
  ASSERT_TRUE(warm.ok()) << warm.status();
  opt.warm_start = nullptr;
  auto fresh = TrainSasRec(config, *split, opt);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  const double w = warm->valid.sampled.Ndcg(10), o = old_now->sampled.Ndcg(10), f = fresh->valid.sampled.Ndcg(10);
  EXPECT_NEAR(w, o, 0.03) << "warm " << w << " older model " << o;
  EXPECT_GT(w, f + 0.1) << "warm " << w << " fresh " << f;

  opt.warm_start = old_run->network.get();
  model::SasRecConfig other = config;
  other.hidden = 16;
  absl::Status refused = TrainSasRec(other, *split, opt).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  EXPECT_NE(refused.message().find("hidden"), std::string::npos) << refused;
}

TEST(SasRecTrainerTest, ScorerReadsTheUsersRecentHistoryFromTheGivenGraph) {
  testing::TempDir dir;
  auto store = SynthStore(dir, 40, 30, 10);
  auto split = BuildSplit(store->graph());
  ASSERT_TRUE(split.ok());
  model::SasRecConfig config = SmallConfig(*split);
  config.max_len = 4;
  auto net = model::SasRecNetwork::Create(config, 5);
  ASSERT_TRUE(net.ok());
  // Scores of the harness for the first test sample must be those of the model on the user's
  // 4 most recent items before the test time, read by hand from the full graph.
  const Sample& s = split->test[0];
  std::vector<store::NodeId> items;
  std::vector<store::Timestamp> times;
  split->full_graph->Read().UserSequence(s.user, &items, &times);
  std::vector<int64_t> history;
  std::set<int64_t> seen;
  for (size_t k = 0; k < items.size(); ++k) {
    if (times[k] < s.before) history.push_back(items[k]);
  }
  seen.insert(history.begin(), history.end());
  ASSERT_GE(history.size(), 4u);
  history.erase(history.begin(), history.end() - 4);
  torch::NoGradGuard no_grad;
  torch::Tensor expected = (*net)->ScoreAll(*(*net)->Represent(model::PackSequences({history}, config)));
  EvalOptions eval;
  eval.max_samples = 1;
  eval.show_progress = false;
  eval.full_ranking = true;
  auto r = EvaluateSasRec(**net, *split, SplitPart::kTest, eval);
  ASSERT_TRUE(r.ok()) << r.status();
  // Rank of the target among all non-history items, computed from the expected scores.
  const float target = expected[0][s.target].item<float>();
  int64_t rank = 0;
  for (int64_t i = 0; i < split->num_items; ++i) {
    if (!seen.count(i) && i != s.target && expected[0][i].item<float>() >= target) ++rank;
  }
  RankingMetrics by_hand;
  by_hand.Add(rank, s.history);
  EXPECT_DOUBLE_EQ(r->full.Ndcg(20), by_hand.Ndcg(20)) << "rank by hand " << rank;
  EXPECT_DOUBLE_EQ(r->full.Hit(20), by_hand.Hit(20));
}

TEST(SasRecTrainerTest, ExportedVersionReloadsWithIdenticalMetrics) {
  testing::TempDir dir;
  auto store = SynthStore(dir, 60, 40, 12);
  auto split = BuildSplit(store->graph());
  ASSERT_TRUE(split.ok());
  SasRecTrainOptions opt;
  opt.epochs = 1;
  opt.eval.full_ranking = false;
  opt.eval.show_progress = false;
  auto result = TrainSasRec(SmallConfig(*split), *split, opt);
  ASSERT_TRUE(result.ok()) << result.status();
  JsonObject meta;
  meta.Set("test_ndcg@10", result->test.sampled.Ndcg(10));
  auto v1 = ExportSasRec(dir.Sub("models"), *result->network, meta);
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(*v1, dir.Sub("models") + "/1");
  EXPECT_EQ(*model::LatestVersionDir(dir.Sub("models")), *v1);
  auto loaded = model::SasRecNetwork::Load(*v1 + "/model.pt", torch::kCPU);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->metadata().GetString("model"), "sasrec");
  EXPECT_EQ((*loaded)->metadata().GetNumber("version"), 1);
  EXPECT_EQ((*loaded)->metadata().GetNumber("config.hidden"), 32);
  EXPECT_TRUE(std::filesystem::exists(*v1 + "/metadata.json"));
  auto a = EvaluateSasRec(*result->network, *split, SplitPart::kTest, opt.eval);
  auto b = EvaluateSasRec(**loaded, *split, SplitPart::kTest, opt.eval);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->sampled.Ndcg(10), b->sampled.Ndcg(10));
  EXPECT_EQ(a->sampled.Hit(20), b->sampled.Hit(20));
  EXPECT_EQ(a->sampled.Ndcg(10), result->test.sampled.Ndcg(10));
}

TEST(SasRecTrainerTest, ResumingFromACheckpointContinuesIdentically) {
  testing::TempDir dir;
  auto store = SynthStore(dir, 80, 50, 15);
  auto split = BuildSplit(store->graph());
  ASSERT_TRUE(split.ok());
  model::SasRecConfig config = SmallConfig(*split);
  config.dropout = 0.3;  // dropout must resume identically too
  SasRecTrainOptions opt;
  opt.torch_threads = 1;
  opt.eval.full_ranking = false;
  opt.eval.show_progress = false;
  opt.patience = 100;
  opt.epochs = 3;
  opt.checkpoint_dir = dir.Sub("straight");
  ASSERT_TRUE(TrainSasRec(config, *split, opt).ok());
  opt.checkpoint_dir = dir.Sub("resumed");
  opt.epochs = 1;
  ASSERT_TRUE(TrainSasRec(config, *split, opt).ok());
  opt.epochs = 3;
  ASSERT_TRUE(TrainSasRec(config, *split, opt).ok());
  auto a = model::SasRecNetwork::Load(dir.Sub("straight/last.pt"), torch::kCPU);
  auto b = model::SasRecNetwork::Load(dir.Sub("resumed/last.pt"), torch::kCPU);
  ASSERT_TRUE(a.ok() && b.ok());
  auto pa = (*a)->Parameters(), pb = (*b)->Parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t k = 0; k < pa.size(); ++k) {
    EXPECT_TRUE(torch::equal(pa[k], pb[k])) << "parameter " << k;
  }
  // A checkpoint from another configuration is refused rather than silently continued.
  config.hidden = 16;
  EXPECT_EQ(TrainSasRec(config, *split, opt).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SasRecTrainerTest, UnusableInputsGiveClearErrors) {
  // Three items per user: validation and test exist, but one training item each, so no target.
  std::vector<store::Interaction> edges;
  for (store::NodeId u = 0; u < 3; ++u) {
    for (int j = 0; j < 3; ++j) edges.push_back({u, static_cast<store::NodeId>(u + j), 10 + j});
  }
  auto graph = store::TemporalGraph::Build(edges, 3, 5);
  auto split = BuildSplit(*graph);
  ASSERT_TRUE(split.ok()) << split.status();
  model::SasRecConfig config;
  config.num_items = split->num_items;
  SasRecTrainOptions opt;
  auto r = TrainSasRec(config, *split, opt);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("at least 2 training items"), std::string::npos) << r.status();
  config.num_items = split->num_items + 1;
  EXPECT_EQ(TrainSasRec(config, *split, opt).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dgsr::trainer
