// agent-protocol-forwarder: in the pod VM, relays the node's agent calls (TCP, mutual TLS) to the
// kata-agent's unix socket. Flags and apf.json as cloud-api-adaptor's forwarder has them.
#include <iostream>

#include "common/base/log.h"
#include "forwarder/forwarder_cli.h"

int main(int argc, char** argv) {
  pp::ConfigureLogging("info", "text");  // logs on stderr, like every binary of the project
  return pp::forwarder::ForwarderMain(argc, argv, std::cout, std::cerr);
}
