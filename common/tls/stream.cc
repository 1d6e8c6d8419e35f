#include "common/tls/stream.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <asio/experimental/awaitable_operators.hpp>

#include "common/tls/openssl.h"

namespace pp::tls {
namespace {

// One TLS record carries at most 16 KiB of plaintext: small buffers are gathered up to that.
constexpr std::size_t kRecordPayload = 16 * 1024;

std::string EndpointString(const asio::ip::tcp::socket& socket) {
  std::error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "an unconnected socket";
  const auto address = endpoint.address();
  const std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return host + ":" + std::to_string(endpoint.port());
}

unsigned long OpenSslCode(const std::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return 0;
  return static_cast<unsigned long>(static_cast<unsigned int>(ec.value()));
}

// Reasons under which the handshake failed because a certificate was refused, by us or by the peer
// (its alerts arrive as SSL_R_*_ALERT_* reasons).
bool IsCertificateReason(unsigned long err) {
  if (err == 0 || ERR_GET_LIB(err) != ERR_LIB_SSL) return false;
  switch (ERR_GET_REASON(err)) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return true;
    default:
      return false;
  }
}

Error HandshakeError(const std::error_code& ec, TlsStream& stream, const std::string& peer) {
  const unsigned long err = OpenSslCode(ec);
  const long verify_result = SSL_get_verify_result(stream.native().native_handle());
  std::string reason;
  if (const char* text = err != 0 ? ERR_reason_error_string(err) : nullptr) {
    reason = text;
  } else if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    reason = "the peer closed the connection";
  } else {
    reason = ec.message();
  }
  if (verify_result != X509_V_OK) {
    reason += " (";
    reason += X509_verify_cert_error_string(verify_result);
    reason += ")";
  }
  ERR_clear_error();
  const Code code = verify_result != X509_V_OK || IsCertificateReason(err) ? Code::kUnauthenticated
                                                                           : Code::kUnavailable;
  return Error{code, "tls handshake with " + peer + " failed: " + reason};
}

asio::awaitable<Result<std::unique_ptr<ttrpc::Stream>>> Handshake(
    std::unique_ptr<TlsStream> stream, TlsStream::Native::handshake_type type, std::string peer,
    std::chrono::milliseconds timeout) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(stream->get_executor(), timeout);
  // Whichever ends first cancels the other, and both have ended when this returns.
  auto outcome = co_await (stream->native().async_handshake(type, pp::kAwaitTuple) ||
                           timer.async_wait(pp::kAwaitTuple));
  if (outcome.index() == 1) {
    co_return Fail(Code::kUnavailable, "tls handshake with ", peer, " timed out after ",
                   std::to_string(timeout.count()), " ms");
  }
  const auto [ec] = std::get<0>(outcome);
  if (ec) co_return std::unexpected(HandshakeError(ec, *stream, peer));
  co_return std::unique_ptr<ttrpc::Stream>(std::move(stream));
}

}  // namespace

TlsStream::TlsStream(asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> context,
                     std::string description)
    : context_(std::move(context)),
      stream_(std::move(socket), *context_),
      ssl_(stream_.native_handle()),
      description_(std::move(description)) {}

TlsStream::~TlsStream() = default;

asio::any_io_executor TlsStream::get_executor() { return stream_.get_executor(); }

asio::awaitable<std::pair<std::error_code, std::size_t>> TlsStream::ReadSome(
    asio::mutable_buffer buffer) {
  auto [ec, n] = co_await stream_.async_read_some(buffer, pp::kAwaitTuple);
  co_return std::pair{ec, n};
}

asio::awaitable<std::error_code> TlsStream::Write(const std::vector<asio::const_buffer>& buffers) {
  struct InFlight {
    bool& flag;
    explicit InFlight(bool& f) : flag(f) { flag = true; }
    ~InFlight() { flag = false; }
  } in_flight(write_in_flight_);

  // The SSL stream turns each buffer into records of its own, so a 10-byte frame header would be a
  // record (and a syscall) by itself. Small buffers are copied together; the head of a large one
  // tops up the pending record and its rest goes out without a copy.
  coalesced_.clear();
  for (asio::const_buffer buffer : buffers) {
    if (coalesced_.size() + buffer.size() < kRecordPayload) {
      const auto* bytes = static_cast<const unsigned char*>(buffer.data());
      coalesced_.insert(coalesced_.end(), bytes, bytes + buffer.size());
      continue;
    }
    if (!coalesced_.empty()) {
      const std::size_t take = kRecordPayload - coalesced_.size();
      const auto* bytes = static_cast<const unsigned char*>(buffer.data());
      coalesced_.insert(coalesced_.end(), bytes, bytes + take);
      buffer += take;
      auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(coalesced_), pp::kAwaitTuple);
      (void)n;
      if (ec) co_return ec;
      coalesced_.clear();
    }
    if (buffer.size() > 0) {
      auto [ec, n] = co_await asio::async_write(stream_, buffer, pp::kAwaitTuple);
      (void)n;
      if (ec) co_return ec;
    }
  }
  if (!coalesced_.empty()) {
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(coalesced_), pp::kAwaitTuple);
    (void)n;
    if (ec) co_return ec;
  }
  co_return std::error_code{};
}

void TlsStream::Close() {
  if (closed_) return;
  closed_ = true;
  auto& socket = stream_.next_layer();
  std::error_code ignored;
  socket.cancel(ignored);
  if (!write_in_flight_ && socket.is_open()) {
    // With the socket non-blocking, the synchronous shutdown writes close_notify if the socket
    // takes it at once and then gives up (would_block) instead of waiting for the peer's. Never
    // while a write is in flight: close_notify must not land in the middle of a record.
    socket.non_blocking(true, ignored);
    stream_.shutdown(ignored);
  }
  socket.close(ignored);
  ERR_clear_error();
}

std::string TlsStream::Describe() const { return description_; }

std::string TlsStream::Protocol() const { return SSL_get_version(ssl_); }

std::string TlsStream::Cipher() const {
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_);
  return cipher ? SSL_CIPHER_get_name(cipher) : "";
}

asio::awaitable<Result<std::unique_ptr<ttrpc::Stream>>> TlsAccept(
    asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> context,
    std::chrono::milliseconds handshake_timeout) {
  std::string peer = EndpointString(socket);
  auto stream = std::make_unique<TlsStream>(std::move(socket), std::move(context), "tls:" + peer);
  co_return co_await Handshake(std::move(stream), TlsStream::Native::server, std::move(peer),
                               handshake_timeout);
}

asio::awaitable<Result<std::unique_ptr<ttrpc::Stream>>> TlsConnect(
    asio::ip::tcp::socket connected, std::shared_ptr<asio::ssl::context> context,
    std::string server_name, std::chrono::milliseconds handshake_timeout) {
  std::string peer = EndpointString(connected);
  // A leading '.' would make OpenSSL accept any subdomain.
  if (server_name.empty() || server_name.front() == '.') {
    co_return Fail(Code::kInvalidArgument, "tls: server name \"", server_name, "\" for ", peer,
                   " is not a host name");
  }
  auto stream =
      std::make_unique<TlsStream>(std::move(connected), std::move(context), "tls:" + peer);
  SSL* ssl = stream->native().native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  ERR_clear_error();
  std::error_code not_an_address;
  (void)asio::ip::make_address(server_name, not_an_address);
  bool named = false;
  if (!not_an_address) {
    named = X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str()) == 1;  // no SNI for addresses
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    named = SSL_set1_host(ssl, server_name.c_str()) == 1 &&
            SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     server_name.data()) == 1;
  }
  if (!named)
    co_return std::unexpected(
        OpenSslError(Code::kInvalidArgument, "tls: server name " + server_name));
  co_return co_await Handshake(std::move(stream), TlsStream::Native::client, std::move(peer),
                               handshake_timeout);
}

}  // namespace pp::tls
