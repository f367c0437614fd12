// A progress bar for long work (import, training, evaluation), drawn on stderr.
//
//   ProgressBar bar("train epoch 3", total_samples, "samples");
//   for (...) { ...; bar.Add(batch_size); }
//   bar.Finish();
//   -> train epoch 3 [##########          ]  51% 83.1k/163.6k samples 1.72k samples/s ETA 0:47
//
// On a terminal it redraws one line (at most 10 times a second); otherwise (logs, CI) it prints
// a plain line every `non_tty_interval`. Not thread-safe: call from one thread.
#ifndef DGSR_COMMON_PROGRESS_H_
#define DGSR_COMMON_PROGRESS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace dgsr {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit,
              absl::Duration non_tty_interval = absl::Seconds(10));
  ~ProgressBar();  // Calls Finish() if not yet called.

  void Add(int64_t n);
  // Prints the final line with the average rate. Idempotent.
  void Finish();

  // Units per second since construction.
  double Rate() const;
  absl::Duration Elapsed() const;

 private:
  void Draw(bool final_line);

  std::string label_;
  std::string unit_;
  int64_t total_;
  int64_t done_ = 0;
  bool tty_;
  bool finished_ = false;
  absl::Duration non_tty_interval_;
  absl::Time start_;
  absl::Time last_draw_;
};

// "1.72k", "3.4M": short human-readable counts.
std::string HumanCount(double v);

}  // namespace dgsr

#endif  // DGSR_COMMON_PROGRESS_H_
