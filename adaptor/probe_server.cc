#include "adaptor/probe_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <exception>
#include <utility>
#include <vector>

#include "adaptor/http_request.h"
#include "common/base/accept_throttle.h"

namespace pp::adaptor {

namespace {

using tcp = asio::ip::tcp;

constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4";
// After an error answer the client may still be sending (the rest of an oversized head, a body).
// Closing a socket with unread bytes sends RST, which can discard our answer at the client before
// it reads it (RFC 9112 section 9.6, "tear-down"): read and drop up to this much, this long, first.
constexpr std::size_t kMaxDrainBytes = 64 * 1024;
constexpr std::chrono::milliseconds kMaxDrainTime{1000};

std::string_view Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

ProbeResponse Text(int status, std::string body) {
  ProbeResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

bool KnownPath(std::string_view path) {
  return path == "/startup" || path == "/readyz" || path == "/livez" || path == "/metrics";
}

}  // namespace

std::string SerializeResponse(const ProbeResponse& response) {
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " +
                    std::string(Reason(response.status)) + "\r\n";
  out += "Content-Type: " + response.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  if (response.allow_get) out += "Allow: GET\r\n";
  out += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
  out += response.body;
  return out;
}

ProbeServer::ProbeServer(asio::any_io_executor executor, Options options, MetricsSource metrics)
    : strand_(asio::make_strand(std::move(executor))),
      options_(std::move(options)),
      metrics_(std::move(metrics)),
      acceptor_(strand_),
      pause_timer_(strand_) {}

ProbeServer::~ProbeServer() {
  std::error_code ignored;
  acceptor_.close(ignored);
}

Result<std::shared_ptr<ProbeServer>> ProbeServer::Start(asio::any_io_executor executor,
                                                        Options options, MetricsSource metrics) {
  std::shared_ptr<ProbeServer> server(
      new ProbeServer(std::move(executor), std::move(options), std::move(metrics)));
  const Options& o = server->options_;
  auto listen = [&](const tcp::endpoint& endpoint, bool dual_stack) {
    std::error_code ec;
    server->acceptor_.open(endpoint.protocol(), ec);
    if (!ec && dual_stack) server->acceptor_.set_option(asio::ip::v6_only(false), ec);
    if (!ec) server->acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) server->acceptor_.bind(endpoint, ec);
    if (!ec) server->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      std::error_code ignored;
      server->acceptor_.close(ignored);
    }
    return ec;
  };
  std::error_code ec;
  std::string where;
  if (o.address.empty()) {
    where = "every address";
    // A node with IPv6 disabled has no AF_INET6 sockets: serve IPv4 alone there.
    ec = listen(tcp::endpoint(tcp::v6(), o.port), true);
    if (ec) ec = listen(tcp::endpoint(tcp::v4(), o.port), false);
  } else {
    where = o.address;
    const auto address = asio::ip::make_address(o.address, ec);
    if (ec)
      return Fail(Code::kInvalidArgument, "probe listener: ", o.address, " is not an IP address");
    ec = listen(tcp::endpoint(address, o.port), false);
  }
  if (ec) {
    return Fail(Code::kUnavailable, "probe listener: listen on ", where, " port ",
                std::to_string(o.port), ": ", ec.message(), "; choose another -probe-port");
  }
  server->port_ = server->acceptor_.local_endpoint(ec).port();
  asio::co_spawn(server->strand_, server->AcceptLoop(), asio::detached);
  return server;
}

void ProbeServer::SetStarted() { started_.store(true); }

void ProbeServer::SetReady(bool ready, std::string reason) {
  std::replace_if(
      reason.begin(), reason.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  if (reason.empty()) reason = "not ready";
  std::lock_guard lock(mu_);
  ready_ = ready;
  not_ready_ = std::move(reason);
}

void ProbeServer::Shutdown() {
  if (shut_down_.exchange(true)) return;
  asio::dispatch(strand_, [self = shared_from_this()] {
    std::error_code ignored;
    self->acceptor_.close(ignored);
    self->pause_timer_.cancel();
    for (auto& weak : self->connections_) {
      if (auto socket = weak.lock()) socket->close(ignored);
    }
    self->connections_.clear();
  });
}

ProbeResponse ProbeServer::Respond(std::string_view method, std::string_view path) const {
  if (!KnownPath(path)) return Text(404, "not found\n");
  if (method != "GET") {
    ProbeResponse response = Text(405, "method not allowed\n");
    response.allow_get = true;
    return response;
  }
  if (path == "/livez") return Text(200, "ok\n");
  if (path == "/startup") return started_.load() ? Text(200, "ok\n") : Text(503, "starting\n");
  if (path == "/readyz") {
    std::lock_guard lock(mu_);
    return ready_ ? Text(200, "ok\n") : Text(503, not_ready_ + "\n");
  }
  // /metrics. A library's exception stops here, at the edge.
  ProbeResponse response;
  response.content_type = kMetricsContentType;
  try {
    if (metrics_) response.body = metrics_();
  } catch (const std::exception& e) {
    return Text(500, std::string("metrics unavailable: ") + e.what() + "\n");
  }
  return response;
}

// Runs on strand_, as every connection does.
asio::awaitable<void> ProbeServer::AcceptLoop() {
  auto self = shared_from_this();
  AcceptThrottle throttle("probe listener: accept on port " + std::to_string(port_));
  while (acceptor_.is_open()) {
    auto [ec, socket] = co_await acceptor_.async_accept(strand_, kAwaitTuple);
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
    if (ec) {
      const auto pause = throttle.OnError(ec);
      if (!pause) break;
      if (pause->count() > 0) {
        pause_timer_.expires_after(*pause);
        (void)co_await pause_timer_.async_wait(kAwaitTuple);
      }
      continue;
    }
    throttle.OnSuccess();
    if (open_.load() >= options_.max_connections) {
      std::error_code ignored;
      socket.close(ignored);  // the kubelet retries a probe; a slow client must not hold them all
      continue;
    }
    open_.fetch_add(1);
    asio::co_spawn(strand_, Serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> ProbeServer::Serve(tcp::socket accepted) {
  auto self = shared_from_this();
  struct Count {
    std::atomic<std::size_t>& open;
    ~Count() { open.fetch_sub(1); }
  } count{open_};
  auto socket = std::make_shared<tcp::socket>(std::move(accepted));
  std::erase_if(connections_, [](const auto& weak) { return weak.expired(); });
  connections_.push_back(socket);
  if (shut_down_.load()) co_return;

  // One timer bounds each phase: it closes the socket when it fires, which ends the pending read or
  // write. Re-arming it cancels the previous wait (its handler then sees operation_aborted).
  asio::steady_timer deadline(strand_);
  auto arm = [&](std::chrono::steady_clock::duration after) {
    deadline.expires_after(after);
    deadline.async_wait([socket](std::error_code ec) {
      std::error_code ignored;
      if (!ec) socket->close(ignored);
    });
  };
  arm(options_.read_timeout);

  std::string head_bytes;
  std::array<char, 2048> chunk{};
  HttpRequestHead head;
  for (;;) {
    auto [ec, n] = co_await socket->async_read_some(asio::buffer(chunk), kAwaitTuple);
    if (ec) co_return;  // the peer left, or the read timeout closed the socket
    const std::size_t room = options_.max_head_bytes - head_bytes.size();
    head_bytes.append(chunk.data(), std::min(n, room));
    head = ParseHttpRequestHead(head_bytes, options_.max_head_bytes);
    if (head.status != HttpRequestHead::Status::kIncomplete) break;
  }

  ProbeResponse response;
  switch (head.status) {
    case HttpRequestHead::Status::kComplete:
      response = Respond(head.method, head.path);
      break;
    case HttpRequestHead::Status::kTooLarge:
      response = Text(431, "request head too large\n");
      break;
    default:
      response = Text(400, "bad request\n");
      break;
  }
  arm(options_.write_timeout);
  const std::string out = SerializeResponse(response);
  auto [write_ec, written] = co_await asio::async_write(*socket, asio::buffer(out), kAwaitTuple);
  (void)written;
  if (write_ec) co_return;
  std::error_code ignored;
  socket->shutdown(tcp::socket::shutdown_send, ignored);
  const bool unread =
      head.status != HttpRequestHead::Status::kComplete || head_bytes.size() > head.head_size;
  if (unread) {
    arm(std::min<std::chrono::steady_clock::duration>(options_.write_timeout, kMaxDrainTime));
    for (std::size_t drained = 0; drained < kMaxDrainBytes;) {
      auto [ec, n] = co_await socket->async_read_some(asio::buffer(chunk), kAwaitTuple);
      if (ec) break;
      drained += n;
    }
  }
  deadline.cancel();
  socket->close(ignored);
}

}  // namespace pp::adaptor
