#include "forwarder/user_data_source.h"

#include <cdio/iso9660.h>
#include <cdio/logging.h>
#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>

#include "common/base/file.h"
#include "common/podvm/user_data.h"

namespace pp::forwarder {
namespace {

using std::chrono::milliseconds;

struct IsoCloser {
  void operator()(iso9660_t* iso) const { iso9660_close(iso); }
};
struct IsoStatFree {
  void operator()(iso9660_stat_t* st) const { iso9660_stat_free(st); }
};
struct CurlCleanup {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct CurlSlistFree {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

// libcdio logs "this is not an ISO" style warnings to stderr; our errors say it better.
void QuietCdioLog(cdio_log_level_t, const char*) {}

struct Body {
  std::string data;
  bool overflow = false;
};

std::size_t CollectBody(char* ptr, std::size_t size, std::size_t nmemb, void* user) {
  auto* body = static_cast<Body*>(user);
  const std::size_t n = size * nmemb;
  if (body->data.size() + n > podvm::kMaxUserDataBytes) {
    body->overflow = true;
    return 0;  // makes curl fail with CURLE_WRITE_ERROR
  }
  body->data.append(ptr, n);
  return n;
}

}  // namespace

Result<std::string> ReadUserDataFile(const std::string& path) {
  return ReadFile(path, podvm::kMaxUserDataBytes);
}

Result<std::string> ReadCidataUserData(const std::string& image) {
  static std::once_flag quiet;
  std::call_once(quiet, [] { cdio_log_set_handler(QuietCdioLog); });
  if (::access(image.c_str(), R_OK) != 0)
    return std::unexpected(ErrnoError("open cidata image " + image, errno));
  const std::unique_ptr<iso9660_t, IsoCloser> iso(
      iso9660_open_ext(image.c_str(), ISO_EXTENSION_ALL));
  if (!iso) return Fail(Code::kInvalidArgument, image, " is not an ISO 9660 image");
  char* volume = nullptr;
  std::string label;
  if (iso9660_ifs_get_volume_id(iso.get(), &volume) && volume != nullptr) label = volume;
  std::free(volume);
  while (!label.empty() && label.back() == ' ') label.pop_back();
  std::string lower = label;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (lower != "cidata") {
    return Fail(Code::kInvalidArgument, image, " is not a NoCloud image: volume id is \"", label,
                "\", expected \"cidata\"");
  }
  const std::unique_ptr<iso9660_stat_t, IsoStatFree> st(
      iso9660_ifs_stat_translate(iso.get(), "/user-data"));
  if (!st) return Fail(Code::kNotFound, image, " has no user-data file");
  if (st->type != iso9660_stat_s::_STAT_FILE)
    return Fail(Code::kInvalidArgument, image, ": user-data is not a file");
  if (st->size > podvm::kMaxUserDataBytes) {
    return Fail(Code::kResourceExhausted, image, ": user-data has ", std::to_string(st->size),
                " bytes, more than the limit of ", std::to_string(podvm::kMaxUserDataBytes));
  }
  const std::size_t blocks = (st->size + ISO_BLOCKSIZE - 1) / ISO_BLOCKSIZE;
  std::string data(blocks * ISO_BLOCKSIZE, '\0');
  if (blocks > 0) {
    const long got =
        iso9660_iso_seek_read(iso.get(), data.data(), st->lsn, static_cast<long>(blocks));
    if (got != static_cast<long>(data.size())) {
      return Fail(Code::kDataLoss, image, ": short read of user-data (", std::to_string(got),
                  " of ", std::to_string(data.size()), " bytes)");
    }
  }
  data.resize(st->size);
  return data;
}

Result<std::string> FetchUserDataUrl(const std::string& url,
                                     const std::vector<std::string>& headers,
                                     milliseconds attempt_timeout) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  const std::unique_ptr<CURL, CurlCleanup> curl(curl_easy_init());
  if (!curl) return Fail(Code::kInternal, "curl_easy_init failed");
  std::unique_ptr<curl_slist, CurlSlistFree> header_list;
  for (const std::string& header : headers) {
    curl_slist* next = curl_slist_append(header_list.get(), header.c_str());
    if (next == nullptr) return Fail(Code::kInternal, "curl_slist_append failed");
    (void)header_list.release();
    header_list.reset(next);
  }
  Body body;
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROXY, "");  // metadata services are link-local: never via a proxy
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(std::max<milliseconds::rep>(attempt_timeout.count(), 1)));
  curl_easy_setopt(h, CURLOPT_USERAGENT, "process-user-data");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(h);
  if (body.overflow) {
    return Fail(Code::kResourceExhausted, "GET ", url, ": body is larger than ",
                std::to_string(podvm::kMaxUserDataBytes), " bytes");
  }
  if (rc == CURLE_OPERATION_TIMEDOUT)
    return Fail(Code::kDeadlineExceeded, "GET ", url, ": ", curl_easy_strerror(rc));
  if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT) {
    return Fail(Code::kInvalidArgument, "GET ", url, ": ", curl_easy_strerror(rc),
                " (use an http:// or https:// URL)");
  }
  if (rc != CURLE_OK) return Fail(Code::kUnavailable, "GET ", url, ": ", curl_easy_strerror(rc));
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) return std::move(body.data);
  const std::string what = "GET " + url + ": HTTP " + std::to_string(status);
  if (status == 404) return Fail(Code::kNotFound, what);
  if (status == 429 || status >= 500) return Fail(Code::kUnavailable, what);
  return Fail(Code::kFailedPrecondition, what);
}

bool IsRetryable(const Error& error) {
  return error.code == Code::kNotFound || error.code == Code::kUnavailable ||
         error.code == Code::kDeadlineExceeded;
}

Result<std::string> ReadWithRetry(
    const std::function<Result<std::string>(milliseconds remaining)>& read, milliseconds timeout,
    milliseconds delay, const std::function<void(const Error&)>& on_retry) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  for (int attempt = 1;; ++attempt) {
    const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    auto result = read(std::max(remaining, milliseconds(1)));
    if (result || !IsRetryable(result.error())) return result;
    if (on_retry) on_retry(result.error());
    if (Clock::now() + delay >= deadline) {
      const auto spent = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
      char seconds[32];
      std::snprintf(seconds, sizeof seconds, "%.1f", static_cast<double>(spent.count()) / 1000.0);
      return Fail(result.error().code, "gave up after ", std::to_string(attempt), " attempts in ",
                  seconds, " s: ", result.error().message);
    }
    std::this_thread::sleep_for(delay);
  }
}

}  // namespace pp::forwarder
