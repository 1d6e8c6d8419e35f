#include "bench/podnet/tcp_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "common/base/handle.h"
#include "common/netlink/netns.h"

namespace pp::bench {
namespace {

using Clock = std::chrono::steady_clock;

Result<ScopedFd> TcpSocketIn(const std::string& netns, const std::string& congestion) {
  auto guard = netlink::NetnsGuard::Enter(netns);
  if (!guard) return std::unexpected(guard.error());
  ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return std::unexpected(ErrnoError("socket", errno));
  // An accepted socket inherits the listener's (tcp_create_openreq_child).
  if (!congestion.empty() && ::setsockopt(fd.get(), IPPROTO_TCP, TCP_CONGESTION, congestion.data(),
                                          static_cast<socklen_t>(congestion.size())) != 0)
    return std::unexpected(
        ErrnoError("TCP_CONGESTION " + congestion +
                       " (see /proc/sys/net/ipv4/tcp_available_congestion_control)",
                   errno));
  return fd;
}

void SetInt(int fd, int level, int name, int value) {
  (void)::setsockopt(fd, level, name, &value, sizeof value);
}

// Timeouts so that a path that stops carrying packets fails the run instead of hanging it.
void SetTimeouts(int fd, int seconds) {
  timeval tv{seconds, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// A listener on ip:0 in `netns` and a connected pair (client, accepted server side).
struct Pair {
  ScopedFd client, server;
};

Result<Pair> Connect(const std::string& client_netns, const std::string& server_netns,
                     const std::string& server_ip, const std::string& congestion) {
  auto listener = TcpSocketIn(server_netns, congestion);
  if (!listener) return std::unexpected(listener.error());
  auto client = TcpSocketIn(client_netns, congestion);
  if (!client) return std::unexpected(client.error());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (::inet_pton(AF_INET, server_ip.c_str(), &addr.sin_addr) != 1)
    return Fail(Code::kInvalidArgument, "not an IPv4 address: ", server_ip);
  socklen_t len = sizeof addr;
  if (::bind(listener->get(), reinterpret_cast<sockaddr*>(&addr), len) != 0)
    return std::unexpected(ErrnoError("bind " + server_ip, errno));
  if (::listen(listener->get(), 1) != 0) return std::unexpected(ErrnoError("listen", errno));
  if (::getsockname(listener->get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return std::unexpected(ErrnoError("getsockname", errno));
  SetTimeouts(client->get(), 10);
  // The handshake completes in the kernel's backlog: no thread needed to accept.
  if (::connect(client->get(), reinterpret_cast<sockaddr*>(&addr), len) != 0)
    return std::unexpected(ErrnoError("connect " + server_ip, errno));
  pollfd p{listener->get(), POLLIN, 0};
  if (::poll(&p, 1, 10000) <= 0) return Fail(Code::kDeadlineExceeded, "accept: no connection");
  ScopedFd server(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!server) return std::unexpected(ErrnoError("accept", errno));
  SetTimeouts(server.get(), 10);
  return Pair{*std::move(client), std::move(server)};
}

// User + system time of the whole process so far (getrusage(2)).
double CpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return s(u.ru_utime) + s(u.ru_stime);
}

}  // namespace

Result<Bulk> BulkTransfer(const std::string& sender_netns, const std::string& receiver_netns,
                          const std::string& receiver_ip, double seconds,
                          const std::string& congestion) {
  auto pair = Connect(sender_netns, receiver_netns, receiver_ip, congestion);
  if (!pair) return std::unexpected(pair.error());
  const int sender = pair->client.get(), receiver = pair->server.get();

  const double cpu_before = CpuSeconds();
  uint64_t received = 0;
  Clock::time_point first{}, last{};
  bool receive_failed = false;
  std::thread reader([&] {
    std::vector<char> buf(1 << 18);
    for (;;) {
      const ssize_t n = ::recv(receiver, buf.data(), buf.size(), 0);
      if (n == 0) break;
      if (n < 0) {
        receive_failed = errno != EINTR;
        if (receive_failed) break;
        continue;
      }
      if (received == 0) first = Clock::now();
      received += static_cast<uint64_t>(n);
    }
    last = Clock::now();
  });
  std::vector<char> chunk(1 << 18, 'x');
  bool send_failed = false;
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < until) {
    const ssize_t n = ::send(sender, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n < 0 && errno != EINTR) {
      send_failed = true;
      break;
    }
  }
  ::shutdown(sender, SHUT_WR);
  reader.join();
  const double cpu = CpuSeconds() - cpu_before;
  if (send_failed || receive_failed || received == 0)
    return Fail(Code::kUnavailable, "bulk transfer to ", receiver_ip, " failed after ",
                std::to_string(received), " bytes");
  const double elapsed = std::chrono::duration<double>(last - first).count();
  const double bytes = static_cast<double>(received);
  return Bulk{elapsed > 0 ? bytes * 8 / elapsed / 1e9 : 0, cpu * 1e3 / (bytes / 1e9)};
}

Result<Latency> PingPong(const std::string& client_netns, const std::string& server_netns,
                         const std::string& server_ip, int count, const std::string& congestion,
                         int cpu) {
  auto pair = Connect(client_netns, server_netns, server_ip, congestion);
  if (!pair) return std::unexpected(pair.error());
  const int client = pair->client.get(), server = pair->server.get();
  cpu_set_t original;
  CPU_ZERO(&original);
  if (cpu >= 0) {
    if (::sched_getaffinity(0, sizeof original, &original) != 0)
      return std::unexpected(ErrnoError("sched_getaffinity", errno));
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    // The echo thread inherits this thread's affinity (sched_setaffinity(2), pthread_create(3)).
    if (::sched_setaffinity(0, sizeof one, &one) != 0)
      return std::unexpected(ErrnoError("sched_setaffinity " + std::to_string(cpu), errno));
  }
  SetInt(client, IPPROTO_TCP, TCP_NODELAY, 1);
  SetInt(server, IPPROTO_TCP, TCP_NODELAY, 1);

  std::thread echo([server] {
    char b = 0;
    while (::recv(server, &b, 1, 0) == 1)
      if (::send(server, &b, 1, MSG_NOSIGNAL) != 1) break;
  });
  const int warmup = count / 10;
  std::vector<double> rtts;
  rtts.reserve(static_cast<size_t>(count));
  bool failed = false;
  for (int i = 0; i < warmup + count; ++i) {
    char b = static_cast<char>(i);
    const auto t0 = Clock::now();
    if (::send(client, &b, 1, MSG_NOSIGNAL) != 1 || ::recv(client, &b, 1, 0) != 1) {
      failed = true;
      break;
    }
    if (i >= warmup)
      rtts.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  ::shutdown(client, SHUT_RDWR);
  echo.join();
  if (cpu >= 0) (void)::sched_setaffinity(0, sizeof original, &original);
  if (failed || rtts.empty())
    return Fail(Code::kUnavailable, "ping-pong with ", server_ip, " failed after ",
                std::to_string(rtts.size()), " round trips");
  std::sort(rtts.begin(), rtts.end());
  auto at = [&](double q) {
    return rtts[static_cast<size_t>(q * static_cast<double>(rtts.size() - 1))];
  };
  return Latency{at(0.50), at(0.99)};
}

}  // namespace pp::bench
