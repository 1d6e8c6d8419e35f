// Test-only: network namespaces a test makes for itself (ip netns add, so they have a path under
// /run/netns), the shell commands that stand in for the CNI and the underlay around our code, and
// ICMP/TCP probes run from inside a namespace. Every namespace is deleted in the destructor, which
// takes every device in it along.
#pragma once

#include <string>
#include <vector>

namespace pp::netlink::testing {

// Runs `command` through /bin/sh; returns its exit status (-1 if it did not exit).
int Sh(const std::string& command);
// Runs `command` and returns its stdout.
std::string ShOutput(const std::string& command);

class TestNetns {
 public:
  // "ppnl<pid>-<suffix>": unique per test process; lo is brought up.
  explicit TestNetns(const std::string& suffix);
  ~TestNetns();
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;

  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }
  bool ok() const { return ok_; }

 private:
  std::string name_;
  bool ok_ = false;
};

// One ICMP (or ICMPv6) echo from inside the namespace at `netns_path` to `dst`, sent up to
// `attempts` times; true when the matching reply arrives within 2 s of a request.
bool Ping(const std::string& netns_path, const std::string& dst, int attempts = 3);

// A TCP connection from `client_netns` to a listener on `server_ip` (port 0) in `server_netns` that
// echoes everything back; true when all `bytes` come back intact within 10 s.
bool TcpEcho(const std::string& server_netns, const std::string& server_ip,
             const std::string& client_netns, size_t bytes);

}  // namespace pp::netlink::testing
