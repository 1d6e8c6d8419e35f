// The probe listener's request-head reader: what it accepts, what it refuses, and its bound.
#include "adaptor/http_request.h"

#include <gtest/gtest.h>

namespace pp::adaptor {
namespace {

using Status = HttpRequestHead::Status;

TEST(HttpRequestHeadTest, KubeletProbe) {
  const std::string req =
      "GET /readyz HTTP/1.1\r\nHost: 10.0.0.1:8000\r\nUser-Agent: kube-probe/1.29\r\n"
      "Accept: */*\r\nConnection: close\r\n\r\n";
  const auto head = ParseHttpRequestHead(req + "trailing body", 8192);
  ASSERT_EQ(head.status, Status::kComplete);
  EXPECT_EQ(head.method, "GET");
  EXPECT_EQ(head.path, "/readyz");
  EXPECT_EQ(head.head_size, req.size());
}

TEST(HttpRequestHeadTest, IncompleteUntilTheEmptyLine) {
  const std::string req = "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n";
  for (std::size_t n = 0; n < req.size(); ++n) {
    EXPECT_EQ(ParseHttpRequestHead(req.substr(0, n), 8192).status, Status::kIncomplete) << n;
  }
  EXPECT_EQ(ParseHttpRequestHead(req, 8192).status, Status::kComplete);
}

TEST(HttpRequestHeadTest, ToleratedForms) {
  auto head =
      ParseHttpRequestHead("\r\n\nGET /livez HTTP/1.0\n\n", 8192);  // leading empty lines, bare LF
  ASSERT_EQ(head.status, Status::kComplete);
  EXPECT_EQ(head.path, "/livez");
  head = ParseHttpRequestHead("GET /metrics?name[]=x#frag HTTP/1.1\r\n\r\n", 8192);
  ASSERT_EQ(head.status, Status::kComplete);
  EXPECT_EQ(head.path, "/metrics");
  head = ParseHttpRequestHead("GET http://node:8000/startup?x HTTP/1.1\r\n\r\n", 8192);
  ASSERT_EQ(head.status, Status::kComplete);
  EXPECT_EQ(head.path, "/startup");
  head = ParseHttpRequestHead("GET http://node:8000 HTTP/1.1\r\n\r\n", 8192);
  ASSERT_EQ(head.status, Status::kComplete);
  EXPECT_EQ(head.path, "/");
  head = ParseHttpRequestHead("POST /readyz HTTP/1.1\r\nX-Opaque: caf\xc3\xa9\t!\r\n\r\n", 8192);
  ASSERT_EQ(head.status, Status::kComplete);
  EXPECT_EQ(head.method, "POST");
}

TEST(HttpRequestHeadTest, Refusals) {
  for (const char* bad : {
           "GET /livez\r\n\r\n",                              // no version
           "GET  /livez HTTP/1.1\r\n\r\n",                    // empty target
           "GET /livez HTTP/2\r\n\r\n",                       // not HTTP/1.x
           "GET /livez http/1.1\r\n\r\n",                     // case matters (RFC 9112 section 2.3)
           "GET /livez HTTP/1.1 extra\r\n\r\n",               // more than three parts
           "G(T /livez HTTP/1.1\r\n\r\n",                     // method not a token
           "GET livez HTTP/1.1\r\n\r\n",                      // neither origin- nor absolute-form
           "GET * HTTP/1.1\r\n\r\n",                          // asterisk-form
           "GET /a\x01 HTTP/1.1\r\n\r\n",                     // control character in the target
           "GET /livez HTTP/1.1\r\nHost x\r\n\r\n",           // no colon
           "GET /livez HTTP/1.1\r\nHost : x\r\n\r\n",         // space before the colon
           "GET /livez HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",  // obsolete line folding
           "GET /livez HTTP/1.1\r\nA: b\rc\r\n\r\n",          // bare CR
           "GET /livez HTTP/1.1\r\nA: \x7f\r\n\r\n",          // DEL in a value
           "\rGET /livez HTTP/1.1\r\n\r\n",                   // bare CR before the request-line
       }) {
    const auto head = ParseHttpRequestHead(bad, 8192);
    EXPECT_EQ(head.status, Status::kBad) << bad;
    EXPECT_TRUE(head.method.empty() && head.path.empty()) << bad;
  }
}

TEST(HttpRequestHeadTest, BoundedByMaxHead) {
  const std::string req = "GET /livez HTTP/1.1\r\nX: " + std::string(100, 'a') + "\r\n\r\n";
  EXPECT_EQ(ParseHttpRequestHead(req, req.size()).status, Status::kComplete);
  EXPECT_EQ(ParseHttpRequestHead(req, req.size() - 1).status, Status::kTooLarge);
  // A head that never ends is too large as soon as the bound is reached, not before.
  const std::string endless(8192, 'a');
  EXPECT_EQ(ParseHttpRequestHead("GET / HTTP/1.1\r\nX: " + endless.substr(0, 100), 8192).status,
            Status::kIncomplete);
  EXPECT_EQ(ParseHttpRequestHead("GET / HTTP/1.1\r\nX: " + endless, 8192).status,
            Status::kTooLarge);
  EXPECT_EQ(ParseHttpRequestHead(endless, 8192).status, Status::kTooLarge);
}

}  // namespace
}  // namespace pp::adaptor
