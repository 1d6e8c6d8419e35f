// libFuzzer target: arbitrary bytes as cloud-config user-data. Every entry that parses is decoded
// (base64, gzip, initdata), and the document must render and parse back to the same entries.
// Built by the "fuzz" preset (clang, ASan+UBSan).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/podvm/encoding.h"
#include "common/podvm/initdata.h"
#include "common/podvm/user_data.h"

namespace {

constexpr std::size_t kMaxDecoded = 256 * 1024;

// Decodes `file`; false (with a reason, or the target aborts) when its content is refused.
bool Decode(const pp::podvm::WriteFile& file, std::string& out) {
  std::string error;
  if (pp::podvm::DecodeContent(file, kMaxDecoded, out, error)) return true;
  if (error.empty()) std::abort();
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pp::podvm;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  UserData parsed;
  std::string error;
  if (!ParseUserData(input, parsed, error)) {
    if (error.empty()) std::abort();
    return 0;
  }
  if (parsed.write_files.size() > kMaxWriteFiles) std::abort();
  for (const WriteFile& file : parsed.write_files) {
    unsigned mode = 0;
    if (!file.permissions.empty() && !ParsePermissions(file.permissions, mode, error)) std::abort();
    std::string bytes;
    if (Decode(file, bytes)) {
      Initdata initdata;
      (void)ParseInitdataFile(bytes, initdata, error);
      (void)ParseInitdataToml(bytes, initdata, error);
    }
  }

  const std::string rendered = RenderUserData(parsed.write_files);
  if (rendered.size() > kMaxUserDataBytes) return 0;  // escaping can grow a document past the cap
  UserData again;
  if (!ParseUserData(rendered, again, error)) std::abort();
  if (again.write_files.size() != parsed.write_files.size()) std::abort();
  for (std::size_t i = 0; i < parsed.write_files.size(); ++i) {
    const WriteFile& a = parsed.write_files[i];
    const WriteFile& b = again.write_files[i];
    // Text fields survive exactly when they are UTF-8 (YAML cannot carry anything else).
    if (IsValidUtf8(a.path) && a.path != b.path) std::abort();
    if (IsValidUtf8(a.owner) && a.owner != b.owner) std::abort();
    if (a.permissions != b.permissions || a.append != b.append) std::abort();
    std::string da;
    std::string db;
    const bool ok_a = Decode(a, da);
    const bool ok_b = Decode(b, db);
    if (ok_a != ok_b || (ok_a && da != db)) std::abort();
    if (!ok_a && !da.empty()) std::abort();  // a refused decode leaves nothing behind
  }
  return 0;
}
