// The training-run bookkeeping shared by the DGSR and SASRec+ trainers (no libtorch).
#include "trainer/run_state.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "tests/testutil/temp_dir.h"

namespace dgsr::trainer {
namespace {

// Save functions for RunCheckpoint::Commit: one that writes `text`, one that fails as a full disk
// (or a killed process) would.
RunCheckpoint::SaveFn Writes(const std::string& text) {
  return [text](const std::string& path) {
    std::ofstream(path) << text;
    return absl::OkStatus();
  };
}
RunCheckpoint::SaveFn Fails() {
  return [](const std::string&) { return absl::InternalError("disk full"); };
}

std::string Contents(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A run directory after one committed epoch: net-1.pt = best-1.pt = "net1", optimizer-1.pt = "opt1".
void CommitFirstEpoch(const std::string& dir) {
  RunState state;
  ASSERT_TRUE(RecordValidation(&state, 0, 0.3));
  auto ck = RunCheckpoint::Open(dir, "t_");
  ASSERT_TRUE(ck.ok()) << ck.status();
  ASSERT_TRUE((*ck)->Commit(state, true, Writes("net1"), Writes("opt1")).ok());
}

std::set<std::string> Files(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

TEST(RunStateTest, RoundTripsAndDrivesEarlyStopping) {
  testing::TempDir dir;
  RunState state;
  EXPECT_TRUE(RecordValidation(&state, 0, 0.30));   // first epoch always improves
  EXPECT_FALSE(RecordValidation(&state, 1, 0.29));
  EXPECT_TRUE(RecordValidation(&state, 2, 0.31));
  EXPECT_EQ(state.best_epoch, 2);
  EXPECT_EQ(state.bad_epochs, 0);
  EXPECT_FALSE(RecordValidation(&state, 3, 0.31));  // equal is not better
  EXPECT_FALSE(ShouldStop(state, 2));
  EXPECT_FALSE(RecordValidation(&state, 4, 0.20));
  EXPECT_TRUE(ShouldStop(state, 2));
  EXPECT_EQ(state.next_epoch, 5);
  {
    auto ck = RunCheckpoint::Open(dir.Sub("ck"), "t_");
    ASSERT_TRUE(ck.ok()) << ck.status();
    EXPECT_FALSE((*ck)->resumed());
    ASSERT_TRUE((*ck)->Commit(state, true, Writes("net"), Writes("opt")).ok());
  }
  auto loaded = LoadRunState(dir.Sub("ck"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->next_epoch, 5);
  EXPECT_EQ(loaded->best_epoch, 2);
  EXPECT_DOUBLE_EQ(loaded->best_ndcg, 0.31);
  EXPECT_EQ(loaded->bad_epochs, 2);
  auto reopened = RunCheckpoint::Open(dir.Sub("ck"), "t_");
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_TRUE((*reopened)->resumed());
  EXPECT_EQ((*reopened)->state().next_epoch, 5);
}

TEST(RunStateTest, EpochsWithoutImprovementDecayTheLearningRate) {
  testing::TempDir dir;
  RunState state;
  EXPECT_TRUE(RecordValidation(&state, 0, 0.30, 0.5));
  EXPECT_DOUBLE_EQ(state.lr_scale, 1.0);   // an improvement keeps the rate
  EXPECT_FALSE(RecordValidation(&state, 1, 0.29, 0.5));
  EXPECT_DOUBLE_EQ(state.lr_scale, 0.5);
  EXPECT_TRUE(RecordValidation(&state, 2, 0.40, 0.5));
  EXPECT_DOUBLE_EQ(state.lr_scale, 0.5);   // and does not restore it
  EXPECT_FALSE(RecordValidation(&state, 3, 0.40, 0.5));
  EXPECT_DOUBLE_EQ(state.lr_scale, 0.25);
  EXPECT_FALSE(RecordValidation(&state, 4, 0.10));  // the default decay, 1, keeps it constant
  EXPECT_DOUBLE_EQ(state.lr_scale, 0.25);
  {
    auto ck = RunCheckpoint::Open(dir.path(), "t_");
    ASSERT_TRUE(ck.ok()) << ck.status();
    ASSERT_TRUE((*ck)->Commit(state, true, Writes("net"), Writes("opt")).ok());
  }
  auto loaded = LoadRunState(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_DOUBLE_EQ(loaded->lr_scale, 0.25);
  std::ofstream(dir.Sub("state.json")) << R"({"next_epoch":1,"lr_scale":0})";
  EXPECT_EQ(LoadRunState(dir.path()).status().code(), absl::StatusCode::kInvalidArgument);
  std::ofstream(dir.Sub("state.json")) << R"({"next_epoch":1})";  // written before lr_decay existed
  ASSERT_TRUE(LoadRunState(dir.path()).ok());
  EXPECT_DOUBLE_EQ(LoadRunState(dir.path())->lr_scale, 1.0);
}

TEST(RunStateTest, ResumingWithAnotherConfigNamesTheField) {
  JsonObject stored;
  stored.Set("dim", 50).Set("feat_dropout", 0.1).Set("preset_name", "paper");
  JsonObject same = stored;
  EXPECT_TRUE(CheckResumedConfig(stored, same, "ck").ok());
  JsonObject other = stored;
  other.Set("feat_dropout", 0.2);
  absl::Status s = CheckResumedConfig(stored, other, "ck");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'feat_dropout'"), std::string::npos) << s;
  JsonObject wider = stored;
  wider.Set("layers", 3);
  s = CheckResumedConfig(stored, wider, "ck");
  EXPECT_NE(s.message().find("'layers'"), std::string::npos) << s;
  JsonObject narrower;
  narrower.Set("dim", 50).Set("feat_dropout", 0.1);
  s = CheckResumedConfig(stored, narrower, "ck");
  EXPECT_NE(s.message().find("'preset_name'"), std::string::npos) << s;
}

TEST(RunStateTest, AWarmStartMayGrowTheIdSpacesAndChangeTheRateButNothingElse) {
  JsonObject stored;
  stored.Set("num_users", 100).Set("num_items", 40).Set("dim", 50).Set("feat_dropout", 0.2).Set("learning_rate", 0.001);
  const std::vector<std::string> grows{"num_users", "num_items"}, free{"learning_rate"};
  JsonObject next = stored;
  next.Set("num_users", 130).Set("num_items", 40).Set("learning_rate", 0.0003);
  EXPECT_TRUE(CheckWarmStartConfig(stored, next, grows, free).ok());
  JsonObject shrunk = next;
  shrunk.Set("num_items", 39);
  absl::Status s = CheckWarmStartConfig(stored, shrunk, grows, free);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'num_items' would shrink"), std::string::npos) << s;
  JsonObject other = next;
  other.Set("feat_dropout", 0.1);
  s = CheckWarmStartConfig(stored, other, grows, free);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("another 'feat_dropout' (0.2 against 0.1"), std::string::npos) << s;
  JsonObject extra = next;
  extra.Set("layers", 2);
  EXPECT_NE(CheckWarmStartConfig(stored, extra, grows, free).message().find("no field 'layers'"), std::string::npos);
}

TEST(RunStateTest, CorruptStateIsAClearError) {
  testing::TempDir dir;
  std::ofstream(dir.Sub("state.json")) << "{not json";
  EXPECT_FALSE(LoadRunState(dir.path()).ok());
}

// A process killed inside a commit, simulated by a save function that fails at each step, leaves
// the previous epoch's state with every file it names; the next commit cleans up after it.
TEST(RunCheckpointTest, AFailedCommitLeavesThePreviousStateWhole) {
  testing::TempDir dir;
  const std::string ck_dir = dir.Sub("ck");
  RunState state;
  {
    auto ck = RunCheckpoint::Open(ck_dir, "t_");
    ASSERT_TRUE(ck.ok()) << ck.status();
    ASSERT_TRUE(RecordValidation(&state, 0, 0.30));
    ASSERT_TRUE((*ck)->Commit(state, true, Writes("net1"), Writes("opt1")).ok());
    RunState next = state;
    ASSERT_TRUE(RecordValidation(&next, 1, 0.40));
    // Killed after the network file (the optimizer never written), then before anything.
    EXPECT_EQ((*ck)->Commit(next, true, Writes("net2"), Fails()).code(), absl::StatusCode::kInternal);
    EXPECT_EQ((*ck)->Commit(next, true, Fails(), Writes("opt2")).code(), absl::StatusCode::kInternal);
    EXPECT_EQ((*ck)->state().next_epoch, 1);
  }
  auto ck = RunCheckpoint::Open(ck_dir, "t_");
  ASSERT_TRUE(ck.ok()) << ck.status();
  ASSERT_TRUE((*ck)->resumed());
  EXPECT_EQ((*ck)->state().next_epoch, 1);
  EXPECT_EQ(Contents((*ck)->network_path()), "net1");
  EXPECT_EQ(Contents((*ck)->optimizer_path()), "opt1");
  EXPECT_EQ(Contents((*ck)->best_path()), "net1");
  EXPECT_EQ(Contents(ck_dir + "/last.pt"), "net1");
  EXPECT_EQ(Contents(ck_dir + "/best.pt"), "net1");

  // The epoch is run again and is worse this time: best stays epoch 1, last moves on.
  ASSERT_FALSE(RecordValidation(&state, 1, 0.20));
  ASSERT_TRUE((*ck)->Commit(state, false, Writes("net2"), Writes("opt2")).ok());
  EXPECT_EQ(Contents((*ck)->network_path()), "net2");
  EXPECT_EQ(Contents((*ck)->best_path()), "net1");
  EXPECT_EQ(Contents(ck_dir + "/last.pt"), "net2");
  EXPECT_EQ(Contents(ck_dir + "/best.pt"), "net1");
  EXPECT_EQ(Files(ck_dir), (std::set<std::string>{"LOCK", "best-1.pt", "best.pt", "last.pt", "net-2.pt",
                                                  "optimizer-2.pt", "state.json"}));
}

// Killed after state.json was replaced but before last.pt / best.pt were refreshed and old files
// deleted: reopening finishes that.
TEST(RunCheckpointTest, OpeningFinishesAnInterruptedTidyUp) {
  testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(CommitFirstEpoch(dir.path()));
  std::filesystem::remove(dir.Sub("last.pt"));
  std::filesystem::remove(dir.Sub("best.pt"));  // (a hard link: writing through it would change best-1.pt)
  std::ofstream(dir.Sub("best.pt")) << "stale";
  std::ofstream(dir.Sub("net-0.pt")) << "old";
  std::ofstream(dir.Sub("optimizer-2.pt.tmp")) << "half-written";
  auto ck = RunCheckpoint::Open(dir.path(), "t_");
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_EQ(Contents(dir.Sub("last.pt")), "net1");
  EXPECT_EQ(Contents(dir.Sub("best.pt")), "net1");
  EXPECT_EQ(Files(dir.path()), (std::set<std::string>{"LOCK", "best-1.pt", "best.pt", "last.pt", "net-1.pt",
                                                      "optimizer-1.pt", "state.json"}));
}

TEST(RunCheckpointTest, OneRunAtATimePerDirectory) {
  testing::TempDir dir;
  auto first = RunCheckpoint::Open(dir.path(), "t_");
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = RunCheckpoint::Open(dir.path(), "t_");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another training process"), std::string::npos);
  first->reset();
  EXPECT_TRUE(RunCheckpoint::Open(dir.path(), "t_").ok());
  EXPECT_TRUE(RunCheckpoint::Open("", "t_").ok());  // private directories never collide
  EXPECT_TRUE(RunCheckpoint::Open("", "t_").ok());
}

TEST(RunCheckpointTest, StateNamingAMissingFileIsDataLoss) {
  testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(CommitFirstEpoch(dir.path()));
  std::filesystem::remove(dir.Sub("optimizer-1.pt"));
  auto ck = RunCheckpoint::Open(dir.path(), "t_");
  EXPECT_EQ(ck.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(ck.status().message().find("optimizer-1.pt"), std::string::npos) << ck.status();
}

// Checkpoint directories written before the "layout" key: last.pt, optimizer.pt and best.pt.
TEST(RunCheckpointTest, ALegacyDirectoryIsContinued) {
  testing::TempDir dir;
  std::ofstream(dir.Sub("state.json")) << R"({"next_epoch":3,"best_epoch":1,"best_valid_ndcg@10":0.5,"bad_epochs":1})";
  std::ofstream(dir.Sub("last.pt")) << "net3";
  std::ofstream(dir.Sub("optimizer.pt")) << "opt3";
  std::ofstream(dir.Sub("best.pt")) << "net2";
  auto ck = RunCheckpoint::Open(dir.path(), "t_");
  ASSERT_TRUE(ck.ok()) << ck.status();
  ASSERT_TRUE((*ck)->resumed());
  EXPECT_EQ(Contents((*ck)->network_path()), "net3");
  EXPECT_EQ(Contents((*ck)->optimizer_path()), "opt3");
  EXPECT_EQ(Contents((*ck)->best_path()), "net2");
  RunState state = (*ck)->state();
  ASSERT_FALSE(RecordValidation(&state, 3, 0.4));
  ASSERT_TRUE((*ck)->Commit(state, false, Writes("net4"), Writes("opt4")).ok());
  EXPECT_EQ(Contents((*ck)->best_path()), "net2");  // the legacy best, carried into the new layout
  EXPECT_EQ(Contents(dir.Sub("best.pt")), "net2");
  EXPECT_EQ(Contents(dir.Sub("last.pt")), "net4");
  EXPECT_EQ(Files(dir.path()), (std::set<std::string>{"LOCK", "best-2.pt", "best.pt", "last.pt", "net-4.pt",
                                                      "optimizer-4.pt", "state.json"}));
}

TEST(RunCheckpointTest, WithoutADirectoryOnlyTheBestNetworkIsKeptAndThenRemoved) {
  std::string private_dir;
  {
    auto ck = RunCheckpoint::Open("", "t_");
    ASSERT_TRUE(ck.ok()) << ck.status();
    private_dir = (*ck)->dir();
    RunState state;
    ASSERT_TRUE(RecordValidation(&state, 0, 0.3));
    ASSERT_TRUE((*ck)->Commit(state, true, Writes("net1"), Fails()).ok());  // no optimizer saved
    ASSERT_FALSE(RecordValidation(&state, 1, 0.2));
    ASSERT_TRUE((*ck)->Commit(state, false, Fails(), Fails()).ok());         // nothing saved
    EXPECT_EQ(Contents((*ck)->best_path()), "net1");
    EXPECT_EQ(Files(private_dir), (std::set<std::string>{"best-1.pt"}));
    EXPECT_TRUE((*ck)->TrimMetricsLog("metrics-of-a-private-run.jsonl").ok());  // nothing to trim
  }
  EXPECT_FALSE(std::filesystem::exists(private_dir));
}

// A run killed between logging an epoch and committing it logs that epoch again when it resumes:
// the uncommitted line is dropped first.
TEST(RunCheckpointTest, MetricsLogIsTrimmedToTheCommittedEpochs) {
  testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(CommitFirstEpoch(dir.Sub("ck")));
  std::ofstream(dir.Sub("metrics.jsonl")) << "{\"epoch\":1,\"valid_ndcg@10\":0.3}\nnot json\n{\"epoch\":2}\n";
  auto ck = RunCheckpoint::Open(dir.Sub("ck"), "t_");
  ASSERT_TRUE(ck.ok()) << ck.status();
  ASSERT_TRUE((*ck)->TrimMetricsLog(dir.Sub("metrics.jsonl")).ok());
  EXPECT_EQ(Contents(dir.Sub("metrics.jsonl")), "{\"epoch\":1,\"valid_ndcg@10\":0.3}\nnot json\n");
  EXPECT_TRUE((*ck)->TrimMetricsLog(dir.Sub("absent.jsonl")).ok());
}

}  // namespace
}  // namespace dgsr::trainer
