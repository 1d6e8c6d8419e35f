#include "providers/aws/imds.h"

#include <sstream>

#include "providers/http/retry.h"

namespace pp::providers::aws {
namespace {

std::string Trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return "";
  return std::string(s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1));
}

http::Classifier Ok2xx(std::string what) {
  return [what](const http::Response& r) -> Result<void> {
    if (r.status >= 200 && r.status < 300) return {};
    if (r.status == 404) return Fail(Code::kNotFound, what, ": HTTP 404");
    if (r.status >= 500 || r.status == 429) {
      return Fail(Code::kUnavailable, what, ": HTTP ", std::to_string(r.status));
    }
    return Fail(Code::kFailedPrecondition, what, ": HTTP ", std::to_string(r.status));
  };
}

http::RetryPolicy Policy() {
  http::RetryPolicy p;
  p.max_attempts = 2;  // the SDKs try IMDS briefly (botocore metadata_service_num_attempts = 1)
  p.initial = std::chrono::milliseconds(100);
  return p;
}

}  // namespace

ImdsSession::ImdsSession(std::string endpoint, http::Client& client)
    : endpoint_(std::move(endpoint)), client_(client) {
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
}

Result<void> ImdsSession::Open(const OpContext& ctx) {
  auto token = http::Send(
      client_,
      [&]() -> Result<http::Request> {
        return http::Request{"PUT",
                             endpoint_ + "/latest/api/token",
                             {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}},
                             ""};
      },
      Ok2xx("IMDS token"), Policy(), ctx);
  if (!token) {
    if (ctx.Expired()) return std::unexpected(token.error());
    // Nothing answers at the metadata address: not on EC2.
    if (token.error().code == Code::kUnavailable || token.error().code == Code::kDeadlineExceeded) {
      return Fail(Code::kNotFound, "no IMDS at ", endpoint_);
    }
    return Fail(token.error().code, "IMDS at ", endpoint_, ": ", token.error().message);
  }
  token_ = Trim(token->body);
  return {};
}

Result<std::string> ImdsSession::Get(std::string_view path, const OpContext& ctx) {
  const std::string url = endpoint_ + "/latest/meta-data/" + std::string(path);
  auto got = http::Send(
      client_,
      [&]() -> Result<http::Request> {
        return http::Request{"GET", url, {{"X-aws-ec2-metadata-token", token_}}, ""};
      },
      Ok2xx("IMDS " + std::string(path)), Policy(), ctx);
  if (!got) return std::unexpected(got.error());
  return std::move(got->body);
}

Result<ImdsNodeConfig> ReadNodeConfig(ImdsSession& imds, const OpContext& ctx) {
  if (auto open = imds.Open(ctx); !open) return std::unexpected(open.error());
  ImdsNodeConfig out;
  const auto get = [&](const std::string& path) -> Result<std::string> {
    auto v = imds.Get(path, ctx);
    if (!v && v.error().code == Code::kNotFound) return std::string();
    if (!v) return std::unexpected(v.error());
    return Trim(*v);
  };
  auto region = get("placement/region");
  if (!region) return std::unexpected(region.error());
  out.region = *region;
  auto mac = get("mac");
  if (!mac) return std::unexpected(mac.error());
  if (!mac->empty()) {
    auto subnet = get("network/interfaces/macs/" + *mac + "/subnet-id");
    if (!subnet) return std::unexpected(subnet.error());
    out.subnet_id = *subnet;
    auto groups = get("network/interfaces/macs/" + *mac + "/security-group-ids");
    if (!groups) return std::unexpected(groups.error());
    std::istringstream in(*groups);
    for (std::string g; in >> g;) out.security_group_ids.push_back(g);
  }
  // "0=<key name>" per key pair; CAA takes the first.
  auto keys = get("public-keys");
  if (!keys) return std::unexpected(keys.error());
  if (keys->starts_with("0=")) out.key_name = Trim(keys->substr(2, keys->find('\n') - 2));
  return out;
}

}  // namespace pp::providers::aws
