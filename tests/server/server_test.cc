// The recommendation service end to end: a real Server on loopback, a real RocksDB store filled
// with synthetic events, real TorchScript artifacts (DGSR and SASRec+) exported by the trainer's
// exporter, and a standard generated gRPC client. No mocks.
#include "server/server.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include "grpc/health/v1/health.grpc.pb.h"
#include <grpcpp/impl/codegen/sync_stream.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "dgsr/v1/admin_service.grpc.pb.h"
#include "dgsr/v1/recommendation_service.grpc.pb.h"
#include "model/dgsr_network.h"
#include "model/sasrec_network.h"
#include "tests/testutil/synth_store.h"
#include "tests/testutil/temp_dir.h"
#include "trainer/export.h"
#include "trainer/sasrec_trainer.h"

namespace dgsr::server {
namespace {

using grpc::StatusCode;

constexpr int kUsers = 120;
constexpr int kItems = 80;

// Exports a freshly initialised network of each kind, sized for the store, into model_dir.
std::string ExportDgsr(const std::string& model_dir, const store::StoreInfo& info, uint64_t seed,
                       int64_t items_override = 0) {
  model::DgsrConfig c = model::DgsrConfig::Inductive();
  c.num_users = info.num_users;
  c.num_items = items_override > 0 ? items_override : info.num_items;
  c.dim = 16;
  c.max_neighbors = 10;
  c.sampler_order = 2;
  auto net = model::DgsrNetwork::Create(c, seed);
  EXPECT_TRUE(net.ok()) << net.status();
  JsonObject meta;
  meta.Set("store_id", info.store_id);
  auto dir = trainer::ExportModel(model_dir, **net, meta);
  EXPECT_TRUE(dir.ok()) << dir.status();
  return dir.value_or("");
}

std::string ExportSasRecModel(const std::string& model_dir, const store::StoreInfo& info) {
  model::SasRecConfig c;
  c.num_items = info.num_items;
  c.max_len = 10;
  c.hidden = 16;
  c.blocks = 1;
  auto net = model::SasRecNetwork::Create(c, 5);
  EXPECT_TRUE(net.ok()) << net.status();
  JsonObject meta;
  meta.Set("store_id", info.store_id);
  auto dir = trainer::ExportSasRec(model_dir, **net, meta);
  EXPECT_TRUE(dir.ok()) << dir.status();
  return dir.value_or("");
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    {
      auto s = testing::SynthStore(dir_, kUsers, kItems, 15);
      info_ = s->info();
    }  // closed: the server opens it
    ExportDgsr(dir_.Sub("models/dgsr"), info_, 1);
    ExportSasRecModel(dir_.Sub("models/sasrec"), info_);
    options_.listen = "127.0.0.1:0";
    options_.metrics_listen = "127.0.0.1:0";
    options_.store.path = dir_.Sub("store");
    options_.store.durability = store::Durability::kGroupCommit;
    options_.models.models = {{"dgsr", dir_.Sub("models/dgsr"), 0}, {"sasrec", dir_.Sub("models/sasrec"), 0}};
    options_.models.poll_interval = absl::Milliseconds(20);
    options_.models.warmup_batch_sizes = {1, 4};
    options_.drain_timeout = absl::Seconds(10);
  }

  void StartServer() {
    auto server = Server::Start(options_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()), grpc::InsecureChannelCredentials());
    stub_ = v1::RecommendationService::NewStub(channel_);
  }

  static v1::RecommendRequest Request(const std::string& user, int k = 10) {
    v1::RecommendRequest r;
    r.set_user_id(user);
    r.set_k(k);
    return r;
  }

  grpc::Status Call(const v1::RecommendRequest& r, v1::RecommendResponse* out, int timeout_ms = 10000) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
    return stub_->Recommend(&ctx, r, out);
  }

  grpc::Status Ingest(const std::vector<std::tuple<std::string, std::string, int64_t>>& events,
                      v1::IngestResponse* out = nullptr) {
    v1::IngestRequest req;
    for (const auto& [u, i, t] : events) {
      v1::Event* e = req.add_events();
      e->set_user_id(u);
      e->set_item_id(i);
      e->set_time_unix_s(t);
    }
    v1::IngestResponse local;
    grpc::ClientContext ctx;
    return stub_->Ingest(&ctx, req, out ? out : &local);
  }

  // What the in-process Recommender answers on the server's live graph (external item ids).
  std::vector<std::pair<std::string, float>> InProcess(const std::string& model, const std::string& user, int k,
                                                       store::Timestamp as_of = store::kMaxTime) {
    auto servable = server_->models().Get(model, 0);
    EXPECT_TRUE(servable.ok());
    model::RecommendRequest r;
    r.user = *server_->store().UserId(user);
    r.k = k;
    r.as_of = as_of;
    auto lists = (*servable)->recommender.Recommend(server_->store().graph(), std::span(&r, 1));
    EXPECT_TRUE(lists.ok()) << lists.status();
    std::vector<std::pair<std::string, float>> out;
    for (const auto& s : (*lists)[0]) out.emplace_back(*server_->store().ExternalItemId(s.item), s.score);
    return out;
  }

  static void ExpectSameList(const v1::RecommendResponse& got, const std::vector<std::pair<std::string, float>>& want) {
    ASSERT_EQ(got.items_size(), static_cast<int>(want.size()));
    for (int i = 0; i < got.items_size(); ++i) {
      EXPECT_EQ(got.items(i).item_id(), want[i].first) << "rank " << i;
      EXPECT_NEAR(got.items(i).score(), want[i].second, 1e-4) << "rank " << i;
    }
  }

  std::string ExternalUser(int dense) { return *server_->store().ExternalUserId(dense); }

  dgsr::testing::TempDir dir_;
  store::StoreInfo info_;
  ServerOptions options_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::RecommendationService::Stub> stub_;
};

TEST_F(ServerTest, RecommendMatchesInProcessForBothNetworks) {
  StartServer();
  for (const std::string model : {"dgsr", "sasrec"}) {
    SCOPED_TRACE(model);
    for (int u = 0; u < 5; ++u) {
      v1::RecommendRequest r = Request(ExternalUser(u), 7);
      r.mutable_model_spec()->set_name(model);
      v1::RecommendResponse resp;
      ASSERT_TRUE(Call(r, &resp).ok());
      EXPECT_EQ(resp.model_spec().name(), model);
      EXPECT_EQ(resp.model_spec().version(), 1);
      EXPECT_FALSE(resp.fallback());
      ExpectSameList(resp, InProcess(model, ExternalUser(u), 7));
    }
  }
  // The default model is the first configured; the batch form answers in order.
  v1::RecommendBatchRequest batch;
  for (int u = 0; u < 6; ++u) *batch.add_requests() = Request(ExternalUser(u), 5);
  v1::RecommendBatchResponse out;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->RecommendBatch(&ctx, batch, &out).ok());
  ASSERT_EQ(out.responses_size(), 6);
  for (int u = 0; u < 6; ++u) {
    EXPECT_EQ(out.responses(u).model_spec().name(), "dgsr");
    ExpectSameList(out.responses(u), InProcess("dgsr", ExternalUser(u), 5));
  }
}

TEST_F(ServerTest, AnIngestedEventIsInTheNextRecommend) {
  StartServer();
  const std::string user = ExternalUser(3);
  v1::RecommendResponse before;
  ASSERT_TRUE(Call(Request(user, kItems), &before).ok());
  ASSERT_GT(before.items_size(), 0);
  const std::string top = before.items(0).item_id();
  // The user interacts with the top item now; with exclude_seen (the default) it must vanish at once.
  v1::IngestResponse ack;
  ASSERT_TRUE(Ingest({{user, top, info_.max_time + 100}}, &ack).ok());
  EXPECT_EQ(ack.accepted(), 1);
  EXPECT_EQ(ack.durability(), v1::DURABILITY_GROUP_COMMIT);
  v1::RecommendResponse after;
  ASSERT_TRUE(Call(Request(user, kItems), &after).ok());
  for (const auto& item : after.items()) EXPECT_NE(item.item_id(), top);
  // And the sub-graph changed, so the model's list is the in-process list on the new graph.
  ExpectSameList(after, InProcess("dgsr", user, kItems));

  // A user the store has never seen gets the popularity fallback, and says so...
  v1::RecommendResponse cold;
  ASSERT_TRUE(Call(Request("brand-new-user", 5), &cold).ok());
  EXPECT_TRUE(cold.fallback());
  EXPECT_EQ(cold.fallback_reason(), v1::FALLBACK_REASON_UNKNOWN_USER);
  EXPECT_EQ(cold.items_size(), 5);
  // ...until the first event is acknowledged: then the model answers, from the live sub-graph.
  ASSERT_TRUE(Ingest({{"brand-new-user", top, info_.max_time + 200}}).ok());
  v1::RecommendResponse warm;
  ASSERT_TRUE(Call(Request("brand-new-user", 5), &warm).ok());
  EXPECT_FALSE(warm.fallback());
  ExpectSameList(warm, InProcess("dgsr", "brand-new-user", 5));
  // A known user with no interaction before as_of also falls back.
  v1::RecommendRequest early = Request(user, 5);
  early.set_as_of_unix_s(0);
  v1::RecommendResponse none;
  ASSERT_TRUE(Call(early, &none).ok());
  EXPECT_EQ(none.fallback_reason(), v1::FALLBACK_REASON_NO_HISTORY);
  EXPECT_EQ(none.items_size(), 0);  // nothing was popular before time 0
}

TEST_F(ServerTest, CandidatesDenyListsAndDuplicatesOverTheWire) {
  StartServer();
  const std::string user = ExternalUser(1);
  v1::RecommendRequest r = Request(user, 3);
  r.set_exclude_seen(false);
  std::vector<std::string> cands;
  for (int i = 0; i < 6; ++i) cands.push_back(*server_->store().ExternalItemId(i));
  for (const auto& c : cands) r.add_candidate_item_ids(c);
  r.add_candidate_item_ids(cands[0]);            // repeated: counted once
  r.add_candidate_item_ids("no-such-item");      // unknown: ignored
  r.add_excluded_item_ids(cands[1]);
  v1::RecommendResponse resp;
  ASSERT_TRUE(Call(r, &resp).ok());
  ASSERT_EQ(resp.items_size(), 3);
  std::set<std::string> got;
  for (const auto& item : resp.items()) {
    got.insert(item.item_id());
    EXPECT_NE(item.item_id(), cands[1]);
    EXPECT_TRUE(std::find(cands.begin(), cands.end(), item.item_id()) != cands.end());
  }
  EXPECT_EQ(got.size(), 3u);
  // Only unknown candidates: nothing to rank, an empty answer (not the whole catalogue).
  v1::RecommendRequest unknown = Request(user, 3);
  unknown.add_candidate_item_ids("no-such-item");
  ASSERT_TRUE(Call(unknown, &resp).ok());
  EXPECT_EQ(resp.items_size(), 0);

  // Ingest idempotency by event id, unary and streaming.
  v1::IngestRequest req;
  for (int i = 0; i < 3; ++i) {
    v1::Event* e = req.add_events();
    e->set_user_id(user);
    e->set_item_id(cands[i]);
    e->set_time_unix_s(info_.max_time + 10 + i);
    e->set_event_id(absl::StrCat("evt-", i));
  }
  v1::IngestResponse ack;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->Ingest(&ctx, req, &ack).ok());
  }
  EXPECT_EQ(ack.accepted(), 3);
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->Ingest(&ctx, req, &ack).ok());
  }
  EXPECT_EQ(ack.accepted(), 0);
  EXPECT_EQ(ack.duplicates(), 3);
  grpc::ClientContext ctx;
  v1::IngestStreamResponse stream_ack;
  auto writer = stub_->IngestStream(&ctx, &stream_ack);
  v1::IngestStreamRequest message;
  *message.mutable_events() = req.events();  // all duplicates
  ASSERT_TRUE(writer->Write(message));
  message.mutable_events(0)->set_event_id("evt-new");
  ASSERT_TRUE(writer->Write(message));
  writer->WritesDone();
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(stream_ack.batches(), 2);
  EXPECT_EQ(stream_ack.accepted(), 1);
  EXPECT_EQ(stream_ack.duplicates(), 5);
}

TEST_F(ServerTest, EveryBadRequestIsInvalidArgumentAndChangesNothing) {
  options_.limits.max_message_bytes = 64 << 10;
  StartServer();
  const int64_t events_before = server_->store().info().num_events;
  std::vector<std::pair<std::string, v1::RecommendRequest>> bad;
  bad.push_back({"user_id", Request("")});
  bad.push_back({"user_id", Request(std::string(300, 'u'))});
  bad.push_back({"k", Request("u", -1)});
  bad.push_back({"k", Request("u", 5000)});
  v1::RecommendRequest r = Request(ExternalUser(0));
  r.set_as_of_unix_s(-5);
  bad.push_back({"as_of_unix_s", r});
  r = Request(ExternalUser(0));
  for (int i = 0; i < 10001; ++i) r.add_candidate_item_ids("x");
  bad.push_back({"candidate_item_ids", r});
  r = Request(ExternalUser(0));
  r.add_excluded_item_ids("");
  bad.push_back({"excluded_item_ids[0]", r});
  r = Request(ExternalUser(0));
  r.mutable_model_spec()->set_version(-2);
  bad.push_back({"model_spec.version", r});
  for (const auto& [field, req] : bad) {
    v1::RecommendResponse resp;
    grpc::Status s = Call(req, &resp);
    EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT) << field << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(field), std::string::npos) << s.error_message();
  }
  // Unknown models and versions are NOT_FOUND.
  r = Request(ExternalUser(0));
  r.mutable_model_spec()->set_name("nope");
  v1::RecommendResponse resp;
  EXPECT_EQ(Call(r, &resp).error_code(), StatusCode::NOT_FOUND);
  r.mutable_model_spec()->set_name("dgsr");
  r.mutable_model_spec()->set_version(99);
  EXPECT_EQ(Call(r, &resp).error_code(), StatusCode::NOT_FOUND);
  // Batches.
  v1::RecommendBatchRequest batch;
  v1::RecommendBatchResponse batch_out;
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(stub_->RecommendBatch(&ctx, batch, &batch_out).error_code(), StatusCode::INVALID_ARGUMENT);
  }
  for (int i = 0; i < 1001; ++i) *batch.add_requests() = Request("u");
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(stub_->RecommendBatch(&ctx, batch, &batch_out).error_code(), StatusCode::INVALID_ARGUMENT);
  }
  batch.Clear();
  *batch.add_requests() = Request(ExternalUser(0));
  *batch.add_requests() = Request("", 3);
  {
    grpc::ClientContext ctx;
    grpc::Status s = stub_->RecommendBatch(&ctx, batch, &batch_out);
    EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("requests[1].user_id"), std::string::npos) << s.error_message();
  }
  // Ingest: one bad event rejects the batch; nothing is written.
  EXPECT_EQ(Ingest({}).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Ingest({{"u", "i", 5}, {"u", "", 6}}).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Ingest({{"u", "i", 5}, {"u", "i", -1}}).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Ingest({{"u", std::string(257, 'i'), 5}}).error_code(), StatusCode::INVALID_ARGUMENT);
  // A message over the size limit (options_.limits.max_message_bytes = 64 KiB here), even though
  // every field in it is within its own limit.
  v1::IngestRequest big;
  for (int i = 0; i < 1000; ++i) {
    v1::Event* e = big.add_events();
    e->set_user_id(std::string(100, 'u'));
    e->set_item_id("i");
    e->set_time_unix_s(5);
  }
  v1::IngestResponse big_ack;
  {
    grpc::ClientContext ctx;
    grpc::Status s = stub_->Ingest(&ctx, big, &big_ack);
    EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_NE(s.error_message().find("the limit is 65536"), std::string::npos) << s.error_message();
  }
  EXPECT_EQ(server_->store().info().num_events, events_before);
  // GetModelInfo for an unknown name.
  v1::GetModelInfoRequest info_req;
  info_req.set_name("nope");
  v1::GetModelInfoResponse info_resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(stub_->GetModelInfo(&ctx, info_req, &info_resp).error_code(), StatusCode::NOT_FOUND);
}

// Reads a whole HTTP response from 127.0.0.1:port (GET path).
std::string HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  (void)::write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) out.append(buf, n);
  ::close(fd);
  return out;
}

TEST_F(ServerTest, HealthReflectionModelInfoAndMetricsAnswer) {
  StartServer();
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (const std::string service : {"", "dgsr.v1.RecommendationService"}) {
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  // Server reflection (v1alpha, what Debian's gRPC serves), spoken with raw bytes: list_services.
  {
    grpc::ClientContext ctx;
    const grpc::internal::RpcMethod method("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                           grpc::internal::RpcMethod::BIDI_STREAMING);
    std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
        grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(channel_.get(), method,
                                                                                              &ctx));
    const std::string list_services("\x3a\x01*", 3);  // field 7 (list_services) = "*"
    grpc::Slice slice(list_services);
    grpc::ByteBuffer request(&slice, 1);
    ASSERT_TRUE(stream->Write(request));
    grpc::ByteBuffer response;
    ASSERT_TRUE(stream->Read(&response));
    std::vector<grpc::Slice> slices;
    ASSERT_TRUE(response.Dump(&slices).ok());
    std::string bytes;
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    EXPECT_NE(bytes.find("dgsr.v1.RecommendationService"), std::string::npos);
    EXPECT_NE(bytes.find("grpc.health.v1.Health"), std::string::npos);
    stream->WritesDone();
  }
  // GetModelInfo.
  v1::GetModelInfoResponse info;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok());
  }
  EXPECT_EQ(info.default_model(), "dgsr");
  ASSERT_EQ(info.models_size(), 2);
  EXPECT_EQ(info.models(0).name(), "dgsr");
  ASSERT_EQ(info.models(0).versions_size(), 1);
  EXPECT_TRUE(info.models(0).versions(0).serving());
  EXPECT_EQ(info.models(0).versions(0).network(), "dgsr");
  EXPECT_NE(info.models(0).versions(0).config_json().find("\"num_items\""), std::string::npos);
  EXPECT_EQ(info.models(1).versions(0).network(), "sasrec");

  // Some traffic, then a real HTTP scrape of /metrics that parses and has the named series.
  v1::RecommendResponse resp;
  ASSERT_TRUE(Call(Request(ExternalUser(0)), &resp).ok());
  ASSERT_TRUE(Call(Request("cold-user"), &resp).ok());
  ASSERT_TRUE(Ingest({{"m", "n", 5}}).ok());
  ASSERT_GT(server_->metrics_port(), 0);
  const std::string http = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_NE(http.find("200 OK"), std::string::npos) << http.substr(0, 200);
  const std::string body = http.substr(http.find("\r\n\r\n") + 4);
  const std::regex sample(R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEinfNa]+( [0-9]+)?$)");
  std::set<std::string> names;
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    EXPECT_TRUE(std::regex_match(line, sample)) << "not exposition format: " << line;
    names.insert(line.substr(0, line.find_first_of("{ ")));
  }
  for (const char* want :
       {"dgsr_requests_total", "dgsr_request_duration_seconds_bucket", "dgsr_stage_duration_seconds_bucket",
        "dgsr_batch_size_bucket", "dgsr_recommend_fallbacks_total", "dgsr_ingested_events_total",
        "dgsr_model_loads_total", "dgsr_model_serving_version", "dgsr_model_load_seconds", "dgsr_graph_users",
        "dgsr_graph_items", "dgsr_graph_interactions", "dgsr_graph_memory_bytes", "dgsr_queue_requests",
        "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
        "process_start_time_seconds"}) {
    EXPECT_TRUE(names.count(want)) << "missing series " << want;
  }
  EXPECT_NE(body.find("dgsr_requests_total{code=\"OK\",method=\"Recommend\"} 2"), std::string::npos);
  EXPECT_NE(body.find("stage=\"forward\""), std::string::npos);
  EXPECT_NE(body.find("dgsr_recommend_fallbacks_total{reason=\"unknown_user\"} 1"), std::string::npos);
}

TEST_F(ServerTest, ConcurrentRecommendAndIngestAgreeWithInProcess) {
  options_.batching.max_batch_size = 8;
  StartServer();
  // Recommend as of a fixed time while events after it stream in: every answer must equal the
  // in-process answer for that time, whatever batch it ran in and whatever was ingested meanwhile.
  const store::Timestamp as_of = info_.max_time + 1;
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, recommends{0}, ingested{0};
  std::mutex mu;
  std::vector<std::pair<std::string, v1::RecommendResponse>> answers;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; !stop; ++n) {
        const std::string user = ExternalUser((t * 31 + n) % kUsers);
        v1::RecommendRequest r = Request(user, 10);
        r.set_as_of_unix_s(as_of);
        v1::RecommendResponse resp;
        grpc::Status s = Call(r, &resp);
        if (!s.ok()) {
          ++failures;
          continue;
        }
        ++recommends;
        if (n % 7 == 0) {
          std::lock_guard<std::mutex> lock(mu);
          answers.emplace_back(user, resp);
        }
      }
    });
  }
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; !stop; ++n) {
        std::vector<std::tuple<std::string, std::string, int64_t>> events;
        for (int e = 0; e < 20; ++e) {
          events.emplace_back(ExternalUser((n * 20 + e) % kUsers), *server_->store().ExternalItemId((n + e * t) % kItems),
                              as_of + 10 + n);
        }
        if (Ingest(events).ok()) ingested += 20; else ++failures;
      }
    });
  }
  absl::SleepFor(absl::Seconds(3));
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_GT(recommends, 20);
  EXPECT_GT(ingested, 100);
  ASSERT_FALSE(answers.empty());
  for (const auto& [user, resp] : answers) ExpectSameList(resp, InProcess("dgsr", user, 10, as_of));
}

TEST_F(ServerTest, TwentyHotSwapsUnderLoadFailNoRequest) {
  StartServer();
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, ok{0};
  std::mutex mu;
  std::set<int64_t> versions_seen;
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      for (int n = 0; !stop; ++n) {
        v1::RecommendResponse resp;
        grpc::Status s = Call(Request(ExternalUser((t + n) % kUsers), 10), &resp);
        if (!s.ok() || resp.items_size() == 0) {
          ++failures;
          ADD_FAILURE() << s.error_code() << " " << s.error_message();
          continue;
        }
        ++ok;
        std::lock_guard<std::mutex> lock(mu);
        versions_seen.insert(resp.model_spec().version());
      }
    });
  }
  for (int swap = 0; swap < 20; ++swap) {
    const std::string dir = ExportDgsr(dir_.Sub("models/dgsr"), info_, 100 + swap);
    const int64_t version = swap + 2;
    ASSERT_EQ(dir, dir_.Sub(absl::StrCat("models/dgsr/", version)));
    const absl::Time give_up = absl::Now() + absl::Seconds(20);
    while (server_->models().Get("dgsr", 0).value()->version != version && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    ASSERT_EQ(server_->models().Get("dgsr", 0).value()->version, version);
  }
  absl::SleepFor(absl::Milliseconds(100));
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(failures, 0);
  EXPECT_GT(ok, 100);
  EXPECT_GE(versions_seen.size(), 10u) << "the clients should have been answered by many versions";
  EXPECT_NE(server_->ScrapeMetrics().find("dgsr_model_loads_total{model=\"dgsr\",result=\"ok\"} 21"), std::string::npos);
}

TEST_F(ServerTest, BrokenOrIncompatibleVersionsAreRejectedAndTheOldOneServes) {
  StartServer();
  auto serving = [&] { return server_->models().Get("dgsr", 0).value()->version; };
  ASSERT_EQ(serving(), 1);
  // 2: garbage; 3: a model for a bigger catalogue than the store has; 4: trained on another store.
  std::filesystem::create_directories(dir_.Sub("models/dgsr/.tmp-x"));
  std::ofstream(dir_.Sub("models/dgsr/.tmp-x/model.pt")) << "this is not a model";
  std::filesystem::rename(dir_.Sub("models/dgsr/.tmp-x"), dir_.Sub("models/dgsr/2"));
  server_->models().Poll();
  EXPECT_EQ(serving(), 1);
  ExportDgsr(dir_.Sub("models/dgsr"), info_, 7, info_.num_items + 50);
  server_->models().Poll();
  EXPECT_EQ(serving(), 1);
  store::StoreInfo other = info_;
  other.store_id = "another-store";
  ExportDgsr(dir_.Sub("models/dgsr"), other, 8);
  server_->models().Poll();
  EXPECT_EQ(serving(), 1);
  v1::RecommendResponse resp;
  ASSERT_TRUE(Call(Request(ExternalUser(0)), &resp).ok());
  EXPECT_EQ(resp.model_spec().version(), 1);
  const std::string metrics = server_->ScrapeMetrics();
  EXPECT_NE(metrics.find("dgsr_model_loads_total{model=\"dgsr\",result=\"failed\"} 3"), std::string::npos) << metrics;
  v1::GetModelInfoResponse info;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_NE(info.models(0).last_error().find("version 4"), std::string::npos) << info.models(0).last_error();
  EXPECT_NE(info.models(0).last_error().find("another-store"), std::string::npos);
  // A good version after the bad ones is loaded.
  ExportDgsr(dir_.Sub("models/dgsr"), info_, 9);
  server_->models().Poll();
  EXPECT_EQ(serving(), 5);
  // A pinned version serves even when a newer one exists.
  server_.reset();
  options_.models.models[0].pinned_version = 1;
  StartServer();
  EXPECT_EQ(serving(), 1);
}

TEST_F(ServerTest, ExpiredDeadlinesAreDroppedAndFullQueuesAnswerResourceExhausted) {
  options_.batching.max_delay = absl::Milliseconds(300);  // the oldest request waits this long for company
  options_.batching.max_batch_size = 1000;
  options_.batching.max_queued_requests = 8;
  StartServer();
  // Deadline: 50 ms, but the batch only forms after 300 ms: the server drops the work unrun.
  v1::RecommendResponse resp;
  EXPECT_EQ(Call(Request(ExternalUser(0)), &resp, 50).error_code(), StatusCode::DEADLINE_EXCEEDED);
  absl::SleepFor(absl::Milliseconds(400));
  EXPECT_NE(server_->ScrapeMetrics().find("code=\"DEADLINE_EXCEEDED\",method=\"Recommend\"} 1"), std::string::npos);

  // Overload: 40 concurrent calls against 8 queue slots.
  std::atomic<int> exhausted{0}, ok{0}, other{0};
  std::atomic<int> max_queued{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 40; ++t) {
    threads.emplace_back([&, t] {
      v1::RecommendResponse r;
      grpc::Status s = Call(Request(ExternalUser(t % kUsers)), &r);
      if (s.ok()) ++ok;
      else if (s.error_code() == StatusCode::RESOURCE_EXHAUSTED) ++exhausted;
      else ++other;
    });
  }
  for (int i = 0; i < 30; ++i) {
    const std::string m = server_->ScrapeMetrics();
    const size_t at = m.find("\ndgsr_queue_requests ");
    if (at != std::string::npos) max_queued = std::max<int>(max_queued, std::stoi(m.substr(at + 21)));
    absl::SleepFor(absl::Milliseconds(10));
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(other, 0);
  EXPECT_GT(exhausted, 0);
  EXPECT_GT(ok, 0);
  EXPECT_LE(max_queued, 8) << "the queue is bounded";
}

TEST_F(ServerTest, ShutdownDrainsInFlightCallsAndKeepsAcknowledgedEvents) {
  options_.batching.max_delay = absl::Milliseconds(300);
  options_.batching.max_batch_size = 1000;
  StartServer();
  ASSERT_TRUE(Ingest({{"drain-user", *server_->store().ExternalItemId(1), info_.max_time + 5}}).ok());
  const std::string user0 = ExternalUser(0);
  std::vector<std::string> users;
  for (int t = 0; t < 4; ++t) users.push_back(ExternalUser(t));
  std::atomic<int> ok{0};
  std::vector<std::thread> calls;
  for (int t = 0; t < 4; ++t) {
    calls.emplace_back([&, t] {
      v1::RecommendResponse r;
      if (Call(Request(users[t]), &r).ok() && r.items_size() > 0) ++ok;
    });
  }
  absl::SleepFor(absl::Milliseconds(100));  // the calls are queued, waiting for their batch
  ASSERT_TRUE(server_->Shutdown().ok());
  for (auto& c : calls) c.join();
  EXPECT_EQ(ok, 4) << "in-flight calls finish during the drain";
  v1::RecommendResponse r;
  EXPECT_EQ(Call(Request(user0), &r, 2000).error_code(), StatusCode::UNAVAILABLE);
  server_.reset();
  // The store was flushed and closed: it reopens with the acknowledged event.
  store::GraphStoreOptions reopen;
  reopen.path = dir_.Sub("store");
  auto store = store::GraphStore::Open(reopen);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->UserId("drain-user").has_value());
}

TEST_F(ServerTest, SnapshotsHoldEveryAcknowledgedEventAndAreKeptToTheRetention) {
  options_.snapshots.keep = 2;
  StartServer();
  auto admin = v1::AdminService::NewStub(channel_);
  std::vector<std::string> paths;
  for (int n = 0; n < 3; ++n) {
    ASSERT_TRUE(Ingest({{absl::StrCat("snap-user-", n), *server_->store().ExternalItemId(n), info_.max_time + n}}).ok());
    v1::CreateSnapshotResponse taken;
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin->CreateSnapshot(&ctx, v1::CreateSnapshotRequest(), &taken).ok());
    EXPECT_EQ(taken.events(), info_.num_events + n + 1);
    EXPECT_EQ(taken.max_time_unix_s(), info_.max_time + n);
    EXPECT_EQ(taken.path().rfind(dir_.Sub("store.snapshots/"), 0), 0u) << taken.path();
    EXPECT_EQ(taken.removed_paths_size(), n < 2 ? 0 : 1);
    // The snapshot opens read-only while the server runs, and holds exactly what was acknowledged.
    auto copy = store::GraphStore::OpenReadOnly(taken.path());
    ASSERT_TRUE(copy.ok()) << copy.status();
    EXPECT_EQ((*copy)->info().num_events, taken.events());
    EXPECT_EQ((*copy)->info().store_id, info_.store_id);
    EXPECT_EQ((*copy)->info().snapshot_id, taken.snapshot_id());
    EXPECT_TRUE((*copy)->UserId(absl::StrCat("snap-user-", n)).has_value());
    paths.push_back(taken.path());
  }
  EXPECT_FALSE(std::filesystem::exists(paths[0])) << "the oldest snapshot beyond keep = 2 is deleted";
  EXPECT_TRUE(std::filesystem::exists(paths[1]) && std::filesystem::exists(paths[2]));
}

TEST_F(ServerTest, StartFailsClearlyWithoutAModelAndOnABusyStore) {
  const auto models = options_.models.models;
  options_.models.models = {{"x", dir_.Sub("models/empty"), 0}};
  auto s = Server::Start(options_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("no loadable version"), std::string::npos) << s.status();
  options_.models.models = models;
  StartServer();
  ServerOptions second = options_;
  second.listen = "127.0.0.1:0";
  second.metrics_listen = "";
  auto busy = Server::Start(second);
  ASSERT_FALSE(busy.ok());
  EXPECT_NE(busy.status().message().find("lock"), std::string::npos) << busy.status();
}

}  // namespace
}  // namespace dgsr::server
