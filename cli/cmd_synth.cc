// `dgsr synth`: fills a graph store with synthetic events (store/synth.h).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "cli/store_flags.h"
#include "common/progress.h"
#include "store/synth.h"

ABSL_FLAG(int, users, 2000, "number of synthetic users");
ABSL_FLAG(int, items, 1000, "number of synthetic items");
ABSL_FLAG(int, events_per_user, 50, "mean events per user (each user: uniform in [mean/2, 3*mean/2])");
// --seed is shared with `dgsr train` and defined there (absl flags are process-global).
ABSL_DECLARE_FLAG(uint64_t, seed);

namespace dgsr::cli {

int RunSynth(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "dgsr synth: unexpected argument '%s'\n", args[0].c_str());
    return 2;
  }
  absl::StatusOr<store::GraphStoreOptions> store_options = StoreOptionsFromFlags();
  if (!store_options.ok()) {
    std::fprintf(stderr, "dgsr synth: %s\n", std::string(store_options.status().message()).c_str());
    return 2;
  }
  store::SynthOptions options;
  options.num_users = absl::GetFlag(FLAGS_users);
  options.num_items = absl::GetFlag(FLAGS_items);
  options.events_per_user = absl::GetFlag(FLAGS_events_per_user);
  options.seed = absl::GetFlag(FLAGS_seed);
  if (options.num_users < 1 || options.num_items < 2 || options.events_per_user < 1) {
    std::fprintf(stderr, "dgsr synth: need --users >= 1, --items >= 2, --events_per_user >= 1\n");
    return 2;
  }
  const std::vector<store::Event> events = store::GenerateSynthetic(options);
  auto store = store::GraphStore::Open(*store_options);
  if (!store.ok()) {
    std::fprintf(stderr, "dgsr synth: %s\n", store.status().ToString().c_str());
    return 1;
  }
  ProgressBar bar("synth", static_cast<int64_t>(events.size()), "events");
  int64_t accepted = 0, duplicates = 0;
  constexpr size_t kBatch = 10000;
  for (size_t begin = 0; begin < events.size(); begin += kBatch) {
    const size_t n = std::min(kBatch, events.size() - begin);
    auto r = (*store)->Ingest(std::span(events).subspan(begin, n));
    if (!r.ok()) {
      std::fprintf(stderr, "dgsr synth: %s\n", r.status().ToString().c_str());
      return 1;
    }
    accepted += r->accepted;
    duplicates += r->duplicates;
    bar.Add(static_cast<int64_t>(n));
  }
  bar.Finish();
  if (absl::Status s = (*store)->Sync(); !s.ok()) {
    std::fprintf(stderr, "dgsr synth: %s\n", s.ToString().c_str());
    return 1;
  }
  const store::StoreInfo info = (*store)->info();
  std::printf("synth seed=%llu: accepted=%lld duplicates=%lld; store %s: users=%u items=%u events=%lld\n",
              static_cast<unsigned long long>(options.seed), static_cast<long long>(accepted),
              static_cast<long long>(duplicates), store_options->path.c_str(), info.num_users,
              info.num_items, static_cast<long long>(info.num_events));
  return 0;
}

}  // namespace dgsr::cli
