// SandboxStore: each sandbox's record on disk, so that a restarted adaptor knows its sandboxes and
// the instances it made for them.
//
// Layout: <pods-dir>/<sandbox id>/ (0700) holds sandbox.json (0600, written atomically) and, once the
// agent proxy runs, agent.ttrpc. The record holds initdata, so its file is readable by root only.
// Not thread-safe for the same sandbox: the SandboxManager serializes calls per sandbox.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "adaptor/sandbox_request.h"
#include "common/base/error.h"
#include "common/podvm/apf_config.h"

namespace pp::adaptor {

enum class SandboxState { kCreated, kStarting, kRunning };

// The node end of the pod's tunnel. kSettingUp is saved before the first device is made, so a
// process that dies while building it leaves a record that says to take it down.
enum class TunnelState { kNone, kSettingUp, kUp };

struct SandboxRecord {
  SandboxRequest request;
  std::string instance_name;
  SandboxState state = SandboxState::kCreated;
  std::string instance_id;  // set from the moment the provider returned one
  std::vector<std::string> ips;
  std::int64_t created_unix = 0;
  // A CreateInstance may have been cut short (the process died in StartVM): the provider may hold
  // things of instance_name (a libvirt provider's volumes) that must be removed before the record.
  bool leftovers = false;
  // The pod network (apf.json's "pod-network", VNI included) when CreateVM named a pod netns.
  std::optional<podvm::PodNetwork> network;
  TunnelState tunnel = TunnelState::kNone;
};

// A sandbox directory whose record cannot be used: its VM must be left alone, never reconciled.
struct UnreadableRecord {
  std::string id;      // the directory's name
  std::string reason;
};

// The largest record the store writes or reads.
inline constexpr std::size_t kMaxRecordBytes = 1 << 20;

class SandboxStore {
 public:
  explicit SandboxStore(std::string pods_dir) : pods_dir_(std::move(pods_dir)) {}

  const std::string& pods_dir() const { return pods_dir_; }
  std::string PodDir(const std::string& id) const { return pods_dir_ + "/" + id; }
  std::string AgentSocketPath(const std::string& id) const { return PodDir(id) + "/agent.ttrpc"; }

  // Creates the pod directory if needed and replaces the record atomically. A record larger than
  // kMaxRecordBytes is refused (RESOURCE_EXHAUSTED): the store never writes what it cannot read.
  Result<void> Save(const SandboxRecord& record) const;

  // True when the sandbox has a directory, with a readable record or not.
  bool HasPodDir(const std::string& id) const;

  // Removes the pod directory and everything in it. A missing directory is success.
  Result<void> Remove(const std::string& id) const;

  // Every readable record. A record that cannot be read or parsed is logged, reported in
  // `unreadable` (when given) and left on disk for an operator, never deleted.
  std::vector<SandboxRecord> LoadAll(std::vector<UnreadableRecord>* unreadable = nullptr) const;

 private:
  std::string pods_dir_;
};

// JSON form of a record (exposed for tests).
std::string SerializeRecord(const SandboxRecord& record);
Result<SandboxRecord> ParseRecord(std::string_view json);

}  // namespace pp::adaptor
