// dgsr train: trains DGSR on a store snapshot, evaluates it honestly, and exports a new version.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/artifact_eval.h"
#include "cli/snapshot_source.h"
#include "cli/common_flags.h"
#include "cli/store_flags.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "model/model_dir.h"
#include "trainer/export.h"
#include "trainer/trainer.h"

ABSL_FLAG(bool, regression_gate, false,
          "before exporting, evaluate the version now newest in --model_dir on this snapshot's validation samples; "
          "export only if the new model's validation NDCG@10 (sampled) is not lower by more than --gate_tolerance, "
          "else keep the current version, say why and exit 4");
ABSL_FLAG(double, gate_tolerance, 0.005, "regression gate: the largest drop in validation NDCG@10 (absolute, 0-1) accepted");
ABSL_FLAG(std::string, warm_start, "",
          "start from this model's weights instead of a fresh initialisation: a model directory (its newest version), "
          "a version directory or a model.pt, trained on an earlier snapshot of this store with the same model flags; "
          "new users and items get fresh rows, the optimizer starts afresh (README, Retraining). A model directory "
          "with no version yet trains from scratch");
ABSL_FLAG(std::string, run_dir, "", "checkpoints and metrics.jsonl; an existing run resumes (with the model flags it was started with; others are refused)");
ABSL_FLAG(std::string, preset, "inductive",
          "model preset: inductive (the paper's equations, dropout 0.2, the user read from its sub-graph; "
          "the best measured, docs/RESULTS.md), paper (the paper's equations as published), authors (their code) or "
          "modern (opt-in: inductive plus residual + LayerNorm, a feed-forward sub-layer, a separate output "
          "embedding, warm-up and d = 64)");
ABSL_FLAG(int, layers, -1, "DGAN layers L (-1: 2)");
ABSL_FLAG(int, dim, -1, "embedding size d (-1: the preset's, 50; 64 for modern)");
ABSL_FLAG(int, max_neighbors, 50, "n: neighbours per node and max sequence length");
ABSL_FLAG(int, order, 3, "m: sub-graph order");
ABSL_FLAG(std::string, propagation, "order", "order | gat | gcn (paper §5.4)");
ABSL_FLAG(std::string, aggregation, "both", "both | global | local (paper §5.4)");
ABSL_FLAG(int, last_item, -1, "append the last item's vector: 1, 0, or -1 for the preset's choice");
ABSL_FLAG(int, own_user_embedding, -1,
          "1: the sample's user starts from its embedding e_u (Algorithm 2; paper and authors presets); 0: from zero, "
          "represented by its sub-graph alone (as an unknown user always is); -1: the preset's choice");
ABSL_FLAG(double, feat_dropout, -1, "feature dropout (-1: preset)");
ABSL_FLAG(double, attn_dropout, -1, "attention dropout (-1: preset)");
ABSL_FLAG(int, residual_norm, -1, "1: LayerNorm(h + dropout(update)) around each node update; 0: off; -1: preset");
ABSL_FLAG(int, ffn, -1, "1: a feed-forward sub-layer (residual, LayerNorm) after each node update; 0: off; -1: preset");
ABSL_FLAG(int, output_embedding, -1, "1: score against a separate output item table; 0: the input embeddings (eq. 12); -1: preset");
ABSL_FLAG(int, warmup_steps, -1, "linear learning-rate warm-up steps (-1: preset; 0: none)");
ABSL_FLAG(double, lr, 0.001, "Adam learning rate");
ABSL_FLAG(double, l2, 1e-4, "lambda: L2 regularisation as Adam weight decay");
ABSL_FLAG(int, batch_size, 50, "training batch size");
ABSL_FLAG(int, epochs, 20, "maximum epochs");
ABSL_FLAG(int, patience, 3, "early stopping: epochs without a better validation NDCG@10");
ABSL_FLAG(double, lr_decay, 1.0,
          "in (0, 1]: multiply the learning rate by this after each epoch without a better validation NDCG@10 "
          "(1: constant, as the paper; DGSR and SASRec+)");
ABSL_FLAG(uint64_t, seed, 1, "seed for initialisation, shuffling and dropout");
ABSL_FLAG(uint64_t, eval_seed, 2024, "seed for evaluation negatives");
ABSL_FLAG(int, sampler_threads, 1, "sub-graph sampling threads");
ABSL_FLAG(int64_t, max_train_samples, 0, "if > 0: training samples per epoch (smoke runs)");
ABSL_FLAG(int, train_threads, 0,
          "DGSR: threads per training step, each running the forward and backward of a slice of the batch "
          "(data parallel; gradients summed in a fixed order, so runs at the same count repeat exactly); 0: one "
          "per core. When several trainings share a machine, give each a share of the cores (e.g. 1)");
ABSL_FLAG(int64_t, max_eval_samples, 0, "if > 0: evaluate on the first N samples only");
ABSL_FLAG(bool, full_ranking, true, "also report full-ranking metrics");
ABSL_FLAG(bool, popularity, true, "also evaluate the popularity baseline on the same test samples");
ABSL_FLAG(std::string, dataset, "", "dataset name recorded in the metadata");
ABSL_FLAG(std::string, model, "dgsr", "dgsr | sasrec (the SASRec+ baseline, cli/cmd_train_sasrec.cc)");
ABSL_FLAG(int, sasrec_max_len, 50, "SASRec: most recent items read (200 for ML-1M)");
ABSL_FLAG(int, sasrec_hidden, 64, "SASRec: hidden size");
ABSL_FLAG(int, sasrec_blocks, 2, "SASRec: self-attention blocks");
ABSL_FLAG(int, sasrec_heads, 1, "SASRec: attention heads");
ABSL_FLAG(double, sasrec_dropout, 0.1, "SASRec: dropout");
ABSL_FLAG(double, sasrec_lr, 0.001, "SASRec: Adam learning rate");
ABSL_FLAG(double, sasrec_l2, 0.0, "SASRec: Adam weight decay");
ABSL_FLAG(int, sasrec_batch_size, 128, "SASRec: users per training batch");
ABSL_FLAG(int64_t, sasrec_max_train_users, 0, "SASRec: if > 0, training windows (about users) per epoch (smoke runs)");

namespace dgsr::cli {

// The SASRec+ branch of `dgsr train` (cli/cmd_train_sasrec.cc).
absl::Status TrainSasRecFromFlags(const trainer::Split& split, const store::StoreInfo& info);

// Prints the chosen epoch's validation and test metrics and, with --popularity, the popularity
// baseline's on the same test samples; returns them as one JSON object ("test_*", "valid_*",
// "popularity_test_*"). Shared with cli/cmd_train_sasrec.cc.
// Records the snapshot and id spaces in `summary`, writes <run_dir>/summary.json, exports through
// `export_model` when --model_dir is set, and prints the summary. Shared with cmd_train_sasrec.cc.
absl::Status PublishRun(JsonObject summary, const store::StoreInfo& info, const trainer::Split& split,
                        const std::function<absl::StatusOr<std::string>(const JsonObject&)>& export_model);
// Exit status of a training subcommand: 0, kExitGateRefused when the regression gate kept the
// serving version, else 1 (the error is printed).
constexpr int kExitGateRefused = 4;
constexpr char kGateRefusedPayload[] = "dgsr/regression_gate_refused";
int TrainExitCode(const absl::Status& status, const char* command);
JsonObject ReportEvaluation(const trainer::Split& split, const trainer::EvalResult& valid,
                            const trainer::EvalResult& test, const trainer::EvalOptions& eval);
// --warm_start resolved to a model.pt ("" without the flag). Shared with cmd_train_sasrec.cc.
absl::StatusOr<std::string> WarmStartPath();
std::string TrainingSpeedNote(double samples_per_s, double train_seconds);

namespace {

absl::StatusOr<model::DgsrConfig> ConfigFromFlags(int64_t users, int64_t items) {
  ASSIGN_OR_RETURN(model::DgsrConfig c, model::PresetByName(absl::GetFlag(FLAGS_preset)));
  c.num_users = users;
  c.num_items = items;
  if (absl::GetFlag(FLAGS_layers) >= 0) c.layers = absl::GetFlag(FLAGS_layers);
  if (absl::GetFlag(FLAGS_dim) >= 0) c.dim = absl::GetFlag(FLAGS_dim);
  c.max_neighbors = absl::GetFlag(FLAGS_max_neighbors);
  c.sampler_order = absl::GetFlag(FLAGS_order);
  const std::string prop = absl::GetFlag(FLAGS_propagation), agg = absl::GetFlag(FLAGS_aggregation);
  if (prop == "order") c.propagation = model::Propagation::kOrderAttention;
  else if (prop == "gat") c.propagation = model::Propagation::kGat;
  else if (prop == "gcn") c.propagation = model::Propagation::kGcn;
  else return absl::InvalidArgumentError("--propagation must be order, gat or gcn");
  if (agg == "both") c.aggregation = model::Aggregation::kGlobalAndLocal;
  else if (agg == "global") c.aggregation = model::Aggregation::kGlobalOnly;
  else if (agg == "local") c.aggregation = model::Aggregation::kLocalOnly;
  else return absl::InvalidArgumentError("--aggregation must be both, global or local");
  if (absl::GetFlag(FLAGS_last_item) >= 0) c.last_item = absl::GetFlag(FLAGS_last_item) == 1;
  if (absl::GetFlag(FLAGS_own_user_embedding) >= 0) c.own_user_embedding = absl::GetFlag(FLAGS_own_user_embedding) == 1;
  if (absl::GetFlag(FLAGS_feat_dropout) >= 0) c.feat_dropout = absl::GetFlag(FLAGS_feat_dropout);
  if (absl::GetFlag(FLAGS_attn_dropout) >= 0) c.attn_dropout = absl::GetFlag(FLAGS_attn_dropout);
  if (absl::GetFlag(FLAGS_residual_norm) >= 0) c.residual_norm = absl::GetFlag(FLAGS_residual_norm) == 1;
  if (absl::GetFlag(FLAGS_ffn) >= 0) c.ffn = absl::GetFlag(FLAGS_ffn) == 1;
  if (absl::GetFlag(FLAGS_output_embedding) >= 0) c.output_embedding = absl::GetFlag(FLAGS_output_embedding) == 1;
  if (absl::GetFlag(FLAGS_warmup_steps) >= 0) c.warmup_steps = absl::GetFlag(FLAGS_warmup_steps);
  c.learning_rate = absl::GetFlag(FLAGS_lr);
  c.l2 = absl::GetFlag(FLAGS_l2);
  c.batch_size = absl::GetFlag(FLAGS_batch_size);
  RETURN_IF_ERROR(c.Validate());
  return c;
}

void PrintMetrics(const char* name, const trainer::EvalResult& r) {
  std::printf("%-22s sampled(100 neg): Hit@5 %.2f Hit@10 %.2f Hit@20 %.2f NDCG@5 %.2f NDCG@10 %.2f NDCG@20 %.2f | "
              "full ranking (history excluded): Hit@10 %.2f NDCG@10 %.2f  (n=%lld)\n",
              name, 100 * r.sampled.Hit(5), 100 * r.sampled.Hit(10), 100 * r.sampled.Hit(20),
              100 * r.sampled.Ndcg(5), 100 * r.sampled.Ndcg(10), 100 * r.sampled.Ndcg(20),
              100 * r.full.Hit(10), 100 * r.full.Ndcg(10), static_cast<long long>(r.sampled.count()));
}

absl::Status Train() {
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(SnapshotSource source, OpenSnapshot(absl::GetFlag(FLAGS_store), absl::GetFlag(FLAGS_snapshot)));
  ASSIGN_OR_RETURN(trainer::Split split, SplitFromFlags(*source.store));
  if (absl::GetFlag(FLAGS_model) == "sasrec") return TrainSasRecFromFlags(split, source.store->info());
  if (absl::GetFlag(FLAGS_model) != "dgsr") return absl::InvalidArgumentError("--model must be dgsr or sasrec");
  ASSIGN_OR_RETURN(model::DgsrConfig config, ConfigFromFlags(split.num_users, split.num_items));
  trainer::TrainOptions opt;
  opt.epochs = absl::GetFlag(FLAGS_epochs);
  opt.patience = absl::GetFlag(FLAGS_patience);
  opt.lr_decay = absl::GetFlag(FLAGS_lr_decay);
  opt.seed = absl::GetFlag(FLAGS_seed);
  opt.eval.seed = absl::GetFlag(FLAGS_eval_seed);
  opt.torch_threads = absl::GetFlag(FLAGS_torch_threads);
  opt.sampler_threads = absl::GetFlag(FLAGS_sampler_threads);
  opt.train_threads = absl::GetFlag(FLAGS_train_threads) > 0
                          ? absl::GetFlag(FLAGS_train_threads)
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  opt.max_train_samples = absl::GetFlag(FLAGS_max_train_samples);
  opt.eval.max_samples = absl::GetFlag(FLAGS_max_eval_samples);
  opt.eval.full_ranking = absl::GetFlag(FLAGS_full_ranking);
  const std::string run_dir = absl::GetFlag(FLAGS_run_dir);
  if (!run_dir.empty()) {
    opt.checkpoint_dir = run_dir + "/checkpoint";
    opt.log_path = run_dir + "/metrics.jsonl";
  }
  ASSIGN_OR_RETURN(const std::string warm_start, WarmStartPath());
  std::unique_ptr<model::DgsrNetwork> warm;
  if (!warm_start.empty()) {
    ASSIGN_OR_RETURN(warm, model::DgsrNetwork::Load(warm_start, torch::kCPU));
    RETURN_IF_ERROR(CheckModelPredatesSnapshot(warm_start, warm->metadata(), source.store->info()));
    opt.warm_start = warm.get();
  }
  ASSIGN_OR_RETURN(trainer::TrainResult result, trainer::Train(config, split, opt));
  warm.reset();
  std::printf("\nDGSR (%s preset), checkpoint chosen on validation: epoch %d; %s\n",
              absl::GetFlag(FLAGS_preset).c_str(), result.best_epoch,
              TrainingSpeedNote(result.samples_per_second, result.train_seconds).c_str());
  JsonObject summary = ReportEvaluation(split, result.valid, result.test, opt.eval);
  summary.Set("best_epoch", result.best_epoch).Set("samples_per_s", result.samples_per_second);
  summary.Set("train_seconds", result.train_seconds).Set("seed", static_cast<int64_t>(opt.seed));
  summary.Set("eval_seed", static_cast<int64_t>(opt.eval.seed)).Set("dataset", absl::GetFlag(FLAGS_dataset));
  summary.Set("preset", absl::GetFlag(FLAGS_preset)).Set("lr_decay", opt.lr_decay);
  summary.Set("train_threads", opt.train_threads);
  summary.Set("warm_start", warm_start).Set("wall_seconds", absl::ToDoubleSeconds(absl::Now() - start));
  return PublishRun(std::move(summary), source.store->info(), split, [&](const JsonObject& metadata) {
    return trainer::ExportModel(absl::GetFlag(FLAGS_model_dir), *result.network, metadata);
  });
}

}  // namespace

absl::Status PublishRun(JsonObject summary, const store::StoreInfo& info, const trainer::Split& split,
                        const std::function<absl::StatusOr<std::string>(const JsonObject&)>& export_model) {
  summary.Set("snapshot_id", info.snapshot_id).Set("store_id", info.store_id);
  summary.Set("snapshot_events", info.num_events).Set("snapshot_max_time", info.max_time);
  summary.Set("num_users", split.num_users).Set("num_items", split.num_items);
  summary.Set("cross_user_time", std::string(trainer::CrossUserTimeName(split.cross_user_time)));
  const std::string model_dir = absl::GetFlag(FLAGS_model_dir);
  absl::Status gate = absl::OkStatus();
  if (absl::GetFlag(FLAGS_regression_gate) && !model_dir.empty()) {
    if (auto serving_dir = model::LatestVersionDir(model_dir); serving_dir.ok()) {
      // The same samples and negatives (eval seed) as the new model's validation figure.
      trainer::EvalOptions options;
      options.seed = absl::GetFlag(FLAGS_eval_seed);
      options.max_samples = absl::GetFlag(FLAGS_max_eval_samples);
      options.full_ranking = false;
      ASSIGN_OR_RETURN(trainer::EvalResult serving,
                       EvaluateArtifact(*serving_dir + "/model.pt", split, trainer::SplitPart::kValid, options,
                                        absl::GetFlag(FLAGS_device), /*cold_users=*/false, &info));
      const double before = serving.sampled.Ndcg(10);
      const double after = summary.GetNumber("valid_ndcg@10").value_or(0);
      const double tolerance = absl::GetFlag(FLAGS_gate_tolerance);
      summary.Set("gate_serving_version", *serving_dir).Set("gate_serving_valid_ndcg@10", before);
      summary.Set("gate_tolerance", tolerance);
      const bool pass = after >= before - tolerance;
      summary.Set("gate", pass ? "passed" : "refused");
      std::printf("regression gate: validation NDCG@10 %.4f (new) vs %.4f (%s, on this snapshot), tolerance %.4f: %s\n",
                  after, before, serving_dir->c_str(), tolerance, pass ? "passed, exporting" : "REFUSED, not exported");
      if (!pass) {
        gate = absl::FailedPreconditionError(absl::StrCat(
            "regression gate: the new model's validation NDCG@10 ", after, " is below the serving version's ", before,
            " by more than ", tolerance, "; kept ", *serving_dir));
        gate.SetPayload(kGateRefusedPayload, absl::Cord("1"));
      }
    }
  }
  const std::string run_dir = absl::GetFlag(FLAGS_run_dir);
  if (!run_dir.empty()) RETURN_IF_ERROR(WriteFileAtomic(run_dir + "/summary.json", summary.Dump() + "\n"));
  if (!model_dir.empty() && gate.ok()) {
    ASSIGN_OR_RETURN(std::string dir, export_model(summary));
    std::printf("exported %s\n", dir.c_str());
  }
  std::printf("%s\n", summary.Dump().c_str());
  return gate;
}

absl::StatusOr<std::string> WarmStartPath() {
  const std::string flag = absl::GetFlag(FLAGS_warm_start);
  if (flag.empty()) return std::string();
  // The first run of a schedule: an existing model directory with no version yet trains from
  // scratch (said in the log and in summary.json's empty "warm_start").
  std::error_code ec;
  if (std::filesystem::is_directory(flag, ec) && !std::filesystem::exists(flag + "/model.pt", ec) &&
      model::ListVersions(flag).empty()) {
    DGSR_LOG(WARN) << "no model version to warm-start from; training from scratch" << Kv("warm_start", flag);
    return std::string();
  }
  ASSIGN_OR_RETURN(std::string path, model::ResolveModelPath(flag));
  DGSR_LOG(INFO) << "warm start from" << Kv("artifact", path);
  return path;
}

int TrainExitCode(const absl::Status& status, const char* command) {
  if (status.ok()) return 0;
  std::fprintf(stderr, "%s: %s: %s\n", command, absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str());
  return status.GetPayload(kGateRefusedPayload).has_value() ? kExitGateRefused : 1;
}

JsonObject ReportEvaluation(const trainer::Split& split, const trainer::EvalResult& valid,
                            const trainer::EvalResult& test, const trainer::EvalOptions& eval) {
  PrintMetrics("validation", valid);
  PrintMetrics("test", test);
  JsonObject summary = test.ToJson("test_");
  summary.Merge(valid.ToJson("valid_"));
  if (absl::GetFlag(FLAGS_popularity)) {
    trainer::EvalResult pop = trainer::EvaluatePopularity(split, trainer::SplitPart::kTest, eval);
    PrintMetrics("popularity, test", pop);
    summary.Merge(pop.ToJson("popularity_test_"));
  }
  return summary;
}

int RunTrain(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "dgsr train: unexpected argument '%s'\n", args[0].c_str());
    return 2;
  }
  return TrainExitCode(Train(), "dgsr train");
}

// What this process trained: a resumed run that was already complete trains nothing.
std::string TrainingSpeedNote(double samples_per_s, double train_seconds) {
  if (train_seconds <= 0) return "no epoch left to train (the run in --run_dir was complete)";
  return absl::StrCat(static_cast<int64_t>(samples_per_s + 0.5), " training samples/s in this process");
}

}  // namespace dgsr::cli
