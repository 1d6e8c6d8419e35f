// Initdata -> loader configuration (attest/loader_config.h).
#include "attest/loader_config.h"

#include <gtest/gtest.h>

namespace pp::attest {
namespace {

podvm::Initdata Make(std::map<std::string, std::string> data) {
  podvm::Initdata d;
  d.version = "0.1.0";
  d.algorithm = "sha384";
  d.data = std::move(data);
  return d;
}

TEST(LoaderConfig, KbsFromAttestationAgentConfig) {
  auto c = LoaderConfigFromInitdata(Make({
      {"model-loader.toml", "key-resource = \"kbs:///default/model-key/llama\"\n"},
      {"aa.toml", "[token_configs.kbs]\nurl = \"https://kbs:8080\"\ncert = \"PEM\"\n"},
      {"cdh.toml", "[kbc]\nname = \"cc_kbc\"\nurl = \"https://other\"\n"}}));
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_EQ(c->resource_path, "default/model-key/llama");
  EXPECT_EQ(c->kbs_url, "https://kbs:8080");
  EXPECT_EQ(c->kbs_cert_pem, "PEM");
  EXPECT_EQ(c->key_source, KeySource::kAuto);
  EXPECT_EQ(c->key_alg, KeyAlg::kEcdhEsA256kw);
}

TEST(LoaderConfig, KbsFromDataHubConfigAndOverrides) {
  auto c = LoaderConfigFromInitdata(Make({
      {"model-loader.toml",
       "key-resource = \"kbs:///r/t/x\"\nkey-source = \"kbs\"\ntee-key-algorithm = \"RSA-OAEP-256\"\n"},
      {"cdh.toml", "[kbc]\nname = \"cc_kbc\"\nurl = \"http://kbs\"\nkbs_cert = \"C\"\n"}}));
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_EQ(c->kbs_url, "http://kbs");
  EXPECT_EQ(c->kbs_cert_pem, "C");
  EXPECT_EQ(c->key_source, KeySource::kKbs);
  EXPECT_EQ(c->key_alg, KeyAlg::kRsaOaep256);
  auto ours = LoaderConfigFromInitdata(Make({
      {"model-loader.toml", "key-resource = \"kbs:///r/t/x\"\nkbs-url = \"http://mine\"\n"},
      {"cdh.toml", "[kbc]\nurl = \"http://kbs\"\n"}}));
  EXPECT_EQ(ours->kbs_url, "http://mine");
}

TEST(LoaderConfig, CdhOnlyNeedsNoKbs) {
  auto c = LoaderConfigFromInitdata(Make({{"model-loader.toml", "key-resource = \"kbs:///r/t/x\"\nkey-source = \"cdh\"\n"}}));
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->kbs_url.empty());
}

TEST(LoaderConfig, RefusesWhatCannotWork) {
  const std::vector<std::map<std::string, std::string>> bad = {
      {},
      {{"model-loader.toml", "not = [toml"}},
      {{"model-loader.toml", "key-source = \"cdh\"\n"}},
      {{"model-loader.toml", "key-resource = 3\nkey-source = \"cdh\"\n"}},
      {{"model-loader.toml", "key-resource = \"https://x/a/b/c\"\nkey-source = \"cdh\"\n"}},
      {{"model-loader.toml", "key-resource = \"kbs:///a/b\"\nkey-source = \"cdh\"\n"}},
      {{"model-loader.toml", "key-resource = \"kbs:///a/../c\"\nkey-source = \"cdh\"\n"}},
      {{"model-loader.toml", "key-resource = \"kbs:///a/b/c\"\nkey-source = \"tpm\"\n"}},
      {{"model-loader.toml", "key-resource = \"kbs:///a/b/c\"\n"}},  // no KBS anywhere
      {{"model-loader.toml", "key-resource = \"kbs:///a/b/c\"\ntee-key-algorithm = \"RSA1_5\"\nkbs-url = \"http://k\"\n"}},
  };
  for (const auto& data : bad) {
    auto c = LoaderConfigFromInitdata(Make(data));
    ASSERT_FALSE(c.has_value());
    EXPECT_EQ(c.error().code, Code::kInvalidArgument);
  }
}

TEST(LoaderConfig, ErrorsNeverQuoteValues) {
  auto c = LoaderConfigFromInitdata(Make({{"model-loader.toml", "key-resource = \"kbs:///a/b/c\"\n"},
                                          {"aa.toml", "[token_configs.kbs]\nurl = 7\n"}}));
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message.find('7'), std::string::npos) << c.error().message;
}

}  // namespace
}  // namespace pp::attest
