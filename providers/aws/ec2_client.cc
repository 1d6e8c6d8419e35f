#include "providers/aws/ec2_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

#include "common/podvm/encoding.h"
#include "providers/aws/ec2_xml.h"
#include "providers/aws/sigv4.h"

namespace pp::providers::aws {
namespace {

bool In(std::string_view code, std::initializer_list<std::string_view> codes) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

Result<void> ClassifyAwsResponse(const http::Response& r, std::string_view what,
                                 std::string* code_out) {
  if (code_out) code_out->clear();
  if (r.status >= 200 && r.status < 300) return {};
  const std::optional<Ec2Error> e = ParseErrorXml(r.body);
  const std::string code = e ? e->code : "";
  if (code_out) *code_out = code;
  // AWS error messages describe the request (ids, parameter names). A SignatureDoesNotMatch may
  // go on, after a blank line, with the canonical request AWS expected, which holds the session
  // token: only the first line is kept, bounded and printable.
  std::string_view first_line = e ? std::string_view(e->message) : std::string_view();
  first_line = first_line.substr(0, first_line.find('\n'));
  const std::string detail =
      e ? podvm::Printable(e->code, 100) + ": " + podvm::Printable(first_line, 300)
        : "HTTP " + std::to_string(r.status);
  const auto fail = [&](Code c) { return Fail(c, what, ": ", detail); };

  // Throttling codes: botocore/data/_retry.json ("throttling" definitions and EC2's
  // RequestLimitExceeded at 503) and the SDKs' standard retry mode.
  if (In(code, {"RequestLimitExceeded", "Throttling", "ThrottlingException", "ThrottledException",
                "RequestThrottled", "RequestThrottledException", "TooManyRequestsException",
                "EC2ThrottledException", "SlowDown", "PriorRequestNotComplete"}) ||
      r.status == 429) {
    return fail(Code::kAborted);
  }
  if (In(code, {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}))
    return fail(Code::kUnauthenticated);
  if (In(code, {"InsufficientInstanceCapacity", "InstanceLimitExceeded", "VcpuLimitExceeded",
                "InsufficientHostCapacity", "InsufficientCapacity",
                "InsufficientReservedInstanceCapacity", "MaxSpotInstanceCountExceeded"})) {
    return fail(Code::kResourceExhausted);
  }
  if (In(code, {"AuthFailure", "UnauthorizedOperation", "SignatureDoesNotMatch",
                "InvalidClientTokenId", "IncompleteSignature", "MissingAuthenticationToken",
                "OptInRequired", "Blocked", "AccessDenied", "InvalidIdentityToken",
                "InvalidSubnetID.NotFound", "InvalidGroup.NotFound", "InvalidKeyPair.NotFound",
                "InvalidSubnet", "PendingVerification"}) ||
      StartsWith(code, "InvalidAMIID.")) {
    return fail(Code::kFailedPrecondition);
  }
  if (code == "InvalidInstanceID.NotFound") return fail(Code::kNotFound);
  if (r.status >= 500 || In(code, {"InternalError", "InternalFailure", "ServiceUnavailable",
                                   "Unavailable", "IDPCommunicationError"})) {
    return fail(Code::kUnavailable);
  }
  return fail(Code::kInvalidArgument);
}

std::string HostOf(std::string_view url) {
  const std::size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return "";
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos)
    rest = rest.substr(at + 1);
  std::string host(rest);
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  // Default ports are not part of the Host header (RFC 9110 section 7.2); libcurl sends it so too.
  if (url.substr(0, scheme) == "https" && host.ends_with(":443")) host.resize(host.size() - 4);
  if (url.substr(0, scheme) == "http" && host.ends_with(":80")) host.resize(host.size() - 3);
  return host;
}

Ec2Client::Ec2Client(http::Client& client, Ec2Endpoint endpoint, CredentialsProvider& credentials,
                     http::RetryPolicy policy)
    : client_(client),
      endpoint_(std::move(endpoint)),
      host_(HostOf(endpoint_.url)),
      credentials_(credentials),
      policy_(policy) {}

Result<http::Request> Ec2Client::Sign(const std::string& body, const OpContext& ctx) {
  auto creds = credentials_.Get(ctx);
  if (!creds) return std::unexpected(creds.error());
  http::Request req;
  req.method = "POST";
  req.url = endpoint_.url;
  if (req.url.find('/', req.url.find("://") + 3) == std::string::npos) req.url += '/';
  req.headers = {{"Host", host_},
                 {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
  req.body = body;
  SigningInput in;
  in.method = req.method;
  const std::size_t path_start = req.url.find('/', req.url.find("://") + 3);
  in.path = req.url.substr(path_start);
  in.headers = req.headers;
  in.body = req.body;
  SigningParams params;
  params.region = endpoint_.region;
  params.service = "ec2";
  params.time = std::chrono::system_clock::now();
  const SignedParts s = SignHeaders(in, *creds, params);
  for (const auto& h : s.headers) req.headers.push_back(h);
  return req;
}

Result<void> Ec2Client::Call(std::string_view action, const QueryParams& params,
                             const std::function<Result<void>(const http::Response&)>& accept,
                             const OpContext& ctx) {
  const std::string body = EncodeQueryBody(action, kEc2Version, params);
  const std::string what = "ec2 " + std::string(action);
  std::string code;
  const auto make = [&]() -> Result<http::Request> {
    attempts_.fetch_add(1);
    return Sign(body, ctx);
  };
  const http::Classifier classify = [&](const http::Response& r) -> Result<void> {
    if (auto ok = ClassifyAwsResponse(r, what, &code); !ok) return ok;
    if (auto read = accept(r); !read) {
      // A 2xx body we cannot read: a broken proxy or a truncated answer. The same call (same
      // ClientToken) is safe to repeat.
      return Fail(Code::kUnavailable, what, ": ", read.error().message);
    }
    return {};
  };
  for (int round = 0;; ++round) {
    auto sent = http::Send(client_, make, classify, policy_, ctx);
    if (sent) return {};
    if (sent.error().code == Code::kUnauthenticated && round == 0) {
      spdlog::info("aws: {}: credentials expired ({}); fetching new ones", what, code);
      credentials_.Invalidate();
      continue;
    }
    Error e = sent.error();
    if (e.code == Code::kUnauthenticated) {
      e.code = Code::kFailedPrecondition;
      e.message += " (after fetching new credentials from " + credentials_.SourceName() + ")";
    }
    return std::unexpected(std::move(e));
  }
}

}  // namespace pp::providers::aws
