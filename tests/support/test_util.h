// Helpers shared by the unit tests: a temp dir, an io_context on a background thread, running a
// coroutine to completion, and a blocking raw-frame socket for bytes our client would never send.
#pragma once

#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <unistd.h>

#include <fcntl.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <vector>
#include <filesystem>
#include <future>
#include <string>
#include <thread>

#include "common/base/asio.h"
#include "common/ttrpc/frame.h"

namespace pp::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pp-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// An io_context running on its own thread for the lifetime of the object.
class IoThread {
 public:
  IoThread() : guard_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~IoThread() {
    guard_.reset();
    io_.stop();
  }
  asio::io_context& io() { return io_; }
  asio::any_io_executor executor() { return io_.get_executor(); }

  // Runs `aw` on the io thread and waits for its result.
  template <typename T>
  T Run(asio::awaitable<T> aw) {
    return asio::co_spawn(io_, std::move(aw), asio::use_future).get();
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::jthread thread_;
};

// Polls `done` (every millisecond) until it holds or `timeout` passes; false on timeout. For
// conditions nothing signals, such as a counter on another thread.
template <typename Pred>
bool WaitUntil(Pred done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// A blocking connection (unix socket or TCP) that reads and writes raw ttrpc frames.
class RawConnection {
 public:
  explicit RawConnection(const std::string& path) : RawConnection(AF_UNIX) {
    connected_ = ConnectUnix(path);
  }
  // An unconnected socket of `family` (AF_UNIX, AF_INET, AF_INET6); ConnectUnix/ConnectTcp later.
  // Connecting needs no new descriptor, so a test can make the socket before using them all up.
  explicit RawConnection(int family) { fd_ = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0); }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool connected() const { return connected_; }

  bool ConnectUnix(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    return connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  bool ConnectTcp(const asio::ip::tcp::endpoint& endpoint) {
    const auto size = static_cast<socklen_t>(endpoint.size());
    return connected_ = ::connect(fd_, endpoint.data(), size) == 0;
  }
  // Receive() gives up (as if the peer closed) after `timeout` without data.
  void SetReceiveTimeout(std::chrono::milliseconds timeout) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>(timeout.count() % 1000 * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  // Whether the peer closed the connection (EOF or reset) within the receive timeout.
  bool PeerClosed() {
    char byte;
    const ssize_t n = ::recv(fd_, &byte, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // The next frame as (header, data); header.type == 0 when the peer closed.
  std::pair<ttrpc::FrameHeader, std::string> Receive() {
    for (;;) {
      if (auto frame = reader_.Next()) return {frame->header, std::string(frame->data)};
      auto region = reader_.Prepare();
      const ssize_t n = ::read(fd_, region.data(), region.size());
      if (n <= 0) return {};
      reader_.Commit(static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  ttrpc::FrameReader reader_;
};

// A child process started with a pipe on its stdout; killed (SIGKILL) and reaped by pid when the
// object goes, if it has not been waited for.
class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> argv) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out[1]);
    stdout_ = out[0];
  }
  ~ChildProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stdout_ >= 0) ::close(stdout_);
  }
  // Reads stdout until a line equal to `line` (true) or EOF (false).
  bool WaitForLine(const std::string& line) {
    std::string buffer;
    char c;
    while (::read(stdout_, &c, 1) == 1) {
      if (c != '\n') {
        buffer.push_back(c);
        continue;
      }
      if (buffer == line) return true;
      buffer.clear();
    }
    return false;
  }
  // Sends `signal` and waits; returns the exit status (or -1).
  int SignalAndWait(int signal) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int stdout_ = -1;
};

}  // namespace pp::testing
