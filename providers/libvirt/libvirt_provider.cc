#include "providers/libvirt/libvirt_provider.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <thread>

#include "common/base/go_flags.h"
#include "providers/libvirt/cidata.h"
#include "providers/libvirt/connection.h"
#include "providers/libvirt/domain_xml.h"
#include "providers/libvirt/handles.h"
#include "providers/libvirt/kvm_probe.h"
#include "providers/libvirt/volumes.h"
#include "providers/undo.h"

namespace pp::providers::libvirt {
namespace {

using Clock = std::chrono::steady_clock;


// At debug, each step of a CreateInstance with its duration: where a slow boot spends its time.
class StepClock {
 public:
  explicit StepClock(std::string name) : name_(std::move(name)) {}
  void Done(std::string_view step) {
    const auto now = Clock::now();
    spdlog::debug("libvirt: {}: {} in {} ms", name_, step,
                  std::chrono::duration_cast<std::chrono::milliseconds>(now - last_).count());
    last_ = now;
  }

 private:
  std::string name_;
  Clock::time_point last_ = Clock::now();
};

Result<void> CheckContext(const OpContext& ctx, std::string_view step) {
  if (ctx.stop.stop_requested()) return Fail(Code::kCancelled, "libvirt: cancelled before ", step);
  if (Clock::now() >= ctx.deadline) return Fail(Code::kDeadlineExceeded, "libvirt: deadline passed before ", step);
  return {};
}

class LibvirtProvider final : public Provider {
 public:
  LibvirtProvider(LibvirtConfig config, std::unique_ptr<SharedConnection> connection)
      : config_(std::move(config)), conn_(std::move(connection)) {
    // Learn the host (capabilities, KVM probe: up to 3 s) before the first pod asks; the
    // destructor's stop request ends the wait of a warm-up stuck behind a hung libvirtd.
    warmup_ = std::jthread([this](std::stop_token stop) {
      const OpContext ctx{Clock::time_point::max(), stop};
      auto conn = Connect(ctx);
      if (!conn) {
        spdlog::warn("{}", conn.error().message);
        return;
      }
      if (auto host = GetHost(conn->get(), ctx); !host) spdlog::warn("{}", host.error().message);
    });
  }

  Result<Instance> CreateInstance(const InstanceSpec& spec, const OpContext& ctx) override;
  Result<void> DeleteInstance(const std::string& instance_id, const OpContext& ctx) override;
  Result<void> DeleteLeftovers(const std::string& name, const Owner& owner, const OpContext& ctx) override;
  Result<std::vector<Instance>> ListInstances(const std::string& node, const OpContext& ctx) override;
  Result<void> Verify(const OpContext& ctx) override;

 private:
  using Host = HostFacts;

  // A reference of its own to the shared connection (reopened when it died), within ctx.
  Result<Connection> Connect(const OpContext& ctx) { return conn_->Get(ctx); }
  // The host facts, learnt once: the first caller probes (without holding host_mu_), the others
  // wait for it within their own ctx.
  Result<const Host*> GetHost(virConnectPtr conn, const OpContext& ctx);
  // DEADLINE_EXCEEDED when ctx ends before the KVM probe could decide: never remembered.
  Result<Host> ProbeHost(virConnectPtr conn, const OpContext& ctx);
  Result<Pool> LookupPool(virConnectPtr conn);
  Result<std::string> UploadCidata(virStoragePoolPtr pool, const InstanceSpec& spec, Undo& undo);
  Result<std::string> WaitForAddress(virDomainPtr dom, const OpContext& ctx);
  // Deletes the volume `name` if the pool has it; NOT_FOUND is success.
  Result<void> DeleteVolumeByName(virStoragePoolPtr pool, const std::string& name);
  Result<void> DeleteDomain(virDomainPtr dom, virConnectPtr conn);

  const LibvirtConfig config_;
  const std::unique_ptr<SharedConnection> conn_;
  std::mutex host_mu_;  // guards host_ and probing_
  std::condition_variable_any host_cv_;  // signalled when a probe ends
  std::optional<Host> host_;
  bool probing_ = false;
  std::mutex names_mu_;
  std::set<std::string> creating_;  // instance names with a CreateInstance in progress
  std::jthread warmup_;  // last: joined before the members it uses go
};

Result<const LibvirtProvider::Host*> LibvirtProvider::GetHost(virConnectPtr conn, const OpContext& ctx) {
  std::unique_lock lock(host_mu_);
  while (!host_) {
    if (!probing_) {
      if (auto ok = CheckContext(ctx, "learning the host's capabilities"); !ok) return std::unexpected(ok.error());
      probing_ = true;
      lock.unlock();
      auto host = ProbeHost(conn, ctx);
      lock.lock();
      probing_ = false;
      host_cv_.notify_all();
      if (!host) return std::unexpected(host.error());
      host_ = std::move(*host);
      break;
    }
    // Another caller probes (up to the probe's 3 s plus a capabilities call): wait for it, within ctx.
    if (!host_cv_.wait_until(lock, ctx.stop, ctx.deadline, [&] { return !probing_; })) {
      if (auto ok = CheckContext(ctx, "the host's capabilities were learnt"); !ok) return std::unexpected(ok.error());
    }
  }
  return &*host_;
}

Result<LibvirtProvider::Host> LibvirtProvider::ProbeHost(virConnectPtr conn, const OpContext& ctx) {
  Host host;
  // Confidential guests: the KVM capabilities of the q35 machine (reference/cc.md 1.7).
  CString kvm_caps(virConnectGetDomainCapabilities(conn, nullptr, "x86_64", "q35", "kvm", 0));
  std::string kvm_emulator;
  if (kvm_caps) {
    auto parsed = ParseDomainCapabilities(kvm_caps.get(), config_.kvm_module_dir);
    if (!parsed) return std::unexpected(parsed.error());
    host.security = *parsed;
    kvm_emulator = parsed->emulator;
  } else {
    const Error e = LastError("domain capabilities for KVM");
    // A transient failure must not be remembered as "no KVM" for the life of the process.
    if (e.code == Code::kUnavailable) return std::unexpected(e);
    host.security.snp_missing = host.security.tdx_missing = "no KVM on this host (" + e.message + ")";
  }

  // The probe runs QEMU here: it can only speak for a libvirt on this machine. For a remote URI
  // the domain capabilities decide.
  const bool local = config_.uri.find("://") != std::string::npos &&
                     config_.uri.substr(config_.uri.find("://") + 3).starts_with("/");
  if (config_.domain_type == "auto" && !local) {
    host.domain_type = kvm_emulator.empty() ? "qemu" : "kvm";
    spdlog::info("libvirt: remote host {}: domain type {} from its capabilities", config_.uri, host.domain_type);
  } else if (config_.domain_type == "auto") {
    host.domain_type = "qemu";
    if (!kvm_emulator.empty()) {
      // /dev/kvm existing is not enough: on some nested hosts KVM guests hang while switching to
      // long mode. A tiny guest that must reach long mode decides.
      // Up to 3 s, less when the caller's deadline is nearer: a probe cut short by it proves
      // nothing about KVM, so it is an error and the next caller probes again.
      constexpr std::chrono::milliseconds kProbeTime(3000);
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(ctx.deadline - Clock::now());
      if (auto ok = CheckContext(ctx, "probing KVM"); !ok) return std::unexpected(ok.error());
      auto probe = ProbeAccelerator(kvm_emulator, "kvm", std::min(kProbeTime, left));
      if (left < kProbeTime && !(probe && probe->works)) {
        return Fail(Code::kDeadlineExceeded, "libvirt: deadline passed while probing KVM");
      }
      if (probe && probe->works) host.domain_type = "kvm";
      spdlog::info("libvirt: KVM probe: {}; pod VMs use domain type {}",
                   probe ? probe->detail : probe.error().message, host.domain_type);
    } else {
      spdlog::info("libvirt: no KVM; pod VMs use domain type qemu (TCG)");
    }
  } else {
    host.domain_type = config_.domain_type;
  }
  return host;
}



Result<Pool> LibvirtProvider::LookupPool(virConnectPtr conn) {
  Pool pool(virStoragePoolLookupByName(conn, config_.pool.c_str()));
  if (!pool) {
    Error e = LastError("storage pool '" + config_.pool + "' (LIBVIRT_POOL)");
    if (e.code == Code::kNotFound || e.code == Code::kInternal) e.code = Code::kFailedPrecondition;
    return std::unexpected(e);
  }
  return pool;
}

Result<void> LibvirtProvider::DeleteVolumeByName(virStoragePoolPtr pool, const std::string& name) {
  Volume vol(virStorageVolLookupByName(pool, name.c_str()));
  if (!vol) {
    const Error e = LastError("looking up volume " + name);
    if (e.code != Code::kNotFound) return std::unexpected(e);
    return {};
  }
  if (virStorageVolDelete(vol.get(), 0) < 0) {
    const Error e = LastError("deleting volume " + name);
    if (e.code != Code::kNotFound) return std::unexpected(e);
  }
  return {};
}

Result<std::string> LibvirtProvider::UploadCidata(virStoragePoolPtr pool, const InstanceSpec& spec, Undo& undo) {
  auto iso = MakeCidataIso(spec.user_data, spec.name);
  if (!iso) return std::unexpected(iso.error());
  const std::string name = CidataVolumeName(spec.name);
  if (auto gone = DeleteVolumeByName(pool, name); !gone) return std::unexpected(gone.error());  // left by a crash
  Volume vol(virStorageVolCreateXML(pool, BuildRawVolumeXml(name, iso->size()).c_str(), 0));
  if (!vol) return std::unexpected(LastError("creating volume " + name));
  undo.Add("delete volume " + name, [this, pool, name] {
    if (auto gone = DeleteVolumeByName(pool, name); !gone) spdlog::warn("{}", gone.error().message);
  });

  Stream stream(virStreamNew(virStorageVolGetConnect(vol.get()), 0));
  if (!stream) return std::unexpected(LastError("stream for " + name));
  if (virStorageVolUpload(vol.get(), stream.get(), 0, iso->size(), 0) < 0) {
    return std::unexpected(LastError("uploading " + name));
  }
  for (std::size_t off = 0; off < iso->size();) {
    const std::size_t n = std::min<std::size_t>(iso->size() - off, 256 * 1024);
    const int sent = virStreamSend(stream.get(), iso->data() + off, n);
    if (sent < 0) {
      const Error e = LastError("uploading " + name);
      virStreamAbort(stream.get());
      return std::unexpected(e);
    }
    off += static_cast<std::size_t>(sent);
  }
  if (virStreamFinish(stream.get()) < 0) return std::unexpected(LastError("finishing the upload of " + name));
  CString path(virStorageVolGetPath(vol.get()));
  if (!path) return std::unexpected(LastError("path of " + name));
  return std::string(path.get());
}

Result<std::string> LibvirtProvider::WaitForAddress(virDomainPtr dom, const OpContext& ctx) {
  auto limit = ParseGoDuration(config_.ip_timeout);
  const auto until = std::min(ctx.deadline, Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                                 limit ? *limit : std::chrono::minutes(3)));
  for (;;) {
    virDomainInterfacePtr* ifaces = nullptr;
    const int n = virDomainInterfaceAddresses(dom, &ifaces, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0);
    std::string found;
    for (int i = 0; i < n; ++i) {
      for (unsigned j = 0; j < ifaces[i]->naddrs && found.empty(); ++j) {
        if (ifaces[i]->addrs[j].type == VIR_IP_ADDR_TYPE_IPV4 && ifaces[i]->addrs[j].addr) {
          found = ifaces[i]->addrs[j].addr;
        }
      }
      virDomainInterfaceFree(ifaces[i]);
    }
    std::free(ifaces);
    if (n < 0) virResetLastError();
    if (!found.empty()) return found;
    if (virDomainIsActive(dom) == 0) {
      return Fail(Code::kUnavailable, "libvirt: the VM stopped before it got an address");
    }
    if (ctx.stop.stop_requested()) return Fail(Code::kCancelled, "libvirt: cancelled while waiting for the VM's address");
    if (Clock::now() >= until) {
      return Fail(Code::kDeadlineExceeded, "libvirt: the VM got no address from network '", config_.network,
                  "' in time (LIBVIRT_IP_TIMEOUT ", config_.ip_timeout, ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

Result<Instance> LibvirtProvider::CreateInstance(const InstanceSpec& spec, const OpContext& ctx) {
  if (auto ok = CheckContext(ctx, "creating " + spec.name); !ok) return std::unexpected(ok.error());
  // The pod's image annotation names a base image, never another pod's disk or cidata ISO.
  if (!spec.image.empty()) {
    if (auto ok = CheckImageName(spec.image); !ok) return std::unexpected(ok.error());
  }
  auto conn = Connect(ctx);
  if (!conn) return std::unexpected(conn.error());
  auto host = GetHost(conn->get(), ctx);
  if (!host) return std::unexpected(host.error());
  auto plan = PlanDomain(config_, spec, **host);
  if (!plan) return std::unexpected(plan.error());

  // Volumes and the domain are named after the instance: two creates of one name must not meet
  // (the leftover cleanup below would take the other's volumes).
  {
    std::lock_guard lock(names_mu_);
    if (!creating_.insert(spec.name).second) {
      return Fail(Code::kAlreadyExists, "libvirt: instance ", spec.name, " is being created for another sandbox");
    }
  }
  struct Release {
    LibvirtProvider* self;
    std::string name;
    ~Release() {
      std::lock_guard lock(self->names_mu_);
      self->creating_.erase(name);
    }
  } release{this, spec.name};

  // A domain of this name left by an earlier attempt of the same sandbox is replaced; one that
  // belongs to someone else is never touched.
  if (Domain old{virDomainLookupByName(conn->get(), spec.name.c_str())}) {
    CString xml(virDomainGetXMLDesc(old.get(), 0));
    auto facts = xml ? ParseDomainXml(xml.get()) : Result<DomainFacts>(std::unexpected(LastError("old domain")));
    if (!facts || !facts->owner || facts->owner->sandbox_id != spec.owner.sandbox_id) {
      return Fail(Code::kAlreadyExists, "libvirt: a domain named ", spec.name, " exists and is not this sandbox's");
    }
    spdlog::warn("libvirt: replacing domain {} left by an earlier attempt", spec.name);
    if (auto deleted = DeleteDomain(old.get(), conn->get()); !deleted) return std::unexpected(deleted.error());
  } else {
    virResetLastError();
  }

  auto pool = LookupPool(conn->get());
  if (!pool) return std::unexpected(pool.error());
  const std::string base_name = spec.image.empty() ? config_.base_volume : spec.image;
  Volume base(virStorageVolLookupByName(pool->get(), base_name.c_str()));
  if (!base) {
    virResetLastError();
    virStoragePoolRefresh(pool->get(), 0);  // a volume copied in by hand appears after a refresh
    virResetLastError();
    base.reset(virStorageVolLookupByName(pool->get(), base_name.c_str()));
  }
  if (!base) {
    virResetLastError();
    return Fail(Code::kFailedPrecondition, "libvirt: base volume '", base_name, "' not found in pool '", config_.pool,
                "' (LIBVIRT_VOL_NAME or the pod's image annotation)");
  }
  CString base_path(virStorageVolGetPath(base.get()));
  CString base_xml(virStorageVolGetXMLDesc(base.get(), 0));
  virStorageVolInfo base_info{};
  if (!base_path || !base_xml || virStorageVolGetInfo(base.get(), &base_info) < 0) {
    return std::unexpected(LastError("reading base volume " + base_name));
  }
  if (base_info.type != VIR_STORAGE_VOL_FILE) {
    return Fail(spec.image.empty() ? Code::kFailedPrecondition : Code::kInvalidArgument, "libvirt: base volume '",
                base_name, "' is not a plain file volume (LIBVIRT_VOL_NAME or the pod's image annotation)");
  }
  auto base_format = ParseVolumeFormat(base_xml.get());
  if (!base_format) return std::unexpected(base_format.error());

  Undo undo("libvirt");
  StepClock steps(spec.name);
  if (auto ok = CheckContext(ctx, "creating volumes"); !ok) return std::unexpected(ok.error());
  const std::string root_name = RootVolumeName(spec.name);
  if (auto gone = DeleteVolumeByName(pool->get(), root_name); !gone) return std::unexpected(gone.error());
  const unsigned long long capacity = std::max<unsigned long long>(config_.root_disk_gib << 30, base_info.capacity);
  Volume root(virStorageVolCreateXML(
      pool->get(), BuildOverlayVolumeXml(root_name, capacity, base_path.get(), *base_format).c_str(), 0));
  if (!root) return std::unexpected(LastError("creating volume " + root_name));
  virStoragePoolPtr pool_ptr = pool->get();
  undo.Add("delete volume " + root_name, [this, pool_ptr, root_name] {
    if (auto gone = DeleteVolumeByName(pool_ptr, root_name); !gone) spdlog::warn("{}", gone.error().message);
  });
  CString root_path(virStorageVolGetPath(root.get()));
  if (!root_path) return std::unexpected(LastError("path of " + root_name));
  plan->root_disk = root_path.get();
  steps.Done("root volume " + root_name);

  auto cidata = UploadCidata(pool->get(), spec, undo);
  if (!cidata) return std::unexpected(cidata.error());
  plan->cidata = *cidata;
  steps.Done("cidata ISO made and uploaded");

  auto xml = BuildDomainXml(*plan);
  if (!xml) return std::unexpected(xml.error());
  if (auto ok = CheckContext(ctx, "defining the domain"); !ok) return std::unexpected(ok.error());
  Domain dom(virDomainDefineXML(conn->get(), xml->c_str()));
  if (!dom) return std::unexpected(LastError("defining domain " + spec.name));
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (virDomainGetUUIDString(dom.get(), uuid) < 0) {
    const Error e = LastError("domain UUID");
    virDomainUndefine(dom.get());
    return std::unexpected(e);
  }
  // The undo step finds the domain again by UUID: `dom` is released before the undo steps run.
  virConnectPtr conn_ptr = conn->get();
  steps.Done("domain defined");
  undo.Add("delete domain " + spec.name, [this, conn_ptr, id = std::string(uuid)] {
    Domain again(virDomainLookupByUUIDString(conn_ptr, id.c_str()));
    if (!again) {
      virResetLastError();
      return;
    }
    if (auto deleted = DeleteDomain(again.get(), conn_ptr); !deleted) spdlog::warn("{}", deleted.error().message);
  });
  if (virDomainCreate(dom.get()) < 0) return std::unexpected(LastError("starting domain " + spec.name));
  steps.Done("domain started");

  auto address = WaitForAddress(dom.get(), ctx);
  if (!address) return std::unexpected(address.error());
  steps.Done("DHCP lease " + *address);

  undo.Commit();
  spdlog::info("libvirt: domain {} ({}, {}, {}) up at {}", spec.name, uuid, plan->domain_type, ToString(plan->security),
               *address);
  return Instance{uuid, spec.name, {*address}, spec.owner};
}

Result<void> LibvirtProvider::DeleteDomain(virDomainPtr dom, virConnectPtr conn) {
  const char* name_c = virDomainGetName(dom);
  const std::string name = name_c ? name_c : "";
  CString xml(virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE));
  if (!xml) return std::unexpected(LastError("reading domain " + name));
  auto facts = ParseDomainXml(xml.get());
  if (!facts) return std::unexpected(facts.error());

  // Destroy unless libvirt says for certain that it is not running: undefining a running domain
  // would leave it running as a transient one, with its volumes deleted underneath.
  if (virDomainIsActive(dom) != 0 && virDomainDestroy(dom) < 0) {
    const Error e = LastError("destroying domain " + name);
    if (virDomainIsActive(dom) != 0) return std::unexpected(e);
  }
  // Only volumes this provider made for this domain: never the base volume, never a disk someone
  // attached by hand.
  for (const auto& file : facts->disk_files) {
    Volume vol(virStorageVolLookupByPath(conn, file.c_str()));
    if (!vol) {
      virResetLastError();
      continue;
    }
    const std::string vol_name = virStorageVolGetName(vol.get());
    if (vol_name != RootVolumeName(name) && vol_name != CidataVolumeName(name)) continue;
    if (virStorageVolDelete(vol.get(), 0) < 0) return std::unexpected(LastError("deleting volume " + vol_name));
  }
  if (virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE) < 0 &&
      virDomainUndefine(dom) < 0) {
    const Error e = LastError("undefining domain " + name);
    if (e.code != Code::kNotFound) return std::unexpected(e);
  }
  virResetLastError();
  return {};
}

Result<void> LibvirtProvider::DeleteInstance(const std::string& instance_id, const OpContext& ctx) {
  // Not a UUID: nothing this provider made (its ids are domain UUIDs), so nothing to delete.
  static const std::regex uuid(R"(^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$)");
  if (!std::regex_match(instance_id, uuid)) return {};
  if (auto ok = CheckContext(ctx, "deleting " + instance_id); !ok) return ok;
  auto conn = Connect(ctx);
  if (!conn) return std::unexpected(conn.error());
  if (auto ok = CheckContext(ctx, "looking up " + instance_id); !ok) return ok;
  Domain dom(virDomainLookupByUUIDString(conn->get(), instance_id.c_str()));
  if (!dom) {
    Error e = LastError("domain " + instance_id);
    if (e.code == Code::kNotFound) return {};  // gone already
    // Anything else (a connection that just died, say) may hide a live VM: never report it deleted.
    if (e.code == Code::kInternal) e.code = Code::kUnavailable;
    return std::unexpected(e);
  }
  if (auto ok = CheckContext(ctx, "deleting domain " + instance_id); !ok) return ok;
  // Only the volumes the domain's definition references (DeleteDomain): never volumes merely
  // named like its own, which a new attempt of the same sandbox may have made meanwhile.
  return DeleteDomain(dom.get(), conn->get());
}

Result<void> LibvirtProvider::DeleteLeftovers(const std::string& name, const Owner& owner, const OpContext& ctx) {
  if (auto ok = CheckContext(ctx, "removing leftovers of " + name); !ok) return ok;
  auto conn = Connect(ctx);
  if (!conn) return std::unexpected(conn.error());
  if (auto ok = CheckContext(ctx, "looking up domain " + name); !ok) return ok;
  if (Domain dom{virDomainLookupByName(conn->get(), name.c_str())}) {
    CString xml(virDomainGetXMLDesc(dom.get(), VIR_DOMAIN_XML_INACTIVE));
    if (!xml) return std::unexpected(LastError("reading domain " + name));
    auto facts = ParseDomainXml(xml.get());
    if (!facts || !facts->owner || !(*facts->owner == owner)) return {};  // someone else's: never touched
    if (auto ok = CheckContext(ctx, "deleting domain " + name); !ok) return ok;
    if (auto deleted = DeleteDomain(dom.get(), conn->get()); !deleted) return deleted;
  } else {
    Error e = LastError("domain " + name);
    if (e.code != Code::kNotFound) return std::unexpected(e);
  }
  // No domain of this name (any more): volumes of this name were made for it and nothing uses them.
  if (auto ok = CheckContext(ctx, "deleting the volumes of " + name); !ok) return ok;
  auto pool = LookupPool(conn->get());
  if (!pool) return std::unexpected(pool.error());
  // A volume made by a libvirtd that restarted since is known to it only after a refresh.
  if (virStoragePoolRefresh(pool->get(), 0) < 0) virResetLastError();
  for (const std::string& vol : {RootVolumeName(name), CidataVolumeName(name)}) {
    if (auto gone = DeleteVolumeByName(pool->get(), vol); !gone) return gone;
  }
  return {};
}

Result<std::vector<Instance>> LibvirtProvider::ListInstances(const std::string& node, const OpContext& ctx) {
  if (auto ok = CheckContext(ctx, "listing instances"); !ok) return std::unexpected(ok.error());
  auto conn = Connect(ctx);
  if (!conn) return std::unexpected(conn.error());
  if (auto ok = CheckContext(ctx, "listing domains"); !ok) return std::unexpected(ok.error());
  virDomainPtr* domains = nullptr;
  const int n = virConnectListAllDomains(conn->get(), &domains, 0);
  if (n < 0) return std::unexpected(LastError("listing domains"));
  std::vector<Domain> owned(domains, domains + n);
  std::free(domains);
  std::vector<Instance> out;
  for (const auto& dom : owned) {
    if (auto ok = CheckContext(ctx, "reading the listed domains"); !ok) return std::unexpected(ok.error());
    CString xml(virDomainGetXMLDesc(dom.get(), VIR_DOMAIN_XML_INACTIVE));
    if (!xml) {
      virResetLastError();  // undefined meanwhile
      continue;
    }
    auto facts = ParseDomainXml(xml.get());
    if (!facts || !facts->owner || facts->owner->node != node) continue;
    out.push_back(Instance{facts->uuid, facts->name, {}, *facts->owner});
  }
  return out;
}

Result<void> LibvirtProvider::Verify(const OpContext& ctx) {
  if (auto ok = CheckContext(ctx, "verifying the configuration"); !ok) return ok;
  auto conn = Connect(ctx);
  if (!conn) return std::unexpected(conn.error());
  if (auto ok = CheckContext(ctx, "looking up the storage pool"); !ok) return ok;
  auto pool = LookupPool(conn->get());
  if (!pool) return std::unexpected(pool.error());
  if (virStoragePoolIsActive(pool->get()) != 1) {
    return Fail(Code::kFailedPrecondition, "libvirt: storage pool '", config_.pool, "' is not active (LIBVIRT_POOL)");
  }
  if (auto ok = CheckContext(ctx, "looking up the network"); !ok) return ok;
  Network net(virNetworkLookupByName(conn->get(), config_.network.c_str()));
  if (!net) {
    virResetLastError();
    return Fail(Code::kFailedPrecondition, "libvirt: network '", config_.network, "' not found (LIBVIRT_NET)");
  }
  if (virNetworkIsActive(net.get()) != 1) {
    return Fail(Code::kFailedPrecondition, "libvirt: network '", config_.network, "' is not active (LIBVIRT_NET)");
  }
  if (auto ok = CheckContext(ctx, "looking up the base volume"); !ok) return ok;
  Volume base(virStorageVolLookupByName(pool->get(), config_.base_volume.c_str()));
  if (!base) {
    virResetLastError();
    return Fail(Code::kFailedPrecondition, "libvirt: base volume '", config_.base_volume, "' not found in pool '",
                config_.pool, "' (LIBVIRT_VOL_NAME)");
  }
  auto host = GetHost(conn->get(), ctx);
  if (!host) return std::unexpected(host.error());
  return {};
}

}  // namespace

Result<std::unique_ptr<Provider>> MakeLibvirtProvider(LibvirtConfig config) {
  if (auto ok = ValidateConfig(config); !ok) return std::unexpected(ok.error());
  if (config.root_disk_gib == 0) config.root_disk_gib = 10;  // CAA: 0 means the default
  auto conn = SharedConnection::Create(config.uri);
  if (!conn) return std::unexpected(conn.error());
  return std::unique_ptr<Provider>(std::make_unique<LibvirtProvider>(std::move(config), std::move(*conn)));
}

}  // namespace pp::providers::libvirt
