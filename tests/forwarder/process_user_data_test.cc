#include "forwarder/process_user_data.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/podvm/apf_config.h"
#include "common/podvm/encoding.h"
#include "common/podvm/initdata.h"
#include "common/podvm/pool_config.h"
#include "common/podvm/user_data.h"
#include "tests/support/test_util.h"

namespace pp::forwarder {
namespace {

constexpr const char* kInitdataToml = R"(version = "0.1.0"
algorithm = "sha256"

[data]
"aa.toml" = '''
[token_configs.kbs]
url = "http://kbs:8080"
'''
"cdh.toml" = "socket = 'unix:///run/confidential-containers/cdh.sock'\n"
"policy.rego" = "package agent_policy\n"
"unrelated" = "x"
)";

std::string ApfJson() {
  podvm::ApfConfig config;
  config.pod_name = "nginx";
  config.pod_namespace = "default";
  config.tls_server_key = "-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n";
  return podvm::SerializeApfConfig(config);
}

podvm::WriteFile Entry(std::string path, std::string content) {
  podvm::WriteFile file;
  file.path = std::move(path);
  file.content = std::move(content);
  return file;
}

// A document with one entry at `path` holding `content`.
std::string OneFile(const std::string& path, const std::string& content) {
  return podvm::RenderUserData({Entry(path, content)});
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

unsigned ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::string Rejection(const std::string& user_data) {
  auto plan = PlanFromText(user_data);
  EXPECT_FALSE(plan.has_value()) << user_data;
  if (plan) return {};
  EXPECT_EQ(plan.error().code, Code::kInvalidArgument);
  EXPECT_NE(plan.error().message.find("nothing written"), std::string::npos)
      << plan.error().message;
  return plan.error().message;
}

TEST(ProcessUserDataTest, WritesEveryAllowedFileWithItsMode) {
  testing::TempDir dir;
  const std::string user_data = podvm::RenderUserData({
      Entry("/run/peerpod/apf.json", ApfJson()),
      Entry("/run/peerpod/auth.json", R"({"auths": {"quay.io": {"auth": "dXNlcjpwYXNz"}}})"),
      Entry("/run/peerpod/initdata", podvm::EncodeInitdata(kInitdataToml) + "\n"),
      Entry("/run/peerpod/scratch-space.marker", ""),
  });
  auto plan = PlanFromText(user_data);
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_TRUE(WritePlan(dir.path(), *plan));
  EXPECT_EQ(ReadText(dir / "apf.json"), ApfJson());
  EXPECT_EQ(ModeOf(dir / "apf.json"), 0600u);
  EXPECT_EQ(ModeOf(dir / "auth.json"), 0600u);
  EXPECT_EQ(ReadText(dir / "initdata"), podvm::EncodeInitdata(kInitdataToml) + "\n")
      << "initdata is kept as delivered";
  EXPECT_EQ(ModeOf(dir / "initdata"), 0600u);
  EXPECT_EQ(ReadText(dir / "scratch-space.marker"), "");
  EXPECT_EQ(ModeOf(dir / "scratch-space.marker"), 0644u);
  // What initdata yields.
  EXPECT_EQ(ReadText(dir / "aa.toml"), "[token_configs.kbs]\nurl = \"http://kbs:8080\"\n");
  EXPECT_EQ(ReadText(dir / "cdh.toml"),
            "socket = 'unix:///run/confidential-containers/cdh.sock'\n");
  EXPECT_EQ(ReadText(dir / "policy.rego"), "package agent_policy\n");
  EXPECT_EQ(ModeOf(dir / "policy.rego"), 0600u);
  EXPECT_FALSE(std::filesystem::exists(dir / "unrelated"));
  // sha256 over the exact TOML bytes, lower-case hex, no newline (as CAA writes it).
  podvm::Initdata reference;
  std::string error;
  ASSERT_TRUE(podvm::ParseInitdataToml(kInitdataToml, reference, error));
  EXPECT_EQ(ReadText(dir / "initdata.digest"), reference.digest_hex);
  EXPECT_EQ(ReadText(dir / "initdata.digest").size(), 64u);
  EXPECT_EQ(ModeOf(dir / "initdata.digest"), 0644u);
  // No temporaries left behind.
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_NE(entry.path().filename().string().front(), '.') << entry.path();
  }
}

TEST(ProcessUserDataTest, InitdataFilesWinOverWriteFilesAndAreNoted) {
  const std::string user_data = podvm::RenderUserData({
      Entry("/run/peerpod/aa.toml", "[from]\nuser_data = true\n"),
      Entry("/run/peerpod/initdata", podvm::EncodeInitdata(kInitdataToml)),
  });
  auto plan = PlanFromText(user_data);
  ASSERT_TRUE(plan) << plan.error().message;
  const auto aa = std::find_if(plan->files.begin(), plan->files.end(),
                               [](const auto& f) { return f.name == "aa.toml"; });
  ASSERT_NE(aa, plan->files.end());
  EXPECT_NE(aa->bytes.find("kbs:8080"), std::string::npos);
  EXPECT_EQ(std::count_if(plan->files.begin(), plan->files.end(),
                          [](const auto& f) { return f.name == "aa.toml"; }),
            1);
  bool noted = false;
  for (const auto& note : plan->notes)
    noted |= note.find("replaces the write_files entry") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(ProcessUserDataTest, DecodesEncodedEntries) {
  podvm::WriteFile gz = Entry("/run/peerpod/auth.json", podvm::Base64Encode(podvm::GzipCompress("{\"auths\": {}}")));
  gz.encoding = podvm::ContentEncoding::kGzipBase64;
  podvm::WriteFile b64 = Entry("/run/peerpod/cdh.toml", podvm::Base64Encode("socket = 'x'\n"));
  b64.encoding = podvm::ContentEncoding::kBase64;
  auto plan = PlanFromText(podvm::RenderUserData({gz, b64}));
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->files[0].bytes, "{\"auths\": {}}");
  EXPECT_EQ(plan->files[1].bytes, "socket = 'x'\n");
}

TEST(ProcessUserDataTest, RequestedModesOnlyTighten) {
  podvm::WriteFile loose = Entry("/run/peerpod/apf.json", ApfJson());
  loose.permissions = "0666";
  podvm::WriteFile tight = Entry("/run/peerpod/scratch-space.marker", "");
  tight.permissions = "0400";
  auto plan = PlanFromText(podvm::RenderUserData({loose, tight}));
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->files[0].mode, 0600u);
  EXPECT_EQ(plan->files[1].mode, 0400u);
  ASSERT_FALSE(plan->notes.empty());
  EXPECT_NE(plan->notes[0].find("mode 0666 tightened to 0600"), std::string::npos);
}

TEST(ProcessUserDataTest, NoteButAcceptOtherOwners) {
  podvm::WriteFile file = Entry("/run/peerpod/scratch-space.marker", "");
  file.owner = "nobody:nogroup";
  auto plan = PlanFromText(podvm::RenderUserData({file}));
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->notes.size(), 1u);
  EXPECT_NE(plan->notes[0].find("owner \"nobody:nogroup\" ignored"), std::string::npos);
}

// --- each refusal, its own case ---

TEST(ProcessUserDataRefusalTest, PathTraversal) {
  const std::string error = Rejection(OneFile("/run/peerpod/../../etc/shadow", "x"));
  EXPECT_NE(error.find("path traversal"), std::string::npos) << error;
  EXPECT_NE(Rejection(OneFile("/run/peerpod/..", "x")).find("path traversal"), std::string::npos);
}

TEST(ProcessUserDataRefusalTest, PathOutsidePeerpodDir) {
  EXPECT_NE(Rejection(OneFile("/etc/cron.d/evil", "x")).find("outside /run/peerpod"),
            std::string::npos);
  EXPECT_NE(Rejection(OneFile("/run/peerpodX/apf.json", "x")).find("outside /run/peerpod"),
            std::string::npos);
  EXPECT_NE(Rejection(OneFile("run/peerpod/apf.json", "x")).find("not an absolute path"),
            std::string::npos);
}

TEST(ProcessUserDataRefusalTest, UnnormalizedAndNestedPaths) {
  EXPECT_NE(Rejection(OneFile("/run/peerpod//apf.json", ApfJson())).find("not a normalized path"),
            std::string::npos);
  EXPECT_NE(Rejection(OneFile("/run/peerpod/./apf.json", ApfJson())).find("not a normalized path"),
            std::string::npos);
  EXPECT_NE(Rejection(OneFile("/run/peerpod/sub/apf.json", ApfJson())).find("only files directly"),
            std::string::npos);
  EXPECT_NE(Rejection(OneFile("/run/peerpod/", "x")).find("only files directly"),
            std::string::npos);
}

TEST(ProcessUserDataRefusalTest, UnknownNames) {
  const std::string error = Rejection(OneFile("/run/peerpod/agent-config.toml", "x"));
  EXPECT_NE(error.find("not an allowed file (allowed: apf.json, auth.json, initdata"),
            std::string::npos)
      << error;
  EXPECT_NE(
      Rejection(OneFile("/run/peerpod/initdata.digest", "forged")).find("not an allowed file"),
      std::string::npos);
  EXPECT_NE(Rejection(OneFile("/run/peerpod/policy.rego", "x")).find("not an allowed file"),
            std::string::npos);
  EXPECT_NE(Rejection(OneFile(std::string("/run/peerpod/apf.json\0x", 23), ApfJson()))
                .find("not an allowed file"),
            std::string::npos);
}

TEST(ProcessUserDataRefusalTest, DuplicatePaths) {
  const std::string user_data = podvm::RenderUserData(
      {Entry("/run/peerpod/apf.json", ApfJson()), Entry("/run/peerpod/apf.json", ApfJson())});
  EXPECT_NE(Rejection(user_data).find(
                "write_files[1] (/run/peerpod/apf.json): the same file is listed twice"),
            std::string::npos);
}

TEST(ProcessUserDataRefusalTest, Append) {
  podvm::WriteFile file = Entry("/run/peerpod/auth.json", "{}");
  file.append = true;
  EXPECT_NE(Rejection(podvm::RenderUserData({file})).find("append is not supported"), std::string::npos);
}

TEST(ProcessUserDataRefusalTest, OversizedContent) {
  const std::string big = "{\"pad\": \"" + std::string(kMaxFileBytes, 'a') + "\"}";
  EXPECT_NE(Rejection(OneFile("/run/peerpod/auth.json", big)).find("more than the limit"),
            std::string::npos);
  // A gzip bomb stops at the limit too.
  podvm::WriteFile bomb = Entry("/run/peerpod/auth.json",
                         podvm::Base64Encode(podvm::GzipCompress(std::string(50 * kMaxFileBytes, ' '))));
  bomb.encoding = podvm::ContentEncoding::kGzipBase64;
  EXPECT_NE(Rejection(podvm::RenderUserData({bomb})).find("limit"), std::string::npos);
}

TEST(ProcessUserDataRefusalTest, OversizedTotal) {
  // Five files, each under the per-file cap (and tiny once compressed), add up to over the total
  // cap.
  std::vector<podvm::WriteFile> files;
  const std::string pad(kMaxFileBytes - 100, ' ');
  for (const char* name :
       {"apf.json", "auth.json", "aa.toml", "cdh.toml", "scratch-space.marker"}) {
    const std::string content =
        std::string(name).ends_with(".json") ? "{" + pad + "}" : "#" + pad + "\n";
    podvm::WriteFile file =
        Entry(std::string("/run/peerpod/") + name, podvm::Base64Encode(podvm::GzipCompress(content)));
    file.encoding = podvm::ContentEncoding::kGzipBase64;
    files.push_back(file);
  }
  ASSERT_GT(5 * pad.size(), kMaxTotalBytes);
  const std::string error = Rejection(podvm::RenderUserData(files));
  EXPECT_NE(error.find("add up to"), std::string::npos) << error;
}

TEST(ProcessUserDataRefusalTest, MalformedYaml) {
  const std::string error =
      Rejection("#cloud-config\nwrite_files:\n  - path: /run/peerpod/apf.json\n   content: [\n");
  EXPECT_NE(error.find("malformed YAML"), std::string::npos) << error;
  EXPECT_NE(Rejection("not cloud-config\n").find("#cloud-config"), std::string::npos);
}

TEST(ProcessUserDataRefusalTest, BadEncodings) {
  podvm::WriteFile b64 = Entry("/run/peerpod/auth.json", "not*base64");
  b64.encoding = podvm::ContentEncoding::kBase64;
  EXPECT_NE(Rejection(podvm::RenderUserData({b64})).find("content: base64"), std::string::npos);
  podvm::WriteFile gz = Entry("/run/peerpod/auth.json", podvm::Base64Encode("not gzip"));
  gz.encoding = podvm::ContentEncoding::kGzipBase64;
  EXPECT_NE(Rejection(podvm::RenderUserData({gz})).find("content: gzip"), std::string::npos);
  EXPECT_NE(Rejection("#cloud-config\nwrite_files:\n- path: /run/peerpod/auth.json\n  encoding: "
                      "rot13\n  content: x\n")
                .find("unknown encoding"),
            std::string::npos);
}

TEST(ProcessUserDataRefusalTest, BadPermissions) {
  EXPECT_NE(Rejection("#cloud-config\nwrite_files:\n- path: /run/peerpod/auth.json\n  permissions: "
                      "u=rw\n  content: '{}'\n")
                .find("permissions"),
            std::string::npos);
}

TEST(ProcessUserDataRefusalTest, ContentThatFailsItsFormat) {
  EXPECT_NE(Rejection(OneFile("/run/peerpod/apf.json", "{\"pod-network\": {\"mtu\": \"big\"}}"))
                .find("apf.json: pod-network.mtu: must be an integer"),
            std::string::npos);
  EXPECT_NE(
      Rejection(OneFile("/run/peerpod/apf.json", "not json")).find("apf.json: not valid JSON"),
      std::string::npos);
  EXPECT_NE(Rejection(OneFile("/run/peerpod/auth.json", "[]")).find("not a JSON object"),
            std::string::npos);
  EXPECT_NE(Rejection(OneFile("/run/peerpod/initdata", "version = \"0.1.0\"\n"))
                .find("initdata: not base64(gzip(TOML))"),
            std::string::npos);
  EXPECT_NE(Rejection(OneFile("/run/peerpod/initdata",
                              podvm::EncodeInitdata("version = \"9\"\nalgorithm = \"sha256\"\n")))
                .find("0.1.0"),
            std::string::npos);
  EXPECT_NE(Rejection(OneFile("/run/peerpod/aa.toml", "[unclosed\n")).find("not valid TOML"),
            std::string::npos);
}

std::string PoolJson() {
  podvm::PoolConfig config;
  config.pool_vm = "podvm-pool-small-0001";
  config.tls_server_cert = "-----BEGIN CERTIFICATE-----\nc\n-----END CERTIFICATE-----\n";
  config.tls_server_key = "-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n";
  config.tls_client_ca = "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n";
  return podvm::SerializePoolConfig(config);
}

TEST(ProcessUserDataTest, APoolVmBootsWithPoolJsonAndInitdata) {
  pp::testing::TempDir dir;
  auto plan = PlanFromText(podvm::RenderUserData(
      {Entry("/run/peerpod/pool.json", PoolJson()),
       Entry("/run/peerpod/initdata", podvm::EncodeInitdata(kInitdataToml))}));
  ASSERT_TRUE(plan) << plan.error().ToString();
  ASSERT_TRUE(WritePlan(dir.path(), *plan));
  EXPECT_EQ(ReadText(dir / "pool.json"), PoolJson());
  EXPECT_EQ(ModeOf(dir / "pool.json"), 0600u);
  EXPECT_TRUE(std::filesystem::exists(dir / "initdata.digest"));
}

TEST(ProcessUserDataRefusalTest, PoolJsonIsValidatedAndNeverComesWithApfJson) {
  EXPECT_NE(Rejection(OneFile("/run/peerpod/pool.json", "{\"pool-vm\": 1}"))
                .find("pool.json: pool-vm: must be a string"),
            std::string::npos);
  EXPECT_NE(Rejection(podvm::RenderUserData({Entry("/run/peerpod/apf.json", ApfJson()),
                                             Entry("/run/peerpod/pool.json", PoolJson())}))
                .find("apf.json and pool.json together"),
            std::string::npos);
}

TEST(ProcessUserDataRefusalTest, OneBadEntryRejectsAllAndEveryProblemIsListed) {
  testing::TempDir dir;
  const std::string user_data = podvm::RenderUserData({
      Entry("/run/peerpod/apf.json", ApfJson()),
      Entry("/etc/passwd", "root::0:0::/:/bin/sh\n"),
      Entry("/run/peerpod/auth.json", "{}"),
      Entry("/run/peerpod/nope", ""),
  });
  auto plan = PlanFromText(user_data);
  ASSERT_FALSE(plan);
  EXPECT_NE(plan.error().message.find("write_files[1] (/etc/passwd): outside"), std::string::npos);
  EXPECT_NE(plan.error().message.find("write_files[3] (/run/peerpod/nope): not an allowed file"),
            std::string::npos);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(ProcessUserDataRefusalTest, ErrorsNeverContainContents) {
  const std::string error =
      Rejection(OneFile("/run/peerpod/apf.json", "{\"tls-server-key\": 42, \"x\": \"SECRET\"}"));
  EXPECT_EQ(error.find("SECRET"), std::string::npos);
  EXPECT_EQ(error.find("42"), std::string::npos);
}

// --- writing ---

TEST(WritePlanTest, ReplacesASymlinkInsteadOfFollowingIt) {
  testing::TempDir dir;
  const std::string victim = dir / "victim";
  { std::ofstream(victim) << "precious"; }
  const std::string out = dir / "out";
  std::filesystem::create_directory(out);
  std::filesystem::create_symlink(victim, out + "/apf.json");
  // A symlink planted where the temporary file goes is not followed either.
  std::filesystem::create_symlink(victim, out + "/.auth.json.tmp-" + std::to_string(::getpid()));
  Plan plan;
  plan.files.push_back({"apf.json", "{}", 0600});
  plan.files.push_back({"auth.json", "{}", 0600});
  ASSERT_TRUE(WritePlan(out, plan));
  EXPECT_EQ(ReadText(victim), "precious");
  EXPECT_FALSE(std::filesystem::is_symlink(out + "/apf.json"));
  EXPECT_EQ(ReadText(out + "/apf.json"), "{}");
  EXPECT_EQ(ReadText(out + "/auth.json"), "{}");
}

TEST(WritePlanTest, ReplacesExistingFilesAtomically) {
  testing::TempDir dir;
  Plan plan;
  plan.files.push_back({"apf.json", "old", 0644});
  ASSERT_TRUE(WritePlan(dir.path(), plan));
  plan.files[0] = {"apf.json", "new", 0600};
  ASSERT_TRUE(WritePlan(dir.path(), plan));
  EXPECT_EQ(ReadText(dir / "apf.json"), "new");
  EXPECT_EQ(ModeOf(dir / "apf.json"), 0600u);
}

TEST(WritePlanTest, CreatesTheOutputDirectory) {
  testing::TempDir dir;
  Plan plan;
  plan.files.push_back({"initdata.digest", "ab", 0644});
  ASSERT_TRUE(WritePlan(dir / "run/peerpod", plan));
  EXPECT_EQ(ReadText(dir / "run/peerpod/initdata.digest"), "ab");
}

TEST(WritePlanTest, ADirectoryInTheWayWritesNothing) {
  testing::TempDir dir;
  std::filesystem::create_directory(dir / "auth.json");
  Plan plan;
  plan.files.push_back({"apf.json", "{}", 0600});
  plan.files.push_back({"auth.json", "{}", 0600});
  auto written = WritePlan(dir.path(), plan);
  ASSERT_FALSE(written);
  EXPECT_NE(written.error().message.find("is a directory; nothing written"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir / "apf.json"));
}

TEST(WritePlanTest, PlanFromExistingInitdata) {
  auto plan = PlanFromInitdata(podvm::EncodeInitdata(kInitdataToml));
  ASSERT_TRUE(plan) << plan.error().message;
  std::vector<std::string> names;
  for (const auto& f : plan->files) names.push_back(f.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"aa.toml", "cdh.toml", "policy.rego", "initdata.digest"}));
  EXPECT_FALSE(PlanFromInitdata("garbage"));
}

}  // namespace
}  // namespace pp::forwarder
