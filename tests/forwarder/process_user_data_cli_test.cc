#include "forwarder/process_user_data_cli.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/base/go_flags.h"
#include "common/podvm/apf_config.h"
#include "common/podvm/encoding.h"
#include "common/podvm/initdata.h"
#include "common/podvm/user_data.h"
#include "tests/support/log_capture.h"
#include "tests/support/test_util.h"

namespace pp::forwarder {
namespace {

ProcessUserDataOptions Parse(std::vector<const char*> argv) {
  CLI::App app;
  ProcessUserDataOptions options;
  AddProcessUserDataFlags(app, options);
  const auto args = NormalizeGoFlags(static_cast<int>(argv.size()), argv.data());
  std::vector<const char*> cargs;
  for (const auto& a : args) cargs.push_back(a.c_str());
  app.parse(static_cast<int>(cargs.size()), cargs.data());
  return options;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string GoodUserData() {
  podvm::ApfConfig apf;
  apf.pod_name = "nginx";
  podvm::WriteFile a;
  a.path = "/run/peerpod/apf.json";
  a.content = podvm::SerializeApfConfig(apf);
  podvm::WriteFile i;
  i.path = "/run/peerpod/initdata";
  i.content = podvm::EncodeInitdata(
      "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"aa.toml\" = \"[x]\\n\"\n");
  return podvm::RenderUserData({a, i});
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_level_ = spdlog::get_level();
    spdlog::set_level(spdlog::level::warn);
  }
  void TearDown() override { spdlog::set_level(previous_level_); }
  spdlog::level::level_enum previous_level_ = spdlog::level::info;
};

TEST_F(CliTest, AcceptsCaaAndGoStyleFlags) {
  const auto options =
      Parse({"process-user-data", "provision-files", "-t", "30", "-user-data-file",
             "/media/cidata/user-data", "-output-dir=/tmp/x", "-retry-delay", "0.5"});
  EXPECT_EQ(options.timeout_seconds, 30);
  EXPECT_EQ(options.user_data_file, "/media/cidata/user-data");
  EXPECT_EQ(options.output_dir, "/tmp/x");
  EXPECT_DOUBLE_EQ(options.retry_delay_seconds, 0.5);
  const auto url =
      Parse({"process-user-data", "-url", "http://169.254.169.254/x", "-header", "Metadata: true",
             "-header", "A: b", "-base64", "--user-data-fetch-timeout", "5"});
  EXPECT_EQ(url.headers, (std::vector<std::string>{"Metadata: true", "A: b"}));
  EXPECT_TRUE(url.base64);
  EXPECT_EQ(url.timeout_seconds, 5);
  const auto defaults = Parse({"process-user-data"});
  EXPECT_EQ(defaults.output_dir, "/run/peerpod");
  EXPECT_EQ(defaults.timeout_seconds, 180);
  EXPECT_DOUBLE_EQ(defaults.retry_delay_seconds, 5);
}

TEST_F(CliTest, ValidatesCombinations) {
  ProcessUserDataOptions options;
  options.user_data_file = "a";
  options.cidata = "b";
  EXPECT_FALSE(ValidateOptions(options));
  options.cidata.clear();
  options.headers = {"no colon"};
  EXPECT_FALSE(ValidateOptions(options));
  options.url = "http://x";
  options.user_data_file.clear();
  options.headers = {"Bad: \r\nInjected: 1"};
  EXPECT_FALSE(ValidateOptions(options));
  options.headers = {"Metadata: true"};
  EXPECT_TRUE(ValidateOptions(options));
  EXPECT_EQ(
      ProcessUserDataMain(4, std::vector<const char*>{"p", "-cidata", "a", "-url=http://x"}.data()),
      2);
}

TEST_F(CliTest, ProvisionsFromAFile) {
  testing::TempDir dir;
  WriteText(dir / "user-data", GoodUserData());
  ProcessUserDataOptions options;
  options.user_data_file = dir / "user-data";
  options.output_dir = dir / "out";
  ASSERT_EQ(RunProcessUserData(options), 0);
  EXPECT_NE(ReadText(dir / "out/apf.json").find("\"pod-name\": \"nginx\""), std::string::npos);
  EXPECT_EQ(ReadText(dir / "out/aa.toml"), "[x]\n");
  EXPECT_EQ(ReadText(dir / "out/initdata.digest").size(), 64u);
}

TEST_F(CliTest, ProvisionsFromACidataImageThroughTheBinaryFlags) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir / "tree");
  WriteText(dir / "tree/user-data", GoodUserData());
  WriteText(dir / "tree/meta-data", "instance-id: i\n");
  ASSERT_EQ(std::system("command -v xorriso >/dev/null 2>&1"), 0)
      << "xorriso is not installed; run setup.sh (it builds the cidata test images)";
  const std::string cmd = "xorriso -as mkisofs -V cidata -J -r -o " + (dir / "c.iso") + " " +
                          (dir / "tree") + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string iso = dir / "c.iso";
  const std::string out = dir / "out";
  std::vector<const char*> argv{"process-user-data", "provision-files", "-cidata",
                                iso.c_str(),         "-output-dir",     out.c_str()};
  ASSERT_EQ(ProcessUserDataMain(static_cast<int>(argv.size()), argv.data()), 0);
  EXPECT_TRUE(std::filesystem::exists(dir / "out/apf.json"));
  EXPECT_TRUE(std::filesystem::exists(dir / "out/initdata.digest"));
}

TEST_F(CliTest, RejectedUserDataWritesNothingAndFails) {
  testing::TempDir dir;
  WriteText(dir / "user-data",
            "#cloud-config\nwrite_files:\n- path: /run/peerpod/apf.json\n  content: '{}'\n"
            "- path: /run/peerpod/../../etc/passwd\n  content: x\n");
  ProcessUserDataOptions options;
  options.user_data_file = dir / "user-data";
  options.output_dir = dir / "out";
  EXPECT_EQ(RunProcessUserData(options), 1);
  EXPECT_FALSE(std::filesystem::exists(dir / "out/apf.json"));
}

TEST_F(CliTest, MalformedUserDataFailsAtOnceWithoutRetrying) {
  testing::TempDir dir;
  WriteText(dir / "user-data", "#cloud-config\nwrite_files: [\n");
  ProcessUserDataOptions options;
  options.user_data_file = dir / "user-data";
  options.output_dir = dir / "out";
  options.timeout_seconds = 60;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(RunProcessUserData(options), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(CliTest, MissingCidataIsRetriedUntilTheTimeout) {
  testing::TempDir dir;
  testing::LogCapture logs;
  ProcessUserDataOptions options;
  options.cidata = dir / "not-yet.iso";
  options.output_dir = dir / "out";
  options.timeout_seconds = 1;
  options.retry_delay_seconds = 0.1;
  EXPECT_EQ(RunProcessUserData(options), 1);
  EXPECT_GE(logs.Count("not available yet, retrying"), 2u);
  EXPECT_EQ(logs.Count("gave up after"), 1u);
}

TEST_F(CliTest, MissingLocalFileFailsAtOnce) {
  testing::TempDir dir;
  testing::LogCapture logs;
  ProcessUserDataOptions options;
  options.user_data_file = dir / "never";
  options.output_dir = dir / "out";
  options.timeout_seconds = 20;  // would be waited out if a local file were retried
  options.retry_delay_seconds = 0.1;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(RunProcessUserData(options), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(logs.Count("retrying"), 0u);
  EXPECT_EQ(logs.Count("-user-data-file " + options.user_data_file + " does not exist"), 1u);
  EXPECT_FALSE(std::filesystem::exists(dir / "out"));
}

TEST_F(CliTest, Base64SourceIsDecoded) {
  testing::TempDir dir;
  WriteText(dir / "user-data.b64", podvm::Base64Encode(GoodUserData()));
  ProcessUserDataOptions options;
  options.user_data_file = dir / "user-data.b64";
  options.base64 = true;
  options.output_dir = dir / "out";
  ASSERT_EQ(RunProcessUserData(options), 0);
  EXPECT_TRUE(std::filesystem::exists(dir / "out/apf.json"));
}

TEST_F(CliTest, WithoutASourceProcessesAnExistingInitdata) {
  testing::TempDir dir;
  ProcessUserDataOptions options;
  options.output_dir = dir.path();
  EXPECT_EQ(RunProcessUserData(options), 0) << "nothing to do is success";
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  WriteText(
      dir / "initdata",
      podvm::EncodeInitdata(
          "version = \"0.1.0\"\nalgorithm = \"sha512\"\n[data]\n\"cdh.toml\" = \"a = 1\\n\"\n"));
  ASSERT_EQ(RunProcessUserData(options), 0);
  EXPECT_EQ(ReadText(dir / "cdh.toml"), "a = 1\n");
  EXPECT_EQ(ReadText(dir / "initdata.digest").size(), 128u);
  WriteText(dir / "initdata", "garbage");
  EXPECT_EQ(RunProcessUserData(options), 1);
}

}  // namespace
}  // namespace pp::forwarder
