// ServerMetrics: the Prometheus series the server exports on its own port (/metrics), following
// Prometheus conventions (base units, counters ending in _total, histograms). prometheus-cpp 1.0.1
// has no process collector, so process_* series are read from /proc at scrape time here.
//
// Series:
//   dgsr_requests_total{method, code}                  RPCs finished, by gRPC status code
//   dgsr_request_duration_seconds{method}              end-to-end handler time
//   dgsr_stage_duration_seconds{stage}                 queue | sample | forward | top_k (per batch;
//                                                      queue per request)
//   dgsr_batch_size                                    requests per executed model batch
//   dgsr_recommend_fallbacks_total{reason}             unknown_user | no_history
//   dgsr_ingested_events_total{result}                 accepted | duplicate
//   dgsr_model_loads_total{model, result}              ok | failed
//   dgsr_model_serving_version{model}                  gauge, read at scrape
//   dgsr_model_load_seconds{model}                     load + check + warm-up of the serving version
//   dgsr_model_loaded_timestamp_seconds{model}
//   dgsr_graph_users / dgsr_graph_items / dgsr_graph_interactions / dgsr_graph_memory_bytes
//   dgsr_queue_requests                                requests waiting for a batch
//   process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
//   process_open_fds, process_start_time_seconds, process_threads
//
// Thread-safe (prometheus-cpp metrics are).
#ifndef DGSR_SERVER_METRICS_H_
#define DGSR_SERVER_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/recommender.h"

namespace prometheus {
class Exposer;
}

namespace dgsr::server {

// Values read at scrape time.
struct ScrapeSources {
  std::function<std::vector<std::pair<std::string, double>>()> graph;  // name suffix -> value
  std::function<std::vector<std::tuple<std::string, double, double, double>>()> models;  // name, version, load s, loaded at
  std::function<double()> queue_requests;
};

class ServerMetrics {
 public:
  explicit ServerMetrics(ScrapeSources sources);
  ~ServerMetrics();

  // Serves /metrics on `address` (host:port). InvalidArgument / Unavailable if it cannot bind.
  [[nodiscard]] absl::Status Expose(const std::string& address);
  // The bound ports of the metrics endpoint (after Expose).
  std::vector<int> ports() const;
  // The current text exposition (what a scrape returns).
  std::string Scrape() const;

  void RecordRequest(const std::string& method, const std::string& code, double seconds);
  void RecordBatch(int requests, const model::RecommendTimings& timings);
  void RecordQueue(double seconds);
  void RecordFallback(const std::string& reason);
  void RecordIngest(int64_t accepted, int64_t duplicates);
  void RecordModelLoad(const std::string& model, bool ok);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> scraped_;  // graph, models, queue, process
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& request_seconds_;
  prometheus::Family<prometheus::Histogram>& stage_seconds_;
  prometheus::Histogram& batch_size_;
  prometheus::Family<prometheus::Counter>& fallbacks_;
  prometheus::Family<prometheus::Counter>& ingested_;
  prometheus::Family<prometheus::Counter>& model_loads_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace dgsr::server

#endif  // DGSR_SERVER_METRICS_H_
