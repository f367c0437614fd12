// The model-side benchmarks (issues 4 and 5). Each prints what it measured and one JSON object on
// its last line; nothing asserts on time. Default dataset: ../shared/data/amazon-games-sasrec.
//   dgsr bench sampler  sub-graphs/s per core for m = 1..4, n = 50 (pruned blocks for L = 2, and
//                       the full sub-graph), mean edges per sample.
//   dgsr bench model    forward latency at batch 1/8/64 on one core, pruned vs full computation
//                       (speed-up and max |difference|), achieved FLOP/s next to a same-run GEMM,
//                       and the per-step training cost split into forward/backward/Adam.
//   dgsr bench train    training samples/s through the real trainer pipeline, sampling share,
//                       peak RSS, and the epoch-time estimate.
#ifndef DGSR_BENCH_MODEL_BENCH_H_
#define DGSR_BENCH_MODEL_BENCH_H_

#include <string>
#include <vector>

namespace dgsr::bench {

int RunSamplerBench(const std::vector<std::string>& args);
int RunModelBench(const std::vector<std::string>& args);
int RunTrainBench(const std::vector<std::string>& args);

}  // namespace dgsr::bench

#endif  // DGSR_BENCH_MODEL_BENCH_H_
