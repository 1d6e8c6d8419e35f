#include "forwarder/user_data_source.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/podvm/user_data.h"
#include "tests/support/test_util.h"

namespace pp::forwarder {
namespace {

using std::chrono::milliseconds;

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Builds a NoCloud image with xorriso, as the libvirt provider does. Fails the test (never skips)
// when xorriso is missing.
std::string MakeIso(const testing::TempDir& dir, const std::string& label,
                    const std::string& user_data, bool with_user_data = true) {
  const std::string tree = dir / ("tree-" + label);
  std::filesystem::create_directories(tree);
  if (with_user_data) WriteText(tree + "/user-data", user_data);
  WriteText(tree + "/meta-data", "instance-id: podvm-test\nlocal-hostname: podvm-test\n");
  const std::string iso = dir / (label + ".iso");
  const std::string command = "xorriso -as mkisofs -V " + label + " -J -r -o " + iso + " " + tree +
                              " >" + (dir / "xorriso.log") + " 2>&1";
  if (std::system("command -v xorriso >/dev/null 2>&1") != 0) {
    ADD_FAILURE() << "xorriso is not installed; run setup.sh (it builds the cidata test images)";
    return {};
  }
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  return iso;
}

// A loopback HTTP/1.1 server for the URL source: answers each connection with the next scripted
// response (the last one repeats) and records the requests.
class LoopbackHttpServer {
 public:
  struct Response {
    int status = 200;
    std::string body;
  };

  explicit LoopbackHttpServer(std::vector<Response> script) : script_(std::move(script)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    const int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~LoopbackHttpServer() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);  // wakes accept()
    thread_.join();
    ::close(listener_);
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int Connections() const { return connections_; }
  std::vector<std::string> Requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void Serve() {
    for (;;) {
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      if (stopping_) {
        ::close(fd);
        return;
      }
      std::string request;
      char buffer[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n <= 0) break;
        request.append(buffer, static_cast<std::size_t>(n));
      }
      const Response& response = script_[std::min<std::size_t>(connections_, script_.size() - 1)];
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(request);
      }
      ++connections_;
      const std::string head = "HTTP/1.1 " + std::to_string(response.status) +
                               " X\r\nContent-Length: " + std::to_string(response.body.size()) +
                               "\r\nConnection: close\r\n\r\n";
      const std::string bytes = head + response.body;
      for (std::size_t sent = 0; sent < bytes.size();) {
        const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
      }
      ::close(fd);
    }
  }

  std::vector<Response> script_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::mutex mutex_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

constexpr const char* kUserData =
    "#cloud-config\nwrite_files:\n- path: /run/peerpod/auth.json\n  content: '{}'\n";

TEST(UserDataFileTest, ReadsAndReportsMissingFilesAsRetryable) {
  testing::TempDir dir;
  WriteText(dir / "user-data", kUserData);
  auto text = ReadUserDataFile(dir / "user-data");
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, kUserData);
  auto missing = ReadUserDataFile(dir / "missing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Code::kNotFound);
  EXPECT_TRUE(IsRetryable(missing.error()));
}

TEST(UserDataFileTest, RefusesOversizedFiles) {
  testing::TempDir dir;
  WriteText(dir / "user-data", std::string(podvm::kMaxUserDataBytes + 1, 'x'));
  auto text = ReadUserDataFile(dir / "user-data");
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().code, Code::kResourceExhausted);
  EXPECT_FALSE(IsRetryable(text.error()));
}

TEST(CidataTest, ReadsUserDataFromANoCloudImage) {
  testing::TempDir dir;
  const std::string iso = MakeIso(dir, "cidata", kUserData);
  ASSERT_FALSE(iso.empty());
  auto text = ReadCidataUserData(iso);
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_EQ(*text, kUserData);
}

TEST(CidataTest, ReadsMultiBlockUserDataExactly) {
  testing::TempDir dir;
  std::string big = "#cloud-config\n";
  while (big.size() < 5 * 2048 + 17) big += "# padding line to cross several ISO blocks\n";
  const std::string iso = MakeIso(dir, "CIDATA", big);
  ASSERT_FALSE(iso.empty());
  auto text = ReadCidataUserData(iso);
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_EQ(*text, big);
}

TEST(CidataTest, RefusesImagesThatAreNotCidata) {
  testing::TempDir dir;
  const std::string iso = MakeIso(dir, "config-2", kUserData);
  ASSERT_FALSE(iso.empty());
  auto text = ReadCidataUserData(iso);
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().code, Code::kInvalidArgument);
  EXPECT_NE(text.error().message.find("volume id is \"config-2\""), std::string::npos)
      << text.error().message;
}

TEST(CidataTest, MissingUserDataAndMissingImageAreNotFound) {
  testing::TempDir dir;
  const std::string iso = MakeIso(dir, "cidata", "", /*with_user_data=*/false);
  ASSERT_FALSE(iso.empty());
  auto text = ReadCidataUserData(iso);
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().code, Code::kNotFound);
  EXPECT_NE(text.error().message.find("has no user-data"), std::string::npos);
  auto missing = ReadCidataUserData(dir / "no.iso");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Code::kNotFound);
}

TEST(CidataTest, RefusesFilesThatAreNotIso9660) {
  testing::TempDir dir;
  WriteText(dir / "fake.iso", std::string(64 * 1024, 'x'));
  auto text = ReadCidataUserData(dir / "fake.iso");
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().code, Code::kInvalidArgument);
  EXPECT_NE(text.error().message.find("not an ISO 9660 image"), std::string::npos);
}

TEST(UrlTest, FetchesWithHeaders) {
  LoopbackHttpServer server({{200, kUserData}});
  auto text =
      FetchUserDataUrl(server.Url("/latest/user-data"), {"Metadata: true"}, milliseconds(5000));
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_EQ(*text, kUserData);
  const auto requests = server.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].rfind("GET /latest/user-data HTTP/1.1\r\n", 0), 0u) << requests[0];
  EXPECT_NE(requests[0].find("Metadata: true\r\n"), std::string::npos);
}

TEST(UrlTest, MapsStatusesToRetryableOrNot) {
  {
    LoopbackHttpServer server({{404, "no"}});
    auto r = FetchUserDataUrl(server.Url("/"), {}, milliseconds(5000));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Code::kNotFound);
  }
  {
    LoopbackHttpServer server({{503, "busy"}});
    auto r = FetchUserDataUrl(server.Url("/"), {}, milliseconds(5000));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Code::kUnavailable);
    EXPECT_TRUE(IsRetryable(r.error()));
  }
  {
    LoopbackHttpServer server({{403, "denied"}});
    auto r = FetchUserDataUrl(server.Url("/"), {}, milliseconds(5000));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Code::kFailedPrecondition);
    EXPECT_FALSE(IsRetryable(r.error()));
  }
}

TEST(UrlTest, RefusesOversizedBodiesAndOtherSchemes) {
  LoopbackHttpServer server({{200, std::string(podvm::kMaxUserDataBytes + 1, 'x')}});
  auto r = FetchUserDataUrl(server.Url("/"), {}, milliseconds(5000));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kResourceExhausted);
  testing::TempDir dir;
  WriteText(dir / "user-data", kUserData);
  auto file = FetchUserDataUrl("file://" + (dir / "user-data"), {}, milliseconds(5000));
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().code, Code::kInvalidArgument);
}

TEST(UrlTest, ConnectionRefusedIsRetryable) {
  int port = 0;
  {
    LoopbackHttpServer server({{200, ""}});
    port = std::stoi(server.Url("").substr(17));
  }  // closed: nothing listens on the port now
  auto r =
      FetchUserDataUrl("http://127.0.0.1:" + std::to_string(port) + "/", {}, milliseconds(5000));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kUnavailable);
}

TEST(RetryTest, RetriesUntilTheServiceAnswers) {
  LoopbackHttpServer server({{503, ""}, {404, ""}, {200, kUserData}});
  int retries = 0;
  auto text = ReadWithRetry(
      [&](milliseconds remaining) {
        return FetchUserDataUrl(server.Url("/user-data"), {}, remaining);
      },
      milliseconds(10000), milliseconds(20), [&](const Error&) { ++retries; });
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_EQ(*text, kUserData);
  EXPECT_EQ(retries, 2);
  EXPECT_EQ(server.Connections(), 3);
}

TEST(RetryTest, GivesUpAtTheTimeoutWithTheLastError) {
  LoopbackHttpServer server({{503, ""}});
  const auto start = std::chrono::steady_clock::now();
  auto text = ReadWithRetry(
      [&](milliseconds remaining) { return FetchUserDataUrl(server.Url("/"), {}, remaining); },
      milliseconds(300), milliseconds(50), nullptr);
  const auto spent = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().code, Code::kUnavailable);
  EXPECT_NE(text.error().message.find("gave up after"), std::string::npos);
  EXPECT_NE(text.error().message.find("HTTP 503"), std::string::npos);
  EXPECT_LT(spent, std::chrono::seconds(3));
  EXPECT_GE(server.Connections(), 3);
}

TEST(RetryTest, StopsAtOnceOnAPermanentError) {
  int calls = 0;
  auto text = ReadWithRetry(
      [&](milliseconds) -> Result<std::string> {
        ++calls;
        return Fail(Code::kInvalidArgument, "not an ISO");
      },
      milliseconds(10000), milliseconds(10), nullptr);
  ASSERT_FALSE(text);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(text.error().message, "not an ISO");
}

}  // namespace
}  // namespace pp::forwarder
