// The DGSR network against a literal, per-node implementation of the paper's equations, plus
// pruning exactness, gradients, determinism, export/reload and input validation.
#include "model/dgsr_network.h"

#include <fstream>
#include <map>
#include <random>

#include "gtest/gtest.h"
#include "model/artifact.h"
#include "tests/testutil/temp_dir.h"

namespace dgsr::model {
namespace {

using store::Interaction;
using store::NodeId;
using store::Timestamp;
using torch::indexing::Slice;

std::vector<Interaction> RandomEdges(uint32_t seed, NodeId users, NodeId items, int n) {
  std::mt19937 rng(seed);
  std::vector<Interaction> e;
  for (int k = 0; k < n; ++k) e.push_back({static_cast<NodeId>(rng() % users), static_cast<NodeId>(rng() % items), static_cast<Timestamp>(rng() % 1000)});
  return e;
}

DgsrConfig TinyConfig(bool authors, int layers) {
  DgsrConfig c = authors ? DgsrConfig::Authors() : DgsrConfig::Paper();
  c.num_users = 12;
  c.num_items = 9;
  c.dim = 4;
  c.max_neighbors = 4;
  c.layers = layers;
  c.sampler_order = 2;
  return c;
}

torch::Tensor P(DgsrNetwork& net, const char* name) { return net.module().attr(name).toTensor(); }

// One node update, written per equation for a single destination node.
// side = "user" (neighbours are items) or "item" (neighbours are users).
torch::Tensor RefUpdate(DgsrNetwork& net, int l, const std::string& side, torch::Tensor h_dst,
                        const std::vector<torch::Tensor>& h_nbrs) {
  const DgsrConfig& c = net.config();
  const bool user = side == "user";
  torch::Tensor w_dst = P(net, user ? "w1" : "w2")[l], w_src = P(net, user ? "w2" : "w1")[l];
  torch::Tensor pk = P(net, user ? "pk_user" : "pk_item")[l], pv = P(net, user ? "pv_user" : "pv_item")[l];
  const int64_t d = c.dim, len = static_cast<int64_t>(h_nbrs.size());
  torch::Tensor q, h_prev;
  std::vector<torch::Tensor> k, x;
  if (c.layer_map) {
    q = torch::matmul(h_dst, w_dst);
    h_prev = q;
    for (auto& h : h_nbrs) {
      k.push_back(torch::matmul(h, w_src));
      x.push_back(k.back());
    }
  } else {
    q = torch::matmul(h_dst, w_dst);  // eq. 1: W1 h_u (W2 h_i for items, eq. 3)
    h_prev = h_dst;
    for (auto& h : h_nbrs) {
      k.push_back(torch::matmul(h, w_src));
      x.push_back(h);
    }
  }
  torch::Tensor global = torch::zeros({d}), local = torch::zeros({d});
  if (len > 0) {
    // eq. 1-2 (3-4): e_j = q^T (k_j + p^K_r) / sqrt(d), r = len-1-j; alpha = softmax(e).
    std::vector<double> e(len);
    for (int64_t j = 0; j < len; ++j) {
      int64_t r = len - 1 - j;
      e[j] = torch::dot(q, k[j] + pk[r]).item<double>() / std::sqrt(static_cast<double>(d));
    }
    double mx = *std::max_element(e.begin(), e.end()), z = 0;
    for (double v : e) z += std::exp(v - mx);
    for (int64_t j = 0; j < len; ++j) {
      int64_t r = len - 1 - j;
      global = global + (std::exp(e[j] - mx) / z) * (k[j] + pv[r]);  // eq. 5 (9)
    }
    if (c.local == LocalMode::kGru) {
      // eq. 6 (10): GRU over the neighbours in time order (PyTorch gate order r, z, n).
      auto wih = P(net, user ? "gru_user_wih" : "gru_item_wih")[l], whh = P(net, user ? "gru_user_whh" : "gru_item_whh")[l];
      auto bih = P(net, user ? "gru_user_bih" : "gru_item_bih")[l], bhh = P(net, user ? "gru_user_bhh" : "gru_item_bhh")[l];
      torch::Tensor h = torch::zeros({d});
      for (auto& xt : x) {
        auto gi = torch::matmul(wih, xt) + bih, gh = torch::matmul(whh, h) + bhh;
        auto r = torch::sigmoid(gi.slice(0, 0, d) + gh.slice(0, 0, d));
        auto zg = torch::sigmoid(gi.slice(0, d, 2 * d) + gh.slice(0, d, 2 * d));
        auto n = torch::tanh(gi.slice(0, 2 * d) + r * gh.slice(0, 2 * d));
        h = (1 - zg) * n + zg * h;
      }
      local = h;
    } else {
      std::vector<double> a(len);
      for (int64_t j = 0; j < len; ++j) a[j] = torch::dot(x[len - 1], x[j]).item<double>() / std::sqrt(static_cast<double>(d));
      double mx2 = *std::max_element(a.begin(), a.end()), z2 = 0;
      for (double v : a) z2 += std::exp(v - mx2);
      for (int64_t j = 0; j < len; ++j) local = local + (std::exp(a[j] - mx2) / z2) * x[j];
    }
  }
  torch::Tensor w_up = P(net, user ? "w3" : "w4")[l];
  if (c.update == UpdateMode::kPaper) {
    return torch::tanh(torch::matmul(torch::cat({global, local, h_prev}), w_up));  // eq. 7 (8)
  }
  auto combined = torch::matmul(torch::cat({global, local}), P(net, user ? "wc_user" : "wc_item")[l]);
  return torch::tanh(torch::matmul(torch::cat({combined, h_prev}), w_up.slice(0, 0, 2 * d)));
}

// The modern preset's sub-layers (config.h: residual_norm, ffn) around one node's update.
torch::Tensor RefRefine(DgsrNetwork& net, int l, bool user, torch::Tensor update, torch::Tensor h_prev) {
  const DgsrConfig& c = net.config();
  auto layer_norm = [](torch::Tensor x, torch::Tensor wb) {
    torch::Tensor mean = x.mean(), var = (x - mean).pow(2).mean();  // biased variance
    return (x - mean) / torch::sqrt(var + 1e-6) * wb[0] + wb[1];
  };
  torch::Tensor h = update;
  if (c.residual_norm) h = layer_norm(h_prev + h, P(net, user ? "ln_user" : "ln_item")[l]);
  if (c.ffn) {
    const std::string side = user ? "user" : "item";
    auto w = [&](const char* part) { return P(net, ("ffn_" + side + "_" + part).c_str())[l]; };
    torch::Tensor inner = torch::relu(torch::matmul(h, w("w1")) + w("b1"));
    h = layer_norm(h + torch::matmul(inner, w("w2")) + w("b2"), P(net, user ? "ffn_ln_user" : "ffn_ln_item")[l]);
  }
  return h;
}

std::vector<NodeId> RecentList(DgsrNetwork& net, const store::TemporalGraph::ReadView& g, bool user, NodeId id, Timestamp t) {
  NodeId buf[64];
  int n = user ? g.RecentItems(id, {store::kMinTime, t}, net.config().max_neighbors, buf, nullptr)
               : g.RecentUsers(id, {store::kMinTime, t}, net.config().max_neighbors, buf, nullptr);
  return std::vector<NodeId>(buf, buf + n);
}

// BFS hop of every node of the sub-graph (key: (is_user, id)); nodes on the last hop are leaves.
std::map<std::pair<bool, NodeId>, int> Hops(DgsrNetwork& net, const store::TemporalGraph::ReadView& g, NodeId u, Timestamp t) {
  const int max_hop = 2 * net.config().sampler_order - 1;
  std::map<std::pair<bool, NodeId>, int> hop{{{true, u}, 0}};
  std::vector<std::pair<bool, NodeId>> frontier{{true, u}};
  for (int h = 0; h < max_hop; ++h) {
    std::vector<std::pair<bool, NodeId>> next;
    for (auto [user, id] : frontier) {
      for (NodeId y : RecentList(net, g, user, id, t)) {
        if (hop.emplace(std::make_pair(!user, y), h + 1).second) next.push_back({!user, y});
      }
    }
    frontier = next;
  }
  return hop;
}

// h^(layer) of a node, recursively over its (time-ordered, n most recent before t) neighbours.
torch::Tensor RefNode(DgsrNetwork& net, const store::TemporalGraph::ReadView& g, bool user, NodeId id,
                      Timestamp t, int layer, const std::map<std::pair<bool, NodeId>, int>& hops) {
  torch::Tensor e = P(net, user ? "user_embedding" : "item_embedding")[id];
  if (layer == 0) return e;
  torch::Tensor h_prev = RefNode(net, g, user, id, t, layer - 1, hops);
  std::vector<torch::Tensor> nbrs;
  if (hops.at({user, id}) < 2 * net.config().sampler_order - 1) {  // last-hop nodes: no neighbour list
    for (NodeId y : RecentList(net, g, user, id, t)) nbrs.push_back(RefNode(net, g, !user, y, t, layer - 1, hops));
  }
  torch::Tensor update = RefUpdate(net, layer - 1, user ? "user" : "item", h_prev, nbrs);
  // The residual adds h^(l-1) as the update read it: mapped, with the authors' layer map.
  torch::Tensor residual = net.config().layer_map ? torch::matmul(h_prev, P(net, user ? "w1" : "w2")[layer - 1]) : h_prev;
  return RefRefine(net, layer - 1, user, update, residual);
}

torch::Tensor RefRepresentation(DgsrNetwork& net, const store::TemporalGraph::ReadView& g, NodeId u, Timestamp t) {
  const DgsrConfig& c = net.config();
  const auto hops = Hops(net, g, u, t);
  std::vector<torch::Tensor> parts;
  for (int l = c.include_layer0 ? 0 : 1; l <= c.layers; ++l) parts.push_back(RefNode(net, g, true, u, t, l, hops));
  if (c.last_item) {
    NodeId last;
    int n = g.RecentItems(u, {store::kMinTime, t}, 1, &last, nullptr);
    parts.push_back(n ? RefNode(net, g, false, last, t, c.layers, hops) : torch::zeros({c.dim}));
  }
  return torch::matmul(torch::cat(parts), P(net, "w_p"));  // eq. 11, 12
}

torch::Tensor Represent(DgsrNetwork& net, const store::TemporalGraph::ReadView& g,
                        const std::vector<SampleRequest>& reqs, SubgraphSampler::Mode mode) {
  SubgraphSampler sampler(net.config(), mode);
  Blocks b;
  sampler.SampleBatch(g, reqs, &b);
  auto rep = net.Represent(ToTensors(b, net.config(), torch::kCPU));
  EXPECT_TRUE(rep.ok()) << rep.status();
  return rep.ok() ? *rep : torch::Tensor();
}

// Gives the modern preset's LayerNorm and FFN parameters random values, so that an identity
// initialisation cannot hide a parameter that is read wrongly or not at all.
void RandomiseModernParameters(DgsrNetwork& net) {
  torch::NoGradGuard ng;
  torch::manual_seed(17);
  for (const auto& p : net.module().named_parameters(/*recurse=*/false)) {
    if (p.name.rfind("ln_", 0) == 0 || p.name.rfind("ffn_", 0) == 0) p.value.normal_(0.0, 0.5).add_(0.2);
  }
}

// (authors, layers, last_item, modern): modern = the paper's equations plus the modern preset's
// residual + LayerNorm and feed-forward sub-layers.
class EquationTest : public ::testing::TestWithParam<std::tuple<bool, int, bool, bool>> {};

TEST_P(EquationTest, BatchedNetworkEqualsPerNodeEquations) {
  auto [authors, layers, last_item, modern] = GetParam();
  DgsrConfig c = TinyConfig(authors, layers);
  c.last_item = last_item;
  c.residual_norm = c.ffn = modern;
  c.sampler_variant = SamplerVariant::kPaper;  // The reference reads plain "before t" lists.
  auto net = DgsrNetwork::Create(c, 11);
  ASSERT_TRUE(net.ok()) << net.status();
  if (modern) RandomiseModernParameters(**net);
  torch::NoGradGuard ng;
  auto graph = store::TemporalGraph::Build(RandomEdges(3, c.num_users, c.num_items, 90), c.num_users, c.num_items);
  auto view = graph->Read();
  std::vector<SampleRequest> reqs{{0, 500}, {3, 800}, {5, 1000}, {7, 100}};
  torch::Tensor got = Represent(**net, view, reqs, SubgraphSampler::Mode::kPruned);
  for (size_t s = 0; s < reqs.size(); ++s) {
    torch::Tensor want = RefRepresentation(**net, view, reqs[s].user, reqs[s].before);
    EXPECT_TRUE(torch::allclose(got[s], want, 1e-4, 1e-5)) << "sample " << s << "\n" << got[s] << "\n" << want;
  }
}

INSTANTIATE_TEST_SUITE_P(PaperAndAuthors, EquationTest,
                         ::testing::Values(std::make_tuple(false, 0, false, false), std::make_tuple(false, 1, false, false),
                                           std::make_tuple(false, 2, false, false),
                                           std::make_tuple(false, 2, true, false), std::make_tuple(true, 2, false, false),
                                           std::make_tuple(true, 3, true, false), std::make_tuple(false, 1, false, true),
                                           std::make_tuple(false, 2, true, true), std::make_tuple(true, 2, false, true)));

// Feature dropout acts in training mode only, in both variants (with the authors' layer map it
// drops the mapped features, without it the layer inputs h^(l-1)), and in both kernel variants.
TEST(DgsrNetworkTest, FeatureDropoutActsInTrainingOnly) {
  for (bool authors : {false, true}) {
    for (GatherKernels kernels : {GatherKernels::kFused, GatherKernels::kPortable}) {
      SCOPED_TRACE(::testing::Message() << "authors=" << authors << " fused=" << (kernels == GatherKernels::kFused));
      DgsrConfig c = TinyConfig(authors, 2);
      c.attn_dropout = 0;
      c.feat_dropout = 0;
      auto plain = DgsrNetwork::Create(c, 3, kernels);
      c.feat_dropout = 0.5;
      auto dropped = DgsrNetwork::Create(c, 3, kernels);
      ASSERT_TRUE(plain.ok() && dropped.ok());
      torch::NoGradGuard ng;
      auto graph = store::TemporalGraph::Build(RandomEdges(5, c.num_users, c.num_items, 90), c.num_users, c.num_items);
      auto view = graph->Read();
      std::vector<SampleRequest> reqs{{0, 500}, {3, 800}, {5, 1000}};
      torch::Tensor eval_plain = Represent(**plain, view, reqs, SubgraphSampler::Mode::kPruned);
      EXPECT_TRUE(torch::equal(eval_plain, Represent(**dropped, view, reqs, SubgraphSampler::Mode::kPruned)));
      (*plain)->SetTraining(true);
      (*dropped)->SetTraining(true);
      EXPECT_TRUE(torch::allclose(eval_plain, Represent(**plain, view, reqs, SubgraphSampler::Mode::kPruned)))
          << "p = 0 must be the identity in training mode";
      EXPECT_FALSE(torch::allclose(eval_plain, Represent(**dropped, view, reqs, SubgraphSampler::Mode::kPruned)))
          << "p = 0.5 must change the training-mode output";
    }
  }
}

TEST(DgsrNetworkTest, PrunedBlocksGiveIdenticalOutputsToTheFullSubgraph) {
  for (bool authors : {false, true}) {
    for (int order : {2, 3}) {
      DgsrConfig c = TinyConfig(authors, 2);
      c.num_users = 60;
      c.num_items = 40;
      c.sampler_order = order;
      c.last_item = authors;
      auto net = DgsrNetwork::Create(c, 5);
      ASSERT_TRUE(net.ok());
      torch::NoGradGuard ng;
      auto graph = store::TemporalGraph::Build(RandomEdges(7, 60, 40, 900), 60, 40);
      auto view = graph->Read();
      std::vector<SampleRequest> reqs;
      for (NodeId u = 0; u < 20; ++u) reqs.push_back({u, 300 + 30 * u});
      auto pruned = Represent(**net, view, reqs, SubgraphSampler::Mode::kPruned);
      auto full = Represent(**net, view, reqs, SubgraphSampler::Mode::kFull);
      EXPECT_LT((pruned - full).abs().max().item<double>(), 1e-5) << "authors=" << authors << " m=" << order;
    }
  }
}

TEST(DgsrNetworkTest, GradientsMatchFiniteDifferences) {
  for (bool modern : {false, true}) {
  SCOPED_TRACE(modern ? "modern options" : "paper");
  DgsrConfig c = TinyConfig(false, 2);
  c.residual_norm = c.ffn = c.output_embedding = modern;
  auto net = DgsrNetwork::Create(c, 2);
  ASSERT_TRUE(net.ok());
  if (modern) RandomiseModernParameters(**net);
  (*net)->module().to(torch::kDouble);
  auto graph = store::TemporalGraph::Build(RandomEdges(4, c.num_users, c.num_items, 80), c.num_users, c.num_items);
  auto view = graph->Read();
  SubgraphSampler sampler(c, SubgraphSampler::Mode::kPruned);
  std::vector<SampleRequest> reqs{{1, 700}, {2, 900}};
  Blocks b;
  sampler.SampleBatch(view, reqs, &b);
  BlockTensors t = ToTensors(b, c, torch::kCPU);
  torch::Tensor targets = torch::tensor({3, 5}, torch::kInt64);
  auto loss_fn = [&]() {
    auto rep = (*net)->RepresentUnchecked(t);
    return torch::nll_loss(torch::log_softmax((*net)->ScoreAll(rep), 1), targets);
  };
  std::vector<const char*> names{"w3", "pk_user", "gru_item_wih", "item_embedding", "w_p"};
  if (modern) names = {"w3", "ln_user", "ln_item", "ffn_user_w1", "ffn_item_b2", "ffn_ln_user", "item_out", "item_embedding"};
  for (const char* name : names) {
    torch::Tensor p = P(**net, name);
    if (p.grad().defined()) p.mutable_grad().zero_();
    loss_fn().backward();
    torch::Tensor analytic = p.grad().is_sparse() ? p.grad().to_dense() : p.grad().clone();
    torch::NoGradGuard ng;
    auto flat = p.view(-1);
    std::mt19937 rng(1);
    for (int k = 0; k < 6; ++k) {
      int64_t idx = rng() % flat.numel();
      double orig = flat[idx].item<double>();
      const double eps = 1e-6;
      flat[idx] = orig + eps;
      double up = loss_fn().item<double>();
      flat[idx] = orig - eps;
      double down = loss_fn().item<double>();
      flat[idx] = orig;
      double numeric = (up - down) / (2 * eps);
      EXPECT_NEAR(analytic.view(-1)[idx].item<double>(), numeric, 1e-6 + 1e-4 * std::abs(numeric)) << name << "[" << idx << "]";
    }
  }
  }
}

TEST(DgsrNetworkTest, SameSeedSameModelDifferentSeedDifferentModel) {
  DgsrConfig c = TinyConfig(true, 2);
  auto a = DgsrNetwork::Create(c, 42), b = DgsrNetwork::Create(c, 42), other = DgsrNetwork::Create(c, 43);
  ASSERT_TRUE(a.ok() && b.ok() && other.ok());
  auto pa = (*a)->Parameters(), pb = (*b)->Parameters(), po = (*other)->Parameters();
  ASSERT_EQ(pa.size(), pb.size());
  bool any_different = false;
  for (size_t k = 0; k < pa.size(); ++k) {
    EXPECT_TRUE(torch::equal(pa[k], pb[k]));
    any_different |= !torch::equal(pa[k], po[k]);
  }
  EXPECT_TRUE(any_different);
}

TEST(DgsrNetworkTest, ExportedArtifactReloadsWithIdenticalScoresAndMetadata) {
  testing::TempDir dir;
  DgsrConfig c = TinyConfig(false, 2);
  auto net = DgsrNetwork::Create(c, 9);
  ASSERT_TRUE(net.ok());
  JsonObject meta;
  meta.Set("version", "v7").Set("test.hit@10", 0.5);
  ASSERT_TRUE((*net)->Save(dir.Sub("model.pt"), meta).ok());
  auto loaded = DgsrNetwork::Load(dir.Sub("model.pt"), torch::kCPU);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->metadata().GetString("version"), "v7");
  EXPECT_EQ((*loaded)->config().ToJson().Dump(), c.ToJson().Dump());
  torch::NoGradGuard ng;
  auto graph = store::TemporalGraph::Build(RandomEdges(5, c.num_users, c.num_items, 80), c.num_users, c.num_items);
  auto view = graph->Read();
  std::vector<SampleRequest> reqs{{0, 900}, {4, 900}};
  auto s1 = (*net)->ScoreAll(Represent(**net, view, reqs, SubgraphSampler::Mode::kPruned));
  auto s2 = (*loaded)->ScoreAll(Represent(**loaded, view, reqs, SubgraphSampler::Mode::kPruned));
  EXPECT_TRUE(torch::equal(s1, s2));
  EXPECT_EQ(s1.size(1), c.num_items);
  // Candidate scoring agrees with full scoring.
  auto cand = torch::tensor({{1, 2, 3}, {8, 0, 4}}, torch::kInt64);
  auto rep = Represent(**loaded, view, reqs, SubgraphSampler::Mode::kPruned);
  EXPECT_TRUE(torch::allclose((*loaded)->ScoreItems(rep, cand), s2.gather(1, cand), 1e-5, 1e-6));
}

TEST(DgsrNetworkTest, RejectsBadArtifacts) {
  testing::TempDir dir;
  EXPECT_EQ(DgsrNetwork::Load(dir.Sub("missing.pt"), torch::kCPU).status().code(), absl::StatusCode::kNotFound);
  { std::ofstream(dir.Sub("garbage.pt")) << "this is not a model"; }
  EXPECT_EQ(DgsrNetwork::Load(dir.Sub("garbage.pt"), torch::kCPU).status().code(), absl::StatusCode::kDataLoss);
  // A truncated artifact.
  auto net = DgsrNetwork::Create(TinyConfig(false, 1), 1);
  ASSERT_TRUE(net.ok());
  ASSERT_TRUE((*net)->Save(dir.Sub("good.pt"), JsonObject()).ok());
  std::ifstream in(dir.Sub("good.pt"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(dir.Sub("cut.pt"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EXPECT_EQ(DgsrNetwork::Load(dir.Sub("cut.pt"), torch::kCPU).status().code(), absl::StatusCode::kDataLoss);
  // A valid TorchScript file that is not a DGSR artifact.
  torch::jit::Module plain("Plain");
  plain.define("def forward(self, x: Tensor):\n    return x\n");
  plain.save(dir.Sub("plain.pt"));
  auto s = DgsrNetwork::Load(dir.Sub("plain.pt"), torch::kCPU).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("not a DGSR artifact"), std::string::npos) << s;
}

TEST(DgsrNetworkTest, RejectsMalformedInputsWithClearErrors) {
  DgsrConfig c = TinyConfig(false, 2);
  auto net = DgsrNetwork::Create(c, 1);
  ASSERT_TRUE(net.ok());
  auto graph = store::TemporalGraph::Build(RandomEdges(5, c.num_users, c.num_items, 80), c.num_users, c.num_items);
  auto view = graph->Read();
  SubgraphSampler sampler(c, SubgraphSampler::Mode::kPruned);
  std::vector<SampleRequest> reqs{{0, 900}};
  Blocks b;
  sampler.SampleBatch(view, reqs, &b);
  BlockTensors good = ToTensors(b, c, torch::kCPU);
  ASSERT_TRUE((*net)->Represent(good).ok());
  auto expect_bad = [&](BlockTensors t, const char* why) {
    auto r = (*net)->Represent(t);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << why;
  };
  BlockTensors t = good;
  t.user_nbr = t.user_nbr.to(torch::kFloat);
  expect_bad(t, "float indices");
  t = good;
  t.user_nbr = t.user_nbr.view(-1);
  expect_bad(t, "1-D neighbour list");
  t = good;
  t.item_nbr = t.item_nbr + 1000;
  expect_bad(t, "neighbour index out of range");
  t = good;
  t.layer_users = {1};
  expect_bad(t, "wrong number of layers");
  t = good;
  t.user_ids = t.user_ids + 100;
  expect_bad(t, "embedding id out of range");
  t = good;
  t.num_anchors = 0;
  expect_bad(t, "no anchors");
}

TEST(DgsrNetworkTest, UnknownIdsMapToTheZeroRow) {
  DgsrConfig c = TinyConfig(false, 2);
  auto net = DgsrNetwork::Create(c, 1);
  ASSERT_TRUE(net.ok());
  // A graph that grew after training: user 20 and item 15 are beyond the model's id space.
  auto edges = RandomEdges(5, c.num_users, c.num_items, 80);
  edges.push_back({20, 15, 10});
  edges.push_back({20, 2, 20});
  auto graph = store::TemporalGraph::Build(edges, 21, 16);
  auto view = graph->Read();
  SubgraphSampler sampler(c, SubgraphSampler::Mode::kPruned);
  std::vector<SampleRequest> reqs{{20, 100}};
  Blocks b;
  sampler.SampleBatch(view, reqs, &b);
  auto rep = (*net)->Represent(ToTensors(b, c, torch::kCPU));
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_TRUE(torch::isfinite(*rep).all().item<bool>());
  EXPECT_TRUE(torch::equal(P(**net, "user_embedding")[c.num_users], torch::zeros({c.dim})));
}

TEST(DgsrNetworkTest, WithoutItsOwnEmbeddingAUserScoresFromItsSubgraphAlone) {
  for (bool own : {true, false}) {
    DgsrConfig c = TinyConfig(false, 2);
    c.own_user_embedding = own;
    auto net = DgsrNetwork::Create(c, 3);
    ASSERT_TRUE(net.ok());
    auto graph = store::TemporalGraph::Build(RandomEdges(5, c.num_users, c.num_items, 80), c.num_users, c.num_items);
    auto view = graph->Read();
    torch::NoGradGuard ng;
    std::vector<SampleRequest> reqs{{3, 900}, {5, 900}};
    auto before = (*net)->ScoreAll(Represent(**net, view, reqs, SubgraphSampler::Mode::kPruned));
    // Change user 3's embedding only: its own scores move iff the option is on. User 5's move
    // only if user 3 is in its sub-graph, and then with the option on or off alike.
    P(**net, "user_embedding")[3].add_(1.0);
    auto after = (*net)->ScoreAll(Represent(**net, view, reqs, SubgraphSampler::Mode::kPruned));
    EXPECT_EQ(torch::equal(before[0], after[0]), !own) << "own_user_embedding=" << own;
    // The option survives export (and artifacts without it load as the paper's model).
    JsonObject j = c.ToJson();
    EXPECT_EQ(DgsrConfig::FromJson(j)->own_user_embedding, own);
  }
  // At inference, the switch on a loaded network equals a network built without the embedding.
  DgsrConfig c = TinyConfig(false, 2);
  auto with = DgsrNetwork::Create(c, 3);
  c.own_user_embedding = false;
  auto without_own = DgsrNetwork::Create(c, 3);
  ASSERT_TRUE(with.ok() && without_own.ok());
  (*with)->set_own_user_embedding(false);
  auto graph = store::TemporalGraph::Build(RandomEdges(5, c.num_users, c.num_items, 80), c.num_users, c.num_items);
  auto view = graph->Read();
  torch::NoGradGuard ng;
  std::vector<SampleRequest> reqs{{3, 900}, {7, 500}};
  EXPECT_TRUE(torch::equal((*with)->ScoreAll(Represent(**with, view, reqs, SubgraphSampler::Mode::kPruned)),
                           (*without_own)->ScoreAll(Represent(**without_own, view, reqs, SubgraphSampler::Mode::kPruned))));
  JsonObject old = TinyConfig(false, 2).ToJson();
  JsonObject without;
  for (const auto& [k, v] : old.entries()) {
    if (k != "own_user_embedding") std::visit([&](const auto& value) { without.Set(k, value); }, v);
  }
  EXPECT_TRUE(DgsrConfig::FromJson(without)->own_user_embedding);
}

// The modern preset's options: eq. 12 reads the output table (unknown items still score 0), the
// artifact round-trips in both kernel variants, a warm start copies the output table's known
// rows, and configs written before the options existed read as all off.
TEST(DgsrNetworkTest, ModernOptionsScoreAgainstTheOutputTableAndRoundTrip) {
  testing::TempDir dir;
  DgsrConfig c = TinyConfig(false, 2);
  c.residual_norm = c.ffn = c.output_embedding = true;
  c.warmup_steps = 30;
  auto net = DgsrNetwork::Create(c, 4);
  ASSERT_TRUE(net.ok()) << net.status();
  RandomiseModernParameters(**net);
  auto graph = store::TemporalGraph::Build(RandomEdges(6, c.num_users, c.num_items, 80), c.num_users, c.num_items);
  auto view = graph->Read();
  torch::NoGradGuard ng;
  std::vector<SampleRequest> reqs{{1, 900}, {6, 700}};
  torch::Tensor rep = Represent(**net, view, reqs, SubgraphSampler::Mode::kPruned);
  torch::Tensor scores = (*net)->ScoreAll(rep);
  torch::Tensor out = P(**net, "item_out");
  EXPECT_TRUE(torch::allclose(scores, torch::matmul(rep, out.narrow(0, 0, c.num_items).t()), 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(scores, torch::matmul(rep, P(**net, "item_embedding").narrow(0, 0, c.num_items).t())));
  auto cand = torch::tensor({{int64_t{0}, int64_t{3}, c.num_items}, {int64_t{8}, int64_t{2}, int64_t{1}}}, torch::kInt64);  // c.num_items: an unknown item
  torch::Tensor cand_scores = (*net)->ScoreItems(rep, cand);
  EXPECT_EQ(cand_scores[0][2].item<float>(), 0.0f);
  EXPECT_TRUE(torch::allclose(cand_scores.narrow(1, 0, 2)[0], scores[0].index({torch::tensor({0, 3}, torch::kInt64)}), 1e-5, 1e-6));
  ASSERT_TRUE((*net)->Save(dir.Sub("modern.pt"), JsonObject()).ok());
  // Written as format version 2, which binaries from before the options refuse; a network without
  // them stays version 1.
  const ArtifactFormat any_dgsr{"DGSR", "dgsr/config.json", "dgsr/metadata.json", 2, 1, {}};
  auto stored = LoadArtifact(dir.Sub("modern.pt"), torch::kCPU, any_dgsr);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->config.GetNumber("format_version"), 2);
  auto plain_for_version = DgsrNetwork::Create(TinyConfig(false, 2), 4);
  ASSERT_TRUE(plain_for_version.ok());
  ASSERT_TRUE((*plain_for_version)->Save(dir.Sub("plain.pt"), JsonObject()).ok());
  EXPECT_EQ(LoadArtifact(dir.Sub("plain.pt"), torch::kCPU, any_dgsr)->config.GetNumber("format_version"), 1);
  for (GatherKernels kernels : {GatherKernels::kFused, GatherKernels::kPortable}) {
    auto loaded = DgsrNetwork::Load(dir.Sub("modern.pt"), torch::kCPU, kernels);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ((*loaded)->config().ToJson().Dump(), c.ToJson().Dump());
    EXPECT_EQ((*loaded)->Parameters().size(), (*net)->Parameters().size());
    torch::Tensor again = (*loaded)->ScoreAll(Represent(**loaded, view, reqs, SubgraphSampler::Mode::kPruned));
    EXPECT_TRUE(torch::allclose(again, scores, 1e-5, 1e-6)) << "fused=" << (kernels == GatherKernels::kFused);
  }
  // The options add parameters only when on.
  DgsrConfig plain = TinyConfig(false, 2);
  auto plain_net = DgsrNetwork::Create(plain, 4);
  ASSERT_TRUE(plain_net.ok());
  EXPECT_EQ((*net)->Parameters().size(), (*plain_net)->Parameters().size() + 13);
  // Warm start onto a grown id space copies the output table's known rows.
  DgsrConfig grown = c;
  grown.num_items += 2;
  auto bigger = DgsrNetwork::Create(grown, 5);
  ASSERT_TRUE(bigger.ok());
  ASSERT_TRUE((*bigger)->WarmStartFrom(**net).ok());
  EXPECT_TRUE(torch::equal(P(**bigger, "item_out").narrow(0, 0, c.num_items), out.narrow(0, 0, c.num_items)));
  EXPECT_TRUE(torch::equal(P(**bigger, "item_out")[grown.num_items], torch::zeros({c.dim})));
  // A config written before the options existed: all off.
  const JsonObject full = c.ToJson();
  JsonObject without;
  for (const auto& [k, v] : full.entries()) {
    if (k != "residual_norm" && k != "ffn" && k != "output_embedding" && k != "warmup_steps") {
      std::visit([&](const auto& value) { without.Set(k, value); }, v);
    }
  }
  auto old = DgsrConfig::FromJson(without);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_FALSE(old->residual_norm || old->ffn || old->output_embedding);
  EXPECT_EQ(old->warmup_steps, 0);
}

// The inductive preset is the paper's model with exactly three fields changed.
TEST(DgsrConfigTest, PresetsByName) {
  auto inductive = PresetByName("inductive");
  ASSERT_TRUE(inductive.ok()) << inductive.status();
  EXPECT_FALSE(inductive->own_user_embedding);
  EXPECT_EQ(inductive->feat_dropout, 0.2);
  EXPECT_EQ(inductive->attn_dropout, 0.2);
  DgsrConfig paper_changed = DgsrConfig::Paper();
  paper_changed.own_user_embedding = false;
  paper_changed.feat_dropout = 0.2;
  paper_changed.attn_dropout = 0.2;
  EXPECT_EQ(inductive->ToJson().Dump(), paper_changed.ToJson().Dump());
  EXPECT_EQ(PresetByName("paper")->ToJson().Dump(), DgsrConfig::Paper().ToJson().Dump());
  EXPECT_EQ(PresetByName("authors")->ToJson().Dump(), DgsrConfig::Authors().ToJson().Dump());
  // The modern preset is the inductive one with the modernisation switched on.
  DgsrConfig inductive_changed = DgsrConfig::Inductive();
  inductive_changed.residual_norm = inductive_changed.ffn = inductive_changed.output_embedding = true;
  inductive_changed.warmup_steps = 2000;
  inductive_changed.dim = 64;
  EXPECT_EQ(PresetByName("modern")->ToJson().Dump(), inductive_changed.ToJson().Dump());
  absl::Status unknown = PresetByName("papers").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.message().find("expected inductive, paper, authors or modern"), std::string::npos) << unknown;
}

}  // namespace
}  // namespace dgsr::model


namespace dgsr::model {
namespace {

// The paper's ablations (§5.4) and layer counts (§5.5) are configurations of the same network:
// each runs, gives finite outputs, and its pruned blocks still equal the full sub-graph.
class AblationTest : public ::testing::TestWithParam<std::tuple<Propagation, Aggregation, int>> {};

TEST_P(AblationTest, RunsAndPruningStaysExact) {
  auto [propagation, aggregation, layers] = GetParam();
  DgsrConfig c = TinyConfig(false, layers);
  c.propagation = propagation;
  c.aggregation = aggregation;
  c.sampler_order = 3;
  auto net = DgsrNetwork::Create(c, 6);
  ASSERT_TRUE(net.ok()) << net.status();
  torch::NoGradGuard ng;
  auto graph = store::TemporalGraph::Build(RandomEdges(2, c.num_users, c.num_items, 120), c.num_users, c.num_items);
  auto view = graph->Read();
  std::vector<SampleRequest> reqs{{0, 600}, {1, 900}, {2, 300}};
  auto pruned = Represent(**net, view, reqs, SubgraphSampler::Mode::kPruned);
  auto full = Represent(**net, view, reqs, SubgraphSampler::Mode::kFull);
  EXPECT_TRUE(torch::isfinite(pruned).all().item<bool>());
  EXPECT_LT((pruned - full).abs().max().item<double>(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(
    PaperSection5, AblationTest,
    ::testing::Values(std::make_tuple(Propagation::kGcn, Aggregation::kGlobalAndLocal, 2),   // DGSR-GCN
                      std::make_tuple(Propagation::kGat, Aggregation::kGlobalAndLocal, 2),   // DGSR-GAT
                      std::make_tuple(Propagation::kOrderAttention, Aggregation::kGlobalOnly, 2),  // DGSR-Global
                      std::make_tuple(Propagation::kOrderAttention, Aggregation::kLocalOnly, 2),   // DGSR-Local
                      std::make_tuple(Propagation::kOrderAttention, Aggregation::kGlobalAndLocal, 0),  // DGSR-0
                      std::make_tuple(Propagation::kOrderAttention, Aggregation::kGlobalAndLocal, 4)));

TEST(DgsrNetworkTest, WarmStartCopiesKnownRowsAndKeepsFreshRowsForNewIds) {
  DgsrConfig old_config = TinyConfig(false, 2);
  DgsrConfig grown = old_config;
  grown.num_users += 4;
  grown.num_items += 3;
  auto old_net = DgsrNetwork::Create(old_config, 5);
  auto net = DgsrNetwork::Create(grown, 6);
  ASSERT_TRUE(old_net.ok() && net.ok());
  const torch::Tensor fresh_users = P(**net, "user_embedding").clone();
  const torch::Tensor fresh_items = P(**net, "item_embedding").clone();
  ASSERT_TRUE((*net)->WarmStartFrom(**old_net).ok());
  const int64_t u = old_config.num_users, i = old_config.num_items;
  torch::Tensor users = P(**net, "user_embedding"), items = P(**net, "item_embedding");
  EXPECT_TRUE(torch::equal(users.narrow(0, 0, u), P(**old_net, "user_embedding").narrow(0, 0, u)));
  EXPECT_TRUE(torch::equal(items.narrow(0, 0, i), P(**old_net, "item_embedding").narrow(0, 0, i)));
  // The ids created since keep the fresh initialisation (not the old zero row), the zero row stays zero.
  EXPECT_TRUE(torch::equal(users.narrow(0, u, 4), fresh_users.narrow(0, u, 4)));
  EXPECT_TRUE(torch::equal(items.narrow(0, i, 3), fresh_items.narrow(0, i, 3)));
  EXPECT_GT(users[u].abs().sum().item<double>(), 0);
  EXPECT_TRUE(torch::equal(users[grown.num_users], torch::zeros({grown.dim})));
  EXPECT_TRUE(torch::equal(items[grown.num_items], torch::zeros({grown.dim})));
  for (const char* name : {"w1", "w_p", "gru_user_wih", "pk_item"}) {
    EXPECT_TRUE(torch::equal(P(**net, name), P(**old_net, name))) << name;
  }
  // Another architecture, or an older model that knows more ids, does not fit.
  DgsrConfig wider = grown;
  wider.dim += 2;
  auto other = DgsrNetwork::Create(wider, 6);
  ASSERT_TRUE(other.ok());
  absl::Status s = (*other)->WarmStartFrom(**old_net);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  s = (*old_net)->WarmStartFrom(**net);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("more than this one"), std::string::npos) << s;
}

}  // namespace
}  // namespace dgsr::model
