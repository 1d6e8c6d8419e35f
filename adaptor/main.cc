// cloud-api-adaptor: the node daemon the kata shim's remote hypervisor calls.
#include "adaptor/daemon.h"

int main(int argc, char** argv) {
  pp::providers::Registry registry;
  pp::providers::RegisterBuiltinProviders(registry);
  return pp::adaptor::AdaptorMain(argc, argv, registry);
}
