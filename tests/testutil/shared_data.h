// Access to the real datasets in ../shared/data (never copied into this repo: their terms forbid
// redistribution). Tests that need them call DGSR_REQUIRE_SHARED_DATA, which skips the test with
// a message naming the missing path; ctest then reports the test as skipped, never as passed.
#ifndef DGSR_TESTS_TESTUTIL_SHARED_DATA_H_
#define DGSR_TESTS_TESTUTIL_SHARED_DATA_H_

#include <cstdlib>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace dgsr::testing {

// $DGSR_SHARED_DATA overrides the directory fixed at configure time.
inline std::string SharedDataDir() {
  const char* env = std::getenv("DGSR_SHARED_DATA");
  return env != nullptr ? std::string(env) : std::string(DGSR_SHARED_DATA_DIR);
}

inline std::string SharedDataPath(const std::string& relative) {
  return SharedDataDir() + "/" + relative;
}

}  // namespace dgsr::testing

#define DGSR_REQUIRE_SHARED_DATA(relative)                                             \
  do {                                                                                \
    const std::string dgsr_path_ = ::dgsr::testing::SharedDataPath(relative);          \
    if (!std::filesystem::exists(dgsr_path_)) {                                       \
      GTEST_SKIP() << "SKIPPED: real dataset not found at " << dgsr_path_             \
                   << " (set DGSR_SHARED_DATA or provide ../shared/data)";            \
    }                                                                                 \
  } while (0)

#endif  // DGSR_TESTS_TESTUTIL_SHARED_DATA_H_
