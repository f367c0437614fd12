// A Clock for tests: time moves only when the test says so; SleepFor advances it instantly.
#ifndef DGSR_TESTS_TESTUTIL_FAKE_CLOCK_H_
#define DGSR_TESTS_TESTUTIL_FAKE_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace dgsr::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::UnixEpoch() + absl::Hours(24 * 365 * 50))
      : now_(start) {}
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void SleepFor(absl::Duration d) override { Advance(d); }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace dgsr::testing

#endif  // DGSR_TESTS_TESTUTIL_FAKE_CLOCK_H_
