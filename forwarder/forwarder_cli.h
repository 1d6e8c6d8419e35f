// agent-protocol-forwarder's command line, as cloud-api-adaptor's forwarder has it
// (reference/caa.md section 4):
//   -listen <ip>:<port> | [<ipv6>]:<port> (default 0.0.0.0:15150)  -kata-agent-socket <path>
//   -pod-namespace <path>  -host-interface <name>  -config <apf.json>  -ca-cert-file F -cert-file F
//   -cert-key F | -disable-tls  -pool-config <pool.json>  -output-dir <dir>
// Pool mode (forwarder/pool_mode.h): when -config does not exist and -pool-config does, the VM is
// a pool VM: it serves provisioning until one claim wrote the pod's files into -output-dir, then
// goes on as below with the apf.json the claim delivered.
// At start, in cloud-api-adaptor's order: the pod network from apf.json's pod-network (fatal on
// error, forwarder/pod_network.h), then the listener, then the relay to the agent.
// Go's "-name value" syntax is accepted (pp::NormalizeGoFlags).
//
// Exit codes: 0 after a clean shutdown (SIGINT, SIGTERM) or -version/-help, 2 for a bad command
// line or configuration (nothing was started), 1 when serving failed. No input makes the program
// abort: every failure is a message on `err` naming the flag, file or key at fault.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>

#include "common/base/asio.h"
#include "common/base/error.h"
#include "common/podvm/apf_config.h"
#include "common/podvm/pool_config.h"
#include "forwarder/forwarder.h"

namespace CLI {
class App;
}

namespace pp::forwarder {

struct ForwarderFlags {
  std::string listen = "0.0.0.0:15150";
  std::string agent_socket = "/run/kata-containers/agent.sock";
  std::string pod_netns = "/run/netns/podns";
  std::string host_interface;  // the VM's interface toward the node; empty: the primary one
  std::string config_path = "/run/peerpod/apf.json";
  std::string pool_config_path = podvm::kPoolConfigPath;  // a pool VM's boot config
  std::string output_dir = "/run/peerpod";  // where a claim's files go (as process-user-data's)
  std::string ca_file, cert_file, key_file;
  bool disable_tls = false;
  bool version = false;
};

// Declares the flags on `app`.
void AddForwarderFlags(CLI::App& app, ForwarderFlags& flags);

// Parses a -listen value strictly: "<IPv4>:<port>" or "[<IPv6>]:<port>", the port decimal digits
// only, 1..65535 (no host names, no port 0, no sign, no IPv6 without brackets). INVALID_ARGUMENT
// naming -listen and the part at fault otherwise.
Result<asio::ip::tcp::endpoint> ParseListenAddress(std::string_view text);

// Everything the Forwarder needs from the flags and apf.json (-config; a missing file means "no
// apf.json"): the listen endpoint, the pod namespace, and unless -disable-tls the server TLS
// context from the -ca-cert-file/-cert-file/-cert-key files or else from apf.json's keys. `apf`
// (if given) gets the parsed apf.json (left empty without one), for the pod network.
Result<ForwarderOptions> BuildForwarderOptions(const ForwarderFlags& flags,
                                               podvm::ApfConfig* apf = nullptr);

// The same from apf.json's text (nullptr: no apf.json), without reading -config; errors still
// name -config's path. A claim checks with it that the apf.json it delivers will serve.
Result<ForwarderOptions> ForwarderOptionsFromApf(const ForwarderFlags& flags,
                                                 const std::string* apf_json,
                                                 podvm::ApfConfig* apf = nullptr);

// The whole program: flags, options, then serve until SIGINT or SIGTERM. Help and version go to
// `out`, errors to `err`.
int ForwarderMain(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace pp::forwarder
