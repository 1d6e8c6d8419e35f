// Test-only: the private libvirtd that deploy/local/libvirt-netns.sh starts in a network namespace
// of its own (it sets LIBVIRT_URI, LIBVIRT_POOL, LIBVIRT_NET, LIBVIRT_VOL_NAME and runs the test
// binary inside the namespace), and a libvirt connection of the test's own to arrange what the
// provider meets (volumes, domains) and to check what it left.
#pragma once

#include <optional>
#include <string>

#include "common/base/error.h"
#include "providers/libvirt/factory.h"
#include "providers/libvirt/handles.h"

namespace pp::providers::libvirt::testing {

struct LibvirtdEnv {
  std::string uri, pool, network, base_volume;
};

// nullopt outside libvirt-netns.sh.
std::optional<LibvirtdEnv> LibvirtdEnvFromEnvironment();

// The provider's configuration for that libvirtd: TCG, BIOS, one vCPU, 384 MiB (the test image's
// needs), a 4 minute address timeout.
LibvirtConfig TestConfig(const LibvirtdEnv& env);

class LibvirtdProbe {
 public:
  static Result<LibvirtdProbe> Open(const LibvirtdEnv& env);

  bool VolumeExists(const std::string& name);
  bool DomainExists(const std::string& name);
  // A raw volume of `bytes` in the pool; its path.
  Result<std::string> CreateVolume(const std::string& name, unsigned long long bytes = 1 << 20);
  // Defines (does not start) a domain of `name` tagged with `owner`, with the given disk files;
  // its UUID.
  Result<std::string> DefineDomain(const std::string& name, const Owner& owner,
                                   const std::string& root_disk, const std::string& cidata);
  // Best-effort removal of a domain and volumes of these names (test cleanup).
  void Remove(const std::string& domain, std::initializer_list<std::string> volumes);
  virConnectPtr get() { return conn_.get(); }
  // The PID of the libvirtd at the other end (SO_PEERCRED on its socket); 0 when unknown.
  static int LibvirtdPid();

 private:
  LibvirtdProbe(LibvirtdEnv env, Connection conn, Pool pool)
      : env_(std::move(env)), conn_(std::move(conn)), pool_(std::move(pool)) {}
  LibvirtdEnv env_;
  Connection conn_;
  Pool pool_;
};

}  // namespace pp::providers::libvirt::testing
