#include "trainer/adam.h"

#include <ATen/Parallel.h>
#include <torch/serialize.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"

namespace dgsr::trainer {

FusedAdam::FusedAdam(std::vector<torch::Tensor> params, AdamOptions options)
    : params_(std::move(params)), options_(options) {
  for (const auto& p : params_) {
    exp_avg_.push_back(torch::zeros_like(p));
    exp_avg_sq_.push_back(torch::zeros_like(p));
    steps_.push_back(0);
  }
}

void FusedAdam::Step() {
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < params_.size(); ++k) {
    torch::Tensor& p = params_[k];
    if (!p.grad().defined()) continue;
    const int64_t step = ++steps_[k];
    const float b1 = static_cast<float>(options_.beta1), b2 = static_cast<float>(options_.beta2);
    const double bc1 = 1.0 - std::pow(options_.beta1, static_cast<double>(step));
    const double bc2 = 1.0 - std::pow(options_.beta2, static_cast<double>(step));
    // p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps), as torch::optim::Adam computes it.
    const float step_size = static_cast<float>(options_.lr / bc1);
    const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
    const float eps = static_cast<float>(options_.eps), wd = static_cast<float>(options_.weight_decay);
    float* pp = p.data_ptr<float>();
    float* mp = exp_avg_[k].data_ptr<float>();
    float* vp = exp_avg_sq_[k].data_ptr<float>();
    // Elements [begin, end) whose gradient is gp[0 .. end - begin) (nullptr: zero).
    auto update = [&](int64_t begin, int64_t end, const float* gp) {
      for (int64_t i = begin; i < end; ++i) {
        const float grad = (gp ? gp[i - begin] : 0.0f) + wd * pp[i];
        const float m = mp[i] = b1 * mp[i] + (1 - b1) * grad;
        const float v = vp[i] = b2 * vp[i] + (1 - b2) * grad * grad;
        pp[i] -= step_size * m / (std::sqrt(v) * inv_sqrt_bc2 + eps);
      }
    };
    if (p.grad().is_sparse()) {
      // Rows of the first dimension; duplicates are summed by coalesce().
      const torch::Tensor g = p.grad().coalesce();
      const torch::Tensor rows = g.indices()[0].contiguous();
      const torch::Tensor values = g.values().contiguous();
      const int64_t num_rows = p.size(0), width = num_rows > 0 ? p.numel() / num_rows : 0;
      std::vector<const float*> row_grad(num_rows, nullptr);
      const int64_t* rp = rows.data_ptr<int64_t>();
      for (int64_t j = 0; j < rows.numel(); ++j) row_grad[rp[j]] = values.data_ptr<float>() + j * width;
      at::parallel_for(0, num_rows, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(width, 1)),
                       [&](int64_t begin, int64_t end) {
                         for (int64_t r = begin; r < end; ++r) update(r * width, (r + 1) * width, row_grad[r]);
                       });
    } else {
      const torch::Tensor g = p.grad().contiguous();
      const float* gp = g.data_ptr<float>();
      at::parallel_for(0, p.numel(), 1 << 16,
                       [&](int64_t begin, int64_t end) { update(begin, end, gp + begin); });
    }
    p.mutable_grad() = torch::Tensor();
  }
}

absl::Status FusedAdam::Save(const std::string& path) const {
  std::vector<torch::Tensor> state;
  for (size_t k = 0; k < params_.size(); ++k) {
    state.push_back(exp_avg_[k]);
    state.push_back(exp_avg_sq_[k]);
    state.push_back(torch::tensor(steps_[k], torch::kInt64));
  }
  try {
    torch::save(state, path);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot save optimizer state to ", path, ": ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status FusedAdam::Load(const std::string& path) {
  std::vector<torch::Tensor> state;
  try {
    torch::load(state, path);
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("cannot load optimizer state from ", path, ": ", e.what_without_backtrace()));
  }
  if (state.size() != 3 * params_.size()) return absl::InvalidArgumentError("optimizer state does not match the model");
  for (size_t k = 0; k < params_.size(); ++k) {
    if (!state[3 * k].sizes().equals(params_[k].sizes())) {
      return absl::InvalidArgumentError("optimizer state shape does not match the model");
    }
    exp_avg_[k] = state[3 * k];
    exp_avg_sq_[k] = state[3 * k + 1];
    steps_[k] = state[3 * k + 2].item<int64_t>();
  }
  return absl::OkStatus();
}

}  // namespace dgsr::trainer
