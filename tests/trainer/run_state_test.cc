// The training-run bookkeeping shared by the DGSR and SASRec+ trainers (no libtorch).
#include "trainer/run_state.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "tests/testutil/temp_dir.h"

namespace dgsr::trainer {
namespace {

TEST(RunStateTest, RoundTripsAndDrivesEarlyStopping) {
  testing::TempDir dir;
  EXPECT_FALSE(HasRunState(dir.path()));
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
  state.next_epoch = 5;
  ASSERT_TRUE(SaveRunState(dir.path(), state).ok());
  ASSERT_TRUE(HasRunState(dir.path()));
  auto loaded = LoadRunState(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->next_epoch, 5);
  EXPECT_EQ(loaded->best_epoch, 2);
  EXPECT_DOUBLE_EQ(loaded->best_ndcg, 0.31);
  EXPECT_EQ(loaded->bad_epochs, 2);
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
  ASSERT_TRUE(SaveRunState(dir.path(), state).ok());
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

TEST(RunStateTest, CorruptStateIsAClearError) {
  testing::TempDir dir;
  std::ofstream(dir.Sub("state.json")) << "{not json";
  EXPECT_FALSE(LoadRunState(dir.path()).ok());
}

TEST(RunStateTest, CheckpointSaveErrorsSurface) {
  testing::TempDir dir;
  RunState state;
  auto fail = [](const std::string&) { return absl::InternalError("disk full"); };
  auto ok = [](const std::string& path) {
    std::ofstream(path) << "x";
    return absl::OkStatus();
  };
  EXPECT_EQ(SaveCheckpoint(dir.Sub("ck"), state, fail, ok).code(), absl::StatusCode::kInternal);
  EXPECT_FALSE(HasRunState(dir.Sub("ck")));  // state.json is written last
  ASSERT_TRUE(SaveCheckpoint(dir.Sub("ck"), state, ok, ok).ok());
  EXPECT_TRUE(std::filesystem::exists(LastNetworkPath(dir.Sub("ck"))));
  EXPECT_TRUE(std::filesystem::exists(OptimizerPath(dir.Sub("ck"))));
  EXPECT_TRUE(HasRunState(dir.Sub("ck")));
}

}  // namespace
}  // namespace dgsr::trainer
