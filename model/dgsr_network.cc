#include "model/dgsr_network.h"

#include <algorithm>
#include <filesystem>
#include <thread>

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/artifact.h"
#include "model/fused_ops.h"
#include "model/torch_runtime.h"

namespace dgsr::model {
namespace {

// Version 2: the modern options (config.h: residual_norm, ffn, output_embedding). An artifact
// that uses none of them is written as version 1, which binaries from before them read alike.
const ArtifactFormat kFormat{"DGSR", "dgsr/config.json", "dgsr/metadata.json", /*version=*/2, /*oldest_version=*/1,
                             {"forward", "score_all", "score_items"}};

torch::Tensor XavierNormal(int64_t fan_in, int64_t fan_out, std::vector<int64_t> shape) {
  const double gain = std::sqrt(2.0);  // The authors' code: xavier_normal_ with the ReLU gain.
  const double std = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  return torch::randn(shape) * std;
}

torch::Tensor Uniform(double bound, std::vector<int64_t> shape) {
  return torch::rand(shape) * (2 * bound) - bound;
}

torch::Tensor Int64(const std::vector<int64_t>& v, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<int64_t*>(v.data()), shape, torch::kInt64).clone();
}

}  // namespace

absl::StatusOr<torch::Device> ParseDevice(const std::string& name) {
  const bool cuda = torch::cuda::is_available();
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name == "auto") return cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  if (name == "cuda") {
    if (!cuda) return absl::FailedPreconditionError("--device=cuda: the linked libtorch has no CUDA or no GPU is visible");
    return torch::Device(torch::kCUDA);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown device '", name, "' (cpu, cuda or auto)"));
}

BlockTensors ToTensors(const Blocks& b, const DgsrConfig& config, const torch::Device& device) {
  BlockTensors t;
  std::vector<int64_t> users = b.user_ids;
  for (int64_t& u : users) u = std::min<int64_t>(u, config.num_users);  // unknown -> zero row
  if (!config.own_user_embedding) {  // the anchors (rows 0..B-1) start from h^(0) = 0
    std::fill(users.begin(), users.begin() + std::min<int64_t>(b.num_anchors, static_cast<int64_t>(users.size())),
              config.num_users);
  }
  std::vector<int64_t> items = b.item_ids;
  for (int64_t& i : items) i = std::min<int64_t>(i, config.num_items);
  const int64_t eu = static_cast<int64_t>(b.user_len.size());
  const int64_t ei = static_cast<int64_t>(b.item_len.size());
  t.user_ids = Int64(users, {static_cast<int64_t>(users.size())}).to(device);
  t.item_ids = Int64(items, {static_cast<int64_t>(items.size())}).to(device);
  t.user_nbr = Int64(b.user_nbr, {eu, b.user_width}).to(device);
  t.user_len = Int64(b.user_len, {eu}).to(device);
  t.item_nbr = Int64(b.item_nbr, {ei, b.item_width}).to(device);
  t.item_len = Int64(b.item_len, {ei}).to(device);
  t.last_item = Int64(b.last_item, {static_cast<int64_t>(b.last_item.size())}).to(device);
  t.layer_users = b.layer_users;
  t.layer_items = b.layer_items;
  t.num_anchors = b.num_anchors;
  return t;
}

namespace {

// The two variants of the neighbour gathers, the packed GRU and dropout (see model/fused_ops.h), appended to Source().
// Portable: stock ops only, so an artifact loads in any runtime; fused: the CPU kernels.
constexpr char kPortableGathers[] = R"TS(

def gather_dot(self, q: Tensor, k_src: Tensor, nbr: Tensor, length: Tensor):
    # e[r, j] = q_r . k_src[nbr[r, j]]  (padding slots hold garbage; callers mask them)
    kn = k_src.index_select(0, nbr.reshape(-1)).view(nbr.size(0), nbr.size(1), k_src.size(1))
    return (kn * q.unsqueeze(1)).sum(2)


def gather_sum(self, w: Tensor, k_src: Tensor, nbr: Tensor, length: Tensor):
    # out_r = sum_j w[r, j] k_src[nbr[r, j]]  (callers give padding slots zero weight)
    kn = k_src.index_select(0, nbr.reshape(-1)).view(nbr.size(0), nbr.size(1), k_src.size(1))
    return (w.unsqueeze(2) * kn).sum(1)


def dropout(self, x: Tensor, p: float):
    return torch.dropout(x, p, self.training)


def embed(self, table: Tensor, ids: Tensor):
    return table.index_select(0, ids)


def gru_last(self, data: Tensor, batch_sizes: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor):
    # A packed one-layer GRU; the final state of every row (rows sorted longest first).
    h0 = torch.zeros(1, int(batch_sizes[0]), w_hh.size(1), dtype=data.dtype, device=data.device)
    _, h_n = torch.gru(data, batch_sizes, h0, [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0, self.training, False)
    return h_n[0]
)TS";

constexpr char kFusedGathers[] = R"TS(

def gather_dot(self, q: Tensor, k_src: Tensor, nbr: Tensor, length: Tensor):
    return dgsr_ops.gather_dot(q, k_src, nbr, length)


def gather_sum(self, w: Tensor, k_src: Tensor, nbr: Tensor, length: Tensor):
    return dgsr_ops.gather_sum(w, k_src, nbr, length)


def gru_last(self, data: Tensor, batch_sizes: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor):
    return dgsr_ops.gru_last(data, batch_sizes, w_ih, w_hh, b_ih, b_hh)


def dropout(self, x: Tensor, p: float):
    if self.training and p > 0.0:
        return dgsr_ops.dropout(x, p, True)
    return x


def embed(self, table: Tensor, ids: Tensor):
    # A sparse gradient (the rows read), which trainer/adam.h applies without a dense
    # [rows x d] zero-fill per table per step.
    return torch.embedding(table, ids, -1, False, True)
)TS";

// Resolves `torch` as the stock resolver does, and `dgsr_ops` to the dgsr:: operator namespace
// (Module::define's default resolver knows only aten).
struct FusedOpsResolver : torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction&,
                                                         const torch::jit::SourceRange&) override {
    if (name == "torch") return std::make_shared<torch::jit::BuiltinModule>("aten");
    if (name == "dgsr_ops") return std::make_shared<torch::jit::BuiltinModule>("dgsr");
    return nullptr;
  }
  c10::TypePtr resolveType(const std::string&, const torch::jit::SourceRange&) override { return nullptr; }
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Parameters of the opt-in modernisation (config.h). A network with the option off carries an
// empty placeholder buffer under the same name instead ([L, 0] per-layer, [0] for item_out), so
// that one source compiles for every config and artifacts written before the options existed
// still load.
const char* const kLayerOptional[] = {"ln_user", "ln_item", "ffn_ln_user", "ffn_ln_item",
                                      "ffn_user_w1", "ffn_user_b1", "ffn_user_w2", "ffn_user_b2",
                                      "ffn_item_w1", "ffn_item_b1", "ffn_item_w2", "ffn_item_b2"};

// A module with `params` (registered in this order; tensors shared, not copied), the config as
// attributes, and the network's methods with the chosen gather kernels.
torch::jit::Module Assemble(const DgsrConfig& config, const NamedTensors& params, GatherKernels kernels) {
  torch::jit::Module m("DgsrNetwork");
  for (const auto& [name, value] : params) m.register_parameter(name, value, /*is_buffer=*/false);
  auto placeholder = [&](const std::string& name, std::vector<int64_t> shape) {
    const bool present = std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.first == name; });
    if (!present) m.register_buffer(name, torch::zeros(shape));
  };
  for (const char* name : kLayerOptional) placeholder(name, {config.layers, 0});
  placeholder("item_out", {0});
  auto attr_int = [&](const char* name, int64_t v) { m.register_attribute(name, c10::IntType::get(), v); };
  auto attr_bool = [&](const char* name, bool v) { m.register_attribute(name, c10::BoolType::get(), v); };
  auto attr_float = [&](const char* name, double v) { m.register_attribute(name, c10::FloatType::get(), v); };
  attr_bool("training", false);  // nn.Module semantics: Module::train() flips it.
  attr_int("cfg_num_items", config.num_items);
  attr_int("cfg_layers", config.layers);
  attr_int("cfg_max_neighbors", config.max_neighbors);
  attr_int("cfg_propagation", static_cast<int64_t>(config.propagation));
  attr_int("cfg_local", static_cast<int64_t>(config.local));
  attr_int("cfg_aggregation", static_cast<int64_t>(config.aggregation));
  attr_int("cfg_update", static_cast<int64_t>(config.update));
  attr_bool("cfg_layer_map", config.layer_map);
  attr_bool("cfg_include_layer0", config.include_layer0);
  attr_bool("cfg_last_item", config.last_item);
  attr_float("cfg_feat_dropout", config.feat_dropout);
  attr_float("cfg_attn_dropout", config.attn_dropout);
  attr_bool("cfg_residual_norm", config.residual_norm);
  attr_bool("cfg_ffn", config.ffn);
  attr_bool("cfg_output_embedding", config.output_embedding);
  if (kernels == GatherKernels::kFused) {
    FusedOpsRegistered();  // keeps the op library linked in
    m.define(absl::StrCat(DgsrNetwork::Source(), kFusedGathers), std::make_shared<FusedOpsResolver>());
  } else {
    m.define(absl::StrCat(DgsrNetwork::Source(), kPortableGathers));
  }
  m.eval();
  return m;
}

NamedTensors ParametersOf(const torch::jit::Module& m) {
  NamedTensors out;
  for (const auto& p : m.named_parameters(/*recurse=*/false)) out.emplace_back(p.name, p.value);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DgsrNetwork>> DgsrNetwork::Create(const DgsrConfig& config, uint64_t seed,
                                                                 GatherKernels kernels) {
  RETURN_IF_ERROR(config.Validate());
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  const int64_t d = config.dim, L = config.layers, n = config.max_neighbors;
  try {
    NamedTensors params;
    auto param = [&](const std::string& name, torch::Tensor value) {
      params.emplace_back(name, value.set_requires_grad(true));
    };
    torch::Tensor users = XavierNormal(config.num_users, d, {config.num_users + 1, d});
    torch::Tensor items = XavierNormal(config.num_items, d, {config.num_items + 1, d});
    users[config.num_users].zero_();  // The row for unknown users.
    items[config.num_items].zero_();
    param("user_embedding", users);
    param("item_embedding", items);
    param("w1", XavierNormal(d, d, {L, d, d}));
    param("w2", XavierNormal(d, d, {L, d, d}));
    param("pk_user", XavierNormal(n, d, {L, n, d}));
    param("pv_user", XavierNormal(n, d, {L, n, d}));
    param("pk_item", XavierNormal(n, d, {L, n, d}));
    param("pv_item", XavierNormal(n, d, {L, n, d}));
    param("gat_user", XavierNormal(2 * d, 1, {L, 2 * d}));
    param("gat_item", XavierNormal(2 * d, 1, {L, 2 * d}));
    const double gru_bound = 1.0 / std::sqrt(static_cast<double>(d));
    for (const char* side : {"user", "item"}) {
      param(absl::StrCat("gru_", side, "_wih"), Uniform(gru_bound, {L, 3 * d, d}));
      param(absl::StrCat("gru_", side, "_whh"), Uniform(gru_bound, {L, 3 * d, d}));
      param(absl::StrCat("gru_", side, "_bih"), Uniform(gru_bound, {L, 3 * d}));
      param(absl::StrCat("gru_", side, "_bhh"), Uniform(gru_bound, {L, 3 * d}));
    }
    param("w3", XavierNormal(3 * d, d, {L, 3 * d, d}));
    param("w4", XavierNormal(3 * d, d, {L, 3 * d, d}));
    param("wc_user", XavierNormal(2 * d, d, {L, 2 * d, d}));
    param("wc_item", XavierNormal(2 * d, d, {L, 2 * d, d}));
    const int64_t parts = L + (config.include_layer0 ? 1 : 0) + (config.last_item ? 1 : 0);
    param("w_p", XavierNormal(parts * d, d, {parts * d, d}));
    // LayerNorm [weight; bias] per layer: identity at the start, as torch.nn.LayerNorm.
    auto layer_norm = [&] { return torch::stack({torch::ones({L, d}), torch::zeros({L, d})}, 1); };
    if (config.residual_norm) {
      param("ln_user", layer_norm());
      param("ln_item", layer_norm());
    }
    if (config.ffn) {
      param("ffn_ln_user", layer_norm());
      param("ffn_ln_item", layer_norm());
      for (const char* side : {"user", "item"}) {
        param(absl::StrCat("ffn_", side, "_w1"), XavierNormal(d, d, {L, d, d}));
        param(absl::StrCat("ffn_", side, "_b1"), torch::zeros({L, d}));
        param(absl::StrCat("ffn_", side, "_w2"), XavierNormal(d, d, {L, d, d}));
        param(absl::StrCat("ffn_", side, "_b2"), torch::zeros({L, d}));
      }
    }
    if (config.output_embedding) {
      torch::Tensor out = XavierNormal(config.num_items, d, {config.num_items + 1, d});
      out[config.num_items].zero_();  // Unknown items score 0, as with the input table.
      param("item_out", out);
    }
    return std::unique_ptr<DgsrNetwork>(
        new DgsrNetwork(config, Assemble(config, params, kernels), torch::kCPU, kernels));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("building the DGSR TorchScript module failed: ", TorchErrorMessage(e)));
  }
}

absl::Status DgsrNetwork::WarmStartFrom(DgsrNetwork& older) {
  const DgsrConfig& old = older.config();
  if (old.num_users > config_.num_users || old.num_items > config_.num_items) {
    return absl::InvalidArgumentError(absl::StrCat("warm start: the older model knows ", old.num_users, " users and ",
                                                   old.num_items, " items, more than this one (", config_.num_users,
                                                   ", ", config_.num_items, ")"));
  }
  // Row num_users / num_items of each table is the zero row for unknown ids: not copied.
  return CopyParametersInto(older.module(), module_,
                            {{"user_embedding", old.num_users}, {"item_embedding", old.num_items},
                             {"item_out", old.num_items}});
}

absl::StatusOr<std::unique_ptr<DgsrNetwork>> DgsrNetwork::Load(const std::string& path,
                                                               const torch::Device& device, GatherKernels kernels) {
  ASSIGN_OR_RETURN(LoadedArtifact a, LoadArtifact(path, device, kFormat));
  auto config = DgsrConfig::FromJson(a.config);
  if (!config.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", config.status().message()));
  std::unique_ptr<DgsrNetwork> net;
  if (device.is_cpu() && kernels == GatherKernels::kFused) {
    // The same parameters behind the fused CPU kernels.
    try {
      net.reset(new DgsrNetwork(*config, Assemble(*config, ParametersOf(a.module), GatherKernels::kFused),
                                device, GatherKernels::kFused));
    } catch (const c10::Error& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": parameters do not fit this DGSR version: ", TorchErrorMessage(e)));
    }
  } else {
    net.reset(new DgsrNetwork(*config, std::move(a.module), device, GatherKernels::kPortable));
  }
  net->metadata_ = std::move(a.metadata);
  return net;
}

absl::Status DgsrNetwork::Save(const std::string& path, const JsonObject& metadata) const {
  // Artifacts always carry the portable code (so that they load in any runtime) and eval mode.
  try {
    torch::jit::Module portable = Assemble(config_, ParametersOf(module_), GatherKernels::kPortable);
    const bool modern = config_.residual_norm || config_.ffn || config_.output_embedding;
    return SaveArtifact(portable, path, kFormat, config_.ToJson(), metadata, modern ? 2 : 1);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("saving ", path, ": ", TorchErrorMessage(e)));
  }
}

std::vector<torch::Tensor> DgsrNetwork::Parameters() {
  std::vector<torch::Tensor> out;
  for (const auto& p : module_.parameters()) out.push_back(p);
  return out;
}

void DgsrNetwork::SetTraining(bool training) { module_.train(training); }

absl::Status DgsrNetwork::ValidateBlocks(const BlockTensors& b) const {
  auto bad = [](const std::string& what) { return absl::InvalidArgumentError("model input: " + what); };
  for (const torch::Tensor* t : {&b.user_ids, &b.item_ids, &b.user_nbr, &b.user_len, &b.item_nbr,
                                 &b.item_len, &b.last_item}) {
    if (!t->defined() || t->scalar_type() != torch::kInt64) return bad("every tensor must be defined and int64");
  }
  if (b.user_ids.dim() != 1 || b.item_ids.dim() != 1 || b.user_len.dim() != 1 ||
      b.item_len.dim() != 1 || b.last_item.dim() != 1 || b.user_nbr.dim() != 2 || b.item_nbr.dim() != 2) {
    return bad("ids, lengths and last_item must be 1-D; neighbour lists 2-D");
  }
  const int64_t nu = b.user_ids.size(0), ni = b.item_ids.size(0);
  if (b.num_anchors < 1 || b.num_anchors > nu) return bad("num_anchors must be in [1, user rows]");
  if (b.last_item.size(0) != b.num_anchors) return bad("last_item must have one entry per anchor");
  if (b.user_nbr.size(0) != b.user_len.size(0) || b.item_nbr.size(0) != b.item_len.size(0)) {
    return bad("neighbour lists and lengths disagree in rows");
  }
  if (static_cast<int>(b.layer_users.size()) != config_.layers ||
      static_cast<int>(b.layer_items.size()) != config_.layers) {
    return bad(absl::StrCat("need ", config_.layers, " layer row counts"));
  }
  int64_t prev_u = b.user_len.size(0), prev_i = b.item_len.size(0);
  for (int l = 0; l < config_.layers; ++l) {
    if (b.layer_users[l] < b.num_anchors || b.layer_users[l] > prev_u || b.layer_items[l] < 0 ||
        b.layer_items[l] > prev_i) {
      return bad("layer row counts must be nested prefixes covering the anchors");
    }
    prev_u = b.layer_users[l];
    prev_i = b.layer_items[l];
  }
  auto in_range = [](const torch::Tensor& t, int64_t lo, int64_t hi) {
    return t.numel() == 0 || (t.min().item<int64_t>() >= lo && t.max().item<int64_t>() < hi);
  };
  if (!in_range(b.user_ids, 0, config_.num_users + 1) || !in_range(b.item_ids, 0, config_.num_items + 1)) {
    return bad("embedding ids out of range (map unknown ids with ToTensors)");
  }
  if (!in_range(b.user_nbr, 0, std::max<int64_t>(ni, 1)) || !in_range(b.item_nbr, 0, std::max<int64_t>(nu, 1))) {
    return bad("neighbour index out of range");
  }
  if (!in_range(b.user_len, 0, std::min<int64_t>(b.user_nbr.size(1), config_.max_neighbors) + 1) ||
      !in_range(b.item_len, 0, std::min<int64_t>(b.item_nbr.size(1), config_.max_neighbors) + 1)) {
    return bad("neighbour list length exceeds its width or max_neighbors");
  }
  if (!in_range(b.last_item, -1, ni)) return bad("last_item out of range");
  return absl::OkStatus();
}

torch::Tensor DgsrNetwork::RepresentUnchecked(const BlockTensors& b) {
  std::vector<torch::jit::IValue> inputs{b.user_ids, b.item_ids, b.user_nbr, b.user_len, b.item_nbr,
                                         b.item_len, b.layer_users, b.layer_items, b.num_anchors,
                                         b.last_item};
  ApplyGraphExecutorSetting();
  return module_.forward(inputs).toTensor();
}

absl::StatusOr<torch::Tensor> DgsrNetwork::Represent(const BlockTensors& b) {
  RETURN_IF_ERROR(ValidateBlocks(b));
  try {
    return RepresentUnchecked(b);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("model forward failed: ", TorchErrorMessage(e)));
  }
}

torch::Tensor DgsrNetwork::ScoreAll(const torch::Tensor& rep) {
  ApplyGraphExecutorSetting();
  return module_.get_method("score_all")({rep}).toTensor();
}

torch::Tensor DgsrNetwork::ScoreItems(const torch::Tensor& rep, const torch::Tensor& items) {
  ApplyGraphExecutorSetting();
  return module_.get_method("score_items")({rep, items}).toTensor();
}

}  // namespace dgsr::model
