#include "server/metrics.h"

#include <dirent.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>


#include "absl/strings/str_cat.h"
#include "common/process_stats.h"

namespace dgsr::server {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Latency buckets from 100 us to 10 s, roughly x2 apart.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
  return *b;
}

MetricFamily Gauge(const std::string& name, const std::string& help, double value) {
  MetricFamily f{name, help, MetricType::Gauge, {}};
  ClientMetric m;
  m.gauge.value = value;
  f.metric.push_back(m);
  return f;
}

// process_* series (Linux /proc).
void AppendProcessMetrics(std::vector<MetricFamily>* out) {
  const std::optional<ProcessStats> s = ReadProcessStats();
  if (!s) return;
  int fds = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) ++fds;
    closedir(d);
    fds -= 3;  // ".", ".." and the directory's own descriptor
  }
  MetricFamily cpu{"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                   MetricType::Counter, {}};
  ClientMetric c;
  c.counter.value = s->cpu_seconds;
  cpu.metric.push_back(c);
  out->push_back(cpu);
  out->push_back(Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", s->resident_bytes));
  out->push_back(Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", s->virtual_bytes));
  out->push_back(Gauge("process_open_fds", "Number of open file descriptors.", fds));
  out->push_back(Gauge("process_threads", "Number of OS threads in the process.", s->threads));
  out->push_back(Gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                       s->start_time_unix_s));
}

class ScrapedMetrics : public prometheus::Collectable {
 public:
  explicit ScrapedMetrics(ScrapeSources sources) : sources_(std::move(sources)) {}
  std::vector<MetricFamily> Collect() const override {
    std::vector<MetricFamily> out;
    if (sources_.graph) {
      for (const auto& [name, value] : sources_.graph()) {
        out.push_back(Gauge("dgsr_graph_" + name, "Size of the live interaction graph: " + name + ".", value));
      }
    }
    if (sources_.queue_requests) {
      out.push_back(Gauge("dgsr_queue_requests", "Recommend requests waiting for a batch.", sources_.queue_requests()));
    }
    if (sources_.models) {
      MetricFamily version{"dgsr_model_serving_version", "The version that serves requests without a version.",
                           MetricType::Gauge, {}};
      MetricFamily load{"dgsr_model_load_seconds", "Load, check and warm-up time of the serving version.",
                        MetricType::Gauge, {}};
      MetricFamily at{"dgsr_model_loaded_timestamp_seconds", "When the serving version finished loading.",
                      MetricType::Gauge, {}};
      for (const auto& [name, v, seconds, loaded_at] : sources_.models()) {
        ClientMetric m;
        m.label = {{"model", name}};
        m.gauge.value = v;
        version.metric.push_back(m);
        m.gauge.value = seconds;
        load.metric.push_back(m);
        m.gauge.value = loaded_at;
        at.metric.push_back(m);
      }
      out.push_back(version);
      out.push_back(load);
      out.push_back(at);
    }
    AppendProcessMetrics(&out);
    return out;
  }

 private:
  ScrapeSources sources_;
};

}  // namespace

ServerMetrics::ServerMetrics(ScrapeSources sources)
    : registry_(std::make_shared<prometheus::Registry>()),
      scraped_(std::make_shared<ScrapedMetrics>(std::move(sources))),
      requests_(prometheus::BuildCounter()
                    .Name("dgsr_requests_total")
                    .Help("RPCs finished, by method and gRPC status code.")
                    .Register(*registry_)),
      request_seconds_(prometheus::BuildHistogram()
                           .Name("dgsr_request_duration_seconds")
                           .Help("End-to-end RPC handler time, by method.")
                           .Register(*registry_)),
      stage_seconds_(prometheus::BuildHistogram()
                         .Name("dgsr_stage_duration_seconds")
                         .Help("Time per Recommend stage: queue (per request), sample, forward, top_k (per batch).")
                         .Register(*registry_)),
      batch_size_(prometheus::BuildHistogram()
                      .Name("dgsr_batch_size")
                      .Help("Requests per executed model batch.")
                      .Register(*registry_)
                      .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256})),
      fallbacks_(prometheus::BuildCounter()
                     .Name("dgsr_recommend_fallbacks_total")
                     .Help("Recommendations answered by the popularity fallback, by reason.")
                     .Register(*registry_)),
      ingested_(prometheus::BuildCounter()
                    .Name("dgsr_ingested_events_total")
                    .Help("Events received by Ingest/IngestStream: accepted or duplicate.")
                    .Register(*registry_)),
      model_loads_(prometheus::BuildCounter()
                       .Name("dgsr_model_loads_total")
                       .Help("Model version loads, by model and result (ok, failed).")
                       .Register(*registry_)) {}

ServerMetrics::~ServerMetrics() = default;

absl::Status ServerMetrics::Expose(const std::string& address) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(scraped_);
  return absl::OkStatus();
}

std::vector<int> ServerMetrics::ports() const {
  return exposer_ ? exposer_->GetListeningPorts() : std::vector<int>{};
}

std::string ServerMetrics::Scrape() const {
  std::vector<MetricFamily> families = registry_->Collect();
  for (auto& f : scraped_->Collect()) families.push_back(std::move(f));
  return prometheus::TextSerializer().Serialize(families);
}

void ServerMetrics::RecordRequest(const std::string& method, const std::string& code, double seconds) {
  requests_.Add({{"method", method}, {"code", code}}).Increment();
  request_seconds_.Add({{"method", method}}, LatencyBuckets()).Observe(seconds);
}

void ServerMetrics::RecordBatch(int requests, const model::RecommendTimings& t) {
  batch_size_.Observe(requests);
  stage_seconds_.Add({{"stage", "sample"}}, LatencyBuckets()).Observe(t.sample);
  stage_seconds_.Add({{"stage", "forward"}}, LatencyBuckets()).Observe(t.forward);
  stage_seconds_.Add({{"stage", "top_k"}}, LatencyBuckets()).Observe(t.top_k);
}

void ServerMetrics::RecordQueue(double seconds) {
  stage_seconds_.Add({{"stage", "queue"}}, LatencyBuckets()).Observe(seconds);
}

void ServerMetrics::RecordFallback(const std::string& reason) { fallbacks_.Add({{"reason", reason}}).Increment(); }

void ServerMetrics::RecordIngest(int64_t accepted, int64_t duplicates) {
  ingested_.Add({{"result", "accepted"}}).Increment(static_cast<double>(accepted));
  ingested_.Add({{"result", "duplicate"}}).Increment(static_cast<double>(duplicates));
}

void ServerMetrics::RecordModelLoad(const std::string& model, bool ok) {
  model_loads_.Add({{"model", model}, {"result", ok ? "ok" : "failed"}}).Increment();
}

}  // namespace dgsr::server
