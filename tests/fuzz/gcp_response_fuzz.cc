// libFuzzer target: arbitrary bytes as every Compute Engine and OAuth answer the gcp provider
// parses (error bodies, operations, instances, instance lists, machine types, images, tokens).
// Invariants: nothing crashes; a refusal says why; an operation's zone and name, which go into the
// next request's path, hold only letters, digits, '-' and '_'; an instance never keeps its
// user-data; a token's lifetime stays within a day. Built by the "fuzz" preset (clang,
// ASan+UBSan) with providers/gcp/responses.cc alone; gcp_provider_tests replays it too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "providers/gcp/responses.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

bool Plain(std::string_view s) { return s.find_first_of("/?#%. ") == std::string_view::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pp::providers::gcp;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string error;

  if (auto e = ParseErrorBody(input)) {
    for (const auto& reason : e->reasons) Check(!reason.empty());
  }
  Operation op;
  if (ParseOperationJson(input, op, error)) {
    Check(!op.name.empty() && Plain(op.name) && Plain(op.zone));
    Check(op.status == "PENDING" || op.status == "RUNNING" || op.status == "DONE");
  } else {
    Check(!error.empty());
  }
  InstanceInfo instance;
  if (ParseInstanceJson(input, instance, error)) {
    Check(!instance.name.empty() && !instance.metadata.contains("user-data"));
  }
  InstanceList list;
  if (ParseInstanceListJson(input, list, error)) {
    for (const auto& i : list.items) Check(!i.name.empty() && !i.metadata.contains("user-data"));
  }
  MachineTypeInfo type;
  if (ParseMachineTypeJson(input, type, error)) Check(type.vcpus > 0 && type.memory_mib > 0);
  unsigned long long gb = 0;
  if (ParseImageDiskSizeGbJson(input, gb, error)) Check(gb > 0);
  std::string token;
  long long expires_in = -1;
  if (ParseTokenJson(input, token, expires_in, error)) {
    Check(!token.empty() && expires_in >= 0 && expires_in <= 24 * 3600);
  } else {
    Check(!error.empty());
  }
  return 0;
}
