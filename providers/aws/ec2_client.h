// Ec2Client: one signed EC2 Query API call at a time, over the shared HTTP client with the shared
// retry policy, for any number of threads.
//
// Each attempt is signed anew (fresh X-Amz-Date, current credentials); the caller's parameters
// (and so RunInstances' ClientToken) stay the same across attempts. A response EC2 says was made
// with expired credentials (ExpiredToken, RequestExpired) makes the client drop its credentials,
// fetch new ones and try once more.
//
// The endpoint is https://ec2.<region>.amazonaws.com/ unless overridden (AWS_ENDPOINT_URL_EC2,
// AWS_ENDPOINT_URL): signing and TLS verification stay the same either way.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>

#include "providers/aws/credentials.h"
#include "providers/aws/ec2_query.h"
#include "providers/http/client.h"
#include "providers/http/retry.h"

namespace pp::providers::aws {

// Maps a response of an AWS Query-protocol service (EC2, STS) to the provider taxonomy
// (providers/provider.h): 2xx OK; throttling codes (RequestLimitExceeded, Throttling*,
// RequestThrottled, TooManyRequestsException, EC2ThrottledException) and 429 -> ABORTED; other 5xx
// -> UNAVAILABLE; InsufficientInstanceCapacity, InstanceLimitExceeded and kin ->
// RESOURCE_EXHAUSTED; AuthFailure, UnauthorizedOperation, SignatureDoesNotMatch, InvalidAMIID.*,
// unknown subnet, group or key pair -> FAILED_PRECONDITION; InvalidInstanceID.NotFound ->
// NOT_FOUND; ExpiredToken, RequestExpired -> UNAUTHENTICATED; anything else -> INVALID_ARGUMENT.
// `code` receives the AWS error code ("" when the body is no error envelope). Messages: "<what>:
// <Code>: <Message>".
Result<void> ClassifyAwsResponse(const http::Response& response, std::string_view what,
                                 std::string* code = nullptr);

struct Ec2Endpoint {
  std::string url;  // https://host[:port][/]
  std::string region;
};

class Ec2Client {
 public:
  Ec2Client(http::Client& client, Ec2Endpoint endpoint, CredentialsProvider& credentials,
            http::RetryPolicy policy = {});

  // Sends `action` with `params` until EC2 accepts it and `accept` (which parses the body into the
  // caller's result) succeeds; a body `accept` cannot read is retried as UNAVAILABLE.
  Result<void> Call(std::string_view action, const QueryParams& params,
                    const std::function<Result<void>(const http::Response&)>& accept,
                    const OpContext& ctx);

  // Calls made (attempts included), for tests and benches.
  int attempts() const { return attempts_.load(); }

 private:
  Result<http::Request> Sign(const std::string& body, const OpContext& ctx);

  http::Client& client_;
  const Ec2Endpoint endpoint_;
  std::string host_;  // Host header value, from the endpoint URL
  CredentialsProvider& credentials_;
  const http::RetryPolicy policy_;
  std::atomic<int> attempts_{0};
};

// "host[:port]" of an http(s) URL; empty when the URL is not one.
std::string HostOf(std::string_view url);

}  // namespace pp::providers::aws
