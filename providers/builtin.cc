#include "providers/provider.h"

namespace pp::providers {

// Each provider folder adds itself here behind its CMake option. None is built yet: the libvirt
// provider is the next to land.
void RegisterBuiltinProviders(Registry& registry) { (void)registry; }

}  // namespace pp::providers
