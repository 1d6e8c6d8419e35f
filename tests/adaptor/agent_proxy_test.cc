#include "adaptor/agent_proxy.h"

#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "common/ttrpc/codec.h"
#include "common/ttrpc/server.h"
#include "tests/support/echo_service.h"
#include "tests/support/fd_exhaustion.h"
#include "tests/support/log_capture.h"
#include "tests/support/test_util.h"
#include "ttrpctest.pb.h"

namespace pp::adaptor {
namespace {

using namespace std::chrono_literals;

TEST(AgentProxyTest, ConnectionsToPodVMsHaveALivenessBound) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket socket(io);
  socket.connect(acceptor.local_endpoint());
  ASSERT_TRUE(SetPeerLivenessBound(socket, 30s));
  const int fd = socket.native_handle();
  int value = 0;
  unsigned timeout = 0;
  socklen_t len = sizeof value;
  ASSERT_EQ(::getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &value, &len), 0);
  EXPECT_EQ(value, 1);
  len = sizeof timeout;
  ASSERT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, &len), 0);
  EXPECT_EQ(timeout, 30000u);
  len = sizeof value;
  ASSERT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &value, &len), 0);
  EXPECT_EQ(value, 10);
}

// In a child in a network namespace of its own: a connection whose peer vanishes without FIN or
// RST (the namespace's only link goes down with a request in flight) ends with an error within
// about the bound. Without it, Linux retransmits for about 15 minutes (tcp_retries2).
// Returns the child's exit code: 0 ended within `wait_ms`, 3 still hanging, 1 or 2 set-up failed.
int VanishingPeerChild(bool bounded, int wait_ms) {
  if (::unshare(CLONE_NEWNET) != 0) return 1;
  const int ctl = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  auto set_lo = [&](bool up) {
    if (::ioctl(ctl, SIOCGIFFLAGS, &ifr) != 0) return false;
    ifr.ifr_flags = static_cast<short>(up ? (ifr.ifr_flags | IFF_UP) : (ifr.ifr_flags & ~IFF_UP));
    return ::ioctl(ctl, SIOCSIFFLAGS, &ifr) == 0;
  };
  if (!set_lo(true)) return 1;
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return 2;
  }
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 2;
  const int server = ::accept(listener, nullptr, nullptr);
  if (server < 0) return 2;
  if (bounded && !SetPeerLivenessBound(client, 3s)) return 2;
  if (!set_lo(false)) return 2;  // the "VM" is gone: no FIN, no RST, nothing answers
  const char request[64] = {};
  if (::write(client, request, sizeof request) != static_cast<ssize_t>(sizeof request)) return 2;
  pollfd p{client, POLLIN, 0};
  const int ready = ::poll(&p, 1, wait_ms);  // the call waiting for its reply
  return ready > 0 ? 0 : 3;
}

int RunInChild(bool bounded, int wait_ms) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(VanishingPeerChild(bounded, wait_ms));
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(AgentProxyTest, AVanishedPodVMFailsCallsWithinTheBound) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace";
  // The control: without the bound the same connection still hangs after 8 s.
  ASSERT_EQ(RunInChild(false, 8000), 3) << "the set-up does not make a silent peer";
  EXPECT_EQ(RunInChild(true, 20000), 0) << "a connection to a vanished peer still hangs after 20 s";
}

// After running out of descriptors the proxy accepts again once they are free: a shim connection
// made then reaches the agent. The old loop ended at the first EMFILE, and the sandbox had no agent
// path until the adaptor restarted.
TEST(AgentProxyTest, KeepsAcceptingAfterRunningOutOfDescriptors) {
  pp::testing::TempDir dir;
  pp::testing::IoThread io;
  ttrpc::Server agent(io.executor(), {});  // stands where the forwarder would be: an echo service
  pp::testing::RegisterEchoService(agent);
  auto endpoint = agent.ListenTcp({asio::ip::make_address("127.0.0.1"), 0});
  ASSERT_TRUE(endpoint);
  AgentProxyOptions options;
  options.socket_path = dir / "agent.ttrpc";
  options.host = "127.0.0.1";
  options.port = endpoint->port();
  auto strand = asio::make_strand(io.executor());
  auto proxy = AgentProxy::Start(strand, options);
  ASSERT_TRUE(proxy);

  pp::testing::LogCapture logs;
  pp::testing::RawConnection early(AF_UNIX);  // made now: connecting needs no new descriptor
  {
    pp::testing::FdExhaustion exhausted;
    ASSERT_TRUE(exhausted.exhausted());
    ASSERT_TRUE(early.ConnectUnix(options.socket_path));
    ASSERT_TRUE(logs.WaitFor("Too many open files", 1, 5s));
  }
  pp::testing::RawConnection later(options.socket_path);
  ASSERT_TRUE(later.connected());
  later.SetReceiveTimeout(10s);
  ::ttrpc::Request request;
  request.set_service("ttrpctest.Test");
  request.set_method("Echo");
  ttrpctest::EchoRequest echo;
  echo.set_payload("after EMFILE");
  request.set_payload(echo.SerializeAsString());
  ASSERT_TRUE(later.Send(ttrpc::EncodeRequestFrame(1, request)));
  auto [header, data] = later.Receive();
  ASSERT_EQ(header.stream_id, 1u) << "no answer through the proxy after EMFILE";
  ::ttrpc::Response response;
  ASSERT_TRUE(ttrpc::ParseResponse(data, response));
  ttrpctest::EchoResponse answer;
  ASSERT_TRUE(answer.ParseFromString(response.payload()));
  EXPECT_EQ(answer.payload(), "after EMFILE");
  asio::post(strand, [p = *proxy] { p->Shutdown(); });
  io.Run(agent.Shutdown(1s));
}

}  // namespace
}  // namespace pp::adaptor
