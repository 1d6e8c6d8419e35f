// FdExhaustion: while it lives, the process has no file descriptor left, so the next accept(2),
// socket(2) or open(2) fails with EMFILE. It lowers the soft RLIMIT_NOFILE to just above the
// descriptors in use and fills every free slot below it with duplicates; Release() (or the
// destructor) closes them and restores the limit. For tests of what servers do when they run out.
#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

namespace pp::testing {

class FdExhaustion {
 public:
  FdExhaustion() {
    if (::getrlimit(RLIMIT_NOFILE, &saved_) != 0) return;
    int highest = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
      highest = std::max(highest, std::stoi(entry.path().filename().string()));
    }
    const int seed = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (seed < 0) return;
    fds_.push_back(seed);
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(highest) + 2;
    if (lowered.rlim_cur > saved_.rlim_cur || ::setrlimit(RLIMIT_NOFILE, &lowered) != 0) return;
    lowered_ = true;
    for (;;) {
      const int fd = ::fcntl(seed, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) {
        exhausted_ = errno == EMFILE;
        break;
      }
      fds_.push_back(fd);
    }
  }
  ~FdExhaustion() { Release(); }
  FdExhaustion(const FdExhaustion&) = delete;
  FdExhaustion& operator=(const FdExhaustion&) = delete;

  // Whether the next descriptor the process asks for fails with EMFILE.
  bool exhausted() const { return exhausted_; }

  void Release() {
    for (const int fd : fds_) ::close(fd);
    fds_.clear();
    if (lowered_) ::setrlimit(RLIMIT_NOFILE, &saved_);
    lowered_ = exhausted_ = false;
  }

 private:
  rlimit saved_{};
  std::vector<int> fds_;
  bool lowered_ = false;
  bool exhausted_ = false;
};

}  // namespace pp::testing
