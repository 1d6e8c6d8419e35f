// Capped exponential backoff with jitter: the one retry schedule of the tree (provider retries,
// redials, accept-loop pauses).
//
// Next() returns a delay drawn uniformly from [d/2, d] ("equal jitter", so a retry never comes
// sooner than half the nominal delay), where d starts at `initial` and doubles up to `max` on every
// call; Reset() starts over after a success. Jitter keeps many clients that failed together from
// retrying together (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015).
// Not thread-safe: one Backoff per retry loop.
#pragma once

#include <algorithm>
#include <chrono>
#include <random>

namespace pp {

class Backoff {
 public:
  using Duration = std::chrono::milliseconds;

  Backoff(Duration initial, Duration max)
      : initial_(std::max(initial, Duration(1))), max_(std::max(max, initial_)), next_(initial_),
        rng_(std::random_device{}()) {}

  Duration Next() {
    const Duration nominal = next_;
    next_ = std::min(next_ * 2, max_);
    return Duration(std::uniform_int_distribution<Duration::rep>(nominal.count() / 2, nominal.count())(rng_));
  }
  void Reset() { next_ = initial_; }

 private:
  Duration initial_, max_, next_;
  std::mt19937_64 rng_;
};

}  // namespace pp
