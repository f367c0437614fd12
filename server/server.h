// Server: the DGSR recommendation service process — the store, the model manager, the batcher,
// the popularity fallback, snapshots, metrics and the gRPC server (dgsr.v1.RecommendationService,
// dgsr.v1.AdminService, grpc.health.v1.Health, server reflection) — with its start-up and
// shutdown order.
//
//   ServerOptions options;
//   options.store.path = "/var/lib/dgsr/store";
//   options.models.models = {{.name = "default", .base_path = "/var/lib/dgsr/models"}};
//   ASSIGN_OR_RETURN(std::unique_ptr<Server> server, Server::Start(options));
//   ...                                   // serving; health is SERVING
//   server->Shutdown();                   // NOT_SERVING, drain, flush and close the store
//
// Start-up: open the store (it locks the RocksDB directory: no other process may open it), load
// and warm every model (FailedPrecondition if a model has no loadable version), start the batcher
// and the model watcher, bind the gRPC and metrics ports, then report SERVING.
// Shutdown: NOT_SERVING; the gRPC server stops accepting calls and waits up to drain_timeout for
// in-flight calls; queued recommendation work finishes; the watcher stops; the store fsyncs its
// log and closes. Calls still running after drain_timeout are cancelled.
//
// Thread-safe: Shutdown may be called from any thread (once or more).
#ifndef DGSR_SERVER_SERVER_H_
#define DGSR_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/batcher.h"
#include "server/model_manager.h"
#include "server/popularity.h"
#include "server/request_validation.h"
#include "server/snapshots.h"
#include "store/graph_store.h"

namespace dgsr::server {

struct TlsOptions {
  std::string cert_file;       // PEM server certificate chain; empty = plaintext
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // PEM CA bundle to verify client certificates; empty = none asked
  bool require_client_cert = false;  // refuse connections without a verified client certificate
  // Ingest, IngestStream and the AdminService answer UNAUTHENTICATED unless the caller presented
  // a verified client certificate (needs client_ca_file).
  bool restrict_writes = false;
};

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";          // host:port; port 0 picks a free port
  std::string metrics_listen = "127.0.0.1:9464";   // host:port for /metrics; empty = none
  store::GraphStoreOptions store;                  // path required
  ModelManagerOptions models;                      // `store` is filled in by the server
  BatcherOptions batching;
  PopularityOptions popularity;
  RequestLimits limits;  // max_message_bytes x 4 is also the gRPC transport's receive limit
  TlsOptions tls;
  // AdminService.CreateSnapshot writes into snapshots.dir (empty: "<store path>.snapshots").
  SnapshotOptions snapshots;
  absl::Duration drain_timeout = absl::Seconds(30);
  // RPC threads: gRPC's synchronous server grows its pool on demand up to this many threads
  // (a resource quota); calls beyond wait in gRPC's queue.
  int max_rpc_threads = 256;
};

class Server {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options);
  ~Server();  // Shutdown()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound ports (useful with port 0).
  int port() const;
  int metrics_port() const;

  // Blocks until Shutdown() has finished (from another thread).
  void Wait();
  // Graceful shutdown (see above). Idempotent; returns the store's final sync status.
  absl::Status Shutdown();

  // Valid until Shutdown().
  ModelManager& models();
  store::GraphStore& store();
  std::string ScrapeMetrics() const;

  struct State;  // Internal (server.cc).

 private:
  explicit Server(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace dgsr::server

#endif  // DGSR_SERVER_SERVER_H_
