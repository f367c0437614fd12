// A real GraphStore under a test's TempDir, filled with store::GenerateSynthetic data (seed 3):
// the data the trainer tests learn from.
//
//   testing::TempDir dir;
//   std::unique_ptr<store::GraphStore> store = testing::SynthStore(dir, 300, 150, 30);
//   auto split = trainer::BuildSplit(store->graph());
//
// The store lives in dir.Sub("store") with group commit (no fsync per batch). A failure to open
// or to ingest is reported as a non-fatal gtest failure of the calling test.
#ifndef DGSR_TESTS_TESTUTIL_SYNTH_STORE_H_
#define DGSR_TESTS_TESTUTIL_SYNTH_STORE_H_

#include <algorithm>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "store/graph_store.h"
#include "store/synth.h"
#include "tests/testutil/temp_dir.h"

namespace dgsr::testing {

// `users` users, `items` items, about `events` events per user (store::SynthOptions).
inline std::unique_ptr<store::GraphStore> SynthStore(const TempDir& dir, int users, int items, int events) {
  store::GraphStoreOptions options;
  options.path = dir.Sub("store");
  options.durability = store::Durability::kGroupCommit;
  auto s = store::GraphStore::Open(options);
  EXPECT_TRUE(s.ok()) << s.status();
  store::SynthOptions synth;
  synth.num_users = users;
  synth.num_items = items;
  synth.events_per_user = events;
  synth.seed = 3;
  auto all = store::GenerateSynthetic(synth);
  for (size_t b = 0; b < all.size(); b += 10000) {
    std::span<const store::Event> chunk(all.data() + b, std::min<size_t>(10000, all.size() - b));
    EXPECT_TRUE((*s)->Ingest(chunk).ok());
  }
  return std::move(*s);
}

}  // namespace dgsr::testing

#endif  // DGSR_TESTS_TESTUTIL_SYNTH_STORE_H_
