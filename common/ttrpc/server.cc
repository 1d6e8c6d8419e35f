#include "common/ttrpc/server.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <unordered_map>

#include "common/ttrpc/codec.h"
#include "common/ttrpc/frame.h"
#include "common/ttrpc/frame_writer.h"

namespace pp::ttrpc {
namespace {

constexpr auto kMaxTimeout = std::chrono::hours(24 * 365);
// Replies queued for a peer that does not read before we stop reading its requests.
constexpr std::size_t kMaxQueuedBytes = 16u << 20;

std::string OversizeMessage(std::uint32_t length) {
  return "message length " + std::to_string(length) + " exceed maximum message size of " +
         std::to_string(kMaxDataLength);
}

}  // namespace

std::optional<std::chrono::nanoseconds> CallContext::Remaining() const {
  if (!deadline) return std::nullopt;
  const auto left = *deadline - std::chrono::steady_clock::now();
  return std::max(std::chrono::nanoseconds(0), left);
}

// One accepted stream: a read loop that decodes frames and starts calls, a write loop that sends
// queued replies in batches, and the calls in flight. Everything runs on the stream's executor.
class Server::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server& server, std::unique_ptr<Stream> stream)
      : server_(server),
        stream_(std::move(stream)),
        executor_(stream_->get_executor()),
        writer_(*stream_, [this] { read_signal_.cancel(); }),
        read_signal_(executor_, std::chrono::steady_clock::time_point::max()),
        frame_timer_(executor_) {
    server_.open_connections_.fetch_add(1);
  }

  ~Connection() { server_.ConnectionClosed(); }

  void Start() {
    auto self = shared_from_this();
    asio::co_spawn(executor_, ReadLoop(), [self](std::exception_ptr) {});
    asio::co_spawn(executor_, WriteLoop(), [self](std::exception_ptr) {});
  }

  // Thread-safe: hop onto the connection's executor.
  void BeginDrain() {
    asio::dispatch(executor_, [self = shared_from_this()] {
      self->draining_ = true;
      self->CloseIfIdle();
    });
  }
  void Abort() {
    asio::dispatch(executor_, [self = shared_from_this()] { self->AbortNow(); });
  }

 private:
  struct Call {
    std::optional<asio::steady_timer> timer;  // only for calls with a deadline
    asio::cancellation_signal cancel;
    bool answered = false;
  };

  asio::awaitable<void> ReadLoop() {
    FrameReader reader;
    bool timing = false;  // frame_timer_ runs for the frame in progress
    while (!aborted_) {
      // Buffered frames start one at a time, each only while a call slot is free: the in-flight
      // limit holds per frame, however many frames one read brought.
      bool completed = false;
      while (!Saturated()) {
        auto frame = reader.Next();
        if (!frame) break;
        completed = true;
        OnFrame(*frame);
      }
      if (Saturated()) {
        // Backpressure: a peer that floods us with calls (or never reads replies) waits here. We
        // are the ones not reading then, so the frame timer does not run.
        if (timing) frame_timer_.cancel();
        timing = false;
        co_await read_signal_.async_wait(pp::kAwaitTuple);
        continue;
      }
      if (reader.InFrame() && (!timing || completed)) {
        ArmFrameTimer();
        timing = true;
      } else if (!reader.InFrame() && timing) {
        frame_timer_.cancel();
        timing = false;
      }
      auto region = reader.Prepare();
      auto [ec, n] = co_await stream_->ReadSome(asio::buffer(region.data(), region.size()));
      if (ec) {
        if (ec != asio::error::eof && ec != asio::error::operation_aborted &&
            ec != asio::error::bad_descriptor) {
          spdlog::debug("ttrpc: {}: read: {}", stream_->Describe(), ec.message());
        }
        break;
      }
      reader.Commit(n);
    }
    frame_timer_.cancel();
    // The peer is gone or closed its side: finish the calls in flight, flush, then close.
    draining_ = true;
    CloseIfIdle();
  }

  bool Saturated() const {
    return calls_.size() >= server_.options_.max_inflight_per_connection ||
           writer_.QueuedBytes() >= kMaxQueuedBytes;
  }

  // A frame started arriving: it must be complete within frame_read_timeout.
  void ArmFrameTimer() {
    frame_timer_.expires_after(server_.options_.frame_read_timeout);
    frame_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec || self->aborted_) return;
      spdlog::warn("ttrpc: {}: closing: a frame started arriving and was not complete within {} ms",
                   self->stream_->Describe(), self->server_.options_.frame_read_timeout.count());
      self->AbortNow();
    });
  }

  asio::awaitable<void> WriteLoop() {
    const std::error_code ec = co_await writer_.Run();
    if (ec && ec != asio::error::operation_aborted) {
      spdlog::debug("ttrpc: {}: write: {}", stream_->Describe(), ec.message());
    }
    if (ec) AbortNow();
    stream_->Close();
    read_signal_.cancel();
  }

  void Queue(std::string frame) { writer_.Send(std::move(frame)); }

  void QueueError(std::uint32_t id, Code code, std::string_view message) {
    Queue(EncodeResponseFrame(id, static_cast<std::int32_t>(code), message, {}));
  }

  void OnFrame(const Frame& frame) {
    const std::uint32_t id = frame.header.stream_id;
    if (frame.oversized) {
      QueueError(id, Code::kResourceExhausted, OversizeMessage(frame.header.length));
      return;
    }
    if (frame.header.type != static_cast<std::uint8_t>(MessageType::kRequest)) {
      // ttrpc 1.1 peers ignore other types; we serve only unary calls, so there is no stream for a
      // Data frame to belong to.
      spdlog::debug("ttrpc: {}: ignoring frame type {} on stream {}", stream_->Describe(),
                    frame.header.type, id);
      return;
    }
    if (id % 2 == 0) {
      QueueError(id, Code::kInvalidArgument, "StreamID must be odd for client initiated streams");
      return;
    }
    if (calls_.contains(id)) {
      QueueError(id, Code::kInvalidArgument, "StreamID is already in use");
      return;
    }
    ::ttrpc::Request request;
    if (!ParseRequest(frame.data, request)) {
      QueueError(id, Code::kInvalidArgument, "unmarshal request error: not a ttrpc Request");
      return;
    }
    if (draining_) {
      QueueError(id, Code::kUnavailable, "ttrpc: server shutting down");
      return;
    }
    const auto service = server_.services_.find(request.service());
    if (service == server_.services_.end()) {
      QueueError(id, Code::kUnimplemented, "service " + request.service());
      return;
    }
    const auto method = service->second.find(request.method());
    if (method == service->second.end()) {
      QueueError(id, Code::kUnimplemented, "method " + request.method());
      return;
    }
    StartCall(id, method->second, request);
  }

  void StartCall(std::uint32_t id, const Handler& handler, ::ttrpc::Request& request) {
    auto call = std::make_shared<Call>();
    CallContext ctx;
    ctx.service = std::move(*request.mutable_service());
    ctx.method = std::move(*request.mutable_method());
    ctx.metadata.reserve(static_cast<std::size_t>(request.metadata_size()));
    for (auto& kv : *request.mutable_metadata()) {
      ctx.metadata.emplace_back(std::move(*kv.mutable_key()), std::move(*kv.mutable_value()));
    }
    ctx.peer = stream_->Describe();
    if (request.timeout_nano() != 0) {
      // As in Go, a negative timeout is a deadline already passed.
      const auto timeout =
          std::min<std::chrono::nanoseconds>(std::chrono::nanoseconds(request.timeout_nano()), kMaxTimeout);
      ctx.deadline = std::chrono::steady_clock::now() + timeout;
      call->timer.emplace(executor_, *ctx.deadline);
      call->timer->async_wait([self = shared_from_this(), call, id](std::error_code ec) {
        if (ec || call->answered) return;
        call->answered = true;
        call->cancel.emit(asio::cancellation_type::terminal);
        self->QueueError(id, Code::kDeadlineExceeded, "context deadline exceeded");
      });
    }
    calls_.emplace(id, call);
    server_.inflight_.fetch_add(1);
    asio::co_spawn(
        executor_, Invoke(handler, std::move(ctx), std::move(*request.mutable_payload())),
        asio::bind_cancellation_slot(
            call->cancel.slot(),
            [self = shared_from_this(), call, id](std::exception_ptr e, Result<std::string> r) {
              self->FinishCall(id, *call, e, std::move(r));
            }));
  }

  static asio::awaitable<Result<std::string>> Invoke(const Handler& handler, CallContext ctx,
                                                     std::string payload) {
    co_return co_await handler(ctx, std::move(payload));
  }

  void FinishCall(std::uint32_t id, Call& call, std::exception_ptr e, Result<std::string> result) {
    if (call.timer) call.timer->cancel();
    if (!call.answered) {
      call.answered = true;
      if (e) {
        std::string what = "handler failed";
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          what += std::string(": ") + ex.what();
        } catch (...) {
        }
        QueueError(id, Code::kInternal, what);
      } else if (!result) {
        QueueError(id, result.error().code, result.error().message);
      } else {
        Queue(EncodeResponseFrame(id, 0, {}, *result));
      }
    }
    calls_.erase(id);
    server_.inflight_.fetch_sub(1);
    read_signal_.cancel();
    CloseIfIdle();
  }

  void CloseIfIdle() {
    if (draining_ && calls_.empty() && !closing_) {
      closing_ = true;
      writer_.Finish();  // the write loop flushes what is queued, then closes the stream
    }
  }

  void AbortNow() {
    if (aborted_) return;
    aborted_ = true;
    for (auto& [id, call] : calls_) {
      call->answered = true;
      call->cancel.emit(asio::cancellation_type::terminal);
    }
    writer_.Abort();
    stream_->Close();
    read_signal_.cancel();
    frame_timer_.cancel();
  }

  Server& server_;
  std::unique_ptr<Stream> stream_;
  asio::any_io_executor executor_;
  FrameWriter writer_;
  asio::steady_timer read_signal_;  // wakes the read loop: capacity freed or we are aborting
  asio::steady_timer frame_timer_;  // closes the connection when a frame stalls half-received
  std::unordered_map<std::uint32_t, std::shared_ptr<Call>> calls_;
  bool draining_ = false;  // no new calls; close once the calls in flight finished
  bool closing_ = false;   // flush and close
  bool aborted_ = false;   // closed now, replies dropped
};

Server::Server(asio::any_io_executor executor, Options options)
    : executor_(std::move(executor)),
      strand_(asio::make_strand(executor_)),
      options_(options),
      closed_signal_(strand_, std::chrono::steady_clock::time_point::max()) {}

Server::~Server() = default;

void Server::Register(std::string service, std::string method, Handler handler) {
  services_[std::move(service)][std::move(method)] = std::move(handler);
}

Result<void> Server::ListenUnix(const std::string& path, mode_t mode) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
    if (ec) return std::unexpected(ErrnoError("create directory " + parent.string(), ec.value()));
  }
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Fail(Code::kFailedPrecondition, path, " exists and is not a socket; remove it or choose another path");
    }
    asio::local::stream_protocol::socket probe(executor_);
    probe.connect(asio::local::stream_protocol::endpoint(path), ec);
    if (!ec) return Fail(Code::kFailedPrecondition, "another process is serving ", path);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return std::unexpected(ErrnoError("remove stale socket " + path, errno));
    spdlog::info("replaced stale socket {}", path);
  }
  auto acceptor = std::make_shared<asio::local::stream_protocol::acceptor>(strand_);
  acceptor->open(asio::local::stream_protocol(), ec);
  if (!ec) acceptor->bind(asio::local::stream_protocol::endpoint(path), ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return std::unexpected(ErrnoError("listen on " + path, ec.value()));
  if (::chmod(path.c_str(), mode) != 0 || ::stat(path.c_str(), &st) != 0) {
    return std::unexpected(ErrnoError("chmod " + path, errno));
  }
  socket_files_.emplace_back(path, st.st_ino);
  unix_acceptors_.push_back(acceptor);
  auto pause = std::make_shared<asio::steady_timer>(strand_);
  accept_pauses_.push_back(pause);
  asio::co_spawn(strand_, AcceptUnix(acceptor, std::move(pause)), asio::detached);
  return {};
}

Result<asio::ip::tcp::endpoint> Server::ListenTcp(const asio::ip::tcp::endpoint& endpoint) {
  std::error_code ec;
  auto acceptor = std::make_shared<asio::ip::tcp::acceptor>(strand_);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Fail(Code::kUnavailable, "listen on tcp port ", std::to_string(endpoint.port()), ": ", ec.message());
  auto bound = acceptor->local_endpoint(ec);
  tcp_acceptors_.push_back(acceptor);
  auto pause = std::make_shared<asio::steady_timer>(strand_);
  accept_pauses_.push_back(pause);
  asio::co_spawn(strand_, AcceptTcp(acceptor, std::move(pause)), asio::detached);
  return bound;
}

asio::awaitable<void> Server::AcceptUnix(
    std::shared_ptr<asio::local::stream_protocol::acceptor> acceptor,
    std::shared_ptr<asio::steady_timer> pause) {
  const std::string where = "unix:" + acceptor->local_endpoint().path();
  AcceptThrottle throttle("ttrpc: accept on " + where, options_.accept_throttle);
  while (acceptor->is_open()) {
    auto [ec, socket] = co_await acceptor->async_accept(ConnectionExecutor(), pp::kAwaitTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) break;
      if (!co_await PauseAfterAcceptError(throttle, ec, *pause)) break;
      continue;
    }
    throttle.OnSuccess();
    if (!Admit(where)) continue;  // closes the socket
    Serve(std::make_unique<UnixStream>(std::move(socket), where));
  }
}

asio::awaitable<void> Server::AcceptTcp(std::shared_ptr<asio::ip::tcp::acceptor> acceptor,
                                        std::shared_ptr<asio::steady_timer> pause) {
  std::error_code ignored;
  const auto local = acceptor->local_endpoint(ignored);
  AcceptThrottle throttle(
      "ttrpc: accept on tcp:" + local.address().to_string() + ":" + std::to_string(local.port()),
      options_.accept_throttle);
  while (acceptor->is_open()) {
    auto [ec, socket] = co_await acceptor->async_accept(ConnectionExecutor(), pp::kAwaitTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) break;
      if (!co_await PauseAfterAcceptError(throttle, ec, *pause)) break;
      continue;
    }
    throttle.OnSuccess();
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    const auto peer = socket.remote_endpoint(ignored);
    std::string where = "tcp:" + peer.address().to_string() + ":" + std::to_string(peer.port());
    if (!Admit(where)) continue;  // closes the socket
    Serve(std::make_unique<TcpStream>(std::move(socket), std::move(where)));
  }
}

// Runs on strand_ (refused_log_ is guarded by it).
bool Server::Admit(const std::string& where) {
  const std::size_t open = open_connections_.load();
  if (open < options_.max_connections) return true;
  if (const std::size_t count = refused_log_.Record(RateLimiter::Clock::now()); count > 0) {
    spdlog::warn("ttrpc: refusing {}: {} connections open, the most allowed{}", where, open,
                 count > 1 ? " (" + std::to_string(count) + " refused since the last report)" : "");
  }
  return false;
}

// Runs on strand_. Touches no member after the pause: Shutdown cancels the timer, and the loop then
// only looks at its acceptor (which it co-owns) before it ends.
asio::awaitable<bool> Server::PauseAfterAcceptError(AcceptThrottle& throttle, std::error_code ec,
                                                    asio::steady_timer& pause) {
  const auto delay = throttle.OnError(ec);
  if (!delay) co_return false;
  if (delay->count() > 0) {
    pause.expires_after(*delay);
    co_await pause.async_wait(pp::kAwaitTuple);
  }
  co_return true;
}

asio::any_io_executor Server::ConnectionExecutor() const {
  if (options_.single_threaded) return executor_;
  return asio::make_strand(executor_);
}

void Server::Serve(std::unique_ptr<Stream> stream) {
  auto connection = std::make_shared<Connection>(*this, std::move(stream));
  {
    std::lock_guard lock(connections_mu_);
    std::erase_if(connections_, [](const auto& weak) { return weak.expired(); });
    connections_.push_back(connection);
  }
  connection->Start();
}

void Server::ConnectionClosed() {
  open_connections_.fetch_sub(1);
  asio::post(strand_, [this] { closed_signal_.cancel(); });
}

asio::awaitable<void> Server::Shutdown(std::chrono::milliseconds grace) {
  co_await asio::co_spawn(strand_, DoShutdown(grace), asio::use_awaitable);
}

asio::awaitable<void> Server::DoShutdown(std::chrono::milliseconds grace) {
  if (shutting_down_) co_return;
  shutting_down_ = true;
  std::error_code ignored;
  for (auto& acceptor : unix_acceptors_) acceptor->close(ignored);
  for (auto& acceptor : tcp_acceptors_) acceptor->close(ignored);
  for (auto& pause : accept_pauses_) pause->cancel();
  for (const auto& [path, inode] : socket_files_) {
    struct stat st{};
    if (::lstat(path.c_str(), &st) == 0 && st.st_ino == inode) ::unlink(path.c_str());
  }
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(connections_mu_);
    for (auto& weak : connections_) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live) c->BeginDrain();
  live.clear();  // hold no reference: a connection that finishes must be able to go away

  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (open_connections_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    closed_signal_.expires_at(deadline);
    co_await closed_signal_.async_wait(pp::kAwaitTuple);
  }
  if (open_connections_.load() == 0) co_return;
  spdlog::warn("ttrpc: {} connection(s) still busy after {} ms; closing them", open_connections_.load(),
               grace.count());
  {
    std::lock_guard lock(connections_mu_);
    for (auto& weak : connections_) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live) c->Abort();
  live.clear();
  while (open_connections_.load() > 0) {
    closed_signal_.expires_after(std::chrono::seconds(5));
    co_await closed_signal_.async_wait(pp::kAwaitTuple);
  }
}

}  // namespace pp::ttrpc
