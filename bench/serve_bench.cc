// `dgsr bench serve`: what one machine sustains, measured from outside the server.
//
// It imports a real dataset (default: Amazon Games from ../shared/data) into a scratch store,
// exports a model (--serve_bench_model_dir, or an untrained network of the default configuration
// sized for the data: a forward pass costs the same trained or not), starts `dgsr serve` as a
// child process on loopback, and drives it with an asynchronous gRPC client (one thread issuing
// calls; completions run on gRPC's threads), so that the load generator costs little CPU. Phases:
//   1. server without batching: closed-loop sweep over concurrency -> peak QPS with p99 <= budget
//   2. server with batching: the same sweep
//   3. open loop at --serve_bench_qps (latency from each call's scheduled time, so a slow server
//      cannot hide queueing: no coordinated omission): p50/p90/p99/p99.9, errors, and the server's
//      own stage times (trailing metadata) -> the non-model share of p50
//   4. mixed: the same open loop while IngestStream adds --serve_bench_ingest_eps events/s
//   5. ingest: IngestStream with batches of 1,000 as fast as it goes, against in-process
//      GraphStore::Ingest of the same events into a copy of the same store, measured in this run.
// Both servers are stopped with SIGTERM and must exit 0.
#include "bench/serve_bench.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include "grpc/health/v1/health.grpc.pb.h"
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "bench/dataset.h"
#include "common/json.h"
#include "common/process_stats.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "dgsr/v1/recommendation_service.grpc.pb.h"
#include "model/dgsr_network.h"
#include "model/model_dir.h"
#include "store/graph_store.h"
#include "store/import.h"
#include "trainer/export.h"

ABSL_FLAG(std::string, serve_bench_dataset, "amazon-games-sasrec", "dataset folder in ../shared/data (Video.txt for Games)");
ABSL_FLAG(std::string, serve_bench_model_dir, "",
          "a trained versioned model directory for that dataset's store; empty: an untrained network of the default "
          "configuration sized for the data (same cost per forward pass)");
ABSL_FLAG(int, serve_bench_qps, 500, "open-loop target rate, Recommend calls per second");
ABSL_FLAG(double, serve_bench_seconds, 10, "length of each open-loop phase, seconds");
ABSL_FLAG(double, serve_bench_sweep_seconds, 3, "length of each closed-loop concurrency point, seconds");
ABSL_FLAG(std::string, serve_bench_concurrency, "1,2,4,8,16,32,64", "closed-loop concurrency levels of the sweep");
ABSL_FLAG(double, serve_bench_p99_budget_ms, 20, "p99 budget for the peak-throughput comparison");
ABSL_FLAG(int, serve_bench_k, 10, "k of each Recommend (full catalogue, seen items excluded)");
ABSL_FLAG(int, serve_bench_ingest_eps, 10000, "mixed phase: ingested events per second");
ABSL_FLAG(int, serve_bench_ingest_events, 200000, "ingest phase: events sent (batches of 1,000)");
ABSL_FLAG(std::string, serve_bench_server_flags, "", "extra flags for both spawned servers, space-separated");
ABSL_FLAG(std::string, serve_bench_dir, "", "scratch directory (default: a new one under /tmp, removed afterwards)");

namespace dgsr::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t at = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[at];
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// CPU seconds (user + system) of a process.
double ProcessCpuSeconds(pid_t pid) {
  const auto stats = ReadProcessStats(pid);
  return stats ? stats->cpu_seconds : 0;
}

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// A `dgsr serve` child process.
class ServerProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const std::vector<std::string>& flags,
                                                              const std::string& log_path) {
    auto p = std::unique_ptr<ServerProcess>(new ServerProcess());
    p->port_ = FreePort();
    p->metrics_port_ = FreePort();
    std::vector<std::string> argv = {"dgsr", "serve", absl::StrCat("--listen=127.0.0.1:", p->port_),
                                     absl::StrCat("--metrics_listen=127.0.0.1:", p->metrics_port_)};
    argv.insert(argv.end(), flags.begin(), flags.end());
    p->pid_ = fork();
    if (p->pid_ < 0) return absl::InternalError("fork failed");
    if (p->pid_ == 0) {
      FILE* log = std::fopen(log_path.c_str(), "w");
      if (log != nullptr) {
        dup2(fileno(log), STDERR_FILENO);
        dup2(fileno(log), STDOUT_FILENO);
      }
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv("/proc/self/exe", args.data());
      _exit(127);
    }
    p->channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", p->port_), grpc::InsecureChannelCredentials());
    auto health = grpc::health::v1::Health::NewStub(p->channel_);
    const absl::Time give_up = absl::Now() + absl::Minutes(5);
    while (absl::Now() < give_up) {
      int status = 0;
      if (waitpid(p->pid_, &status, WNOHANG) == p->pid_) {
        p->pid_ = -1;
        return absl::InternalError(absl::StrCat("dgsr serve exited during start-up; see ", log_path));
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
      grpc::health::v1::HealthCheckRequest req;
      grpc::health::v1::HealthCheckResponse resp;
      if (health->Check(&ctx, req, &resp).ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
        return p;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    return absl::DeadlineExceededError(absl::StrCat("dgsr serve did not become SERVING; see ", log_path));
  }

  ~ServerProcess() { (void)Stop(); }

  // SIGTERM, then waits: the server must drain and exit 0.
  absl::StatusOr<int> Stop() {
    if (pid_ <= 0) return 0;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  pid_t pid() const { return pid_; }

 private:
  ServerProcess() = default;
  pid_t pid_ = -1;
  int port_ = 0, metrics_port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

struct LoadResult {
  std::vector<double> latency_ms;  // per successful call
  std::vector<double> forward_ms;  // the server's stages for the call (trailing metadata)
  std::vector<double> queue_ms, sample_ms, top_k_ms, batch;
  int64_t errors = 0;
  double seconds = 0;
  double server_cpu = 0, client_cpu = 0;  // CPU seconds during the phase
  std::map<std::string, int64_t> error_codes;

  double qps() const { return seconds > 0 ? static_cast<double>(latency_ms.size()) / seconds : 0; }
  double p(double q) const { return Percentile(latency_ms, q); }
};

// Recommend traffic over the async (callback) API. Open loop: a call starts at each scheduled time
// whatever is outstanding; closed loop: `concurrency` calls, each followed at once by the next.
class LoadGenerator {
 public:
  LoadGenerator(std::shared_ptr<grpc::Channel> channel, std::vector<std::string> users, int k)
      : stub_(v1::RecommendationService::NewStub(channel)), users_(std::move(users)), k_(k) {}

  LoadResult OpenLoop(double qps, double seconds, pid_t server) {
    Reset(server);
    const auto start = Clock::now();
    const auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / qps));
    const int64_t total = static_cast<int64_t>(qps * seconds);
    for (int64_t i = 0; i < total; ++i) {
      const auto scheduled = start + i * interval;
      std::this_thread::sleep_until(scheduled);
      Issue(scheduled, Clock::time_point::max());
    }
    return Finish(start, server);
  }

  LoadResult ClosedLoop(int concurrency, double seconds, pid_t server) {
    Reset(server);
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    for (int c = 0; c < concurrency; ++c) Issue(Clock::now(), end);
    return Finish(start, server);
  }

 private:
  struct Call {
    grpc::ClientContext ctx;
    v1::RecommendRequest request;
    v1::RecommendResponse response;
    Clock::time_point scheduled;
    Clock::time_point until;  // closed loop: issue the next call if before this
  };

  void Reset(pid_t server) {
    std::lock_guard<std::mutex> lock(mu_);
    result_ = LoadResult();
    server_cpu0_ = ProcessCpuSeconds(server);
    client_cpu0_ = SelfCpuSeconds();
  }

  void Issue(Clock::time_point scheduled, Clock::time_point until) {
    auto* call = new Call();
    call->scheduled = scheduled;
    call->until = until;
    call->request.set_user_id(users_[next_user_.fetch_add(1) % users_.size()]);
    call->request.set_k(k_);
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    outstanding_.fetch_add(1);
    stub_->async()->Recommend(&call->ctx, &call->request, &call->response,
                              [this, call](grpc::Status status) { Done(call, status); });
  }

  void Done(Call* call, const grpc::Status& status) {
    const auto now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (status.ok()) {
        result_.latency_ms.push_back(Ms(now - call->scheduled));
        const auto& trailers = call->ctx.GetServerTrailingMetadata();
        auto it = trailers.find("dgsr-server-timing");
        if (it != trailers.end()) {
          for (absl::string_view part : absl::StrSplit(absl::string_view(it->second.data(), it->second.size()), ';')) {
            std::vector<absl::string_view> kv = absl::StrSplit(part, '=');
            double v = 0;
            if (kv.size() != 2 || !absl::SimpleAtod(kv[1], &v)) continue;
            if (kv[0] == "forward_us") result_.forward_ms.push_back(v / 1000);
            if (kv[0] == "queue_us") result_.queue_ms.push_back(v / 1000);
            if (kv[0] == "sample_us") result_.sample_ms.push_back(v / 1000);
            if (kv[0] == "top_k_us") result_.top_k_ms.push_back(v / 1000);
            if (kv[0] == "batch") result_.batch.push_back(v);
          }
        }
      } else {
        ++result_.errors;
        ++result_.error_codes[absl::StrCat(status.error_code())];
      }
    }
    const bool again = call->until != Clock::time_point::max() && now < call->until;
    const auto until = call->until;
    delete call;
    if (again) Issue(Clock::now(), until);
    if (outstanding_.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      idle_cv_.notify_all();
    }
  }

  LoadResult Finish(Clock::time_point start, pid_t server) {
    std::unique_lock<std::mutex> lock(mu_);
    idle_cv_.wait(lock, [this] { return outstanding_.load() == 0; });
    result_.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    result_.server_cpu = ProcessCpuSeconds(server) - server_cpu0_;
    result_.client_cpu = SelfCpuSeconds() - client_cpu0_;
    return result_;
  }

  std::unique_ptr<v1::RecommendationService::Stub> stub_;
  std::vector<std::string> users_;
  int k_;
  std::atomic<uint64_t> next_user_{0};
  std::atomic<int64_t> outstanding_{0};
  std::mutex mu_;
  std::condition_variable idle_cv_;
  LoadResult result_;
  double server_cpu0_ = 0, client_cpu0_ = 0;
};

// Streams `events` in batches of 1,000 over one IngestStream; `events_per_second` > 0 paces them.
// Returns events/s achieved (0 on error, with the error in *error).
double StreamIngest(const std::shared_ptr<grpc::Channel>& channel, const std::vector<store::Event>& events,
                    double events_per_second, const std::atomic<bool>* stop, std::string* error) {
  auto stub = v1::RecommendationService::NewStub(channel);
  grpc::ClientContext ctx;
  v1::IngestStreamResponse response;
  auto writer = stub->IngestStream(&ctx, &response);
  const auto start = Clock::now();
  size_t sent = 0;
  for (size_t b = 0; b < events.size(); b += 1000) {
    if (stop != nullptr && *stop) break;
    if (events_per_second > 0) {
      std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(static_cast<double>(b) / events_per_second)));
    }
    v1::IngestStreamRequest batch;
    for (size_t i = b; i < std::min(events.size(), b + 1000); ++i) {
      v1::Event* e = batch.add_events();
      e->set_user_id(events[i].user);
      e->set_item_id(events[i].item);
      e->set_time_unix_s(events[i].time);
    }
    if (!writer->Write(batch)) break;
    sent = std::min(events.size(), b + 1000);
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!status.ok()) {
    *error = status.error_message();
    return 0;
  }
  if (response.accepted() != static_cast<int64_t>(sent)) *error = "accepted fewer events than sent";
  return static_cast<double>(response.accepted()) / seconds;
}

struct SweepPoint {
  int concurrency;
  double qps, p50, p99;
  int64_t errors;
};

std::vector<SweepPoint> Sweep(LoadGenerator& load, pid_t server, const std::vector<int>& levels, double seconds,
                              const char* label) {
  std::vector<SweepPoint> points;
  for (int c : levels) {
    LoadResult r = load.ClosedLoop(c, seconds, server);
    points.push_back({c, r.qps(), r.p(0.5), r.p(0.99), r.errors});
    std::printf("  %-12s concurrency %3d: %7.1f QPS  p50 %6.2f ms  p99 %6.2f ms  errors %lld  server CPU %.2f cores\n",
                label, c, r.qps(), r.p(0.5), r.p(0.99), static_cast<long long>(r.errors), r.server_cpu / r.seconds);
    std::fflush(stdout);
  }
  return points;
}

double PeakWithin(const std::vector<SweepPoint>& points, double budget_ms) {
  double best = 0;
  for (const auto& p : points) {
    if (p.p99 <= budget_ms && p.errors == 0) best = std::max(best, p.qps);
  }
  return best;
}

absl::Status Run(JsonObject* json) {
  const std::string dataset = absl::GetFlag(FLAGS_serve_bench_dataset);
  absl::StatusOr<BenchDatasetFile> data = FindBenchDataset(dataset);
  if (absl::IsNotFound(data.status())) {
    return absl::NotFoundError(absl::StrCat("SKIPPED: ", data.status().message()));
  }
  RETURN_IF_ERROR(data.status());
  std::string dir = absl::GetFlag(FLAGS_serve_bench_dir);
  const bool own_dir = dir.empty();
  if (own_dir) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dgsr_serve_bench_XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
  }
  struct Cleanup {
    std::string dir;
    bool own;
    ~Cleanup() {
      std::error_code ec;
      if (own) std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir, own_dir};

  // The store, and a copy of it for the in-process ingest reference.
  std::printf("dgsr bench serve: %s, scratch %s\n", dataset.c_str(), dir.c_str());
  store::GraphStoreOptions so;
  so.path = dir + "/store";
  so.durability = store::Durability::kGroupCommit;
  std::vector<std::string> users;
  std::vector<store::Event> ingest_events;
  store::StoreInfo info;
  {
    ASSIGN_OR_RETURN(auto s, store::GraphStore::Open(so));
    RETURN_IF_ERROR(store::ImportFile(data->path, data->import, s.get()).status());
    info = s->info();
    RETURN_IF_ERROR(s->CreateSnapshot(dir + "/store-copy"));
    for (store::NodeId u = 0; u < info.num_users; ++u) users.push_back(*s->ExternalUserId(u));
    std::mt19937_64 rng(7);
    std::shuffle(users.begin(), users.end(), rng);
    // New events after the data: random known users and items, increasing times.
    const int n = std::max(absl::GetFlag(FLAGS_serve_bench_ingest_events),
                           static_cast<int>(absl::GetFlag(FLAGS_serve_bench_ingest_eps) * absl::GetFlag(FLAGS_serve_bench_seconds)));
    for (int e = 0; e < n; ++e) {
      ingest_events.push_back({users[rng() % users.size()], *s->ExternalItemId(static_cast<store::NodeId>(rng() % info.num_items)),
                               info.max_time + 1 + e, ""});
    }
  }
  std::printf("  store: %lld users, %lld items, %lld interactions\n", static_cast<long long>(info.num_users),
              static_cast<long long>(info.num_items), static_cast<long long>(info.num_events));

  // In-process GraphStore::Ingest of the ingest phase's events, batches of 1,000, same durability.
  double inprocess_eps = 0;
  const size_t ingest_n = std::min<size_t>(ingest_events.size(), absl::GetFlag(FLAGS_serve_bench_ingest_events));
  {
    store::GraphStoreOptions copy = so;
    copy.path = dir + "/store-copy";
    ASSIGN_OR_RETURN(auto s, store::GraphStore::Open(copy));
    const auto start = Clock::now();
    for (size_t b = 0; b < ingest_n; b += 1000) {
      std::span<const store::Event> batch(ingest_events.data() + b, std::min<size_t>(1000, ingest_n - b));
      RETURN_IF_ERROR(s->Ingest(batch).status());
    }
    inprocess_eps = static_cast<double>(ingest_n) / std::chrono::duration<double>(Clock::now() - start).count();
  }
  std::filesystem::remove_all(dir + "/store-copy");

  // The model.
  std::string model_dir = absl::GetFlag(FLAGS_serve_bench_model_dir);
  std::string model_note = "trained";
  if (model_dir.empty()) {
    model_dir = dir + "/models";
    model::DgsrConfig config = model::DgsrConfig::Inductive();
    config.num_users = info.num_users;
    config.num_items = info.num_items;
    ASSIGN_OR_RETURN(auto net, model::DgsrNetwork::Create(config, 1));
    JsonObject meta;
    meta.Set("store_id", info.store_id).Set("note", "untrained (bench serve)");
    RETURN_IF_ERROR(trainer::ExportModel(model_dir, *net, meta).status());
    model_note = "untrained, default (inductive) configuration";
  }
  std::vector<std::string> server_flags = {"--store=" + so.path, "--model_dir=" + model_dir,
                                           "--durability=group_commit"};
  for (absl::string_view f : absl::StrSplit(absl::GetFlag(FLAGS_serve_bench_server_flags), ' ', absl::SkipEmpty())) {
    server_flags.emplace_back(f);
  }
  std::vector<int> levels;
  for (absl::string_view c : absl::StrSplit(absl::GetFlag(FLAGS_serve_bench_concurrency), ',', absl::SkipEmpty())) {
    int v = 0;
    if (!absl::SimpleAtoi(c, &v) || v < 1) return absl::InvalidArgumentError("bad --serve_bench_concurrency");
    levels.push_back(v);
  }
  const double budget = absl::GetFlag(FLAGS_serve_bench_p99_budget_ms);
  const double sweep_s = absl::GetFlag(FLAGS_serve_bench_sweep_seconds);
  const double phase_s = absl::GetFlag(FLAGS_serve_bench_seconds);
  const double qps = absl::GetFlag(FLAGS_serve_bench_qps);
  const int k = absl::GetFlag(FLAGS_serve_bench_k);

  // Phase 1: no batching.
  std::vector<SweepPoint> unbatched, batched;
  {
    std::vector<std::string> flags = server_flags;
    flags.push_back("--batching=false");
    ASSIGN_OR_RETURN(auto server, ServerProcess::Start(flags, dir + "/server-unbatched.log"));
    LoadGenerator load(server->channel(), users, k);
    std::printf("closed-loop sweep, batching off\n");
    unbatched = Sweep(load, server->pid(), levels, sweep_s, "unbatched");
    ASSIGN_OR_RETURN(int rc, server->Stop());
    if (rc != 0) return absl::InternalError(absl::StrCat("the unbatched server exited ", rc, " on SIGTERM"));
  }
  // Phases 2-5: batching on.
  std::vector<std::string> flags = server_flags;
  flags.push_back("--batching=true");
  ASSIGN_OR_RETURN(auto server, ServerProcess::Start(flags, dir + "/server-batched.log"));
  LoadGenerator load(server->channel(), users, k);
  std::printf("closed-loop sweep, batching on\n");
  batched = Sweep(load, server->pid(), levels, sweep_s, "batched");

  std::printf("open loop at %.0f QPS for %.0f s\n", qps, phase_s);
  LoadResult open = load.OpenLoop(qps, phase_s, server->pid());
  const double p50 = open.p(0.5);
  const double forward_p50 = Percentile(open.forward_ms, 0.5);
  std::printf("  achieved %.1f QPS  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f ms  errors %lld\n"
              "  server forward p50 %.2f ms (non-model share of p50 %.1f%%); server CPU %.2f cores, load "
              "generator CPU %.2f cores\n",
              open.qps(), p50, open.p(0.9), open.p(0.99), open.p(0.999), static_cast<long long>(open.errors), forward_p50,
              100 * (p50 - forward_p50) / std::max(p50, 1e-9), open.server_cpu / open.seconds, open.client_cpu / open.seconds);
  std::printf("  server stages p50 (p99), ms: queue %.2f (%.2f)  sample %.2f (%.2f)  forward %.2f (%.2f)  top-k %.2f (%.2f); "
              "batch size p50 %.0f (p99 %.0f)\n",
              Percentile(open.queue_ms, 0.5), Percentile(open.queue_ms, 0.99), Percentile(open.sample_ms, 0.5),
              Percentile(open.sample_ms, 0.99), forward_p50, Percentile(open.forward_ms, 0.99),
              Percentile(open.top_k_ms, 0.5), Percentile(open.top_k_ms, 0.99), Percentile(open.batch, 0.5),
              Percentile(open.batch, 0.99));

  std::printf("mixed: open loop at %.0f QPS while ingesting %d events/s\n", qps, absl::GetFlag(FLAGS_serve_bench_ingest_eps));
  std::atomic<bool> stop_ingest{false};
  std::string mixed_error;
  double mixed_eps = 0;
  std::vector<store::Event> mixed_events(ingest_events.begin() + static_cast<long>(ingest_n), ingest_events.end());
  if (mixed_events.size() < static_cast<size_t>(absl::GetFlag(FLAGS_serve_bench_ingest_eps) * phase_s)) {
    mixed_events = ingest_events;  // reused ids are fine: no event ids, every event is appended
    for (auto& e : mixed_events) e.time += static_cast<store::Timestamp>(ingest_events.size());
  }
  std::thread ingester([&] {
    mixed_eps = StreamIngest(server->channel(), mixed_events, absl::GetFlag(FLAGS_serve_bench_ingest_eps), &stop_ingest,
                             &mixed_error);
  });
  LoadResult mixed = load.OpenLoop(qps, phase_s, server->pid());
  stop_ingest = true;
  ingester.join();
  std::printf("  achieved %.1f QPS  p50 %.2f  p99 %.2f  p99.9 %.2f ms  errors %lld; ingest %.0f events/s %s\n",
              mixed.qps(), mixed.p(0.5), mixed.p(0.99), mixed.p(0.999), static_cast<long long>(mixed.errors), mixed_eps,
              mixed_error.c_str());

  std::printf("ingest: IngestStream, batches of 1,000, %zu events\n", ingest_n);
  std::string ingest_error;
  std::vector<store::Event> grpc_events(ingest_events.begin(), ingest_events.begin() + static_cast<long>(ingest_n));
  for (auto& e : grpc_events) e.time += 2 * static_cast<store::Timestamp>(ingest_events.size());
  const double grpc_eps = StreamIngest(server->channel(), grpc_events, 0, nullptr, &ingest_error);
  std::printf("  gRPC %.0f events/s vs in-process GraphStore::Ingest %.0f events/s (%.0f%%) %s\n", grpc_eps,
              inprocess_eps, 100 * grpc_eps / std::max(inprocess_eps, 1e-9), ingest_error.c_str());
  ASSIGN_OR_RETURN(int rc, server->Stop());
  if (rc != 0) return absl::InternalError(absl::StrCat("the batched server exited ", rc, " on SIGTERM"));

  const double peak_batched = PeakWithin(batched, budget), peak_unbatched = PeakWithin(unbatched, budget);
  std::printf("peak QPS with p99 <= %.0f ms: batching %.1f, no batching %.1f (gain %.2fx)\n", budget, peak_batched,
              peak_unbatched, peak_batched / std::max(peak_unbatched, 1e-9));
  json->Set("bench", "serve").Set("dataset", dataset).Set("model", model_note);
  json->Set("users", static_cast<int64_t>(info.num_users)).Set("items", static_cast<int64_t>(info.num_items));
  json->Set("interactions", info.num_events).Set("k", k);
  json->Set("target_qps", qps).Set("achieved_qps", open.qps()).Set("errors", open.errors);
  json->Set("p50_ms", p50).Set("p90_ms", open.p(0.9)).Set("p99_ms", open.p(0.99)).Set("p999_ms", open.p(0.999));
  json->Set("queue_p50_ms", Percentile(open.queue_ms, 0.5)).Set("sample_p50_ms", Percentile(open.sample_ms, 0.5));
  json->Set("top_k_p50_ms", Percentile(open.top_k_ms, 0.5)).Set("batch_size_p50", Percentile(open.batch, 0.5));
  json->Set("forward_p50_ms", forward_p50).Set("non_model_share_p50", (p50 - forward_p50) / std::max(p50, 1e-9));
  json->Set("server_cpu_cores", open.server_cpu / open.seconds).Set("loadgen_cpu_cores", open.client_cpu / open.seconds);
  json->Set("p99_budget_ms", budget).Set("peak_qps_batching", peak_batched).Set("peak_qps_no_batching", peak_unbatched);
  json->Set("batching_throughput_gain", peak_batched / std::max(peak_unbatched, 1e-9));
  json->Set("ingest_events_per_s_grpc", grpc_eps).Set("ingest_events_per_s_inprocess", inprocess_eps);
  json->Set("ingest_vs_inprocess", grpc_eps / std::max(inprocess_eps, 1e-9));
  json->Set("mixed_p50_ms", mixed.p(0.5)).Set("mixed_p99_ms", mixed.p(0.99)).Set("mixed_errors", mixed.errors);
  json->Set("mixed_achieved_qps", mixed.qps()).Set("mixed_ingest_events_per_s", mixed_eps);
  json->Set("server_flags", absl::GetFlag(FLAGS_serve_bench_server_flags));
  return absl::OkStatus();
}

}  // namespace

int RunServeBench(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "dgsr bench serve: unexpected argument '%s'\n", args[0].c_str());
    return 2;
  }
  JsonObject json;
  absl::Status s = Run(&json);
  if (absl::IsNotFound(s) && absl::StartsWith(s.message(), "SKIPPED")) {
    std::printf("dgsr bench serve: %s\n", std::string(s.message()).c_str());
    JsonObject skipped;
    skipped.Set("bench", "serve").Set("skipped", true).Set("reason", std::string(s.message()));
    std::printf("%s\n", skipped.Dump().c_str());
    return 0;
  }
  if (!s.ok()) {
    std::fprintf(stderr, "dgsr bench serve: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("%s\n", json.Dump().c_str());
  return 0;
}

}  // namespace dgsr::bench
