#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>

#include <chrono>
#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "dgsr/v1/admin_service.grpc.pb.h"
#include "dgsr/v1/recommendation_service.grpc.pb.h"
#include "server/metrics.h"

namespace dgsr::server {
namespace {

constexpr char kServiceName[] = "dgsr.v1.RecommendationService";

// The one place where absl::Status becomes a gRPC status (the codes are the same numbers).
grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

std::string CodeName(const absl::Status& s) { return absl::StatusCodeToString(s.code()); }

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// With --restrict_writes, writes and admin calls need a verified client certificate.
absl::Status CheckAuthenticated(const TlsOptions& tls, grpc::ServerContext* ctx) {
  if (!tls.restrict_writes) return absl::OkStatus();
  auto auth = ctx->auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("writes need a verified client certificate on this server");
  }
  return absl::OkStatus();
}

v1::Durability DurabilityOf(store::Durability d) {
  return d == store::Durability::kSync ? v1::DURABILITY_SYNC : v1::DURABILITY_GROUP_COMMIT;
}

}  // namespace

// Everything the server owns, in construction order (destroyed in reverse).
struct Server::State {
  ServerOptions options;
  std::unique_ptr<store::GraphStore> store;
  std::unique_ptr<ServerMetrics> metrics;
  std::unique_ptr<ModelManager> models;
  std::unique_ptr<Batcher> batcher;
  std::unique_ptr<PopularityFallback> popularity;
  std::unique_ptr<Snapshots> snapshots;
  std::unique_ptr<v1::RecommendationService::Service> service;
  std::unique_ptr<v1::AdminService::Service> admin;
  std::unique_ptr<grpc::Server> grpc_server;
  int port = 0;
  int metrics_port = 0;

  absl::Mutex shutdown_mu;
  bool shut_down ABSL_GUARDED_BY(shutdown_mu) = false;
  absl::Status shutdown_status ABSL_GUARDED_BY(shutdown_mu);
  absl::Notification finished;
};

namespace {

// The gRPC service: request validation and id mapping, then the batcher or the fallback.
class RecommendationServiceImpl final : public v1::RecommendationService::Service {
 public:
  explicit RecommendationServiceImpl(Server::State* state) : s_(*state) {}

  grpc::Status Recommend(grpc::ServerContext* ctx, const v1::RecommendRequest* request,
                         v1::RecommendResponse* response) override {
    const auto start = std::chrono::steady_clock::now();
    absl::Status status = ValidateMessageSize(*request, s_.options.limits);
    if (status.ok()) status = ValidateRecommend(*request, s_.options.limits);
    if (status.ok()) status = RecommendAll(ctx, {request}, {response});
    return Finish("Recommend", start, status);
  }

  grpc::Status RecommendBatch(grpc::ServerContext* ctx, const v1::RecommendBatchRequest* request,
                              v1::RecommendBatchResponse* response) override {
    const auto start = std::chrono::steady_clock::now();
    absl::Status status = ValidateMessageSize(*request, s_.options.limits);
    if (status.ok()) status = ValidateRecommendBatch(*request, s_.options.limits);
    if (status.ok()) {
      std::vector<const v1::RecommendRequest*> in;
      std::vector<v1::RecommendResponse*> out;
      for (const auto& r : request->requests()) {
        in.push_back(&r);
        out.push_back(response->add_responses());
      }
      status = RecommendAll(ctx, in, out);
    }
    return Finish("RecommendBatch", start, status);
  }

  grpc::Status Ingest(grpc::ServerContext* ctx, const v1::IngestRequest* request,
                      v1::IngestResponse* response) override {
    const auto start = std::chrono::steady_clock::now();
    absl::Status status = CheckWriter(ctx);
    if (status.ok()) status = ValidateMessageSize(*request, s_.options.limits);
    store::IngestResult result;
    if (status.ok()) status = IngestEvents(request->events(), &result);
    if (status.ok()) {
      response->set_accepted(result.accepted);
      response->set_duplicates(result.duplicates);
      response->set_durability(DurabilityOf(s_.options.store.durability));
      response->set_group_commit_interval_ms(GroupCommitMs());
    }
    return Finish("Ingest", start, status);
  }

  grpc::Status IngestStream(grpc::ServerContext* ctx, grpc::ServerReader<v1::IngestStreamRequest>* reader,
                            v1::IngestStreamResponse* response) override {
    const auto start = std::chrono::steady_clock::now();
    absl::Status status = CheckWriter(ctx);
    int64_t accepted = 0, duplicates = 0, batches = 0;
    v1::IngestStreamRequest message;
    while (status.ok() && reader->Read(&message)) {
      store::IngestResult result;
      status = ValidateMessageSize(message, s_.options.limits);
      if (status.ok()) status = IngestEvents(message.events(), &result);
      if (!status.ok()) {
        status = absl::Status(status.code(), absl::StrCat("batch ", batches, " of the stream: ", status.message(),
                                                          " (", batches, " earlier batches, ", accepted,
                                                          " events, were accepted and are durable)"));
        break;
      }
      accepted += result.accepted;
      duplicates += result.duplicates;
      ++batches;
    }
    if (status.ok()) {
      response->set_accepted(accepted);
      response->set_duplicates(duplicates);
      response->set_batches(batches);
      response->set_durability(DurabilityOf(s_.options.store.durability));
      response->set_group_commit_interval_ms(GroupCommitMs());
    }
    return Finish("IngestStream", start, status);
  }

  grpc::Status GetModelInfo(grpc::ServerContext*, const v1::GetModelInfoRequest* request,
                            v1::GetModelInfoResponse* response) override {
    const auto start = std::chrono::steady_clock::now();
    absl::Status status;
    response->set_default_model(s_.models->default_model());
    bool found = request->name().empty();
    for (const ModelStatus& m : s_.models->Status()) {
      if (!request->name().empty() && m.source.name != request->name()) continue;
      found = true;
      v1::ModelInfo* info = response->add_models();
      info->set_name(m.source.name);
      info->set_base_path(m.source.base_path);
      info->set_pinned_version(m.source.pinned_version);
      info->set_last_error(m.last_error);
      for (const auto& servable : m.loaded) {
        v1::ModelVersionInfo* v = info->add_versions();
        v->set_version(servable->version);
        v->set_network(std::string(model::NetworkName(servable->model->network())));
        v->set_serving(servable->version == m.serving_version);
        v->set_loaded_unix_s(absl::ToUnixSeconds(servable->loaded_at));
        v->set_load_seconds(servable->load_seconds);
        v->set_config_json(servable->model->config_json().Dump());
        v->set_metadata_json(servable->model->metadata().Dump());
        v->set_path(servable->path);
      }
    }
    if (!found) status = absl::NotFoundError(absl::StrCat("no model named '", request->name(), "'"));
    return Finish("GetModelInfo", start, status);
  }

 private:
  grpc::Status Finish(const char* method, std::chrono::steady_clock::time_point start, const absl::Status& status) {
    s_.metrics->RecordRequest(method, CodeName(status), SecondsSince(start));
    return ToGrpc(status);
  }

  int64_t GroupCommitMs() const {
    return s_.options.store.durability == store::Durability::kGroupCommit
               ? absl::ToInt64Milliseconds(s_.options.store.group_commit_interval)
               : 0;
  }

  absl::Status CheckWriter(grpc::ServerContext* ctx) const { return CheckAuthenticated(s_.options.tls, ctx); }

  absl::Status IngestEvents(const google::protobuf::RepeatedPtrField<v1::Event>& events,
                            store::IngestResult* result) {
    RETURN_IF_ERROR(ValidateEvents(events, s_.options.limits));
    std::vector<store::Event> batch;
    batch.reserve(events.size());
    for (const v1::Event& e : events) batch.push_back({e.user_id(), e.item_id(), e.time_unix_s(), e.event_id()});
    ASSIGN_OR_RETURN(*result, s_.store->Ingest(batch));
    s_.metrics->RecordIngest(result->accepted, result->duplicates);
    return absl::OkStatus();
  }

  // Maps a request's ids; returns the model request, or sets a fallback reason.
  struct Mapped {
    model::RecommendRequest request;
    v1::FallbackReason fallback = v1::FALLBACK_REASON_UNSPECIFIED;
    bool no_known_candidates = false;  // an allow-list with no item the store knows: nothing to rank
  };

  Mapped Map(const v1::RecommendRequest& r) const {
    Mapped m;
    m.request.k = r.k() == 0 ? s_.options.limits.default_k : r.k();
    m.request.as_of = r.has_as_of_unix_s() ? r.as_of_unix_s() : store::kMaxTime;
    m.request.exclude_seen = !r.has_exclude_seen() || r.exclude_seen();
    absl::flat_hash_set<store::NodeId> seen_candidates;
    for (const std::string& id : r.candidate_item_ids()) {
      if (auto item = s_.store->ItemId(id); item && seen_candidates.insert(*item).second) {
        m.request.candidates.push_back(*item);
      }
    }
    m.no_known_candidates = r.candidate_item_ids_size() > 0 && m.request.candidates.empty();
    for (const std::string& id : r.excluded_item_ids()) {
      if (auto item = s_.store->ItemId(id)) m.request.excluded.push_back(*item);
    }
    std::optional<store::NodeId> user = s_.store->UserId(r.user_id());
    if (!user) {
      m.fallback = v1::FALLBACK_REASON_UNKNOWN_USER;
      m.request.user = std::numeric_limits<store::NodeId>::max();
      return m;
    }
    m.request.user = *user;
    if (s_.store->graph().Read().UserDegree(*user, m.request.as_of) == 0) m.fallback = v1::FALLBACK_REASON_NO_HISTORY;
    return m;
  }

  absl::Status FillItems(const std::vector<model::ScoredItem>& items, v1::RecommendResponse* response) const {
    for (const model::ScoredItem& item : items) {
      ASSIGN_OR_RETURN(std::string id, s_.store->ExternalItemId(item.item));
      v1::ScoredItem* out = response->add_items();
      out->set_item_id(std::move(id));
      out->set_score(item.score);
    }
    return absl::OkStatus();
  }

  absl::Status RecommendAll(grpc::ServerContext* ctx, const std::vector<const v1::RecommendRequest*>& requests,
                            const std::vector<v1::RecommendResponse*>& responses) {
    const absl::Time deadline = absl::FromChrono(ctx->deadline());
    // One job per model version; requests answered by the fallback never reach the batcher.
    std::vector<std::shared_ptr<RecommendJob>> jobs;
    std::vector<std::vector<size_t>> job_requests;
    for (size_t i = 0; i < requests.size(); ++i) {
      const v1::RecommendRequest& r = *requests[i];
      ASSIGN_OR_RETURN(std::shared_ptr<const Servable> servable,
                       s_.models->Get(r.model_spec().name(), r.model_spec().version()));
      responses[i]->mutable_model_spec()->set_name(servable->name);
      responses[i]->mutable_model_spec()->set_version(servable->version);
      Mapped m = Map(r);
      if (m.no_known_candidates) continue;
      if (m.fallback != v1::FALLBACK_REASON_UNSPECIFIED) {
        responses[i]->set_fallback(true);
        responses[i]->set_fallback_reason(m.fallback);
        s_.metrics->RecordFallback(m.fallback == v1::FALLBACK_REASON_UNKNOWN_USER ? "unknown_user" : "no_history");
        RETURN_IF_ERROR(FillItems(s_.popularity->Recommend(m.request), responses[i]));
        continue;
      }
      size_t j = 0;
      while (j < jobs.size() && jobs[j]->servable != servable) ++j;
      if (j == jobs.size()) {
        jobs.push_back(std::make_shared<RecommendJob>());
        jobs.back()->servable = servable;
        jobs.back()->deadline = deadline;
        job_requests.emplace_back();
      }
      jobs[j]->requests.push_back(std::move(m.request));
      job_requests[j].push_back(i);
    }
    for (auto& job : jobs) RETURN_IF_ERROR(s_.batcher->Submit(job));
    for (size_t j = 0; j < jobs.size(); ++j) {
      RecommendJob& job = *jobs[j];
      job.done.WaitForNotification();
      RETURN_IF_ERROR(job.status);
      s_.metrics->RecordQueue(job.queue_seconds);
      for (size_t r = 0; r < job_requests[j].size(); ++r) {
        RETURN_IF_ERROR(FillItems(job.results[r], responses[job_requests[j][r]]));
      }
    }
    if (!jobs.empty()) {
      const RecommendJob& job = *jobs.front();
      ctx->AddTrailingMetadata(
          "dgsr-server-timing",
          absl::StrFormat("queue_us=%d;sample_us=%d;forward_us=%d;top_k_us=%d;batch=%d",
                          static_cast<int64_t>(job.queue_seconds * 1e6), static_cast<int64_t>(job.timings.sample * 1e6),
                          static_cast<int64_t>(job.timings.forward * 1e6),
                          static_cast<int64_t>(job.timings.top_k * 1e6), job.batch_requests));
    }
    return absl::OkStatus();
  }

  Server::State& s_;
};

// The operator's RPCs.
class AdminServiceImpl final : public v1::AdminService::Service {
 public:
  explicit AdminServiceImpl(Server::State* state) : s_(*state) {}

  grpc::Status CreateSnapshot(grpc::ServerContext* ctx, const v1::CreateSnapshotRequest*,
                              v1::CreateSnapshotResponse* response) override {
    const auto start = std::chrono::steady_clock::now();
    absl::Status status = CheckAuthenticated(s_.options.tls, ctx);
    if (status.ok()) {
      absl::StatusOr<SnapshotTaken> taken = s_.snapshots->Take();
      status = taken.status();
      if (taken.ok()) {
        response->set_path(taken->path);
        response->set_snapshot_id(taken->contents.snapshot_id);
        response->set_events(taken->contents.num_events);
        response->set_users(taken->contents.num_users);
        response->set_items(taken->contents.num_items);
        response->set_max_time_unix_s(taken->contents.max_time);
        for (const std::string& removed : taken->removed) response->add_removed_paths(removed);
      }
    }
    s_.metrics->RecordRequest("CreateSnapshot", CodeName(status), SecondsSince(start));
    return ToGrpc(status);
  }

 private:
  Server::State& s_;
};

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const TlsOptions& tls) {
  if (tls.cert_file.empty() && tls.key_file.empty()) {
    if (!tls.client_ca_file.empty() || tls.require_client_cert || tls.restrict_writes) {
      return absl::InvalidArgumentError("client certificates (--tls_client_ca, --tls_require_client_cert, "
                                        "--restrict_writes) need TLS: set --tls_cert and --tls_key");
    }
    return grpc::InsecureServerCredentials();
  }
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls_cert and --tls_key");
  }
  if ((tls.require_client_cert || tls.restrict_writes) && tls.client_ca_file.empty()) {
    return absl::InvalidArgumentError("verifying client certificates needs --tls_client_ca");
  }
  grpc::SslServerCredentialsOptions ssl(
      tls.client_ca_file.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
      : tls.require_client_cert  ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                 : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  ASSIGN_OR_RETURN(std::string cert, ReadFile(tls.cert_file));
  ASSIGN_OR_RETURN(std::string key, ReadFile(tls.key_file));
  ssl.pem_key_cert_pairs.push_back({key, cert});
  if (!tls.client_ca_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(tls.client_ca_file));
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

Server::Server(std::unique_ptr<State> state) : state_(std::move(state)) {}

Server::~Server() { (void)Shutdown(); }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  auto state = std::make_unique<State>();
  State& s = *state;
  s.options = std::move(options);
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, Credentials(s.options.tls));
  s.options.limits.max_id_bytes = s.options.store.max_id_bytes;
  s.options.limits.max_ingest_events = static_cast<int>(s.options.store.max_batch_events);

  ASSIGN_OR_RETURN(s.store, store::GraphStore::Open(s.options.store));
  const store::StoreInfo info = s.store->info();
  DGSR_LOG(INFO) << "store open" << Kv("path", s.options.store.path) << Kv("events", info.num_events)
                 << Kv("users", info.num_users) << Kv("items", info.num_items);

  ScrapeSources sources;
  sources.graph = [&s] {
    const store::StoreInfo i = s.store->info();
    return std::vector<std::pair<std::string, double>>{
        {"users", static_cast<double>(i.num_users)},
        {"items", static_cast<double>(i.num_items)},
        {"interactions", static_cast<double>(i.num_events)},
        {"memory_bytes", static_cast<double>(s.store->graph().MemoryBytes())}};
  };
  sources.models = [&s] {
    std::vector<std::tuple<std::string, double, double, double>> out;
    if (s.models == nullptr) return out;
    for (const ModelStatus& m : s.models->Status()) {
      for (const auto& v : m.loaded) {
        if (v->version != m.serving_version) continue;
        out.emplace_back(m.source.name, static_cast<double>(v->version), v->load_seconds,
                         absl::ToDoubleSeconds(v->loaded_at - absl::UnixEpoch()));
      }
    }
    return out;
  };
  sources.queue_requests = [&s] { return s.batcher ? s.batcher->queued_requests() : 0.0; };
  s.metrics = std::make_unique<ServerMetrics>(sources);

  s.options.models.store = s.store.get();
  s.options.models.on_load_event = [&s](const LoadEvent& e) { s.metrics->RecordModelLoad(e.model, e.ok); };
  ASSIGN_OR_RETURN(s.models, ModelManager::Create(s.options.models));
  s.batcher = std::make_unique<Batcher>(s.options.batching, &s.store->graph(),
                                        [&s](int n, const model::RecommendTimings& t) { s.metrics->RecordBatch(n, t); });
  s.popularity = std::make_unique<PopularityFallback>(&s.store->graph(), s.options.popularity);
  if (s.options.snapshots.dir.empty()) s.options.snapshots.dir = s.options.store.path + ".snapshots";
  s.snapshots = std::make_unique<Snapshots>(s.store.get(), s.options.snapshots);
  s.service = std::make_unique<RecommendationServiceImpl>(&s);
  s.admin = std::make_unique<AdminServiceImpl>(&s);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(s.options.listen, credentials, &s.port);
  builder.RegisterService(s.service.get());
  builder.RegisterService(s.admin.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<size_t>(s.options.limits.max_message_bytes * 4, INT32_MAX)));
  grpc::ResourceQuota quota("dgsr");
  quota.SetMaxThreads(s.options.max_rpc_threads);
  builder.SetResourceQuota(quota);
  s.grpc_server = builder.BuildAndStart();
  if (s.grpc_server == nullptr || s.port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", s.options.listen, " (in use, or a bad address)"));
  }
  s.grpc_server->GetHealthCheckService()->SetServingStatus(false);
  s.grpc_server->GetHealthCheckService()->SetServingStatus(kServiceName, false);
  if (!s.options.metrics_listen.empty()) {
    RETURN_IF_ERROR(s.metrics->Expose(s.options.metrics_listen));
    s.metrics_port = s.metrics->ports().empty() ? 0 : s.metrics->ports().front();
  }
  s.models->StartWatching();
  // Every model is loaded and warmed (ModelManager::Create) and the store is open: ready.
  s.grpc_server->GetHealthCheckService()->SetServingStatus(true);
  s.grpc_server->GetHealthCheckService()->SetServingStatus(kServiceName, true);
  DGSR_LOG(INFO) << "serving" << Kv("listen", s.options.listen) << Kv("port", s.port)
                 << Kv("metrics_port", s.metrics_port) << Kv("tls", !s.options.tls.cert_file.empty());
  return std::unique_ptr<Server>(new Server(std::move(state)));
}

int Server::port() const { return state_->port; }
int Server::metrics_port() const { return state_->metrics_port; }
ModelManager& Server::models() { return *state_->models; }
store::GraphStore& Server::store() { return *state_->store; }
std::string Server::ScrapeMetrics() const { return state_->metrics->Scrape(); }

void Server::Wait() { state_->finished.WaitForNotification(); }

absl::Status Server::Shutdown() {
  State& s = *state_;
  absl::MutexLock lock(&s.shutdown_mu);
  if (s.shut_down) return s.shutdown_status;
  s.shut_down = true;
  DGSR_LOG(INFO) << "shutting down: NOT_SERVING, draining in-flight calls"
                 << Kv("drain_timeout_s", absl::ToDoubleSeconds(s.options.drain_timeout));
  s.grpc_server->GetHealthCheckService()->SetServingStatus(false);
  s.grpc_server->Shutdown(absl::ToChronoTime(absl::Now() + s.options.drain_timeout));
  s.grpc_server->Wait();
  s.batcher->Stop();
  s.models->StopWatching();
  s.shutdown_status = s.store->Sync();
  s.store.reset();  // closes RocksDB (fsyncs the WAL)
  DGSR_LOG(INFO) << "shut down" << Kv("store_sync", s.shutdown_status.ok() ? "ok" : s.shutdown_status.ToString());
  s.finished.Notify();
  return s.shutdown_status;
}

}  // namespace dgsr::server
