// Import of real interaction datasets (the files in ../shared/data, see its INVENTORY.md) into a
// GraphStore, with the paper's preprocessing (DGSR §5.1): iterated k-core filtering, and
// optionally the authors' time refinement (off by default, see TimeRefinement).
//
// Formats (ImportFormat, CLI name in quotes):
//   "ml-dat"   MovieLens ratings.dat: `user::item::rating::time`.
//   "ml-udata" MovieLens-100K u.data: `user \t item \t rating \t time`.
//   "ml-csv"   MovieLens ratings.csv: header line, then `user,item,rating,time`.
//   "uit"      `user item time` separated by tabs, commas or spaces (one separator per file,
//              taken from the first line); an optional header line whose time field is not a
//              number (e.g. DGSR's `user_id,item_id,time`). The Beauty 5-core TSV is this format.
//   "sasrec"   SASRec `user item` lines; each user's lines in chronological order.
//   "hgn"      HGN `user item item ...` lines: one user per line, items in chronological order.
// Times are Unix seconds. The order-only formats ("sasrec", "hgn") carry no time: an event's
// time is its 1-based position in its user's sequence, so order WITHIN a user is exact but the
// order ACROSS users is unknown (user A's 3rd event and user B's 3rd event get the same time).
// The trainer recognises such stores and splits them order-only (trainer/split.h, CrossUserTime).
// Lines may end in CRLF. Empty and malformed lines are errors.
//
// Pipeline, all in memory before anything is written: parse and validate every line (an error
// names file:line; with skip_bad_lines the line is skipped and counted), iterated k-core
// filter, per-user time refinement (if asked for), then a deterministic order: by time, ties in file order.
// Dense ids are then assigned by the store in that order (first appearance), so the same file
// and options always give the same ids on an empty store. Events are ingested in batches with
// event ids "<file name>:<line>[:<position>]", so re-running an interrupted import completes it
// without duplicates.
//
// Counts to expect (INVENTORY.md): DGSR's "Games" and "CDs" equal the RAW sasrec/hgn files
// (use kcore = 0); the paper's default 5-core gives the iterated 5-core counts listed there.
//
// Thread-compatible: functions keep no state.
#ifndef DGSR_STORE_IMPORT_H_
#define DGSR_STORE_IMPORT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "store/graph_store.h"

namespace dgsr::store {

enum class ImportFormat { kMovieLensDat, kMovieLensUData, kMovieLensCsv, kUserItemTime, kSasRec, kHgn };

// How a user's events of the same time (same second, or same day in day-resolution data) are
// ordered. The default, kNone, keeps their times and their file order: the graph keeps tied
// events in the order they were added, a user's own earlier tied events stay in its history,
// and other users' events of that time stay hidden from a prediction at it (store/
// temporal_graph.h, model/sampler.h). The two refinements make every user's times strictly
// increasing by moving tied events later, one user at a time. That reorders events ACROSS
// users with no evidence: another user's event of the same day, moved less, looks strictly
// earlier than the predicted one, and sometimes it is the very target (the DGSR authors' code
// leaks this way; on Beauty 5-core about 43% of test sub-graphs held such edges). They are kept
// to reproduce the authors' preprocessing, not for training a model to serve.
enum class TimeRefinement {
  kNone,
  // The DGSR authors' refine_time: walking a user's time-sorted sequence, a time equal to or
  // earlier than its (refined) predecessor becomes original + gap; gap starts at 1 and grows by
  // 1 with every such collision in that user. [5, 5, 5] -> [5, 6, 7].
  kAuthors,
  // Predecessor + 1: t'[k] = max(t[k], t'[k-1] + 1).
  kPlusOne,
};

// "ml-dat", "ml-udata", "ml-csv", "uit", "sasrec", "hgn". InvalidArgument otherwise.
[[nodiscard]] absl::StatusOr<ImportFormat> ParseImportFormat(std::string_view name);
// "none", "authors", "plus_one".
[[nodiscard]] absl::StatusOr<TimeRefinement> ParseTimeRefinement(std::string_view name);

struct ImportOptions {
  ImportFormat format = ImportFormat::kUserItemTime;
  // Iterated k-core: drop users and items with fewer than `kcore` interactions until none is
  // left. 0 (or 1) disables it.
  int kcore = 5;
  TimeRefinement time_refinement = TimeRefinement::kNone;
  // Skip malformed lines (counted in ImportStats::bad_lines) instead of failing.
  bool skip_bad_lines = false;
  // Events per GraphStore::Ingest call.
  size_t batch_events = 10000;
  // Draw progress bars on stderr.
  bool show_progress = true;
  // In [0, 1): ImportFile holds out the latest events, about this fraction of them
  // (HoldOutLatest), instead of ingesting them, for replaying later (for example through a
  // server, to measure retraining on the events that arrived after a model was trained).
  double hold_out_fraction = 0;
};

struct ImportStats {
  int64_t lines = 0;      // Lines read (header included).
  int64_t bad_lines = 0;  // Lines skipped (skip_bad_lines only).
  int64_t raw_users = 0, raw_items = 0, raw_interactions = 0;  // Before filtering.
  int64_t users = 0, items = 0, interactions = 0;              // After k-core.
  int kcore_passes = 0;         // Filtering passes until nothing changed.
  int64_t times_refined = 0;    // Events whose time the refinement changed.
  IngestResult ingest;          // What the store reported (duplicates on a re-run).
  int64_t held_out = 0;         // Events not ingested (hold_out_fraction).
  Timestamp held_out_from = 0;  // The time they start at (if held_out > 0).
};

// One parsed interaction, external ids.
struct RawInteraction {
  std::string user;
  std::string item;
  Timestamp time = 0;
  std::string event_id;
};

// Parses, validates, filters and orders `path` without writing anything: the events that
// ImportFile would ingest, in ingest order. InvalidArgument "path:line: reason" on a malformed
// line (unless skip_bad_lines); NotFound if the file does not exist.
[[nodiscard]] absl::StatusOr<std::vector<RawInteraction>> ReadDataset(const std::string& path,
                                                                     const ImportOptions& options,
                                                                     ImportStats* stats);

// Splits `events` (in ingest order, as ReadDataset returns them) in time: removes and returns
// the suffix that starts at the time T of the event at index floor((1 - fraction) * size), so
// that every kept event is strictly earlier than every returned one and no timestamp is split
// (ties at T all go to the returned part, which can therefore be a little larger than the
// fraction). Nothing is returned for fraction <= 0. InvalidArgument unless fraction < 1.
[[nodiscard]] absl::StatusOr<std::vector<RawInteraction>> HoldOutLatest(std::vector<RawInteraction>* events,
                                                                        double fraction);

// ReadDataset, then ingests the result into `store` in batches. Nothing is written if reading
// fails. An I/O error while ingesting leaves a prefix of whole batches; re-run to complete it.
// With options.hold_out_fraction > 0 the latest events (HoldOutLatest) are not ingested but
// moved into `*held_out` (required then), in ingest order with their event ids.
[[nodiscard]] absl::StatusOr<ImportStats> ImportFile(const std::string& path,
                                                     const ImportOptions& options,
                                                     GraphStore* store,
                                                     std::vector<RawInteraction>* held_out = nullptr);

}  // namespace dgsr::store

#endif  // DGSR_STORE_IMPORT_H_
