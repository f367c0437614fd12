// `dgsr import`: reads a real dataset file into a graph store (store/import.h).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/store_flags.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "store/import.h"

ABSL_FLAG(std::string, format, "",
          "input format: ml-dat (ratings.dat), ml-udata (u.data), ml-csv (ratings.csv), "
          "uit (user item time, TSV/CSV), sasrec (user item, in order), hgn (user item item ...)");
ABSL_FLAG(std::string, input, "", "dataset file to import");
ABSL_FLAG(int, kcore, 5,
          "iterated k-core filter (paper default 5; 0 disables). DGSR's Games and CDs are the raw "
          "sasrec/hgn files: use --kcore=0 to reproduce the paper's counts");
ABSL_FLAG(std::string, time_refinement, "none",
          "none: same-time events keep their times and file order (a user's own earlier ones stay in "
          "its history; other users' stay hidden); authors (DGSR refine_time) or plus_one: move a "
          "user's tied events later, which orders other users' same-time events before them (the "
          "authors' leak; for reproducing their preprocessing only)");
ABSL_FLAG(bool, skip_bad_lines, false, "skip malformed lines (and report how many) instead of failing");
ABSL_FLAG(double, hold_out_fraction, 0,
          "hold out about this fraction of the latest events (cut at one time, after filtering and "
          "refinement): they are not imported but written to --hold_out_file for `dgsr ingest`");
ABSL_FLAG(std::string, hold_out_file, "",
          "where the held-out events go, one user,item,time,event_id per line (--hold_out_fraction)");

namespace dgsr::cli {

int RunImport(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "dgsr import: unexpected argument '%s'\n", args[0].c_str());
    return 2;
  }
  absl::StatusOr<store::GraphStoreOptions> store_options = StoreOptionsFromFlags();
  absl::StatusOr<store::ImportFormat> format = store::ParseImportFormat(absl::GetFlag(FLAGS_format));
  absl::StatusOr<store::TimeRefinement> refinement =
      store::ParseTimeRefinement(absl::GetFlag(FLAGS_time_refinement));
  for (const absl::Status& s : {store_options.status(), format.status(), refinement.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "dgsr import: %s\n", std::string(s.message()).c_str());
      return 2;
    }
  }
  if (absl::GetFlag(FLAGS_input).empty()) {
    std::fprintf(stderr, "dgsr import: --input is required\n");
    return 2;
  }
  const double hold_out = absl::GetFlag(FLAGS_hold_out_fraction);
  if (hold_out < 0 || hold_out >= 1 || (hold_out > 0) != !absl::GetFlag(FLAGS_hold_out_file).empty()) {
    std::fprintf(stderr, "dgsr import: --hold_out_fraction must be in [0, 1) and comes with --hold_out_file\n");
    return 2;
  }
  store::ImportOptions options;
  options.hold_out_fraction = hold_out;
  options.format = *format;
  options.kcore = absl::GetFlag(FLAGS_kcore);
  options.time_refinement = *refinement;
  options.skip_bad_lines = absl::GetFlag(FLAGS_skip_bad_lines);
  if (options.kcore > 1 &&
      (options.format == store::ImportFormat::kSasRec || options.format == store::ImportFormat::kHgn)) {
    DGSR_LOG(WARN) << "k-core filtering an already preprocessed order-only file; DGSR's Games/CDs "
                      "counts are the raw file (--kcore=0)";
  }

  auto store = store::GraphStore::Open(*store_options);
  if (!store.ok()) {
    std::fprintf(stderr, "dgsr import: %s\n", store.status().ToString().c_str());
    return 1;
  }
  std::vector<store::RawInteraction> held_out;
  auto stats = store::ImportFile(absl::GetFlag(FLAGS_input), options, store->get(), &held_out);
  if (!stats.ok()) {
    std::fprintf(stderr, "dgsr import: %s\n", stats.status().ToString().c_str());
    return 1;
  }
  if (hold_out > 0) {
    std::string lines;
    for (const store::RawInteraction& e : held_out) {
      if (absl::StrContains(e.user, ',') || absl::StrContains(e.item, ',') || absl::StrContains(e.event_id, ',')) {
        std::fprintf(stderr, "dgsr import: an id contains ',' (%s,%s,%s), which the events file cannot hold\n",
                     e.user.c_str(), e.item.c_str(), e.event_id.c_str());
        return 1;
      }
      absl::StrAppend(&lines, e.user, ",", e.item, ",", e.time, ",", e.event_id, "\n");
    }
    const std::string& path = absl::GetFlag(FLAGS_hold_out_file);
    if (absl::Status s = WriteFileAtomic(path, lines); !s.ok()) {
      std::fprintf(stderr, "dgsr import: %s\n", s.ToString().c_str());
      return 1;
    }
    std::printf("held out %lld events from time %lld on: %s\n", static_cast<long long>(stats->held_out),
                static_cast<long long>(stats->held_out_from), path.c_str());
  }
  const store::StoreInfo info = (*store)->info();
  std::printf(
      "imported %s: lines=%lld bad_lines_skipped=%lld raw=%lld/%lld/%lld kcore=%d (passes=%d) "
      "kept=%lld/%lld/%lld (users/items/interactions) times_refined=%lld accepted=%lld "
      "duplicates=%lld\nstore %s: users=%u items=%u events=%lld\n",
      absl::GetFlag(FLAGS_input).c_str(), static_cast<long long>(stats->lines),
      static_cast<long long>(stats->bad_lines), static_cast<long long>(stats->raw_users),
      static_cast<long long>(stats->raw_items), static_cast<long long>(stats->raw_interactions),
      options.kcore, stats->kcore_passes, static_cast<long long>(stats->users),
      static_cast<long long>(stats->items), static_cast<long long>(stats->interactions),
      static_cast<long long>(stats->times_refined), static_cast<long long>(stats->ingest.accepted),
      static_cast<long long>(stats->ingest.duplicates), store_options->path.c_str(),
      info.num_users, info.num_items, static_cast<long long>(info.num_events));
  return 0;
}

}  // namespace dgsr::cli
