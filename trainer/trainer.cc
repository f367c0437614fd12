#include "trainer/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <numeric>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/progress.h"
#include "common/status_macros.h"
#include "model/fused_ops.h"
#include "model/torch_runtime.h"
#include "trainer/adam.h"
#include "trainer/loss.h"
#include "trainer/run_state.h"
#include "trainer/training_loop.h"

namespace dgsr::trainer {
namespace {

using model::BlockTensors;
using model::Blocks;
using model::SampleRequest;
using model::SubgraphSampler;

struct Batch {
  BlockTensors blocks;
  torch::Tensor targets;
  int64_t size = 0;
};

Batch MakeBatch(SubgraphSampler& sampler, const store::TemporalGraph::ReadView& view,
                const model::DgsrConfig& config, std::span<const Sample> samples, Blocks* scratch,
                const torch::Device& device = torch::kCPU) {
  std::vector<SampleRequest> requests;
  std::vector<int64_t> targets;
  requests.reserve(samples.size());
  for (const Sample& s : samples) {
    requests.push_back({s.user, s.before, s.ties, s.others_before});
    targets.push_back(s.target);
  }
  sampler.SampleBatch(view, requests, scratch);
  Batch b;
  b.blocks = model::ToTensors(*scratch, config, device);
  b.targets = torch::tensor(targets, torch::kInt64).to(device);
  b.size = static_cast<int64_t>(samples.size());
  return b;
}

// The work one sample's sub-graph costs the network: the neighbour slots its first layer reads
// (every later layer reads a subset of them). Rows shared with other samples of a slice are
// counted once there, so a slice costs at most the sum of its samples'.
int64_t SampleCost(SubgraphSampler& sampler, const store::TemporalGraph::ReadView& view, const Sample& s,
                   Blocks* scratch) {
  const SampleRequest request{s.user, s.before, s.ties, s.others_before};
  sampler.SampleBatch(view, std::span<const SampleRequest>(&request, 1), scratch);
  int64_t cost = 0;
  const int64_t users = scratch->layer_users.empty() ? 0 : scratch->layer_users[0];
  const int64_t items = scratch->layer_items.empty() ? 0 : scratch->layer_items[0];
  for (int64_t r = 0; r < users; ++r) cost += scratch->user_len[r];
  for (int64_t r = 0; r < items; ++r) cost += scratch->item_len[r];
  return cost + 1;
}

// A batch's samples in at most `slices` parts of about equal work, each sampled as its own blocks
// (one per data-parallel thread; TrainOptions::train_threads): the step waits for its slowest
// slice, and sub-graph sizes vary several-fold between samples. Longest-processing-time first:
// samples by decreasing SampleCost, each to the slice with the least work so far (ties: the
// lower slice, the earlier sample), so the partition depends on the batch alone.
// Without `balance`, contiguous parts of equal size (the same-run reference of `dgsr bench train`).
std::vector<Batch> MakeSlices(SubgraphSampler& sampler, const store::TemporalGraph::ReadView& view,
                              const model::DgsrConfig& config, std::span<const Sample> samples, int slices,
                              bool balance, Blocks* scratch) {
  const size_t n = samples.size();
  const size_t parts = std::min<size_t>(std::max(slices, 1), std::max<size_t>(n, 1));
  if (parts <= 1) return {MakeBatch(sampler, view, config, samples, scratch)};
  if (!balance) {
    std::vector<Batch> out;
    const size_t per = (n + parts - 1) / parts;
    for (size_t b = 0; b < n; b += per) {
      out.push_back(MakeBatch(sampler, view, config, samples.subspan(b, std::min(per, n - b)), scratch));
    }
    return out;
  }
  std::vector<std::pair<int64_t, size_t>> by_cost;  // (cost, sample index)
  for (size_t k = 0; k < n; ++k) by_cost.emplace_back(SampleCost(sampler, view, samples[k], scratch), k);
  std::stable_sort(by_cost.begin(), by_cost.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::vector<Sample>> members(parts);
  std::vector<int64_t> load(parts, 0);
  for (const auto& [cost, k] : by_cost) {
    const size_t least = std::min_element(load.begin(), load.end()) - load.begin();
    load[least] += cost;
    members[least].push_back(samples[k]);
  }
  std::vector<Batch> out;
  for (const auto& m : members) out.push_back(MakeBatch(sampler, view, config, m, scratch));
  return out;
}

// Builds batches (as slices) on worker threads, handing them to the consumer strictly in batch
// order.
class BatchPipeline {
 public:
  BatchPipeline(const model::DgsrConfig& config, const store::TemporalGraph& graph,
                std::vector<std::vector<Sample>> batches, int threads, int depth, int slices, bool balance)
      : batches_(std::move(batches)), depth_(depth) {
    for (int t = 0; t < threads; ++t) {
      workers_.emplace_back([this, &config, &graph, t, threads, slices, balance] {
        SubgraphSampler sampler(config, SubgraphSampler::Mode::kPruned);
        Blocks scratch;
        for (size_t b = t; b < batches_.size(); b += threads) {
          {
            absl::MutexLock lock(&mu_);
            auto room = [this, b] { return stop_ || b < next_ + depth_; };
            mu_.Await(absl::Condition(&room));
            if (stop_) return;
          }
          std::vector<Batch> batch;
          const absl::Time start = absl::Now();
          {
            auto view = graph.Read();
            batch = MakeSlices(sampler, view, config, batches_[b], slices, balance, &scratch);
          }
          absl::MutexLock lock(&mu_);
          sampling_seconds_ += absl::ToDoubleSeconds(absl::Now() - start);
          ready_.emplace(b, std::move(batch));
        }
      });
    }
  }
  ~BatchPipeline() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    for (auto& w : workers_) w.join();
  }
  size_t size() const { return batches_.size(); }
  double sampling_seconds() {
    absl::MutexLock lock(&mu_);
    return sampling_seconds_;
  }
  double wait_seconds() const { return wait_seconds_; }
  // Blocks until batch `next_` is ready and returns its slices.
  std::vector<Batch> Next() {
    const absl::Time start = absl::Now();
    absl::MutexLock lock(&mu_);
    auto ready = [this] { return ready_.count(next_) > 0; };
    mu_.Await(absl::Condition(&ready));
    wait_seconds_ += absl::ToDoubleSeconds(absl::Now() - start);
    std::vector<Batch> b = std::move(ready_[next_]);
    ready_.erase(next_);
    ++next_;
    return b;
  }

 private:
  std::vector<std::vector<Sample>> batches_;
  size_t depth_;
  absl::Mutex mu_;
  std::map<size_t, std::vector<Batch>> ready_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  double sampling_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  double wait_seconds_ = 0;  // Only the consumer thread touches it.
  std::vector<std::thread> workers_;
};

}  // namespace

absl::StatusOr<EvalResult> Evaluate(model::DgsrNetwork& network, const Split& split, SplitPart part,
                                    const EvalOptions& options) {
  network.SetTraining(false);
  // NoGradGuard, not InferenceMode: a scripted module that has run with autograd fails on
  // inference tensors ("Inference tensors cannot be saved for backward") in libtorch 1.13.
  torch::NoGradGuard no_grad;
  SubgraphSampler sampler(network.config(), SubgraphSampler::Mode::kPruned);
  Blocks scratch;
  auto scorer = [&](std::span<const Sample> chunk, const store::TemporalGraph::ReadView& view,
                    std::vector<float>* scores) -> absl::Status {
    Batch batch = MakeBatch(sampler, view, network.config(), chunk, &scratch, network.device());
    try {
      torch::Tensor s = network.ScoreAll(network.RepresentUnchecked(batch.blocks));
      // A model newer than the split (dgsr eval --force) knows items the split does not: not ranked.
      s = s.narrow(1, 0, std::min<int64_t>(s.size(1), split.num_items)).to(torch::kCPU).contiguous();
      scores->assign(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("evaluation forward failed: ", e.what_without_backtrace()));
    }
    return absl::OkStatus();
  };
  return EvaluateWith(split, part, options, scorer);
}

namespace {

std::vector<std::vector<Sample>> EpochBatches(const Split& split, const TrainOptions& options,
                                              int batch_size, int epoch) {
  std::vector<Sample> order = split.train;
  std::mt19937_64 rng(EpochSeed(options.seed, epoch));
  std::shuffle(order.begin(), order.end(), rng);
  if (options.max_train_samples > 0 && static_cast<int64_t>(order.size()) > options.max_train_samples) {
    order.resize(options.max_train_samples);
  }
  std::vector<std::vector<Sample>> batches;
  for (size_t b = 0; b < order.size(); b += batch_size) {
    batches.emplace_back(order.begin() + b, order.begin() + std::min(order.size(), b + batch_size));
  }
  return batches;
}

// DGSR's half of the training loop (trainer/training_loop.h).
class DgsrTask : public TrainingTask {
 public:
  DgsrTask(const model::DgsrConfig& config, const Split& split, const TrainOptions& options)
      : config_(config), split_(split), options_(options) {}

  std::unique_ptr<model::DgsrNetwork> TakeNetwork() { return std::move(net_); }
  double sampling_seconds() const { return sampling_seconds_; }
  double wait_seconds() const { return wait_seconds_; }
  double optimizer_seconds() const { return optimizer_seconds_; }
  double slice_imbalance_seconds() const { return slice_imbalance_seconds_; }

  absl::Status Start() override {
    ASSIGN_OR_RETURN(net_, model::DgsrNetwork::Create(config_, options_.seed, options_.kernels));
    if (options_.warm_start != nullptr) {
      RETURN_IF_ERROR(CheckWarmStartConfig(options_.warm_start->config().ToJson(), config_.ToJson(),
                                           {"num_users", "num_items"},
                                           {"learning_rate", "l2", "batch_size", "warmup_steps"}));
      RETURN_IF_ERROR(net_->WarmStartFrom(*options_.warm_start));
      DGSR_LOG(INFO) << "warm start" << Kv("users", options_.warm_start->config().num_users)
                     << Kv("items", options_.warm_start->config().num_items) << Kv("new_users",
                     config_.num_users - options_.warm_start->config().num_users)
                     << Kv("new_items", config_.num_items - options_.warm_start->config().num_items);
    }
    MakeOptimizer();
    return absl::OkStatus();
  }
  absl::Status Resume(const std::string& network_path, const std::string& optimizer_path,
                      const std::string& checkpoint_dir) override {
    ASSIGN_OR_RETURN(net_, model::DgsrNetwork::Load(network_path, torch::kCPU, options_.kernels));
    RETURN_IF_ERROR(CheckResumedConfig(net_->config().ToJson(), config_.ToJson(), checkpoint_dir));
    for (auto& p : net_->Parameters()) p.set_requires_grad(true);
    MakeOptimizer();
    return optimizer_->Load(optimizer_path);
  }
  void SetLearningRate(double lr) override {
    lr_ = lr;
    optimizer_->set_lr(lr);
  }

  absl::Status TrainEpoch(int epoch, EpochStats* stats) override {
    net_->SetTraining(true);
    BatchPipeline pipeline(net_->config(), *split_.train_graph,
                           EpochBatches(split_, options_, config_.batch_size, epoch),
                           std::max(1, options_.sampler_threads), 8, std::max(1, options_.train_threads),
                           options_.balance_slices);
    const int64_t epoch_samples = options_.max_train_samples > 0
                                      ? std::min<int64_t>(options_.max_train_samples, split_.train.size())
                                      : static_cast<int64_t>(split_.train.size());
    ProgressBar bar(absl::StrCat("epoch ", epoch + 1, "/", options_.epochs), epoch_samples, "samples");
    for (size_t b = 0; b < pipeline.size(); ++b) {
      std::vector<Batch> slices = pipeline.Next();
      int64_t size = 0;
      for (const Batch& slice : slices) size += slice.size;
      try {
        double value;
        if (slices.size() == 1) {
          torch::Tensor rep = net_->RepresentUnchecked(slices[0].blocks);
          torch::Tensor loss = SoftmaxCrossEntropy(net_->ScoreAll(rep), slices[0].targets);
          value = loss.item<double>();
          RETURN_IF_ERROR(CheckFiniteLoss(value, epoch + 1, b));
          loss.backward();
        } else {
          value = SlicedForwardBackward(slices, size);
          RETURN_IF_ERROR(CheckFiniteLoss(value, epoch + 1, b));
        }
        if (config_.warmup_steps > 0) {  // the metrics log's "lr" ends as the epoch's last step's
          const int64_t step = static_cast<int64_t>(epoch) * static_cast<int64_t>(pipeline.size()) +
                               static_cast<int64_t>(b);
          stats->lr = lr_ * WarmupFactor(step, config_.warmup_steps);
          optimizer_->set_lr(stats->lr);
        }
        const absl::Time optimizer_start = absl::Now();
        optimizer_->Step();
        optimizer_seconds_ += absl::ToDoubleSeconds(absl::Now() - optimizer_start);
        stats->loss_sum += value * size;
        stats->samples += size;
      } catch (const c10::Error& e) {
        return absl::InternalError(absl::StrCat("training step failed: ", e.what_without_backtrace()));
      }
      bar.Add(size);
    }
    bar.Finish();
    sampling_seconds_ += pipeline.sampling_seconds();
    wait_seconds_ += pipeline.wait_seconds();
    return absl::OkStatus();
  }
  absl::StatusOr<EvalResult> Evaluate(SplitPart part) override {
    return trainer::Evaluate(*net_, split_, part, options_.eval);
  }
  absl::Status SaveNetwork(const std::string& path) override { return net_->Save(path, JsonObject()); }
  absl::Status SaveOptimizer(const std::string& path) override { return optimizer_->Save(path); }
  absl::Status LoadBest(const std::string& path) override {
    optimizer_.reset();
    ASSIGN_OR_RETURN(net_, model::DgsrNetwork::Load(path, torch::kCPU));
    return absl::OkStatus();
  }

 private:
  // The forward and backward of one batch given as slices, one slice per intra-op thread. Each
  // slice's mean loss is scaled by its share of the batch, so the gradients add up to those of
  // the batch's mean loss; they are summed in slice order and set as the parameters' gradients.
  // Dropout draws each slice's seed from the default generator in slice order. Returns the batch's mean loss.
  double SlicedForwardBackward(std::vector<Batch>& slices, int64_t batch_size) {
    const size_t count = slices.size();
    std::vector<uint64_t> seeds(count);
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      for (uint64_t& seed : seeds) seed = gen.get<at::CPUGeneratorImpl>()->random64();
    }
    std::vector<torch::Tensor> params = net_->Parameters();
    std::vector<std::vector<torch::Tensor>> grads(count);
    std::vector<double> losses(count), seconds(count);
    // Inside the parallel region every op of a slice runs on its own thread (nested parallel_for
    // runs inline).
    at::parallel_for(0, static_cast<int64_t>(count), 1, [&](int64_t begin, int64_t end) {
      for (int64_t s = begin; s < end; ++s) {
        const absl::Time start = absl::Now();
        model::ScopedDropoutStream stream(seeds[s]);
        torch::Tensor rep = net_->RepresentUnchecked(slices[s].blocks);
        torch::Tensor loss = SoftmaxCrossEntropy(net_->ScoreAll(rep), slices[s].targets) *
                             (static_cast<double>(slices[s].size) / static_cast<double>(batch_size));
        losses[s] = loss.item<double>();
        grads[s] = torch::autograd::grad({loss}, params, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                         /*allow_unused=*/true);
        seconds[s] = absl::ToDoubleSeconds(absl::Now() - start);
      }
    });
    slice_imbalance_seconds_ += *std::max_element(seconds.begin(), seconds.end()) -
                                std::accumulate(seconds.begin(), seconds.end(), 0.0) / static_cast<double>(count);
    for (size_t j = 0; j < params.size(); ++j) {
      torch::Tensor sum;
      for (size_t s = 0; s < count; ++s) {
        if (grads[s][j].defined()) sum = sum.defined() ? sum + grads[s][j] : grads[s][j];
      }
      params[j].mutable_grad() = sum;
    }
    return std::accumulate(losses.begin(), losses.end(), 0.0);
  }

  void MakeOptimizer() {
    AdamOptions adam;
    adam.lr = config_.learning_rate;
    adam.weight_decay = config_.l2;
    optimizer_ = std::make_unique<FusedAdam>(net_->Parameters(), adam);
  }

  const model::DgsrConfig& config_;
  const Split& split_;
  const TrainOptions& options_;
  std::unique_ptr<model::DgsrNetwork> net_;
  std::unique_ptr<FusedAdam> optimizer_;
  double lr_ = 0;  // The epoch's rate (after decay), before warm-up.
  double sampling_seconds_ = 0, wait_seconds_ = 0, optimizer_seconds_ = 0, slice_imbalance_seconds_ = 0;
};

}  // namespace

double WarmupFactor(int64_t step, int warmup_steps) {
  if (warmup_steps <= 0) return 1.0;
  return std::min(1.0, static_cast<double>(step + 1) / static_cast<double>(warmup_steps));
}

absl::StatusOr<TrainResult> Train(const model::DgsrConfig& config, const Split& split,
                                  const TrainOptions& options) {
  if (split.train.empty()) {
    return absl::InvalidArgumentError("no training samples: every user needs at least 4 interactions to train on");
  }
  RETURN_IF_ERROR(config.Validate());
  if (config.num_users != split.num_users || config.num_items != split.num_items) {
    return absl::InvalidArgumentError("config id spaces must match the split's");
  }
  int threads = options.torch_threads > 0 ? options.torch_threads
                                          : static_cast<int>(std::thread::hardware_concurrency());
  model::ConfigureTorchRuntime(std::max(threads, options.train_threads));
  DgsrTask task(config, split, options);
  const LoopOptions loop = MakeLoopOptions(options, config.learning_rate, "", "dgsr_run_");
  TrainResult result;
  ASSIGN_OR_RETURN(static_cast<LoopResult&>(result), RunTrainingLoop(task, loop));
  result.network = task.TakeNetwork();
  result.sampling_seconds = task.sampling_seconds();
  result.wait_seconds = task.wait_seconds();
  result.optimizer_seconds = task.optimizer_seconds();
  result.slice_imbalance_seconds = task.slice_imbalance_seconds();
  return result;
}

}  // namespace dgsr::trainer
