// SasRecNetwork: SASRec (Kang & McAuley, ICDM 2018), the side-by-side baseline every DGSR figure
// is measured against, as its own TorchScript module. The trainer (trainer/sasrec_trainer.h)
// trains it as "SASRec+" (Klenitskiy & Vasilev, RecSys 2023): softmax cross-entropy over all items
// at every position.
//
// The network's source is model/sasrec_network.torchscript, compiled at run time with
// torch::jit::Module::define (no Python needed). A saved artifact is a standard TorchScript file
// carrying its SasRecConfig and metadata as extra files ("sasrec/config.json",
// "sasrec/metadata.json"); it loads with torch::jit::load in C++ and torch.jit.load in Python.
//
//   ASSIGN_OR_RETURN(auto net, SasRecNetwork::Create(config, /*seed=*/7));
//   torch::Tensor seq = PackSequences({{3, 17, 5}, {8}}, config);   // [2, 3], right-aligned
//   ASSIGN_OR_RETURN(torch::Tensor h, net->Represent(seq));          // [2, hidden], newest item
//   torch::Tensor scores = net->ScoreAll(h);                          // [2, num_items]
//
// Input encoding: seq [B, T] int64 with 1 <= T <= max_len; each row holds one user's most recent
// items oldest first, right-aligned (the newest item in column T-1) and left-padded with 0; item
// i is stored as i + 1. PackSequences builds exactly this. Positions are counted back from the
// newest item, so extra left padding never changes a result.
//
// Errors: libtorch exceptions (c10::Error) never escape; they become InvalidArgument (bad inputs,
// incompatible artifact) or DataLoss (unreadable artifact file).
// Thread-safety: inference (Represent/Forward/ScoreAll under torch::NoGradGuard, not
// InferenceMode) may run from many threads at once; SetTraining and parameter updates must not
// overlap with anything else.
#ifndef DGSR_MODEL_SASREC_NETWORK_H_
#define DGSR_MODEL_SASREC_NETWORK_H_

#include <torch/script.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/json.h"

namespace dgsr::model {

struct SasRecConfig {
  // ---- Id space (from the training snapshot). Items >= num_items are unknown: PackSequences
  // drops them and ScoreAll never recommends them.
  int64_t num_items = 0;

  // ---- Network (SASRec+ settings of Klenitskiy & Vasilev).
  int max_len = 50;       // n: the most recent items the model reads (SASRec uses 200 for ML-1M).
  int hidden = 64;        // d
  int blocks = 2;         // self-attention blocks
  int heads = 1;          // attention heads; hidden must be a multiple of it
  double dropout = 0.1;   // embeddings, attention weights and feed-forward

  // ---- Training. Stored for the record; trainer/sasrec_trainer.h reads them.
  double learning_rate = 0.001;  // Adam
  double l2 = 0.0;               // Adam weight decay
  int batch_size = 128;          // users (whole sequences) per step

  // InvalidArgument naming the first bad field.
  [[nodiscard]] absl::Status Validate() const;

  JsonObject ToJson() const;
  // InvalidArgument on a missing field or an invalid config.
  [[nodiscard]] static absl::StatusOr<SasRecConfig> FromJson(const JsonObject& json);
};

// The model input for a batch of item sequences (oldest first): the last max_len known items of
// each, shifted by +1, right-aligned and left-padded with 0 to the longest row (at least 1
// column, so an empty sequence is one padding column). Unknown items (< 0 or >= num_items) are
// dropped.
torch::Tensor PackSequences(const std::vector<std::vector<int64_t>>& sequences, const SasRecConfig& config);

class SasRecNetwork {
 public:
  // A freshly initialised network: Xavier-normal matrices and embeddings (as the reference code),
  // zero biases, unit layer-norm gains. InvalidArgument if the config is invalid.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SasRecNetwork>> Create(const SasRecConfig& config,
                                                                           uint64_t seed);
  // Loads an artifact written by Save(). NotFound (no file), DataLoss (unreadable),
  // InvalidArgument (not a SASRec artifact, unsupported version, or tensors that disagree with
  // the stored config).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SasRecNetwork>> Load(const std::string& path,
                                                                         const torch::Device& device);
  // Writes the artifact (not atomically; the exporter handles atomic publication).
  [[nodiscard]] absl::Status Save(const std::string& path, const JsonObject& metadata) const;

  const SasRecConfig& config() const { return config_; }
  const JsonObject& metadata() const { return metadata_; }
  torch::jit::Module& module() { return module_; }
  torch::Device device() const { return device_; }
  // Warm start: copies the weights of `older`, a network of the same architecture trained on an
  // earlier snapshot of the same store (no more items than this one; the caller checks the
  // configs, trainer/run_state.h CheckWarmStartConfig). The embedding rows of the items `older`
  // knows (and the padding row) are copied; rows of items created since keep this network's
  // initialisation (Xavier-normal, as a network trained from scratch starts). InvalidArgument if
  // a parameter does not fit.
  [[nodiscard]] absl::Status WarmStartFrom(SasRecNetwork& older);
  std::vector<torch::Tensor> Parameters();

  void SetTraining(bool training);

  // Hidden states at every position, [B, T, hidden] (padded positions are meaningless).
  // InvalidArgument if seq is not as described above.
  [[nodiscard]] absl::StatusOr<torch::Tensor> Forward(const torch::Tensor& seq);
  // The hidden state after the newest item of each row, [B, hidden]. InvalidArgument as Forward.
  [[nodiscard]] absl::StatusOr<torch::Tensor> Represent(const torch::Tensor& seq);
  // The same two without input validation, for the trainer on PackSequences-built input.
  torch::Tensor ForwardUnchecked(const torch::Tensor& seq);
  torch::Tensor RepresentUnchecked(const torch::Tensor& seq);
  // Scores over all known items with the shared item embedding: [N, hidden] -> [N, num_items].
  torch::Tensor ScoreAll(const torch::Tensor& h);
  // Scores of given items, [N, hidden] x [N, C] int64 -> [N, C]; items outside [0, num_items)
  // score 0 (as an unknown item's all-zero embedding would).
  torch::Tensor ScoreItems(const torch::Tensor& h, const torch::Tensor& items);

  // Validates an input sequence tensor (dtype, shape, id range).
  [[nodiscard]] absl::Status ValidateSequence(const torch::Tensor& seq) const;

  // The TorchScript source compiled into every network.
  static const char* Source();

 private:
  SasRecNetwork(SasRecConfig config, torch::jit::Module module, torch::Device device)
      : config_(std::move(config)), module_(std::move(module)), device_(device) {}

  SasRecConfig config_;
  JsonObject metadata_;
  torch::jit::Module module_;
  torch::Device device_;
};

}  // namespace dgsr::model

#endif  // DGSR_MODEL_SASREC_NETWORK_H_
