#include "adaptor/sandbox_store.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/base/file.h"

namespace pp::adaptor {
namespace {

constexpr int kRecordVersion = 1;

std::string_view StateName(SandboxState state) {
  switch (state) {
    case SandboxState::kCreated: return "created";
    case SandboxState::kStarting: return "starting";
    case SandboxState::kRunning: return "running";
  }
  return "created";
}

std::string_view TunnelName(TunnelState state) {
  switch (state) {
    case TunnelState::kNone: return "none";
    case TunnelState::kSettingUp: return "setting-up";
    case TunnelState::kUp: return "up";
  }
  return "none";
}

}  // namespace

std::string SerializeRecord(const SandboxRecord& r) {
  nlohmann::json j;
  j["version"] = kRecordVersion;
  j["id"] = r.request.id;
  j["annotations"] = r.request.annotations;
  j["networkNamespacePath"] = r.request.netns_path;
  j["instanceName"] = r.instance_name;
  j["state"] = StateName(r.state);
  j["instanceID"] = r.instance_id;
  j["ips"] = r.ips;
  j["created"] = r.created_unix;
  if (r.leftovers) j["leftovers"] = true;
  if (r.network) {
    // The same JSON as apf.json's "pod-network", read back by the same checked parser.
    podvm::ApfConfig apf;
    apf.pod_network = r.network;
    j["podNetwork"] = nlohmann::json::parse(podvm::SerializeApfConfig(apf)).at("pod-network");
    j["tunnel"] = TunnelName(r.tunnel);
  }
  return j.dump(2) + "\n";
}

Result<SandboxRecord> ParseRecord(std::string_view text) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Fail(Code::kDataLoss, "sandbox record is not a JSON object");
  try {
    if (j.at("version").get<int>() != kRecordVersion) {
      return Fail(Code::kDataLoss, "sandbox record version ", j.at("version").dump(), " is not supported");
    }
    // Re-validate through the same path as CreateVM: a record is outside input once on disk.
    hypervisor::CreateVMRequest request;
    request.set_id(j.at("id").get<std::string>());
    request.set_networknamespacepath(j.at("networkNamespacePath").get<std::string>());
    for (const auto& [key, value] : j.at("annotations").get<std::map<std::string, std::string>>()) {
      (*request.mutable_annotations())[key] = value;
    }
    auto parsed = ParseCreateVM(request);
    if (!parsed) return Fail(Code::kDataLoss, "sandbox record: ", parsed.error().message);
    SandboxRecord r;
    r.request = std::move(*parsed);
    r.instance_name = j.at("instanceName").get<std::string>();
    const auto state = j.at("state").get<std::string>();
    if (state == "created") r.state = SandboxState::kCreated;
    else if (state == "starting") r.state = SandboxState::kStarting;
    else if (state == "running") r.state = SandboxState::kRunning;
    else return Fail(Code::kDataLoss, "sandbox record: unknown state \"", state, "\"");
    r.instance_id = j.at("instanceID").get<std::string>();
    r.ips = j.at("ips").get<std::vector<std::string>>();
    r.created_unix = j.at("created").get<std::int64_t>();
    r.leftovers = j.value("leftovers", false);
    if (const auto it = j.find("podNetwork"); it != j.end()) {
      const nlohmann::json doc = {{"pod-network", *it}};
      podvm::ApfConfig apf;
      std::string error;
      if (!podvm::ParseApfConfig(doc.dump(), apf, error) || !apf.pod_network) {
        return Fail(Code::kDataLoss, "sandbox record: podNetwork: ", error.empty() ? "null" : error);
      }
      r.network = std::move(apf.pod_network);
      const auto tunnel = j.at("tunnel").get<std::string>();
      if (tunnel == "none") r.tunnel = TunnelState::kNone;
      else if (tunnel == "setting-up") r.tunnel = TunnelState::kSettingUp;
      else if (tunnel == "up") r.tunnel = TunnelState::kUp;
      else return Fail(Code::kDataLoss, "sandbox record: unknown tunnel state \"", tunnel, "\"");
    }
    return r;
  } catch (const nlohmann::json::exception& e) {
    return Fail(Code::kDataLoss, "sandbox record: ", e.what());
  }
}

Result<void> SandboxStore::Save(const SandboxRecord& record) const {
  std::string text;
  try {
    text = SerializeRecord(record);
  } catch (const nlohmann::json::exception& e) {  // a string that is not UTF-8
    return Fail(Code::kInvalidArgument, "sandbox ", record.request.id, ": record cannot be written: ", e.what());
  }
  if (text.size() > kMaxRecordBytes) {
    return Fail(Code::kResourceExhausted, "sandbox ", record.request.id, ": record of ", std::to_string(text.size()),
                " bytes exceeds ", std::to_string(kMaxRecordBytes), " bytes");
  }
  const std::string dir = PodDir(record.request.id);
  if (::mkdir(pods_dir_.c_str(), 0755) != 0 && errno != EEXIST) {
    std::error_code ec;
    std::filesystem::create_directories(pods_dir_, ec);
    if (ec) return std::unexpected(ErrnoError("create " + pods_dir_, ec.value()));
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return std::unexpected(ErrnoError("create " + dir, errno));
  }
  return WriteFileAtomic(dir + "/sandbox.json", text, 0600);
}

bool SandboxStore::HasPodDir(const std::string& id) const {
  std::error_code ec;
  return std::filesystem::is_directory(PodDir(id), ec);
}

Result<void> SandboxStore::Remove(const std::string& id) const {
  std::error_code ec;
  std::filesystem::remove_all(PodDir(id), ec);
  if (ec) return std::unexpected(ErrnoError("remove " + PodDir(id), ec.value()));
  return {};
}

std::vector<SandboxRecord> SandboxStore::LoadAll(std::vector<UnreadableRecord>* unreadable) const {
  std::vector<SandboxRecord> records;
  std::error_code ec;
  std::filesystem::directory_iterator it(pods_dir_, ec);
  if (ec) {
    if (ec != std::errc::no_such_file_or_directory) spdlog::warn("cannot list {}: {}", pods_dir_, ec.message());
    return records;
  }
  for (const auto& entry : it) {
    if (!entry.is_directory(ec)) continue;
    const std::string path = entry.path().string() + "/sandbox.json";
    auto text = ReadFile(path, kMaxRecordBytes);
    const std::string id = entry.path().filename().string();
    auto skip = [&](const std::string& reason) {
      spdlog::warn("sandbox record {} is unusable ({}); its VM is left alone until an operator fixes or "
                   "removes {}", path, reason, entry.path().string());
      if (unreadable) unreadable->push_back({id, reason});
    };
    if (!text) {
      skip(text.error().message);
      continue;
    }
    auto record = ParseRecord(*text);
    if (!record || record->request.id != id) {
      skip(record ? "its id does not match its directory" : record.error().message);
      continue;
    }
    records.push_back(std::move(*record));
  }
  return records;
}

}  // namespace pp::adaptor
