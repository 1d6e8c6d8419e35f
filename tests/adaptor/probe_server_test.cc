// ProbeServer over real loopback sockets: every path's status and body, startup latching, readiness
// reasons, 404/405/400/431, the read timeout, the connection bound and Shutdown.
#include "adaptor/probe_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/base/handle.h"

namespace pp::adaptor {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A blocking loopback client with a receive timeout, so that no test can hang.
ScopedFd Connect(unsigned short port, std::chrono::milliseconds recv_timeout = 5000ms) {
  ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_GE(fd.get(), 0);
  timeval tv{};
  tv.tv_sec = recv_timeout.count() / 1000;
  tv.tv_usec = (recv_timeout.count() % 1000) * 1000;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0)
      << std::strerror(errno);
  return fd;
}

void Send(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ASSERT_GT(n, 0) << std::strerror(errno);
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Everything until the server closes (or the receive timeout: then "<timeout>" is appended).
std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return out;
    if (n < 0) return out + (errno == EAGAIN || errno == EWOULDBLOCK ? "<timeout>" : "<error>");
    out.append(buf, static_cast<std::size_t>(n));
  }
}

struct Reply {
  int status = 0;
  std::string head;
  std::string body;
};

Reply Parse(const std::string& raw) {
  Reply r;
  const std::size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return r;
  r.status = std::stoi(raw.substr(9, 3));
  r.head = raw.substr(0, end + 2);
  r.body = raw.substr(end + 4);
  return r;
}

class ProbeServerTest : public ::testing::Test {
 protected:
  void Start(ProbeServer::Options options = {}) {
    options.address = "127.0.0.1";
    options.port = 0;
    auto server = ProbeServer::Start(io_.get_executor(), options, [this] { return metrics_text_; });
    ASSERT_TRUE(server.has_value()) << server.error().ToString();
    server_ = *server;
    thread_ = std::jthread([this] { io_.run(); });
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    work_.reset();
    io_.stop();
  }

  Reply Get(std::string_view request) {
    ScopedFd fd = Connect(server_->port());
    Send(fd.get(), request);
    return Parse(ReadAll(fd.get()));
  }
  Reply Get(const std::string& method, const std::string& path) {
    return Get(method + " " + path +
               " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: kube-probe/1.29\r\n\r\n");
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::string metrics_text_ = "# TYPE peerpods_x gauge\npeerpods_x 1\n";
  std::shared_ptr<ProbeServer> server_;
  std::jthread thread_;
};

TEST_F(ProbeServerTest, LivezAnswersOk) {
  Start();
  const Reply r = Get("GET", "/livez");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
  EXPECT_NE(r.head.find("Connection: close\r\n"), std::string::npos) << r.head;
  EXPECT_NE(r.head.find("Content-Length: 3\r\n"), std::string::npos) << r.head;
}

TEST_F(ProbeServerTest, StartupIs503UntilStartedThenLatched) {
  Start();
  Reply r = Get("GET", "/startup");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "starting\n");
  server_->SetStarted();
  EXPECT_EQ(Get("GET", "/startup").status, 200);
  // Readiness lost later does not take startup back.
  server_->SetReady(false, "provider unreachable");
  r = Get("GET", "/startup");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
}

TEST_F(ProbeServerTest, ReadyzCarriesTheReasonOnOneLine) {
  Start();
  Reply r = Get("GET", "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "starting\n");
  server_->SetReady(true, "");
  r = Get("GET", "/readyz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
  server_->SetReady(false, "provider not verified: libvirt: connect failed\r\nsecond line");
  r = Get("GET", "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "provider not verified: libvirt: connect failed  second line\n");
  EXPECT_NE(r.head.find("Content-Type: text/plain; charset=utf-8\r\n"), std::string::npos)
      << r.head;
  server_->SetReady(false, "");
  EXPECT_EQ(Get("GET", "/readyz").body, "not ready\n");
  // The query is not part of the path.
  server_->SetReady(true, "ok");
  EXPECT_EQ(Get("GET", "/readyz?verbose=1").status, 200);
}

TEST_F(ProbeServerTest, MetricsServesTheSourceAsExposition004) {
  Start();
  const Reply r = Get("GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, metrics_text_);
  EXPECT_NE(r.head.find("Content-Type: text/plain; version=0.0.4\r\n"), std::string::npos)
      << r.head;
}

TEST_F(ProbeServerTest, UnknownPathIs404OtherMethodIs405) {
  Start();
  EXPECT_EQ(Get("GET", "/").status, 404);
  EXPECT_EQ(Get("GET", "/healthz").status, 404);
  EXPECT_EQ(Get("POST", "/nope").status, 404);
  for (const char* method : {"POST", "HEAD", "PUT", "DELETE"}) {
    const Reply r = Get(method, "/readyz");
    EXPECT_EQ(r.status, 405) << method;
    EXPECT_NE(r.head.find("Allow: GET\r\n"), std::string::npos) << r.head;
  }
}

TEST_F(ProbeServerTest, AbsoluteFormAndHttp10AndSplitWrites) {
  Start();
  EXPECT_EQ(Get("GET http://127.0.0.1:8000/livez HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
  EXPECT_EQ(Get("GET /livez HTTP/1.0\n\n").status, 200);
  ScopedFd fd = Connect(server_->port());
  Send(fd.get(), "GET /li");
  std::this_thread::sleep_for(20ms);  // two segments, not a race: either order of arrival must work
  Send(fd.get(), "vez HTTP/1.1\r\nHost: x\r\n");
  Send(fd.get(), "\r\n");
  EXPECT_EQ(Parse(ReadAll(fd.get())).status, 200);
}

TEST_F(ProbeServerTest, MalformedRequestIs400) {
  Start();
  EXPECT_EQ(Get("hello\r\n\r\n").status, 400);
  EXPECT_EQ(Get("GET /livez HTTP/2.0\r\n\r\n").status, 400);
  EXPECT_EQ(Get("GET /livez HTTP/1.1\r\nno colon here\r\n\r\n").status, 400);
}

TEST_F(ProbeServerTest, OversizedHeadIsRefusedWith431) {
  Start();
  std::string request =
      "GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n";
  const Reply r = Get(request);
  EXPECT_EQ(r.status, 431);
  // Just under the bound is served.
  request = "GET /livez HTTP/1.1\r\nX-Big: " + std::string(8000, 'a') + "\r\n\r\n";
  EXPECT_EQ(Get(request).status, 200);
}

TEST_F(ProbeServerTest, SilentClientIsDroppedAfterTheTimeoutWithoutBlockingOthers) {
  ProbeServer::Options options;
  options.read_timeout = 1500ms;
  Start(options);
  ScopedFd silent = Connect(server_->port(), 10000ms);
  const auto opened = Clock::now();
  // Others are served while it waits, and it is still open then.
  const Reply r = Get("GET", "/livez");
  EXPECT_EQ(r.status, 200);
  EXPECT_LT(Clock::now() - opened, 1500ms);
  char byte;
  EXPECT_EQ(::recv(silent.get(), &byte, 1, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  // Then the server closes it: EOF, no answer, after the timeout (and well before the client's).
  EXPECT_EQ(ReadAll(silent.get()), "");
  const auto waited = Clock::now() - opened;
  EXPECT_GE(waited, 1400ms);
  EXPECT_LT(waited, 6000ms);
}

TEST_F(ProbeServerTest, ConnectionsPastTheBoundAreClosedAtAccept) {
  ProbeServer::Options options;
  options.read_timeout = 1000ms;
  options.max_connections = 2;
  Start(options);
  ScopedFd a = Connect(server_->port());
  ScopedFd b = Connect(server_->port());
  const auto deadline = Clock::now() + 5s;
  while (server_->open_connections() < 2 && Clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  ASSERT_EQ(server_->open_connections(), 2u);
  ScopedFd c = Connect(server_->port());
  // The server may have closed it already (then send fails): either way it is never answered.
  (void)::send(c.get(), "GET /livez HTTP/1.1\r\n\r\n", 23, MSG_NOSIGNAL);
  const std::string refused = ReadAll(c.get());
  EXPECT_TRUE(refused.empty() || refused == "<error>") << refused;  // closed, never answered
  // Once the silent ones time out, requests are served again.
  EXPECT_EQ(ReadAll(a.get()), "");
  EXPECT_EQ(ReadAll(b.get()), "");
  while (server_->open_connections() > 0 && Clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(Get("GET", "/livez").status, 200);
}

TEST_F(ProbeServerTest, ShutdownClosesListenerAndConnections) {
  Start();
  ScopedFd idle = Connect(server_->port());
  const auto deadline = Clock::now() + 5s;
  while (server_->open_connections() < 1 && Clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  const auto before = Clock::now();
  server_->Shutdown();
  EXPECT_EQ(ReadAll(idle.get()), "");
  EXPECT_LT(Clock::now() - before, 2s);  // not the 5 s read timeout
  // Nobody listens any more.
  ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool refused = false;
  for (auto until = Clock::now() + 5s; Clock::now() < until && !refused;) {
    refused = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0;
    if (!refused) {
      fd = ScopedFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      std::this_thread::sleep_for(10ms);
    }
  }
  EXPECT_TRUE(refused);
}

TEST(ProbeServerStartTest, BusyPortIsUnavailableAndNamesTheFlag) {
  asio::io_context io;
  ProbeServer::Options options;
  options.address = "127.0.0.1";
  options.port = 0;
  auto first = ProbeServer::Start(io.get_executor(), options, nullptr);
  ASSERT_TRUE(first.has_value());
  options.port = (*first)->port();
  auto second = ProbeServer::Start(io.get_executor(), options, nullptr);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, Code::kUnavailable);
  EXPECT_NE(second.error().message.find("-probe-port"), std::string::npos)
      << second.error().message;
  options.address = "not-an-address";
  EXPECT_EQ(ProbeServer::Start(io.get_executor(), options, nullptr).error().code,
            Code::kInvalidArgument);
  (*first)->Shutdown();
  io.run_for(100ms);
}

TEST(ProbeServerStartTest, EveryAddressServesIpv4) {
  asio::io_context io;
  ProbeServer::Options options;  // address "": [::] dual-stack, or 0.0.0.0
  options.port = 0;
  auto server = ProbeServer::Start(io.get_executor(), options, nullptr);
  ASSERT_TRUE(server.has_value()) << server.error().ToString();
  std::jthread t([&io] { io.run_for(5s); });
  ScopedFd fd = Connect((*server)->port());
  Send(fd.get(), "GET /livez HTTP/1.1\r\n\r\n");
  EXPECT_EQ(Parse(ReadAll(fd.get())).status, 200);
  (*server)->Shutdown();
}

TEST(ProbeResponseTest, MetricsSourceThatThrowsIs500) {
  asio::io_context io;
  ProbeServer::Options options;
  options.address = "127.0.0.1";
  options.port = 0;
  auto server = ProbeServer::Start(io.get_executor(), options, []() -> std::string {
    throw std::runtime_error("registry broken");
  });
  ASSERT_TRUE(server.has_value());
  const ProbeResponse r = (*server)->Respond("GET", "/metrics");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "metrics unavailable: registry broken\n");
  (*server)->Shutdown();
  io.run_for(100ms);
}

}  // namespace
}  // namespace pp::adaptor
