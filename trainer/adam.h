// Adam (Kingma & Ba) with L2 weight decay added to the gradient, exactly as torch::optim::Adam
// with weight_decay (the λ of paper eq. 14), but fused: one pass over each parameter's memory per
// step instead of the ~10 tensor operations libtorch's Adam issues. DGSR's two embedding tables
// hold ~98% of its parameters and every row decays every step, so this pass is a large share of a
// training step.
//
//   FusedAdam adam(network.Parameters(), {.lr = 1e-3, .weight_decay = 1e-4});
//   loss.backward();
//   adam.Step();        // updates every parameter that has a gradient, then clears gradients
//
// Gradients may be dense or sparse (the fused network's embedding rows, model/dgsr_network.h): a
// sparse gradient counts as zero outside its rows, so the update equals the dense one, and the
// pass reads no [rows x d] gradient.
//
// Thread-compatible. Parameters must be contiguous float32 CPU tensors.
#ifndef DGSR_TRAINER_ADAM_H_
#define DGSR_TRAINER_ADAM_H_

#include <torch/script.h>

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace dgsr::trainer {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class FusedAdam {
 public:
  FusedAdam(std::vector<torch::Tensor> params, AdamOptions options);

  // One update of every parameter with a defined gradient; gradients are then reset (undefined),
  // so the next backward writes them fresh instead of accumulating into zeros.
  void Step();

  // The learning rate of the following steps (learning-rate decay); the moments are kept.
  void set_lr(double lr) { options_.lr = lr; }

  // Moments and step counts, for checkpoints. Load fails (InvalidArgument) on shape mismatch.
  [[nodiscard]] absl::Status Save(const std::string& path) const;
  [[nodiscard]] absl::Status Load(const std::string& path);

 private:
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> exp_avg_, exp_avg_sq_;
  std::vector<int64_t> steps_;
  AdamOptions options_;
};

}  // namespace dgsr::trainer

#endif  // DGSR_TRAINER_ADAM_H_
