// pp::TimedMutex: a mutex whose lock can wait until a deadline, for "one caller fetches, the others
// wait within their own deadline" (credentials, instance-type tables, image sizes).
//
// Why not std::timed_mutex: libstdc++ implements its try_lock_until with pthread_mutex_clocklock,
// which GCC 12's ThreadSanitizer does not intercept, so under TSan every unlock looks like the
// unlock of a mutex nobody holds and the data it guards looks unguarded. This one is a std::mutex
// and a condition variable, which TSan understands. Meets the Lockable requirements
// (std::unique_lock, std::lock_guard). Holders must not block forever: waiters wait only until
// their deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace pp {

class TimedMutex {
 public:
  void lock() {
    std::unique_lock guard(mu_);
    cv_.wait(guard, [this] { return !locked_; });
    locked_ = true;
  }
  bool try_lock() {
    std::lock_guard guard(mu_);
    if (locked_) return false;
    locked_ = true;
    return true;
  }
  template <typename Clock, typename Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    std::unique_lock guard(mu_);
    if (!cv_.wait_until(guard, deadline, [this] { return !locked_; })) return false;
    locked_ = true;
    return true;
  }
  template <typename Rep, typename Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    return try_lock_until(std::chrono::steady_clock::now() + timeout);
  }
  void unlock() {
    {
      std::lock_guard guard(mu_);
      locked_ = false;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool locked_ = false;
};

}  // namespace pp
