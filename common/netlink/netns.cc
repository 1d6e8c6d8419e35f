#include "common/netlink/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace pp::netlink {

Result<ScopedFd> OpenNetns(const std::string& path) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::unexpected(ErrnoError("netns " + path, errno));
  // A bind-mounted namespace (ip netns add) lives on nsfs; /proc/<pid>/ns/net is an nsfs magic
  // link too. Anything else (a regular file, a directory) cannot be setns'd into.
  struct statfs fs {};
  if (::fstatfs(fd.get(), &fs) != 0) return std::unexpected(ErrnoError("statfs " + path, errno));
  if (fs.f_type != NSFS_MAGIC)
    return Fail(Code::kInvalidArgument, "netns ", path, " is not a namespace file");
  return fd;
}

Result<bool> SameNetns(const std::string& a, const std::string& b) {
  struct stat ids[2] {};
  for (int i = 0; i < 2; ++i) {
    const std::string& path = i == 0 ? a : b;
    auto fd = OpenNetns(path);
    if (!fd) return std::unexpected(fd.error());
    if (::fstat(fd->get(), &ids[i]) != 0) return std::unexpected(ErrnoError("stat " + path, errno));
  }
  // A namespace is identified by its nsfs device and inode (namespaces(7), "/proc/[pid]/ns/").
  return ids[0].st_dev == ids[1].st_dev && ids[0].st_ino == ids[1].st_ino;
}

Result<bool> IsCurrentNetns(const std::string& path) {
  return SameNetns(path, "/proc/thread-self/ns/net");
}

Result<NetnsGuard> NetnsGuard::Enter(const std::string& path) {
  auto fd = OpenNetns(path);
  if (!fd) return std::unexpected(fd.error());
  return Enter(fd->get());
}

Result<NetnsGuard> NetnsGuard::Enter(int netns_fd) {
  // thread-self, not self: the namespace of this thread is what setns changes and must restore.
  ScopedFd original(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!original) return std::unexpected(ErrnoError("open /proc/thread-self/ns/net", errno));
  if (::setns(netns_fd, CLONE_NEWNET) != 0) return std::unexpected(ErrnoError("setns", errno));
  return NetnsGuard(std::move(original));
}

NetnsGuard::~NetnsGuard() {
  if (!original_) return;
  if (::setns(original_.get(), CLONE_NEWNET) != 0) {
    std::perror("pp::netlink: cannot return to the original network namespace");
    std::abort();
  }
}

}  // namespace pp::netlink
