#include <algorithm>
#include <cstdio>

#include "absl/flags/reflection.h"
#include "absl/strings/match.h"

#include "cli/subcommand.h"

namespace dgsr::cli {

int RunImport(const std::vector<std::string>& args);  // cmd_import.cc
int RunSynth(const std::vector<std::string>& args);   // cmd_synth.cc
int RunTrain(const std::vector<std::string>& args);  // cmd_train.cc
int RunEval(const std::vector<std::string>& args);  // cmd_eval.cc
int RunServe(const std::vector<std::string>& args);  // cmd_serve.cc
int RunRecommend(const std::vector<std::string>& args);  // cmd_recommend.cc
int RunIngest(const std::vector<std::string>& args);  // cmd_ingest.cc
int RunHealth(const std::vector<std::string>& args);  // cmd_health.cc
int RunSnapshot(const std::vector<std::string>& args);  // cmd_snapshot.cc
int RunBench(const std::vector<std::string>& args);  // cmd_bench.cc

const std::vector<Subcommand>& AllSubcommands() {
  static const auto* commands = new std::vector<Subcommand>{
      {"import", "import a real dataset file into a graph store",
       "dgsr import --store=DIR --format=FORMAT --input=FILE [--kcore=5] [--time_refinement=none]\n"
       "Parses and validates the whole file first (a bad line fails with file:line and nothing is\n"
       "written), applies the iterated k-core (and a time refinement if asked for), then ingests in\n"
       "time order; same-time events keep their file order.\n"
       "Order-only formats (sasrec, hgn) get time = position in the user's sequence. DGSR's Games\n"
       "and CDs are the raw files: use --kcore=0. Re-running an import adds nothing.\n"
       "--hold_out_fraction=0.1 --hold_out_file=F imports the earliest ~90% (cut at one time) and\n"
       "writes the rest to F for `dgsr ingest --events_file=F` into a running server. Also reads\n"
       "--store (the store directory; defined with `dgsr train`).",
       {"cli/cmd_import.cc", "cli/store_flags.cc"}, RunImport},
      {"synth", "generate a synthetic interaction dataset into a graph store",
       "dgsr synth --store=DIR [--users=2000] [--items=1000] [--events_per_user=50] [--seed=1]\n"
       "Deterministic by --seed: power-law popularity, item-to-item transitions, drifting\n"
       "interests, increasing timestamps. --store (the store directory) and --seed (default 1) are\n"
       "shared with `dgsr train` and listed there.",
       {"cli/cmd_synth.cc", "cli/store_flags.cc"}, RunSynth},
      {"train", "train a DGSR model from a store snapshot and export it",
       "Trains DGSR (--preset: inductive, the default; paper; authors; modern) on a snapshot of --store (or on\n"
       "--snapshot), chooses the checkpoint on validation, reports test metrics once (100 sampled\n"
       "negatives for the right user, ties against the target; and full ranking), and exports a new\n"
       "version into --model_dir. With --regression_gate it first measures the version now newest in\n"
       "--model_dir on the same validation samples and exports only if the new model is not worse by\n"
       "more than --gate_tolerance; otherwise it keeps that version, prints both figures and exits 4.\n"
       "--warm_start=<model dir> starts from that model's weights (same store, an older snapshot, the\n"
       "same model flags): users and items created since get fresh rows, the optimizer starts afresh.\n"
       "--model=sasrec trains the SASRec+ baseline instead (warm start too).",
       {"cli/cmd_train.cc", "cli/store_flags.cc", "cli/common_flags.cc", "cli/snapshot_source.cc"}, RunTrain},
      {"eval", "evaluate a model (sampled and full-ranking metrics)",
       "Evaluates --artifact (a model.pt or a versioned model directory) or --baseline=popularity on the\n"
       "test (or validation) samples of a snapshot: 100 negatives drawn for the right user with a\n"
       "recorded seed, ties counted against the target; full ranking over all items with the user's\n"
       "earlier items excluded; metrics by history length. --json prints one JSON object.\n"
       "Also reads --eval_seed, --max_eval_samples and --full_ranking (see `dgsr train --help`).",
       {"cli/cmd_eval.cc", "cli/store_flags.cc", "cli/common_flags.cc", "cli/snapshot_source.cc"}, RunEval},
      {"serve", "run the gRPC recommendation service (Recommend, Ingest, health, metrics)",
       "dgsr serve --store=DIR --model_dir=DIR [--listen=127.0.0.1:50051] [--metrics_listen=127.0.0.1:9464]\n"
       "Opens the store (and locks it: no other process may open it while the server runs), loads and\n"
       "warms the newest version of each model, and serves dgsr.v1.RecommendationService with gRPC\n"
       "health and reflection, and Prometheus metrics at http://<metrics_listen>/metrics. New versions\n"
       "that appear in a model directory are loaded, checked and warmed, then swapped in without a\n"
       "failed request; a broken one is rejected and the old one keeps serving. SIGTERM or Ctrl-C:\n"
       "NOT_SERVING, in-flight calls drain, the store is flushed and closed, exit 0.",
       {"cli/cmd_serve.cc", "cli/store_flags.cc", "cli/common_flags.cc"}, RunServe},
      {"recommend", "top-K recommendations for users, from a server or in-process",
       "dgsr recommend --server=HOST:PORT --user_ids=u1,u2 [--k=10] [--candidates=...] [--exclude=...]\n"
       "asks a running server (RecommendBatch). Without --server it runs in-process on --store (which\n"
       "no server may hold open) with --artifact (a model.pt) or --model_dir (its newest version), and\n"
       "also prints each user's recent items. Seen items are excluded unless --noexclude_seen.",
       {"cli/cmd_recommend.cc", "cli/store_flags.cc", "cli/common_flags.cc", "cli/client_flags.cc"}, RunRecommend},
      {"ingest", "send interaction events to a running server",
       "dgsr ingest --server=HOST:PORT (--events='u1,i9,1700000000[,event_id];...' | --events_file=FILE|-)\n"
       "Parses every event first (a malformed line sends nothing), then streams batches of\n"
       "--ingest_batch_size events (IngestStream; each batch atomic) and prints what the server accepted,\n"
       "the duplicates it skipped (by event id) and what its acknowledgement means for durability.",
       {"cli/cmd_ingest.cc", "cli/client_flags.cc"}, RunIngest},
      {"health", "ask a running server whether it is SERVING (exit 0) or not (exit 1)",
       "dgsr health --server=HOST:PORT [--wait_s=30] [--service=dgsr.v1.RecommendationService]\n"
       "Calls grpc.health.v1.Health/Check; with --wait_s it keeps asking until SERVING or the time is up.",
       {"cli/cmd_health.cc", "cli/client_flags.cc"}, RunHealth},
      {"snapshot", "ask a running server for a consistent snapshot of its store (for training)",
       "dgsr snapshot --server=HOST:PORT [--path_only]\n"
       "The server writes a RocksDB checkpoint of its store into its --snapshots_dir (default\n"
       "<store>.snapshots/<unix micros>), keeps the newest --snapshot_keep, and answers with the path;\n"
       "`dgsr train --snapshot=PATH` trains on it while the server keeps serving.",
       {"cli/cmd_snapshot.cc", "cli/client_flags.cc"}, RunSnapshot},
      {"bench", "benchmarks: store | sampler | model | train | serve",
       "dgsr bench <part> [flags]: runs one benchmark program; its last output line is one JSON\n"
       "object.\n"
       "  store    ingest vs raw RocksDB puts, n-most-recent query latency, memory, reopen\n"
       "  sampler  sub-graph sampling (Algorithm 1) rate on --bench_dataset\n"
       "  model    forward/backward/Adam step times of the DGSR network, fused vs portable\n"
       "  train    end-to-end training samples/s with the sampler overlapped, vs the portable network\n"
       "  serve    gRPC load generator against a spawned dgsr serve: latency at a target QPS, peak QPS\n"
       "           with and without batching, ingest vs in-process, mixed load",
       {"cli/cmd_bench.cc", "bench/store_bench.cc", "bench/model_bench.cc", "bench/serve_bench.cc"}, RunBench},
  };
  return *commands;
}

std::vector<absl::CommandLineFlag*> FlagsOf(const Subcommand& cmd) {
  auto belongs = [&cmd](const absl::CommandLineFlag& flag) {
    return std::any_of(cmd.flag_files.begin(), cmd.flag_files.end(), [&](std::string_view f) {
      return absl::EndsWith(flag.Filename(), absl::string_view(f.data(), f.size()));
    });
  };
  std::vector<absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (belongs(*flag)) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(), [](auto* a, auto* b) { return a->Name() < b->Name(); });
  return flags;
}

std::vector<absl::CommandLineFlag*> FlagsOf(std::string_view name) {
  for (const Subcommand& s : AllSubcommands()) {
    if (s.name == name) return FlagsOf(s);
  }
  return {};
}

}  // namespace dgsr::cli
