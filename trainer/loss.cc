#include "trainer/loss.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace dgsr::trainer {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class SoftmaxCrossEntropyFunction : public torch::autograd::Function<SoftmaxCrossEntropyFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& logits, const Tensor& targets) {
    TORCH_CHECK(logits.dim() == 2 && targets.dim() == 1 && targets.size(0) == logits.size(0) &&
                    targets.scalar_type() == torch::kInt64,
                "SoftmaxCrossEntropy: logits must be [B, C] and targets [B] int64");
    TORCH_CHECK(logits.size(0) > 0, "SoftmaxCrossEntropy: empty batch");
    const Tensor t = targets.contiguous();
    const int64_t* tp = t.data_ptr<int64_t>();
    for (int64_t b = 0; b < t.numel(); ++b) {
      TORCH_CHECK(tp[b] >= 0 && tp[b] < logits.size(1), "SoftmaxCrossEntropy: target ", tp[b],
                  " out of range [0, ", logits.size(1), ")");
    }
    Tensor log_probs = torch::log_softmax(logits, 1);
    ctx->save_for_backward({log_probs, t});
    return -log_probs.gather(1, t.unsqueeze(1)).mean();
  }

  // d loss / d logits = (softmax - onehot(target)) / B.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor& log_probs = saved[0];
    const Tensor& t = saved[1];
    Tensor g = log_probs.exp();
    const int64_t rows = g.size(0), cols = g.size(1);
    const int64_t* tp = t.data_ptr<int64_t>();
    AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "softmax_cross_entropy_backward", [&] {
      scalar_t* gp = g.data_ptr<scalar_t>();
      for (int64_t b = 0; b < rows; ++b) gp[b * cols + tp[b]] -= 1;
    });
    g.mul_(grads[0] / static_cast<double>(rows));
    return {g, Tensor()};
  }
};

}  // namespace

Tensor SoftmaxCrossEntropy(const Tensor& logits, const Tensor& targets) {
  return SoftmaxCrossEntropyFunction::apply(logits, targets);
}

absl::Status CheckFiniteLoss(double loss, int epoch, size_t batch) {
  if (std::isfinite(loss)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "training diverged: the loss of epoch ", epoch, ", batch ", batch + 1, " is ", loss,
      ". Stopped before the optimiser step; the run directory keeps the last finished epoch. Start a new run "
      "with a lower --learning_rate or a larger --l2"));
}

}  // namespace dgsr::trainer
