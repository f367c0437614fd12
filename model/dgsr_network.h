// DgsrNetwork: the DGSR network (paper §4.3-4.4, eq. 1-12) as a TorchScript module.
//
// The network's source is model/dgsr_network.torchscript, compiled at run time with
// torch::jit::Module::define (no Python needed to build, train or serve). A saved artifact is a
// standard TorchScript file: it loads with torch::jit::load in C++ and torch.jit.load in Python,
// and carries its DgsrConfig and metadata as extra files ("dgsr/config.json",
// "dgsr/metadata.json").
//
//   ASSIGN_OR_RETURN(auto net, DgsrNetwork::Create(config, /*seed=*/7));
//   BlockTensors t = ToTensors(blocks, net->config(), torch::kCPU);   // from SubgraphSampler
//   ASSIGN_OR_RETURN(torch::Tensor rep, net->Represent(t));         // [B, d]
//   torch::Tensor scores = net->ScoreAll(rep);                       // [B, num_items]
//
// Unknown ids: users >= num_users and items >= num_items (created after training) map to an
// extra all-zero embedding row that is never trained; unknown items are never recommended by
// ScoreAll and score 0 in ScoreItems.
//
// Errors: libtorch exceptions (c10::Error) never escape; they become InvalidArgument (bad
// inputs, incompatible artifact) or DataLoss (corrupt artifact file).
// Thread-safety: inference (Represent/Score* under torch::NoGradGuard; not InferenceMode, which breaks a scripted module that has run with autograd) may run from many threads
// at once; training calls (SetTraining, parameter updates) must not overlap with anything else.
#ifndef DGSR_MODEL_DGSR_NETWORK_H_
#define DGSR_MODEL_DGSR_NETWORK_H_

#include <torch/script.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/json.h"
#include "model/config.h"
#include "model/sampler.h"

namespace dgsr::model {

// "cpu", "cuda" or "auto" (CUDA when the linked libtorch has it and a GPU is visible, else CPU).
// FailedPrecondition for "cuda" without CUDA; InvalidArgument for anything else.
[[nodiscard]] absl::StatusOr<torch::Device> ParseDevice(const std::string& name);

// Blocks (model/sampler.h) as int64 tensors on one device.
struct BlockTensors {
  torch::Tensor user_ids, item_ids;   // unknown ids already mapped to the zero row
  torch::Tensor user_nbr, user_len;   // [EU, W], [EU]
  torch::Tensor item_nbr, item_len;   // [EI, W'], [EI]
  torch::Tensor last_item;            // [B]
  std::vector<int64_t> layer_users, layer_items;
  int64_t num_anchors = 0;
};

BlockTensors ToTensors(const Blocks& blocks, const DgsrConfig& config, const torch::Device& device);

// Which implementation of the neighbour gathers a network runs (model/fused_ops.h): the fused
// CPU kernels (fast training and CPU inference), or stock ops only (what artifacts store, so that
// they load in any runtime, Python and CUDA included). Both compute the same function; the fused
// variant gives the embedding tables sparse gradients (trainer/adam.h applies either kind).
enum class GatherKernels { kPortable, kFused };

class DgsrNetwork {
 public:
  // A freshly initialised network (Xavier-normal weights, as the authors' code; GRU weights
  // uniform(±d^-1/2) as PyTorch's default). InvalidArgument if the config is invalid.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DgsrNetwork>> Create(
      const DgsrConfig& config, uint64_t seed, GatherKernels kernels = GatherKernels::kFused);
  // Loads an artifact written by Save(); on CPU it runs `kernels`, elsewhere always the stored
  // portable code. NotFound, DataLoss (unreadable), InvalidArgument (not a DGSR artifact, or an
  // incompatible version).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DgsrNetwork>> Load(
      const std::string& path, const torch::Device& device, GatherKernels kernels = GatherKernels::kFused);
  // Writes the artifact, always with the portable kernels (not atomically; the trainer's exporter
  // handles atomic publication).
  [[nodiscard]] absl::Status Save(const std::string& path, const JsonObject& metadata) const;

  const DgsrConfig& config() const { return config_; }
  const JsonObject& metadata() const { return metadata_; }
  torch::jit::Module& module() { return module_; }
  torch::Device device() const { return device_; }
  GatherKernels kernels() const { return kernels_; }
  std::vector<torch::Tensor> Parameters();

  // Warm start: copies the weights of `older`, a network of the same architecture trained on an
  // earlier snapshot of the same store (id spaces no larger than this one's; the caller checks
  // the configs, trainer/run_state.h CheckWarmStartConfig). The embedding rows of the users and
  // items `older` knows are copied; rows of ids created since keep this network's
  // initialisation (Xavier-normal, as a network trained from scratch starts), and the all-zero
  // row for unknown ids stays zero. InvalidArgument if a parameter does not fit.
  [[nodiscard]] absl::Status WarmStartFrom(DgsrNetwork& older);

  void SetTraining(bool training);
  // Inference only: score as if no sample's own user were known to the model (config field
  // own_user_embedding), e.g. to measure what users who arrive after training get.
  void set_own_user_embedding(bool on) { config_.own_user_embedding = on; }

  // W_P^T h_u for each anchor (eq. 11, 12), [B, d]. InvalidArgument on malformed blocks.
  [[nodiscard]] absl::StatusOr<torch::Tensor> Represent(const BlockTensors& blocks);
  // The same without input validation, for the training loop on sampler-built blocks.
  torch::Tensor RepresentUnchecked(const BlockTensors& blocks);
  // Eq. 12 over all known items: [B, num_items].
  torch::Tensor ScoreAll(const torch::Tensor& rep);
  // Eq. 12 over candidates [B, C] -> [B, C].
  torch::Tensor ScoreItems(const torch::Tensor& rep, const torch::Tensor& items);

  // Validates blocks against this network (shapes, dtypes, index ranges).
  [[nodiscard]] absl::Status ValidateBlocks(const BlockTensors& blocks) const;

  // The TorchScript source compiled into every network (plus one variant of gather_dot/gather_sum).
  static const char* Source();

 private:
  DgsrNetwork(DgsrConfig config, torch::jit::Module module, torch::Device device, GatherKernels kernels)
      : config_(std::move(config)), module_(std::move(module)), device_(device), kernels_(kernels) {}

  DgsrConfig config_;
  JsonObject metadata_;
  torch::jit::Module module_;
  torch::Device device_;
  GatherKernels kernels_;
};

}  // namespace dgsr::model

#endif  // DGSR_MODEL_DGSR_NETWORK_H_
