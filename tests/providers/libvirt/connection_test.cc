// A libvirtd that accepts connections and never answers must cost each provider call at most its
// own deadline: virConnectOpen has no timeout of its own, so the provider opens on a thread of its
// own and callers wait for it within their OpContext.
#include "providers/libvirt/connection.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "common/base/handle.h"
#include "providers/libvirt/libvirt_provider.h"

namespace pp::providers::libvirt {
namespace {

// As the daemon does (AdaptorMain): libvirt's RPC client writes with plain write(2), and these tests'
// stand-in libvirtd closes its end at any moment; EPIPE must be an error, not a fatal SIGPIPE.
[[maybe_unused]] const bool kSigpipeIgnored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A unix socket that accepts and reads whatever a client sends, and never replies: a hung libvirtd
// as a client sees it. Close() (or the destructor) hangs up on every client, the ones still in
// the listen backlog included, and stops.
class SilentServer {
 public:
  SilentServer() {
    char tmpl[] = "/tmp/pp-silent-libvirtd.XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/libvirt-sock";
    listener_.Reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    ok_ = listener_ &&
          ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
          ::listen(listener_.get(), 16) == 0;
    int pipe_fds[2];
    ok_ = ok_ && ::pipe2(pipe_fds, O_CLOEXEC) == 0;
    if (ok_) {
      wake_read_.Reset(pipe_fds[0]);
      wake_write_.Reset(pipe_fds[1]);
      thread_ = std::thread([this] { Serve(); });
    }
  }
  ~SilentServer() {
    Close();
    std::filesystem::remove_all(dir_);
  }

  bool ok() const { return ok_; }
  std::string uri() const { return "qemu+unix:///system?socket=" + path_; }

  // Waits (bounded) until `n` clients have connected.
  bool AwaitAccepted(int n, std::chrono::milliseconds within) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, within, [&] { return accepted_ >= n; });
  }

  void Close() {
    if (!thread_.joinable()) return;
    const char byte = 1;
    (void)!::write(wake_write_.get(), &byte, 1);
    thread_.join();
    listener_.Reset();  // resets connections still in the backlog, so that no client waits on
  }

 private:
  void Serve() {
    std::vector<ScopedFd> clients;
    for (;;) {
      std::vector<pollfd> fds{{wake_read_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
      for (const auto& c : clients) fds.push_back({c.get(), POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0) continue;
      if (fds[0].revents != 0) return;  // hangs up on every client as `clients` goes
      if (fds[1].revents & POLLIN) {
        clients.emplace_back(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        std::lock_guard lock(mu_);
        ++accepted_;
        cv_.notify_all();
      }
      for (std::size_t i = 2; i < fds.size(); ++i) {
        char buf[4096];
        if ((fds[i].revents & (POLLIN | POLLHUP)) && ::read(fds[i].fd, buf, sizeof(buf)) <= 0) {
          clients[i - 2].Reset();  // the client hung up; polled as -1 (ignored) from now on
        }
      }
    }
  }

  std::string dir_, path_;
  ScopedFd listener_, wake_read_, wake_write_;
  bool ok_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  int accepted_ = 0;
  std::thread thread_;
};

class HungLibvirtdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    LibvirtConfig config;
    config.uri = server_.uri();
    config.domain_type = "qemu";  // no KVM probe: only libvirt's own calls are under test
    auto provider = MakeLibvirtProvider(config);
    ASSERT_TRUE(provider.has_value()) << provider.error().message;
    provider_ = std::move(*provider);
  }
  void TearDown() override {
    server_.Close();  // ends the provider's open that the server never answered
    provider_.reset();
  }

  // Runs `call` with a deadline of `budget` and expects it back, failing with `want`, within
  // `within` (default: budget + slack). A call that hangs is reported, then released by closing
  // the server.
  void ExpectReturnsInTime(const char* what, std::function<Result<void>(const OpContext&)> call,
                           std::chrono::milliseconds budget, Code want, std::stop_token stop = {},
                           std::chrono::milliseconds within = 0ms) {
    if (within == 0ms) within = budget + kSlack;
    const auto start = Clock::now();
    auto done = std::async(std::launch::async, [&, stop] {
      return call(OpContext{start + budget, stop});
    });
    if (done.wait_for(within) != std::future_status::ready) {
      ADD_FAILURE() << what << " still blocked " << within.count()
                    << " ms after it started, with a deadline of " << budget.count() << " ms";
      server_.Close();
    }
    const Result<void> result = done.get();
    ASSERT_FALSE(result.has_value()) << what;
    EXPECT_EQ(result.error().code, want) << what << ": " << result.error().message;
  }

  static constexpr std::chrono::milliseconds kSlack = 1500ms;
  SilentServer server_;
  std::unique_ptr<Provider> provider_;
};

TEST_F(HungLibvirtdTest, EveryCallReturnsWithinItsDeadline) {
  ASSERT_TRUE(server_.AwaitAccepted(1, 10s));  // the provider's warm-up is connecting
  InstanceSpec spec;
  spec.name = "podvm-hung-12345678";
  spec.owner = {"node-a", "12345678abcdef"};
  ExpectReturnsInTime(
      "CreateInstance",
      [&](const OpContext& ctx) -> Result<void> {
        auto r = provider_->CreateInstance(spec, ctx);
        if (!r) return std::unexpected(r.error());
        return {};
      },
      1000ms, Code::kDeadlineExceeded);
  ExpectReturnsInTime(
      "DeleteInstance",
      [&](const OpContext& ctx) {
        return provider_->DeleteInstance("6f1c2b9e-1d0a-4c55-9d7e-2b8f4f5a7c31", ctx);
      },
      1000ms, Code::kDeadlineExceeded);
  ExpectReturnsInTime(
      "ListInstances",
      [&](const OpContext& ctx) -> Result<void> {
        auto r = provider_->ListInstances("node-a", ctx);
        if (!r) return std::unexpected(r.error());
        return {};
      },
      1000ms, Code::kDeadlineExceeded);
  ExpectReturnsInTime(
      "Verify", [&](const OpContext& ctx) { return provider_->Verify(ctx); }, 1000ms,
      Code::kDeadlineExceeded);
  ExpectReturnsInTime(
      "DeleteLeftovers",
      [&](const OpContext& ctx) { return provider_->DeleteLeftovers(spec.name, spec.owner, ctx); },
      1000ms, Code::kDeadlineExceeded);
}

TEST_F(HungLibvirtdTest, ASecondCallerIsNotBlockedBehindTheFirstsOpen) {
  ASSERT_TRUE(server_.AwaitAccepted(1, 10s));
  // The first caller has all the time in the world and is stopped by a StopVM-like request.
  std::stop_source first_stop;
  const auto first_start = Clock::now();
  auto first = std::async(std::launch::async, [&] {
    return provider_->ListInstances("node-a",
                                    OpContext{first_start + 600s, first_stop.get_token()});
  });
  // The second has half a second: it must not queue behind the first.
  ExpectReturnsInTime(
      "a second ListInstances",
      [&](const OpContext& ctx) -> Result<void> {
        auto r = provider_->ListInstances("node-a", ctx);
        if (!r) return std::unexpected(r.error());
        return {};
      },
      500ms, Code::kDeadlineExceeded);
  EXPECT_NE(first.wait_for(0ms), std::future_status::ready)
      << "the first caller gave up on its own";

  first_stop.request_stop();
  if (first.wait_for(kSlack) != std::future_status::ready) {
    ADD_FAILURE() << "the first caller ignored its stop request";
    server_.Close();
  }
  auto result = first.get();
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, Code::kCancelled) << result.error().message;
}

TEST_F(HungLibvirtdTest, AStopAlreadyRequestedIsHonouredAtOnce) {
  std::stop_source stop;
  stop.request_stop();
  ExpectReturnsInTime(
      "Verify, stopped", [&](const OpContext& ctx) { return provider_->Verify(ctx); }, 60000ms,
      Code::kCancelled, stop.get_token(), kSlack);
}

TEST(SharedConnectionTest, AFailedOpenIsUnavailableAndRetriedByTheNextCaller) {
  auto conn = SharedConnection::Create("qemu+unix:///system?socket=/nonexistent/pp-no-libvirtd");
  ASSERT_TRUE(conn.has_value());
  for (int i = 0; i < 2; ++i) {
    auto c = (*conn)->Get(OpContext{Clock::now() + 10s, {}});
    ASSERT_FALSE(c.has_value());
    EXPECT_EQ(c.error().code, Code::kUnavailable) << c.error().message;
  }
}

}  // namespace
}  // namespace pp::providers::libvirt
