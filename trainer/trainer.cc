#include "trainer/trainer.h"

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
#include "trainer/adam.h"
#include "trainer/loss.h"
#include "trainer/run_state.h"

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
    requests.push_back({s.user, s.before});
    targets.push_back(s.target);
  }
  sampler.SampleBatch(view, requests, scratch);
  Batch b;
  b.blocks = model::ToTensors(*scratch, config, device);
  b.targets = torch::tensor(targets, torch::kInt64).to(device);
  b.size = static_cast<int64_t>(samples.size());
  return b;
}

// Builds batches on worker threads, handing them to the consumer strictly in batch order.
class BatchPipeline {
 public:
  BatchPipeline(const model::DgsrConfig& config, const store::TemporalGraph& graph,
                std::vector<std::vector<Sample>> batches, int threads, int depth)
      : batches_(std::move(batches)), depth_(depth) {
    for (int t = 0; t < threads; ++t) {
      workers_.emplace_back([this, &config, &graph, t, threads] {
        SubgraphSampler sampler(config, SubgraphSampler::Mode::kPruned);
        Blocks scratch;
        for (size_t b = t; b < batches_.size(); b += threads) {
          {
            absl::MutexLock lock(&mu_);
            auto room = [this, b] { return stop_ || b < next_ + depth_; };
            mu_.Await(absl::Condition(&room));
            if (stop_) return;
          }
          Batch batch;
          const absl::Time start = absl::Now();
          {
            auto view = graph.Read();
            batch = MakeBatch(sampler, view, config, batches_[b], &scratch);
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
  // Blocks until batch `next_` is ready and returns it.
  Batch Next() {
    const absl::Time start = absl::Now();
    absl::MutexLock lock(&mu_);
    auto ready = [this] { return ready_.count(next_) > 0; };
    mu_.Await(absl::Condition(&ready));
    wait_seconds_ += absl::ToDoubleSeconds(absl::Now() - start);
    Batch b = std::move(ready_[next_]);
    ready_.erase(next_);
    ++next_;
    return b;
  }

 private:
  std::vector<std::vector<Sample>> batches_;
  size_t depth_;
  absl::Mutex mu_;
  std::map<size_t, Batch> ready_ ABSL_GUARDED_BY(mu_);
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
      torch::Tensor s = network.ScoreAll(network.RepresentUnchecked(batch.blocks)).to(torch::kCPU).contiguous();
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

}  // namespace

absl::StatusOr<TrainResult> Train(const model::DgsrConfig& config, const Split& split,
                                  const TrainOptions& options) {
  if (split.train.empty()) {
    return absl::InvalidArgumentError("no training samples: every user needs at least 4 interactions to train on");
  }
  RETURN_IF_ERROR(config.Validate());
  if (config.num_users != split.num_users || config.num_items != split.num_items) {
    return absl::InvalidArgumentError("config id spaces must match the split's");
  }
  RETURN_IF_ERROR(CheckLrDecay(options.lr_decay));
  model::ConfigureTorchRuntime(options.torch_threads);
  ASSIGN_OR_RETURN(std::unique_ptr<RunCheckpoint> ck, RunCheckpoint::Open(options.checkpoint_dir, "dgsr_run_"));
  RunState run = ck->state();
  std::unique_ptr<model::DgsrNetwork> net;
  if (ck->resumed()) {
    ASSIGN_OR_RETURN(net, model::DgsrNetwork::Load(ck->network_path(), torch::kCPU, options.kernels));
    RETURN_IF_ERROR(CheckResumedConfig(net->config().ToJson(), config.ToJson(), ck->dir()));
    for (auto& p : net->Parameters()) p.set_requires_grad(true);
    DGSR_LOG(INFO) << "resuming" << Kv("checkpoint", ck->dir()) << Kv("next_epoch", run.next_epoch);
  } else {
    ASSIGN_OR_RETURN(net, model::DgsrNetwork::Create(config, options.seed, options.kernels));
  }
  RETURN_IF_ERROR(ck->TrimMetricsLog(options.log_path));
  AdamOptions adam_options;
  adam_options.lr = config.learning_rate;
  adam_options.weight_decay = config.l2;
  FusedAdam optimizer(net->Parameters(), adam_options);
  if (ck->resumed()) RETURN_IF_ERROR(optimizer.Load(ck->optimizer_path()));

  TrainResult result;
  double total_seconds = 0;
  int64_t total_samples = 0;
  for (int epoch = run.next_epoch; epoch < options.epochs; ++epoch) {
    if (ShouldStop(run, options.patience)) break;
    torch::manual_seed(EpochSeed(options.seed, epoch));
    const double lr = config.learning_rate * run.lr_scale;
    optimizer.set_lr(lr);
    net->SetTraining(true);
    BatchPipeline pipeline(net->config(), *split.train_graph, EpochBatches(split, options, config.batch_size, epoch),
                           std::max(1, options.sampler_threads), 8);
    const int64_t epoch_samples = options.max_train_samples > 0
                                      ? std::min<int64_t>(options.max_train_samples, split.train.size())
                                      : static_cast<int64_t>(split.train.size());
    ProgressBar bar(absl::StrCat("epoch ", epoch + 1, "/", options.epochs), epoch_samples, "samples");
    double loss_sum = 0;
    int64_t loss_n = 0;
    const absl::Time start = absl::Now();
    for (size_t b = 0; b < pipeline.size(); ++b) {
      Batch batch = pipeline.Next();
      try {
        torch::Tensor rep = net->RepresentUnchecked(batch.blocks);
        torch::Tensor loss = SoftmaxCrossEntropy(net->ScoreAll(rep), batch.targets);
        const double value = loss.item<double>();
        RETURN_IF_ERROR(CheckFiniteLoss(value, epoch + 1, b));
        loss.backward();
        optimizer.Step();
        loss_sum += value * batch.size;
        loss_n += batch.size;
      } catch (const c10::Error& e) {
        return absl::InternalError(absl::StrCat("training step failed: ", e.what_without_backtrace()));
      }
      bar.Add(batch.size);
    }
    bar.Finish();
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    total_seconds += seconds;
    result.sampling_seconds += pipeline.sampling_seconds();
    result.wait_seconds += pipeline.wait_seconds();
    total_samples += loss_n;
    ASSIGN_OR_RETURN(EvalResult valid, Evaluate(*net, split, SplitPart::kValid, options.eval));
    const bool improved = RecordValidation(&run, epoch, valid.sampled.Ndcg(10), options.lr_decay);
    if (improved) result.valid = valid;
    const JsonObject line = EpochMetrics(valid, "", {epoch, loss_sum, loss_n, seconds, lr}, improved);
    DGSR_LOG(INFO) << "epoch " << line.Dump();
    RETURN_IF_ERROR(AppendMetricsLine(options.log_path, line));
    RETURN_IF_ERROR(ck->Commit(
        run, improved, [&](const std::string& path) { return net->Save(path, JsonObject()); },
        [&](const std::string& path) { return optimizer.Save(path); }));
  }
  if (run.best_epoch < 0) return absl::FailedPreconditionError("no epoch was trained");
  ASSIGN_OR_RETURN(result.network, model::DgsrNetwork::Load(ck->best_path(), torch::kCPU));
  result.best_epoch = run.best_epoch + 1;
  if (result.valid.sampled.count() == 0) {
    ASSIGN_OR_RETURN(result.valid, Evaluate(*result.network, split, SplitPart::kValid, options.eval));
  }
  ASSIGN_OR_RETURN(result.test, Evaluate(*result.network, split, SplitPart::kTest, options.eval));
  result.train_seconds = total_seconds;
  result.samples_per_second = total_samples / std::max(total_seconds, 1e-9);
  return result;
}

}  // namespace dgsr::trainer
