// The fused gather kernels (model/fused_ops.h) against the stock-op formulas, values and
// gradients; and the fused and portable networks against each other.
#include "model/fused_ops.h"

#include <random>

#include <torch/torch.h>

#include "gtest/gtest.h"
#include "model/dgsr_network.h"
#include "tests/testutil/temp_dir.h"

namespace dgsr::model {
namespace {

struct Case {
  torch::Tensor q, k, w, nbr, length, valid;
};

// Random rows with lengths 0..W (padding filled with arbitrary but in-range indices).
Case RandomCase(int64_t rows, int64_t width, int64_t src, int64_t d, uint64_t seed) {
  torch::manual_seed(seed);
  Case c;
  auto opts = torch::TensorOptions().dtype(torch::kDouble);
  c.q = torch::randn({rows, d}, opts).requires_grad_(true);
  c.k = torch::randn({src, d}, opts).requires_grad_(true);
  c.nbr = torch::randint(0, src, {rows, width}, torch::kInt64);
  c.length = torch::randint(0, width + 1, {rows}, torch::kInt64);
  c.valid = torch::arange(width).unsqueeze(0) < c.length.unsqueeze(1);
  c.w = (torch::randn({rows, width}, opts) * c.valid.to(torch::kDouble)).requires_grad_(true);
  return c;
}

torch::Tensor Gathered(const Case& c) {
  return c.k.index_select(0, c.nbr.reshape(-1)).view({c.nbr.size(0), c.nbr.size(1), c.k.size(1)});
}

TEST(FusedOpsTest, GatherDotMatchesStockOpsInValueAndGradient) {
  Case c = RandomCase(37, 6, 11, 5, 1);
  torch::Tensor fused = GatherDot(c.q, c.k, c.nbr, c.length);
  torch::Tensor ref = (Gathered(c) * c.q.unsqueeze(1)).sum(2) * c.valid.to(torch::kDouble);
  EXPECT_LT((fused - ref).abs().max().item<double>(), 1e-12);
  EXPECT_EQ(fused.masked_select(c.valid.logical_not()).abs().sum().item<double>(), 0.0) << "padding is 0";
  torch::Tensor g = torch::randn_like(ref);
  auto gf = torch::autograd::grad({fused}, {c.q, c.k}, {g});
  auto gr = torch::autograd::grad({ref}, {c.q, c.k}, {g});
  for (int i = 0; i < 2; ++i) EXPECT_LT((gf[i] - gr[i]).abs().max().item<double>(), 1e-12) << "grad " << i;
}

TEST(FusedOpsTest, GatherSumMatchesStockOpsInValueAndGradient) {
  Case c = RandomCase(41, 7, 9, 4, 2);
  torch::Tensor fused = GatherSum(c.w, c.k, c.nbr, c.length);
  torch::Tensor ref = (c.w.unsqueeze(2) * Gathered(c)).sum(1);
  EXPECT_LT((fused - ref).abs().max().item<double>(), 1e-12);
  torch::Tensor g = torch::randn_like(ref);
  auto gf = torch::autograd::grad({fused}, {c.w, c.k}, {g});
  auto gr = torch::autograd::grad({ref}, {c.w, c.k}, {g});
  // The weight gradient is only defined on valid slots (the fused op ignores padding).
  EXPECT_LT(((gf[0] - gr[0]) * c.valid.to(torch::kDouble)).abs().max().item<double>(), 1e-12);
  EXPECT_LT((gf[1] - gr[1]).abs().max().item<double>(), 1e-12);
}

TEST(FusedOpsTest, PassesTorchGradcheckInDouble) {
  Case c = RandomCase(9, 4, 5, 3, 3);
  auto dot = [&](const torch::Tensor& q, const torch::Tensor& k) { return GatherDot(q, k, c.nbr, c.length); };
  auto sum = [&](const torch::Tensor& w, const torch::Tensor& k) { return GatherSum(w, k, c.nbr, c.length); };
  const double eps = 1e-6;
  for (int which = 0; which < 2; ++which) {
    torch::Tensor a = which == 0 ? c.q : c.w;
    auto f = [&](const torch::Tensor& x, const torch::Tensor& k) { return which == 0 ? dot(x, k) : sum(x, k); };
    torch::Tensor out = f(a, c.k);
    torch::Tensor g = torch::randn_like(out);
    auto analytic = torch::autograd::grad({out}, {a, c.k}, {g});
    torch::NoGradGuard ng;
    for (int input = 0; input < 2; ++input) {
      torch::Tensor x = (input == 0 ? a : c.k).detach().clone();
      torch::Tensor flat = x.view(-1);
      for (int64_t i = 0; i < flat.numel(); ++i) {
        const double orig = flat[i].item<double>();
        flat[i] = orig + eps;
        double up = ((input == 0 ? f(x, c.k) : f(a, x)) * g).sum().item<double>();
        flat[i] = orig - eps;
        double down = ((input == 0 ? f(x, c.k) : f(a, x)) * g).sum().item<double>();
        flat[i] = orig;
        EXPECT_NEAR(analytic[input].view(-1)[i].item<double>(), (up - down) / (2 * eps), 1e-6)
            << "op " << which << " input " << input << " element " << i;
      }
    }
  }
}

TEST(FusedOpsTest, RejectsOutOfRangeIndicesAndBadShapes) {
  Case c = RandomCase(5, 3, 4, 2, 4);
  torch::Tensor bad = c.nbr.clone();
  bad[0][0] = 4;  // == S
  torch::Tensor full = torch::full({5}, 3, torch::kInt64);
  EXPECT_THROW(GatherDot(c.q, c.k, bad, full), c10::Error);
  EXPECT_THROW(GatherSum(c.w, c.k, bad, full), c10::Error);
  EXPECT_THROW(GatherDot(c.q, c.k, c.nbr.to(torch::kInt32), c.length), c10::Error);
  EXPECT_THROW(GatherDot(c.q.narrow(0, 0, 4), c.k, c.nbr, c.length), c10::Error);
  // An out-of-range index in a padding slot is never read.
  torch::Tensor zero = torch::zeros({5}, torch::kInt64);
  EXPECT_NO_THROW(GatherDot(c.q, c.k, bad, zero));
}

TEST(FusedOpsTest, DropoutKeepsOneMinusPScalesAndIsDeterministicUnderASeed) {
  // Never exactly zero, so that "kept" can be read off the output (randn gives an exact 0 about
  // once in 2^24 draws, and this test draws 10^5).
  torch::manual_seed(5);
  torch::Tensor x = (torch::rand({1000, 100}) + 0.5).requires_grad_(true);
  for (double p : {0.1, 0.3, 0.5}) {
    torch::manual_seed(11);
    torch::Tensor y = FusedDropout(x, p, true);
    torch::Tensor kept = y.detach().ne(0);
    const double keep_rate = kept.to(torch::kDouble).mean().item<double>();
    EXPECT_NEAR(keep_rate, 1 - p, 0.005) << p;  // 100k Bernoulli draws: sd ~ 0.0015
    // Kept elements are x / (1 - p).
    EXPECT_TRUE(torch::allclose(y.detach().masked_select(kept), x.detach().masked_select(kept) / (1 - p)));
    // Gradient: the same mask and scale.
    torch::Tensor g = torch::autograd::grad({y}, {x}, {torch::ones_like(y)})[0];
    EXPECT_TRUE(torch::allclose(g, kept.to(torch::kFloat) / (1 - p)));
    // Same seed, same mask; another seed, another mask. Neighbouring elements are not correlated.
    torch::manual_seed(11);
    EXPECT_TRUE(torch::equal(FusedDropout(x, p, true), y));
    torch::manual_seed(12);
    EXPECT_FALSE(torch::equal(FusedDropout(x, p, true), y));
    torch::Tensor k = kept.to(torch::kDouble).view(-1);
    const double both = (k.narrow(0, 0, k.numel() - 1) * k.narrow(0, 1, k.numel() - 1)).mean().item<double>();
    EXPECT_NEAR(both, (1 - p) * (1 - p), 0.01) << p;
  }
  // Not training, or p = 0: the identity.
  EXPECT_TRUE(torch::equal(FusedDropout(x, 0.3, false), x));
  EXPECT_TRUE(torch::equal(FusedDropout(x, 0.0, true), x));
  // The mask does not depend on the number of threads.
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  torch::manual_seed(5);
  torch::Tensor one = FusedDropout(x, 0.3, true);
  at::set_num_threads(2);
  torch::manual_seed(5);
  torch::Tensor two = FusedDropout(x, 0.3, true);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one, two));
}

TEST(FusedOpsTest, PackedGruMatchesTorchGruInValueAndGradient) {
  torch::manual_seed(3);
  const int64_t d_in = 5, hidden = 4;
  auto opts = torch::TensorOptions().dtype(torch::kDouble);
  torch::Tensor batch_sizes = torch::tensor({6, 6, 4, 3, 3, 1}, torch::kInt64);  // rows of lengths 6,5,5,3,2,2
  const int64_t total = batch_sizes.sum().item<int64_t>();
  torch::Tensor data = torch::randn({total, d_in}, opts).requires_grad_(true);
  torch::Tensor w_ih = (torch::randn({3 * hidden, d_in}, opts) * 0.5).requires_grad_(true);
  torch::Tensor w_hh = (torch::randn({3 * hidden, hidden}, opts) * 0.5).requires_grad_(true);
  torch::Tensor b_ih = torch::randn({3 * hidden}, opts).requires_grad_(true);
  torch::Tensor b_hh = torch::randn({3 * hidden}, opts).requires_grad_(true);
  std::vector<torch::Tensor> inputs{data, w_ih, w_hh, b_ih, b_hh};
  torch::Tensor fused = GruLast(data, batch_sizes, w_ih, w_hh, b_ih, b_hh);
  torch::Tensor h0 = torch::zeros({1, 6, hidden}, opts);
  torch::Tensor ref = std::get<1>(torch::gru(data, batch_sizes, h0, {w_ih, w_hh, b_ih, b_hh}, true, 1, 0.0, true, false))[0];
  EXPECT_LT((fused - ref).abs().max().item<double>(), 1e-12);
  torch::Tensor g = torch::randn_like(ref);
  auto gf = torch::autograd::grad({fused}, inputs, {g});
  auto gr = torch::autograd::grad({ref}, inputs, {g});
  for (size_t i = 0; i < inputs.size(); ++i) EXPECT_LT((gf[i] - gr[i]).abs().max().item<double>(), 1e-10) << "input " << i;
  // Bad packing is an error, not a wrong answer.
  EXPECT_THROW(GruLast(data, torch::tensor({6, 7, 4, 3, 3, 1}, torch::kInt64), w_ih, w_hh, b_ih, b_hh), c10::Error);
  EXPECT_THROW(GruLast(data, torch::tensor({6, 6, 4}, torch::kInt64), w_ih, w_hh, b_ih, b_hh), c10::Error);
}

// A random graph over NetConfig's 40 users and 30 items.
std::unique_ptr<store::TemporalGraph> RandomGraph(uint32_t seed, int num_edges) {
  std::mt19937 rng(seed);
  std::vector<store::Interaction> edges;
  for (int e = 0; e < num_edges; ++e) {
    edges.push_back({static_cast<store::NodeId>(rng() % 40), static_cast<store::NodeId>(rng() % 30),
                     static_cast<store::Timestamp>(rng() % 1000)});
  }
  return store::TemporalGraph::Build(edges, 40, 30);
}

DgsrConfig NetConfig(bool authors) {
  DgsrConfig c = authors ? DgsrConfig::Authors() : DgsrConfig::Paper();
  c.num_users = 40;
  c.num_items = 30;
  c.dim = 6;
  c.max_neighbors = 5;
  c.layers = 2;
  c.sampler_order = 2;
  return c;
}

// Fused and portable networks built from the same seed: same outputs and same gradients, for
// both presets and the GAT / GCN propagation variants.
TEST(FusedOpsTest, FusedAndPortableNetworksAgree) {
  auto graph = RandomGraph(5, 500);
  auto view = graph->Read();
  for (bool authors : {false, true}) {
    for (Propagation prop : {Propagation::kOrderAttention, Propagation::kGat, Propagation::kGcn}) {
      DgsrConfig c = NetConfig(authors);
      c.propagation = prop;
      c.feat_dropout = c.attn_dropout = 0;  // dropout masks are not part of the comparison
      auto fused = DgsrNetwork::Create(c, 3, GatherKernels::kFused);
      auto portable = DgsrNetwork::Create(c, 3, GatherKernels::kPortable);
      ASSERT_TRUE(fused.ok() && portable.ok());
      SubgraphSampler sampler(c, SubgraphSampler::Mode::kPruned);
      std::vector<SampleRequest> reqs;
      for (store::NodeId u = 0; u < 12; ++u) reqs.push_back({u, 400 + 40 * u});
      Blocks b;
      sampler.SampleBatch(view, reqs, &b);
      BlockTensors t = ToTensors(b, c, torch::kCPU);
      torch::Tensor targets = torch::randint(0, c.num_items, {12}, torch::kInt64);
      std::vector<torch::Tensor> reps, grads;
      for (auto* net : {fused->get(), portable->get()}) {
        net->SetTraining(true);
        auto rep = net->RepresentUnchecked(t);
        auto loss = torch::nll_loss(torch::log_softmax(net->ScoreAll(rep), 1), targets);
        loss.backward();
        reps.push_back(rep.detach());
        std::vector<torch::Tensor> g;
        for (auto& p : net->Parameters()) {  // the fused variant's embedding gradients are sparse
          g.push_back(!p.grad().defined() ? torch::zeros({p.numel()})
                                          : (p.grad().is_sparse() ? p.grad().to_dense() : p.grad()).reshape(-1));
        }
        grads.push_back(torch::cat(g));
      }
      EXPECT_LT((reps[0] - reps[1]).abs().max().item<double>(), 1e-5) << "authors=" << authors;
      EXPECT_LT((grads[0] - grads[1]).abs().max().item<double>(), 1e-5) << "authors=" << authors;
      EXPECT_GT(grads[0].abs().sum().item<double>(), 0);
    }
  }
}

// A batch of users without any history has no item rows at all (a new user asking for
// recommendations); every variant must answer it, with the same result.
TEST(FusedOpsTest, ColdUserBatchesWorkInEveryVariant) {
  const std::vector<store::Interaction> edges{{0, 0, 10}, {1, 1, 20}};
  auto graph = store::TemporalGraph::Build(edges, 40, 30);
  auto view = graph->Read();
  for (bool authors : {false, true}) {
    for (Propagation prop : {Propagation::kOrderAttention, Propagation::kGat, Propagation::kGcn}) {
      DgsrConfig c = NetConfig(authors);
      c.propagation = prop;
      SubgraphSampler sampler(c, SubgraphSampler::Mode::kPruned);
      std::vector<SampleRequest> reqs{{5, 100}, {6, 100}};  // users 5 and 6 have no edges
      Blocks b;
      sampler.SampleBatch(view, reqs, &b);
      BlockTensors t = ToTensors(b, c, torch::kCPU);
      ASSERT_EQ(t.item_ids.size(0), 0);
      std::vector<torch::Tensor> reps;
      for (GatherKernels k : {GatherKernels::kFused, GatherKernels::kPortable}) {
        auto net = DgsrNetwork::Create(c, 3, k);
        ASSERT_TRUE(net.ok());
        torch::NoGradGuard ng;
        auto rep = (*net)->Represent(t);
        ASSERT_TRUE(rep.ok()) << rep.status() << " authors=" << authors;
        reps.push_back(*rep);
      }
      EXPECT_TRUE(torch::allclose(reps[0], reps[1], 1e-6, 1e-7)) << "authors=" << authors;
    }
  }
}

TEST(FusedOpsTest, SavedArtifactsCarryOnlyPortableCode) {
  testing::TempDir dir;
  auto net = DgsrNetwork::Create(NetConfig(true), 1, GatherKernels::kFused);
  ASSERT_TRUE(net.ok());
  ASSERT_TRUE((*net)->Save(dir.Sub("m.pt"), JsonObject()).ok());
  torch::jit::Module raw = torch::jit::load(dir.Sub("m.pt"));
  int methods = 0;
  for (const auto& method : raw.get_methods()) {
    ++methods;
    EXPECT_EQ(method.graph()->toString().find("dgsr::"), std::string::npos) << method.name();
  }
  EXPECT_GT(methods, 10);
  auto loaded = DgsrNetwork::Load(dir.Sub("m.pt"), torch::kCPU);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ((*loaded)->kernels(), GatherKernels::kFused);
  // The stored (portable) code itself runs and agrees with the fused kernels, for both presets:
  // what torch.jit.load in Python, or a CUDA device, would execute.
  auto graph = RandomGraph(9, 400);
  auto view = graph->Read();
  for (bool authors : {false, true}) {
    auto net2 = DgsrNetwork::Create(NetConfig(authors), 4, GatherKernels::kFused);
    ASSERT_TRUE(net2.ok());
    ASSERT_TRUE((*net2)->Save(dir.Sub("p.pt"), JsonObject()).ok());
    auto stored = DgsrNetwork::Load(dir.Sub("p.pt"), torch::kCPU, GatherKernels::kPortable);
    auto fused = DgsrNetwork::Load(dir.Sub("p.pt"), torch::kCPU, GatherKernels::kFused);
    ASSERT_TRUE(stored.ok() && fused.ok());
    EXPECT_EQ((*stored)->kernels(), GatherKernels::kPortable);
    SubgraphSampler sampler((*stored)->config(), SubgraphSampler::Mode::kPruned);
    std::vector<SampleRequest> reqs;
    for (store::NodeId u = 0; u < 10; ++u) reqs.push_back({u, 500 + 40 * u});
    Blocks b;
    sampler.SampleBatch(view, reqs, &b);
    BlockTensors t = ToTensors(b, (*stored)->config(), torch::kCPU);
    torch::NoGradGuard ng;
    auto a = (*stored)->Represent(t), f = (*fused)->Represent(t);
    ASSERT_TRUE(a.ok() && f.ok());
    EXPECT_LT(((*stored)->ScoreAll(*a) - (*fused)->ScoreAll(*f)).abs().max().item<double>(), 1e-5) << authors;
  }
}

}  // namespace
}  // namespace dgsr::model
