#include "model/torch_runtime.h"

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#include <ATen/Parallel.h>
#include <torch/csrc/jit/python/update_graph_executor_opt.h>

namespace dgsr::model {

namespace {
std::atomic<bool> graph_executor_optimize{false};
}  // namespace

void ConfigureTorchRuntime(int threads, bool graph_optimize) {
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  setenv("BLIS_NUM_THREADS", std::to_string(threads).c_str(), /*overwrite=*/0);
  graph_executor_optimize = graph_optimize;
  ApplyGraphExecutorSetting();
}

void ApplyGraphExecutorSetting() { torch::jit::setGraphExecutorOptimize(graph_executor_optimize.load()); }

}  // namespace dgsr::model
