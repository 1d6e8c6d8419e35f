#include "common/podvm/apf_config.h"

#include <gtest/gtest.h>

#include <string>

namespace pp::podvm {
namespace {

// What cloud-api-adaptor's Go encoder writes for a pod on a Calico-style network.
constexpr const char* kCaaExample = R"({
  "pod-network": {
    "podip": "10.244.1.5/32",
    "pod-hw-addr": "0a:58:0a:f4:01:05",
    "interface": "eth0",
    "worker-node-ip": "192.168.122.10/24",
    "tunnel-type": "vxlan",
    "routes": [
      {"dst": "169.254.1.1/32", "gw": "", "dev": "eth0", "scope": "link"},
      {"dst": "0.0.0.0/0", "gw": "169.254.1.1", "dev": "eth0", "protocol": "boot"}
    ],
    "neighbors": [
      {"ip": "169.254.1.1", "hw-addr": "ee:ee:ee:ee:ee:ee", "dev": "eth0", "state": "permanent"}
    ],
    "mtu": 1450,
    "index": 3,
    "vxlan-port": 4789,
    "vxlan-id": 555003,
    "dedicated": false,
    "external-net-via-pod-vm": true
  },
  "pod-namespace": "default",
  "pod-name": "nginx",
  "tls-server-key": "-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n",
  "tls-server-cert": "-----BEGIN CERTIFICATE-----\nc\n-----END CERTIFICATE-----\n",
  "tls-client-ca": "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
  "tls-min-version": "VersionTLS13",
  "tls-cipher-suites": ["TLS_AES_128_GCM_SHA256"],
  "sc-pp-prv": "c2VjcmV0",
  "sc-wn-pub": "cHVi"
})";

ApfConfig MustParse(const std::string& json, std::vector<std::string>* notes = nullptr) {
  ApfConfig config;
  std::string error;
  EXPECT_TRUE(ParseApfConfig(json, config, error, notes)) << error;
  return config;
}

std::string MustFail(const std::string& json) {
  ApfConfig config;
  std::string error;
  EXPECT_FALSE(ParseApfConfig(json, config, error)) << json;
  return error;
}

TEST(ApfConfigTest, ParsesWhatCloudApiAdaptorWrites) {
  std::vector<std::string> notes;
  const ApfConfig config = MustParse(kCaaExample, &notes);
  ASSERT_TRUE(config.pod_network.has_value());
  const PodNetwork& net = *config.pod_network;
  EXPECT_EQ(net.pod_ip, "10.244.1.5/32");
  EXPECT_EQ(net.pod_hw_addr, "0a:58:0a:f4:01:05");
  EXPECT_EQ(net.interface, "eth0");
  EXPECT_EQ(net.worker_node_ip, "192.168.122.10/24");
  EXPECT_EQ(net.tunnel_type, "vxlan");
  ASSERT_EQ(net.routes.size(), 2u);
  EXPECT_EQ(net.routes[0], (Route{"169.254.1.1/32", "", "eth0", "", "link"}));
  EXPECT_EQ(net.routes[1], (Route{"0.0.0.0/0", "169.254.1.1", "eth0", "boot", ""}));
  ASSERT_EQ(net.neighbors.size(), 1u);
  EXPECT_EQ(net.neighbors[0], (Neighbor{"169.254.1.1", "ee:ee:ee:ee:ee:ee", "eth0", "permanent"}));
  EXPECT_EQ(net.mtu, 1450);
  EXPECT_EQ(net.index, 3);
  EXPECT_EQ(net.vxlan_port, 4789);
  EXPECT_EQ(net.vxlan_id, 555003);
  EXPECT_FALSE(net.dedicated);
  EXPECT_TRUE(net.external_net_via_pod_vm);
  EXPECT_EQ(config.pod_namespace, "default");
  EXPECT_EQ(config.pod_name, "nginx");
  EXPECT_NE(config.tls_server_key.find("secret"), std::string::npos);
  EXPECT_EQ(config.tls_min_version, "VersionTLS13");
  EXPECT_EQ(config.tls_cipher_suites, std::vector<std::string>{"TLS_AES_128_GCM_SHA256"});
  EXPECT_TRUE(notes.empty()) << "legacy SecureComms keys are ignored silently: " << notes.front();
}

TEST(ApfConfigTest, SerializeRoundTrips) {
  const ApfConfig config = MustParse(kCaaExample);
  const std::string json = SerializeApfConfig(config);
  EXPECT_EQ(MustParse(json), config);
  EXPECT_EQ(json.find("sc-pp-prv"), std::string::npos);
  // Go's key order, so a diff against CAA's output is readable.
  EXPECT_LT(json.find("\"pod-network\""), json.find("\"pod-namespace\""));
  EXPECT_LT(json.find("\"pod-name\""), json.find("\"tls-server-key\""));
}

TEST(ApfConfigTest, DualStackPodCarriesItsIpv6PrefixOnlyWhenSet) {
  ApfConfig config = MustParse(kCaaExample);
  EXPECT_TRUE(config.pod_network->pod_ipv6.empty());
  EXPECT_EQ(SerializeApfConfig(config).find("podipv6"), std::string::npos) << "IPv4-only stays CAA's form";
  EXPECT_EQ(SerializeApfConfig(config).find("routes6"), std::string::npos);
  config.pod_network->pod_ipv6 = "fd00:10:244:1::5/64";
  config.pod_network->routes6 = {{"::/0", "fd00:10:244:1::1", "eth0", "", ""}};
  config.pod_network->neighbors6 = {{"fd00:10:244:1::1", "ee:ee:ee:ee:ee:ee", "eth0", "permanent"}};
  const std::string json = SerializeApfConfig(config);
  EXPECT_NE(json.find("\"routes6\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"neighbors6\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"podipv6\": \"fd00:10:244:1::5/64\""), std::string::npos) << json;
  EXPECT_EQ(MustParse(json), config);
  const std::string bad = R"({"pod-network": {"podipv6": "fd00::5"}})";
  EXPECT_NE(MustFail(bad).find("pod-network.podipv6"), std::string::npos);
}

TEST(ApfConfigTest, SerializeFollowsGoOmitempty) {
  ApfConfig config;
  config.pod_name = "p";
  std::string json = SerializeApfConfig(config);
  EXPECT_NE(json.find("\"pod-network\": null"), std::string::npos) << json;
  EXPECT_NE(json.find("\"pod-namespace\": \"\""), std::string::npos);
  EXPECT_EQ(json.find("tls-"), std::string::npos) << "TLS keys are omitempty";
  config.pod_network = PodNetwork{};
  config.pod_network->routes.push_back(Route{"0.0.0.0/0", "", "", "", ""});
  json = SerializeApfConfig(config);
  EXPECT_EQ(json.find("vxlan-port"), std::string::npos) << "vxlan-port/vxlan-id are omitempty";
  EXPECT_NE(json.find("\"mtu\": 0"), std::string::npos);
  EXPECT_NE(json.find("\"gw\": \"\""), std::string::npos) << "netip types ignore omitempty in Go";
  EXPECT_EQ(json.find("\"protocol\""), std::string::npos);
  EXPECT_EQ(MustParse(json), config);
}

TEST(ApfConfigTest, MinimalDocumentsAndNulls) {
  EXPECT_EQ(MustParse("{}"), ApfConfig{});
  const ApfConfig config =
      MustParse(R"({"pod-network": null, "pod-name": null, "tls-cipher-suites": null})");
  EXPECT_FALSE(config.pod_network.has_value());
  EXPECT_TRUE(MustParse(R"({"pod-network": {}})").pod_network.has_value());
}

TEST(ApfConfigTest, UnknownKeysAreNotedAndIgnored) {
  std::vector<std::string> notes;
  MustParse(
      R"({"future": 1, "pod-network": {"extra": true, "routes": [{"dst": "", "metric": 5}]}})",
      &notes);
  ASSERT_EQ(notes.size(), 3u);
  EXPECT_NE(notes[0].find("\"future\""), std::string::npos);
  EXPECT_NE(notes[1].find("pod-network.extra"), std::string::npos);
  EXPECT_NE(notes[2].find("pod-network.routes[0].metric"), std::string::npos);
}

TEST(ApfConfigTest, WrongTypeNamesTheKey) {
  EXPECT_EQ(MustFail(R"({"pod-name": 5})"), "apf.json: pod-name: must be a string, not number");
  EXPECT_EQ(MustFail(R"({"pod-network": []})"),
            "apf.json: pod-network: must be an object, not array");
  EXPECT_EQ(MustFail(R"({"pod-network": {"mtu": "1450"}})"),
            "apf.json: pod-network.mtu: must be an integer, not string");
  EXPECT_EQ(MustFail(R"({"pod-network": {"mtu": 1450.5}})"),
            "apf.json: pod-network.mtu: must be an integer, not a non-integer number");
  EXPECT_EQ(MustFail(R"({"pod-network": {"dedicated": "yes"}})"),
            "apf.json: pod-network.dedicated: must be true or false, not string");
  EXPECT_EQ(MustFail(R"({"pod-network": {"routes": {}}})"),
            "apf.json: pod-network.routes: must be an array, not object");
  EXPECT_EQ(MustFail(R"({"pod-network": {"routes": [{}, 7]}})"),
            "apf.json: pod-network.routes[1]: must be an object, not number");
  EXPECT_EQ(MustFail(R"({"tls-cipher-suites": ["a", 1]})"),
            "apf.json: tls-cipher-suites[1]: must be a string, not number");
  EXPECT_EQ(MustFail(R"({"tls-cipher-suites": "a"})"),
            "apf.json: tls-cipher-suites: must be an array, not string");
}

TEST(ApfConfigTest, ErrorsNeverQuoteValues) {
  const std::string error = MustFail(R"({"tls-min-version": "TOPSECRET"})");
  EXPECT_EQ(error.find("TOPSECRET"), std::string::npos) << error;
  EXPECT_NE(error.find("tls-min-version"), std::string::npos);
}

TEST(ApfConfigTest, RefusesOutOfRangeNumbers) {
  EXPECT_NE(MustFail(R"({"pod-network": {"mtu": 65536}})").find("pod-network.mtu: out of range"),
            std::string::npos);
  EXPECT_NE(MustFail(R"({"pod-network": {"mtu": -1}})").find("out of range"), std::string::npos);
  EXPECT_NE(MustFail(R"({"pod-network": {"vxlan-id": 16777216}})").find("vxlan-id"),
            std::string::npos);
  EXPECT_NE(MustFail(R"({"pod-network": {"vxlan-port": 70000}})").find("vxlan-port"),
            std::string::npos);
  EXPECT_NE(MustFail(R"({"pod-network": {"index": 99999999999999999999}})").find("index"),
            std::string::npos);
  EXPECT_EQ(
      MustParse(R"({"pod-network": {"vxlan-id": 16777215, "mtu": 65535}})").pod_network->vxlan_id,
      16777215);
}

TEST(ApfConfigTest, RefusesMalformedAddresses) {
  EXPECT_NE(MustFail(R"({"pod-network": {"podip": "10.244.1.5"}})")
                .find("pod-network.podip: not a CIDR prefix"),
            std::string::npos);
  EXPECT_NE(MustFail(R"({"pod-network": {"podip": "10.244.1.5/33"}})").find("podip"),
            std::string::npos);
  EXPECT_NE(MustFail(R"({"pod-network": {"podip": "10.244.1.5/024"}})").find("podip"),
            std::string::npos);
  EXPECT_NE(MustFail(R"({"pod-network": {"worker-node-ip": "node-1/24"}})").find("worker-node-ip"),
            std::string::npos);
  EXPECT_NE(MustFail(R"({"pod-network": {"routes": [{"gw": "10.0.0.256"}]}})")
                .find("routes[0].gw: not an IP"),
            std::string::npos);
  EXPECT_NE(MustFail(R"({"pod-network": {"pod-hw-addr": "0a:58:0a:f4:01"}})").find("pod-hw-addr"),
            std::string::npos);
  EXPECT_NE(MustFail(R"({"pod-network": {"neighbors": [{"hw-addr": "zz:58:0a:f4:01:05"}]}})")
                .find("hw-addr"),
            std::string::npos);
  EXPECT_NE(MustFail(R"({"pod-network": {"interface": "../../etc"}})").find("interface"),
            std::string::npos);
  EXPECT_NE(
      MustFail(R"({"pod-network": {"interface": "a-very-long-interface"}})").find("interface"),
      std::string::npos);
  // IPv6 works where CAA's netip types do.
  const ApfConfig v6 = MustParse(
      R"({"pod-network": {"podip": "fd00::5/128", "routes": [{"dst": "::/0", "gw": "fe80::1"}]}})");
  EXPECT_EQ(v6.pod_network->routes[0].gw, "fe80::1");
}

TEST(ApfConfigTest, RefusesUnknownEnumNames) {
  EXPECT_NE(MustFail(R"({"pod-network": {"routes": [{"protocol": "bgp"}]}})")
                .find("routes[0].protocol: unknown value"),
            std::string::npos);
  EXPECT_NE(MustFail(R"({"pod-network": {"routes": [{"scope": "global"}]}})").find("scope"),
            std::string::npos);
  EXPECT_NE(MustFail(R"({"pod-network": {"neighbors": [{"state": "gone"}]}})").find("state"),
            std::string::npos);
  EXPECT_NE(
      MustFail(R"({"tls-min-version": "VersionTLS10"})").find("tls-min-version: unknown value"),
      std::string::npos);
}

TEST(ApfConfigTest, RefusesNonObjectsGarbageAndOversizedInput) {
  EXPECT_EQ(MustFail("[]"), "apf.json: the document must be a JSON object, not array");
  EXPECT_EQ(MustFail("{\"pod-name\": \"x\""), "apf.json: not valid JSON");
  EXPECT_EQ(MustFail(""), "apf.json: not valid JSON");
  EXPECT_EQ(MustFail("{\"pod-name\": \"\xff\"}"), "apf.json: not valid JSON");  // not UTF-8
  std::string big = "{\"pod-name\": \"" + std::string(kMaxApfConfigBytes, 'a') + "\"}";
  EXPECT_NE(MustFail(big).find("more than the limit"), std::string::npos);
}

TEST(ApfConfigTest, DeepNestingDoesNotExhaustTheStack) {
  const std::string deep = "{\"x\": " + std::string(200000, '[') + std::string(200000, ']') + "}";
  std::vector<std::string> notes;
  MustParse(deep, &notes);  // valid JSON under an unknown key: ignored
  EXPECT_EQ(notes.size(), 1u);
  MustFail(std::string(300000, '['));
}

}  // namespace
}  // namespace pp::podvm
