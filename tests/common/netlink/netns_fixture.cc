#include "tests/common/netlink/netns_fixture.h"

#include <arpa/inet.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/base/handle.h"
#include "common/netlink/netns.h"

namespace pp::netlink::testing {

int Sh(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ShOutput(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  ::pclose(pipe);
  return out;
}

TestNetns::TestNetns(const std::string& suffix)
    : name_("ppnl" + std::to_string(::getpid()) + "-" + suffix) {
  ok_ = Sh("ip netns add " + name_) == 0 && Sh("ip -n " + name_ + " link set lo up") == 0;
}

TestNetns::~TestNetns() { (void)Sh("ip netns del " + name_ + " 2>/dev/null"); }

namespace {

// A socket created inside `netns_path`: it stays in that namespace whatever thread uses it.
ScopedFd SocketIn(const std::string& netns_path, int domain, int type, int protocol) {
  auto guard = NetnsGuard::Enter(netns_path);
  if (!guard) return ScopedFd();
  return ScopedFd(::socket(domain, type | SOCK_CLOEXEC, protocol));
}

// RFC 1071 internet checksum.
uint16_t Checksum(const uint8_t* data, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (len % 2 != 0) sum += static_cast<uint32_t>(data[len - 1] << 8);
  while (sum >> 16 != 0) sum = (sum & 0xffff) + (sum >> 16);
  return htons(static_cast<uint16_t>(~sum));
}

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  int family = 0;
};

SockAddr Parse(const std::string& ip, uint16_t port) {
  SockAddr a;
  if (ip.find(':') != std::string::npos) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    ::inet_pton(AF_INET6, ip.c_str(), &s6->sin6_addr);
    a.len = sizeof *s6;
    a.family = AF_INET6;
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&a.storage);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &s4->sin_addr);
    a.len = sizeof *s4;
    a.family = AF_INET;
  }
  return a;
}

void SetTimeouts(int fd, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

bool Ping(const std::string& netns_path, const std::string& dst, int attempts) {
  const SockAddr to = Parse(dst, 0);
  const bool v6 = to.family == AF_INET6;
  ScopedFd fd =
      SocketIn(netns_path, to.family, SOCK_RAW, v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP});
  if (!fd) return false;
  static uint16_t next_id = 0x5000;
  const uint16_t id = next_id++;
  for (uint16_t seq = 1; seq <= attempts; ++seq) {
    std::array<uint8_t, 64> packet{};
    packet[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
    packet[4] = static_cast<uint8_t>(id >> 8);
    packet[5] = static_cast<uint8_t>(id);
    packet[6] = static_cast<uint8_t>(seq >> 8);
    packet[7] = static_cast<uint8_t>(seq);
    // ICMPv6 raw sockets have the kernel fill the checksum (RFC 3542 section 3.1); ICMP does not.
    if (!v6) {
      const uint16_t sum = Checksum(packet.data(), packet.size());
      std::memcpy(&packet[2], &sum, 2);
    }
    if (::sendto(fd.get(), packet.data(), packet.size(), 0,
                 reinterpret_cast<const sockaddr*>(&to.storage), to.len) < 0)
      return false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      std::array<uint8_t, 2048> reply{};
      const ssize_t n = ::recv(fd.get(), reply.data(), reply.size(), 0);
      if (n <= 0) continue;
      size_t off = 0;
      if (!v6)
        off = static_cast<size_t>(reply[0] & 0x0f) * 4;  // a raw IPv4 socket sees the IP header
      if (static_cast<size_t>(n) < off + 8) continue;
      const uint8_t* icmp = reply.data() + off;
      const uint8_t want = v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY;
      if (icmp[0] == want && (icmp[4] << 8 | icmp[5]) == id) return true;
    }
  }
  return false;
}

bool TcpEcho(const std::string& server_netns, const std::string& server_ip,
             const std::string& client_netns, size_t bytes) {
  SockAddr addr = Parse(server_ip, 0);
  ScopedFd listener = SocketIn(server_netns, addr.family, SOCK_STREAM, 0);
  ScopedFd client = SocketIn(client_netns, addr.family, SOCK_STREAM, 0);
  if (!listener || !client) return false;
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr.storage), addr.len) != 0)
    return false;
  if (::listen(listener.get(), 1) != 0) return false;
  if (::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr.storage), &addr.len) != 0)
    return false;

  std::thread server([&] {
    pollfd p{listener.get(), POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) return;
    ScopedFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) return;
    SetTimeouts(conn.get(), 10);
    std::array<char, 65536> buf{};
    for (;;) {
      const ssize_t n = ::recv(conn.get(), buf.data(), buf.size(), 0);
      if (n <= 0) break;
      if (::send(conn.get(), buf.data(), static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
    }
  });
  SetTimeouts(client.get(), 10);
  bool ok = ::connect(client.get(), reinterpret_cast<sockaddr*>(&addr.storage), addr.len) == 0;
  std::string sent(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) sent[i] = static_cast<char>('a' + i % 26);
  std::thread writer;
  if (ok) {
    writer = std::thread([&] {
      size_t off = 0;
      while (off < sent.size()) {
        const ssize_t n = ::send(client.get(), sent.data() + off, sent.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      ::shutdown(client.get(), SHUT_WR);
    });
  }
  std::string received;
  while (ok && received.size() < bytes) {
    std::array<char, 65536> buf{};
    const ssize_t n = ::recv(client.get(), buf.data(), buf.size(), 0);
    if (n <= 0) break;
    received.append(buf.data(), static_cast<size_t>(n));
  }
  if (writer.joinable()) writer.join();
  ::shutdown(client.get(), SHUT_RDWR);
  server.join();
  return ok && received == sent;
}

}  // namespace pp::netlink::testing
