// The KBS client against the TEST STAND-IN KBS (fake_kbs.py, whose JWE comes from jwcrypto) over
// loopback, and configfs-tsm evidence from a fake tsm tree in a temp dir.
#include "attest/kbs_client.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <mutex>
#include <thread>

#include "tests/attest/fake_kbs_process.h"

namespace pp::attest {
namespace {

const std::string kKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const std::string kResource = "default/model-key/llama";

providers::OpContext Deadline(std::chrono::milliseconds d = std::chrono::seconds(20)) {
  return {std::chrono::steady_clock::now() + d, {}};
}

std::string Hex(std::string_view bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

struct Run {
  Result<Secret> result;
  int attestations = 0;
};

Run Fetch(const std::string& url, std::unique_ptr<Evidence> evidence, KeyAlg alg = KeyAlg::kEcdhEsA256kw,
          std::string path = kResource, providers::OpContext ctx = Deadline()) {
  KbsOptions options;
  options.url = url;
  options.initdata_toml = "version = \"0.1.0\"\n";
  options.key_alg = alg;
  options.retry.initial = std::chrono::milliseconds(20);
  options.retry.max_delay = std::chrono::milliseconds(100);
  auto client = KbsClient::Create(std::move(options), std::move(evidence));
  if (!client) return {std::unexpected(client.error()), 0};
  auto r = (*client)->GetResource(path, ctx);
  return {std::move(r), (*client)->attestations()};
}

std::vector<std::string> Args(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--resource", kResource + "=" + kKeyHex};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(KbsClient, EcdhEsA256kwReleasesTheKey) {
  testing::FakeKbs kbs(Args({"--require-initdata"}));
  ASSERT_TRUE(kbs.running());
  auto run = Fetch(kbs.url(), MakeSampleEvidence());
  ASSERT_TRUE(run.result.has_value()) << run.result.error().ToString();
  EXPECT_EQ(Hex(run.result->view()), kKeyHex);
  EXPECT_EQ(run.attestations, 1);
}

// https with the CA from initdata (kbs_cert): staged in a memfd, nothing written to disk; without
// it the system store does not know the fake's CA and verification fails.
TEST(KbsClient, HttpsTrustsOnlyTheGivenCa) {
  testing::FakeKbs kbs(Args(), /*https=*/true);
  ASSERT_TRUE(kbs.running());
  KbsOptions options;
  options.url = kbs.url();
  options.ca_cert_pem = kbs.ca_pem();
  ASSERT_FALSE(options.ca_cert_pem.empty());
  auto client = KbsClient::Create(options, MakeSampleEvidence());
  ASSERT_TRUE(client.has_value());
  auto key = (*client)->GetResource(kResource, Deadline());
  ASSERT_TRUE(key.has_value()) << key.error().ToString();
  EXPECT_EQ(Hex(key->view()), kKeyHex);

  options.ca_cert_pem.clear();
  auto untrusting = KbsClient::Create(options, MakeSampleEvidence());
  auto refused = (*untrusting)->GetResource(kResource, Deadline());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, Code::kFailedPrecondition) << refused.error().ToString();
}

// Trustee puts epk in the protected header (kbs/src/jwe/mod.rs), jwcrypto in a per-recipient one:
// both are the same JOSE header (RFC 7516 section 7.2.1).
TEST(KbsClient, TrusteeJweLayout) {
  testing::FakeKbs kbs(Args({"--trustee-layout"}));
  auto run = Fetch(kbs.url(), MakeSampleEvidence());
  ASSERT_TRUE(run.result.has_value()) << run.result.error().ToString();
  EXPECT_EQ(Hex(run.result->view()), kKeyHex);
}

TEST(KbsClient, RsaOaep256ReleasesTheKey) {
  testing::FakeKbs kbs(Args());
  ASSERT_TRUE(kbs.running());
  auto run = Fetch(kbs.url(), MakeSampleEvidence(), KeyAlg::kRsaOaep256);
  ASSERT_TRUE(run.result.has_value()) << run.result.error().ToString();
  EXPECT_EQ(Hex(run.result->view()), kKeyHex);
}

TEST(KbsClient, HonoursSelectedHashAlgorithm) {
  for (const char* hash : {"sha256", "sha512"}) {
    testing::FakeKbs kbs(Args({"--hash", hash}));
    ASSERT_TRUE(kbs.running());
    auto run = Fetch(kbs.url(), MakeSampleEvidence());
    ASSERT_TRUE(run.result.has_value()) << hash << ": " << run.result.error().ToString();
  }
}

// Evidence whose report data does not bind the runtime data (a replayed or forged report).
class WrongEvidence final : public Evidence {
 public:
  std::string_view Tee() const override { return "sample"; }
  Result<nlohmann::json> Collect(std::string_view report_data) override {
    std::string other(report_data);
    other[0] ^= 1;
    return MakeSampleEvidence()->Collect(other);
  }
};

TEST(KbsClient, BadEvidenceIsRefused) {
  testing::FakeKbs kbs(Args());
  auto run = Fetch(kbs.url(), std::make_unique<WrongEvidence>());
  ASSERT_FALSE(run.result.has_value());
  EXPECT_EQ(run.result.error().code, Code::kUnauthenticated);
  EXPECT_NE(run.result.error().message.find("report data does not bind"), std::string::npos)
      << run.result.error().message;
}

// A TEE whose quote generation fails (a QGS that is down): no evidence, and no KBS outage either.
class BrokenEvidence final : public Evidence {
 public:
  std::string_view Tee() const override { return "tdx"; }
  Result<nlohmann::json> Collect(std::string_view) override {
    return Fail(Code::kUnavailable, "configfs-tsm: reading outblob: I/O error");
  }
};

TEST(KbsClient, NoEvidenceIsNotAnOutage) {
  testing::FakeKbs kbs(Args());
  auto run = Fetch(kbs.url(), std::make_unique<BrokenEvidence>());
  ASSERT_FALSE(run.result.has_value());
  EXPECT_EQ(run.result.error().code, Code::kFailedPrecondition);
  EXPECT_NE(run.result.error().message.find("evidence (tdx)"), std::string::npos) << run.result.error().message;
}

TEST(KbsClient, WrongNonceIsRefused) {
  testing::FakeKbs kbs(Args({"--nonce-mismatch"}));
  auto run = Fetch(kbs.url(), MakeSampleEvidence());
  ASSERT_FALSE(run.result.has_value());
  EXPECT_EQ(run.result.error().code, Code::kUnauthenticated);
  EXPECT_NE(run.result.error().message.find("nonce"), std::string::npos);
}

TEST(KbsClient, ExpiredCookieReattestsOnce) {
  testing::FakeKbs kbs(Args({"--expire-sessions", "1"}));
  auto run = Fetch(kbs.url(), MakeSampleEvidence());
  ASSERT_TRUE(run.result.has_value()) << run.result.error().ToString();
  EXPECT_EQ(run.attestations, 2);
}

TEST(KbsClient, AlwaysExpiredCookieFailsAfterOneReattestation) {
  testing::FakeKbs kbs(Args({"--expire-sessions", "-1"}));
  auto run = Fetch(kbs.url(), MakeSampleEvidence());
  ASSERT_FALSE(run.result.has_value());
  EXPECT_EQ(run.result.error().code, Code::kUnauthenticated);
  EXPECT_EQ(run.attestations, 2);
}

TEST(KbsClient, PolicyDenied) {
  testing::FakeKbs kbs(Args({"--policy", "deny"}));
  auto run = Fetch(kbs.url(), MakeSampleEvidence());
  ASSERT_FALSE(run.result.has_value());
  EXPECT_EQ(run.result.error().code, Code::kUnauthenticated);
  EXPECT_NE(run.result.error().message.find("policy denied"), std::string::npos) << run.result.error().message;
}

TEST(KbsClient, NoSuchResource) {
  testing::FakeKbs kbs(Args());
  auto run = Fetch(kbs.url(), MakeSampleEvidence(), KeyAlg::kEcdhEsA256kw, "default/model-key/other");
  ASSERT_FALSE(run.result.has_value());
  EXPECT_EQ(run.result.error().code, Code::kNotFound);
}

TEST(KbsClient, TeeNotAcceptedByTheKbs) {
  testing::FakeKbs kbs(Args({"--accept-tee", "tdx"}));
  auto run = Fetch(kbs.url(), MakeSampleEvidence());
  ASSERT_FALSE(run.result.has_value());
  EXPECT_EQ(run.result.error().code, Code::kUnauthenticated);
}

int FreePort() {
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(s);
  return ntohs(addr.sin_port);
}

TEST(KbsClient, KbsDownFailsAfterBoundedRetries) {
  const auto start = std::chrono::steady_clock::now();
  auto run = Fetch("http://127.0.0.1:" + std::to_string(FreePort()), MakeSampleEvidence());
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(run.result.has_value());
  EXPECT_EQ(run.result.error().code, Code::kUnavailable);
  EXPECT_NE(run.result.error().message.find("unreachable"), std::string::npos) << run.result.error().message;
  EXPECT_NE(run.result.error().message.find("gave up after 5 attempts"), std::string::npos);
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(KbsClient, OverallDeadlineBoundsRetries) {
  const auto start = std::chrono::steady_clock::now();
  KbsOptions options;
  options.url = "http://127.0.0.1:" + std::to_string(FreePort());
  options.retry.max_attempts = 1000;
  auto client = KbsClient::Create(std::move(options), MakeSampleEvidence());
  ASSERT_TRUE(client.has_value());
  auto r = (*client)->GetResource(kResource, Deadline(std::chrono::milliseconds(1500)));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

TEST(KbsClient, RetriesA5xxKbs) {
  testing::FakeKbs kbs(Args({"--fail-first", "2"}));
  auto run = Fetch(kbs.url(), MakeSampleEvidence());
  ASSERT_TRUE(run.result.has_value()) << run.result.error().ToString();
}

TEST(KbsClient, MalformedOrTamperedJweFailsClosed) {
  for (const char* knob : {"--garbage", "--tamper"}) {
    testing::FakeKbs kbs(Args({knob}));
    auto run = Fetch(kbs.url(), MakeSampleEvidence());
    ASSERT_FALSE(run.result.has_value()) << knob;
    EXPECT_EQ(run.result.error().code, Code::kDataLoss) << knob;
  }
}

TEST(KbsClient, RefusesBadUrlAndPath) {
  KbsOptions ftp;
  ftp.url = "ftp://x";
  EXPECT_FALSE(KbsClient::Create(ftp, MakeSampleEvidence()).has_value());
  for (const char* bad : {"a/b", "a/b/c/d", "a/../c", "a//c", "a/b/c d", ""})
    EXPECT_FALSE(CheckResourcePath(bad).has_value()) << bad;
  EXPECT_TRUE(CheckResourcePath("default/model-key/llama-3.1_8b").has_value());
}

// A stand-in for configfs-tsm in a temp dir: each new report entry gets the attributes configfs
// would make; outblob is a FIFO fed, once inblob is written, with a fake quote (TDX) or report
// (SNP) carrying the 64 report-data bytes where the hardware puts them.
class FakeTsm {
 public:
  FakeTsm(std::string provider, std::size_t blob_size, std::size_t report_data_offset)
      : provider_(std::move(provider)), size_(blob_size), offset_(report_data_offset) {
    root_ = std::filesystem::temp_directory_path() / ("pp-tsm-" + std::to_string(::getpid()) + "-" +
                                                       std::to_string(counter_++));
    std::filesystem::create_directories(root_ + "/report");
  }
  ~FakeTsm() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    std::filesystem::remove_all(root_);
  }

  EvidenceOptions Options() {
    EvidenceOptions options;
    options.tsm_root = root_;
    options.on_entry_created = [this](const std::string& entry) { Populate(entry); };
    return options;
  }
  int entries() const { return entries_; }

 private:
  void Populate(const std::string& entry) {
    ++entries_;
    std::ofstream(entry + "/provider") << provider_ << "\n";
    std::ofstream(entry + "/generation") << "0\n";
    std::ofstream(entry + "/inblob");
    ::mkfifo((entry + "/outblob").c_str(), 0600);
    std::lock_guard lock(mu_);
    threads_.emplace_back([this, entry] {
      int fd = -1;
      while (!stop_ && (fd = ::open((entry + "/outblob").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (fd < 0) return;
      std::ifstream in(entry + "/inblob", std::ios::binary);
      std::string report_data((std::istreambuf_iterator<char>(in)), {});
      std::ofstream(entry + "/generation") << "1\n";
      std::string blob(size_, 'Q');
      blob.replace(offset_, report_data.size(), report_data);
      [[maybe_unused]] auto n = ::write(fd, blob.data(), blob.size());
      ::close(fd);
    });
  }

  static inline std::atomic<int> counter_{0};
  std::string provider_;
  std::size_t size_, offset_;
  std::string root_;
  std::atomic<bool> stop_{false};
  std::atomic<int> entries_{0};
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

TEST(Evidence, TdxQuoteThroughConfigfsTsm) {
  FakeTsm tsm("tdx_guest", 1024, 568);
  auto evidence = DetectEvidence(tsm.Options());
  ASSERT_TRUE(evidence.has_value()) << evidence.error().ToString();
  EXPECT_EQ((*evidence)->Tee(), "tdx");
  testing::FakeKbs kbs(Args());
  auto run = Fetch(kbs.url(), std::move(*evidence));
  ASSERT_TRUE(run.result.has_value()) << run.result.error().ToString();
  EXPECT_EQ(Hex(run.result->view()), kKeyHex);
}

TEST(Evidence, SnpReportThroughConfigfsTsm) {
  FakeTsm tsm("sev_guest", 1184, 0x50);
  auto evidence = DetectEvidence(tsm.Options());
  ASSERT_TRUE(evidence.has_value()) << evidence.error().ToString();
  EXPECT_EQ((*evidence)->Tee(), "snp");
  testing::FakeKbs kbs(Args());
  auto run = Fetch(kbs.url(), std::move(*evidence), KeyAlg::kRsaOaep256);
  ASSERT_TRUE(run.result.has_value()) << run.result.error().ToString();
}

TEST(Evidence, SampleOnlyWhenAllowed) {
  const std::string none = "/nonexistent-tsm-root";
  EvidenceOptions options;
  options.tsm_root = none;
  auto refused = DetectEvidence(options);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, Code::kFailedPrecondition);
  EXPECT_NE(refused.error().message.find("--allow-sample-tee"), std::string::npos);
  options.allow_sample = true;
  auto sample = DetectEvidence(options);
  ASSERT_TRUE(sample.has_value());
  EXPECT_EQ((*sample)->Tee(), "sample");
}

TEST(Evidence, UnknownProviderIsNotATee) {
  FakeTsm tsm("arm_cca_guest", 64, 0);
  auto evidence = DetectEvidence(tsm.Options());
  EXPECT_FALSE(evidence.has_value());
}

TEST(Cdh, FetchesThroughTheLocalEndpoint) {
  testing::FakeKbs cdh(Args({"--cdh"}));
  auto key = GetCdhResource(cdh.url(), kResource, Deadline());
  ASSERT_TRUE(key.has_value()) << key.error().ToString();
  EXPECT_EQ(Hex(key->view()), kKeyHex);
  auto missing = GetCdhResource(cdh.url(), "default/model-key/none", Deadline());
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, Code::kUnauthenticated);
}

TEST(Cdh, AbsentEndpointIsUnavailable) {
  auto key = GetCdhResource("http://127.0.0.1:" + std::to_string(FreePort()), kResource, Deadline());
  ASSERT_FALSE(key.has_value());
  EXPECT_EQ(key.error().code, Code::kUnavailable);
}

}  // namespace
}  // namespace pp::attest
