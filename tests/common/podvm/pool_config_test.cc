#include "common/podvm/pool_config.h"

#include <gtest/gtest.h>

#include <string>

namespace pp::podvm {
namespace {

PoolConfig Example() {
  PoolConfig config;
  config.pool_vm = "podvm-pool-small-0001";
  config.tls_server_cert = "-----BEGIN CERTIFICATE-----\nc\n-----END CERTIFICATE-----\n";
  config.tls_server_key = "-----BEGIN PRIVATE KEY-----\nsecret-key\n-----END PRIVATE KEY-----\n";
  config.tls_client_ca = "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n";
  return config;
}

std::string MustFail(const std::string& json) {
  PoolConfig config;
  std::string error;
  EXPECT_FALSE(ParsePoolConfig(json, config, error)) << json;
  EXPECT_EQ(error.find("secret-key"), std::string::npos) << "never quotes values: " << error;
  return error;
}

TEST(PoolConfigTest, SerializeThenParseGivesTheSameConfig) {
  for (const std::string version : {"", "VersionTLS12", "VersionTLS13"}) {
    PoolConfig config = Example();
    config.tls_min_version = version;
    const std::string json = SerializePoolConfig(config);
    PoolConfig parsed;
    std::string error;
    ASSERT_TRUE(ParsePoolConfig(json, parsed, error)) << error;
    EXPECT_EQ(parsed, config);
  }
}

TEST(PoolConfigTest, UsesTheApfJsonStyleKeys) {
  const std::string json = SerializePoolConfig(Example());
  for (const char* key :
       {"\"pool-vm\"", "\"tls-server-cert\"", "\"tls-server-key\"", "\"tls-client-ca\""}) {
    EXPECT_NE(json.find(key), std::string::npos) << key;
  }
  EXPECT_EQ(json.find("tls-min-version"), std::string::npos) << "only when set";
}

TEST(PoolConfigTest, RequiresEveryPartAndNamesTheMissingKey) {
  EXPECT_EQ(
      MustFail(R"({"tls-server-cert":"c","tls-server-key":"secret-key","tls-client-ca":"a"})"),
      "pool.json: pool-vm: is missing");
  EXPECT_EQ(MustFail(R"({"pool-vm":"vm","tls-server-key":"secret-key","tls-client-ca":"a"})"),
            "pool.json: tls-server-cert: is missing");
  EXPECT_EQ(MustFail(R"({"pool-vm":"vm","tls-server-cert":"c","tls-client-ca":"a"})"),
            "pool.json: tls-server-key: is missing");
  EXPECT_EQ(MustFail(R"({"pool-vm":"vm","tls-server-cert":"c","tls-server-key":"secret-key"})"),
            "pool.json: tls-client-ca: is missing");
  EXPECT_EQ(
      MustFail(R"({"pool-vm":"vm","tls-server-cert":"c","tls-server-key":"","tls-client-ca":"a"})"),
      "pool.json: tls-server-key: is empty");
}

TEST(PoolConfigTest, RefusesWrongTypesUnknownKeysBadNamesAndVersions) {
  const std::string rest =
      R"("tls-server-cert":"c","tls-server-key":"secret-key","tls-client-ca":"a")";
  EXPECT_EQ(MustFail(R"({"pool-vm":7,)" + rest + "}"),
            "pool.json: pool-vm: must be a string, not number");
  EXPECT_EQ(
      MustFail(
          R"({"pool-vm":"vm","tls-server-key":["secret-key"],"tls-server-cert":"c","tls-client-ca":"a"})"),
      "pool.json: tls-server-key: must be a string, not array");
  EXPECT_NE(
      MustFail(R"({"pool-vm":"vm/../x",)" + rest + "}").find("pool.json: pool-vm: not a VM name"),
      std::string::npos);
  EXPECT_NE(MustFail(R"({"pool-vm":")" + std::string(254, 'a') + "\"," + rest + "}")
                .find("pool-vm: not a VM name"),
            std::string::npos);
  EXPECT_EQ(MustFail(R"({"pool-vm":"vm","tls-min-version":"VersionTLS10",)" + rest + "}"),
            "pool.json: tls-min-version: unknown value (expected VersionTLS12 or VersionTLS13)");
  EXPECT_EQ(MustFail(R"({"pool-vm":"vm","pod-name":"x",)" + rest + "}"),
            "pool.json: \"pod-name\": unknown key");
  EXPECT_EQ(MustFail("[]"), "pool.json: must be a JSON object, not array");
  EXPECT_EQ(MustFail("{\"pool-vm\": \"secret-key"), "pool.json: not valid JSON");
  EXPECT_NE(MustFail(std::string(kMaxPoolConfigBytes + 1, ' ')).find("larger than"),
            std::string::npos);
}

TEST(PoolConfigTest, NullCountsAsAbsent) {
  PoolConfig config;
  std::string error;
  ASSERT_TRUE(ParsePoolConfig(
      R"({"pool-vm":"vm","tls-server-cert":"c","tls-server-key":"k","tls-client-ca":"a","tls-min-version":null})",
      config, error))
      << error;
  EXPECT_EQ(config.tls_min_version, "");
}

}  // namespace
}  // namespace pp::podvm
