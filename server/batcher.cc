#include "server/batcher.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace dgsr::server {

Batcher::Batcher(const BatcherOptions& options, const store::TemporalGraph* graph,
                 std::function<void(int, const model::RecommendTimings&)> on_batch)
    : options_(options), graph_(graph), on_batch_(std::move(on_batch)) {
  if (options_.enabled) {
    for (int t = 0; t < std::max(1, options_.threads); ++t) workers_.emplace_back([this] { WorkerLoop(); });
  }
}

Batcher::~Batcher() { Stop(); }

void Batcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
}

int Batcher::queued_requests() const {
  absl::MutexLock lock(&mu_);
  return queued_requests_;
}

absl::Status Batcher::Submit(std::shared_ptr<RecommendJob> job) {
  const int n = static_cast<int>(job->requests.size());
  job->enqueued_at = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the server is shutting down");
    if (queued_requests_ + n > options_.max_queued_requests && queued_requests_ > 0) {
      return absl::ResourceExhaustedError(absl::StrCat("recommendation queue full (", queued_requests_,
                                                       " requests waiting, limit ", options_.max_queued_requests,
                                                       "); retry with backoff"));
    }
    queued_requests_ += n;
    if (options_.enabled) {
      queue_.push_back(std::move(job));
      return absl::OkStatus();
    }
  }
  Run({job});
  absl::MutexLock lock(&mu_);
  queued_requests_ -= n;
  return absl::OkStatus();
}

void Batcher::WorkerLoop() {
  while (true) {
    std::vector<std::shared_ptr<RecommendJob>> batch;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, and drained
      // Wait for company: until max_batch_size requests are queued or the oldest job's delay is up.
      const absl::Time flush_at = queue_.front()->enqueued_at + options_.max_delay;
      auto full = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || queued_requests_ >= options_.max_batch_size;
      };
      mu_.AwaitWithDeadline(absl::Condition(&full), flush_at);
      if (queue_.empty()) continue;  // another worker took them
      // Take the oldest job and the following ones for the same model version, up to the limit.
      const Servable* target = queue_.front()->servable.get();
      int taken = 0;
      for (auto it = queue_.begin(); it != queue_.end();) {
        const int n = static_cast<int>((*it)->requests.size());
        if ((*it)->servable.get() != target || (taken > 0 && taken + n > options_.max_batch_size)) {
          ++it;
          continue;
        }
        taken += n;
        batch.push_back(std::move(*it));
        it = queue_.erase(it);
        if (taken >= options_.max_batch_size) break;
      }
      queued_requests_ -= taken;
    }
    Run(std::move(batch));
  }
}

void Batcher::Run(std::vector<std::shared_ptr<RecommendJob>> jobs) {
  const absl::Time now = absl::Now();
  std::vector<std::shared_ptr<RecommendJob>> live;
  for (auto& job : jobs) {
    job->queue_seconds = absl::ToDoubleSeconds(now - job->enqueued_at);
    if (job->deadline < now) {
      job->status = absl::DeadlineExceededError("the deadline passed while the request was queued");
      job->done.Notify();
    } else {
      live.push_back(std::move(job));
    }
  }
  if (live.empty()) return;
  std::vector<model::RecommendRequest> merged;
  for (const auto& job : live) merged.insert(merged.end(), job->requests.begin(), job->requests.end());
  model::RecommendTimings timings;
  auto results = live.front()->servable->recommender.Recommend(*graph_, merged, &timings);
  if (on_batch_ && results.ok()) on_batch_(static_cast<int>(merged.size()), timings);
  size_t next = 0;
  for (auto& job : live) {
    job->timings = timings;
    job->batch_requests = static_cast<int>(merged.size());
    if (results.ok()) {
      for (size_t r = 0; r < job->requests.size(); ++r) job->results.push_back(std::move((*results)[next++]));
    } else {
      job->status = results.status();
    }
    job->done.Notify();
  }
}

}  // namespace dgsr::server
