#include "common/tls/stream.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>

#include "common/tls/ca.h"
#include "common/tls/context.h"
#include "tests/support/test_util.h"

namespace pp::tls {
namespace {

using namespace std::chrono_literals;
using StreamResult = Result<std::unique_ptr<ttrpc::Stream>>;
using ContextPtr = std::shared_ptr<asio::ssl::context>;

constexpr const char* kServerName = "podvm-test-1234";

asio::awaitable<StreamResult> AcceptOne(asio::ip::tcp::acceptor& acceptor, ContextPtr context,
                                        std::chrono::milliseconds timeout) {
  auto [ec, socket] = co_await acceptor.async_accept(pp::kAwaitTuple);
  if (ec) co_return Fail(Code::kInternal, "accept: ", ec.message());
  co_return co_await TlsAccept(std::move(socket), std::move(context), timeout);
}

asio::awaitable<StreamResult> ConnectOne(asio::ip::tcp::endpoint endpoint, ContextPtr context,
                                         std::string name) {
  asio::ip::tcp::socket socket(co_await asio::this_coro::executor);
  auto [ec] = co_await socket.async_connect(endpoint, pp::kAwaitTuple);
  if (ec) co_return Fail(Code::kInternal, "connect: ", ec.message());
  co_return co_await TlsConnect(std::move(socket), std::move(context), std::move(name), 5s);
}

asio::awaitable<std::string> ReadExactly(ttrpc::Stream& stream, std::size_t size) {
  std::string data(size, '\0');
  std::size_t done = 0;
  while (done < size) {
    auto [ec, n] = co_await stream.ReadSome(asio::buffer(data.data() + done, size - done));
    if (ec) co_return data.substr(0, done);
    done += n;
  }
  co_return data;
}

// Reads until the stream ends and returns how it ended.
asio::awaitable<std::error_code> ReadError(ttrpc::Stream& stream) {
  char buffer[256];
  for (;;) {
    auto [ec, n] = co_await stream.ReadSome(asio::buffer(buffer));
    if (ec) co_return ec;
  }
}

asio::awaitable<std::string> WriteThenRead(ttrpc::Stream& stream,
                                           std::vector<asio::const_buffer> out,
                                           std::size_t in_size) {
  if (auto ec = co_await stream.Write(out)) co_return "write failed: " + ec.message();
  co_return co_await ReadExactly(stream, in_size);
}

asio::awaitable<void> CloseOn(ttrpc::Stream& stream) {
  stream.Close();
  co_return;
}

TlsSettings Settings(std::string_view min_version, std::string_view suites = "") {
  auto settings = ParseTlsSettings(min_version, suites);
  EXPECT_TRUE(settings) << settings.error().ToString();
  return settings.value_or(TlsSettings{});
}

class TlsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = CertificateAuthority::CreateInMemory();
    ASSERT_TRUE(ca) << ca.error().ToString();
    ca_.emplace(std::move(*ca));
    auto server = ca_->IssueServerCert(kServerName);
    auto client = ca_->IssueClientCert("cloud-api-adaptor");
    ASSERT_TRUE(server && client);
    server_material_ = {ca_->CertPem(), server->cert_pem, server->key_pem};
    client_material_ = {ca_->CertPem(), client->cert_pem, client->key_pem};
  }
  void TearDown() override {
    if (server_) io_.Run(CloseOn(*server_));
    if (client_) io_.Run(CloseOn(*client_));
  }

  ContextPtr ServerContext(const TlsSettings& settings = {}) {
    auto ctx = MakeServerContext(server_material_, settings);
    EXPECT_TRUE(ctx) << ctx.error().ToString();
    return ctx.value_or(nullptr);
  }
  ContextPtr ClientContext(const TlsSettings& settings = {}) {
    return ClientContextFor(client_material_, settings);
  }
  ContextPtr ClientContextFor(const Material& material, const TlsSettings& settings = {}) {
    auto ctx = MakeClientContext(material, settings);
    EXPECT_TRUE(ctx) << ctx.error().ToString();
    return ctx.value_or(nullptr);
  }

  // Runs TlsAccept and TlsConnect against each other on loopback; successful streams are kept in
  // server_/client_, the results' errors returned.
  std::pair<Result<void>, Result<void>> Handshake(ContextPtr server_ctx, ContextPtr client_ctx,
                                                  std::string server_name = kServerName) {
    asio::ip::tcp::acceptor acceptor(io_.io(), {asio::ip::make_address("127.0.0.1"), 0});
    endpoint_ = acceptor.local_endpoint();
    auto server =
        asio::co_spawn(io_.io(), AcceptOne(acceptor, std::move(server_ctx), 5s), asio::use_future);
    auto client = asio::co_spawn(
        io_.io(), ConnectOne(endpoint_, std::move(client_ctx), std::move(server_name)),
        asio::use_future);
    auto keep = [](StreamResult result, std::unique_ptr<ttrpc::Stream>& slot) -> Result<void> {
      if (!result) return std::unexpected(result.error());
      slot = std::move(*result);
      return {};
    };
    auto server_result = keep(server.get(), server_);
    auto client_result = keep(client.get(), client_);
    return {server_result, client_result};
  }

  // After a handshake the client saw succeed but the server refused (TLS 1.3): the client's first
  // read fails instead of hanging.
  void ExpectClientRefusedOnRead(const Result<void>& client) {
    if (!client) return;
    ASSERT_TRUE(client_);
    EXPECT_TRUE(io_.Run(ReadError(*client_)));
  }

  TlsStream& Tls(std::unique_ptr<ttrpc::Stream>& stream) {
    return dynamic_cast<TlsStream&>(*stream);
  }

  pp::testing::IoThread io_;
  std::optional<CertificateAuthority> ca_;
  Material server_material_, client_material_;
  asio::ip::tcp::endpoint endpoint_;
  std::unique_ptr<ttrpc::Stream> server_, client_;
};

TEST_F(TlsStreamTest, MutualTlsHandshakeCarriesDataBothWays) {
  auto [server, client] = Handshake(ServerContext(), ClientContext());
  ASSERT_TRUE(server) << server.error().ToString();
  ASSERT_TRUE(client) << client.error().ToString();
  EXPECT_EQ(Tls(server_).Protocol(), "TLSv1.3");  // preferred whenever both sides have it
  EXPECT_EQ(Tls(client_).Protocol(), "TLSv1.3");
  EXPECT_EQ(client_->Describe(), "tls:127.0.0.1:" + std::to_string(endpoint_.port()));

  // A frame-like header and a 1 MiB payload one way, 3 MiB the other, at the same time.
  const std::string header = "0123456789";
  std::string up(1 << 20, '\0'), down(3 << 20, '\0');
  for (std::size_t i = 0; i < up.size(); ++i) up[i] = static_cast<char>(i * 7);
  for (std::size_t i = 0; i < down.size(); ++i) down[i] = static_cast<char>(i * 13);
  auto client_io = asio::co_spawn(
      io_.io(), WriteThenRead(*client_, {asio::buffer(header), asio::buffer(up)}, down.size()),
      asio::use_future);
  auto server_io = asio::co_spawn(
      io_.io(), WriteThenRead(*server_, {asio::buffer(down)}, header.size() + up.size()),
      asio::use_future);
  EXPECT_TRUE(server_io.get() == header + up);
  EXPECT_TRUE(client_io.get() == down);
}

TEST_F(TlsStreamTest, CloseSendsCloseNotify) {
  auto [server, client] = Handshake(ServerContext(), ClientContext());
  ASSERT_TRUE(server && client);
  io_.Run(CloseOn(*client_));
  EXPECT_EQ(io_.Run(ReadError(*server_)), asio::error::eof);  // a clean end, not a truncation
  io_.Run(CloseOn(*client_));                                 // idempotent
}

asio::awaitable<std::error_code> WriteAll(ttrpc::Stream& stream, const std::string& data) {
  const std::vector<asio::const_buffer> buffers{asio::buffer(data)};
  co_return co_await stream.Write(buffers);
}

TEST_F(TlsStreamTest, CloseEndsAPendingReadAndABlockedWrite) {
  auto [server, client] = Handshake(ServerContext(), ClientContext());
  ASSERT_TRUE(server && client);
  // The server never reads, so 16 MiB cannot all leave: the write blocks, and so does the read.
  const std::string big(16 << 20, 'x');
  auto read = asio::co_spawn(io_.io(), ReadError(*client_), asio::use_future);
  auto write = asio::co_spawn(io_.io(), WriteAll(*client_, big), asio::use_future);
  EXPECT_EQ(write.wait_for(50ms), std::future_status::timeout);
  io_.Run(CloseOn(*client_));
  EXPECT_TRUE(read.get());
  EXPECT_TRUE(write.get());
}

TEST_F(TlsStreamTest, RefusesAClientWithoutCertificate) {
  auto no_cert = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  no_cert->add_certificate_authority(asio::buffer(ca_->CertPem()));
  no_cert->set_verify_mode(asio::ssl::verify_peer);
  auto [server, client] = Handshake(ServerContext(), no_cert);
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code, Code::kUnauthenticated);
  EXPECT_TRUE(server.error().message.starts_with("tls handshake with 127.0.0.1:"))
      << server.error().message;
  EXPECT_NE(server.error().message.find("peer did not return a certificate"), std::string::npos)
      << server.error().message;
  ExpectClientRefusedOnRead(client);
}

TEST_F(TlsStreamTest, RefusesAClientCertificateFromAnotherCa) {
  auto other = CertificateAuthority::CreateInMemory();
  ASSERT_TRUE(other);
  auto foreign = other->IssueClientCert("cloud-api-adaptor");
  ASSERT_TRUE(foreign);
  auto [server, client] = Handshake(
      ServerContext(), ClientContextFor({ca_->CertPem(), foreign->cert_pem, foreign->key_pem}));
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code, Code::kUnauthenticated);
  EXPECT_NE(server.error().message.find(
                "certificate verify failed (unable to get local issuer certificate)"),
            std::string::npos)
      << server.error().message;
  ExpectClientRefusedOnRead(client);
}

TEST_F(TlsStreamTest, RefusesAnExpiredClientCertificate) {
  auto expired =
      ca_->IssueClientCert("cloud-api-adaptor", Validity{.not_before = -48h, .not_after = -24h});
  ASSERT_TRUE(expired);
  auto [server, client] = Handshake(
      ServerContext(), ClientContextFor({ca_->CertPem(), expired->cert_pem, expired->key_pem}));
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code, Code::kUnauthenticated);
  EXPECT_NE(server.error().message.find("certificate has expired"), std::string::npos)
      << server.error().message;
  ExpectClientRefusedOnRead(client);
}

TEST_F(TlsStreamTest, RefusesAServerWhoseNameDoesNotMatch) {
  auto [server, client] = Handshake(ServerContext(), ClientContext(), "podvm-someone-else");
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code, Code::kUnauthenticated);
  EXPECT_EQ(client.error().message,
            "tls handshake with 127.0.0.1:" + std::to_string(endpoint_.port()) +
                " failed: certificate verify failed (hostname mismatch)");
  ASSERT_FALSE(server);  // told by the client's alert
  EXPECT_EQ(server.error().code, Code::kUnauthenticated) << server.error().message;
}

TEST_F(TlsStreamTest, RefusesAnIpAddressTheCertificateDoesNotName) {
  auto [server, client] = Handshake(ServerContext(), ClientContext(), "127.0.0.1");
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code, Code::kUnauthenticated);
  EXPECT_NE(client.error().message.find("IP address mismatch"), std::string::npos)
      << client.error().message;
}

TEST_F(TlsStreamTest, RefusesAServerPresentingAClientCertificate) {
  auto client_cert = ca_->IssueClientCert(kServerName);
  ASSERT_TRUE(client_cert);
  auto ctx = MakeServerContext({ca_->CertPem(), client_cert->cert_pem, client_cert->key_pem},
                               TlsSettings{});
  ASSERT_TRUE(ctx);
  auto [server, client] = Handshake(*ctx, ClientContext());
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code, Code::kUnauthenticated);
  EXPECT_NE(
      client.error().message.find("certificate verify failed (unsuitable certificate purpose)"),
      std::string::npos)
      << client.error().message;
}

TEST_F(TlsStreamTest, RefusesAnEmptyServerName) {
  auto [server, client] = Handshake(ServerContext(), ClientContext(), "");
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code, Code::kInvalidArgument);
  ASSERT_FALSE(server);  // the client closed the connection before saying anything
  EXPECT_EQ(server.error().code, Code::kUnavailable);
}

TEST_F(TlsStreamTest, PlaintextClientIsRefusedPromptly) {
  asio::ip::tcp::acceptor acceptor(io_.io(), {asio::ip::make_address("127.0.0.1"), 0});
  auto server =
      asio::co_spawn(io_.io(), AcceptOne(acceptor, ServerContext(), 5s), asio::use_future);
  asio::ip::tcp::socket plain(io_.io());
  plain.connect(acceptor.local_endpoint());
  // A ttrpc request frame header, as a shim pointed at the wrong port would send.
  const unsigned char frame[] = {0, 0, 0, 4, 0, 0, 0, 1, 1, 0, 'a', 'b', 'c', 'd'};
  asio::write(plain, asio::buffer(frame));
  const auto start = std::chrono::steady_clock::now();
  auto result = server.get();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, Code::kUnavailable);
  EXPECT_EQ(result.error().message.find("timed out"), std::string::npos) << result.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  // The server closed the connection: the plaintext client sees its end (after an alert, perhaps).
  std::error_code ec;
  char buffer[64];
  while (!ec) plain.read_some(asio::buffer(buffer), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
}

TEST_F(TlsStreamTest, SilentClientIsBoundByTheHandshakeTimeout) {
  asio::ip::tcp::acceptor acceptor(io_.io(), {asio::ip::make_address("127.0.0.1"), 0});
  auto server =
      asio::co_spawn(io_.io(), AcceptOne(acceptor, ServerContext(), 300ms), asio::use_future);
  asio::ip::tcp::socket silent(io_.io());
  silent.connect(acceptor.local_endpoint());
  const auto start = std::chrono::steady_clock::now();
  auto result = server.get();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, Code::kUnavailable);
  EXPECT_NE(result.error().message.find("timed out after 300 ms"), std::string::npos)
      << result.error().message;
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 3s);
}

TEST_F(TlsStreamTest, Tls13OnlyServerRefusesATls12Client) {
  auto client_ctx = ClientContext(Settings("VersionTLS12"));
  ASSERT_EQ(SSL_CTX_set_max_proto_version(client_ctx->native_handle(), TLS1_2_VERSION), 1);
  auto [server, client] = Handshake(ServerContext(Settings("VersionTLS13")), client_ctx);
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code, Code::kUnavailable);
  EXPECT_NE(server.error().message.find("unsupported protocol"), std::string::npos)
      << server.error().message;
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code, Code::kUnavailable);
  EXPECT_NE(client.error().message.find("protocol version"), std::string::npos)
      << client.error().message;
}

TEST_F(TlsStreamTest, Tls12UsesTheConfiguredCipherSuites) {
  auto client_ctx = ClientContext(Settings("", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"));
  ASSERT_EQ(SSL_CTX_set_max_proto_version(client_ctx->native_handle(), TLS1_2_VERSION), 1);
  auto [server, client] = Handshake(
      ServerContext(Settings(
          "", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305")),
      client_ctx);
  ASSERT_TRUE(server) << server.error().ToString();
  ASSERT_TRUE(client) << client.error().ToString();
  EXPECT_EQ(Tls(client_).Protocol(), "TLSv1.2");
  EXPECT_EQ(Tls(client_).Cipher(), "ECDHE-ECDSA-CHACHA20-POLY1305");
}

TEST_F(TlsStreamTest, Tls12WithoutASharedCipherSuiteFails) {
  auto client_ctx = ClientContext(Settings("", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"));
  ASSERT_EQ(SSL_CTX_set_max_proto_version(client_ctx->native_handle(), TLS1_2_VERSION), 1);
  auto [server, client] =
      Handshake(ServerContext(Settings("", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")), client_ctx);
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code, Code::kUnavailable);
  EXPECT_NE(server.error().message.find("no shared cipher"), std::string::npos)
      << server.error().message;
  ASSERT_FALSE(client);
}

}  // namespace
}  // namespace pp::tls
