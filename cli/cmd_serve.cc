// dgsr serve: runs the gRPC recommendation service (server/server.h) until SIGTERM or SIGINT, then
// shuts down gracefully (NOT_SERVING, drain, flush and close the store) and exits 0.
#include <signal.h>

#include <cstdio>
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/common_flags.h"
#include "cli/store_flags.h"
#include "cli/subcommand.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "model/dgsr_network.h"
#include "model/torch_runtime.h"
#include "server/server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "gRPC address host:port (0.0.0.0:50051 for every interface)");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464", "Prometheus /metrics address host:port; empty: none");
ABSL_FLAG(std::string, models, "",
          "more models: comma-separated name=dir (each dir versioned as --model_dir); the first is the default "
          "unless --model_dir is set");
ABSL_FLAG(std::string, pin, "", "comma-separated name=version: serve that version instead of the newest");
ABSL_FLAG(int, model_versions, 1, "newest versions kept loaded per model (requests may name any of them)");
ABSL_FLAG(double, model_poll_s, 1.0, "how often model directories are checked for new versions, seconds");
ABSL_FLAG(bool, batching, true, "dynamic batching of concurrent Recommend calls");
ABSL_FLAG(int, max_batch_size, 32, "requests per batched forward pass");
ABSL_FLAG(int, batch_timeout_us, 250, "how long the oldest queued request waits for company, microseconds");
ABSL_FLAG(int, batch_threads, 0, "batches that run at once (0: one per core)");
ABSL_FLAG(int, max_queued_requests, 1024, "queued (or in-flight) recommendation requests; beyond: RESOURCE_EXHAUSTED");
ABSL_FLAG(int, max_rpc_threads, 256, "gRPC handler threads at most");
ABSL_FLAG(int64_t, max_message_bytes, 16 << 20, "largest request message; beyond: INVALID_ARGUMENT (beyond 4x: the transport refuses it)");
ABSL_FLAG(int, max_k, 1000, "largest k a request may ask for");
ABSL_FLAG(int64_t, popularity_window_s, 7 * 24 * 3600, "fallback: items ranked by interactions in this window before the as-of time");
ABSL_FLAG(double, drain_timeout_s, 30, "on SIGTERM, how long in-flight calls may take to finish");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate chain (enables TLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM server private key");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA bundle: verify client certificates against it");
ABSL_FLAG(bool, tls_require_client_cert, false, "refuse clients without a verified certificate");
ABSL_FLAG(bool, restrict_writes, false,
          "Ingest, IngestStream and the AdminService only for clients with a verified certificate");
ABSL_FLAG(std::string, snapshots_dir, "", "where AdminService.CreateSnapshot writes (empty: <store>.snapshots)");
ABSL_FLAG(int, snapshot_keep, 3, "snapshots kept in --snapshots_dir (the oldest beyond are deleted)");

namespace dgsr::cli {
namespace {

absl::StatusOr<server::ServerOptions> OptionsFromFlags() {
  server::ServerOptions o;
  ASSIGN_OR_RETURN(o.store, StoreOptionsFromFlags());
  o.store.create_if_missing = true;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (!absl::GetFlag(FLAGS_model_dir).empty()) {
    o.models.models.push_back({"default", absl::GetFlag(FLAGS_model_dir), 0});
  }
  for (absl::string_view entry : absl::StrSplit(absl::GetFlag(FLAGS_models), ',', absl::SkipEmpty())) {
    std::vector<std::string> kv = absl::StrSplit(entry, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || kv[0].empty() || kv[1].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--models entry '", entry, "' is not name=dir"));
    }
    o.models.models.push_back({kv[0], kv[1], 0});
  }
  if (o.models.models.empty()) return absl::InvalidArgumentError("--model_dir (or --models) is required");
  for (absl::string_view entry : absl::StrSplit(absl::GetFlag(FLAGS_pin), ',', absl::SkipEmpty())) {
    std::vector<std::string> kv = absl::StrSplit(entry, absl::MaxSplits('=', 1));
    int64_t version = 0;
    if (kv.size() != 2 || !absl::SimpleAtoi(kv[1], &version) || version < 1) {
      return absl::InvalidArgumentError(absl::StrCat("--pin entry '", entry, "' is not name=version"));
    }
    bool found = false;
    for (auto& m : o.models.models) {
      if (m.name == kv[0]) m.pinned_version = version, found = true;
    }
    if (!found) return absl::InvalidArgumentError(absl::StrCat("--pin names unknown model '", kv[0], "'"));
  }
  o.models.versions_to_keep = absl::GetFlag(FLAGS_model_versions);
  o.models.poll_interval = absl::Seconds(absl::GetFlag(FLAGS_model_poll_s));
  ASSIGN_OR_RETURN(o.models.device, model::ParseDevice(absl::GetFlag(FLAGS_device)));
  o.batching.enabled = absl::GetFlag(FLAGS_batching);
  o.batching.max_batch_size = absl::GetFlag(FLAGS_max_batch_size);
  o.batching.max_delay = absl::Microseconds(absl::GetFlag(FLAGS_batch_timeout_us));
  o.batching.threads = absl::GetFlag(FLAGS_batch_threads);
  if (o.batching.threads == 0) o.batching.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  o.batching.max_queued_requests = absl::GetFlag(FLAGS_max_queued_requests);
  if (o.batching.max_batch_size < 1 || o.batching.threads < 1 || o.batching.max_queued_requests < 1) {
    return absl::InvalidArgumentError("--max_batch_size, --batch_threads and --max_queued_requests must be >= 1");
  }
  o.max_rpc_threads = absl::GetFlag(FLAGS_max_rpc_threads);
  if (absl::GetFlag(FLAGS_max_message_bytes) < 1024 || absl::GetFlag(FLAGS_max_k) < 1 ||
      absl::GetFlag(FLAGS_max_k) > model::Recommender::kMaxK) {
    return absl::InvalidArgumentError(absl::StrCat("--max_message_bytes must be >= 1024 and --max_k in [1, ",
                                                   model::Recommender::kMaxK, "]"));
  }
  o.limits.max_message_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_message_bytes));
  o.limits.max_k = absl::GetFlag(FLAGS_max_k);
  o.popularity.window = absl::GetFlag(FLAGS_popularity_window_s);
  o.drain_timeout = absl::Seconds(absl::GetFlag(FLAGS_drain_timeout_s));
  o.snapshots.dir = absl::GetFlag(FLAGS_snapshots_dir);
  o.snapshots.keep = absl::GetFlag(FLAGS_snapshot_keep);
  if (o.snapshots.keep < 1) return absl::InvalidArgumentError("--snapshot_keep must be >= 1");
  o.tls = {absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key), absl::GetFlag(FLAGS_tls_client_ca),
           absl::GetFlag(FLAGS_tls_require_client_cert), absl::GetFlag(FLAGS_restrict_writes)};
  return o;
}

// The effective configuration, one structured line (every flag of this subcommand).
void LogEffectiveConfig() {
  internal::LogRecord record(LogLevel::kInfo, __FILE__, __LINE__);
  record << "effective config";
  for (const absl::CommandLineFlag* flag : FlagsOf("serve")) record << Kv(std::string_view(flag->Name().data(), flag->Name().size()), flag->CurrentValue());
}

absl::Status Serve() {
  // SIGTERM/SIGINT are taken by sigwait below; block them before any thread starts so that every
  // thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  LogEffectiveConfig();
  ASSIGN_OR_RETURN(server::ServerOptions options, OptionsFromFlags());
  // Serving runs several batches at once (--batch_threads), each on --torch_threads libtorch
  // threads; 0 means one, which measured best on CPU (docs/RESULTS.md, "Serving").
  const int torch_threads = absl::GetFlag(FLAGS_torch_threads) > 0 ? absl::GetFlag(FLAGS_torch_threads) : 1;
  model::ConfigureTorchRuntime(torch_threads);
  ASSIGN_OR_RETURN(std::unique_ptr<server::Server> server, server::Server::Start(std::move(options)));
  std::printf("dgsr serve: listening on port %d (metrics on port %d); SIGTERM or Ctrl-C stops it\n", server->port(),
              server->metrics_port());
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  DGSR_LOG(INFO) << "signal received" << Kv("signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  return server->Shutdown();
}

}  // namespace

int RunServe(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "dgsr serve: unexpected argument '%s'\n", args[0].c_str());
    return 2;
  }
  absl::Status s = Serve();
  if (!s.ok()) {
    std::fprintf(stderr, "dgsr serve: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace dgsr::cli
