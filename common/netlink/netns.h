// Network namespaces by path (/run/netns/<name>, /proc/<pid>/ns/net): open one, or switch the
// calling thread into one for a scope.
//
// Threading rule: setns(2) with CLONE_NEWNET changes the namespace of the calling *thread* only
// (man 2 setns; man 7 network_namespaces). A NetnsGuard therefore must be created and destroyed on
// the same thread, and nothing that may hop threads (a coroutine suspension, a task posted to a
// pool) may run while it is alive. A thread started while a guard is alive begins in the guard's
// namespace (clone(2) copies the creator's namespaces), so start none there either. Prefer the
// pattern RouteSocket::OpenIn uses: enter, create the socket, leave at once. A netlink or IP socket
// stays bound to the namespace it was created in, whichever thread later uses it, so the guard's
// scope can be a few lines.
#pragma once

#include <string>

#include "common/base/error.h"
#include "common/base/handle.h"

namespace pp::netlink {

// Opens the namespace file at `path` (O_RDONLY | O_CLOEXEC) and checks that it is a network
// namespace. NOT_FOUND when the path does not exist; INVALID_ARGUMENT when it is not a netns.
Result<ScopedFd> OpenNetns(const std::string& path);

// True when `path` names the calling thread's own network namespace (same nsfs inode), e.g. a pod
// netns path that is really the node's or the VM's own namespace, where a pod tunnel must never go.
Result<bool> IsCurrentNetns(const std::string& path);
// True when the two paths name the same network namespace.
Result<bool> SameNetns(const std::string& a, const std::string& b);

// Moves the calling thread into a network namespace until destruction, then back to the one it
// was in. If switching back fails the thread would keep running in the wrong namespace; the
// destructor aborts the process then rather than let later sockets land there silently.
class NetnsGuard {
 public:
  static Result<NetnsGuard> Enter(const std::string& path);
  static Result<NetnsGuard> Enter(int netns_fd);

  NetnsGuard(NetnsGuard&& other) noexcept = default;
  NetnsGuard& operator=(NetnsGuard&&) = delete;
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;
  ~NetnsGuard();

 private:
  explicit NetnsGuard(ScopedFd original) : original_(std::move(original)) {}
  ScopedFd original_;  // the thread's namespace before Enter; invalid after a move
};

}  // namespace pp::netlink
