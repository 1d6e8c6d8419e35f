// TLS over TCP as a ttrpc::Stream, and the two handshakes that make one.
//
// TlsAccept (forwarder side) and TlsConnect (agent proxy side) run the handshake on an already
// connected TCP socket, bounded by a timeout, and return a Stream that the ttrpc server, client and
// relay use like any other. A failed handshake returns
//   UNAUTHENTICATED  the peer's certificate (or ours, as the peer reports) was refused: missing,
//                    expired, from another CA, wrong name, ...
//   UNAVAILABLE      anything else: I/O errors, a peer that does not speak TLS or shares no
//   protocol
//                    version or cipher with us, or the timeout
// with a message saying which, e.g. "tls handshake with 127.0.0.1:15150 failed: certificate verify
// failed (hostname mismatch)". The socket is closed on failure.
//
// Threading: as for every Stream, use it from one coroutine chain on the socket's executor (a
// strand when the io_context has several threads); run TlsAccept/TlsConnect there too. One ReadSome
// and one Write may be outstanding at the same time.
//
// TLS 1.3 note: a client finishes its handshake before the server has checked the client's
// certificate, so a refused client may see TlsConnect succeed and its first ReadSome fail.
#pragma once

#include <asio/ssl.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "common/base/asio.h"
#include "common/base/error.h"
#include "common/ttrpc/stream.h"

namespace pp::tls {

class TlsStream final : public ttrpc::Stream {
 public:
  using Native = asio::ssl::stream<asio::ip::tcp::socket>;

  // A stream before its handshake; TlsAccept/TlsConnect make and hand out handshaken ones.
  TlsStream(asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> context,
            std::string description);
  ~TlsStream() override;

  asio::any_io_executor get_executor() override;
  asio::awaitable<std::pair<std::error_code, std::size_t>> ReadSome(
      asio::mutable_buffer buffer) override;

  // Small buffers are coalesced so that a frame header and its payload share a TLS record.
  asio::awaitable<std::error_code> Write(const std::vector<asio::const_buffer>& buffers) override;

  // Cancels pending operations, sends close_notify if that can be done without blocking (not while
  // a write is in flight, never waiting for the peer's), and closes the socket. Idempotent.
  void Close() override;

  // "tls:10.0.0.7:15150"
  std::string Describe() const override;

  // "TLSv1.3", ... (after the handshake).
  std::string Protocol() const;
  // OpenSSL's name of the negotiated cipher, e.g. "TLS_AES_256_GCM_SHA384".
  std::string Cipher() const;

  Native& native() { return stream_; }

 private:
  std::shared_ptr<asio::ssl::context> context_;  // outlives stream_
  Native stream_;
  SSL* ssl_;  // owned by stream_
  std::string description_;
  std::vector<unsigned char> coalesced_;
  bool write_in_flight_ = false;
  bool closed_ = false;
};

// Server side: handshakes on an accepted socket, requiring a client certificate the context trusts.
asio::awaitable<Result<std::unique_ptr<ttrpc::Stream>>> TlsAccept(
    asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> context,
    std::chrono::milliseconds handshake_timeout);

// Client side: handshakes on a connected socket. `server_name` (non-empty) must match a DNS SAN of
// the server's certificate (or an IP SAN, when it is an IP address) and is sent as SNI when it is a
// name.
asio::awaitable<Result<std::unique_ptr<ttrpc::Stream>>> TlsConnect(
    asio::ip::tcp::socket connected, std::shared_ptr<asio::ssl::context> context,
    std::string server_name, std::chrono::milliseconds handshake_timeout);

}  // namespace pp::tls
