#include "store/graph_store.h"

#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testutil/fake_clock.h"
#include "tests/testutil/temp_dir.h"

namespace dgsr::store {
namespace {

using ::dgsr::testing::TempDir;

GraphStoreOptions Options(const std::string& path, Durability d = Durability::kSync) {
  GraphStoreOptions o;
  o.path = path;
  o.durability = d;
  return o;
}

std::unique_ptr<GraphStore> OpenOrDie(const GraphStoreOptions& o) {
  auto store = GraphStore::Open(o);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

Event Ev(std::string user, std::string item, Timestamp time, std::string id = "") {
  return Event{std::move(user), std::move(item), time, std::move(id)};
}

TEST(GraphStoreTest, IngestAssignsDenseIdsAndPersistsThemAcrossReopen) {
  TempDir dir;
  std::string store_id;
  {
    auto store = OpenOrDie(Options(dir.path()));
    auto r = store->Ingest(std::vector<Event>{Ev("alice", "x", 10), Ev("bob", "y", 11),
                                              Ev("alice", "y", 12)});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->accepted, 3);
    EXPECT_EQ(r->new_users, 2);
    EXPECT_EQ(r->new_items, 2);
    EXPECT_EQ(store->UserId("alice"), 0u);
    EXPECT_EQ(store->UserId("bob"), 1u);
    EXPECT_EQ(store->ItemId("y"), 1u);
    EXPECT_EQ(store->UserId("carol"), std::nullopt);
    store_id = store->info().store_id;
    EXPECT_EQ(store_id.size(), 32u);
    r = store->Ingest(std::vector<Event>{Ev("carol", "x", 13)});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->new_users, 1);
    EXPECT_EQ(r->new_items, 0);
  }
  auto store = OpenOrDie(Options(dir.path()));
  const StoreInfo info = store->info();
  EXPECT_EQ(info.store_id, store_id);
  EXPECT_EQ(info.num_events, 4);
  EXPECT_EQ(info.num_users, 3u);
  EXPECT_EQ(info.num_items, 2u);
  EXPECT_EQ(info.max_time, 13);
  EXPECT_EQ(*store->ExternalUserId(2), "carol");
  EXPECT_EQ(*store->ExternalItemId(1), "y");
  EXPECT_EQ(store->ExternalItemId(2).status().code(), absl::StatusCode::kNotFound);
  auto log = store->AllInteractions();
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->size(), 4u);
  EXPECT_EQ((*log)[2].user, 0u);
  EXPECT_EQ((*log)[2].item, 1u);
  EXPECT_EQ((*log)[2].time, 12);
  auto view = store->graph().Read();
  NodeId items[4];
  ASSERT_EQ(view.RecentItems(0, {kMinTime, 13}, 4, items, nullptr), 2);
  EXPECT_EQ(items[0], 0u);
  EXPECT_EQ(items[1], 1u);
  EXPECT_EQ(view.ItemDegree(0, 100), 2);
}

TEST(GraphStoreTest, RetriedBatchIsIdempotentByEventId) {
  TempDir dir;
  auto store = OpenOrDie(Options(dir.path()));
  std::vector<Event> batch = {Ev("u1", "i1", 5, "e1"), Ev("u2", "i1", 6, "e2"),
                              Ev("u2", "i2", 7, "e2"), Ev("u3", "i3", 8)};
  auto r = store->Ingest(batch);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->accepted, 3);
  EXPECT_EQ(r->duplicates, 1);  // "e2" repeated inside the batch.
  r = store->Ingest(std::span(batch).first(3));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->accepted, 0);
  EXPECT_EQ(r->duplicates, 3);
  EXPECT_EQ(r->new_users, 0);
  store.reset();
  store = OpenOrDie(Options(dir.path()));
  r = store->Ingest(std::span(batch).first(2));  // Still a duplicate after reopen.
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->duplicates, 2);
  EXPECT_EQ(store->info().num_events, 3);
  EXPECT_EQ(store->graph().Read().num_interactions(), 3);
}

TEST(GraphStoreTest, BadInputIsInvalidArgumentAndWritesNothing) {
  TempDir dir;
  GraphStoreOptions o = Options(dir.path());
  o.max_batch_events = 4;
  o.max_id_bytes = 8;
  auto store = OpenOrDie(o);
  const Event good = Ev("u", "i", 100, "g");
  const std::vector<std::vector<Event>> bad = {
      {good, Ev("", "i", 1)},
      {good, Ev("u", "", 1)},
      {good, Ev("123456789", "i", 1)},
      {good, Ev("u", "123456789", 1)},
      {good, Ev("u", "i", 1, "123456789")},
      {good, Ev("u", "i", -1)},
      {good, Ev("u", "i", kMaxEventTime + 1)},
      {good, good, good, good, good},
  };
  for (const auto& batch : bad) {
    auto r = store->Ingest(batch);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  }
  EXPECT_EQ(store->info().num_events, 0);
  EXPECT_EQ(store->info().num_users, 0u);
  EXPECT_EQ(store->graph().Read().num_interactions(), 0);
  // The limits themselves are accepted.
  auto r = store->Ingest(std::vector<Event>{Ev("12345678", "i", kMaxEventTime), Ev("u", "i", 0),
                                            good, good});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted, 3);
  store.reset();
  store = OpenOrDie(o);
  auto log = store->AllInteractions();
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->size(), 3u);
}

TEST(GraphStoreTest, SnapshotIsAConsistentReadOnlyCopy) {
  TempDir dir;
  auto store = OpenOrDie(Options(dir.Sub("live"), Durability::kGroupCommit));
  ASSERT_TRUE(store->Ingest(std::vector<Event>{Ev("a", "x", 1), Ev("b", "x", 2)}).ok());
  ASSERT_TRUE(store->CreateSnapshot(dir.Sub("snap1")).ok());
  ASSERT_TRUE(store->Ingest(std::vector<Event>{Ev("c", "y", 3)}).ok());
  EXPECT_FALSE(store->CreateSnapshot(dir.Sub("snap1")).ok());  // Exists already.

  auto snap = GraphStore::OpenReadOnly(dir.Sub("snap1"));
  ASSERT_TRUE(snap.ok()) << snap.status();
  const StoreInfo info = (*snap)->info();
  EXPECT_TRUE(info.read_only);
  EXPECT_EQ(info.store_id, store->info().store_id);
  EXPECT_FALSE(info.snapshot_id.empty());
  EXPECT_TRUE(store->info().snapshot_id.empty());
  EXPECT_EQ(info.num_events, 2);
  EXPECT_EQ(info.num_users, 2u);
  EXPECT_EQ((*snap)->graph().Read().num_interactions(), 2);
  EXPECT_EQ((*snap)->UserId("c"), std::nullopt);
  EXPECT_EQ((*snap)->Ingest(std::vector<Event>{Ev("d", "z", 4)}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // A second snapshot has a new id and the newer content.
  ASSERT_TRUE(store->CreateSnapshot(dir.Sub("snap2")).ok());
  auto snap2 = GraphStore::OpenReadOnly(dir.Sub("snap2"));
  ASSERT_TRUE(snap2.ok());
  EXPECT_NE((*snap2)->info().snapshot_id, info.snapshot_id);
  EXPECT_EQ((*snap2)->info().num_events, 3);
  EXPECT_EQ(GraphStore::OpenReadOnly(dir.Sub("nothing")).status().code(),
            absl::StatusCode::kNotFound);
}

// Random events through the store: the graph (live and rebuilt on reopen) matches a brute force
// over AllInteractions, and the log matches what was accepted.
TEST(GraphStoreTest, GraphMatchesBruteForceLiveAndAfterReopen) {
  TempDir dir;
  std::mt19937_64 rng(5);
  std::vector<Interaction> expected;
  {
    auto store = OpenOrDie(Options(dir.path(), Durability::kGroupCommit));
    for (int b = 0; b < 40; ++b) {
      std::vector<Event> batch;
      for (int k = 0, n = 1 + rng() % 60; k < n; ++k) {
        batch.push_back(Ev(absl::StrCat("user", rng() % 25), absl::StrCat("item", rng() % 40),
                           static_cast<Timestamp>(rng() % 500)));
      }
      ASSERT_TRUE(store->Ingest(batch).ok());
      for (const Event& e : batch) {
        expected.push_back({*store->UserId(e.user), *store->ItemId(e.item), e.time});
      }
    }
    auto log = store->AllInteractions();
    ASSERT_TRUE(log.ok());
    ASSERT_EQ(log->size(), expected.size());
    for (size_t k = 0; k < expected.size(); ++k) {
      ASSERT_EQ((*log)[k].user, expected[k].user);
      ASSERT_EQ((*log)[k].time, expected[k].time);
    }
  }
  auto store = OpenOrDie(Options(dir.path()));
  auto view = store->graph().Read();
  for (NodeId u = 0; u < view.num_users(); ++u) {
    for (Timestamp t : {Timestamp{0}, Timestamp{100}, Timestamp{250}, Timestamp{499}, kMaxTime}) {
      std::vector<std::pair<Timestamp, NodeId>> ref;
      for (const Interaction& x : expected) {
        if (x.user == u && x.time < t) ref.push_back({x.time, x.item});
      }
      std::stable_sort(ref.begin(), ref.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      NodeId items[10];
      Timestamp times[10];
      const int n = view.RecentItems(u, {kMinTime, t}, 10, items, times);
      const size_t want = std::min<size_t>(10, ref.size());
      ASSERT_EQ(static_cast<size_t>(n), want);
      for (size_t k = 0; k < want; ++k) {
        ASSERT_EQ(items[k], ref[ref.size() - want + k].second);
        ASSERT_EQ(times[k], ref[ref.size() - want + k].first);
      }
      ASSERT_EQ(view.UserDegree(u, t), static_cast<int64_t>(ref.size()));
    }
  }
}

TEST(GraphStoreTest, CreatedTimeComesFromTheClock) {
  TempDir dir;
  testing::FakeClock clock(absl::FromUnixSeconds(1234567890));
  GraphStoreOptions o = Options(dir.path());
  o.clock = &clock;
  auto store = OpenOrDie(o);
  EXPECT_EQ(store->info().created_unix_s, 1234567890);
}

}  // namespace
}  // namespace dgsr::store
