// agent-protocol-forwarder: in the pod VM, relays the node's agent calls (TCP, mutual TLS) to the
// kata-agent's unix socket. Flags and apf.json as cloud-api-adaptor's forwarder has them.
#include <iostream>

#include "forwarder/forwarder_cli.h"

int main(int argc, char** argv) { return pp::forwarder::ForwarderMain(argc, argv, std::cout, std::cerr); }
