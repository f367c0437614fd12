// DgsrConfig: everything that defines one DGSR model: id-space sizes, the sub-graph sampler
// (paper §4.2, Algorithm 1), the network (§4.3-4.4), and its training hyper-parameters. It is
// stored inside every exported artifact, so a loaded model always samples and computes exactly
// as it was trained. Plain C++ (no libtorch): the sampler and the trainer's data code use it.
//
// Four named presets:
//   DgsrConfig::Paper()     the paper's equations: GRU local (eq. 6, 10), eq. 7/8 update with
//                           W in R^{d x 3d}, eq. 11 with h^(0), Algorithm 1 sampling (no window).
//   DgsrConfig::Inductive() the paper's equations with dropout 0.2 (features and attention) and
//                           the sample's own user read from its sub-graph alone (h^(0) = 0 instead
//                           of e_u), so a user who arrives after training is scored exactly as a
//                           known one. The trainer's default: the best DGSR measured here
//                           (docs/RESULTS.md, "Which DGSR configuration is the default").
//   DgsrConfig::Authors()   the authors' public code (docs: REFERENCE_NOTES): per-layer linear
//                           map + dropout, last-neighbour attention, 2d "rnn" update, layers
//                           1..L, sampling only edges in [start, t) and at most n new users per
//                           round.
//   DgsrConfig::Modern()    opt-in: the inductive preset with the modernisation that made SASRec+
//                           strong, inside DGSR's graph design (same sampler, relative-order
//                           attention and local GRU): a residual connection and layer
//                           normalisation around each node update, a feed-forward sub-layer, a
//                           separate output item embedding, learning-rate warm-up and d = 64.
//                           Measured change by change in docs/RESULTS.md ("A modern DGSR").
// Every switch is also settable on its own; §5.4's ablations are Propagation/Aggregation values.
#ifndef DGSR_MODEL_CONFIG_H_
#define DGSR_MODEL_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/json.h"

namespace dgsr::model {

enum class SamplerVariant {
  kPaper = 0,    // Algorithm 1: every neighbour's n most recent neighbours before t.
  kAuthors = 1,  // Only edges with time in [start, t); at most n new users kept per round.
};

enum class Propagation { kOrderAttention = 0, kGat = 1, kGcn = 2 };     // eq. 1-5 | §5.4
enum class LocalMode { kGru = 0, kLastAttention = 1 };                   // eq. 6 | authors
enum class Aggregation { kGlobalAndLocal = 0, kGlobalOnly = 1, kLocalOnly = 2 };  // §5.4
enum class UpdateMode { kPaper = 0, kRnn = 1 };                          // eq. 7 | authors

struct DgsrConfig {
  // ---- Id spaces (from the training snapshot). Ids >= these map to an all-zero embedding.
  int64_t num_users = 0;
  int64_t num_items = 0;

  // ---- Sub-graph sampling (§4.2).
  int max_neighbors = 50;   // n: neighbours kept per node (and the max sequence length).
  int sampler_order = 3;    // m: (item->users, users->items) rounds; nodes up to hop 2m-1.
  SamplerVariant sampler_variant = SamplerVariant::kPaper;

  // ---- Network (§4.3-4.4).
  int dim = 50;             // d
  int layers = 2;           // L (0..4 studied in §5.5)
  Propagation propagation = Propagation::kOrderAttention;
  LocalMode local = LocalMode::kGru;
  Aggregation aggregation = Aggregation::kGlobalAndLocal;
  UpdateMode update = UpdateMode::kPaper;
  bool layer_map = false;       // Authors: per-layer linear map + dropout on h^(l-1).
  bool include_layer0 = true;   // Eq. 11 with h^(0) (paper) or from h^(1) (authors).
  bool last_item = false;       // Append the last item's final-layer vector (authors' option).
  // h^(0) of the sample's own user (the anchor) is its embedding e_u (Algorithm 2, line 6), or,
  // when false, zero: the user is then represented by its sub-graph alone, as a user unknown to
  // the model always is. Other users in the sub-graph keep their embeddings. Measured in
  // docs/RESULTS.md: e_u is fitted to a user's few training targets and can hurt at test time.
  bool own_user_embedding = true;
  double feat_dropout = 0.0;    // On each layer's input h^(l-1) (after the layer map if on); with
                                // residual_norm, on the embeddings and on each sub-layer's output.
  double attn_dropout = 0.0;    // On attention weights (eq. 2/4, or the local attention).
  // ---- Modernisation (opt-in; all off in the paper's equations).
  // h^(l) = LayerNorm(h^(l-1) + dropout(eq. 7/8 update)) instead of the update alone (with the
  // authors' layer map, h^(l-1) as the update reads it: mapped).
  bool residual_norm = false;
  // Then h^(l) = LayerNorm(h + dropout(W_b ReLU(W_a h + b_a) + b_b)), inner size d, per side and layer.
  bool ffn = false;
  // Eq. 12 scores against a second item table instead of the input embeddings e_i (no weight tying).
  bool output_embedding = false;

  // ---- Training (§5.2.3). Stored for the record; the trainer reads them.
  double learning_rate = 0.001;
  double l2 = 1e-4;             // lambda of eq. 14, applied as Adam weight decay.
  int batch_size = 50;
  int warmup_steps = 0;         // Linear learning-rate warm-up over this many optimiser steps.

  static DgsrConfig Paper();
  static DgsrConfig Inductive();
  static DgsrConfig Authors();
  static DgsrConfig Modern();

  // Rows updated at each layer follow from this: with the last-item option the last item needs
  // h^(L), so the sampled blocks reach one hop further.
  int BlockDepth() const { return layers + (last_item ? 1 : 0); }

  // InvalidArgument naming the first bad field.
  [[nodiscard]] absl::Status Validate() const;

  JsonObject ToJson() const;
  [[nodiscard]] static absl::StatusOr<DgsrConfig> FromJson(const JsonObject& json);
};

// "inductive" / "paper" / "authors" / "modern" -> preset; InvalidArgument otherwise.
[[nodiscard]] absl::StatusOr<DgsrConfig> PresetByName(const std::string& name);

}  // namespace dgsr::model

#endif  // DGSR_MODEL_CONFIG_H_
