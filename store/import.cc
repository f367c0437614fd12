#include "store/import.h"

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <numeric>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/progress.h"
#include "common/status_macros.h"

namespace dgsr::store {
namespace {

// Interned strings: dense index per distinct string, in order of first appearance.
class Interner {
 public:
  uint32_t Intern(absl::string_view s) {
    auto [it, inserted] = index_.try_emplace(s, static_cast<uint32_t>(names_.size()));
    if (inserted) names_.emplace_back(s);
    return it->second;
  }
  const std::string& name(uint32_t k) const { return names_[k]; }
  size_t size() const { return names_.size(); }

 private:
  absl::flat_hash_map<std::string, uint32_t> index_;
  std::vector<std::string> names_;
};

struct Record {
  uint32_t user;
  uint32_t item;
  Timestamp time;
  uint32_t line;      // 1-based line number.
  uint32_t position;  // Position within the line (hgn), else 0.
};

struct Parsed {
  Interner users, items;
  std::vector<Record> records;
};

std::string Where(const std::string& path, int64_t line) { return absl::StrCat(path, ":", line, ": "); }

absl::Status ParseTime(absl::string_view field, Timestamp* time) {
  if (!absl::SimpleAtoi(field, time)) {
    return absl::InvalidArgumentError(absl::StrCat("time '", field, "' is not an integer"));
  }
  if (*time < kMinEventTime || *time > kMaxEventTime) {
    return absl::InvalidArgumentError(absl::StrCat("time ", *time, " is out of range"));
  }
  return absl::OkStatus();
}

absl::Status CheckIdField(absl::string_view what, absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat("empty ", what));
  if (id.size() > 256) return absl::InvalidArgumentError(absl::StrCat(what, " longer than 256 bytes"));
  return absl::OkStatus();
}

std::vector<absl::string_view> SplitFields(ImportFormat format, absl::string_view line, char uit_sep) {
  switch (format) {
    case ImportFormat::kMovieLensDat: return absl::StrSplit(line, "::");
    case ImportFormat::kMovieLensUData: return absl::StrSplit(line, '\t');
    case ImportFormat::kMovieLensCsv: return absl::StrSplit(line, ',');
    case ImportFormat::kUserItemTime:
      if (uit_sep == ' ') return absl::StrSplit(line, ' ', absl::SkipEmpty());
      return absl::StrSplit(line, uit_sep);
    case ImportFormat::kSasRec:
    case ImportFormat::kHgn: return absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  }
  return {};
}

// Parses one line into `out` (appends). `positions` counts events per user (order-only formats).
absl::Status ParseLine(ImportFormat format, absl::string_view line, uint32_t line_no, char uit_sep,
                       Parsed* out, std::vector<uint32_t>* positions) {
  if (line.empty()) return absl::InvalidArgumentError("empty line");
  const std::vector<absl::string_view> f = SplitFields(format, line, uit_sep);
  auto expect = [&](size_t n) -> absl::Status {
    if (f.size() != n) {
      return absl::InvalidArgumentError(absl::StrCat("expected ", n, " fields, got ", f.size()));
    }
    return absl::OkStatus();
  };
  auto next_position = [&](uint32_t user) -> Timestamp {
    if (user >= positions->size()) positions->resize(user + 1, 0);
    return ++(*positions)[user];
  };
  switch (format) {
    case ImportFormat::kMovieLensDat:
    case ImportFormat::kMovieLensUData:
    case ImportFormat::kMovieLensCsv:
    case ImportFormat::kUserItemTime: {
      const bool has_rating = format != ImportFormat::kUserItemTime;
      RETURN_IF_ERROR(expect(has_rating ? 4 : 3));
      RETURN_IF_ERROR(CheckIdField("user id", f[0]));
      RETURN_IF_ERROR(CheckIdField("item id", f[1]));
      double rating;
      if (has_rating && !absl::SimpleAtod(f[2], &rating)) {
        return absl::InvalidArgumentError(absl::StrCat("rating '", f[2], "' is not a number"));
      }
      Timestamp time;
      RETURN_IF_ERROR(ParseTime(f[has_rating ? 3 : 2], &time));
      out->records.push_back(
          {out->users.Intern(f[0]), out->items.Intern(f[1]), time, line_no, 0});
      return absl::OkStatus();
    }
    case ImportFormat::kSasRec: {
      RETURN_IF_ERROR(expect(2));
      RETURN_IF_ERROR(CheckIdField("user id", f[0]));
      RETURN_IF_ERROR(CheckIdField("item id", f[1]));
      const uint32_t user = out->users.Intern(f[0]);
      out->records.push_back({user, out->items.Intern(f[1]), next_position(user), line_no, 0});
      return absl::OkStatus();
    }
    case ImportFormat::kHgn: {
      if (f.size() < 2) return absl::InvalidArgumentError("expected a user and at least one item");
      for (absl::string_view id : f) RETURN_IF_ERROR(CheckIdField("id", id));
      const uint32_t user = out->users.Intern(f[0]);
      for (size_t k = 1; k < f.size(); ++k) {
        out->records.push_back({user, out->items.Intern(f[k]), next_position(user), line_no,
                                static_cast<uint32_t>(k)});
      }
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown format");
}

bool IsHeader(ImportFormat format, absl::string_view line, char uit_sep) {
  if (format == ImportFormat::kMovieLensCsv) return true;  // Always has one.
  if (format != ImportFormat::kUserItemTime) return false;
  const std::vector<absl::string_view> f = SplitFields(format, line, uit_sep);
  Timestamp t;
  return f.size() == 3 && !absl::SimpleAtoi(f[2], &t);
}

absl::Status ParseFile(const std::string& path, const ImportOptions& options, Parsed* out,
                       ImportStats* stats) {
  if (!std::filesystem::exists(path)) return absl::NotFoundError(absl::StrCat("no file ", path));
  ASSIGN_OR_RETURN(const std::string contents, ReadFile(path));
  const std::string name = std::filesystem::path(path).filename().string();
  std::optional<ProgressBar> bar;
  if (options.show_progress) bar.emplace(absl::StrCat("parse ", name), contents.size(), "B");
  std::vector<uint32_t> positions;
  char uit_sep = ' ';
  size_t pos = 0, reported = 0;
  uint32_t line_no = 0;
  while (pos < contents.size()) {
    size_t end = contents.find('\n', pos);
    if (end == std::string::npos) end = contents.size();
    absl::string_view line(contents.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_no == 1) {
      if (options.format == ImportFormat::kUserItemTime) {
        uit_sep = line.find('\t') != absl::string_view::npos   ? '\t'
                  : line.find(',') != absl::string_view::npos ? ','
                                                               : ' ';
      }
      if (IsHeader(options.format, line, uit_sep)) continue;
    }
    const size_t before = out->records.size();
    absl::Status s = ParseLine(options.format, line, line_no, uit_sep, out, &positions);
    if (!s.ok()) {
      out->records.resize(before);
      if (!options.skip_bad_lines) {
        return absl::InvalidArgumentError(absl::StrCat(Where(path, line_no), s.message()));
      }
      ++stats->bad_lines;
    }
    if (options.show_progress && pos - reported > (1 << 20)) {
      bar->Add(static_cast<int64_t>(std::min(pos, contents.size()) - reported));
      reported = std::min(pos, contents.size());
    }
  }
  if (options.show_progress) {
    bar->Add(static_cast<int64_t>(contents.size() - reported));
    bar->Finish();
  }
  stats->lines = line_no;
  return absl::OkStatus();
}

// Iterated k-core: returns the number of passes until nothing changed.
int KCore(int k, size_t num_users, size_t num_items, std::vector<Record>* records) {
  if (k <= 1) return 0;
  int passes = 0;
  std::vector<int64_t> user_count(num_users), item_count(num_items);
  while (true) {
    ++passes;
    std::fill(user_count.begin(), user_count.end(), 0);
    std::fill(item_count.begin(), item_count.end(), 0);
    for (const Record& r : *records) {
      ++user_count[r.user];
      ++item_count[r.item];
    }
    const size_t before = records->size();
    std::erase_if(*records, [&](const Record& r) {
      return user_count[r.user] < k || item_count[r.item] < k;
    });
    if (records->size() == before) return passes;
  }
}

// Refines times per user; `records` must be grouped by user and time-sorted within a user.
int64_t Refine(TimeRefinement mode, std::vector<Record>* records) {
  if (mode == TimeRefinement::kNone) return 0;
  int64_t changed = 0;
  Timestamp gap = 1;
  for (size_t k = 0; k < records->size(); ++k) {
    Record& r = (*records)[k];
    if (k == 0 || (*records)[k - 1].user != r.user) {
      gap = 1;
      continue;
    }
    const Timestamp prev = (*records)[k - 1].time;
    if (r.time > prev) continue;
    r.time = mode == TimeRefinement::kAuthors ? r.time + gap++ : prev + 1;
    ++changed;
  }
  return changed;
}

bool FileOrder(const Record& a, const Record& b) {
  return a.line != b.line ? a.line < b.line : a.position < b.position;
}

}  // namespace

absl::StatusOr<ImportFormat> ParseImportFormat(std::string_view name) {
  if (name == "ml-dat") return ImportFormat::kMovieLensDat;
  if (name == "ml-udata") return ImportFormat::kMovieLensUData;
  if (name == "ml-csv") return ImportFormat::kMovieLensCsv;
  if (name == "uit") return ImportFormat::kUserItemTime;
  if (name == "sasrec") return ImportFormat::kSasRec;
  if (name == "hgn") return ImportFormat::kHgn;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown format '", absl::string_view(name.data(), name.size()),
                   "' (ml-dat, ml-udata, ml-csv, uit, sasrec, hgn)"));
}

absl::StatusOr<TimeRefinement> ParseTimeRefinement(std::string_view name) {
  if (name == "none") return TimeRefinement::kNone;
  if (name == "authors") return TimeRefinement::kAuthors;
  if (name == "plus_one") return TimeRefinement::kPlusOne;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown time refinement '", absl::string_view(name.data(), name.size()),
                   "' (none, authors, plus_one)"));
}

absl::StatusOr<std::vector<RawInteraction>> ReadDataset(const std::string& path,
                                                        const ImportOptions& options,
                                                        ImportStats* stats) {
  Parsed parsed;
  RETURN_IF_ERROR(ParseFile(path, options, &parsed, stats));
  std::vector<Record>& records = parsed.records;
  stats->raw_users = static_cast<int64_t>(parsed.users.size());
  stats->raw_items = static_cast<int64_t>(parsed.items.size());
  stats->raw_interactions = static_cast<int64_t>(records.size());

  stats->kcore_passes = KCore(options.kcore, parsed.users.size(), parsed.items.size(), &records);
  std::vector<bool> user_seen(parsed.users.size()), item_seen(parsed.items.size());
  for (const Record& r : records) {
    stats->users += !user_seen[r.user];
    stats->items += !item_seen[r.item];
    user_seen[r.user] = item_seen[r.item] = true;
  }
  stats->interactions = static_cast<int64_t>(records.size());

  std::sort(records.begin(), records.end(), [](const Record& a, const Record& b) {
    if (a.user != b.user) return a.user < b.user;
    if (a.time != b.time) return a.time < b.time;
    return FileOrder(a, b);
  });
  stats->times_refined = Refine(options.time_refinement, &records);
  for (const Record& r : records) {
    if (r.time > kMaxEventTime) {
      return absl::InvalidArgumentError(absl::StrCat(Where(path, r.line), "refined time ", r.time,
                                                     " is out of range"));
    }
  }
  std::sort(records.begin(), records.end(), [](const Record& a, const Record& b) {
    return a.time != b.time ? a.time < b.time : FileOrder(a, b);
  });

  const std::string name = std::filesystem::path(path).filename().string();
  std::vector<RawInteraction> out(records.size());
  for (size_t k = 0; k < records.size(); ++k) {
    const Record& r = records[k];
    out[k].user = parsed.users.name(r.user);
    out[k].item = parsed.items.name(r.item);
    out[k].time = r.time;
    out[k].event_id = options.format == ImportFormat::kHgn
                          ? absl::StrCat(name, ":", r.line, ":", r.position)
                          : absl::StrCat(name, ":", r.line);
  }
  return out;
}

absl::StatusOr<std::vector<RawInteraction>> HoldOutLatest(std::vector<RawInteraction>* events, double fraction) {
  if (!(fraction < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("hold-out fraction must be below 1, got ", fraction));
  }
  std::vector<RawInteraction> out;
  if (fraction <= 0 || events->empty()) return out;
  size_t cut = static_cast<size_t>((1 - fraction) * static_cast<double>(events->size()));
  cut = std::min(cut, events->size() - 1);
  const Timestamp from = (*events)[cut].time;
  while (cut > 0 && (*events)[cut - 1].time == from) --cut;
  out.assign(std::make_move_iterator(events->begin() + cut), std::make_move_iterator(events->end()));
  events->resize(cut);
  return out;
}

absl::StatusOr<ImportStats> ImportFile(const std::string& path, const ImportOptions& options,
                                       GraphStore* store, std::vector<RawInteraction>* held_out) {
  ImportStats stats;
  ASSIGN_OR_RETURN(std::vector<RawInteraction> events, ReadDataset(path, options, &stats));
  if (options.hold_out_fraction > 0) {
    if (held_out == nullptr) return absl::InvalidArgumentError("hold_out_fraction needs somewhere to put the events");
    ASSIGN_OR_RETURN(*held_out, HoldOutLatest(&events, options.hold_out_fraction));
    stats.held_out = static_cast<int64_t>(held_out->size());
    if (!held_out->empty()) stats.held_out_from = held_out->front().time;
  } else if (options.hold_out_fraction < 0) {
    return absl::InvalidArgumentError("hold_out_fraction must not be negative");
  }
  const size_t batch_size = std::max<size_t>(1, options.batch_events);
  std::optional<ProgressBar> bar;
  if (options.show_progress) bar.emplace("import", events.size(), "events");
  std::vector<Event> batch;
  for (size_t begin = 0; begin < events.size(); begin += batch_size) {
    const size_t end = std::min(events.size(), begin + batch_size);
    batch.clear();
    for (size_t k = begin; k < end; ++k) {
      batch.push_back({std::move(events[k].user), std::move(events[k].item), events[k].time,
                       std::move(events[k].event_id)});
    }
    ASSIGN_OR_RETURN(IngestResult r, store->Ingest(batch));
    stats.ingest.accepted += r.accepted;
    stats.ingest.duplicates += r.duplicates;
    stats.ingest.new_users += r.new_users;
    stats.ingest.new_items += r.new_items;
    if (bar.has_value()) bar->Add(static_cast<int64_t>(end - begin));
  }
  if (bar.has_value()) bar->Finish();
  RETURN_IF_ERROR(store->Sync());
  return stats;
}

}  // namespace dgsr::store
