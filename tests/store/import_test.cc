#include "store/import.h"

#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testutil/shared_data.h"
#include "tests/testutil/temp_dir.h"

namespace dgsr::store {
namespace {

using ::dgsr::testing::SharedDataPath;
using ::dgsr::testing::TempDir;

struct Counts {
  int64_t users, items, interactions;
  bool operator==(const Counts&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Counts& c) {
  return os << c.users << " / " << c.items << " / " << c.interactions;
}

ImportOptions Opts(ImportFormat format, int kcore) {
  ImportOptions o;
  o.format = format;
  o.kcore = kcore;
  o.show_progress = false;
  return o;
}

// Counts after reading (and filtering) a real file, without writing a store.
Counts Read(const std::string& relative, ImportFormat format, int kcore, ImportStats* raw) {
  ImportStats stats;
  auto events = ReadDataset(SharedDataPath(relative), Opts(format, kcore), &stats);
  EXPECT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(stats.bad_lines, 0);
  EXPECT_EQ(static_cast<int64_t>(events.ok() ? events->size() : 0), stats.interactions);
  *raw = stats;
  return {stats.users, stats.items, stats.interactions};
}

struct RealDataset {
  const char* path;
  ImportFormat format;
  Counts raw;
  Counts five_core;  // Iterated, from INVENTORY.md.
};

// Counts from ../shared/data/INVENTORY.md.
const RealDataset kDatasets[] = {
    {"amazon-games-sasrec/Video.txt", ImportFormat::kSasRec, {31013, 23715, 287107},
     {24303, 10672, 231780}},
    {"amazon-cds-hgn/CDs_item_sequences.txt", ImportFormat::kHgn, {17052, 35118, 472265},
     {17048, 29316, 453548}},
    {"ml-1m-first2999users/ratings.dat", ImportFormat::kMovieLensDat, {2999, 3615, 487650},
     {2999, 3266, 486907}},
    {"amazon-beauty-5core-ticoserec/Beauty_interactions.tsv", ImportFormat::kUserItemTime,
     {22363, 12101, 198502}, {22363, 12101, 198502}},
    {"ml-100k/u.data", ImportFormat::kMovieLensUData, {943, 1682, 100000}, {943, 1349, 99287}},
    {"ml-latest-small/ratings.csv", ImportFormat::kMovieLensCsv, {610, 9724, 100836},
     {610, 3650, 90274}},
};

void PrintTo(const RealDataset& d, std::ostream* os) { *os << d.path; }

class RealDatasetTest : public ::testing::TestWithParam<RealDataset> {};

TEST_P(RealDatasetTest, RawAndIterated5CoreCountsMatchInventory) {
  const RealDataset& d = GetParam();
  DGSR_REQUIRE_SHARED_DATA(d.path);
  ImportStats stats;
  EXPECT_EQ(Read(d.path, d.format, 0, &stats), d.raw);
  EXPECT_EQ((Counts{stats.raw_users, stats.raw_items, stats.raw_interactions}), d.raw);
  EXPECT_EQ(Read(d.path, d.format, 5, &stats), d.five_core);
}

INSTANTIATE_TEST_SUITE_P(Inventory, RealDatasetTest, ::testing::ValuesIn(kDatasets),
                         [](const auto& info) {
                           std::string name = info.param.path;
                           name = name.substr(0, name.find('/'));
                           for (char& c : name) c = std::isalnum(c) ? c : '_';
                           return name;
                         });

// The DGSR "Games" dataset as the paper used it (the raw file), through a real store.
TEST(ImportTest, GamesImportsIntoAStoreWithThePaperCountsAndIsIdempotent) {
  DGSR_REQUIRE_SHARED_DATA("amazon-games-sasrec/Video.txt");
  TempDir dir;
  GraphStoreOptions o;
  o.path = dir.path();
  o.durability = Durability::kGroupCommit;
  auto store = GraphStore::Open(o);
  ASSERT_TRUE(store.ok());
  const std::string path = SharedDataPath("amazon-games-sasrec/Video.txt");
  auto stats = ImportFile(path, Opts(ImportFormat::kSasRec, 0), store->get());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->ingest.accepted, 287107);
  StoreInfo info = (*store)->info();
  EXPECT_EQ(info.num_users, 31013u);
  EXPECT_EQ(info.num_items, 23715u);
  EXPECT_EQ(info.num_events, 287107);
  // Order-only: time is the 1-based position in the user's sequence; Video.txt line 1..3 are
  // user 1's first three items.
  auto view = (*store)->graph().Read();
  std::vector<NodeId> items;
  std::vector<Timestamp> times;
  view.UserSequence(*(*store)->UserId("1"), &items, &times);
  ASSERT_GE(items.size(), 3u);
  EXPECT_EQ(times[0], 1);
  EXPECT_EQ(times[2], 3);
  EXPECT_EQ(*(*store)->ExternalItemId(items[0]), "6393");
  EXPECT_EQ(*(*store)->ExternalItemId(items[1]), "13504");
  // A re-run (e.g. after an interrupted import) adds nothing.
  stats = ImportFile(path, Opts(ImportFormat::kSasRec, 0), store->get());
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->ingest.accepted, 0);
  EXPECT_EQ(stats->ingest.duplicates, 287107);
  EXPECT_EQ((*store)->info().num_events, 287107);
}

std::string WriteFile(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.Sub(name);
  std::ofstream(path) << text;
  return path;
}

std::vector<RawInteraction> ReadText(const std::string& text, ImportOptions o,
                                     ImportStats* stats = nullptr) {
  TempDir dir;
  ImportStats local;
  auto events = ReadDataset(WriteFile(dir, "f.txt", text), o, stats ? stats : &local);
  EXPECT_TRUE(events.ok()) << events.status();
  return events.ok() ? *events : std::vector<RawInteraction>{};
}

std::vector<Timestamp> Times(const std::vector<RawInteraction>& events) {
  std::vector<Timestamp> t;
  for (const auto& e : events) t.push_back(e.time);
  return t;
}

TEST(ImportTest, ByDefaultTiesKeepTheirTimesAndFileOrder) {
  const ImportOptions o = Opts(ImportFormat::kUserItemTime, 0);
  EXPECT_EQ(o.time_refinement, TimeRefinement::kNone);
  ImportStats stats;
  const auto events = ReadText("u c 5\nv x 5\nu a 5\nu b 4\n", o, &stats);
  std::vector<std::string> got;
  for (const auto& e : events) got.push_back(e.user + e.item + ":" + std::to_string(e.time));
  EXPECT_EQ(got, (std::vector<std::string>{"ub:4", "uc:5", "vx:5", "ua:5"}));
  EXPECT_EQ(stats.times_refined, 0);
}

TEST(ImportTest, AuthorsTimeRefinementAddsAGrowingGapPerCollision) {
  ImportOptions o = Opts(ImportFormat::kUserItemTime, 0);
  o.time_refinement = TimeRefinement::kAuthors;
  EXPECT_EQ(Times(ReadText("u\ta\t5\nu\tb\t5\nu\tc\t5\n", o)), (std::vector<Timestamp>{5, 6, 7}));
  // The gap keeps growing within the user: 10,10,10,11 -> 10,11,12,14.
  EXPECT_EQ(Times(ReadText("u a 10\nu b 10\nu c 10\nu d 11\n", o)),
            (std::vector<Timestamp>{10, 11, 12, 14}));
  o.time_refinement = TimeRefinement::kPlusOne;
  EXPECT_EQ(Times(ReadText("u,a,10\nu,b,10\nu,c,10\nu,d,11\n", o)),
            (std::vector<Timestamp>{10, 11, 12, 13}));
  o.time_refinement = TimeRefinement::kNone;
  EXPECT_EQ(Times(ReadText("u,a,10\nu,b,10\n", o)), (std::vector<Timestamp>{10, 10}));
}

TEST(ImportTest, RefinementIsPerUserAndOutputIsOrderedByTimeThenFile) {
  ImportOptions o = Opts(ImportFormat::kUserItemTime, 0);
  o.time_refinement = TimeRefinement::kAuthors;
  // Input out of time order; v's times are independent of u's gaps.
  const auto events = ReadText("u a 7\nv x 7\nu b 5\nu c 5\nv y 7\n", o);
  std::vector<std::string> got;
  for (const auto& e : events) got.push_back(e.user + e.item + ":" + std::to_string(e.time));
  EXPECT_EQ(got, (std::vector<std::string>{"ub:5", "uc:6", "ua:7", "vx:7", "vy:8"}));
  EXPECT_EQ(events[0].event_id, "f.txt:3");
}

TEST(ImportTest, HgnLinesGetPositionsAsTimes) {
  const auto events = ReadText("0 5 6 7\n1 6\n", Opts(ImportFormat::kHgn, 0));
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(Times(events), (std::vector<Timestamp>{1, 1, 2, 3}));
  EXPECT_EQ(events[1].user, "1");
  EXPECT_EQ(events[3].event_id, "f.txt:1:3");
}

TEST(ImportTest, KCoreIsIterated) {
  // A single 2-core pass keeps v-a, v-b, w-b; iterating unravels the chain completely.
  const std::string text = "u a 1\nv a 2\nv b 3\nw b 4\nw c 5\n";
  ImportStats stats;
  const auto events = ReadText(text, Opts(ImportFormat::kUserItemTime, 2), &stats);
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(stats.kcore_passes, 4);
  EXPECT_EQ(stats.raw_interactions, 5);
}

TEST(ImportTest, MalformedLineNamesFileAndLineAndWritesNothing) {
  TempDir dir;
  const std::string path = WriteFile(dir, "bad.dat", "1::10::5::100\n1::11::5\n2::10::4::300\n");
  GraphStoreOptions so;
  so.path = dir.Sub("db");
  auto store = GraphStore::Open(so);
  ASSERT_TRUE(store.ok());
  auto stats = ImportFile(path, Opts(ImportFormat::kMovieLensDat, 0), store->get());
  ASSERT_EQ(stats.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(stats.status().message().find("bad.dat:2:"), std::string::npos) << stats.status();
  EXPECT_EQ((*store)->info().num_events, 0);

  for (const char* bad : {"1::10::5::x\n", "1::::5::100\n", "1::10::5::-3\n", "\n",
                                 "1::10::five::100\n"}) {
    const std::string p = WriteFile(dir, "b.dat", bad);
    ImportStats s;
    EXPECT_EQ(ReadDataset(p, Opts(ImportFormat::kMovieLensDat, 0), &s).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  ImportStats missing;
  EXPECT_EQ(ReadDataset(dir.Sub("missing"), Opts(ImportFormat::kSasRec, 0), &missing)
                .status()
                .code(),
            absl::StatusCode::kNotFound);

  ImportOptions skip = Opts(ImportFormat::kMovieLensDat, 0);
  skip.skip_bad_lines = true;
  stats = ImportFile(path, skip, store->get());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->bad_lines, 1);
  EXPECT_EQ(stats->ingest.accepted, 2);
}

TEST(ImportTest, CsvHeaderAndCrlfAreHandled) {
  const auto ml = ReadText("userId,movieId,rating,timestamp\r\n1,2,3.5,100\r\n",
                           Opts(ImportFormat::kMovieLensCsv, 0));
  ASSERT_EQ(ml.size(), 1u);
  EXPECT_EQ(ml[0].item, "2");
  EXPECT_EQ(ml[0].time, 100);
  const auto dgsr = ReadText("user_id,item_id,time\n7,8,9\n", Opts(ImportFormat::kUserItemTime, 0));
  ASSERT_EQ(dgsr.size(), 1u);
  EXPECT_EQ(dgsr[0].user, "7");
}

TEST(ImportTest, SameFileGivesTheSameDenseIds) {
  TempDir dir;
  const std::string path = WriteFile(dir, "x.tsv", "b\tq\t3\na\tp\t1\nb\tp\t2\nc\tq\t1\n");
  std::vector<std::vector<std::string>> runs;
  for (int run = 0; run < 2; ++run) {
    GraphStoreOptions so;
    so.path = dir.Sub("db" + std::to_string(run));
    auto store = GraphStore::Open(so);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(ImportFile(path, Opts(ImportFormat::kUserItemTime, 0), store->get()).ok());
    std::vector<std::string> names;
    for (NodeId u = 0; u < 3; ++u) names.push_back(*(*store)->ExternalUserId(u));
    runs.push_back(names);
  }
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], (std::vector<std::string>{"a", "c", "b"}));  // By time, then file order.
}

TEST(ImportTest, FormatNamesParse) {
  EXPECT_EQ(*ParseImportFormat("hgn"), ImportFormat::kHgn);
  EXPECT_EQ(*ParseImportFormat("ml-dat"), ImportFormat::kMovieLensDat);
  EXPECT_FALSE(ParseImportFormat("parquet").ok());
  EXPECT_EQ(*ParseTimeRefinement("plus_one"), TimeRefinement::kPlusOne);
  EXPECT_FALSE(ParseTimeRefinement("fancy").ok());
}

TEST(ImportTest, HoldOutLatestCutsAtOneTimeAndNeverSplitsATimestamp) {
  const auto events = ReadText("a x 1\nb x 2\nc x 3\nd x 3\ne x 3\nf x 4\ng x 5\nh x 6\ni x 7\nj x 8\n",
                               Opts(ImportFormat::kUserItemTime, 0));
  ASSERT_EQ(events.size(), 10u);
  auto kept = events;
  auto held = HoldOutLatest(&kept, 0.3);  // index 7 (time 6): h, i, j
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_EQ(held->size(), 3u);
  EXPECT_EQ(held->front().user, "h");
  EXPECT_EQ(kept.size(), 7u);
  kept = events;
  held = HoldOutLatest(&kept, 0.7);  // index 3 is time 3: every time-3 event moves, c included
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->size(), 8u);
  EXPECT_EQ(kept.size(), 2u);
  EXPECT_LT(kept.back().time, held->front().time);
  kept = events;
  EXPECT_TRUE(HoldOutLatest(&kept, 0)->empty());
  EXPECT_EQ(kept.size(), 10u);
  EXPECT_EQ(HoldOutLatest(&kept, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ImportTest, ImportFileWithHoldOutIngestsOnlyTheEarlierEvents) {
  TempDir dir;
  const std::string path = WriteFile(dir, "e.txt", "u a 1\nv b 2\nu c 3\nv d 4\n");
  GraphStoreOptions so;
  so.path = dir.Sub("db");
  auto store = GraphStore::Open(so);
  ASSERT_TRUE(store.ok());
  ImportOptions o = Opts(ImportFormat::kUserItemTime, 0);
  o.hold_out_fraction = 0.5;
  EXPECT_EQ(ImportFile(path, o, store->get()).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<RawInteraction> held;
  auto stats = ImportFile(path, o, store->get(), &held);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->held_out, 2);
  EXPECT_EQ(stats->held_out_from, 3);
  EXPECT_EQ(stats->ingest.accepted, 2);
  EXPECT_EQ((*store)->info().num_events, 2);
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].item, "c");
  EXPECT_EQ(held[1].event_id, "e.txt:4");
}

}  // namespace
}  // namespace dgsr::store
