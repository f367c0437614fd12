// serving_check: the serving path of the project's own C++ model code, timed stage by stage on
// the CPU and, when the linked libtorch has CUDA and a GPU is visible, on CUDA in the same run.
//
//   sampling (SubgraphSampler::SampleBatch, always CPU) -> ToTensors (+ host-to-device copy)
//   -> DgsrNetwork::Represent (= ValidateBlocks + forward, timed apart) -> ScoreAll (all items)
//   -> top-10 (torch::topk on the device, then values and ids copied to the CPU)
//
// The graph is synthetic, sized like Amazon Games (SASRec version: ~31k users, ~23.7k items,
// ~287k interactions), with power-law (Zipf) item popularity and at least 5 items per user.
// The CPU network runs the fused kernels (what CPU serving runs); the CUDA network is the same
// weights saved as an artifact and loaded with DgsrNetwork::Load(path, torch::kCUDA) (portable
// TorchScript). Everything runs under torch::NoGradGuard; on CUDA every stage ends with
// torch::cuda::synchronize(), and a second loop times the whole path with no synchronisation
// but the final copy of the top-10 ("e2e_nosync").
//
// Usage: serving_check [--reps=200] [--warmup=20] [--max_seconds=12] [--threads=0]
//                      [--batches=1,8,32,128] [--users=31000] [--items=23700]
//                      [--interactions=287000] [--zipf=1.0] [--seed=1] [--device=all|cpu|cuda]
//                      [--gpu_name=NAME] [--require_cuda=1]
// Prints a human table, then one JSON object as the last line.
#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/json.h"
#include "model/config.h"
#include "model/dgsr_network.h"
#include "model/sampler.h"
#include "model/torch_runtime.h"
#include "store/temporal_graph.h"

namespace dgsr {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Options {
  int reps = 200;
  int warmup = 20;
  double max_seconds = 12;  // per (device, batch) case, after warm-up; at least min(30, reps) reps
  int threads = 0;          // libtorch intra-op threads (0 = all cores)
  std::vector<int> batches{1, 8, 32, 128};
  int users = 31000;
  int items = 23700;
  int64_t interactions = 287000;
  double zipf = 1.0;
  uint64_t seed = 1;
  std::string device = "all";
  bool require_cuda = false;  // exit 1 when CUDA is unavailable
  std::string gpu_name;
  bool jit_optimize = false;  // turn TorchScript's optimising graph executor back on (inference only)
};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "serving_check: error: %s\n", message.c_str());
  std::exit(1);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos) Die("bad argument '" + arg + "' (want --key=value)");
    const std::string key = arg.substr(2, eq - 2), value = arg.substr(eq + 1);
    try {
      if (key == "reps") o.reps = std::stoi(value);
      else if (key == "warmup") o.warmup = std::stoi(value);
      else if (key == "max_seconds") o.max_seconds = std::stod(value);
      else if (key == "threads") o.threads = std::stoi(value);
      else if (key == "users") o.users = std::stoi(value);
      else if (key == "items") o.items = std::stoi(value);
      else if (key == "interactions") o.interactions = std::stoll(value);
      else if (key == "zipf") o.zipf = std::stod(value);
      else if (key == "seed") o.seed = std::stoull(value);
      else if (key == "device") o.device = value;
      else if (key == "gpu_name") o.gpu_name = value;
      else if (key == "require_cuda") o.require_cuda = value == "1" || value == "true";
      else if (key == "jit_optimize") o.jit_optimize = value == "1" || value == "true";
      else if (key == "batches") {
        o.batches.clear();
        size_t start = 0;
        while (start <= value.size()) {
          size_t comma = value.find(',', start);
          if (comma == std::string::npos) comma = value.size();
          o.batches.push_back(std::stoi(value.substr(start, comma - start)));
          start = comma + 1;
        }
      } else {
        Die("unknown flag --" + key);
      }
    } catch (const std::exception&) {
      Die("bad value in '" + arg + "'");
    }
  }
  if (o.reps < 1 || o.warmup < 0 || o.users < 1 || o.items < 2 || o.interactions < 5LL * o.users) {
    Die("need reps >= 1, warmup >= 0, users >= 1, items >= 2, interactions >= 5 * users");
  }
  if (o.device != "all" && o.device != "cpu" && o.device != "cuda") Die("--device must be all, cpu or cuda");
  for (int b : o.batches) {
    if (b < 1) Die("batch sizes must be >= 1");
  }
  return o;
}

// Amazon-Games-like interactions: every user has >= 5 distinct items (a 5-core-like floor; the
// rest geometric so the total matches exactly), items drawn by Zipf popularity over a random
// permutation of the ids, times strictly increasing per user (exponential gaps).
std::vector<store::Interaction> Synthesize(const Options& o) {
  std::mt19937_64 rng(o.seed);
  std::vector<double> cdf(o.items);
  double acc = 0;
  for (int r = 0; r < o.items; ++r) cdf[r] = (acc += 1.0 / std::pow(r + 1.0, o.zipf));
  std::vector<store::NodeId> perm(o.items);
  for (int i = 0; i < o.items; ++i) perm[i] = static_cast<store::NodeId>(i);
  std::shuffle(perm.begin(), perm.end(), rng);

  const int max_len = std::min(o.items / 2, 2000);
  const double mean_extra = std::max(0.0, static_cast<double>(o.interactions) / o.users - 5.0);
  std::geometric_distribution<int> extra(1.0 / (mean_extra + 1.0));
  std::vector<int> len(o.users);
  int64_t total = 0;
  for (int u = 0; u < o.users; ++u) total += (len[u] = std::min(max_len, 5 + extra(rng)));
  std::uniform_int_distribution<int> any_user(0, o.users - 1);
  while (total < o.interactions) {
    int u = any_user(rng);
    if (len[u] < max_len) ++len[u], ++total;
  }
  while (total > o.interactions) {
    int u = any_user(rng);
    if (len[u] > 5) --len[u], --total;
  }

  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::exponential_distribution<double> gap(1.0 / (3 * 86400.0));  // mean 3 days
  std::vector<store::Interaction> edges;
  edges.reserve(total);
  std::vector<store::NodeId> mine;
  for (int u = 0; u < o.users; ++u) {
    store::Timestamp t = 1500000000 + static_cast<store::Timestamp>(unit(rng) * 2 * 365 * 86400.0);
    mine.clear();
    while (static_cast<int>(mine.size()) < len[u]) {
      const double x = unit(rng) * acc;
      const int r = std::min<int>(o.items - 1, static_cast<int>(std::upper_bound(cdf.begin(), cdf.end(), x) - cdf.begin()));
      const store::NodeId item = perm[r];
      if (std::find(mine.begin(), mine.end(), item) != mine.end()) continue;
      mine.push_back(item);
      t += 1 + static_cast<store::Timestamp>(gap(rng));
      edges.push_back({static_cast<store::NodeId>(u), item, t});
    }
  }
  return edges;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double pos = q * (v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

void Sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

const char* kStages[] = {"sample", "to_tensors", "validate", "forward", "score_all", "topk", "total", "e2e_nosync"};
constexpr int kNumStages = 8;

struct CaseResult {
  std::string device;
  int batch = 0;
  int reps = 0;
  std::vector<double> samples[kNumStages];
  double user_rows = 0, item_rows = 0, edges = 0;  // mean sub-graph size per batch
};

using Batch = std::vector<model::SampleRequest>;

struct Bench {
  const Options& o;
  const store::TemporalGraph& graph;
  const model::DgsrConfig& config;
  model::SubgraphSampler sampler;
  model::Blocks blocks;

  Bench(const Options& opts, const store::TemporalGraph& g, const model::DgsrConfig& c)
      : o(opts), graph(g), config(c), sampler(c, model::SubgraphSampler::Mode::kPruned) {}

  void Sample(const Batch& reqs) {
    auto view = graph.Read();
    sampler.SampleBatch(view, reqs, &blocks);
  }

  torch::Tensor Scores(model::DgsrNetwork& net, const Batch& reqs) {
    Sample(reqs);
    auto t = model::ToTensors(blocks, config, net.device());
    auto rep = net.Represent(t);
    if (!rep.ok()) Die(std::string(rep.status().message()));
    return net.ScoreAll(*rep).to(torch::kCPU);
  }

  CaseResult Run(model::DgsrNetwork& net, const std::vector<Batch>& pool, int batch) {
    const torch::Device device = net.device();
    CaseResult r;
    r.device = device.is_cuda() ? "cuda" : "cpu";
    r.batch = batch;
    const int min_reps = std::min(30, o.reps);
    // Staged loop: each stage ends with a synchronisation on CUDA.
    Clock::time_point started;
    for (int i = 0; i < o.warmup + o.reps; ++i) {
      if (i == o.warmup) started = Clock::now();
      if (i >= o.warmup + min_reps && Ms(started, Clock::now()) > 1000 * o.max_seconds) break;
      const Batch& reqs = pool[i % pool.size()];
      const auto t0 = Clock::now();
      Sample(reqs);
      const auto t1 = Clock::now();
      model::BlockTensors bt = model::ToTensors(blocks, config, device);
      Sync(device);
      const auto t2 = Clock::now();
      absl::Status valid = net.ValidateBlocks(bt);
      if (!valid.ok()) Die(std::string(valid.message()));
      Sync(device);
      const auto t3 = Clock::now();
      torch::Tensor rep = net.RepresentUnchecked(bt);
      Sync(device);
      const auto t4 = Clock::now();
      torch::Tensor scores = net.ScoreAll(rep);
      Sync(device);
      const auto t5 = Clock::now();
      auto [values, ids] = torch::topk(scores, 10, /*dim=*/1);
      torch::Tensor top_ids = ids.to(torch::kCPU), top_values = values.to(torch::kCPU);
      Sync(device);
      const auto t6 = Clock::now();
      if (top_ids.size(0) != batch) Die("top-k has the wrong shape");
      if (i < o.warmup) continue;
      const double ms[] = {Ms(t0, t1), Ms(t1, t2), Ms(t2, t3), Ms(t3, t4), Ms(t4, t5), Ms(t5, t6), Ms(t0, t6)};
      for (int s = 0; s < 7; ++s) r.samples[s].push_back(ms[s]);
      r.user_rows += static_cast<double>(blocks.user_ids.size());
      r.item_rows += static_cast<double>(blocks.item_ids.size());
      r.edges += static_cast<double>(blocks.num_edges());
    }
    r.reps = static_cast<int>(r.samples[0].size());
    r.user_rows /= r.reps;
    r.item_rows /= r.reps;
    r.edges /= r.reps;
    // End-to-end loop without intermediate synchronisation (the serving call as it would run):
    // Represent (with validation) and ScoreAll queue their work; the top-10 copy waits for it.
    for (int i = 0; i < o.warmup / 2 + r.reps; ++i) {
      const Batch& reqs = pool[i % pool.size()];
      const auto t0 = Clock::now();
      Sample(reqs);
      model::BlockTensors bt = model::ToTensors(blocks, config, device);
      auto rep = net.Represent(bt);
      if (!rep.ok()) Die(std::string(rep.status().message()));
      torch::Tensor scores = net.ScoreAll(*rep);
      auto [values, ids] = torch::topk(scores, 10, /*dim=*/1);
      torch::Tensor top_ids = ids.to(torch::kCPU), top_values = values.to(torch::kCPU);
      const auto t1 = Clock::now();
      if (i >= o.warmup / 2) r.samples[7].push_back(Ms(t0, t1));
    }
    return r;
  }
};

struct Agreement {
  double max_abs_diff = 0;
  double max_abs_score = 0;
  double top10_same_set = 0;  // fraction of rows whose top-10 id sets agree
  int64_t rows = 0;
};

void Compare(const torch::Tensor& cpu, const torch::Tensor& cuda, Agreement* a) {
  a->max_abs_diff = std::max(a->max_abs_diff, (cpu - cuda).abs().max().item<double>());
  a->max_abs_score = std::max(a->max_abs_score, cpu.abs().max().item<double>());
  auto ic = std::get<1>(torch::topk(cpu, 10, 1)).sort(1);
  auto ig = std::get<1>(torch::topk(cuda, 10, 1)).sort(1);
  const auto same = std::get<0>(ic).eq(std::get<0>(ig)).all(1).sum().item<int64_t>();
  a->top10_same_set = (a->top10_same_set * a->rows + same) / static_cast<double>(a->rows + cpu.size(0));
  a->rows += cpu.size(0);
}

}  // namespace
}  // namespace dgsr

int main(int argc, char** argv) {
  using namespace dgsr;
  // As the dgsr binary does (cli/main.cc): libgomp reads OMP_WAIT_POLICY when it is loaded, and
  // spinning OpenMP workers starve other threads on a busy machine; set it and re-exec once.
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);  // On failure, carry on with the default policy.
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const Options o = ParseArgs(argc, argv);
  model::ConfigureTorchRuntime(o.threads, o.jit_optimize);
  std::printf("graph executor optimisation: %s\n", o.jit_optimize ? "on" : "off (as ConfigureTorchRuntime sets it)");
  torch::NoGradGuard no_grad;

  const bool cuda_available = torch::cuda::is_available();
  const bool run_cpu = o.device != "cuda";
  const bool run_cuda = o.device != "cpu" && cuda_available;
  std::printf("serving_check: libtorch %s, intra-op threads %d (OMP_WAIT_POLICY=%s), CUDA %s (%lld device(s))%s\n",
              TORCH_VERSION, at::get_num_threads(), std::getenv("OMP_WAIT_POLICY"),
              cuda_available ? "available" : "UNAVAILABLE", static_cast<long long>(torch::cuda::device_count()),
              cuda_available ? "" : ": measuring the CPU only");
  if ((o.device == "cuda" || o.require_cuda) && !cuda_available) {
    Die("CUDA is required (--device=cuda or --require_cuda=1) but unavailable: this libtorch has no CUDA, "
        "libtorch_cuda was not linked in, or no GPU is visible");
  }

  // ---- The graph.
  auto t0 = Clock::now();
  std::vector<store::Interaction> edges = Synthesize(o);
  auto graph = store::TemporalGraph::Build(edges, static_cast<store::NodeId>(o.users), static_cast<store::NodeId>(o.items));
  int64_t max_item_degree = 0, items_with_edges = 0;
  {
    auto view = graph->Read();
    for (int i = 0; i < o.items; ++i) {
      const int64_t d = view.ItemDegree(static_cast<store::NodeId>(i), store::kMaxTime);
      max_item_degree = std::max(max_item_degree, d);
      items_with_edges += d > 0;
    }
  }
  std::printf("graph: %d users, %d items (%lld with interactions, max degree %lld), %zu interactions, zipf %.2f; built in %.1f s\n",
              o.users, o.items, static_cast<long long>(items_with_edges), static_cast<long long>(max_item_degree),
              edges.size(), o.zipf, Ms(t0, Clock::now()) / 1000);

  // ---- The networks: CPU (fused kernels) and the same weights on CUDA via a saved artifact.
  model::DgsrConfig config = model::DgsrConfig::Inductive();
  config.num_users = o.users;
  config.num_items = o.items;
  config.layers = 2;
  config.max_neighbors = 50;
  auto cpu_net = model::DgsrNetwork::Create(config, /*seed=*/7, model::GatherKernels::kFused);
  if (!cpu_net.ok()) Die(std::string(cpu_net.status().message()));
  (*cpu_net)->SetTraining(false);
  std::unique_ptr<model::DgsrNetwork> cuda_net;
  if (run_cuda) {
    const std::string path = (std::filesystem::temp_directory_path() /
                              absl::StrCat("dgsr_serving_check_", getpid(), ".pt")).string();
    absl::Status saved = (*cpu_net)->Save(path, JsonObject().Set("tool", "serving_check"));
    if (!saved.ok()) Die(std::string(saved.message()));
    auto loaded = model::DgsrNetwork::Load(path, torch::kCUDA);
    std::filesystem::remove(path);
    if (!loaded.ok()) Die(absl::StrCat("loading the artifact on CUDA: ", loaded.status().message()));
    cuda_net = std::move(*loaded);
    cuda_net->SetTraining(false);
  }
  std::printf("config: inductive preset, layers %d, max_neighbors %d, dim %d, sampler order %d (pruned blocks), "
              "requests at t = +inf (whole history visible)\n",
              config.layers, config.max_neighbors, config.dim, config.sampler_order);

  // ---- Request pools (the same for both devices).
  Bench bench(o, *graph, config);
  std::map<int, std::vector<Batch>> pools;
  {
    std::mt19937_64 rng(o.seed + 1000);
    std::uniform_int_distribution<int> any_user(0, o.users - 1);
    for (int b : o.batches) {
      auto& pool = pools[b];
      pool.resize(std::min(o.warmup + o.reps, 512));
      for (Batch& batch : pool) {
        for (int k = 0; k < b; ++k) {
          batch.push_back({static_cast<store::NodeId>(any_user(rng)), store::kMaxTime});
        }
      }
    }
  }

  JsonObject json;
  json.Set("tool", "serving_check").Set("torch_version", TORCH_VERSION).Set("cuda_available", cuda_available);
  json.Set("gpu_name", o.gpu_name).Set("threads", static_cast<int>(at::get_num_threads()));
  json.Set("omp_wait_policy", std::getenv("OMP_WAIT_POLICY"));
  json.Set("users", o.users).Set("items", o.items).Set("interactions", static_cast<int64_t>(edges.size()));
  json.Set("zipf", o.zipf).Set("max_item_degree", max_item_degree);
  json.Set("layers", config.layers).Set("max_neighbors", config.max_neighbors).Set("dim", config.dim);
  json.Set("reps_max", o.reps).Set("warmup", o.warmup);

  // ---- Agreement of CPU (fused) and CUDA (portable) scores.
  if (run_cuda) {
    auto& ctx = at::globalContext();
    const bool tf32_cudnn = ctx.allowTF32CuDNN(), tf32_cublas = ctx.allowTF32CuBLAS();
    Agreement def, strict;
    for (int b : o.batches) {
      for (int k = 0; k < 2; ++k) {
        const Batch& reqs = pools[b][k];
        torch::Tensor cpu = bench.Scores(**cpu_net, reqs);
        Compare(cpu, bench.Scores(*cuda_net, reqs), &def);
        ctx.setAllowTF32CuDNN(false);
        ctx.setAllowTF32CuBLAS(false);
        Compare(cpu, bench.Scores(*cuda_net, reqs), &strict);
        ctx.setAllowTF32CuDNN(tf32_cudnn);
        ctx.setAllowTF32CuBLAS(tf32_cublas);
      }
    }
    std::printf("agreement CPU(fused) vs CUDA(portable) over %lld rows: max |diff| %.3g (libtorch defaults: TF32 cuDNN %s, "
                "cuBLAS %s), %.3g with TF32 off; max |score| %.3g; top-10 id sets equal in %.1f%% / %.1f%% of rows\n",
                static_cast<long long>(def.rows), def.max_abs_diff, tf32_cudnn ? "on" : "off", tf32_cublas ? "on" : "off",
                strict.max_abs_diff, def.max_abs_score, 100 * def.top10_same_set, 100 * strict.top10_same_set);
    json.Set("max_abs_score_diff", def.max_abs_diff).Set("max_abs_score_diff_tf32_off", strict.max_abs_diff);
    json.Set("max_abs_score", def.max_abs_score).Set("top10_same_frac", def.top10_same_set);
    json.Set("top10_same_frac_tf32_off", strict.top10_same_set);
    json.Set("tf32_cudnn_default", tf32_cudnn).Set("tf32_cublas_default", tf32_cublas);
  }

  // ---- Timing.
  std::vector<CaseResult> results;
  for (int pass = 0; pass < 2; ++pass) {
    model::DgsrNetwork* net = pass == 0 ? (run_cpu ? cpu_net->get() : nullptr) : cuda_net.get();
    if (net == nullptr) continue;
    for (int b : o.batches) {
      auto t = Clock::now();
      results.push_back(bench.Run(*net, pools[b], b));
      std::fprintf(stderr, "  timed %s batch %d: %d reps in %.1f s\n", results.back().device.c_str(), b,
                   results.back().reps, Ms(t, Clock::now()) / 1000);
    }
  }

  std::printf("\nper-stage latency in ms, p50 / p99 (sample: CPU always; stages on CUDA end with a synchronize)\n");
  std::printf("%-5s %5s %5s %9s %9s | %-15s %-15s %-15s %-15s %-15s %-15s | %-15s %-15s\n", "dev", "batch", "reps",
              "users/b", "items/b", "sample", "to_tensors", "validate", "forward", "score_all", "topk", "total",
              "e2e_nosync");
  for (const CaseResult& r : results) {
    std::printf("%-5s %5d %5d %9.0f %9.0f |", r.device.c_str(), r.batch, r.reps, r.user_rows, r.item_rows);
    for (int s = 0; s < kNumStages; ++s) {
      const double p50 = Percentile(r.samples[s], 0.5), p99 = Percentile(r.samples[s], 0.99);
      std::printf(" %6.3f/%-8.3f", p50, p99);
      if (s == 5) std::printf(" |");
      const std::string key = absl::StrCat(r.device, "_b", r.batch, "_", kStages[s]);
      json.Set(key + "_p50_ms", p50).Set(key + "_p99_ms", p99);
    }
    std::printf("\n");
    json.Set(absl::StrCat(r.device, "_b", r.batch, "_reps"), r.reps);
    json.Set(absl::StrCat(r.device, "_b", r.batch, "_user_rows"), r.user_rows);
    json.Set(absl::StrCat(r.device, "_b", r.batch, "_item_rows"), r.item_rows);
    json.Set(absl::StrCat(r.device, "_b", r.batch, "_edges"), r.edges);
  }
  std::printf("(validate = DgsrNetwork::ValidateBlocks, forward = RepresentUnchecked; Represent = both. total = sum of "
              "the stages; e2e_nosync = the same path with no synchronisation until the top-10 copy)\n");
  if (!cuda_available) std::printf("CUDA is unavailable: CPU only.\n");
  std::printf("%s\n", json.Dump().c_str());
  return 0;
}
