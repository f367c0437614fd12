// SasRecNetwork: causal masking, padding invariance, tied item embeddings, input packing,
// save/reload, and rejection of bad artifacts and inputs.
#include "model/sasrec_network.h"

#include <fstream>

#include "gtest/gtest.h"
#include "tests/testutil/temp_dir.h"

namespace dgsr::model {
namespace {

SasRecConfig SmallConfig() {
  SasRecConfig c;
  c.num_items = 30;
  c.max_len = 12;
  c.hidden = 16;
  c.blocks = 2;
  c.heads = 2;
  c.dropout = 0.3;  // must not matter in eval mode
  return c;
}

std::unique_ptr<SasRecNetwork> MakeNet(const SasRecConfig& c = SmallConfig()) {
  auto net = SasRecNetwork::Create(c, 11);
  EXPECT_TRUE(net.ok()) << net.status();
  return std::move(*net);
}

torch::Tensor Seq(std::vector<int64_t> shifted_ids) {
  const int64_t n = static_cast<int64_t>(shifted_ids.size());
  return torch::tensor(shifted_ids, torch::kInt64).view({1, n});
}

TEST(SasRecNetworkTest, LaterItemsNeverChangeEarlierPositions) {
  auto net = MakeNet();
  torch::NoGradGuard no_grad;
  torch::Tensor a = Seq({3, 9, 1, 27, 14, 5, 8, 30});
  torch::Tensor b = a.clone();
  b[0][5] = 22;  // change the item at position 5
  auto ha = net->Forward(a), hb = net->Forward(b);
  ASSERT_TRUE(ha.ok() && hb.ok());
  EXPECT_TRUE(torch::allclose(ha->slice(1, 0, 5), hb->slice(1, 0, 5), 0, 1e-6))
      << "an earlier position saw a later item";
  for (int t = 5; t < 8; ++t) {
    EXPECT_FALSE(torch::allclose((*ha)[0][t], (*hb)[0][t], 0, 1e-4)) << "position " << t << " ignored item 5";
  }
}

TEST(SasRecNetworkTest, LeftPaddingAndBatchCompanionsChangeNothing) {
  auto net = MakeNet();
  torch::NoGradGuard no_grad;
  auto alone = net->Forward(Seq({4, 17, 2}));
  auto padded = net->Forward(Seq({0, 0, 0, 0, 0, 4, 17, 2}));
  ASSERT_TRUE(alone.ok() && padded.ok());
  EXPECT_TRUE(torch::allclose(*alone, padded->slice(1, 5, 8), 0, 1e-5));
  // In a batch with a longer row the short row is padded; its result must not move.
  SasRecConfig c = SmallConfig();
  torch::Tensor batch = PackSequences({{3, 16, 1}, {0, 5, 6, 7, 8, 9, 10}}, c);
  ASSERT_EQ(batch.size(1), 7);
  auto together = net->Represent(batch);
  auto first = net->Represent(Seq({4, 17, 2}));
  ASSERT_TRUE(together.ok() && first.ok());
  EXPECT_TRUE(torch::allclose((*together)[0], (*first)[0], 0, 1e-5));
  EXPECT_TRUE(torch::allclose((*first)[0], (*alone)[0][2], 0, 1e-6));
}

TEST(SasRecNetworkTest, ScoresUseTheSharedItemEmbedding) {
  auto net = MakeNet();
  torch::NoGradGuard no_grad;
  torch::Tensor h = torch::randn({2, 16});
  torch::Tensor scores = net->ScoreAll(h);
  ASSERT_EQ(scores.sizes(), (std::vector<int64_t>{2, 30}));
  torch::Tensor table = net->module().attr("item_embedding").toTensor();
  for (int64_t item : {0, 7, 29}) {
    EXPECT_NEAR(scores[1][item].item<float>(), h[1].dot(table[item + 1]).item<float>(), 1e-5);
  }
}

TEST(SasRecNetworkTest, TrainingModeUsesDropoutAndEveryParameterLearns) {
  auto net = MakeNet();
  torch::Tensor seq = PackSequences({{1, 2, 3, 4}, {5, 6}}, SmallConfig());
  net->SetTraining(true);
  torch::Tensor h = net->ForwardUnchecked(seq);
  EXPECT_FALSE(torch::allclose(h, net->ForwardUnchecked(seq))) << "dropout inactive in training mode";
  torch::Tensor loss = torch::nll_loss(torch::log_softmax(net->ScoreAll(h.select(1, 3)), 1),
                                       torch::tensor({5, 7}, torch::kInt64));
  loss.backward();
  for (const auto& p : net->module().named_parameters()) {
    // A key bias adds the same q.b_k to every key's score; softmax cancels it, so no gradient.
    if (p.name == "attn_bk") continue;
    ASSERT_TRUE(p.value.grad().defined()) << p.name;
    EXPECT_GT(p.value.grad().abs().sum().item<double>(), 0) << p.name << " gets no gradient";
  }
  net->SetTraining(false);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(net->ForwardUnchecked(seq), net->ForwardUnchecked(seq)));
}

TEST(SasRecNetworkTest, PackSequencesRightAlignsTruncatesAndDropsUnknownItems) {
  SasRecConfig c = SmallConfig();
  c.max_len = 3;
  torch::Tensor t = PackSequences({{0, 1, 2, 3, 4}, {7}, {}, {40, 5, -1}}, c);
  std::vector<int64_t> expected{3, 4, 5,  // last 3, shifted
                                0, 0, 8,  //
                                0, 0, 0,  // empty: padding only
                                0, 0, 6}; // 40 and -1 are unknown
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{4, 3}));
  EXPECT_TRUE(torch::equal(t, torch::tensor(expected, torch::kInt64).view({4, 3})));
  EXPECT_EQ(PackSequences({{}}, c).sizes(), (std::vector<int64_t>{1, 1}));
}

TEST(SasRecNetworkTest, SaveAndLoadGiveIdenticalScoresConfigAndMetadata) {
  testing::TempDir dir;
  auto net = MakeNet();
  JsonObject meta;
  meta.Set("dataset", "unit").Set("valid_ndcg@10", 0.25);
  ASSERT_TRUE(net->Save(dir.Sub("m.pt"), meta).ok());
  auto loaded = SasRecNetwork::Load(dir.Sub("m.pt"), torch::kCPU);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->config().ToJson().Dump(), net->config().ToJson().Dump());
  EXPECT_EQ((*loaded)->metadata().GetString("dataset"), "unit");
  torch::NoGradGuard no_grad;
  torch::Tensor seq = PackSequences({{1, 2, 3}, {29, 0, 14, 8, 8}}, net->config());
  torch::Tensor a = net->ScoreAll(net->RepresentUnchecked(seq));
  torch::Tensor b = (*loaded)->ScoreAll((*loaded)->RepresentUnchecked(seq));
  EXPECT_TRUE(torch::equal(a, b));
}

TEST(SasRecNetworkTest, BadArtifactsAreRejectedClearly) {
  testing::TempDir dir;
  EXPECT_EQ(SasRecNetwork::Load(dir.Sub("missing.pt"), torch::kCPU).status().code(), absl::StatusCode::kNotFound);
  std::ofstream(dir.Sub("garbage.pt")) << "not a zip archive";
  EXPECT_EQ(SasRecNetwork::Load(dir.Sub("garbage.pt"), torch::kCPU).status().code(), absl::StatusCode::kDataLoss);
  // A TorchScript file without the SASRec config (e.g. some other model).
  torch::jit::Module other("Other");
  other.register_parameter("w", torch::ones({2}), false);
  other.define("def forward(self, x: Tensor):\n    return x * self.w\n");
  other.save(dir.Sub("other.pt"));
  auto s = SasRecNetwork::Load(dir.Sub("other.pt"), torch::kCPU);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("not a SASRec artifact"), std::string::npos) << s.status();
  // A SASRec artifact whose config does not match its tensors, or has an unknown version.
  auto net = MakeNet();
  JsonObject lying = net->config().ToJson();
  lying.Set("num_items", 31).Set("format_version", 1);
  net->module().save(dir.Sub("lying.pt"), {{"sasrec/config.json", lying.Dump()}});
  EXPECT_EQ(SasRecNetwork::Load(dir.Sub("lying.pt"), torch::kCPU).status().code(), absl::StatusCode::kInvalidArgument);
  JsonObject future = net->config().ToJson();
  future.Set("format_version", 99);
  net->module().save(dir.Sub("future.pt"), {{"sasrec/config.json", future.Dump()}});
  auto f = SasRecNetwork::Load(dir.Sub("future.pt"), torch::kCPU);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(f.status().message().find("version"), std::string::npos);
}

TEST(SasRecNetworkTest, BadInputsAndConfigsGiveInvalidArgument) {
  auto net = MakeNet();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(net->Represent(Seq({31})).status().code(), absl::StatusCode::kInvalidArgument);  // > num_items
  EXPECT_EQ(net->Represent(Seq({-1})).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(net->Represent(torch::ones({1, 13}, torch::kInt64)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(net->Represent(torch::ones({1, 3}, torch::kFloat)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(net->Represent(torch::ones({3}, torch::kInt64)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(net->Represent(Seq({30})).ok());
  SasRecConfig c = SmallConfig();
  c.heads = 3;  // 16 % 3 != 0
  EXPECT_EQ(SasRecNetwork::Create(c, 1).status().code(), absl::StatusCode::kInvalidArgument);
  c = SmallConfig();
  c.dropout = 1.0;
  EXPECT_EQ(c.Validate().code(), absl::StatusCode::kInvalidArgument);
  auto back = SasRecConfig::FromJson(SmallConfig().ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson().Dump(), SmallConfig().ToJson().Dump());
  JsonObject missing;
  missing.Set("num_items", 5);
  EXPECT_EQ(SasRecConfig::FromJson(missing).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SasRecNetworkTest, WarmStartCopiesKnownItemRowsAndKeepsFreshRowsForNewItems) {
  SasRecConfig grown = SmallConfig();
  grown.num_items += 5;
  auto old_net = MakeNet();
  auto net = MakeNet(grown);
  auto item_rows = [](SasRecNetwork& n) { return n.module().attr("item_embedding").toTensor(); };
  const torch::Tensor fresh = item_rows(*net).clone();
  ASSERT_TRUE(net->WarmStartFrom(*old_net).ok());
  const int64_t known = SmallConfig().num_items + 1;  // padding row 0 and the old items
  EXPECT_TRUE(torch::equal(item_rows(*net).narrow(0, 0, known), item_rows(*old_net)));
  EXPECT_TRUE(torch::equal(item_rows(*net).narrow(0, known, 5), fresh.narrow(0, known, 5)));
  EXPECT_TRUE(torch::equal(net->module().attr("attn_wq").toTensor(), old_net->module().attr("attn_wq").toTensor()));
  // The same sequence of old items scores the old items identically.
  torch::NoGradGuard no_grad;
  torch::Tensor seq = Seq({3, 7, 1});
  torch::Tensor a = old_net->ScoreAll(old_net->RepresentUnchecked(seq));
  torch::Tensor b = net->ScoreAll(net->RepresentUnchecked(seq)).narrow(1, 0, SmallConfig().num_items);
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6));
  SasRecConfig other = grown;
  other.blocks = 1;
  EXPECT_EQ(MakeNet(other)->WarmStartFrom(*old_net).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(old_net->WarmStartFrom(*net).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dgsr::model
