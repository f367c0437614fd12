// The training loss of paper eq. 13-14: softmax over every item, cross-entropy with the next
// item, averaged over the batch (the λ term is Adam's weight decay, trainer/adam.h).
//
//   torch::Tensor loss = SoftmaxCrossEntropy(net.ScoreAll(rep), targets);  // [B, C], [B] -> []
//   loss.backward();
//
// Equals torch::nn::functional::cross_entropy in value and gradient. Its backward is one
// vectorised exp over the saved log-softmax plus a scale, instead of libtorch's zero-filled
// NLL gradient followed by a log-softmax backward: over ~24k items at batch 50 that was a tenth of
// a DGSR training step on CPU.
#ifndef DGSR_TRAINER_LOSS_H_
#define DGSR_TRAINER_LOSS_H_

#include <torch/torch.h>

#include <cstddef>

#include "absl/status/status.h"

namespace dgsr::trainer {

// logits [B, C] (float or double), targets [B] int64 in [0, C). Throws c10::Error on bad shapes
// or a target out of range (the trainers turn it into a Status).
torch::Tensor SoftmaxCrossEntropy(const torch::Tensor& logits, const torch::Tensor& targets);

// OK for a finite batch loss. Otherwise FailedPrecondition "training diverged" naming the epoch
// (1-based) and batch: the trainers stop before the optimiser step, so the run directory still
// holds the last finished epoch's checkpoint and no NaN reaches a model.
[[nodiscard]] absl::Status CheckFiniteLoss(double loss, int epoch, size_t batch);

}  // namespace dgsr::trainer

#endif  // DGSR_TRAINER_LOSS_H_
