#include "model/fused_ops.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <atomic>
#include <bit>
#include <cstdint>
#include <cmath>
#include <mutex>
#include <vector>

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
  TORCH_CHECK(threshold < 65536, "dropout: p rounds to 1");
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "dgsr_dropout", [&] {
    // Unbiased for the quantised probability: E[mask] = 1.
    const scalar_t scale = static_cast<scalar_t>(65536.0 / (65536.0 - threshold));
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

// The calling thread's ScopedDropoutStream: active, and its next seed.
struct DropoutStream {
  bool active = false;
  uint64_t next = 0;
};
thread_local DropoutStream dropout_stream;

uint64_t NextDropoutSeed() {
  if (dropout_stream.active) return SplitMix64(dropout_stream.next++);
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

class DropoutFunction : public torch::autograd::Function<DropoutFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, double p) {
    TORCH_CHECK(p >= 0 && p < 1, "dropout: p must be in [0, 1)");
    TORCH_CHECK(x.device().is_cpu(), "dropout: CPU tensors only");
    const uint64_t seed = NextDropoutSeed();
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

// exp for the GRU gates in a form the compiler vectorises (no library call per element):
// x log2(e) = n + f with n an integer and |f| <= 1/2, 2^f by Cephes' exp2f polynomial (relative
// error below 2e-7, like expf's), 2^n from the exponent bits. The input is clamped to
// [-87, 88], where float exp neither underflows to a denormal nor overflows. Double keeps std::exp,
// which the tests' double-precision references use.
inline float GateExp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float t = x * 1.44269504088896341f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds t to an integer
  const float n = (t + kRound) - kRound;
  const float f = t - n;
  float p = 1.535336188319500e-4f;
  p = p * f + 1.339887440266574e-3f;
  p = p * f + 9.618437357674640e-3f;
  p = p * f + 5.550332471162809e-2f;
  p = p * f + 2.402264791363012e-1f;
  p = p * f + 6.931472028550421e-1f;
  p = p * f + 1.0f;
  return p * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}
inline double GateExp(double x) { return std::exp(x); }

template <typename T>
inline T Sigmoid(T x) {
  return 1 / (1 + GateExp(-x));
}

// tanh(x) = 1 - 2 / (e^{2x} + 1): exact at the saturated ends, absolute error ~1e-7 near 0.
template <typename T>
inline T Tanh(T x) {
  return 1 - 2 / (GateExp(2 * x) + 1);
}

// One step of the GRU's gate arithmetic for `rows` rows. gi, gh: the input and hidden parts of
// the pre-activations [rows, 3H] (r, z, n); h: the rows' states, updated in place; saved: per row
// r, z, n, the hidden part of n's pre-activation and h_prev [rows, 5H].
template <typename T>
void GruGatesForward(const T* __restrict gi, const T* __restrict gh, T* __restrict h, T* __restrict saved,
                     int64_t rows, int64_t hidden) {
  for (int64_t i = 0; i < rows; ++i) {
    const T* __restrict a = gi + i * 3 * hidden;
    const T* __restrict b = gh + i * 3 * hidden;
    T* __restrict hrow = h + i * hidden;
    T* __restrict srow = saved + i * 5 * hidden;
    for (int64_t c = 0; c < hidden; ++c) {
      const T r = Sigmoid(a[c] + b[c]);
      const T z = Sigmoid(a[hidden + c] + b[hidden + c]);
      const T n = Tanh(a[2 * hidden + c] + r * b[2 * hidden + c]);
      srow[c] = r;
      srow[hidden + c] = z;
      srow[2 * hidden + c] = n;
      srow[3 * hidden + c] = b[2 * hidden + c];
      srow[4 * hidden + c] = hrow[c];
      hrow[c] = (1 - z) * n + z * hrow[c];
    }
  }
}

// Its backward for one step: dh [rows, H] holds the gradient w.r.t. the step's output state and
// leaves with the direct path to h_prev (the gate paths are added by the caller's GEMM); dgi and
// dgh [rows, 3H] receive the pre-activation gradients of the input and hidden parts.
template <typename T>
void GruGatesBackward(const T* __restrict saved, T* __restrict dh, T* __restrict dgi, T* __restrict dgh,
                      int64_t rows, int64_t hidden) {
  for (int64_t i = 0; i < rows; ++i) {
    const T* __restrict srow = saved + i * 5 * hidden;
    T* __restrict dhrow = dh + i * hidden;
    T* __restrict dgirow = dgi + i * 3 * hidden;
    T* __restrict dghrow = dgh + i * 3 * hidden;
    for (int64_t c = 0; c < hidden; ++c) {
      const T r = srow[c], z = srow[hidden + c], n = srow[2 * hidden + c];
      const T ghn = srow[3 * hidden + c], hprev = srow[4 * hidden + c], g = dhrow[c];
      const T dn = g * (1 - z) * (1 - n * n);
      const T dz = g * (hprev - n) * z * (1 - z);
      const T dr = dn * ghn * r * (1 - r);
      dgirow[c] = dr;
      dgirow[hidden + c] = dz;
      dgirow[2 * hidden + c] = dn;
      dghrow[c] = dr;
      dghrow[hidden + c] = dz;
      dghrow[2 * hidden + c] = dn * r;
      dhrow[c] = g * z;
    }
  }
}

// GRU over a packed batch (time-major, longest row first; PyTorch's gate order r, z, n), returning
// only the final state of every row. Forward saves the gates; backward runs through time by hand,
// so the per-step slicing of a packed torch.gru never reaches autograd (on CPU its slice-backward
// zero-fills made the paper preset's backward pass five times slower than its forward).
struct GruSteps {
  std::vector<int64_t> sizes, offsets;  // rows active at step t, and where step t starts in the data
};

GruSteps StepsOf(const Tensor& batch_sizes, int64_t total) {
  TORCH_CHECK(batch_sizes.dim() == 1 && batch_sizes.scalar_type() == torch::kInt64 && batch_sizes.device().is_cpu(),
              "gru_last: batch_sizes must be a CPU int64 vector");
  GruSteps s;
  const int64_t* bs = batch_sizes.data_ptr<int64_t>();
  int64_t off = 0;
  for (int64_t t = 0; t < batch_sizes.size(0); ++t) {
    TORCH_CHECK(bs[t] > 0 && (t == 0 || bs[t] <= bs[t - 1]), "gru_last: batch_sizes must be positive, non-increasing");
    s.sizes.push_back(bs[t]);
    s.offsets.push_back(off);
    off += bs[t];
  }
  TORCH_CHECK(off == total, "gru_last: batch_sizes do not add up to the packed rows");
  return s;
}

class GruLastFunction : public torch::autograd::Function<GruLastFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& data, const Tensor& batch_sizes, const Tensor& w_ih,
                        const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
    const int64_t hidden = w_hh.size(1);
    TORCH_CHECK(data.dim() == 2 && w_ih.dim() == 2 && w_ih.size(0) == 3 * hidden && w_ih.size(1) == data.size(1) &&
                    w_hh.size(0) == 3 * hidden && b_ih.dim() == 1 && b_ih.size(0) == 3 * hidden &&
                    b_hh.dim() == 1 && b_hh.size(0) == 3 * hidden,
                "gru_last: weight shapes do not match the input");
    TORCH_CHECK(data.device().is_cpu(), "gru_last: CPU tensors only");
    const GruSteps steps = StepsOf(batch_sizes, data.size(0));
    const int64_t rows = steps.sizes.empty() ? 0 : steps.sizes[0];
    Tensor gi = torch::addmm(b_ih, data, w_ih.t());  // [N, 3H], every step's input part at once
    Tensor h = torch::zeros({rows, hidden}, data.options());
    // Saved per packed row: r, z, n, the hidden part of n's pre-activation, and h_prev.
    Tensor saved = torch::empty({data.size(0), 5, hidden}, data.options());
    // The hidden part of every step goes into one buffer: no allocation per step.
    Tensor gh_all = torch::empty({rows, 3 * hidden}, data.options());
    const Tensor w_hh_t = w_hh.t().contiguous();
    AT_DISPATCH_FLOATING_TYPES(data.scalar_type(), "gru_last", [&] {
      for (size_t t = 0; t < steps.sizes.size(); ++t) {
        const int64_t bs = steps.sizes[t], off = steps.offsets[t];
        Tensor hp = h.narrow(0, 0, bs);
        Tensor gh = gh_all.narrow(0, 0, bs);
        at::addmm_out(gh, b_hh, hp, w_hh_t);  // [bs, 3H]
        const scalar_t* gip = gi.data_ptr<scalar_t>() + off * 3 * hidden;
        scalar_t* sp = saved.data_ptr<scalar_t>() + off * 5 * hidden;
        GruGatesForward(gip, gh.data_ptr<scalar_t>(), hp.data_ptr<scalar_t>(), sp, bs, hidden);
      }
    });
    ctx->save_for_backward({data, batch_sizes, w_ih, w_hh, saved});
    return h;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto v = ctx->get_saved_variables();
    const Tensor &data = v[0], &batch_sizes = v[1], &w_ih = v[2], &w_hh = v[3], &saved = v[4];
    const int64_t hidden = w_hh.size(1);
    const GruSteps steps = StepsOf(batch_sizes, data.size(0));
    Tensor dh = grads[0].contiguous().clone();  // gradient w.r.t. each row's current state
    // Pre-activation gradients of every packed row: input part (dgi) and hidden part (dgh). Only
    // the path to h_prev runs step by step; the weight gradients are one GEMM each at the end.
    Tensor dgi = torch::empty({data.size(0), 3 * hidden}, data.options());
    Tensor dgh = torch::empty({data.size(0), 3 * hidden}, data.options());
    AT_DISPATCH_FLOATING_TYPES(data.scalar_type(), "gru_last_backward", [&] {
      for (int64_t t = static_cast<int64_t>(steps.sizes.size()) - 1; t >= 0; --t) {
        const int64_t bs = steps.sizes[t], off = steps.offsets[t];
        GruGatesBackward(saved.data_ptr<scalar_t>() + off * 5 * hidden, dh.data_ptr<scalar_t>(),
                         dgi.data_ptr<scalar_t>() + off * 3 * hidden, dgh.data_ptr<scalar_t>() + off * 3 * hidden,
                         bs, hidden);
        dh.narrow(0, 0, bs).addmm_(dgh.narrow(0, off, bs), w_hh);
      }
    });
    Tensor dw_hh = torch::mm(dgh.t(), saved.select(1, 4));
    Tensor db_hh = dgh.sum(0);
    Tensor ddata = torch::mm(dgi, w_ih);
    Tensor dw_ih = torch::mm(dgi.t(), data);
    Tensor db_ih = dgi.sum(0);
    return {ddata, Tensor(), dw_ih, dw_hh, db_ih, db_hh};
  }
};

}  // namespace

Tensor GatherDot(const Tensor& q, const Tensor& k, const Tensor& nbr, const Tensor& length) {
  return GatherDotFunction::apply(q, k, nbr, length);
}

Tensor GatherSum(const Tensor& w, const Tensor& k, const Tensor& nbr, const Tensor& length) {
  return GatherSumFunction::apply(w, k, nbr, length);
}

Tensor FusedDropout(const Tensor& x, double p, bool train) {
  if (!train || p == 0) return x.clone();  // a new tensor, as the schema promises (the network skips the call)
  return DropoutFunction::apply(x, p);
}

ScopedDropoutStream::ScopedDropoutStream(uint64_t seed) {
  TORCH_CHECK(!dropout_stream.active, "ScopedDropoutStream: one per thread at a time");
  dropout_stream = {true, seed};
}
ScopedDropoutStream::~ScopedDropoutStream() { dropout_stream = {}; }

Tensor GruLast(const Tensor& data, const Tensor& batch_sizes, const Tensor& w_ih, const Tensor& w_hh,
               const Tensor& b_ih, const Tensor& b_hh) {
  return GruLastFunction::apply(data.contiguous(), batch_sizes.contiguous(), w_ih.contiguous(),
                                w_hh.contiguous(), b_ih.contiguous(), b_hh.contiguous());
}

// Registered as composite kernels: the autograd::Function inside records the backward node.
TORCH_LIBRARY(dgsr, m) {
  m.def("gather_dot(Tensor q, Tensor k, Tensor nbr, Tensor length) -> Tensor", &GatherDot);
  m.def("gather_sum(Tensor w, Tensor k, Tensor nbr, Tensor length) -> Tensor", &GatherSum);
  m.def("dropout(Tensor x, float p, bool train) -> Tensor", &FusedDropout);
  m.def("gru_last(Tensor data, Tensor batch_sizes, Tensor w_ih, Tensor w_hh, Tensor b_ih, Tensor b_hh) -> Tensor",
        &GruLast);
}

bool FusedOpsRegistered() { return true; }

}  // namespace dgsr::model
