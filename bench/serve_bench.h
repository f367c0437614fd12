// `dgsr bench serve`: a gRPC load generator against a real `dgsr serve` process on loopback.
// See serve_bench.cc for what it measures; the last output line is one JSON object.
#ifndef DGSR_BENCH_SERVE_BENCH_H_
#define DGSR_BENCH_SERVE_BENCH_H_

#include <string>
#include <vector>

namespace dgsr::bench {

int RunServeBench(const std::vector<std::string>& args);

}  // namespace dgsr::bench

#endif  // DGSR_BENCH_SERVE_BENCH_H_
