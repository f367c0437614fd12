// `dgsr bench <part> [flags]`: dispatches to one benchmark program. Each prints what it measured
// and one JSON object on its last line. A binary built without benchmarks exits 3.
#include <cstdio>
#include <string>
#include <vector>

#ifdef DGSR_WITH_BENCHMARKS
#include "bench/model_bench.h"
#include "bench/serve_bench.h"
#include "bench/store_bench.h"
#endif

namespace dgsr::cli {

int RunBench(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::fprintf(stderr, "usage: dgsr bench <store|sampler|model|train|serve> [flags]\n");
    return 2;
  }
  const std::string& part = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
#ifdef DGSR_WITH_BENCHMARKS
  if (part == "store") return bench::RunStoreBench(rest);
  if (part == "sampler") return bench::RunSamplerBench(rest);
  if (part == "model") return bench::RunModelBench(rest);
  if (part == "train") return bench::RunTrainBench(rest);
  if (part == "serve") return bench::RunServeBench(rest);
#else
  if (part == "store" || part == "sampler" || part == "model" || part == "train" || part == "serve") {
    std::fprintf(stderr, "dgsr bench: this binary was built with -DDGSR_BUILD_BENCHMARKS=OFF\n");
    return 3;
  }
#endif
  std::fprintf(stderr, "dgsr bench: unknown part '%s' (store, sampler, model, train, serve)\n",
               part.c_str());
  return 2;
}

}  // namespace dgsr::cli
