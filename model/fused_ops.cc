#include "model/fused_ops.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <atomic>
#include <cmath>
#include <mutex>

namespace dgsr::model {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kRowGrain = 64;  // rows per parallel task

// Shapes, dtypes and devices shared by both ops; returns the contiguous index tensors.
void CheckInputs(const char* op, const Tensor& rows_input, int64_t rows_input_cols, const Tensor& k,
                 const Tensor& nbr, const Tensor& length) {
  TORCH_CHECK(k.dim() == 2, op, ": K must be [S, d]");
  TORCH_CHECK(nbr.dim() == 2 && nbr.scalar_type() == torch::kInt64, op, ": nbr must be int64 [R, W]");
  TORCH_CHECK(length.dim() == 1 && length.scalar_type() == torch::kInt64 && length.size(0) == nbr.size(0), op,
              ": length must be int64 [R]");
  TORCH_CHECK(rows_input.dim() == 2 && rows_input.size(0) == nbr.size(0) && rows_input.size(1) == rows_input_cols,
              op, ": row input has the wrong shape");
  TORCH_CHECK(rows_input.scalar_type() == k.scalar_type(), op, ": float inputs must share a dtype");
  TORCH_CHECK(k.device().is_cpu() && nbr.device().is_cpu() && rows_input.device().is_cpu() &&
                  length.device().is_cpu(),
              op, ": CPU tensors only (the portable network variant runs elsewhere)");
}

// Calls body(r, j, idx) for every valid slot of rows [begin, end); false if an index is out of range.
template <typename Body>
bool ForEachSlot(const int64_t* nbr, const int64_t* len, int64_t width, int64_t num_src, int64_t begin,
                 int64_t end, Body&& body) {
  for (int64_t r = begin; r < end; ++r) {
    const int64_t n = std::min(len[r], width);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t idx = nbr[r * width + j];
      if (idx < 0 || idx >= num_src) return false;
      body(r, j, idx);
    }
  }
  return true;
}

template <typename T>
inline T Dot(const T* a, const T* b, int64_t d) {
  T s = 0;
  for (int64_t c = 0; c < d; ++c) s += a[c] * b[c];
  return s;
}

template <typename T>
inline void Axpy(T alpha, const T* x, T* y, int64_t d) {
  for (int64_t c = 0; c < d; ++c) y[c] += alpha * x[c];
}

// e[r, j] = q_r . K[nbr[r, j]], or out_r += w[r, j] K[nbr[r, j]]: the two forward passes.
Tensor DotForward(const Tensor& q, const Tensor& k, const Tensor& nbr, const Tensor& length) {
  const int64_t rows = nbr.size(0), width = nbr.size(1), d = k.size(1), num_src = k.size(0);
  Tensor e = torch::zeros({rows, width}, q.options());
  std::atomic<bool> ok{true};
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "gather_dot", [&] {
    const scalar_t* qp = q.data_ptr<scalar_t>();
    const scalar_t* kp = k.data_ptr<scalar_t>();
    scalar_t* ep = e.data_ptr<scalar_t>();
    at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
      if (!ForEachSlot(nbr.data_ptr<int64_t>(), length.data_ptr<int64_t>(), width, num_src, begin, end,
                       [&](int64_t r, int64_t j, int64_t idx) { ep[r * width + j] = Dot(qp + r * d, kp + idx * d, d); })) {
        ok = false;
      }
    });
  });
  TORCH_CHECK(ok.load(), "gather_dot: neighbour index out of range");
  return e;
}

Tensor SumForward(const Tensor& w, const Tensor& k, const Tensor& nbr, const Tensor& length) {
  const int64_t rows = nbr.size(0), width = nbr.size(1), d = k.size(1), num_src = k.size(0);
  Tensor out = torch::zeros({rows, d}, k.options());
  std::atomic<bool> ok{true};
  AT_DISPATCH_FLOATING_TYPES(k.scalar_type(), "gather_sum", [&] {
    const scalar_t* wp = w.data_ptr<scalar_t>();
    const scalar_t* kp = k.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
      if (!ForEachSlot(nbr.data_ptr<int64_t>(), length.data_ptr<int64_t>(), width, num_src, begin, end,
                       [&](int64_t r, int64_t j, int64_t idx) { Axpy(wp[r * width + j], kp + idx * d, op + r * d, d); })) {
        ok = false;
      }
    });
  });
  TORCH_CHECK(ok.load(), "gather_sum: neighbour index out of range");
  return out;
}

// dK[nbr[r, j]] += coef[r, j] * v_r, in one fixed order (deterministic).
void ScatterIntoK(const Tensor& coef, const Tensor& v, const Tensor& nbr, const Tensor& length, Tensor& dk) {
  const int64_t rows = nbr.size(0), width = nbr.size(1), d = dk.size(1), num_src = dk.size(0);
  AT_DISPATCH_FLOATING_TYPES(dk.scalar_type(), "gather_scatter", [&] {
    const scalar_t* cp = coef.data_ptr<scalar_t>();
    const scalar_t* vp = v.data_ptr<scalar_t>();
    scalar_t* dp = dk.data_ptr<scalar_t>();
    ForEachSlot(nbr.data_ptr<int64_t>(), length.data_ptr<int64_t>(), width, num_src, 0, rows,
                [&](int64_t r, int64_t j, int64_t idx) { Axpy(cp[r * width + j], vp + r * d, dp + idx * d, d); });
  });
}

class GatherDotFunction : public torch::autograd::Function<GatherDotFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& q, const Tensor& k, const Tensor& nbr,
                        const Tensor& length) {
    CheckInputs("gather_dot", q, k.size(1), k, nbr, length);
    Tensor qc = q.contiguous(), kc = k.contiguous(), nc = nbr.contiguous(), lc = length.contiguous();
    ctx->save_for_backward({qc, kc, nc, lc});
    return DotForward(qc, kc, nc, lc);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &q = saved[0], &k = saved[1], &nbr = saved[2], &length = saved[3];
    const Tensor de = grads[0].contiguous();
    // dq_r = sum_j de[r, j] K[nbr[r, j]] is gather_sum; dK[nbr[r, j]] += de[r, j] q_r.
    Tensor dq = SumForward(de, k, nbr, length);
    Tensor dk = torch::zeros_like(k);
    ScatterIntoK(de, q, nbr, length, dk);
    return {dq, dk, Tensor(), Tensor()};
  }
};

class GatherSumFunction : public torch::autograd::Function<GatherSumFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& w, const Tensor& k, const Tensor& nbr,
                        const Tensor& length) {
    CheckInputs("gather_sum", w, nbr.size(1), k, nbr, length);
    Tensor wc = w.contiguous(), kc = k.contiguous(), nc = nbr.contiguous(), lc = length.contiguous();
    ctx->save_for_backward({wc, kc, nc, lc});
    return SumForward(wc, kc, nc, lc);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &w = saved[0], &k = saved[1], &nbr = saved[2], &length = saved[3];
    const Tensor dout = grads[0].contiguous();
    // dw[r, j] = dout_r . K[nbr[r, j]] is gather_dot; dK[nbr[r, j]] += w[r, j] dout_r.
    Tensor dw = DotForward(dout, k, nbr, length);
    Tensor dk = torch::zeros_like(k);
    ScatterIntoK(w, dout, nbr, length, dk);
    return {dw, dk, Tensor(), Tensor()};
  }
};

// Inverted dropout. Elements are taken in blocks of kDropoutBlock; block b's stream is xorshift64*
// seeded with splitmix64(seed + b), and each 64-bit draw decides four elements by 16 bits each.
constexpr int64_t kDropoutBlock = 4096;

inline uint64_t SplitMix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// mask[i] = keep ? 1 / (1 - p) : 0, and y = x * mask.
void DropoutForward(const Tensor& x, double p, uint64_t seed, Tensor& y, Tensor& mask) {
  const int64_t n = x.numel();
  const uint32_t threshold = static_cast<uint32_t>(std::llround(p * 65536.0));  // drop if u16 < threshold
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "dgsr_dropout", [&] {
    const scalar_t scale = static_cast<scalar_t>(1.0 / (1.0 - p));
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    scalar_t* mp = mask.data_ptr<scalar_t>();
    const int64_t blocks = (n + kDropoutBlock - 1) / kDropoutBlock;
    at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        uint64_t state = SplitMix64(seed + static_cast<uint64_t>(b)) | 1;
        const int64_t end = std::min(n, (b + 1) * kDropoutBlock);
        for (int64_t i = b * kDropoutBlock; i < end; i += 4) {
          state ^= state >> 12;
          state ^= state << 25;
          state ^= state >> 27;
          uint64_t bits = state * 0x2545F4914F6CDD1DULL;
          for (int64_t k = i; k < std::min(end, i + 4); ++k, bits >>= 16) {
            const scalar_t m = (bits & 0xFFFF) < threshold ? scalar_t(0) : scale;
            mp[k] = m;
            yp[k] = xp[k] * m;
          }
        }
      }
    });
  });
}

class DropoutFunction : public torch::autograd::Function<DropoutFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, double p) {
    TORCH_CHECK(p >= 0 && p < 1, "dropout: p must be in [0, 1)");
    TORCH_CHECK(x.device().is_cpu(), "dropout: CPU tensors only");
    uint64_t seed;
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      seed = gen.get<at::CPUGeneratorImpl>()->random64();
    }
    Tensor xc = x.contiguous();
    Tensor y = torch::empty_like(xc), mask = torch::empty_like(xc);
    DropoutForward(xc, p, seed, y, mask);
    ctx->save_for_backward({mask});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {grads[0] * ctx->get_saved_variables()[0], Tensor()};
  }
};

Tensor DropoutOp(const Tensor& x, double p, bool train) {
  if (!train || p == 0) return x;
  return DropoutFunction::apply(x, p);
}

Tensor GatherDotOp(const Tensor& q, const Tensor& k, const Tensor& nbr, const Tensor& length) {
  return GatherDotFunction::apply(q, k, nbr, length);
}

Tensor GatherSumOp(const Tensor& w, const Tensor& k, const Tensor& nbr, const Tensor& length) {
  return GatherSumFunction::apply(w, k, nbr, length);
}

}  // namespace

// Registered as composite kernels: the autograd::Function inside records the backward node.
TORCH_LIBRARY(dgsr, m) {
  m.def("gather_dot(Tensor q, Tensor k, Tensor nbr, Tensor length) -> Tensor", &GatherDotOp);
  m.def("gather_sum(Tensor w, Tensor k, Tensor nbr, Tensor length) -> Tensor", &GatherSumOp);
  m.def("dropout(Tensor x, float p, bool train) -> Tensor", &DropoutOp);
}

Tensor GatherDot(const Tensor& q, const Tensor& k, const Tensor& nbr, const Tensor& length) {
  return GatherDotOp(q, k, nbr, length);
}

Tensor GatherSum(const Tensor& w, const Tensor& k, const Tensor& nbr, const Tensor& length) {
  return GatherSumOp(w, k, nbr, length);
}

Tensor FusedDropout(const Tensor& x, double p, bool train) { return DropoutOp(x, p, train); }

bool FusedOpsRegistered() { return true; }

}  // namespace dgsr::model
