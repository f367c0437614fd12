// The time seam. Code that sleeps or reads the wall clock takes a Clock* (usually from its
// Options) so that tests can substitute a FakeClock (tests/testutil/fake_clock.h).
//
// Thread-safety: implementations must be safe to call from any thread.
#ifndef DGSR_COMMON_CLOCK_H_
#define DGSR_COMMON_CLOCK_H_

#include "absl/time/time.h"

namespace dgsr {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
  virtual void SleepFor(absl::Duration d) = 0;

  // The process-wide real clock. Never null, never deleted.
  static Clock* Real();
};

}  // namespace dgsr

#endif  // DGSR_COMMON_CLOCK_H_
