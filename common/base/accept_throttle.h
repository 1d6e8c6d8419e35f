// What an accept loop does when accept(2) fails, in one place for every listener of the tree.
//
// accept(2) fails for three kinds of reasons (Linux accept(2), "Error handling"):
//  - the process or the system is out of a resource: EMFILE, ENFILE, ENOBUFS, ENOMEM. The pending
//    connection stays queued and the listening socket stays readable, so accepting again at once
//    spins a core and floods the log. The loop must pause (capped backoff) and try again; it
//    recovers by itself once descriptors or memory are freed.
//  - the connection died before we took it: ECONNABORTED, EPROTO, EPERM (firewall), and the network
//    errors Linux passes on (ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP,
//    ENETUNREACH), plus EINTR and EAGAIN. Nothing to wait for: accept the next one.
//  - anything else (EBADF, EINVAL, ENOTSOCK, ...): the listener itself is unusable; stop.
//
// AcceptThrottle turns an accept error into that decision and keeps the log bounded: the first
// failure is logged at once, then at most one line per interval (default one minute) with the
// number of failures it stands for, and one line when accepting works again.
//
//   pp::AcceptThrottle throttle("ttrpc: accept on unix:/run/peerpod/hypervisor.sock");
//   for (;;) {
//     auto [ec, socket] = co_await acceptor.async_accept(pp::kAwaitTuple);
//     if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
//     if (ec) {
//       auto pause = throttle.OnError(ec);
//       if (!pause) break;                                       // listener unusable
//       if (pause->count() > 0) co_await <steady_timer for *pause>;
//       continue;
//     }
//     throttle.OnSuccess();
//     ...
//   }
//
// Threading: not thread-safe; one AcceptThrottle per accept loop (one coroutine).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <system_error>

#include "common/base/backoff.h"

namespace pp {

enum class AcceptFailure {
  kRetryNow,  // the connection died in the queue (or a signal): accept the next one at once
  kBackOff,   // out of descriptors or memory: pause, then accept again
  kFatal,     // the listener is unusable: stop accepting
};

AcceptFailure ClassifyAcceptError(const std::error_code& ec);

// Bounded reporting of an event that may repeat without end: the first occurrence is reported at
// once, later ones at most once per `interval`, each report carrying the occurrences since the
// last.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RateLimiter(Clock::duration interval) : interval_(interval) {}

  // Records one occurrence at `now`. Returns how many occurrences to report now (this one and those
  // suppressed since the last report), or 0 to stay silent.
  std::size_t Record(Clock::time_point now);

  // Occurrences recorded but not reported yet.
  std::size_t Suppressed() const { return suppressed_; }

 private:
  Clock::duration interval_;
  std::optional<Clock::time_point> last_report_;
  std::size_t suppressed_ = 0;
};

class AcceptThrottle {
 public:
  struct Options {
    std::chrono::milliseconds initial_pause{10};
    std::chrono::milliseconds max_pause{1000};
    RateLimiter::Clock::duration log_interval = std::chrono::minutes(1);
  };

  // `what` starts every log line, e.g. "ttrpc: accept on unix:/run/peerpod/hypervisor.sock".
  explicit AcceptThrottle(std::string what) : AcceptThrottle(std::move(what), Options{}) {}
  AcceptThrottle(std::string what, Options options);

  // After a failed accept: logs within the bounds above and returns the pause before the next
  // accept (zero: at once), or nullopt when the loop should stop (the error is logged then).
  std::optional<std::chrono::milliseconds> OnError(const std::error_code& ec);

  // After a successful accept: the pause starts over from `initial_pause`; if accepting had been
  // failing, a line (rate-limited like the failures) says it recovered after how many failures.
  void OnSuccess();

  // Failures since the last success.
  std::size_t ConsecutiveFailures() const { return consecutive_; }

 private:
  std::string what_;
  Backoff backoff_;
  RateLimiter log_;            // failure lines
  RateLimiter recovered_log_;  // "accepting again" lines
  std::size_t consecutive_ = 0;
};

}  // namespace pp
