// Crash test in the spirit of RocksDB's db_stress: a child process ingests batches in a loop and
// reports each acknowledgement (written with write(2) AFTER Ingest returns) to a file; the parent
// SIGKILLs it at random points, reopens the store and checks that every acknowledged event is
// present, none is duplicated, and every batch is all-or-nothing.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "store/graph_store.h"
#include "tests/testutil/temp_dir.h"

namespace dgsr::store {
namespace {

constexpr Timestamp kRunStride = 100'000'000;
constexpr Timestamp kBatchStride = 100;

// Events per batch, a pure function of (run, batch) so the parent can check atomicity.
int BatchSize(int run, int64_t batch) {
  return 1 + static_cast<int>((static_cast<uint64_t>(run) * 7919 + batch * 104729) % 40);
}

std::vector<Event> MakeBatch(int run, int64_t batch) {
  std::vector<Event> events;
  for (int j = 0; j < BatchSize(run, batch); ++j) {
    const uint64_t h = static_cast<uint64_t>(run * 1000003 + batch * 31 + j);
    events.push_back({absl::StrCat("u", h % 30), absl::StrCat("i", (h * 7) % 50),
                      run * kRunStride + batch * kBatchStride + j,
                      batch % 2 == 0 ? absl::StrCat("r", run, "b", batch, "e", j) : ""});
  }
  return events;
}

void WriteLine(int fd, const std::string& line) {
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::_Exit(4);
}

// The child: runs before main() when re-executed with DGSR_CRASH_CHILD set, never returns.
[[noreturn]] void ChildIngestLoop(const char* spec) {
  std::istringstream in(spec);
  std::string dir, acks;
  int run = 0, mode = 0;
  in >> dir >> acks >> run >> mode;
  const int fd = ::open(acks.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  GraphStoreOptions o;
  o.path = dir;
  o.durability = mode == 0 ? Durability::kSync : Durability::kGroupCommit;
  o.group_commit_interval = absl::Milliseconds(2);
  auto store = GraphStore::Open(o);
  if (!store.ok() || fd < 0) std::_Exit(2);
  WriteLine(fd, "ready\n");
  for (int64_t batch = 0;; ++batch) {
    const std::vector<Event> events = MakeBatch(run, batch);
    auto r = (*store)->Ingest(events);
    if (!r.ok() || r->accepted != static_cast<int64_t>(events.size())) std::_Exit(3);
    WriteLine(fd, absl::StrCat("ack ", run, " ", batch, "\n"));
    if (batch % 10 == 0 && batch % 2 == 0) {  // A retry must add nothing.
      r = (*store)->Ingest(events);
      if (!r.ok() || r->accepted != 0) WriteLine(fd, "bad-retry\n");
    }
  }
}

const int kChildHook = [] {
  if (const char* spec = std::getenv("DGSR_CRASH_CHILD")) ChildIngestLoop(spec);
  return 0;
}();

pid_t SpawnChild(const std::string& spec) {
  std::string env_var = "DGSR_CRASH_CHILD=" + spec;
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  envp.push_back(env_var.data());
  envp.push_back(nullptr);
  char exe[] = "/proc/self/exe";
  char* argv[] = {exe, nullptr};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execve("/proc/self/exe", argv, envp.data());
    std::_Exit(127);
  }
  return pid;
}

void RunCrashRounds(Durability mode, int rounds, uint64_t seed) {
  testing::TempDir dir;
  const std::string db = dir.Sub("db");
  std::mt19937_64 rng(seed);
  int64_t total_acked_batches = 0, kills_during_ingest = 0;
  for (int run = 0; run < rounds; ++run) {
    const std::string acks = dir.Sub(absl::StrCat("acks", run));
    const pid_t pid = SpawnChild(absl::StrCat(db, " ", acks, " ", run, " ",
                                              mode == Durability::kSync ? 0 : 1));
    ASSERT_GT(pid, 0);
    const bool early = run % 4 == 3;  // Sometimes kill during open/recovery.
    if (!early) {
      // Wait until the child has opened the store ("ready"), then let it ingest a random while.
      auto ready = [&] {
        std::error_code ec;
        const auto size = std::filesystem::file_size(acks, ec);
        return !ec && size > 0;
      };
      for (int waited = 0; waited < 2000 && !ready(); ++waited) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % (early ? 30000 : 80000)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited on its own with " << WEXITSTATUS(status);

    // Verify after every kill.
    GraphStoreOptions o;
    o.path = db;
    auto store = GraphStore::Open(o);
    ASSERT_TRUE(store.ok()) << store.status();
    auto log = (*store)->AllInteractions();
    ASSERT_TRUE(log.ok()) << log.status();
    ASSERT_EQ((*store)->graph().Read().num_interactions(), static_cast<int64_t>(log->size()));
    absl::flat_hash_map<Timestamp, int> seen;
    absl::flat_hash_map<std::pair<int, int64_t>, int> per_batch;
    for (const Interaction& x : *log) {
      ASSERT_EQ(++seen[x.time], 1) << "duplicated event at time " << x.time;
      ++per_batch[std::make_pair(static_cast<int>(x.time / kRunStride),
                                 static_cast<int64_t>((x.time % kRunStride) / kBatchStride))];
    }
    for (const auto& [key, count] : per_batch) {
      ASSERT_EQ(count, BatchSize(key.first, key.second))
          << "batch " << key.second << " of run " << key.first << " is partial";
    }
    int64_t acked_this_run = 0;
    for (int r = 0; r <= run; ++r) {
      std::ifstream f(dir.Sub(absl::StrCat("acks", r)));
      std::string word;
      while (f >> word) {
        ASSERT_NE(word, "bad-retry");
        if (word != "ack") continue;
        int ack_run;
        int64_t b;
        f >> ack_run >> b;
        ASSERT_EQ(ack_run, r);
        ASSERT_EQ(per_batch[std::make_pair(r, b)], BatchSize(r, b))
            << "acknowledged batch " << b << " of run " << r << " was lost";
        if (r == run) ++acked_this_run;
      }
    }
    total_acked_batches += acked_this_run;
    kills_during_ingest += acked_this_run > 0;
  }
  // The test only means something if kills landed while ingesting.
  EXPECT_GE(kills_during_ingest, rounds / 2);
  EXPECT_GT(total_acked_batches, rounds);
}

TEST(GraphStoreCrashTest, SyncModeKeepsEveryAcknowledgedEventAcrossSigkill) {
  RunCrashRounds(Durability::kSync, 16, 1);
}

TEST(GraphStoreCrashTest, GroupCommitKeepsEveryAcknowledgedEventAcrossSigkill) {
  RunCrashRounds(Durability::kGroupCommit, 16, 2);
}

}  // namespace
}  // namespace dgsr::store
