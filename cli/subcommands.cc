#include <cstdio>

#include "cli/subcommand.h"

namespace dgsr::cli {

int NotBuiltYet(const char* name, const char* issue) {
  std::fprintf(stderr, "dgsr %s: not built yet (tracked in issue %s). Nothing was done.\n", name,
               issue);
  return 3;
}

int RunImport(const std::vector<std::string>&) { return NotBuiltYet("import", "#3"); }
int RunSynth(const std::vector<std::string>&) { return NotBuiltYet("synth", "#3"); }
int RunTrain(const std::vector<std::string>& args);  // cmd_train.cc
int RunEval(const std::vector<std::string>&) { return NotBuiltYet("eval", "#5"); }
int RunServe(const std::vector<std::string>&) { return NotBuiltYet("serve", "(server)"); }
int RunRecommend(const std::vector<std::string>&) { return NotBuiltYet("recommend", "(server)"); }
int RunIngest(const std::vector<std::string>&) { return NotBuiltYet("ingest", "(server)"); }
int RunBench(const std::vector<std::string>&) { return NotBuiltYet("bench", "#3/#4/#5"); }

const std::vector<Subcommand>& AllSubcommands() {
  static const auto* commands = new std::vector<Subcommand>{
      {"import", "import a real dataset file into a graph store", "", {"cli/cmd_import.cc"}, RunImport},
      {"synth", "generate a synthetic interaction dataset into a graph store", "", {"cli/cmd_synth.cc"}, RunSynth},
      {"train", "train a DGSR model from a store snapshot and export it",
       "Trains DGSR (paper or authors preset) on a snapshot of --store (or on --snapshot), chooses the\n"
       "checkpoint on validation, reports test metrics once (100 sampled negatives for the right user,\n"
       "ties against the target; and full ranking), and exports a new version into --model_dir.",
       {"cli/cmd_train.cc"}, RunTrain},
      {"eval", "evaluate a model (sampled and full-ranking metrics)", "", {"cli/cmd_eval.cc"}, RunEval},
      {"serve", "run the gRPC Recommend/Ingest service", "", {"cli/cmd_serve.cc"}, RunServe},
      {"recommend", "ask a running server for recommendations", "", {"cli/cmd_recommend.cc"}, RunRecommend},
      {"ingest", "send events to a running server", "", {"cli/cmd_ingest.cc"}, RunIngest},
      {"bench", "benchmarks: store | sampler | model | train | serve", "", {"cli/cmd_bench.cc"}, RunBench},
  };
  return *commands;
}

}  // namespace dgsr::cli
