// The cloud HTTP client against a loopback HTTPS peer (tests/providers/fakes/echo_fake.py).
#include "providers/http/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <stdlib.h>

#include <future>
#include <thread>

#include "tests/providers/fakes/fake_process.h"

namespace pp::providers::http {
namespace {

using ::testing::HasSubstr;

OpContext Budget(std::chrono::milliseconds ms, std::stop_token stop = {}) {
  return OpContext{std::chrono::steady_clock::now() + ms, std::move(stop)};
}

class ClientTest : public ::testing::Test {
 protected:
  ClientTest() : fake_("echo_fake.py") {}
  ClientOptions Options() const {
    ClientOptions o;
    o.ca_bundle = fake_.ca_bundle();
    return o;
  }
  Request Get(const std::string& path) const {
    Request r;
    r.url = fake_.url() + path;
    return r;
  }
  nlohmann::json Stats() {
    auto stats = fake_.Stats();
    EXPECT_TRUE(stats.has_value());
    return stats ? nlohmann::json::parse(*stats) : nlohmann::json::object();
  }
  testing::FakeCloudProcess fake_;
};

TEST_F(ClientTest, SendsMethodHeadersAndBodyAndReadsTheAnswer) {
  ASSERT_TRUE(fake_.running());
  Client client(Options());
  Request r = Get("/echo?x=1");
  r.method = "PUT";
  r.headers = {{"Content-Type", "application/json"}, {"X-Test", "yes"}};
  r.body = R"({"a":1})";
  auto response = client.Do(r, Budget(std::chrono::seconds(10)));
  ASSERT_TRUE(response) << response.error().ToString();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->Header("CONTENT-TYPE").value_or(""), "application/json");
  const auto echo = nlohmann::json::parse(response->body);
  EXPECT_EQ(echo["method"], "PUT");
  EXPECT_EQ(echo["path"], "/echo?x=1");
  EXPECT_EQ(echo["body"], R"({"a":1})");
  EXPECT_EQ(echo["headers"]["x-test"], "yes");
  EXPECT_FALSE(echo["headers"].contains("expect"));
}

TEST_F(ClientTest, AnHttpErrorStatusIsAnAnswerNotAnError) {
  Client client(Options());
  auto response = client.Do(Get("/status/503"), Budget(std::chrono::seconds(10)));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 503);
  EXPECT_THAT(response->body, HasSubstr("Status503"));
}

TEST_F(ClientTest, ReusesOneConnectionForSequentialCalls) {
  Client client(Options());
  for (int i = 0; i < 20; ++i) {
    auto response = client.Do(Get("/echo"), Budget(std::chrono::seconds(10)));
    ASSERT_TRUE(response) << response.error().ToString();
  }
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(Stats()["connections"].get<int>(), 2);  // ours, and the control connection for the stats
}

TEST_F(ClientTest, ConcurrentCallersShareTheConnectionCache) {
  Client client(Options());
  std::vector<std::future<bool>> results;
  for (int t = 0; t < 4; ++t) {
    results.push_back(std::async(std::launch::async, [&] {
      for (int i = 0; i < 25; ++i) {
        if (!client.Do(Get("/echo"), Budget(std::chrono::seconds(10)))) return false;
      }
      return true;
    }));
  }
  for (auto& r : results) EXPECT_TRUE(r.get());
  // At most one connection per concurrent caller, however many calls were made.
  EXPECT_LE(client.connections_opened(), 4u);
  EXPECT_GE(client.connections_opened(), 1u);
}

TEST_F(ClientTest, RefusesAPeerItsCaBundleDoesNotVouchFor) {
  Client client;  // the system store: it does not know the fake's CA
  auto response = client.Do(Get("/echo"), Budget(std::chrono::seconds(10)));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, Code::kFailedPrecondition) << response.error().ToString();
}

TEST_F(ClientTest, AResponseOverTheLimitFailsWithoutBeingHeldWhole) {
  ClientOptions options = Options();
  options.max_response_bytes = 64 * 1024;
  Client client(options);
  auto ok = client.Do(Get("/big/65536"), Budget(std::chrono::seconds(10)));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->body.size(), 65536u);
  auto big = client.Do(Get("/big/10000000"), Budget(std::chrono::seconds(10)));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, Code::kInternal);
  EXPECT_THAT(big.error().message, HasSubstr("larger than 65536 bytes"));
}

TEST_F(ClientTest, TheDeadlineBoundsTheCall) {
  Client client(Options());
  auto response = client.Do(Get("/slow/5000"), Budget(std::chrono::milliseconds(300)));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, Code::kDeadlineExceeded) << response.error().ToString();
}

TEST_F(ClientTest, AStopRequestAbortsTheCall) {
  Client client(Options());
  std::stop_source stop;
  auto call = std::async(std::launch::async, [&] { return client.Do(Get("/slow/20000"), Budget(std::chrono::seconds(30), stop.get_token())); });
  ASSERT_TRUE(testing::FakeCloudProcess::WaitFor([&] { return Stats()["calls"].value("slow", 0) == 1; },
                                                 std::chrono::seconds(10)));
  stop.request_stop();
  ASSERT_EQ(call.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "the stop was not honoured";
  auto response = call.get();
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, Code::kCancelled);
}

TEST_F(ClientTest, AnExpiredContextSendsNothing) {
  Client client(Options());
  auto response = client.Do(Get("/echo"), Budget(std::chrono::milliseconds(-1)));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, Code::kDeadlineExceeded);
  EXPECT_EQ(Stats()["calls"].value("echo", 0), 0);
}

TEST_F(ClientTest, ARefusedConnectionIsRetryableAndNamesTheEndpointWithoutItsQuery) {
  Client client(Options());
  const int port = fake_.port();
  fake_.Stop();
  Request r;
  r.url = "https://127.0.0.1:" + std::to_string(port) + "/path?token=secret";
  auto response = client.Do(r, Budget(std::chrono::seconds(10)));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, Code::kUnavailable);
  EXPECT_THAT(response.error().message, HasSubstr("/path"));
  EXPECT_THAT(response.error().message, ::testing::Not(HasSubstr("secret")));
}

TEST(ClientProxyTest, HonoursTheProxyEnvironment) {
  // A plain-HTTP peer that answers absolute-form requests stands in for the proxy: the request for
  // a host that does not exist reaches it only through http_proxy.
  testing::FakeCloudProcess proxy("echo_fake.py", {}, /*tls=*/false);
  ASSERT_TRUE(proxy.running());
  ::setenv("http_proxy", proxy.url().c_str(), 1);
  Client client;
  Request r;
  r.url = "http://cloud.example.invalid/echo";
  auto response = client.Do(r, Budget(std::chrono::seconds(10)));
  ::unsetenv("http_proxy");
  ASSERT_TRUE(response) << response.error().ToString();
  EXPECT_EQ(nlohmann::json::parse(response->body)["path"], "http://cloud.example.invalid/echo");
}

TEST(UrlEncodeTest, KeepsUnreservedAndEncodesTheRestUpperCase) {
  EXPECT_EQ(UrlEncode("AZaz09-_.~"), "AZaz09-_.~");
  EXPECT_EQ(UrlEncode("a b+c/d=e&f"), "a%20b%2Bc%2Fd%3De%26f");
  EXPECT_EQ(UrlEncode("\xc3\xa9"), "%C3%A9");
  EXPECT_EQ(FormEncode({{"Action", "RunInstances"}, {"UserData", "YQ=="}, {"Tag.1.Key", ""}}),
            "Action=RunInstances&UserData=YQ%3D%3D&Tag.1.Key=");
}

}  // namespace
}  // namespace pp::providers::http
