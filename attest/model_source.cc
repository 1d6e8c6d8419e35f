#include "attest/model_source.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "common/base/handle.h"

namespace pp::attest {
namespace {

class FileSource final : public ModelSource {
 public:
  explicit FileSource(ScopedFd fd) : fd_(std::move(fd)) {}
  int fd() const override { return fd_.get(); }
  Result<void> Finish() override {
    fd_.Reset();
    return {};
  }

 private:
  ScopedFd fd_;
};

class UrlSource final : public ModelSource {
 public:
  UrlSource(std::string url, std::string ca_bundle, ScopedFd read_end, ScopedFd write_end)
      : url_(std::move(url)), ca_bundle_(std::move(ca_bundle)), read_(std::move(read_end)),
        write_(std::move(write_end)) {
    thread_ = std::thread([this] { Transfer(); });
  }
  ~UrlSource() override { (void)Finish(); }

  int fd() const override { return read_.get(); }

  Result<void> Finish() override {
    // Closing our end first makes a transfer still writing fail at once instead of blocking.
    read_.Reset();
    if (thread_.joinable()) thread_.join();
    if (code_ != CURLE_OK) {
      std::string what = curl_easy_strerror(code_);
      if (status_ >= 400) what = "HTTP " + std::to_string(status_);
      return Fail(Code::kUnavailable, "model download from ", Redacted(), ": ", what);
    }
    return {};
  }

 private:
  // The URL without its query (which may carry a pre-signed credential).
  std::string Redacted() const { return url_.substr(0, url_.find('?')); }

  static std::size_t Write(char* data, std::size_t size, std::size_t n, void* self) {
    auto* me = static_cast<UrlSource*>(self);
    std::size_t done = 0;
    const std::size_t total = size * n;
    while (done < total) {
      const ssize_t sent = ::send(me->write_.get(), data + done, total - done, MSG_NOSIGNAL);
      if (sent < 0 && errno == EINTR) continue;
      if (sent <= 0) return 0;  // the reader is gone: abort the transfer
      done += static_cast<std::size_t>(sent);
    }
    return total;
  }

  void Transfer() {
    CHandle<CURL, curl_easy_cleanup> h(curl_easy_init());
    if (!h) {
      code_ = CURLE_FAILED_INIT;
    } else {
      curl_easy_setopt(h.get(), CURLOPT_URL, url_.c_str());
      curl_easy_setopt(h.get(), CURLOPT_PROTOCOLS_STR, "https,http");
      curl_easy_setopt(h.get(), CURLOPT_REDIR_PROTOCOLS_STR, "https,http");
      curl_easy_setopt(h.get(), CURLOPT_FOLLOWLOCATION, 1L);
      curl_easy_setopt(h.get(), CURLOPT_MAXREDIRS, 5L);
      curl_easy_setopt(h.get(), CURLOPT_FAILONERROR, 1L);
      curl_easy_setopt(h.get(), CURLOPT_CONNECTTIMEOUT, 30L);
      curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(h.get(), CURLOPT_USERAGENT, "peerpods-model-loader");
      if (!ca_bundle_.empty()) curl_easy_setopt(h.get(), CURLOPT_CAINFO, ca_bundle_.c_str());
      curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, &UrlSource::Write);
      curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, this);
      code_ = curl_easy_perform(h.get());
      curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &status_);
    }
    write_.Reset();  // EOF for the reader
  }

  std::string url_;
  std::string ca_bundle_;
  ScopedFd read_;
  ScopedFd write_;
  CURLcode code_ = CURLE_OK;
  long status_ = 0;
  std::thread thread_;  // last: started once everything it uses exists
};

}  // namespace

bool ModelSource::IsUrl(const std::string& where) {
  return where.starts_with("http://") || where.starts_with("https://");
}

Result<std::unique_ptr<ModelSource>> ModelSource::Open(const std::string& where, const std::string& ca_bundle) {
  if (IsUrl(where)) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      return std::unexpected(ErrnoError("model download: socketpair", errno));
    ::shutdown(sv[0], SHUT_WR);
    ::shutdown(sv[1], SHUT_RD);
    return std::make_unique<UrlSource>(where, ca_bundle, ScopedFd(sv[0]), ScopedFd(sv[1]));
  }
  if (where.find("://") != std::string::npos)
    return Fail(Code::kInvalidArgument, "model: only files and http(s) URLs are supported");
  ScopedFd fd(where == "-" ? ::fcntl(0, F_DUPFD_CLOEXEC, 0) : ::open(where.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::unexpected(ErrnoError("model " + where, errno));
  return std::make_unique<FileSource>(std::move(fd));
}

}  // namespace pp::attest
