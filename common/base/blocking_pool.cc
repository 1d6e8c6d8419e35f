#include "common/base/blocking_pool.h"

namespace pp {

BlockingPool::BlockingPool(std::size_t threads, std::size_t max_queued) : max_queued_(max_queued) {
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Worker(); });
}

BlockingPool::~BlockingPool() {
  std::deque<Job> dropped;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  cv_.notify_all();
  const Error stopped{Code::kCancelled, "blocking pool stopped"};
  for (auto& job : dropped) (*job)(&stopped);
  threads_.clear();  // joins
}

std::size_t BlockingPool::Queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

std::size_t BlockingPool::Running() const {
  std::lock_guard lock(mu_);
  return running_;
}

bool BlockingPool::WaitIdle(std::chrono::steady_clock::time_point until) {
  std::unique_lock lock(mu_);
  return idle_.wait_until(lock, until, [this] { return running_ == 0 && queue_.empty(); });
}

void BlockingPool::Submit(Job job) {
  std::unique_lock lock(mu_);
  if (stopping_ || queue_.size() >= max_queued_) {
    const Error refused = stopping_ ? Error{Code::kCancelled, "blocking pool stopped"}
                                    : Error{Code::kResourceExhausted,
                                            "too many blocking operations queued (" +
                                                std::to_string(max_queued_) + "); try again later"};
    lock.unlock();
    (*job)(&refused);
    return;
  }
  queue_.push_back(std::move(job));
  lock.unlock();
  cv_.notify_one();
}

void BlockingPool::Worker() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    (*job)(nullptr);
    job.reset();
    {
      std::lock_guard lock(mu_);
      --running_;
    }
    idle_.notify_all();
  }
}

}  // namespace pp
