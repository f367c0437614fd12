#include "common/progress.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace dgsr {

std::string HumanCount(double v) {
  if (v >= 1e9) return absl::StrFormat("%.2fG", v / 1e9);
  if (v >= 1e6) return absl::StrFormat("%.2fM", v / 1e6);
  if (v >= 1e3) return absl::StrFormat("%.2fk", v / 1e3);
  return absl::StrFormat("%.0f", v);
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit,
                         absl::Duration non_tty_interval)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      tty_(::isatty(STDERR_FILENO) != 0),
      non_tty_interval_(non_tty_interval),
      start_(absl::Now()),
      last_draw_(absl::InfinitePast()) {}

ProgressBar::~ProgressBar() { Finish(); }

double ProgressBar::Rate() const {
  double secs = absl::ToDoubleSeconds(absl::Now() - start_);
  return secs > 0 ? static_cast<double>(done_) / secs : 0.0;
}

absl::Duration ProgressBar::Elapsed() const { return absl::Now() - start_; }

void ProgressBar::Add(int64_t n) {
  done_ += n;
  absl::Time now = absl::Now();
  absl::Duration every = tty_ ? absl::Milliseconds(100) : non_tty_interval_;
  if (now - last_draw_ >= every) {
    last_draw_ = now;
    Draw(false);
  }
}

void ProgressBar::Finish() {
  if (finished_) return;
  finished_ = true;
  Draw(true);
}

void ProgressBar::Draw(bool final_line) {
  double rate = Rate();
  double frac = total_ > 0 ? std::min(1.0, static_cast<double>(done_) / total_) : 0.0;
  constexpr int kWidth = 24;
  int filled = static_cast<int>(frac * kWidth);
  std::string bar = std::string(filled, '#') + std::string(kWidth - filled, ' ');
  std::string eta;
  if (final_line) {
    eta = absl::StrFormat("in %s", absl::FormatDuration(absl::Trunc(Elapsed(), absl::Milliseconds(100))));
  } else if (rate > 0 && total_ > 0) {
    int64_t secs = static_cast<int64_t>((total_ - done_) / rate);
    eta = absl::StrFormat("ETA %d:%02d", secs / 60, secs % 60);
  } else {
    eta = "ETA ?";
  }
  std::string line = absl::StrFormat("%s [%s] %3.0f%% %s/%s %s %s %s/s %s", label_, bar, frac * 100,
                                     HumanCount(done_), HumanCount(total_), unit_, HumanCount(rate),
                                     unit_, eta);
  if (tty_) {
    std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace dgsr
