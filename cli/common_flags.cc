#include "cli/common_flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, model_dir, "",
          "versioned model directory (<dir>/<version>/model.pt): train exports a new version into it (empty: no "
          "export); serve "
          "watches it (as the model named 'default'); recommend reads its newest version");
ABSL_FLAG(std::string, device, "auto", "where the model runs: cpu, cuda, or auto (CUDA when the linked libtorch has it)");
ABSL_FLAG(int, torch_threads, 0,
          "libtorch intra-op threads (0: all cores for train, eval and recommend; 1 per batch for serve, which runs "
          "--batch_threads batches at once)");
