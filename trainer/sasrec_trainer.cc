#include "trainer/sasrec_trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <random>
#include <string>

#include <dlfcn.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/progress.h"
#include "common/status_macros.h"
#include "model/dgsr_network.h"
#include "model/torch_runtime.h"
#include "trainer/export.h"
#include "trainer/loss.h"
#include "trainer/run_state.h"
#include "trainer/training_loop.h"

namespace dgsr::trainer {
namespace {

using model::SasRecConfig;
using model::SasRecNetwork;

// Threads of the BLAS under libtorch (see SasRecTrainOptions::blas_threads). Debian's BLIS
// exports no thread setter and reads BLIS_NUM_THREADS once, at its first call.
void SetBlasThreads(int threads) {
  setenv("BLIS_NUM_THREADS", std::to_string(threads).c_str(), /*overwrite=*/1);
  using OpenBlasSetter = void (*)(int);
  if (void* f = ::dlsym(RTLD_DEFAULT, "openblas_set_num_threads")) reinterpret_cast<OpenBlasSetter>(f)(threads);
}

struct Batch {
  torch::Tensor inputs;     // [B, T] shifted ids, right-aligned
  torch::Tensor positions;  // flat indices into B*T of the positions with a target
  torch::Tensor targets;    // item ids, one per position
  int64_t size = 0;         // number of targets
};

Batch MakeBatch(const std::vector<std::vector<int64_t>>& sequences, std::span<const int64_t> users) {
  int64_t width = 1;
  for (int64_t u : users) width = std::max<int64_t>(width, static_cast<int64_t>(sequences[u].size()) - 1);
  std::vector<int64_t> inputs(users.size() * width, 0), positions, targets;
  for (size_t r = 0; r < users.size(); ++r) {
    const std::vector<int64_t>& seq = sequences[users[r]];
    const int64_t m = static_cast<int64_t>(seq.size()) - 1;
    const int64_t row = static_cast<int64_t>(r) * width + (width - m);
    for (int64_t j = 0; j < m; ++j) {
      inputs[row + j] = seq[j] + 1;
      positions.push_back(row + j);
      targets.push_back(seq[j + 1]);
    }
  }
  Batch b;
  b.inputs = torch::tensor(inputs, torch::kInt64).view({static_cast<int64_t>(users.size()), width});
  b.positions = torch::tensor(positions, torch::kInt64);
  b.targets = torch::tensor(targets, torch::kInt64);
  b.size = static_cast<int64_t>(targets.size());
  return b;
}

absl::Status SaveAdam(torch::optim::Adam& opt, const std::string& path) {
  try {
    torch::save(opt, path);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot save optimizer state: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

std::vector<int64_t> EpochUsers(size_t num_sequences, const SasRecTrainOptions& options, int epoch) {
  std::vector<int64_t> order(num_sequences);
  for (size_t k = 0; k < num_sequences; ++k) order[k] = static_cast<int64_t>(k);
  std::mt19937_64 rng(EpochSeed(options.seed, epoch));
  std::shuffle(order.begin(), order.end(), rng);
  if (options.max_train_users > 0 && static_cast<int64_t>(order.size()) > options.max_train_users) {
    order.resize(options.max_train_users);
  }
  return order;
}

}  // namespace

std::vector<std::vector<int64_t>> SasRecTrainingSequences(const Split& split, int max_len) {
  std::vector<std::vector<int64_t>> out;
  auto view = split.train_graph->Read();
  std::vector<store::NodeId> items;
  std::vector<store::Timestamp> times;
  const int64_t window = std::max(1, max_len);
  for (int64_t u = 0; u < split.num_users; ++u) {
    view.UserSequence(static_cast<store::NodeId>(u), &items, &times);
    // Windows of max_len + 1 items ending at the last item, then every max_len items earlier;
    // neighbours share one item, so each target (items 1 .. n-1) is in exactly one window.
    for (int64_t end = static_cast<int64_t>(items.size()) - 1; end >= 1; end -= window) {
      const int64_t begin = std::max<int64_t>(0, end - window);
      out.emplace_back(items.begin() + begin, items.begin() + end + 1);
    }
  }
  return out;
}

absl::StatusOr<EvalResult> EvaluateSasRec(SasRecNetwork& network, const Split& split, SplitPart part,
                                          const EvalOptions& options) {
  network.SetTraining(false);
  // NoGradGuard, not InferenceMode (see model/sasrec_network.h).
  torch::NoGradGuard no_grad;
  const SasRecConfig& config = network.config();
  std::vector<store::NodeId> recent(config.max_len);
  std::vector<std::vector<int64_t>> sequences;
  auto scorer = [&](std::span<const Sample> chunk, const store::TemporalGraph::ReadView& view,
                    std::vector<float>* scores) -> absl::Status {
    sequences.resize(chunk.size());
    for (size_t k = 0; k < chunk.size(); ++k) {
      const int n = view.RecentItems(chunk[k].user, {store::kMinTime, chunk[k].before, chunk[k].ties}, config.max_len,
                                     recent.data(), nullptr);
      sequences[k].assign(recent.begin(), recent.begin() + n);
    }
    try {
      torch::Tensor seq = model::PackSequences(sequences, config).to(network.device());
      torch::Tensor s = network.ScoreAll(network.RepresentUnchecked(seq));
      // A model newer than the split (dgsr eval --force) knows items the split does not: not ranked.
      s = s.narrow(1, 0, std::min<int64_t>(s.size(1), split.num_items)).to(torch::kCPU).contiguous();
      scores->assign(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("SASRec evaluation forward failed: ", e.what_without_backtrace()));
    }
    return absl::OkStatus();
  };
  return EvaluateWith(split, part, options, scorer);
}

namespace {

// SASRec+'s half of the training loop (trainer/training_loop.h).
class SasRecTask : public TrainingTask {
 public:
  SasRecTask(const SasRecConfig& config, const Split& split, const SasRecTrainOptions& options,
             std::vector<std::vector<int64_t>> sequences)
      : config_(config), split_(split), options_(options), sequences_(std::move(sequences)) {}

  std::unique_ptr<SasRecNetwork> TakeNetwork() { return std::move(net_); }

  absl::Status Start() override {
    ASSIGN_OR_RETURN(net_, SasRecNetwork::Create(config_, options_.seed));
    if (options_.warm_start != nullptr) {
      RETURN_IF_ERROR(CheckWarmStartConfig(options_.warm_start->config().ToJson(), config_.ToJson(), {"num_items"},
                                           {"learning_rate", "l2", "batch_size"}));
      RETURN_IF_ERROR(net_->WarmStartFrom(*options_.warm_start));
      DGSR_LOG(INFO) << "warm start SASRec" << Kv("items", options_.warm_start->config().num_items)
                     << Kv("new_items", config_.num_items - options_.warm_start->config().num_items);
    }
    MakeOptimizer();
    return absl::OkStatus();
  }
  absl::Status Resume(const std::string& network_path, const std::string& optimizer_path,
                      const std::string& checkpoint_dir) override {
    ASSIGN_OR_RETURN(net_, SasRecNetwork::Load(network_path, torch::kCPU));
    RETURN_IF_ERROR(CheckResumedConfig(net_->config().ToJson(), config_.ToJson(), checkpoint_dir));
    for (auto& p : net_->Parameters()) p.set_requires_grad(true);
    MakeOptimizer();
    try {
      torch::load(*optimizer_, optimizer_path);
    } catch (const c10::Error& e) {
      return absl::DataLossError(
          absl::StrCat("cannot load optimizer state from ", optimizer_path, ": ", e.what_without_backtrace()));
    }
    return absl::OkStatus();
  }
  void SetLearningRate(double lr) override {
    static_cast<torch::optim::AdamOptions&>(optimizer_->param_groups()[0].options()).lr(lr);
  }

  absl::Status TrainEpoch(int epoch, EpochStats* stats) override {
    net_->SetTraining(true);
    const std::vector<int64_t> users = EpochUsers(sequences_.size(), options_, epoch);
    int64_t epoch_samples = 0;
    for (int64_t u : users) epoch_samples += static_cast<int64_t>(sequences_[u].size()) - 1;
    ProgressBar bar(absl::StrCat("sasrec epoch ", epoch + 1, "/", options_.epochs), epoch_samples, "samples");
    for (size_t b = 0; b < users.size(); b += config_.batch_size) {
      std::span<const int64_t> chunk(users.data() + b, std::min<size_t>(config_.batch_size, users.size() - b));
      Batch batch = MakeBatch(sequences_, chunk);
      try {
        torch::Tensor h = net_->ForwardUnchecked(batch.inputs);
        h = h.reshape({-1, h.size(2)}).index_select(0, batch.positions);
        torch::Tensor loss = SoftmaxCrossEntropy(net_->ScoreAll(h), batch.targets);
        const double value = loss.item<double>();
        RETURN_IF_ERROR(CheckFiniteLoss(value, epoch + 1, b / config_.batch_size));
        optimizer_->zero_grad();
        loss.backward();
        optimizer_->step();
        stats->loss_sum += value * batch.size;
        stats->samples += batch.size;
      } catch (const c10::Error& e) {
        return absl::InternalError(absl::StrCat("SASRec training step failed: ", e.what_without_backtrace()));
      }
      bar.Add(batch.size);
    }
    bar.Finish();
    return absl::OkStatus();
  }
  absl::StatusOr<EvalResult> Evaluate(SplitPart part) override {
    return EvaluateSasRec(*net_, split_, part, options_.eval);
  }
  absl::Status SaveNetwork(const std::string& path) override { return net_->Save(path, JsonObject()); }
  absl::Status SaveOptimizer(const std::string& path) override { return SaveAdam(*optimizer_, path); }
  absl::Status LoadBest(const std::string& path) override {
    optimizer_.reset();
    ASSIGN_OR_RETURN(net_, SasRecNetwork::Load(path, torch::kCPU));
    return absl::OkStatus();
  }

 private:
  void MakeOptimizer() {
    optimizer_ = std::make_unique<torch::optim::Adam>(
        net_->Parameters(), torch::optim::AdamOptions(config_.learning_rate).weight_decay(config_.l2));
  }

  const SasRecConfig& config_;
  const Split& split_;
  const SasRecTrainOptions& options_;
  const std::vector<std::vector<int64_t>> sequences_;
  std::unique_ptr<SasRecNetwork> net_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
};

}  // namespace

absl::StatusOr<SasRecTrainResult> TrainSasRec(const SasRecConfig& config, const Split& split,
                                              const SasRecTrainOptions& options) {
  RETURN_IF_ERROR(config.Validate());
  if (config.num_items != split.num_items) {
    return absl::InvalidArgumentError("SASRec config num_items must match the split's");
  }
  std::vector<std::vector<int64_t>> sequences = SasRecTrainingSequences(split, config.max_len);
  if (sequences.empty()) {
    return absl::InvalidArgumentError("no training sequences: SASRec needs users with at least 2 training items");
  }
  if (options.blas_threads > 0) SetBlasThreads(options.blas_threads);
  model::ConfigureTorchRuntime(options.torch_threads);
  SasRecTask task(config, split, options, std::move(sequences));
  const LoopOptions loop = MakeLoopOptions(options, config.learning_rate, "sasrec", "dgsr_sasrec_run_");
  SasRecTrainResult result;
  ASSIGN_OR_RETURN(static_cast<LoopResult&>(result), RunTrainingLoop(task, loop));
  result.network = task.TakeNetwork();
  return result;
}

absl::StatusOr<std::string> ExportSasRec(const std::string& model_dir, SasRecNetwork& network, JsonObject metadata) {
  metadata.Set("model", "sasrec");
  const JsonObject config = network.config().ToJson();
  for (const auto& [k, v] : config.entries()) {
    std::visit([&](const auto& value) { metadata.Set("config." + k, value); }, v);
  }
  return ExportArtifact(model_dir, std::move(metadata),
                        [&network](const std::string& path, const JsonObject& meta) { return network.Save(path, meta); });
}

}  // namespace dgsr::trainer
