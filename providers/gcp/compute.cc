#include "providers/gcp/compute.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "common/base/backoff.h"

namespace pp::providers::gcp {
namespace {

using Clock = std::chrono::steady_clock;

// Messages from the API are shown, bounded: they name resources, never our secrets.
std::string Short(std::string_view s) { return std::string(s.substr(0, 300)); }

}  // namespace

Result<void> CheckContext(const OpContext& ctx, std::string_view what) {
  if (ctx.stop.stop_requested()) return Fail(Code::kCancelled, "gcp: cancelled while ", what);
  if (Clock::now() >= ctx.deadline)
    return Fail(Code::kDeadlineExceeded, "gcp: deadline passed while ", what);
  return {};
}

bool SleepFor(const OpContext& ctx, std::chrono::milliseconds d) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  const auto until = std::min(ctx.deadline, Clock::now() + d);
  cv.wait_until(lock, ctx.stop, until, [] { return false; });
  return !ctx.Expired();
}

Result<void> ClassifyResponse(const http::Response& r, std::string_view what) {
  if (r.status >= 200 && r.status < 300) return {};
  const std::optional<GoogleError> e = ParseErrorBody(r.body);
  const std::string reason =
      e && !e->reasons.empty() ? e->reasons.front().substr(0, 100) : std::string();
  std::string text = std::string(what) + ": HTTP " + std::to_string(r.status);
  if (!reason.empty()) text += " " + reason;
  if (e && !e->message.empty()) text += ": " + Short(e->message);
  const auto any = [&](auto pred) {
    return e && std::any_of(e->reasons.begin(), e->reasons.end(), pred);
  };
  if (r.status == 429 || (r.status == 403 && any(IsRateLimitReason)))
    return Fail(Code::kAborted, text);
  if (any(IsCapacityCode) || (e && IsCapacityCode(e->status)))
    return Fail(Code::kResourceExhausted, text);
  if (r.status >= 500) return Fail(Code::kUnavailable, text);
  if (r.status == 401) return Fail(Code::kUnauthenticated, text);
  if (r.status == 403)
    return Fail(Code::kFailedPrecondition, text, " (check the service account's roles)");
  if (r.status == 404) return Fail(Code::kNotFound, text);
  if (r.status == 409) return Fail(Code::kAlreadyExists, text);
  // An instance still being created or deleted refuses other changes for a moment.
  if (any([](const std::string& s) { return s == "resourceNotReady"; }))
    return Fail(Code::kUnavailable, text);
  if (r.status >= 400) return Fail(Code::kInvalidArgument, text);
  return Fail(Code::kUnavailable, text, " (unexpected status)");
}

Result<void> OperationError(const Operation& op, std::string_view what) {
  if (op.errors.empty()) return {};
  std::string text = std::string(what) + ": operation " + Short(op.name) + " failed:";
  for (std::size_t n = 0; n < op.errors.size() && n < 3; ++n) {
    text +=
        " " + Short(op.errors[n].code).substr(0, 100) + " (" + Short(op.errors[n].message) + ")";
  }
  if (op.errors.size() > 3) text += " and " + std::to_string(op.errors.size() - 3) + " more";
  const auto has = [&](auto pred) {
    return std::any_of(op.errors.begin(), op.errors.end(),
                       [&](const OperationIssue& i) { return pred(i.code); });
  };
  if (has(IsCapacityCode)) return Fail(Code::kResourceExhausted, text);
  if (has(IsRateLimitReason)) return Fail(Code::kAborted, text);
  if (has([](std::string_view c) { return c == "RESOURCE_NOT_FOUND" || c == "notFound"; }))
    return Fail(Code::kNotFound, text);
  const long s = op.http_error_status;
  if (s == 403 || s == 401) return Fail(Code::kFailedPrecondition, text);
  if (s == 404) return Fail(Code::kNotFound, text);
  if (s == 409) return Fail(Code::kAlreadyExists, text);
  if (s >= 500) return Fail(Code::kUnavailable, text);
  if (s >= 400) return Fail(Code::kInvalidArgument, text);
  return Fail(Code::kUnknown, text);
}

Result<Operation> ParseOperation(std::string_view body) {
  Operation op;
  std::string error;
  if (!ParseOperationJson(body, op, error)) return Fail(Code::kUnavailable, error);
  return op;
}

Result<InstanceInfo> ParseInstance(std::string_view body) {
  InstanceInfo i;
  std::string error;
  if (!ParseInstanceJson(body, i, error)) return Fail(Code::kUnavailable, error);
  return i;
}

Result<InstanceList> ParseInstanceList(std::string_view body) {
  InstanceList list;
  std::string error;
  if (!ParseInstanceListJson(body, list, error)) return Fail(Code::kUnavailable, error);
  return list;
}

Result<MachineTypeInfo> ParseMachineType(std::string_view body) {
  MachineTypeInfo m;
  std::string error;
  if (!ParseMachineTypeJson(body, m, error)) return Fail(Code::kUnavailable, error);
  return m;
}

Result<unsigned long long> ParseImageDiskSizeGb(std::string_view body) {
  unsigned long long gb = 0;
  std::string error;
  if (!ParseImageDiskSizeGbJson(body, gb, error)) return Fail(Code::kUnavailable, error);
  return gb;
}

ComputeClient::ComputeClient(http::Client& client, TokenSource& tokens, ComputeOptions options)
    : client_(client), tokens_(tokens), options_(std::move(options)) {
  while (options_.endpoint.ends_with('/')) options_.endpoint.pop_back();
}

std::string ComputeClient::ProjectPath(std::string_view rest) const {
  return "/projects/" + options_.project + std::string(rest);
}

std::size_t ComputeClient::calls() const { return calls_.load(); }

Result<http::Response> ComputeClient::Call(std::string_view method, std::string_view path,
                                           std::string_view body, std::string_view what,
                                           const OpContext& ctx) {
  const std::string url = options_.endpoint + std::string(path);
  for (int round = 0;; ++round) {
    std::string used;  // the token of the last attempt
    auto response = http::Send(
        client_,
        [&]() -> Result<http::Request> {
          auto token = tokens_.Token(ctx);
          if (!token) return std::unexpected(token.error());
          used = *token;
          http::Request r;
          r.method = std::string(method);
          r.url = url;
          r.headers = {{"Authorization", "Bearer " + *token}, {"Accept", "application/json"}};
          if (!body.empty() || method == "POST") {
            r.headers.emplace_back("Content-Type", "application/json");
            r.body = std::string(body);
          }
          calls_.fetch_add(1);
          return r;
        },
        [&](const http::Response& r) { return ClassifyResponse(r, what); }, options_.retry, ctx);
    if (response || response.error().code != Code::kUnauthenticated) return response;
    // An expired or revoked token: fetch a new one once (the cached expiry said it was valid).
    tokens_.Invalidate(used);
    if (round == 1) {
      return Fail(Code::kFailedPrecondition, response.error().message,
                  " (a fresh token was refused too; check GCP_CREDENTIALS)");
    }
  }
}

Result<Operation> ComputeClient::WaitOperation(const Operation& start, std::string_view what,
                                               const OpContext& ctx) {
  Operation op = start;
  Backoff pause(options_.op_poll_initial, options_.op_poll_max);
  const std::string zone = op.zone;
  while (!op.Done()) {
    if (zone.empty())
      return Fail(Code::kUnavailable, std::string(what), ": operation ", Short(op.name),
                  " names no zone");
    auto r = Call("POST", ProjectPath("/zones/" + zone + "/operations/" + op.name + "/wait"), "",
                  what, ctx);
    if (!r) return std::unexpected(r.error());
    auto next = ParseOperation(r->body);
    if (!next) return std::unexpected(next.error());
    op = std::move(*next);
    if (op.zone.empty()) op.zone = zone;
    // /wait returns early now and then (and a fake always does): do not spin.
    if (!op.Done() && !SleepFor(ctx, pause.Next())) {
      auto done = CheckContext(
          ctx, std::string(what) + " (operation " + Short(op.name) + " still " + op.status + ")");
      return std::unexpected(done.error());
    }
  }
  return op;
}

}  // namespace pp::providers::gcp
