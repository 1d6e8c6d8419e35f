#include "providers/gcp/compute.h"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/base/backoff.h"

namespace pp::providers::gcp {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

std::string Str(const Json& j, const char* name) {
  if (!j.is_object()) return {};
  const auto it = j.find(name);
  if (it == j.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<long long>());
  return {};
}

long Long(const Json& j, const char* name) {
  if (!j.is_object()) return 0;
  const auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_number_integer())
    return static_cast<long>(std::clamp<long long>(it->get<long long>(), -1, 1 << 30));
  if (it->is_string()) return std::atol(it->get<std::string>().substr(0, 12).c_str());
  return 0;
}

const Json* Array(const Json& j, const char* name) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(name);
  return it != j.end() && it->is_array() ? &*it : nullptr;
}

// Messages from the API are shown, bounded: they name resources, never our secrets.
std::string Short(std::string_view s) { return std::string(s.substr(0, 300)); }

bool IsCapacity(std::string_view code) {
  return code == "ZONE_RESOURCE_POOL_EXHAUSTED" ||
         code == "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS" || code == "QUOTA_EXCEEDED" ||
         code == "resourcePoolExhausted" || code == "quotaExceeded" ||
         code == "RESOURCE_POOL_EXHAUSTED";
}
bool IsRateLimit(std::string_view reason) {
  return reason == "rateLimitExceeded" || reason == "userRateLimitExceeded" ||
         reason == "RATE_LIMIT_EXCEEDED";
}

Result<InstanceInfo> InstanceFrom(const Json& j) {
  if (!j.is_object())
    return Fail(Code::kUnavailable, "gcp: an instance in the answer is not an object");
  InstanceInfo i;
  i.name = Str(j, "name");
  if (i.name.empty()) return Fail(Code::kUnavailable, "gcp: an instance in the answer has no name");
  i.id = Str(j, "id");
  i.zone = std::string(LastSegment(Str(j, "zone")));
  i.status = Str(j, "status");
  i.machine_type = std::string(LastSegment(Str(j, "machineType")));
  if (const Json* nics = Array(j, "networkInterfaces"); nics && !nics->empty()) {
    const Json& nic = nics->front();
    i.network_ip = Str(nic, "networkIP");
    if (const Json* acs = Array(nic, "accessConfigs"); acs && !acs->empty())
      i.nat_ip = Str(acs->front(), "natIP");
  }
  if (const auto it = j.find("labels"); it != j.end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) {
      if (v.is_string()) i.labels[k] = v.get<std::string>();
    }
  }
  if (const auto it = j.find("metadata"); it != j.end() && it->is_object()) {
    if (const Json* items = Array(*it, "items")) {
      for (const Json& item : *items) {
        const std::string key = Str(item, "key");
        if (key.empty() || key == "user-data") continue;
        i.metadata[key] = Str(item, "value");
      }
    }
  }
  return i;
}

}  // namespace

std::string_view LastSegment(std::string_view link) {
  const auto slash = link.rfind('/');
  return slash == std::string_view::npos ? link : link.substr(slash + 1);
}

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

std::optional<GoogleError> ParseErrorBody(std::string_view body) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  const auto it = j.find("error");
  if (it == j.end() || !it->is_object()) return std::nullopt;
  GoogleError e;
  e.code = Long(*it, "code");
  e.status = Str(*it, "status");
  e.message = Str(*it, "message");
  if (const Json* errors = Array(*it, "errors")) {
    for (const Json& item : *errors) {
      if (std::string reason = Str(item, "reason"); !reason.empty())
        e.reasons.push_back(std::move(reason));
      if (e.message.empty()) e.message = Str(item, "message");
    }
  }
  return e;
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
  if (r.status == 429 || (r.status == 403 && any(IsRateLimit))) return Fail(Code::kAborted, text);
  if (any(IsCapacity) || (e && IsCapacity(e->status))) return Fail(Code::kResourceExhausted, text);
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

Result<Operation> ParseOperation(std::string_view body) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return Fail(Code::kUnavailable, "gcp: an operation answer is not JSON");
  Operation op;
  op.name = Str(j, "name");
  op.status = Str(j, "status");
  if (op.name.empty() || op.status.empty())
    return Fail(Code::kUnavailable, "gcp: an operation answer has no name or status");
  if (op.status != "PENDING" && op.status != "RUNNING" && op.status != "DONE") {
    return Fail(Code::kUnavailable, "gcp: operation ", Short(op.name), " has unknown status ",
                Short(op.status));
  }
  // The name and zone go into the next request's path: only what the API itself issues.
  const auto plain = [](std::string_view v) {
    return v.size() <= 128 && std::all_of(v.begin(), v.end(), [](unsigned char c) {
             return std::isalnum(c) || c == '-' || c == '_';
           });
  };
  op.zone = std::string(LastSegment(Str(j, "zone")));
  if (!plain(op.name) || !plain(op.zone))
    return Fail(Code::kUnavailable, "gcp: an operation answer has a malformed name or zone");
  op.operation_type = Str(j, "operationType");
  op.target_link = Str(j, "targetLink");
  op.http_error_status = Long(j, "httpErrorStatusCode");
  op.http_error_message = Str(j, "httpErrorMessage");
  if (const auto it = j.find("error"); it != j.end() && it->is_object()) {
    if (const Json* errors = Array(*it, "errors")) {
      for (const Json& item : *errors)
        op.errors.push_back({Str(item, "code"), Str(item, "message")});
    }
    if (op.errors.empty()) op.errors.push_back({"UNKNOWN", "operation failed without details"});
  }
  return op;
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
  if (has(IsCapacity)) return Fail(Code::kResourceExhausted, text);
  if (has(IsRateLimit)) return Fail(Code::kAborted, text);
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

Result<InstanceInfo> ParseInstance(std::string_view body) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return Fail(Code::kUnavailable, "gcp: an instance answer is not JSON");
  return InstanceFrom(j);
}

Result<InstanceList> ParseInstanceList(std::string_view body) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return Fail(Code::kUnavailable, "gcp: an instance list answer is not JSON");
  InstanceList list;
  list.next_page_token = Str(j, "nextPageToken");
  if (const auto it = j.find("items"); it != j.end()) {
    if (!it->is_array())
      return Fail(Code::kUnavailable, "gcp: an instance list's items is not an array");
    for (const Json& item : *it) {
      auto i = InstanceFrom(item);
      if (!i) return std::unexpected(i.error());
      list.items.push_back(std::move(*i));
    }
  }
  return list;
}

Result<MachineTypeInfo> ParseMachineType(std::string_view body) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return Fail(Code::kUnavailable, "gcp: a machine type answer is not JSON");
  MachineTypeInfo m;
  m.name = Str(j, "name");
  const long cpus = Long(j, "guestCpus");
  const long mem = Long(j, "memoryMb");
  if (m.name.empty() || cpus <= 0 || mem <= 0) {
    return Fail(Code::kUnavailable, "gcp: a machine type answer lacks name, guestCpus or memoryMb");
  }
  m.vcpus = static_cast<unsigned>(cpus);
  m.memory_mib = static_cast<unsigned long long>(mem);
  if (const Json* accs = Array(j, "accelerators")) {
    for (const Json& a : *accs) {
      const long n = Long(a, "guestAcceleratorCount");
      if (n > 0) m.gpus += static_cast<unsigned>(std::min(n, 64L));
      if (m.gpu_model.empty()) {
        const std::string type = Str(a, "guestAcceleratorType");  // e.g. nvidia-h100-80gb
        if (type.find("h100") != std::string::npos)
          m.gpu_model = "H100";
        else if (type.find("a100") != std::string::npos)
          m.gpu_model = "A100";
        else if (type.find("l4") != std::string::npos)
          m.gpu_model = "L4";
        else
          m.gpu_model = type.substr(0, 40);
      }
    }
  }
  return m;
}

Result<unsigned long long> ParseImageDiskSizeGb(std::string_view body) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return Fail(Code::kUnavailable, "gcp: an image answer is not JSON");
  const long gb = Long(j, "diskSizeGb");
  if (gb <= 0) return Fail(Code::kUnavailable, "gcp: an image answer has no diskSizeGb");
  return static_cast<unsigned long long>(gb);
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
