#include "tests/providers/libvirt/libvirtd_fixture.h"

#include <libvirt/virterror.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdlib>

#include "providers/libvirt/domain_xml.h"

namespace pp::providers::libvirt::testing {

std::optional<LibvirtdEnv> LibvirtdEnvFromEnvironment() {
  const char* uri = std::getenv("LIBVIRT_URI");
  const char* pool = std::getenv("LIBVIRT_POOL");
  const char* net = std::getenv("LIBVIRT_NET");
  const char* vol = std::getenv("LIBVIRT_VOL_NAME");
  if (!uri || !pool || !net || !vol) return std::nullopt;
  return LibvirtdEnv{uri, pool, net, vol};
}

LibvirtConfig TestConfig(const LibvirtdEnv& env) {
  LibvirtConfig c;
  c.uri = env.uri;
  c.pool = env.pool;
  c.network = env.network;
  c.base_volume = env.base_volume;
  c.domain_type = "qemu";
  c.firmware = "none";
  c.vcpus = 1;
  c.memory_mib = 384;
  c.ip_timeout = "4m";
  return c;
}

Result<LibvirtdProbe> LibvirtdProbe::Open(const LibvirtdEnv& env) {
  SilenceLibvirtOnce();
  Connection conn(virConnectOpen(env.uri.c_str()));
  if (!conn) return std::unexpected(LastError("test connection to " + env.uri));
  Pool pool(virStoragePoolLookupByName(conn.get(), env.pool.c_str()));
  if (!pool) return std::unexpected(LastError("test pool " + env.pool));
  return LibvirtdProbe(env, std::move(conn), std::move(pool));
}

bool LibvirtdProbe::VolumeExists(const std::string& name) {
  virStoragePoolRefresh(pool_.get(), 0);
  Volume vol(virStorageVolLookupByName(pool_.get(), name.c_str()));
  virResetLastError();
  return vol != nullptr;
}

bool LibvirtdProbe::DomainExists(const std::string& name) {
  Domain dom(virDomainLookupByName(conn_.get(), name.c_str()));
  virResetLastError();
  return dom != nullptr;
}

Result<std::string> LibvirtdProbe::CreateVolume(const std::string& name, unsigned long long bytes) {
  Volume vol(virStorageVolCreateXML(pool_.get(), BuildRawVolumeXml(name, bytes).c_str(), 0));
  if (!vol) return std::unexpected(LastError("test volume " + name));
  CString path(virStorageVolGetPath(vol.get()));
  if (!path) return std::unexpected(LastError("test volume path " + name));
  return std::string(path.get());
}

Result<std::string> LibvirtdProbe::DefineDomain(const std::string& name, const Owner& owner,
                                                const std::string& root_disk,
                                                const std::string& cidata) {
  DomainSpec spec;
  spec.name = name;
  spec.owner = owner;
  spec.pod_name = "pod";
  spec.pod_namespace = "default";
  spec.domain_type = "qemu";
  spec.vcpus = 1;
  spec.memory_mib = 128;
  spec.root_disk = root_disk;
  spec.cidata = cidata;
  spec.network = env_.network;
  auto xml = BuildDomainXml(spec);
  if (!xml) return std::unexpected(xml.error());
  Domain dom(virDomainDefineXML(conn_.get(), xml->c_str()));
  if (!dom) return std::unexpected(LastError("defining test domain " + name));
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (virDomainGetUUIDString(dom.get(), uuid) < 0)
    return std::unexpected(LastError("test domain uuid"));
  return std::string(uuid);
}

void LibvirtdProbe::Remove(const std::string& domain, std::initializer_list<std::string> volumes) {
  if (Domain dom{virDomainLookupByName(conn_.get(), domain.c_str())}) {
    virDomainDestroy(dom.get());
    virDomainUndefine(dom.get());
  }
  for (const auto& name : volumes) {
    if (Volume vol{virStorageVolLookupByName(pool_.get(), name.c_str())})
      virStorageVolDelete(vol.get(), 0);
  }
  virResetLastError();
}

int LibvirtdProbe::LibvirtdPid() {
  ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string("/run/libvirt/libvirt-sock").copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return 0;
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return 0;
  return cred.pid;
}

}  // namespace pp::providers::libvirt::testing
