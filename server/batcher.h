// Batcher: dynamic batching of Recommend work across concurrent RPCs (the TensorFlow Serving /
// Triton dynamic batcher). Jobs queue; a worker takes the oldest job, waits at most max_delay
// (from that job's arrival) for company, then runs up to max_batch_size requests that target the
// same model version as one Recommender call: one sampling pass, one forward pass, one scoring
// GEMM. Results are split back per job.
//
//   Batcher batcher(options, &store.graph());
//   auto job = std::make_shared<RecommendJob>();
//   job->servable = ...; job->requests = {...}; job->deadline = absl::Now() + absl::Milliseconds(50);
//   RETURN_IF_ERROR(batcher.Submit(job));       // ResourceExhausted when the queue is full
//   job->done.WaitForNotification();            // always notified (result, error or expiry)
//   if (!job->status.ok()) ...
//
// With batching disabled (options.enabled = false) Submit runs the job at once on the calling
// thread, with the same admission limit (max_queued_requests counts requests in flight), so
// overload answers the same way in both modes.
//
// Deadlines: a job whose deadline has passed when its batch is formed is dropped unrun
// (DeadlineExceeded). Stop() refuses new jobs (Unavailable) and finishes the queued ones.
// Thread-safe.
#ifndef DGSR_SERVER_BATCHER_H_
#define DGSR_SERVER_BATCHER_H_

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/model_manager.h"

namespace dgsr::server {

struct RecommendJob {
  // Inputs.
  std::shared_ptr<const Servable> servable;
  std::vector<model::RecommendRequest> requests;
  absl::Time deadline = absl::InfiniteFuture();

  // Outputs, valid once `done` is notified.
  absl::Status status;
  std::vector<std::vector<model::ScoredItem>> results;  // one per request
  model::RecommendTimings timings;  // of the batch the job ran in
  double queue_seconds = 0;         // from Submit to the start of its batch
  int batch_requests = 0;           // requests in that batch
  absl::Notification done;

  absl::Time enqueued_at;  // set by Submit
};

struct BatcherOptions {
  bool enabled = true;
  // Parameters that affect performance.
  int max_batch_size = 32;                             // requests per Recommender call
  absl::Duration max_delay = absl::Microseconds(250);   // how long the oldest job waits for company
  int threads = 2;                                      // batches run concurrently
  // Admission: queued (or, without batching, in-flight) requests beyond this are refused.
  int max_queued_requests = 1024;
};

class Batcher {
 public:
  // `graph` outlives the batcher. `on_batch` (optional) sees each executed batch's size and
  // stage timings, for metrics.
  Batcher(const BatcherOptions& options, const store::TemporalGraph* graph,
          std::function<void(int requests, const model::RecommendTimings&)> on_batch = nullptr);
  ~Batcher();  // Stop()
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues (or, without batching, runs) the job. ResourceExhausted when admission is full,
  // Unavailable after Stop(); in both cases the job is not run and `done` is not notified.
  [[nodiscard]] absl::Status Submit(std::shared_ptr<RecommendJob> job);

  // Refuses new jobs, finishes the queued ones, joins the workers. Idempotent.
  void Stop();

  int queued_requests() const;

 private:
  void WorkerLoop();
  void Run(std::vector<std::shared_ptr<RecommendJob>> jobs);

  const BatcherOptions options_;
  const store::TemporalGraph* graph_;
  const std::function<void(int, const model::RecommendTimings&)> on_batch_;

  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<RecommendJob>> queue_ ABSL_GUARDED_BY(mu_);
  int queued_requests_ ABSL_GUARDED_BY(mu_) = 0;  // queued, or in flight without batching
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace dgsr::server

#endif  // DGSR_SERVER_BATCHER_H_
