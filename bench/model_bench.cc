#include "bench/model_bench.h"

#include <sys/resource.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/dataset.h"
#include "common/json.h"
#include "model/dgsr_network.h"
#include "model/torch_runtime.h"
#include "trainer/adam.h"
#include "trainer/loss.h"
#include "trainer/split.h"
#include "trainer/trainer.h"

ABSL_FLAG(std::string, bench_dataset, "amazon-games-sasrec", "dataset folder in ../shared/data");
ABSL_FLAG(std::string, bench_preset, "inductive",
          "model preset for bench model/train: inductive (the trainer's default), paper, authors or modern");
ABSL_FLAG(int, bench_layers, 2, "L for bench model/train");
ABSL_FLAG(int, bench_order, 3, "m for bench model/train");
ABSL_FLAG(int, bench_batch_size, 50, "training batch size for bench model/train (the prototype used 50)");
ABSL_FLAG(int, bench_threads, 1,
          "bench model: libtorch threads (the issue's figures are per core); bench train: data-parallel training "
          "threads (TrainOptions::train_threads), measured against 1 thread in the same run when > 1");
ABSL_FLAG(int, bench_samples, 20000, "sub-graphs per setting for bench sampler");
ABSL_FLAG(int, bench_steps, 30, "training steps timed by bench model/train");
ABSL_FLAG(std::string, bench_export_inputs, "", "bench model: write model.pt and input blocks (batch 1/8/64) with CPU scores here, for the GPU check (scripts/gpu_check.py), then stop");
ABSL_FLAG(std::string, bench_profile, "", "bench model: write a libtorch profiler trace of the training steps here");

namespace dgsr::bench {
namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

struct Loaded {
  BenchDataset data;
  trainer::Split split;
  model::DgsrConfig config;  // --bench_preset/--bench_layers/--bench_order over the split's ids
};

absl::StatusOr<model::DgsrConfig> BenchConfig(const trainer::Split& split) {
  auto c = model::PresetByName(absl::GetFlag(FLAGS_bench_preset));
  if (!c.ok()) return c.status();
  c->num_users = split.num_users;
  c->num_items = split.num_items;
  c->layers = absl::GetFlag(FLAGS_bench_layers);
  c->sampler_order = absl::GetFlag(FLAGS_bench_order);
  c->batch_size = absl::GetFlag(FLAGS_bench_batch_size);
  return c;
}

absl::StatusOr<Loaded> Load() {
  auto data = LoadBenchDataset(absl::GetFlag(FLAGS_bench_dataset));
  if (!data.ok()) return data.status();
  auto split = trainer::BuildSplit(*data->graph, trainer::CrossUserTime::kAuto);
  if (!split.ok()) return split.status();
  std::printf("dataset %s: %lld users, %lld items, %lld interactions; %zu training samples\n",
              data->name.c_str(), static_cast<long long>(data->users), static_cast<long long>(data->items),
              static_cast<long long>(data->interactions), split->train.size());
  auto config = BenchConfig(*split);
  if (!config.ok()) return config.status();
  return Loaded{*std::move(data), *std::move(split), *config};
}

std::vector<model::SampleRequest> Requests(const std::vector<trainer::Sample>& samples, size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<model::SampleRequest> out;
  for (size_t k = 0; k < count; ++k) {
    const auto& s = samples[rng() % samples.size()];
    out.push_back({s.user, s.before, s.ties, s.others_before});
  }
  return out;
}

// Multiply-adds x 2 of one forward pass plus full-catalogue scoring, from the block shapes: an
// estimate (padding slots counted, elementwise work ignored) for comparing with a GEMM.
double EstimateForwardFlops(const model::Blocks& b, const model::DgsrConfig& c) {
  const double d = c.dim, n = c.max_neighbors;
  double flops = 0;
  double src_users = static_cast<double>(b.user_ids.size()), src_items = static_cast<double>(b.item_ids.size());
  for (int l = 0; l < c.layers; ++l) {
    const double nu = static_cast<double>(b.layer_users[l]), ni = static_cast<double>(b.layer_items[l]);
    flops += 2 * (src_users + src_items) * d * d;                      // W1 / W2 projections
    for (auto [rows, width] : {std::pair{nu, static_cast<double>(b.user_width)}, std::pair{ni, static_cast<double>(b.item_width)}}) {
      flops += 2 * rows * d * d;                                       // query
      flops += 2 * rows * width * d * 2 + 2 * rows * n * d * 2;        // eq. 1/5: keys, values, p^K, p^V
      if (c.local == model::LocalMode::kGru) flops += 2 * rows * width * 3 * d * d * 2;  // eq. 6
      else flops += 2 * rows * width * d * 2;
      flops += 2 * rows * 3 * d * d;                                   // eq. 7
    }
    src_users = nu;
    src_items = ni;
  }
  const double parts = c.layers + (c.include_layer0 ? 1 : 0) + (c.last_item ? 1 : 0);
  flops += 2 * b.num_anchors * parts * d * d;                          // W_P
  flops += 2 * b.num_anchors * d * c.num_items;                        // eq. 12 over all items
  return flops;
}


int Fail(const absl::Status& s) {
  std::fprintf(stderr, "dgsr bench: %s\n", s.ToString().c_str());
  return s.code() == absl::StatusCode::kNotFound ? 4 : 1;
}

}  // namespace

int RunSamplerBench(const std::vector<std::string>&) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  auto loaded = Load();
  if (!loaded.ok()) return Fail(loaded.status());
  const auto& split = loaded->split;
  const int count = absl::GetFlag(FLAGS_bench_samples);
  JsonObject out;
  out.Set("bench", "sampler").Set("dataset", loaded->data.name).Set("n", 50).Set("layers", 2);
  auto view = split.train_graph->Read();
  std::printf("%-8s %-8s %14s %12s\n", "m", "mode", "subgraphs/s", "edges/sample");
  for (int m = 1; m <= 4; ++m) {
    for (auto mode : {model::SubgraphSampler::Mode::kPruned, model::SubgraphSampler::Mode::kFull}) {
      const bool pruned = mode == model::SubgraphSampler::Mode::kPruned;
      model::DgsrConfig c = model::DgsrConfig::Paper();
      c.num_users = split.num_users;
      c.num_items = split.num_items;
      c.sampler_order = m;
      c.max_neighbors = 50;
      c.layers = 2;
      model::SubgraphSampler sampler(c, mode);
      const int n = pruned ? count : std::max(200, count / 50);
      auto reqs = Requests(split.train, n, 7);
      model::Blocks blocks;
      int64_t edges = 0, slots = 0;
      auto start = Clock::now();
      for (size_t b = 0; b < reqs.size(); b += 50) {
        sampler.SampleBatch(view, std::span(reqs).subspan(b, std::min<size_t>(50, reqs.size() - b)), &blocks);
        edges += blocks.num_edges();
        slots += static_cast<int64_t>(blocks.user_nbr.size() + blocks.item_nbr.size());
      }
      double rate = n / Seconds(Clock::now() - start);
      std::printf("%-8d %-8s %14.0f %12.1f\n", m, pruned ? "pruned" : "full", rate, static_cast<double>(edges) / n);
      const std::string key = absl::StrCat("m", m, pruned ? "_pruned" : "_full");
      out.Set(key + "_subgraphs_per_s", rate).Set(key + "_edges_per_sample", static_cast<double>(edges) / n);
      if (m == 3 && pruned) out.Set("subgraphs_per_s_per_core", rate);
      if (pruned) out.Set(key + "_padded_slot_use", static_cast<double>(edges) / std::max<int64_t>(slots, 1));
    }
  }
  out.Set("reference_python_prototype_subgraphs_per_s", 42000);
  std::printf("%s\n", out.Dump().c_str());
  return 0;
}

int RunModelBench(const std::vector<std::string>&) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  auto loaded = Load();
  if (!loaded.ok()) return Fail(loaded.status());
  const auto& split = loaded->split;
  const model::DgsrConfig* config = &loaded->config;
  model::ConfigureTorchRuntime(absl::GetFlag(FLAGS_bench_threads));
  auto net = model::DgsrNetwork::Create(*config, 1);
  if (!net.ok()) return Fail(net.status());
  JsonObject out;
  out.Set("bench", "model").Set("dataset", loaded->data.name).Set("preset", absl::GetFlag(FLAGS_bench_preset));
  out.Set("layers", config->layers).Set("order", config->sampler_order).Set("threads", absl::GetFlag(FLAGS_bench_threads));
  auto view = split.full_graph->Read();
  model::SubgraphSampler pruned(*config, model::SubgraphSampler::Mode::kPruned);
  model::SubgraphSampler full(*config, model::SubgraphSampler::Mode::kFull);
  model::Blocks blocks;
  (*net)->SetTraining(false);
  if (const std::string dir = absl::GetFlag(FLAGS_bench_export_inputs); !dir.empty()) {
    // Inputs for checking the artifact elsewhere (another libtorch, a GPU): each file is a
    // TorchScript module whose attributes are the block tensors and the CPU scores.
    torch::NoGradGuard no_grad;
    std::filesystem::create_directories(dir);
    auto status = (*net)->Save(dir + "/model.pt", JsonObject());
    if (!status.ok()) return Fail(status);
    for (int batch : {1, 8, 64}) {
      auto reqs = Requests(split.test, batch, 21);
      pruned.SampleBatch(view, reqs, &blocks);
      auto t = model::ToTensors(blocks, *config, torch::kCPU);
      auto scores = (*net)->ScoreAll((*net)->RepresentUnchecked(t));
      torch::jit::Module m("Inputs");
      auto add = [&](const char* name, const torch::Tensor& v) { m.register_buffer(name, v); };
      add("user_ids", t.user_ids); add("item_ids", t.item_ids); add("user_nbr", t.user_nbr);
      add("user_len", t.user_len); add("item_nbr", t.item_nbr); add("item_len", t.item_len);
      add("last_item", t.last_item); add("expected_scores", scores);
      add("layer_users", torch::tensor(t.layer_users, torch::kInt64));
      add("layer_items", torch::tensor(t.layer_items, torch::kInt64));
      add("num_anchors", torch::tensor(t.num_anchors, torch::kInt64));
      m.save(absl::StrCat(dir, "/inputs_b", batch, ".pt"));
    }
    std::printf("wrote %s/model.pt and inputs_b{1,8,64}.pt\n", dir.c_str());
    return 0;
  }
  {
    torch::NoGradGuard no_grad;
    // Forward latency per request batch (sampling + tensors + forward + scoring all items).
    for (int batch : {1, 8, 64}) {
      auto reqs = Requests(split.test, 20 * batch + 400, 11);
      std::vector<double> ms;
      double flops = 0;
      for (size_t b = 0; b + batch <= reqs.size(); b += batch) {
        auto start = Clock::now();
        pruned.SampleBatch(view, std::span(reqs).subspan(b, batch), &blocks);
        flops += EstimateForwardFlops(blocks, *config);
        auto t = model::ToTensors(blocks, *config, torch::kCPU);
        auto scores = (*net)->ScoreAll((*net)->RepresentUnchecked(t));
        ms.push_back(1000 * Seconds(Clock::now() - start));
      }
      ms.erase(ms.begin(), ms.begin() + std::min<size_t>(ms.size() / 5, 10));  // warm-up
      std::printf("forward batch %-3d p50 %.3f ms  p99 %.3f ms  (sampling, forward and scoring %lld items)\n", batch,
                  Percentile(ms, 0.5), Percentile(ms, 0.99), static_cast<long long>(split.num_items));
      out.Set(absl::StrCat("forward_p50_ms_batch", batch), Percentile(ms, 0.5));
      out.Set(absl::StrCat("forward_p99_ms_batch", batch), Percentile(ms, 0.99));
      double total_ms = 0;
      for (double m : ms) total_ms += m;
      const double gflops = flops / (reqs.size() / batch) / (total_ms / ms.size() / 1000) / 1e9;
      out.Set(absl::StrCat("achieved_gflops_batch", batch), gflops);
      std::printf("  estimated %.1f MFLOP per batch, %.2f GFLOP/s achieved\n", flops / (reqs.size() / batch) / 1e6, gflops);
    }
    // Pruned blocks against the full sub-graph: same requests, same network, one request at a
    // time. The full m-order sub-graph of the paper's sampler explodes with m (every neighbour's
    // n most recent neighbours, no window), so the comparison uses the authors' sampler at the
    // configured m (their k_hop = 3, as in the prototype) and the paper's at m = 2.
    for (auto variant : {model::SamplerVariant::kAuthors, model::SamplerVariant::kPaper}) {
      model::DgsrConfig c = *config;
      c.sampler_variant = variant;
      if (variant == model::SamplerVariant::kPaper) c.sampler_order = std::min(c.sampler_order, 2);
      model::SubgraphSampler p(c, model::SubgraphSampler::Mode::kPruned);
      model::SubgraphSampler f(c, model::SubgraphSampler::Mode::kFull);
      auto reqs = Requests(split.test, 24, 13);
      double t_pruned = 0, t_full = 0, max_diff = 0;
      int64_t edges_pruned = 0, edges_full = 0;
      for (size_t k = 0; k < reqs.size(); ++k) {
        auto sub = std::span(reqs).subspan(k, 1);
        auto s0 = Clock::now();
        p.SampleBatch(view, sub, &blocks);
        edges_pruned += blocks.num_edges();
        auto a = (*net)->RepresentUnchecked(model::ToTensors(blocks, c, torch::kCPU));
        auto s1 = Clock::now();
        f.SampleBatch(view, sub, &blocks);
        edges_full += blocks.num_edges();
        auto full_rep = (*net)->RepresentUnchecked(model::ToTensors(blocks, c, torch::kCPU));
        auto s2 = Clock::now();
        if (k >= 4) {
          t_pruned += Seconds(s1 - s0);
          t_full += Seconds(s2 - s1);
        }
        max_diff = std::max(max_diff, (a - full_rep).abs().max().item<double>());
      }
      const double n = static_cast<double>(reqs.size());
      const std::string v = variant == model::SamplerVariant::kAuthors ? "authors" : "paper";
      std::printf("pruned vs full, %s sampler, m=%d, batch 1: %.2f ms vs %.2f ms, speed-up %.1fx, edges %.0f vs %.0f per sample, max |diff| %.2e\n",
                  v.c_str(), c.sampler_order, 1000 * t_pruned / (n - 4), 1000 * t_full / (n - 4), t_full / t_pruned,
                  edges_pruned / n, edges_full / n, max_diff);
      const std::string prefix = variant == model::SamplerVariant::kAuthors ? "" : "paper_sampler_";
      out.Set(prefix + "pruned_speedup", t_full / t_pruned).Set(prefix + "pruned_max_abs_diff", max_diff);
      out.Set(prefix + "pruned_edges_per_sample", edges_pruned / n).Set(prefix + "full_edges_per_sample", edges_full / n);
    }
    // Same-run GEMM reference.
    auto x = torch::randn({1000, 1000}), y = torch::randn({1000, 1000});
    torch::matmul(x, y);
    auto g0 = Clock::now();
    for (int k = 0; k < 10; ++k) torch::matmul(x, y);
    double gemm_gflops = 10 * 2e9 / 1e9 / Seconds(Clock::now() - g0);
    out.Set("gemm_gflops", gemm_gflops);
    out.Set("achieved_vs_gemm_batch64", out.GetNumber("achieved_gflops_batch64").value_or(0) / gemm_gflops);
    std::printf("GEMM 1000x1000 on %d thread(s): %.1f GFLOP/s\n", absl::GetFlag(FLAGS_bench_threads), gemm_gflops);
  }
  // One training step at batch 50, split into its parts.
  {
    (*net)->SetTraining(true);
    auto params = (*net)->Parameters();
    trainer::AdamOptions adam_options;
    adam_options.lr = config->learning_rate;
    adam_options.weight_decay = config->l2;
    trainer::FusedAdam adam(params, adam_options);
    std::mt19937_64 rng(5);
    double t_sample = 0, t_fwd = 0, t_bwd = 0, t_step = 0;
    const int steps = absl::GetFlag(FLAGS_bench_steps);
    auto train_view = split.train_graph->Read();
    std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
    for (int s = 0; s < steps + 3; ++s) {
      if (s == 3 && !absl::GetFlag(FLAGS_bench_profile).empty()) {
        profile = std::make_unique<torch::autograd::profiler::RecordProfile>(absl::GetFlag(FLAGS_bench_profile));
      }
      std::vector<model::SampleRequest> reqs;
      std::vector<int64_t> targets;
      for (int k = 0; k < config->batch_size; ++k) {
        const auto& smp = split.train[rng() % split.train.size()];
        reqs.push_back({smp.user, smp.before, smp.ties, smp.others_before});
        targets.push_back(smp.target);
      }
      auto a = Clock::now();
      pruned.SampleBatch(train_view, reqs, &blocks);
      auto t = model::ToTensors(blocks, *config, torch::kCPU);
      auto b = Clock::now();
      auto loss = trainer::SoftmaxCrossEntropy((*net)->ScoreAll((*net)->RepresentUnchecked(t)),
                                               torch::tensor(targets, torch::kInt64));
      auto c = Clock::now();
      loss.backward();
      auto d = Clock::now();
      adam.Step();
      auto e = Clock::now();
      if (s >= 3) {
        t_sample += Seconds(b - a);
        t_fwd += Seconds(c - b);
        t_bwd += Seconds(d - c);
        t_step += Seconds(e - d);
      }
    }
    profile.reset();
    const double per = 1000.0 / steps;
    std::printf("training step, batch %d: sampling %.1f ms, forward %.1f ms, backward %.1f ms, Adam %.1f ms -> %.0f samples/s\n",
                config->batch_size, t_sample * per, t_fwd * per, t_bwd * per, t_step * per,
                steps * config->batch_size / (t_sample + t_fwd + t_bwd + t_step));
    out.Set("step_sampling_ms", t_sample * per).Set("step_forward_ms", t_fwd * per);
    out.Set("step_backward_ms", t_bwd * per).Set("step_adam_ms", t_step * per);
  }
  std::printf("%s\n", out.Dump().c_str());
  return 0;
}

int RunTrainBench(const std::vector<std::string>&) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  auto loaded = Load();
  if (!loaded.ok()) return Fail(loaded.status());
  const auto& split = loaded->split;
  const model::DgsrConfig* config = &loaded->config;
  const int steps = absl::GetFlag(FLAGS_bench_steps);
  const int threads = std::max(1, absl::GetFlag(FLAGS_bench_threads));
  trainer::TrainOptions options;
  options.epochs = 1;
  options.torch_threads = 1;
  options.eval.max_samples = 200;  // Training speed is what is measured; evaluation is kept tiny.
  options.eval.full_ranking = false;
  options.eval.show_progress = false;
  // Same-run reference: the same training with the portable stock-op network (no fused kernels),
  // over a third of the steps, measured first.
  trainer::TrainOptions reference = options;
  reference.kernels = model::GatherKernels::kPortable;
  reference.max_train_samples = static_cast<int64_t>(std::max(steps / 3, 5)) * config->batch_size;
  auto portable = trainer::Train(*config, split, reference);
  if (!portable.ok()) return Fail(portable.status());
  options.max_train_samples = static_cast<int64_t>(steps) * config->batch_size;
  // With --bench_threads=N > 1: 1 thread, N threads, and N threads with slices of equal sample
  // count instead of equal work, alternating twice; best of two each.
  std::vector<double> one_thread, n_threads, n_unbalanced;
  absl::StatusOr<trainer::TrainResult> result, unbalanced_result;
  for (int round = 0; round < (threads > 1 ? 2 : 1); ++round) {
    for (int phase : threads > 1 ? std::vector<int>{1, 2, 3} : std::vector<int>{1}) {
      options.train_threads = phase == 1 ? 1 : threads;
      options.balance_slices = phase != 3;
      auto run = trainer::Train(*config, split, options);
      if (!run.ok()) return Fail(run.status());
      (phase == 1 ? one_thread : phase == 2 ? n_threads : n_unbalanced).push_back(run->samples_per_second);
      std::printf("  %d training thread(s)%s: %.0f samples/s\n", options.train_threads,
                  phase == 3 ? ", slices of equal sample count" : "", run->samples_per_second);
      (phase == 3 ? unbalanced_result : result) = std::move(run);
    }
  }
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  const double rate_1 = *std::max_element(one_thread.begin(), one_thread.end());
  const double rate = threads > 1 ? *std::max_element(n_threads.begin(), n_threads.end()) : rate_1;
  const double epoch_minutes = static_cast<double>(split.train.size()) / rate / 60;
  if (threads > 1) {
    std::printf("training with %d threads: %.0f samples/s, 1 thread in the same run: %.0f samples/s (best of two each): "
                "%.2fx\n", threads, rate, rate_1, rate / rate_1);
  }
  std::printf("training %s preset, L=%d, batch %d, %d training thread(s): %.0f samples/s (portable stock-op network, "
              "same run: %.0f samples/s, %.2fx); sampling %.1f%% of the training time (on a worker thread), the "
              "training loop waited %.1f%%; peak RSS %.0f MB; epoch of %zu samples ~ %.1f min\n",
              absl::GetFlag(FLAGS_bench_preset).c_str(), config->layers, config->batch_size, threads,
              rate, portable->samples_per_second, rate / portable->samples_per_second,
              100 * result->sampling_seconds / result->train_seconds,
              100 * result->wait_seconds / result->train_seconds, usage.ru_maxrss / 1024.0, split.train.size(),
              epoch_minutes);
  JsonObject out;
  out.Set("bench", "train").Set("dataset", loaded->data.name).Set("preset", absl::GetFlag(FLAGS_bench_preset));
  out.Set("layers", config->layers).Set("batch_size", config->batch_size).Set("train_threads", threads);
  out.Set("samples", options.max_train_samples).Set("samples_per_s", rate);
  if (threads > 1) {
    out.Set("samples_per_s_1_thread", rate_1).Set(absl::StrCat("speedup_", threads, "_threads"), rate / rate_1);
    const double unbalanced = *std::max_element(n_unbalanced.begin(), n_unbalanced.end());
    out.Set(absl::StrCat("speedup_", threads, "_threads_equal_count_slices"), unbalanced / rate_1);
    out.Set("slice_imbalance_share_equal_count_slices",
            unbalanced_result->slice_imbalance_seconds / unbalanced_result->train_seconds);
  }
  out.Set("portable_samples_per_s", portable->samples_per_second);
  out.Set("speedup_vs_portable", rate / portable->samples_per_second);
  out.Set("sampling_share", result->sampling_seconds / result->train_seconds);
  out.Set("wait_share", result->wait_seconds / result->train_seconds);
  // Of the last (N-thread) run: the optimiser step, and the time lost waiting for the slowest slice.
  out.Set("optimizer_share", result->optimizer_seconds / result->train_seconds);
  out.Set("slice_imbalance_share", result->slice_imbalance_seconds / result->train_seconds);
  out.Set("peak_rss_mb", usage.ru_maxrss / 1024.0).Set("epoch_minutes_estimate", epoch_minutes);
  out.Set("reference_python_prototype_samples_per_s", 1050).Set("target_samples_per_s", 1600);
  std::printf("%s\n", out.Dump().c_str());
  return 0;
}

}  // namespace dgsr::bench
