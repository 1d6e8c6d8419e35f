#include "common/base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <random>

#include "common/base/handle.h"

namespace pp {
namespace {

ScopedFd OpenFd(const std::string& path, int flags, mode_t mode = 0) {
  return ScopedFd(::open(path.c_str(), flags | O_CLOEXEC, mode));
}

// A name no other writer uses: pid and a counter, plus randomness, since a daemon in a container
// is often pid 1 on every start and a crash can leave its temporary file behind.
std::string TempName(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  thread_local std::mt19937 rng(std::random_device{}());
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1)) + "." +
         std::to_string(rng() & 0xffffff);
}

}  // namespace

Result<void> WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(ErrnoError("write " + what, errno));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Result<void> WriteFileAtomic(const std::string& path, std::string_view content, mode_t mode) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  const std::string tmp = TempName(path);
  {
    // O_EXCL|O_NOFOLLOW: never write through a file or symlink someone placed under that name.
    auto fd = OpenFd(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    if (!fd) return std::unexpected(ErrnoError("create " + tmp, errno));
    auto written = WriteAll(fd.get(), content, tmp);
    if (written && ::fchmod(fd.get(), mode) != 0)
      written = std::unexpected(ErrnoError("chmod " + tmp, errno));
    if (written && ::fsync(fd.get()) != 0) written = std::unexpected(ErrnoError("fsync " + tmp, errno));
    if (!written) {
      ::unlink(tmp.c_str());
      return written;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return std::unexpected(ErrnoError("rename " + tmp + " to " + path, err));
  }
  auto dir_fd = OpenFd(dir, O_RDONLY | O_DIRECTORY);
  if (dir_fd) ::fsync(dir_fd.get());  // best effort: the rename is already visible
  return {};
}

Result<std::string> ReadFile(const std::string& path, std::size_t max_bytes) {
  auto fd = OpenFd(path, O_RDONLY);
  if (!fd) return std::unexpected(ErrnoError("open " + path, errno));
  std::string out;
  char buffer[16 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(ErrnoError("read " + path, errno));
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      return Fail(Code::kResourceExhausted, path, " is larger than ", std::to_string(max_bytes),
                  " bytes");
    }
    out.append(buffer, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace pp
