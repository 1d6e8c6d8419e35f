// libFuzzer target: arbitrary bytes as every Compute Engine and OAuth answer the gcp provider
// parses (error bodies, operations, instances, instance lists, machine types, images, tokens).
// Invariants: nothing crashes; a refusal says why; an operation's zone and name, which go into the
// next request's path, hold no '/' or '?'; only capacity errors map to RESOURCE_EXHAUSTED.
// Built by the "fuzz" preset (clang, ASan+UBSan).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "providers/gcp/compute.h"
#include "providers/gcp/token.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

bool Clean(std::string_view s) { return s.find_first_of("/?#%") == std::string_view::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pp::providers::gcp;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  (void)ParseErrorBody(input);
  for (long status : {200L, 400L, 401L, 403L, 404L, 429L, 503L}) {
    pp::providers::http::Response r;
    r.status = status;
    r.body = std::string(input);
    auto verdict = ClassifyResponse(r, "fuzz");
    Check(verdict.has_value() == (status == 200));
    if (!verdict) Check(!verdict.error().message.empty() && verdict.error().message.size() < 1000);
  }
  if (auto op = ParseOperation(input)) {
    Check(!op->name.empty() && Clean(op->name) && Clean(op->zone));
    auto failed = OperationError(*op, "fuzz");
    Check(failed.has_value() == op->errors.empty());
  } else {
    Check(!op.error().message.empty());
  }
  if (auto i = ParseInstance(input)) {
    Check(!i->name.empty());
    Check(!i->metadata.contains("user-data"));
  }
  if (auto list = ParseInstanceList(input)) {
    for (const auto& i : list->items) Check(!i.name.empty());
  }
  if (auto m = ParseMachineType(input)) Check(m->vcpus > 0 && m->memory_mib > 0);
  if (auto gb = ParseImageDiskSizeGb(input)) Check(*gb > 0);
  const auto now = std::chrono::steady_clock::now();
  if (auto t = ParseTokenResponse(input, now)) {
    Check(!t->token.empty() && t->expiry >= now && t->expiry <= now + std::chrono::hours(24));
  }
  (void)ParseServiceAccountKey(input);
  return 0;
}
