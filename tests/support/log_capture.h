// LogCapture: while it lives, every log line of the process is also kept in memory (every level),
// so a test can assert what was logged and how often.
//
// spdlog's default logger is installed once, when the test binary starts and before any thread
// does: a logger that routes each line to the LogCaptures alive and, from info up, to stderr as
// before. Replacing the default logger while a server under test logs from another thread would
// be a data race (ThreadSanitizer reports it), so captures attach to that router instead.
#pragma once

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace pp::testing {

class LogCapture;

// The sink of the test binary's default logger.
class LogRouter final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  static LogRouter& Get() {
    static const std::shared_ptr<LogRouter> router = [] {
      auto r = std::make_shared<LogRouter>();
      auto logger = std::make_shared<spdlog::logger>("", r);
      logger->set_level(spdlog::level::trace);
      spdlog::set_default_logger(std::move(logger));
      return r;
    }();
    return *router;
  }
  void Attach(LogCapture* capture) {
    std::lock_guard lock(captures_mu_);
    captures_.push_back(capture);
  }
  void Detach(LogCapture* capture) {
    std::lock_guard lock(captures_mu_);
    std::erase(captures_, capture);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override { std::fflush(stderr); }

 private:
  std::mutex captures_mu_;
  std::vector<LogCapture*> captures_;  // guarded by captures_mu_
};

// Installed at start-up, before any test makes a thread.
inline const bool kLogRouterInstalled = (LogRouter::Get(), true);

class LogCapture {
 public:
  LogCapture() { LogRouter::Get().Attach(this); }
  ~LogCapture() { LogRouter::Get().Detach(this); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::vector<std::string> Lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }

  // Lines that contain `needle`.
  std::size_t Count(std::string_view needle) const {
    std::size_t n = 0;
    for (const auto& line : Lines()) n += line.find(needle) != std::string::npos;
    return n;
  }

  // Waits until at least `n` lines contain `needle`; false when `timeout` passed first.
  bool WaitFor(std::string_view needle, std::size_t n, std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(mu_);
    auto count = [&] {
      std::size_t c = 0;
      for (const auto& line : lines_) c += line.find(needle) != std::string::npos;
      return c;
    };
    while (count() < n) {
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) return count() >= n;
    }
    return true;
  }

  void Add(std::string line) {
    {
      std::lock_guard lock(mu_);
      lines_.push_back(std::move(line));
    }
    changed_.notify_all();
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::vector<std::string> lines_;  // guarded by mu_
};

inline void LogRouter::sink_it_(const spdlog::details::log_msg& msg) {
  {
    std::lock_guard lock(captures_mu_);
    for (auto* capture : captures_) capture->Add(std::string(msg.payload.data(), msg.payload.size()));
  }
  if (msg.level < spdlog::level::info) return;
  spdlog::memory_buf_t formatted;
  formatter_->format(msg, formatted);
  std::fwrite(formatted.data(), 1, formatted.size(), stderr);
}

}  // namespace pp::testing
