// LogCapture: while it lives, spdlog's default logger writes into memory (every level), so a test
// can assert what was logged and how often. The previous default logger and level come back when
// it goes.
#pragma once

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace pp::testing {

class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<Sink>()), previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::vector<std::string> Lines() const { return sink_->Lines(); }

  // Lines that contain `needle`.
  std::size_t Count(std::string_view needle) const {
    std::size_t n = 0;
    for (const auto& line : Lines()) n += line.find(needle) != std::string::npos;
    return n;
  }

  // Waits until at least `n` lines contain `needle`; false when `timeout` passed first.
  bool WaitFor(std::string_view needle, std::size_t n, std::chrono::milliseconds timeout) const {
    return sink_->WaitUntil([&] { return Count(needle) >= n; }, timeout);
  }

 private:
  class Sink : public spdlog::sinks::base_sink<std::mutex> {
   public:
    std::vector<std::string> Lines() {
      std::lock_guard lock(lines_mu_);
      return lines_;
    }
    template <typename Pred>
    bool WaitUntil(Pred pred, std::chrono::milliseconds timeout) {
      const auto deadline = std::chrono::steady_clock::now() + timeout;
      std::unique_lock lock(wait_mu_);
      while (!pred()) {
        if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) return pred();
      }
      return true;
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
      {
        std::lock_guard lock(lines_mu_);
        lines_.emplace_back(msg.payload.data(), msg.payload.size());
      }
      std::lock_guard lock(wait_mu_);
      changed_.notify_all();
    }
    void flush_() override {}

   private:
    std::mutex lines_mu_;
    std::vector<std::string> lines_;  // guarded by lines_mu_
    std::mutex wait_mu_;
    std::condition_variable changed_;
  };

  std::shared_ptr<Sink> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace pp::testing
