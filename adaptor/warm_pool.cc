#include "adaptor/warm_pool.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "adaptor/metrics.h"
#include "common/base/file.h"
#include "common/base/log.h"
#include "common/podvm/initdata.h"

namespace pp::adaptor {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr unsigned kMaxPoolSize = 64;
constexpr std::size_t kMaxPoolName = 20;
constexpr std::size_t kMaxPoolRecordBytes = 64 * 1024;

std::string Hex(const unsigned char* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

std::string RandomHex8() {
  unsigned char bytes[4];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    // RAND_bytes fails only without an entropy source; a clock-derived suffix still avoids clashes
    // with the names already in the pool (checked by the caller).
    const auto now = static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
    for (int i = 0; i < 4; ++i) bytes[i] = static_cast<unsigned char>(now >> (8 * i));
  }
  return Hex(bytes, sizeof bytes);
}

std::string StateName(PoolVmState state) {
  switch (state) {
    case PoolVmState::kBooting: return "booting";
    case PoolVmState::kReady: return "ready";
    case PoolVmState::kClaimed: return "claimed";
  }
  return "booting";
}

json ShapeJson(const PoolShape& s) {
  return json{{"instanceType", s.instance_type}, {"vcpus", s.vcpus},   {"memoryMiB", s.memory_mib},
              {"gpus", s.gpus},                  {"gpuModel", s.gpu_model}, {"image", s.image},
              {"initdataDigest", s.initdata_digest}};
}

PoolShape ShapeFromJson(const json& j) {
  PoolShape s;
  s.instance_type = j.at("instanceType").get<std::string>();
  s.vcpus = j.at("vcpus").get<unsigned>();
  s.memory_mib = j.at("memoryMiB").get<unsigned long long>();
  s.gpus = j.at("gpus").get<unsigned>();
  s.gpu_model = j.at("gpuModel").get<std::string>();
  s.image = j.at("image").get<std::string>();
  s.initdata_digest = j.at("initdataDigest").get<std::string>();
  return s;
}

bool ValidPoolName(std::string_view name) {
  if (name.empty() || name.size() > kMaxPoolName || name.front() == '-' || name.back() == '-') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

std::string Seconds(Clock::duration d) {
  return fmt::format("{:.1f} s", std::chrono::duration<double>(d).count());
}

}  // namespace

std::string InitdataDigest(std::string_view initdata_toml) {
  if (initdata_toml.empty()) return "";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(initdata_toml.data(), initdata_toml.size(), digest, &size, EVP_sha256(), nullptr);
  return "sha256:" + Hex(digest, size);
}

PoolShape ShapeOf(const SandboxRequest& request) {
  PoolShape s;
  s.instance_type = request.instance_type;
  s.vcpus = request.vcpus;
  s.memory_mib = request.memory_mib;
  s.gpus = request.gpus;
  s.gpu_model = request.gpu_model;
  s.image = request.image;
  s.initdata_digest = InitdataDigest(request.initdata);
  return s;
}

std::string PoolShape::Describe() const {
  std::string out;
  auto add = [&out](const std::string& item) { out += (out.empty() ? "" : " ") + item; };
  if (!instance_type.empty()) add("instance-type=" + instance_type);
  if (vcpus) add("vcpus=" + std::to_string(vcpus));
  if (memory_mib) add("memory=" + std::to_string(memory_mib) + "MiB");
  if (gpus) add("gpus=" + std::to_string(gpus) + (gpu_model.empty() ? "" : "(" + gpu_model + ")"));
  if (!image.empty()) add("image=" + image);
  add("initdata=" + (initdata_digest.empty() ? std::string("none") : initdata_digest.substr(0, 19) + "…"));
  if (out.rfind("initdata=", 0) == 0) out = "provider-default " + out;
  return out;
}

Result<std::vector<PoolSpec>> ParsePoolSpecs(std::string_view text, unsigned default_size) {
  std::vector<PoolSpec> pools;
  if (default_size > kMaxPoolSize) {
    return Fail(Code::kInvalidArgument, "-warm-pool-size / WARM_POOL_SIZE: ", std::to_string(default_size),
                "; at most ", std::to_string(kMaxPoolSize));
  }
  if (default_size > 0) pools.push_back({"default", default_size, {}, ""});
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return pools;
  const std::string where = "-warm-pools / WARM_POOLS";
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_array()) return Fail(Code::kInvalidArgument, where, ": not a JSON array of pools");
  static const std::set<std::string> kKeys{"name",     "size",      "instance-type", "vcpus",
                                           "memory",   "gpus",      "gpu-model",     "image", "initdata"};
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const json& e = doc[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (!e.is_object()) return Fail(Code::kInvalidArgument, at, ": not an object");
    for (const auto& [key, value] : e.items()) {
      if (!kKeys.count(key)) return Fail(Code::kInvalidArgument, at, ": unknown key \"", key, "\"");
    }
    auto text_of = [&](const char* key, std::string& out) -> Result<void> {
      if (!e.contains(key)) return {};
      if (!e[key].is_string()) return Fail(Code::kInvalidArgument, at, ".", key, ": not a string");
      out = e[key].get<std::string>();
      return {};
    };
    auto number_of = [&](const char* key, unsigned long long max, auto& out) -> Result<void> {
      if (!e.contains(key)) return {};
      if (!e[key].is_number_unsigned() || e[key].get<unsigned long long>() > max) {
        return Fail(Code::kInvalidArgument, at, ".", key, ": not a whole number from 0 to ", std::to_string(max));
      }
      out = static_cast<std::remove_reference_t<decltype(out)>>(e[key].get<unsigned long long>());
      return {};
    };
    PoolSpec spec;
    std::string initdata;
    for (auto r : {text_of("name", spec.name), text_of("instance-type", spec.shape.instance_type),
                   text_of("gpu-model", spec.shape.gpu_model), text_of("image", spec.shape.image),
                   text_of("initdata", initdata), number_of("size", kMaxPoolSize, spec.size),
                   number_of("vcpus", 1024, spec.shape.vcpus), number_of("memory", 1ull << 24, spec.shape.memory_mib),
                   number_of("gpus", 64, spec.shape.gpus)}) {
      if (!r) return std::unexpected(r.error());
    }
    if (!e.contains("name") || !ValidPoolName(spec.name)) {
      return Fail(Code::kInvalidArgument, at, ".name: 1 to ", std::to_string(kMaxPoolName),
                  " characters of a-z, 0-9 and '-' (not first or last) required");
    }
    if (!e.contains("size")) return Fail(Code::kInvalidArgument, at, ".size: required");
    for (const auto& other : pools) {
      if (other.name == spec.name) return Fail(Code::kInvalidArgument, at, ".name: \"", spec.name, "\" used twice");
    }
    if (!initdata.empty()) {
      // The pod annotation's encoding: base64(gzip(TOML)).
      podvm::Initdata parsed;
      std::string error;
      if (!podvm::ParseInitdataFile(initdata, parsed, error)) {
        return Fail(Code::kInvalidArgument, at, ".initdata (base64 of gzipped TOML, as the pod annotation): ", error);
      }
      spec.initdata = std::move(parsed.toml);
      spec.shape.initdata_digest = InitdataDigest(spec.initdata);
    }
    pools.push_back(std::move(spec));
  }
  return pools;
}

std::string SerializePoolVm(const PoolVmRecord& r) {
  return json{{"name", r.name},
              {"pool", r.pool},
              {"ownerId", r.owner_id},
              {"shape", ShapeJson(r.shape)},
              {"state", StateName(r.state == PoolVmState::kClaimed ? PoolVmState::kReady : r.state)},
              {"instanceId", r.instance_id},
              {"ips", r.ips},
              {"createdUnix", r.created_unix}}
      .dump(2);
}

Result<PoolVmRecord> ParsePoolVm(std::string_view text) {
  if (text.size() > kMaxPoolRecordBytes) return Fail(Code::kInvalidArgument, "pool VM record too large");
  try {
    const json j = json::parse(text);
    PoolVmRecord r;
    r.name = j.at("name").get<std::string>();
    r.pool = j.at("pool").get<std::string>();
    r.owner_id = j.at("ownerId").get<std::string>();
    r.shape = ShapeFromJson(j.at("shape"));
    const auto state = j.at("state").get<std::string>();
    if (state == "booting") r.state = PoolVmState::kBooting;
    else if (state == "ready") r.state = PoolVmState::kReady;
    else return Fail(Code::kInvalidArgument, "pool VM record: unknown state \"", state, "\"");
    r.instance_id = j.at("instanceId").get<std::string>();
    r.ips = j.at("ips").get<std::vector<std::string>>();
    r.created_unix = j.at("createdUnix").get<std::int64_t>();
    if (r.name.empty() || r.owner_id.empty()) return Fail(Code::kInvalidArgument, "pool VM record: no name or owner");
    return r;
  } catch (const json::exception& e) {
    return Fail(Code::kInvalidArgument, "pool VM record: ", e.what());
  }
}

std::vector<PoolVmRecord> LoadPoolVms(const std::string& dir) {
  std::vector<PoolVmRecord> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const auto path = entry.path();
    if (path.extension() != ".json") continue;
    auto text = ReadFile(path.string(), kMaxPoolRecordBytes);
    if (!text) {
      spdlog::warn("warm pool: cannot read {}: {}; left alone", path.string(), text.error().message);
      continue;
    }
    auto record = ParsePoolVm(*text);
    if (!record || record->name + ".json" != path.filename().string()) {
      spdlog::warn("warm pool: {} is not a pool VM record{}; left alone for an operator", path.string(),
                   record ? "" : ": " + record.error().message);
      continue;
    }
    out.push_back(std::move(*record));
  }
  return out;
}

WarmPool::WarmPool(Options options, providers::Provider& provider, const PoolChannel& channel,
                   std::function<bool(const std::string&)> held_by_sandbox)
    : options_(std::move(options)), provider_(provider), channel_(channel),
      held_by_sandbox_(std::move(held_by_sandbox)) {}

WarmPool::~WarmPool() { Stop(); }

Result<void> WarmPool::Start() {
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  if (ec) return Fail(Code::kFailedPrecondition, "warm pool: cannot create ", options_.dir, ": ", ec.message());
  std::filesystem::permissions(options_.dir, std::filesystem::perms::owner_all, ec);
  std::unique_lock lock(mu_);
  for (auto& record : LoadPoolVms(options_.dir)) {
    if (!record.instance_id.empty() && held_by_sandbox_ && held_by_sandbox_(record.instance_id)) {
      spdlog::info("warm pool: VM {} was claimed by a sandbox before the restart; the sandbox keeps it", record.name);
      RemoveRecord(record.name);
      continue;
    }
    const std::string name = record.name;
    Vm vm{std::move(record)};
    const bool resume_boot = vm.record.state == PoolVmState::kBooting;
    vm.busy = resume_boot;
    vms_.emplace(name, std::move(vm));
    if (resume_boot) Spawn([this, name](std::stop_token stop) { Boot(stop, name, true); });
  }
  if (!vms_.empty()) spdlog::info("warm pool: {} pool VM(s) recorded from before; checking them", vms_.size());
  for (const auto& spec : options_.pools) {
    spdlog::info("warm pool {}: {} VM(s) of {}", spec.name, spec.size, spec.shape.Describe());
    if (options_.metrics) options_.metrics->SetPoolTarget(spec.name, spec.size);
  }
  maintainer_ = std::jthread([this](std::stop_token stop) { Maintain(stop); });
  return {};
}

void WarmPool::Stop() {
  std::list<std::pair<std::jthread, std::shared_ptr<std::atomic<bool>>>> workers;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (maintainer_.joinable()) {
    maintainer_.request_stop();
    maintainer_.join();
  }
  {
    std::lock_guard lock(mu_);
    workers.swap(workers_);
  }
  for (auto& [thread, done] : workers) thread.request_stop();
  workers.clear();  // joins
}

void WarmPool::Wake() {
  woken_ = true;
  wake_.notify_all();
}

void WarmPool::RequestStop() {
  std::lock_guard lock(mu_);
  maintainer_.request_stop();
  for (auto& [thread, done] : workers_) thread.request_stop();
  Wake();
}

void WarmPool::Spawn(std::function<void(std::stop_token)> fn) {
  if (stopped_) return;
  auto done = std::make_shared<std::atomic<bool>>(false);
  workers_.emplace_back(std::jthread([this, fn = std::move(fn), done](std::stop_token stop) {
    fn(stop);
    // "Finished" is set under mu_, after the last use of it: the maintainer joins finished
    // threads while it holds mu_, so a thread that still wanted mu_ then would never end.
    std::lock_guard lock(mu_);
    done->store(true);
    Wake();
  }), done);
}

const PoolSpec* WarmPool::SpecOf(const std::string& pool) const {
  for (const auto& spec : options_.pools) {
    if (spec.name == pool) return &spec;
  }
  return nullptr;
}

Result<void> WarmPool::Save(const PoolVmRecord& record) const {
  return WriteFileAtomic(options_.dir + "/" + record.name + ".json", SerializePoolVm(record), 0600);
}

void WarmPool::RemoveRecord(const std::string& name) const {
  std::error_code ec;
  std::filesystem::remove(options_.dir + "/" + name + ".json", ec);
  if (ec) spdlog::warn("warm pool: cannot remove the record of {}: {}", name, ec.message());
}

void WarmPool::UpdateGauges() {
  if (!options_.metrics) return;
  for (const auto& spec : options_.pools) {
    unsigned booting = 0, ready = 0;
    for (const auto& [name, vm] : vms_) {
      if (vm.record.pool != spec.name || vm.deleting) continue;
      if (vm.record.state == PoolVmState::kBooting) ++booting;
      if (vm.record.state == PoolVmState::kReady) ++ready;
    }
    options_.metrics->SetPoolVms(spec.name, booting, ready);
  }
}

void WarmPool::Maintain(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    const auto now = Clock::now();
    for (auto it = workers_.begin(); it != workers_.end();) {
      it = it->second->load() ? workers_.erase(it) : std::next(it);  // joins a finished thread
    }
    auto next = now + options_.check_interval;
    std::map<std::string, unsigned> live;  // pool -> VMs booting or ready that stay
    for (auto& [name, vm] : vms_) {
      if (vm.busy || vm.record.state == PoolVmState::kClaimed) {
        // A VM being claimed still holds its place: its replacement boots once the claim settled,
        // not while the claim and the pod's first agent calls need the host's CPUs.
        if (!vm.deleting) ++live[vm.record.pool];
        continue;
      }
      const PoolSpec* spec = SpecOf(vm.record.pool);
      std::string why;
      if (vm.deleting) {
        if (vm.next_check > now) {
          next = std::min(next, vm.next_check);
          continue;
        }
        why = "retrying its deletion";
      } else if (!spec || !(spec->shape == vm.record.shape)) {
        why = spec ? "drained: its pool's shape or initdata changed" : "drained: its pool is no longer configured";
      } else if (live[vm.record.pool] >= spec->size) {
        why = "drained: its pool is smaller now";
      }
      if (!why.empty()) {
        vm.busy = vm.deleting = true;
        Spawn([this, name, why](std::stop_token) { Delete(name, why); });
        continue;
      }
      ++live[vm.record.pool];
      if (vm.next_check <= now) {
        vm.busy = vm.checking = true;
        Spawn([this, name](std::stop_token s) { CheckVm(s, name); });
      } else {
        next = std::min(next, vm.next_check);
      }
    }
    for (const auto& spec : options_.pools) {
      auto& until = not_before_[spec.name];
      for (unsigned have = live[spec.name]; have < spec.size; ++have) {
        if (until > now) {
          next = std::min(next, until);
          break;
        }
        PoolVmRecord record;
        const std::string suffix = RandomHex8();
        record.name = "podvm-pool-" + spec.name + "-" + suffix;
        if (vms_.count(record.name)) break;  // next pass
        record.pool = spec.name;
        record.owner_id = "pool-" + suffix;
        record.shape = spec.shape;
        record.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::system_clock::now().time_since_epoch()).count();
        const std::string name = record.name;
        Vm vm{std::move(record)};
        vm.busy = true;
        vms_.emplace(name, std::move(vm));
        Spawn([this, name](std::stop_token s) { Boot(s, name, false); });
      }
    }
    UpdateGauges();
    wake_.wait_until(lock, stop, next, [this] { return woken_; });
    woken_ = false;
  }
}

void WarmPool::Boot(std::stop_token stop, std::string name, bool resumed) {
  std::unique_lock lock(mu_);
  auto found = vms_.find(name);
  if (found == vms_.end()) return;
  PoolVmRecord record = found->second.record;
  const PoolSpec* spec = SpecOf(record.pool);
  lock.unlock();
  const ScopedLogFields log_fields({record.owner_id, ""});
  const auto started = Clock::now();
  const providers::Owner owner{options_.node_name, record.owner_id};
  auto give_up = [&](const std::string& why, bool backoff) {
    lock.lock();
    if (backoff) {
      auto& current = backoff_[record.pool];
      current = current.count() == 0 ? options_.initial_backoff : std::min(current * 2, options_.max_backoff);
      not_before_[record.pool] = Clock::now() + current;
      spdlog::warn("warm pool {}: VM {} not ready: {}; next boot in {} ms", record.pool, name, why, current.count());
      if (options_.metrics) options_.metrics->PoolVmDeleted(record.pool, "boot_failed");
    }
    auto it = vms_.find(name);
    if (it != vms_.end()) {
      it->second.busy = false;
      it->second.deleting = true;  // the maintainer deletes it (or its leftovers) and forgets it
    }
    Wake();
  };

  if (record.instance_id.empty()) {
    if (resumed) {
      // Recorded before a restart with no instance yet: the create was cut short.
      give_up("its boot was cut short by a restart", false);
      return;
    }
    if (!spec) return give_up("its pool is no longer configured", false);
    if (auto saved = Save(record); !saved) return give_up("cannot record it: " + saved.error().message, true);
    auto user_data = channel_.PoolUserData(name, spec->initdata);
    if (!user_data) return give_up(user_data.error().message, true);
    providers::InstanceSpec is;
    is.name = name;
    is.owner = owner;
    is.instance_type = record.shape.instance_type;
    is.vcpus = record.shape.vcpus;
    is.memory_mib = record.shape.memory_mib;
    is.gpus = record.shape.gpus;
    is.gpu_model = record.shape.gpu_model;
    is.image = record.shape.image;
    is.user_data = std::move(*user_data);
    is.initdata = spec->initdata;
    const providers::OpContext ctx{started + options_.boot_timeout, stop};
    auto instance = provider_.CreateInstance(is, ctx);
    if (!instance) {
      if (stop.stop_requested()) {
        RemoveRecord(name);  // the provider undid its own work
        return;
      }
      return give_up(instance.error().ToString(), true);
    }
    record.instance_id = instance->id;
    record.ips = instance->ips;
    if (auto saved = Save(record); !saved) return give_up("cannot record it: " + saved.error().message, true);
    lock.lock();
    if (auto it = vms_.find(name); it != vms_.end()) it->second.record = record;
    lock.unlock();
    if (record.ips.empty()) return give_up("its instance has no IP address", true);
  }

  // Booted (or resumed after a restart): ready once its provisioning endpoint answers as itself.
  if (record.ips.empty()) return give_up("its instance has no IP address", true);  // a record from before
  const auto deadline = Clock::now() + options_.boot_timeout;
  Error last{Code::kUnavailable, "no answer yet"};
  while (!stop.stop_requested()) {
    auto checked = channel_.Check(name, record.ips.front(), record.shape.initdata_digest,
                                  std::min(deadline, Clock::now() + std::chrono::seconds(2)));
    if (checked) {
      record.state = PoolVmState::kReady;
      if (auto saved = Save(record); !saved) return give_up("cannot record it: " + saved.error().message, true);
      lock.lock();
      auto it = vms_.find(name);
      if (it != vms_.end()) {
        it->second.record = record;
        it->second.busy = false;
        it->second.next_check = Clock::now() + options_.check_interval;
      }
      backoff_.erase(record.pool);
      not_before_.erase(record.pool);
      spdlog::info("warm pool {}: VM {} ready in {}", record.pool, name, Seconds(Clock::now() - started));
      if (options_.metrics) options_.metrics->ObservePoolRefill(record.pool, std::chrono::duration<double>(Clock::now() - started).count());
      Wake();
      return;
    }
    last = checked.error();
    // A VM that answers as another, or with another initdata, will not get better.
    if (last.code == Code::kFailedPrecondition) break;
    if (Clock::now() >= deadline) break;
    std::mutex sleep_mu;
    std::unique_lock sleep_lock(sleep_mu);
    std::condition_variable_any().wait_for(sleep_lock, stop, options_.ready_poll, [] { return false; });
  }
  if (stop.stop_requested()) return;  // recorded with its instance: the next start resumes the wait
  give_up("its provisioning endpoint did not answer: " + last.ToString(), true);
}

void WarmPool::CheckVm(std::stop_token stop, std::string name) {
  std::unique_lock lock(mu_);
  auto found = vms_.find(name);
  if (found == vms_.end()) return;
  const PoolVmRecord record = found->second.record;
  lock.unlock();
  Result<void> checked = Fail(Code::kUnavailable, "no address");
  for (int attempt = 0; attempt < 2 && !stop.stop_requested(); ++attempt) {
    if (attempt > 0) {
      std::mutex sleep_mu;
      std::unique_lock sleep_lock(sleep_mu);
      std::condition_variable_any().wait_for(sleep_lock, stop, std::chrono::seconds(1), [] { return false; });
    }
    if (record.ips.empty()) break;
    checked = channel_.Check(name, record.ips.front(), record.shape.initdata_digest,
                             Clock::now() + std::chrono::seconds(10));
    if (checked) break;
  }
  lock.lock();
  auto it = vms_.find(name);
  if (it == vms_.end()) return;
  it->second.checking = false;
  if (it->second.record.state == PoolVmState::kClaimed) return;  // taken meanwhile: the sandbox's now
  it->second.busy = false;
  if (stop.stop_requested()) return;
  if (checked) {
    it->second.next_check = Clock::now() + options_.check_interval;
    return;
  }
  spdlog::warn("warm pool {}: VM {} failed its health check ({}); replacing it", record.pool, name,
               checked.error().ToString());
  if (options_.metrics) options_.metrics->PoolVmDeleted(record.pool, "unhealthy");
  it->second.deleting = true;
  it->second.next_check = {};
  Wake();
}

void WarmPool::Delete(std::string name, std::string why) {
  std::unique_lock lock(mu_);
  auto found = vms_.find(name);
  if (found == vms_.end()) return;
  const PoolVmRecord record = found->second.record;
  lock.unlock();
  const providers::OpContext ctx{Clock::now() + std::chrono::minutes(2), {}};
  Result<void> deleted = record.instance_id.empty()
                             ? provider_.DeleteLeftovers(name, {options_.node_name, record.owner_id}, ctx)
                             : provider_.DeleteInstance(record.instance_id, ctx);
  if (deleted && !record.instance_id.empty()) {
    // A create cut short may have left more than the instance (a libvirt provider's volumes).
    deleted = provider_.DeleteLeftovers(name, {options_.node_name, record.owner_id}, ctx);
  }
  if (deleted || deleted.error().code == Code::kNotFound) {
    RemoveRecord(name);
    spdlog::info("warm pool {}: VM {} deleted ({})", record.pool, name, why);
    lock.lock();
    if (why.rfind("drained", 0) == 0 && options_.metrics) options_.metrics->PoolVmDeleted(record.pool, "drained");
    vms_.erase(name);
  } else {
    spdlog::error("warm pool {}: cannot delete VM {} ({}): {}; retrying", record.pool, name, why,
                  deleted.error().ToString());
    lock.lock();
    if (auto it = vms_.find(name); it != vms_.end()) {
      it->second.busy = false;
      it->second.next_check = Clock::now() + std::chrono::seconds(10);
    }
  }
  Wake();
}

std::optional<PoolVmRecord> WarmPool::Take(const PoolShape& shape) {
  if (options_.pools.empty()) return std::nullopt;
  std::lock_guard lock(mu_);
  for (auto& [name, vm] : vms_) {
    if ((vm.busy && !vm.checking) || vm.deleting || vm.record.state != PoolVmState::kReady ||
        !(vm.record.shape == shape)) {
      continue;
    }
    const PoolSpec* spec = SpecOf(vm.record.pool);
    if (!spec || !(spec->shape == shape)) continue;
    vm.record.state = PoolVmState::kClaimed;
    vm.busy = true;
    UpdateGauges();
    Wake();  // refill now
    return vm.record;
  }
  const char* reason = "shape";
  for (const auto& spec : options_.pools) {
    PoolShape without_digest = spec.shape;
    without_digest.initdata_digest = shape.initdata_digest;
    if (spec.shape == shape) {
      reason = "empty";
      break;
    }
    if (without_digest == shape) reason = "initdata";
  }
  if (options_.metrics) options_.metrics->PoolMiss(reason);
  spdlog::debug("warm pool: no ready VM for {} ({})", shape.Describe(), reason);
  return std::nullopt;
}

void WarmPool::Release(const PoolVmRecord& vm) {
  RemoveRecord(vm.name);  // the sandbox's record holds it now
}

void WarmPool::Settle(const std::string& vm_name) {
  std::lock_guard lock(mu_);
  auto it = vms_.find(vm_name);
  if (it == vms_.end() || it->second.record.state != PoolVmState::kClaimed || it->second.deleting) return;
  vms_.erase(it);
  UpdateGauges();
  Wake();
}

void WarmPool::Discard(const PoolVmRecord& vm) {
  std::lock_guard lock(mu_);
  auto it = vms_.find(vm.name);
  if (it == vms_.end()) return;
  it->second.record.state = PoolVmState::kReady;  // as recorded; deleting keeps it out of Take
  it->second.deleting = true;
  it->second.busy = false;
  it->second.next_check = {};
  Wake();
}

bool WarmPool::Accounts(const providers::Instance& instance) const {
  std::lock_guard lock(mu_);
  for (const auto& [name, vm] : vms_) {
    if (vm.record.instance_id.empty() ? name == instance.name : vm.record.instance_id == instance.id) return true;
  }
  return false;
}

std::vector<WarmPool::PoolStatus> WarmPool::Snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<PoolStatus> out;
  for (const auto& spec : options_.pools) {
    PoolStatus status{spec.name, spec.size, spec.shape, {}};
    for (const auto& [name, vm] : vms_) {
      if (vm.record.pool == spec.name) status.vms.push_back(vm.record);
    }
    out.push_back(std::move(status));
  }
  return out;
}

}  // namespace pp::adaptor
