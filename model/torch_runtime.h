// The process-wide libtorch settings that both networks, the trainers and the server run under.
#pragma once

namespace dgsr::model {

// Intra-op threads (0 = all cores; Debian's libtorch
// defaults to half) with BLIS told the same, and the TorchScript graph executor's optimisation
// (off unless asked for). The optimised executor profiles the first runs and then swaps in
// re-specialised graphs (dropout among them), so a resumed training run would diverge from an
// uninterrupted one; without it every run takes the same path (and there is no warm-up
// recompilation). libtorch keeps that switch per thread, so it is stored here and every network
// call applies it to its own thread (ApplyGraphExecutorSetting): training's worker threads and the
// server's batch workers follow it too.
void ConfigureTorchRuntime(int threads, bool graph_optimize = false);

// Sets the calling thread's graph executor optimisation to what ConfigureTorchRuntime chose (off
// when it was never called). DgsrNetwork and SasRecNetwork call it before running their module.
void ApplyGraphExecutorSetting();

}  // namespace dgsr::model
