// One HTTP client for every cloud provider, on libcurl (OpenSSL).
//
// - Connections are reused across calls and threads: one libcurl share (connection cache and DNS;
//   not TLS sessions, whose sharing races inside OpenSSL under ThreadSanitizer) per Client, so a burst of calls to one endpoint costs one TLS handshake, not one
//   per call (libcurl: CURLSHOPT_SHARE with CURL_LOCK_DATA_CONNECT, since 7.57.0).
// - TLS verification is always on; `ca_bundle` replaces the system store (AWS_CA_BUNDLE and the
//   Azure/GCP CA-bundle flags), it never turns verification off.
// - Every call is bounded by its OpContext: the transfer times out at the deadline and aborts when
//   a stop is requested.
// - The proxy environment (http_proxy, https_proxy, HTTPS_PROXY, no_proxy, NO_PROXY) is honoured
//   as libcurl documents (libcurl-env(3)).
// - A response body larger than `max_response_bytes` fails the call INTERNAL ("response larger
//   than N bytes"): a cloud that answers so is broken, and the body is never held whole.
//
// Errors of one attempt (Do): transport failures (connect refused, reset, TLS) -> UNAVAILABLE,
// certificate verification failure -> FAILED_PRECONDITION (an operator must fix the CA bundle or
// endpoint), deadline -> DEADLINE_EXCEEDED, stop -> CANCELLED. An HTTP status is not an error for
// Do: the caller's classifier decides (see retry.h).
//
// Request and response bodies may carry secrets (tokens, user-data): the client never logs them;
// at debug level it logs method, URL without query, status and timing.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/error.h"
#include "providers/provider.h"

namespace pp::providers::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method = "GET";  // GET, POST, PUT, DELETE, PATCH
  std::string url;             // absolute https:// (http:// only for link-local metadata endpoints and tests)
  Headers headers;             // sent as given, in order
  std::string body;
};

struct Response {
  long status = 0;
  Headers headers;  // names lower-cased, in arrival order
  std::string body;

  // The first header of that (case-insensitive) name.
  std::optional<std::string_view> Header(std::string_view name) const;
};

struct ClientOptions {
  std::string ca_bundle;  // PEM file; empty: the system store
  std::size_t max_response_bytes = 16u << 20;
  std::chrono::milliseconds connect_timeout{10000};
  std::string user_agent = "peerpods-cloud-api-adaptor";
};

class Client {
 public:
  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One attempt. Thread-safe.
  Result<Response> Do(const Request& request, const OpContext& ctx);

  // Connections opened so far (new TCP connections, not reused ones): for tests and benches.
  std::size_t connections_opened() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes per RFC 3986: unreserved characters stay, everything else is %XX (upper case).
std::string UrlEncode(std::string_view s);
// application/x-www-form-urlencoded body of ordered pairs (RFC 3986 encoding, as AWS expects).
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& pairs);

}  // namespace pp::providers::http
