// Fused CPU kernels for the DGSR network (TorchScript ops dgsr::gather_dot, dgsr::gather_sum and
// dgsr::dropout, with autograd).
//
// Every DGSR aggregation reads, for each destination row r, the rows of a source table K picked by
// a right-padded neighbour list nbr[r, 0..length[r]). Written with stock ops that means building a
// [rows x width x d] tensor of gathered neighbours (K.index_select(nbr)) and multiplying it, which
// streams hundreds of MB per training step. These two kernels read K's rows in place instead:
//
//   gather_dot(q [R, d], K [S, d], nbr [R, W], length [R]) -> e [R, W]
//       e[r, j] = q_r . K[nbr[r, j]]  for j < length[r], 0 for padding
//   gather_sum(w [R, W], K [S, d], nbr [R, W], length [R]) -> out [R, d]
//       out_r = sum_{j < length[r]} w[r, j] K[nbr[r, j]]   (padding ignored)
//
// Both are differentiable in their float inputs (q, K, w). Results are deterministic: rows are
// computed independently, and the gradient scatter into K runs in one fixed order.
// Inputs: float32 or float64, CPU, nbr/length int64; a padded slot's index is never read; an index
// outside [0, S) in a valid slot is an error (c10::Error), not a read out of bounds.
//
//   gru_last(data [N, d_in], batch_sizes [T], w_ih, w_hh, b_ih, b_hh) -> h [B, d]: a one-layer
//       GRU (PyTorch's equations and gate order) over a packed batch (time-major, rows sorted
//       longest first, batch_sizes on the CPU as for torch.gru), returning each row's final
//       state; backward through time is written out, so no per-step slice reaches autograd.
//       In float the gate nonlinearities use a vectorisable polynomial exp (relative error
//       < 2e-7); in double, std::exp.
//   dropout(x, p, train) -> y: inverted dropout (y = x * keep / (1 - p), keep with probability
//       1 - p), the same distribution as torch.dropout, with a one-pass kernel and a cheap
//       counter-based generator: libtorch's CPU bernoulli_ draws each element through mt19937
//       and took a sixth of a training step. Deterministic under torch::manual_seed: each call
//       draws one 64-bit seed from the default CPU generator; the mask does not depend on the
//       thread count. Probabilities are quantised to 1/65536 (the scale matches the quantised
//       probability). Not training or p = 0: a copy of x.
// Backward passes are first-order only (no create_graph).
//
// The TorchScript network calls them only in the "fused" kernel variant (model/dgsr_network.cc);
// saved artifacts always use the portable stock-op variant, so they load anywhere (Python, CUDA).
#ifndef DGSR_MODEL_FUSED_OPS_H_
#define DGSR_MODEL_FUSED_OPS_H_

#include <torch/script.h>

namespace dgsr::model {

// The same computations as the TorchScript ops, callable from C++ (with autograd).
torch::Tensor GatherDot(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& nbr,
                        const torch::Tensor& length);
torch::Tensor GatherSum(const torch::Tensor& w, const torch::Tensor& k, const torch::Tensor& nbr,
                        const torch::Tensor& length);

torch::Tensor GruLast(const torch::Tensor& data, const torch::Tensor& batch_sizes, const torch::Tensor& w_ih,
                      const torch::Tensor& w_hh, const torch::Tensor& b_ih, const torch::Tensor& b_hh);
torch::Tensor FusedDropout(const torch::Tensor& x, double p, bool train);

// While it lives, FusedDropout calls on this thread take their seeds from a counter stream
// started at `seed` instead of the default CPU generator. Data-parallel training (trainer/
// trainer.h, train_threads) gives each slice of a batch its own stream, drawn in a fixed order, so
// its masks do not depend on which thread ran first. Not nestable on one thread.
class ScopedDropoutStream {
 public:
  explicit ScopedDropoutStream(uint64_t seed);
  ~ScopedDropoutStream();
  ScopedDropoutStream(const ScopedDropoutStream&) = delete;
  ScopedDropoutStream& operator=(const ScopedDropoutStream&) = delete;
};

// True once the ops are registered with the TorchScript runtime (always, after static init; calling
// it also keeps the registering object file linked in).
bool FusedOpsRegistered();

}  // namespace dgsr::model

#endif  // DGSR_MODEL_FUSED_OPS_H_
