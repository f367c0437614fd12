#include "model/scoring_model.h"

#include <caffe2/serialize/inline_container.h>

#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/artifact.h"
#include "model/dgsr_network.h"
#include "model/sampler.h"
#include "model/sasrec_network.h"

namespace dgsr::model {
namespace {

// Runs a libtorch call, turning its exceptions into a Status.
template <typename F>
absl::StatusOr<torch::Tensor> Guarded(const char* what, F&& f) {
  try {
    torch::NoGradGuard no_grad;
    return f();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, " failed: ", TorchErrorMessage(e)));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, " failed: ", e.what()));
  }
}

absl::Status CheckItems(const torch::Tensor& rep, const torch::Tensor& items) {
  if (items.dim() != 2 || items.scalar_type() != torch::kLong || items.size(0) != rep.size(0)) {
    return absl::InvalidArgumentError("candidate items must be an int64 [B, C] tensor with one row per query");
  }
  return absl::OkStatus();
}

class DgsrInputs : public PreparedInputs {
 public:
  int64_t num_queries() const override { return blocks.num_anchors; }
  Blocks blocks;
};

class DgsrScoringModel : public ScoringModel {
 public:
  explicit DgsrScoringModel(std::shared_ptr<DgsrNetwork> net) : net_(std::move(net)) {}

  NetworkKind network() const override { return NetworkKind::kDgsr; }
  int64_t num_users() const override { return net_->config().num_users; }
  int64_t num_items() const override { return net_->config().num_items; }
  JsonObject config_json() const override { return net_->config().ToJson(); }
  const JsonObject& metadata() const override { return net_->metadata(); }
  torch::Device device() const override { return net_->device(); }

  std::unique_ptr<PreparedInputs> Prepare(const store::TemporalGraph::ReadView& graph,
                                          std::span<const ScoringQuery> queries) const override {
    std::vector<SampleRequest> samples;
    samples.reserve(queries.size());
    for (const ScoringQuery& q : queries) samples.push_back({q.user, q.before, q.ties, q.others_before});
    auto inputs = std::make_unique<DgsrInputs>();
    SubgraphSampler sampler(net_->config(), SubgraphSampler::Mode::kPruned);
    sampler.SampleBatch(graph, samples, &inputs->blocks);
    return inputs;
  }

  absl::StatusOr<torch::Tensor> Represent(const PreparedInputs& inputs) const override {
    const auto* in = dynamic_cast<const DgsrInputs*>(&inputs);
    if (in == nullptr) return absl::InvalidArgumentError("inputs were prepared by another kind of model");
    return Guarded("DGSR forward", [&] {
      return net_->RepresentUnchecked(ToTensors(in->blocks, net_->config(), net_->device()));
    });
  }
  absl::StatusOr<torch::Tensor> ScoreAll(const torch::Tensor& rep) const override {
    return Guarded("DGSR scoring", [&] { return net_->ScoreAll(rep); });
  }
  absl::StatusOr<torch::Tensor> ScoreItems(const torch::Tensor& rep, const torch::Tensor& items) const override {
    RETURN_IF_ERROR(CheckItems(rep, items));
    return Guarded("DGSR scoring", [&] {
      // The network maps ids >= num_items to its zero row; negative ids are clamped there too.
      return net_->ScoreItems(rep, torch::where(items < 0, torch::full_like(items, num_items()), items)
                                       .clamp_max(num_items())
                                       .to(net_->device()));
    });
  }

 private:
  std::shared_ptr<DgsrNetwork> net_;
};

class SasRecInputs : public PreparedInputs {
 public:
  int64_t num_queries() const override { return static_cast<int64_t>(sequences.size()); }
  std::vector<std::vector<int64_t>> sequences;  // oldest first
};

class SasRecScoringModel : public ScoringModel {
 public:
  explicit SasRecScoringModel(std::shared_ptr<SasRecNetwork> net) : net_(std::move(net)) {}

  NetworkKind network() const override { return NetworkKind::kSasRec; }
  int64_t num_users() const override { return 0; }
  int64_t num_items() const override { return net_->config().num_items; }
  JsonObject config_json() const override { return net_->config().ToJson(); }
  const JsonObject& metadata() const override { return net_->metadata(); }
  torch::Device device() const override { return net_->device(); }

  std::unique_ptr<PreparedInputs> Prepare(const store::TemporalGraph::ReadView& graph,
                                          std::span<const ScoringQuery> queries) const override {
    auto inputs = std::make_unique<SasRecInputs>();
    const int max_len = net_->config().max_len;
    std::vector<store::NodeId> items(max_len);
    for (const ScoringQuery& q : queries) {
      const int n = graph.RecentItems(q.user, {store::kMinTime, q.before, q.ties}, max_len, items.data(), nullptr);
      inputs->sequences.emplace_back(items.begin(), items.begin() + n);
    }
    return inputs;
  }

  absl::StatusOr<torch::Tensor> Represent(const PreparedInputs& inputs) const override {
    const auto* in = dynamic_cast<const SasRecInputs*>(&inputs);
    if (in == nullptr) return absl::InvalidArgumentError("inputs were prepared by another kind of model");
    return Guarded("SASRec forward", [&] {
      return net_->RepresentUnchecked(PackSequences(in->sequences, net_->config()).to(net_->device()));
    });
  }
  absl::StatusOr<torch::Tensor> ScoreAll(const torch::Tensor& rep) const override {
    return Guarded("SASRec scoring", [&] { return net_->ScoreAll(rep); });
  }
  absl::StatusOr<torch::Tensor> ScoreItems(const torch::Tensor& rep, const torch::Tensor& items) const override {
    RETURN_IF_ERROR(CheckItems(rep, items));
    return Guarded("SASRec scoring", [&] { return net_->ScoreItems(rep, items.to(net_->device())); });
  }

 private:
  std::shared_ptr<SasRecNetwork> net_;
};

}  // namespace

std::string_view NetworkName(NetworkKind kind) { return kind == NetworkKind::kDgsr ? "dgsr" : "sasrec"; }

absl::StatusOr<NetworkKind> ArtifactNetwork(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return absl::NotFoundError(absl::StrCat("no model file ", path));
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (reader.hasRecord("extra/dgsr/config.json")) return NetworkKind::kDgsr;
    if (reader.hasRecord("extra/sasrec/config.json")) return NetworkKind::kSasRec;
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("cannot load model artifact ", path, ": not a readable TorchScript archive: ", TorchErrorMessage(e)));
  }
  return absl::InvalidArgumentError(absl::StrCat(path, " is a TorchScript archive but neither a DGSR nor a SASRec artifact"));
}

absl::StatusOr<std::unique_ptr<ScoringModel>> LoadScoringModel(const std::string& path, const torch::Device& device) {
  ASSIGN_OR_RETURN(NetworkKind kind, ArtifactNetwork(path));
  if (kind == NetworkKind::kDgsr) {
    ASSIGN_OR_RETURN(std::unique_ptr<DgsrNetwork> net, DgsrNetwork::Load(path, device));
    return WrapNetwork(std::shared_ptr<DgsrNetwork>(std::move(net)));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SasRecNetwork> net, SasRecNetwork::Load(path, device));
  return WrapNetwork(std::shared_ptr<SasRecNetwork>(std::move(net)));
}

std::unique_ptr<ScoringModel> WrapNetwork(std::shared_ptr<DgsrNetwork> network) {
  return std::make_unique<DgsrScoringModel>(std::move(network));
}

std::unique_ptr<ScoringModel> WrapNetwork(std::shared_ptr<SasRecNetwork> network) {
  return std::make_unique<SasRecScoringModel>(std::move(network));
}

}  // namespace dgsr::model
