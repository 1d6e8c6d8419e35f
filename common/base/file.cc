#include "common/base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

namespace pp {
namespace {

struct FdCloser {
  void operator()(int* fd) const {
    if (*fd >= 0) ::close(*fd);
    delete fd;
  }
};
using UniqueFd = std::unique_ptr<int, FdCloser>;

UniqueFd OpenFd(const std::string& path, int flags, mode_t mode = 0) {
  return UniqueFd(new int(::open(path.c_str(), flags | O_CLOEXEC, mode)));
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
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    auto fd = OpenFd(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (*fd < 0) return std::unexpected(ErrnoError("create " + tmp, errno));
    auto written = WriteAll(*fd, content, tmp);
    if (written && ::fchmod(*fd, mode) != 0)
      written = std::unexpected(ErrnoError("chmod " + tmp, errno));
    if (written && ::fsync(*fd) != 0) written = std::unexpected(ErrnoError("fsync " + tmp, errno));
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
  if (*dir_fd >= 0) ::fsync(*dir_fd);  // best effort: the rename is already visible
  return {};
}

Result<std::string> ReadFile(const std::string& path, std::size_t max_bytes) {
  auto fd = OpenFd(path, O_RDONLY);
  if (*fd < 0) return std::unexpected(ErrnoError("open " + path, errno));
  std::string out;
  char buffer[16 * 1024];
  for (;;) {
    const ssize_t n = ::read(*fd, buffer, sizeof buffer);
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
