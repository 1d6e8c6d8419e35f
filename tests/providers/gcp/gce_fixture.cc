#include "tests/providers/gcp/gce_fixture.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/base/handle.h"

namespace pp::providers::gcp::testing {
namespace {

std::string Pem(EVP_PKEY* key, bool private_half) {
  CHandle<BIO, BIO_free> bio(BIO_new(BIO_s_mem()));
  if (private_half) {
    PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  } else {
    PEM_write_bio_PUBKEY(bio.get(), key);
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

OpContext Budget() {
  return OpContext{std::chrono::steady_clock::now() + std::chrono::seconds(10), {}};
}

}  // namespace

KeyPair MakeRsaKey() {
  CHandle<EVP_PKEY, EVP_PKEY_free> key(EVP_RSA_gen(2048));
  if (!key) return {};
  return KeyPair{Pem(key.get(), true), Pem(key.get(), false)};
}

std::string KeyJson(const KeyPair& key, const std::string& token_uri, const std::string& email) {
  // The shape of a key file the Cloud console issues.
  return nlohmann::json{{"type", "service_account"},
                        {"project_id", kProject},
                        {"private_key_id", "0123456789abcdef0123456789abcdef01234567"},
                        {"private_key", key.private_pem},
                        {"client_email", email},
                        {"client_id", "123456789012345678901"},
                        {"auth_uri", "https://accounts.google.com/o/oauth2/auth"},
                        {"token_uri", token_uri}}
      .dump(2);
}

std::string ComputeModelViolations(const std::string& message, const std::string& json) {
  const std::string dir = std::string(PP_SOURCE_DIR) + "/tests/providers/gcp";
  const std::string file = (std::filesystem::temp_directory_path() /
                            ("pp-gcp-model-" + std::to_string(::getpid()) + ".json"))
                               .string();
  std::ofstream(file) << json;
  const std::string cmd = "/usr/bin/python3 " + dir + "/compute_model.py " + dir +
                          "/testdata/compute_v1_subset.proto " + message + " " + file + " 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  std::size_t n;
  while (p != nullptr && (n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = p != nullptr ? ::pclose(p) : -1;
  std::filesystem::remove(file);
  if (status != 0 && out.empty()) return "compute_model.py failed to run";
  return out;
}

GceFake::GceFake(std::vector<std::string> extra_args) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "pp-gce-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    return;
  }
  dir_ = tmpl;
  key_ = MakeRsaKey();
  std::ofstream(dir_ + "/sa.pub.pem") << key_.public_pem;
  std::vector<std::string> args = {
      "--project",
      kProject,
      "--sa-email",
      kEmail,
      "--sa-public-key",
      dir_ + "/sa.pub.pem",
      "--images",
      "podvm-image=10,big-image=30",
      "--model",
      std::string(PP_SOURCE_DIR) + "/tests/providers/gcp/testdata/compute_v1_subset.proto"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  fake_ = std::make_unique<pp::testing::FakeCloudProcess>("gce_fake.py", args);
  http::ClientOptions options;
  options.ca_bundle = fake_->ca_bundle();
  control_ = std::make_unique<http::Client>(options);
}

GceFake::~GceFake() {
  fake_.reset();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::string GceFake::key_json() const { return KeyJson(key_, url() + "/token"); }

GcpConfig GceFake::Config() const {
  GcpConfig c;
  c.credentials = key_json();
  c.project_id = kProject;
  c.zones = {"us-central1-a"};
  c.image_name = "podvm-image";
  c.machine_type = "n2d-standard-2";
  c.network = "default";
  c.confidential_type = "SEV_SNP";
  c.compute_endpoint = url() + "/compute/v1";
  c.ca_bundle = ca_bundle();
  c.poll_interval = std::chrono::milliseconds(50);
  c.op_poll_initial = std::chrono::milliseconds(20);
  c.op_poll_max = std::chrono::milliseconds(100);
  c.retry.initial = std::chrono::milliseconds(20);
  c.retry.max_delay = std::chrono::milliseconds(200);
  c.cleanup_budget = std::chrono::seconds(60);
  return c;
}

std::string GceFake::Post(const std::string& path, const std::string& body) {
  http::Request r;
  r.method = "POST";
  r.url = url() + path;
  r.body = body;
  r.headers = {{"Content-Type", "application/json"}};
  auto response = control_->Do(r, Budget());
  EXPECT_TRUE(response.has_value()) << path << ": " << response.error().message;
  return response ? response->body : std::string();
}

void GceFake::Configure(const nlohmann::json& config) { Post("/_gce/config", config.dump()); }
void GceFake::RevokeTokens() { Post("/_gce/revoke", "{}"); }

void GceFake::Reset() {
  SetFaults(nlohmann::json::array());
  Configure({{"stuck", ""}, {"exhausted", nlohmann::json::array()}, {"page_size", 500}});
}

void GceFake::SetFaults(const nlohmann::json& rules) {
  auto done = fake_->SetFaults(rules.dump());
  EXPECT_TRUE(done.has_value()) << done.error().message;
}

nlohmann::json GceFake::Stats() {
  auto stats = fake_->Stats();
  EXPECT_TRUE(stats.has_value()) << stats.error().message;
  return stats ? nlohmann::json::parse(*stats) : nlohmann::json::object();
}

int GceFake::Calls(const std::string& action) {
  const auto stats = Stats();
  return stats["calls"].value(action, 0);
}

std::vector<nlohmann::json> GceFake::Instances(const std::string& prefix) {
  std::vector<nlohmann::json> out;
  const nlohmann::json stats = Stats();  // not a temporary in the range-for: it would die first
  for (const auto& i : stats["instances"]) {
    if (i["name"].get<std::string>().starts_with(prefix)) out.push_back(i);
  }
  return out;
}

GceFake& SharedFake() {
  static GceFake* fake = [] {
    static std::unique_ptr<GceFake> owned;
    owned = std::make_unique<GceFake>();
    // Stopped by the static's destructor at exit (the fake's pid, not by name).
    return owned.get();
  }();
  return *fake;
}

}  // namespace pp::providers::gcp::testing
