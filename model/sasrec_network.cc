#include "model/sasrec_network.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/artifact.h"
#include "model/torch_runtime.h"

namespace dgsr::model {
namespace {

const ArtifactFormat kFormat{"SASRec", "sasrec/config.json", "sasrec/metadata.json", /*version=*/1, /*oldest_version=*/1,
                             {"forward", "represent", "score_all"}};

torch::Tensor XavierNormal(int64_t fan_in, int64_t fan_out, std::vector<int64_t> shape) {
  return torch::randn(shape) * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
}


}  // namespace

absl::Status SasRecConfig::Validate() const {
  auto bad = [](const std::string& what) { return absl::InvalidArgumentError("SASRec config: " + what); };
  if (num_items < 1) return bad("num_items must be >= 1");
  if (max_len < 1) return bad("max_len must be >= 1");
  if (hidden < 1) return bad("hidden must be >= 1");
  if (blocks < 1) return bad("blocks must be >= 1");
  if (heads < 1 || hidden % heads != 0) return bad("heads must be >= 1 and divide hidden");
  if (!(dropout >= 0 && dropout < 1)) return bad("dropout must be in [0, 1)");
  if (!(learning_rate > 0)) return bad("learning_rate must be > 0");
  if (!(l2 >= 0)) return bad("l2 must be >= 0");
  if (batch_size < 1) return bad("batch_size must be >= 1");
  return absl::OkStatus();
}

JsonObject SasRecConfig::ToJson() const {
  JsonObject j;
  j.Set("num_items", num_items).Set("max_len", max_len).Set("hidden", hidden);
  j.Set("blocks", blocks).Set("heads", heads).Set("dropout", dropout);
  j.Set("learning_rate", learning_rate).Set("l2", l2).Set("batch_size", batch_size);
  return j;
}

absl::StatusOr<SasRecConfig> SasRecConfig::FromJson(const JsonObject& j) {
  SasRecConfig c;
  auto num = [&](const char* key, auto* out) -> absl::Status {
    auto v = j.GetNumber(key);
    if (!v) return absl::InvalidArgumentError(absl::StrCat("SASRec config: missing number '", key, "'"));
    *out = static_cast<std::remove_pointer_t<decltype(out)>>(*v);
    return absl::OkStatus();
  };
  for (absl::Status s : {num("num_items", &c.num_items), num("max_len", &c.max_len), num("hidden", &c.hidden),
                         num("blocks", &c.blocks), num("heads", &c.heads), num("dropout", &c.dropout),
                         num("learning_rate", &c.learning_rate), num("l2", &c.l2),
                         num("batch_size", &c.batch_size)}) {
    if (!s.ok()) return s;
  }
  RETURN_IF_ERROR(c.Validate());
  return c;
}

torch::Tensor PackSequences(const std::vector<std::vector<int64_t>>& sequences, const SasRecConfig& config) {
  std::vector<std::vector<int64_t>> kept(sequences.size());
  size_t width = 1;
  for (size_t r = 0; r < sequences.size(); ++r) {
    for (int64_t item : sequences[r]) {
      if (item >= 0 && item < config.num_items) kept[r].push_back(item + 1);
    }
    if (kept[r].size() > static_cast<size_t>(config.max_len)) {
      kept[r].erase(kept[r].begin(), kept[r].end() - config.max_len);
    }
    width = std::max(width, kept[r].size());
  }
  std::vector<int64_t> flat(sequences.size() * width, 0);
  for (size_t r = 0; r < kept.size(); ++r) {
    std::copy(kept[r].begin(), kept[r].end(), flat.begin() + (r + 1) * width - kept[r].size());
  }
  return torch::tensor(flat, torch::kInt64).view({static_cast<int64_t>(sequences.size()), static_cast<int64_t>(width)});
}

absl::StatusOr<std::unique_ptr<SasRecNetwork>> SasRecNetwork::Create(const SasRecConfig& config, uint64_t seed) {
  RETURN_IF_ERROR(config.Validate());
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  const int64_t d = config.hidden, L = config.blocks;
  try {
    torch::jit::Module m("SasRecNetwork");
    auto param = [&](const char* name, torch::Tensor value) {
      m.register_parameter(name, value.set_requires_grad(true), /*is_buffer=*/false);
    };
    torch::Tensor items = XavierNormal(d, config.num_items + 1, {config.num_items + 1, d});
    items[0].zero_();  // Padding; always masked out, kept zero for readability.
    param("item_embedding", items);
    param("position_embedding", XavierNormal(d, config.max_len, {config.max_len, d}));
    // Q, K, V as one [3d, d] in-projection in the reference code: Xavier over (d, 3d).
    for (const char* w : {"attn_wq", "attn_wk", "attn_wv"}) param(w, XavierNormal(d, 3 * d, {L, d, d}));
    param("attn_wo", XavierNormal(d, d, {L, d, d}));
    param("ffn_w1", XavierNormal(d, d, {L, d, d}));
    param("ffn_w2", XavierNormal(d, d, {L, d, d}));
    for (const char* b : {"attn_bq", "attn_bk", "attn_bv", "attn_bo", "ffn_b1", "ffn_b2", "attn_ln_bias",
                          "ffn_ln_bias"}) {
      param(b, torch::zeros({L, d}));
    }
    param("attn_ln_weight", torch::ones({L, d}));
    param("ffn_ln_weight", torch::ones({L, d}));
    param("last_ln_weight", torch::ones({d}));
    param("last_ln_bias", torch::zeros({d}));

    m.register_attribute("training", c10::BoolType::get(), false);  // Module::train() flips it.
    m.register_attribute("cfg_num_items", c10::IntType::get(), config.num_items);
    m.register_attribute("cfg_max_len", c10::IntType::get(), static_cast<int64_t>(config.max_len));
    m.register_attribute("cfg_hidden", c10::IntType::get(), d);
    m.register_attribute("cfg_blocks", c10::IntType::get(), L);
    m.register_attribute("cfg_heads", c10::IntType::get(), static_cast<int64_t>(config.heads));
    m.register_attribute("cfg_dropout", c10::FloatType::get(), config.dropout);
    m.define(Source());
    m.eval();
    return std::unique_ptr<SasRecNetwork>(new SasRecNetwork(config, std::move(m), torch::kCPU));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("building the SASRec TorchScript module failed: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {  // torch::jit::ErrorReport (a compile error) is no c10::Error.
    return absl::InternalError(absl::StrCat("compiling the SASRec TorchScript source failed: ", e.what()));
  }
}

absl::Status SasRecNetwork::WarmStartFrom(SasRecNetwork& older) {
  if (older.config().num_items > config_.num_items) {
    return absl::InvalidArgumentError(absl::StrCat("warm start: the older model knows ", older.config().num_items,
                                                   " items, more than this one (", config_.num_items, ")"));
  }
  // Row 0 is padding; item i is row i + 1.
  return CopyParametersInto(older.module(), module_, {{"item_embedding", older.config().num_items + 1}});
}

absl::StatusOr<std::unique_ptr<SasRecNetwork>> SasRecNetwork::Load(const std::string& path,
                                                                   const torch::Device& device) {
  ASSIGN_OR_RETURN(LoadedArtifact a, LoadArtifact(path, device, kFormat));
  auto config = SasRecConfig::FromJson(a.config);
  if (!config.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", config.status().message()));
  const torch::jit::Module& m = a.module;
  auto shape_is = [&](const char* name, std::vector<int64_t> shape) {
    return m.hasattr(name) && m.attr(name).isTensor() && m.attr(name).toTensor().sizes().vec() == shape;
  };
  const int64_t d = config->hidden;
  if (!shape_is("item_embedding", {config->num_items + 1, d}) ||
      !shape_is("position_embedding", {config->max_len, d}) || !shape_is("attn_wq", {config->blocks, d, d})) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": tensors disagree with the stored SASRec config"));
  }
  auto net = std::unique_ptr<SasRecNetwork>(new SasRecNetwork(*config, std::move(a.module), device));
  net->metadata_ = std::move(a.metadata);
  return net;
}

absl::Status SasRecNetwork::Save(const std::string& path, const JsonObject& metadata) const {
  return SaveArtifact(module_, path, kFormat, config_.ToJson(), metadata);
}

std::vector<torch::Tensor> SasRecNetwork::Parameters() {
  std::vector<torch::Tensor> out;
  for (const auto& p : module_.parameters()) out.push_back(p);
  return out;
}

void SasRecNetwork::SetTraining(bool training) { module_.train(training); }

absl::Status SasRecNetwork::ValidateSequence(const torch::Tensor& seq) const {
  auto bad = [](const std::string& what) { return absl::InvalidArgumentError("SASRec input: " + what); };
  if (!seq.defined() || seq.scalar_type() != torch::kInt64 || seq.dim() != 2) {
    return bad("the sequence must be a 2-D int64 tensor");
  }
  if (seq.size(0) < 1 || seq.size(1) < 1 || seq.size(1) > config_.max_len) {
    return bad(absl::StrCat("need at least one row and 1..", config_.max_len, " columns"));
  }
  if (seq.min().item<int64_t>() < 0 || seq.max().item<int64_t>() > config_.num_items) {
    return bad(absl::StrCat("ids must be in [0, ", config_.num_items, "] (item + 1; 0 = padding)"));
  }
  return absl::OkStatus();
}

torch::Tensor SasRecNetwork::ForwardUnchecked(const torch::Tensor& seq) {
  ApplyGraphExecutorSetting();
  return module_.forward({seq}).toTensor();
}

torch::Tensor SasRecNetwork::RepresentUnchecked(const torch::Tensor& seq) {
  ApplyGraphExecutorSetting();
  return module_.get_method("represent")({seq}).toTensor();
}

absl::StatusOr<torch::Tensor> SasRecNetwork::Forward(const torch::Tensor& seq) {
  RETURN_IF_ERROR(ValidateSequence(seq));
  try {
    return ForwardUnchecked(seq);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("SASRec forward failed: ", TorchErrorMessage(e)));
  }
}

absl::StatusOr<torch::Tensor> SasRecNetwork::Represent(const torch::Tensor& seq) {
  RETURN_IF_ERROR(ValidateSequence(seq));
  try {
    return RepresentUnchecked(seq);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("SASRec forward failed: ", TorchErrorMessage(e)));
  }
}

torch::Tensor SasRecNetwork::ScoreAll(const torch::Tensor& h) {
  ApplyGraphExecutorSetting();
  return module_.get_method("score_all")({h}).toTensor();
}

torch::Tensor SasRecNetwork::ScoreItems(const torch::Tensor& h, const torch::Tensor& items) {
  const torch::Tensor table = module_.attr("item_embedding").toTensor();  // row i + 1 is item i
  const torch::Tensor known = torch::logical_and(items >= 0, items < config_.num_items);
  const torch::Tensor rows = torch::where(known, items + 1, torch::zeros_like(items));
  const torch::Tensor e = table.index_select(0, rows.reshape(-1)).view({items.size(0), items.size(1), -1});
  return torch::bmm(e, h.unsqueeze(2)).squeeze(2) * known.to(h.scalar_type());
}

}  // namespace dgsr::model
