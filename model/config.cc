#include "model/config.h"

#include "absl/strings/str_cat.h"

namespace dgsr::model {

DgsrConfig DgsrConfig::Paper() { return DgsrConfig{}; }

DgsrConfig DgsrConfig::Authors() {
  DgsrConfig c;
  c.sampler_variant = SamplerVariant::kAuthors;
  c.local = LocalMode::kLastAttention;
  c.update = UpdateMode::kRnn;
  c.layer_map = true;
  c.include_layer0 = false;
  c.feat_dropout = 0.3;
  c.attn_dropout = 0.3;
  return c;
}

DgsrConfig DgsrConfig::Inductive() {
  DgsrConfig c = Paper();
  c.own_user_embedding = false;
  c.feat_dropout = 0.2;
  c.attn_dropout = 0.2;
  return c;
}

DgsrConfig DgsrConfig::Modern() {
  DgsrConfig c = Inductive();
  c.residual_norm = true;
  c.ffn = true;
  c.output_embedding = true;
  c.warmup_steps = 2000;
  c.dim = 64;
  return c;
}

absl::StatusOr<DgsrConfig> PresetByName(const std::string& name) {
  if (name == "inductive") return DgsrConfig::Inductive();
  if (name == "paper") return DgsrConfig::Paper();
  if (name == "authors") return DgsrConfig::Authors();
  if (name == "modern") return DgsrConfig::Modern();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown model preset '", name, "' (expected inductive, paper, authors or modern)"));
}

absl::Status DgsrConfig::Validate() const {
  auto bad = [](const std::string& what) { return absl::InvalidArgumentError("DgsrConfig: " + what); };
  if (num_users <= 0 || num_items <= 0) return bad("num_users and num_items must be positive");
  if (num_users >= (int64_t{1} << 32) || num_items >= (int64_t{1} << 32)) return bad("ids must fit 32 bits");
  if (max_neighbors < 1 || max_neighbors > 4096) return bad("max_neighbors must be in [1, 4096]");
  if (sampler_order < 1 || sampler_order > 8) return bad("sampler_order must be in [1, 8]");
  if (dim < 1 || dim > 4096) return bad("dim must be in [1, 4096]");
  if (layers < 0 || layers > 8) return bad("layers must be in [0, 8]");
  if (layers == 0 && !include_layer0 && !last_item) return bad("layers=0 needs include_layer0 or last_item");
  if (feat_dropout < 0 || feat_dropout >= 1 || attn_dropout < 0 || attn_dropout >= 1) {
    return bad("dropout must be in [0, 1)");
  }
  if (learning_rate <= 0 || l2 < 0 || batch_size < 1 || warmup_steps < 0) return bad("bad training hyper-parameters");
  return absl::OkStatus();
}

JsonObject DgsrConfig::ToJson() const {
  JsonObject j;
  j.Set("num_users", num_users).Set("num_items", num_items);
  j.Set("max_neighbors", max_neighbors).Set("sampler_order", sampler_order);
  j.Set("sampler_variant", static_cast<int>(sampler_variant));
  j.Set("dim", dim).Set("layers", layers);
  j.Set("propagation", static_cast<int>(propagation)).Set("local", static_cast<int>(local));
  j.Set("aggregation", static_cast<int>(aggregation)).Set("update", static_cast<int>(update));
  j.Set("layer_map", layer_map).Set("include_layer0", include_layer0).Set("last_item", last_item);
  j.Set("own_user_embedding", own_user_embedding);
  j.Set("feat_dropout", feat_dropout).Set("attn_dropout", attn_dropout);
  j.Set("residual_norm", residual_norm).Set("ffn", ffn).Set("output_embedding", output_embedding);
  j.Set("learning_rate", learning_rate).Set("l2", l2).Set("batch_size", batch_size);
  j.Set("warmup_steps", warmup_steps);
  return j;
}

absl::StatusOr<DgsrConfig> DgsrConfig::FromJson(const JsonObject& j) {
  DgsrConfig c;
  auto num = [&](const char* key, auto* out) -> absl::Status {
    auto v = j.GetNumber(key);
    if (!v) return absl::InvalidArgumentError(absl::StrCat("model config: missing number '", key, "'"));
    *out = static_cast<std::remove_pointer_t<decltype(out)>>(*v);
    return absl::OkStatus();
  };
  auto flag = [&](const char* key, bool* out) -> absl::Status {
    auto v = j.GetBool(key);
    if (!v) return absl::InvalidArgumentError(absl::StrCat("model config: missing bool '", key, "'"));
    *out = *v;
    return absl::OkStatus();
  };
  int variant = 0, propagation = 0, local = 0, aggregation = 0, update = 0;
  for (absl::Status s : {num("num_users", &c.num_users), num("num_items", &c.num_items),
                         num("max_neighbors", &c.max_neighbors), num("sampler_order", &c.sampler_order),
                         num("sampler_variant", &variant), num("dim", &c.dim), num("layers", &c.layers),
                         num("propagation", &propagation), num("local", &local),
                         num("aggregation", &aggregation), num("update", &update),
                         flag("layer_map", &c.layer_map), flag("include_layer0", &c.include_layer0),
                         flag("last_item", &c.last_item), num("feat_dropout", &c.feat_dropout),
                         num("attn_dropout", &c.attn_dropout), num("learning_rate", &c.learning_rate),
                         num("l2", &c.l2), num("batch_size", &c.batch_size)}) {
    if (!s.ok()) return s;
  }
  // Absent in artifacts written before the option existed: they used the embedding.
  c.own_user_embedding = j.GetBool("own_user_embedding").value_or(true);
  // Absent before the modernisation options existed: all off.
  c.residual_norm = j.GetBool("residual_norm").value_or(false);
  c.ffn = j.GetBool("ffn").value_or(false);
  c.output_embedding = j.GetBool("output_embedding").value_or(false);
  c.warmup_steps = static_cast<int>(j.GetNumber("warmup_steps").value_or(0));
  if (variant < 0 || variant > 1 || propagation < 0 || propagation > 2 || local < 0 || local > 1 ||
      aggregation < 0 || aggregation > 2 || update < 0 || update > 1) {
    return absl::InvalidArgumentError("model config: an enum value is out of range");
  }
  c.sampler_variant = static_cast<SamplerVariant>(variant);
  c.propagation = static_cast<Propagation>(propagation);
  c.local = static_cast<LocalMode>(local);
  c.aggregation = static_cast<Aggregation>(aggregation);
  c.update = static_cast<UpdateMode>(update);
  if (absl::Status s = c.Validate(); !s.ok()) return s;
  return c;
}

}  // namespace dgsr::model
