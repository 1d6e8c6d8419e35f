#include "forwarder/process_user_data.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/base/file.h"
#include "common/podvm/apf_config.h"
#include "common/podvm/encoding.h"
#include "common/podvm/initdata.h"
#include "common/podvm/pool_config.h"

namespace pp::forwarder {
namespace {

enum class Check { kApfConfig, kPoolConfig, kJsonObject, kInitdata, kToml, kNone };

struct Allowed {
  std::string_view name;
  unsigned mode;
  Check check;
};

// Files user-data may write (cloud-api-adaptor's list, reference/caa.md section 4).
constexpr Allowed kWriteFiles[] = {
    {"apf.json", 0600, Check::kApfConfig}, {"auth.json", 0600, Check::kJsonObject},
    {"initdata", 0600, Check::kInitdata},  {"aa.toml", 0600, Check::kToml},
    {"cdh.toml", 0600, Check::kToml},      {"scratch-space.marker", 0644, Check::kNone},
    // A pool VM's boot configuration instead of apf.json (common/podvm/pool_config.h).
    {"pool.json", 0600, Check::kPoolConfig},
};
// Keys of initdata's [data] table that become files.
constexpr std::string_view kInitdataFiles[] = {"aa.toml", "cdh.toml", "policy.rego"};
constexpr unsigned kInitdataFileMode = 0600;
constexpr std::string_view kDigestName = "initdata.digest";
constexpr unsigned kDigestMode = 0644;

const Allowed* FindAllowed(std::string_view name) {
  const auto it = std::find_if(std::begin(kWriteFiles), std::end(kWriteFiles),
                               [&](const Allowed& a) { return a.name == name; });
  return it == std::end(kWriteFiles) ? nullptr : it;
}

std::string AllowedList() {
  std::string list;
  for (const Allowed& a : kWriteFiles)
    list += std::string(list.empty() ? "" : ", ") + std::string(a.name);
  return list;
}

// Maps "/run/peerpod/<name>" to <name>; false with a reason for anything else.
bool MapPath(std::string_view path, std::string& name, std::string& why) {
  if (path.empty()) {
    why = "empty path";
    return false;
  }
  if (path.front() != '/') {
    why = "not an absolute path; files go to " + std::string(kPeerpodDir) + "/<name>";
    return false;
  }
  bool normalized = true;
  for (std::size_t start = 1; start <= path.size();) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, end - start);
    if (part == "..") {
      why = "path traversal (\"..\") is not allowed";
      return false;
    }
    if ((part.empty() && end != path.size()) || part == ".") normalized = false;
    start = end + 1;
  }
  const std::string prefix = std::string(kPeerpodDir) + "/";
  if (!path.starts_with(prefix)) {
    why = "outside " + std::string(kPeerpodDir);
    return false;
  }
  if (!normalized) {
    why = "not a normalized path (contains \"//\" or \"/./\")";
    return false;
  }
  const std::string_view rest = path.substr(prefix.size());
  if (rest.empty() || rest.find('/') != std::string_view::npos) {
    why = "only files directly in " + std::string(kPeerpodDir) + " may be written";
    return false;
  }
  if (FindAllowed(rest) == nullptr) {
    why = "not an allowed file (allowed: " + AllowedList() + ")";
    return false;
  }
  name = std::string(rest);
  return true;
}

bool CheckContent(Check check, const std::string& bytes, podvm::Initdata& initdata,
                  std::vector<std::string>& notes, std::string& why) {
  switch (check) {
    case Check::kApfConfig: {
      podvm::ApfConfig config;
      return podvm::ParseApfConfig(bytes, config, why, &notes);
    }
    case Check::kPoolConfig: {
      podvm::PoolConfig config;
      return podvm::ParsePoolConfig(bytes, config, why);
    }
    case Check::kJsonObject: {
      const auto doc = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
      if (doc.is_object()) return true;
      why = doc.is_discarded() ? "not valid JSON" : "not a JSON object";
      return false;
    }
    case Check::kInitdata:
      return podvm::ParseInitdataFile(bytes, initdata, why);
    case Check::kToml:
      return podvm::CheckToml(bytes, why);
    case Check::kNone:
      return true;
  }
  return false;
}

bool IsRootOwner(std::string_view owner) {
  return owner.empty() || owner == "root" || owner == "root:root" || owner == "0" || owner == "0:0";
}

// Adds the files initdata yields and its digest; they replace write_files entries of the same name.
void AddInitdataFiles(const podvm::Initdata& initdata, Plan& plan) {
  for (const auto& [key, value] : initdata.data) {
    if (std::find(std::begin(kInitdataFiles), std::end(kInitdataFiles), key) ==
        std::end(kInitdataFiles)) {
      plan.notes.push_back("initdata: skipping data key \"" + podvm::Printable(key, 128) +
                           "\" (not a file this VM uses)");
      continue;
    }
    const auto existing = std::find_if(plan.files.begin(), plan.files.end(),
                                       [&](const PlannedFile& f) { return f.name == key; });
    if (existing != plan.files.end()) {
      plan.notes.push_back("initdata: " + key + " from initdata replaces the write_files entry");
      plan.files.erase(existing);
    }
    plan.files.push_back({key, value, kInitdataFileMode});
  }
  plan.files.push_back({std::string(kDigestName), initdata.digest_hex, kDigestMode});
}

Result<void> CheckTotal(const Plan& plan) {
  std::size_t total = 0;
  for (const PlannedFile& f : plan.files) total += f.bytes.size();
  if (total > kMaxTotalBytes) {
    return Fail(Code::kInvalidArgument, "user-data rejected, nothing written: the files add up to ",
                std::to_string(total), " bytes, more than the limit of ",
                std::to_string(kMaxTotalBytes));
  }
  return {};
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// Writes one temporary file in `dir_fd`, never following a symlink.
Result<void> Stage(int dir_fd, const std::string& dir, const std::string& tmp,
                   const PlannedFile& file) {
  if (::unlinkat(dir_fd, tmp.c_str(), 0) != 0 && errno != ENOENT) {
    return std::unexpected(ErrnoError("remove stale " + dir + "/" + tmp, errno));
  }
  const Fd fd(::openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       file.mode));
  if (fd.fd < 0) return std::unexpected(ErrnoError("create " + dir + "/" + tmp, errno));
  if (auto written = WriteAll(fd.fd, file.bytes, dir + "/" + tmp); !written) return written;
  if (::fchmod(fd.fd, file.mode) != 0)
    return std::unexpected(ErrnoError("chmod " + dir + "/" + tmp, errno));
  if (::fsync(fd.fd) != 0) return std::unexpected(ErrnoError("fsync " + dir + "/" + tmp, errno));
  return {};
}

}  // namespace

Result<Plan> PlanFromUserData(const podvm::UserData& user_data) {
  Plan plan;
  plan.notes = user_data.notes;
  std::vector<std::string> problems;
  std::vector<std::string> names;
  podvm::Initdata initdata;
  bool has_initdata = false;
  for (std::size_t i = 0; i < user_data.write_files.size(); ++i) {
    const podvm::WriteFile& entry = user_data.write_files[i];
    const std::string where =
        "write_files[" + std::to_string(i) + "] (" + podvm::Printable(entry.path, 128) + ")";
    auto problem = [&](const std::string& why) { problems.push_back(where + ": " + why); };
    std::string name;
    std::string why;
    if (!MapPath(entry.path, name, why)) {
      problem(why);
      continue;
    }
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      problem("the same file is listed twice");
      continue;
    }
    names.push_back(name);
    const Allowed& allowed = *FindAllowed(name);
    if (entry.append) {
      problem("append is not supported; each file is written whole");
      continue;
    }
    unsigned mode = allowed.mode;
    if (!entry.permissions.empty()) {
      unsigned requested = 0;
      if (!podvm::ParsePermissions(entry.permissions, requested, why)) {
        problem("permissions " + why);
        continue;
      }
      mode = requested & allowed.mode;
      if (mode != requested) {
        char text[64];
        std::snprintf(text, sizeof text, "mode %04o tightened to %04o", requested, mode);
        plan.notes.push_back(where + ": " + text);
      }
    }
    if (!IsRootOwner(entry.owner)) {
      plan.notes.push_back(where + ": owner \"" + podvm::Printable(entry.owner, 128) +
                           "\" ignored; files belong to root");
    }
    std::string bytes;
    if (!podvm::DecodeContent(entry, kMaxFileBytes, bytes, why)) {
      problem("content: " + why);
      continue;
    }
    podvm::Initdata parsed;
    if (!CheckContent(allowed.check, bytes, parsed, plan.notes, why)) {
      problem(why);
      continue;
    }
    if (allowed.check == Check::kInitdata) {
      initdata = std::move(parsed);
      has_initdata = true;
    }
    plan.files.push_back({name, std::move(bytes), mode});
  }
  // A VM is either a pod's (apf.json) or a pool's, waiting for a claim (pool.json), never both.
  if (std::find(names.begin(), names.end(), "apf.json") != names.end() &&
      std::find(names.begin(), names.end(), "pool.json") != names.end()) {
    problems.push_back("apf.json and pool.json together: a VM is either a pod's or a pool's");
  }
  if (!problems.empty()) {
    std::string message = "user-data rejected, nothing written: ";
    for (std::size_t i = 0; i < problems.size(); ++i) message += (i == 0 ? "" : "; ") + problems[i];
    return Fail(Code::kInvalidArgument, message);
  }
  if (has_initdata) AddInitdataFiles(initdata, plan);
  if (auto total = CheckTotal(plan); !total) return std::unexpected(total.error());
  return plan;
}

Result<Plan> PlanFromText(std::string_view user_data_text) {
  podvm::UserData user_data;
  std::string error;
  if (!podvm::ParseUserData(user_data_text, user_data, error)) {
    return Fail(Code::kInvalidArgument, error, " (nothing written)");
  }
  return PlanFromUserData(user_data);
}

Result<Plan> PlanFromInitdata(std::string_view encoded_initdata) {
  podvm::Initdata initdata;
  std::string error;
  if (!podvm::ParseInitdataFile(encoded_initdata, initdata, error)) {
    return Fail(Code::kInvalidArgument, error, " (nothing written)");
  }
  Plan plan;
  AddInitdataFiles(initdata, plan);
  if (auto total = CheckTotal(plan); !total) return std::unexpected(total.error());
  return plan;
}

Result<void> WritePlan(const std::string& dir, const Plan& plan) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Fail(Code::kInternal, "create ", dir, ": ", ec.message());
  const Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.fd < 0) return std::unexpected(ErrnoError("open " + dir, errno));
  // A directory in the way would fail the rename half-way; find it before writing anything.
  for (const PlannedFile& file : plan.files) {
    struct stat st {};
    if (::fstatat(dir_fd.fd, file.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISDIR(st.st_mode)) {
      return Fail(Code::kFailedPrecondition, dir, "/", file.name,
                  " is a directory; nothing written");
    }
  }
  std::vector<std::string> staged;
  auto remove_staged = [&](std::size_t from) {
    for (std::size_t i = from; i < staged.size(); ++i) ::unlinkat(dir_fd.fd, staged[i].c_str(), 0);
  };
  for (const PlannedFile& file : plan.files) {
    std::string tmp = "." + file.name + ".tmp-" + std::to_string(::getpid());
    auto done = Stage(dir_fd.fd, dir, tmp, file);
    staged.push_back(std::move(tmp));
    if (!done) {
      remove_staged(0);
      return std::unexpected(Error{done.error().code, done.error().message + "; nothing written"});
    }
  }
  for (std::size_t i = 0; i < plan.files.size(); ++i) {
    // rename replaces whatever the name was, a symlink included, without following it.
    if (::renameat(dir_fd.fd, staged[i].c_str(), dir_fd.fd, plan.files[i].name.c_str()) != 0) {
      const int err = errno;
      remove_staged(i);
      return std::unexpected(
          ErrnoError("rename into " + dir + "/" + plan.files[i].name + " (" + std::to_string(i) +
                         " of " + std::to_string(plan.files.size()) + " files already written)",
                     err));
    }
  }
  ::fsync(dir_fd.fd);  // best effort: the renames are already visible
  return {};
}

}  // namespace pp::forwarder
