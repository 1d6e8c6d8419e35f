#include "providers/http/client.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <mutex>

namespace pp::providers::http {
namespace {

// curl_global_init is not thread-safe before libcurl 7.84 and must run once before any handle.
void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct EasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
struct ShareDeleter {
  void operator()(CURLSH* share) const { curl_share_cleanup(share); }
};

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

// The URL without its query: queries may carry tokens or signatures, never logged.
std::string_view WithoutQuery(std::string_view url) { return url.substr(0, url.find('?')); }

struct Transfer {
  Response response;
  std::size_t limit = 0;
  bool oversized = false;
  const OpContext* ctx = nullptr;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (t->response.body.size() + n > t->limit) {
    t->oversized = true;
    return 0;  // CURLE_WRITE_ERROR: the rest is never read
  }
  t->response.body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {
    // A new response (after 100 Continue or a proxy's CONNECT answer): its headers replace the old.
    t->response.headers.clear();
  } else if (const auto colon = line.find(':'); colon != std::string_view::npos) {
    t->response.headers.emplace_back(Lower(Trim(line.substr(0, colon))), std::string(Trim(line.substr(colon + 1))));
  }
  return n;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return t->ctx->stop.stop_requested() ? 1 : 0;  // non-zero aborts: CURLE_ABORTED_BY_CALLBACK
}

Code CodeOf(CURLcode rc) {
  switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
      return Code::kFailedPrecondition;  // wrong CA bundle or endpoint: an operator must act
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Code::kInvalidArgument;
    case CURLE_ABORTED_BY_CALLBACK:
      return Code::kCancelled;
    default:
      return Code::kUnavailable;  // connect, resolve, reset, TLS handshake, partial answers
  }
}

}  // namespace

std::optional<std::string_view> Response::Header(std::string_view name) const {
  const std::string lower = Lower(name);
  for (const auto& [key, value] : headers) {
    if (key == lower) return std::string_view(value);
  }
  return std::nullopt;
}

struct Client::Impl {
  ClientOptions options;
  std::unique_ptr<CURLSH, ShareDeleter> share;
  // libcurl's share interface locks per kind of data (curl_share_setopt(3), CURLSHOPT_LOCKFUNC).
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks;
  std::atomic<std::size_t> connections{0};

  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Impl*>(user)->locks[static_cast<std::size_t>(data)].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Impl*>(user)->locks[static_cast<std::size_t>(data)].unlock();
  }
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  GlobalInit();
  impl_->options = std::move(options);
  impl_->share.reset(curl_share_init());
  CURLSH* share = impl_->share.get();
  curl_share_setopt(share, CURLSHOPT_LOCKFUNC, &Impl::Lock);
  curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, &Impl::Unlock);
  curl_share_setopt(share, CURLSHOPT_USERDATA, impl_.get());
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
}

Client::~Client() = default;

std::size_t Client::connections_opened() const { return impl_->connections.load(); }

Result<Response> Client::Do(const Request& request, const OpContext& ctx) {
  const auto what = [&] { return request.method + " " + std::string(WithoutQuery(request.url)); };
  if (ctx.stop.stop_requested()) return Fail(Code::kCancelled, what(), ": cancelled");
  const auto now = std::chrono::steady_clock::now();
  if (now >= ctx.deadline) return Fail(Code::kDeadlineExceeded, what(), ": deadline passed");
  const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(ctx.deadline - now);

  std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
  if (!easy) return Fail(Code::kInternal, what(), ": curl_easy_init failed");
  CURL* h = easy.get();
  Transfer transfer;
  transfer.limit = impl_->options.max_response_bytes;
  transfer.ctx = &ctx;
  std::array<char, CURL_ERROR_SIZE> error{};

  std::unique_ptr<curl_slist, SlistDeleter> headers;
  // libcurl would otherwise send "Expect: 100-continue" for large bodies and wait for an answer.
  headers.reset(curl_slist_append(headers.release(), "Expect:"));
  for (const auto& [name, value] : request.headers) {
    const std::string line = name + ": " + value;
    curl_slist* grown = curl_slist_append(headers.get(), line.c_str());
    if (grown == nullptr) return Fail(Code::kInternal, what(), ": out of memory");
    (void)headers.release();
    headers.reset(grown);
  }

  curl_easy_setopt(h, CURLOPT_SHARE, impl_->share.get());
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error.data());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_USERAGENT, impl_->options.user_agent.c_str());
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!impl_->options.ca_bundle.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, impl_->options.ca_bundle.c_str());
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<long long>(1, remaining.count())));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::max<long long>(1, std::min(remaining, impl_->options.connect_timeout).count())));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &transfer);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  if (request.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" || request.method == "PATCH") {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    }
  }

  const auto started = std::chrono::steady_clock::now();
  const CURLcode rc = curl_easy_perform(h);
  long connects = 0;
  if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0) {
    impl_->connections += static_cast<std::size_t>(connects);
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);

  if (transfer.oversized) {
    return Fail(Code::kInternal, what(), ": response larger than ", std::to_string(transfer.limit), " bytes");
  }
  if (rc != CURLE_OK) {
    const std::string detail = error[0] != '\0' ? std::string(error.data()) : std::string(curl_easy_strerror(rc));
    // The transfer timeout is the deadline (rounded down to a millisecond); a connect timeout that
    // fires well before it is a retryable failure instead.
    if (rc == CURLE_OPERATION_TIMEDOUT && ms + std::chrono::milliseconds(10) >= remaining) {
      return Fail(Code::kDeadlineExceeded, what(), ": no answer before the deadline (", detail, ")");
    }
    spdlog::debug("http {} failed after {} ms: {}", what(), ms.count(), detail);
    return Fail(CodeOf(rc), what(), ": ", detail);
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &transfer.response.status);
  spdlog::debug("http {} -> {} in {} ms", what(), transfer.response.status, ms.count());
  return std::move(transfer.response);
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (const unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string out;
  for (const auto& [key, value] : pairs) {
    if (!out.empty()) out.push_back('&');
    out += UrlEncode(key);
    out.push_back('=');
    out += UrlEncode(value);
  }
  return out;
}

}  // namespace pp::providers::http
