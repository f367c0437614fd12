// common/json: numbers survive a Dump/Parse round trip exactly (run state and configs rely on it).
#include "common/json.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace dgsr {
namespace {

TEST(JsonTest, NumbersRoundTripExactlyAndStayShort) {
  const double values[] = {0.4782969, 0.00123456789, 1.0 / 3.0, 0.1 + 0.2, 1e-4, 123456789.125, -2.5e-300, 0.5};
  JsonObject j;
  for (size_t k = 0; k < std::size(values); ++k) j.Set(absl::StrCat("v", k), values[k]);
  j.Set("count", int64_t{1234567890123});
  auto back = JsonObject::Parse(j.Dump());
  ASSERT_TRUE(back.ok()) << back.status();
  for (size_t k = 0; k < std::size(values); ++k) {
    EXPECT_EQ(*back->GetNumber(absl::StrCat("v", k)), values[k]) << j.Dump();
  }
  EXPECT_EQ(*back->GetNumber("count"), 1234567890123.0);
  // Shortest form: what a person would write, not 17 digits.
  EXPECT_NE(j.Dump().find("\"v0\":0.4782969,"), std::string::npos) << j.Dump();
  EXPECT_NE(j.Dump().find("\"v7\":0.5"), std::string::npos) << j.Dump();
}

TEST(JsonTest, NonFiniteNumbersBecomeNull) {
  JsonObject j;
  j.Set("nan", std::nan("")).Set("inf", std::numeric_limits<double>::infinity());
  EXPECT_EQ(j.Dump(), "{\"nan\":null,\"inf\":null}");
}

}  // namespace
}  // namespace dgsr
